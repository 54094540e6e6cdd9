#include "service/jobs/postgres_change_feed.h"

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/jobs/postgres_connection.h"
#include "service/jobs/postgres_dsn.h"

namespace blueprintsync::jobs::pg {
namespace {

char KindLetter(JobChange::Kind kind) {
  switch (kind) {
    case JobChange::Kind::kCreated:
      return 'c';
    case JobChange::Kind::kUpdated:
      return 'u';
    case JobChange::Kind::kCancelRequested:
      return 'x';
    case JobChange::Kind::kDeleted:
      return 'd';
  }
  return 'u';
}

class PostgresChangeFeed final : public JobChangeFeed {
 public:
  PostgresChangeFeed(const std::string& dsn, std::function<void(JobChanges)> on_changes,
                     const ChangeFeedOptions& options)
      : dsn_(dsn),
        secrets_(dsn),
        on_changes_(std::move(on_changes)),
        options_(options),
        status_(absl::UnavailableError("change feed: not connected yet")) {
    thread_ = std::thread([this] { Run(); });
  }

  ~PostgresChangeFeed() override {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  absl::Status status() const override {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  bool Stopping() {
    absl::MutexLock lock(&mu_);
    return stop_;
  }

  void SetStatus(absl::Status s) {
    absl::MutexLock lock(&mu_);
    status_ = std::move(s);
  }

  // Waits `d` unless stopped first; false when stopped.
  bool Sleep(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stop_), d);
    return !stop_;
  }

  void Run() {
    absl::Duration backoff = options_.min_backoff;
    while (!Stopping()) {
      std::unique_ptr<Connection> conn = Listen();
      if (conn != nullptr) {
        const absl::Time listening_since = absl::Now();
        SetStatus(absl::OkStatus());
        // LISTEN is in place: what the reader re-reads now or is told about
        // from here on covers every change, whatever was missed before.
        on_changes_(JobChanges{{}, /*resync=*/true});
        Follow(*conn);
        // Only a connection that stayed up a while resets the backoff. One
        // dropped soon after LISTEN (idle_session_timeout, a proxy that
        // accepts and then closes) counts as a failed attempt: otherwise
        // such a server is reconnected to many times a second, and every
        // reconnect asks each reader for a full re-read.
        if (absl::Now() - listening_since >= options_.stable_after) {
          backoff = options_.min_backoff;
          continue;  // reconnect at once: notifications are being missed
        }
      }
      if (!Sleep(backoff)) return;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  // A connection listening on kJobChannel, or null (status_ says why).
  std::unique_ptr<Connection> Listen() {
    // Short timeouts on every step: the feed's thread is joined when the
    // engine shuts down, and a frozen server must not hold that up for the
    // store's usual call timeout (statement timeout + grace: 15 s). The
    // feed's statements (SETs, LISTEN) are instant on a live server.
    ConnectOptions connect;
    connect.connect_timeout = absl::Seconds(2);  // libpq's minimum
    connect.statement_timeout = options_.call_timeout;
    connect.client_grace = options_.call_grace;
    auto conn = Connection::Open(dsn_, secrets_, connect, "change feed");
    if (!conn.ok()) {
      SetStatus(conn.status());
      return nullptr;
    }
    if (Stopping()) return nullptr;
    if (auto s = (*conn)->ExecScript("change feed", absl::StrCat("LISTEN ", kJobChannel));
        !s.ok()) {
      SetStatus(s);
      return nullptr;
    }
    return *std::move(conn);
  }

  // Hands notifications on until the connection is lost or the feed stops.
  void Follow(Connection& conn) {
    while (!Stopping()) {
      auto got = conn.AwaitNotifications(options_.wait);
      if (!got.ok()) {
        SetStatus(got.status());
        JobChanges lost;
        lost.disconnected = true;
        on_changes_(std::move(lost));
        return;
      }
      if (got->empty()) continue;
      JobChanges batch;
      for (const Connection::Notification& n : *got) {
        std::optional<JobChange> change =
            n.channel == kJobChannel ? ParseJobChange(n.payload) : std::nullopt;
        if (change.has_value()) {
          batch.changes.push_back(*std::move(change));
        } else {
          batch.resync = true;  // not ours to understand: read everything
        }
      }
      on_changes_(std::move(batch));
    }
  }

  const std::string dsn_;
  const Secrets secrets_;
  const std::function<void(JobChanges)> on_changes_;
  const ChangeFeedOptions options_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace

std::string JobChangeNotify(JobChange::Kind kind, absl::string_view name_sql) {
  return absl::StrCat("pg_notify('", kJobChannel, "', '", std::string(1, KindLetter(kind)),
                      ":' || ", name_sql, ")");
}

std::optional<JobChange> ParseJobChange(absl::string_view payload) {
  if (payload.size() < 3 || payload.size() > kMaxChangePayload || payload[1] != ':') {
    return std::nullopt;
  }
  JobChange change;
  switch (payload[0]) {
    case 'c':
      change.kind = JobChange::Kind::kCreated;
      break;
    case 'u':
      change.kind = JobChange::Kind::kUpdated;
      break;
    case 'x':
      change.kind = JobChange::Kind::kCancelRequested;
      break;
    case 'd':
      change.kind = JobChange::Kind::kDeleted;
      break;
    default:
      return std::nullopt;
  }
  change.name = std::string(payload.substr(2));
  return change;
}

std::unique_ptr<JobChangeFeed> StartPostgresChangeFeed(const std::string& dsn,
                                                       std::function<void(JobChanges)> on_changes,
                                                       const ChangeFeedOptions& options) {
  return std::make_unique<PostgresChangeFeed>(dsn, std::move(on_changes), options);
}

}  // namespace blueprintsync::jobs::pg
