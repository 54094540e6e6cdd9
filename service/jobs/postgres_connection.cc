#include "service/jobs/postgres_connection.h"

#include <endian.h>
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/common/error_reason.h"

namespace blueprintsync::jobs {
namespace pg {

Result::Result(pg_result* res) : res_(res) {}
Result::~Result() {
  if (res_ != nullptr) PQclear(res_);
}
Result::Result(Result&& other) noexcept : res_(std::exchange(other.res_, nullptr)) {}

int Result::rows() const { return PQntuples(res_); }

int Result::columns() const { return PQnfields(res_); }
bool Result::IsNull(int row, int col) const { return PQgetisnull(res_, row, col) != 0; }

int64_t Result::Int64(int row, int col) const {
  const char* v = PQgetvalue(res_, row, col);
  switch (PQgetlength(res_, row, col)) {
    case 8: {
      uint64_t x;
      std::memcpy(&x, v, 8);
      return static_cast<int64_t>(be64toh(x));
    }
    case 4: {
      uint32_t x;
      std::memcpy(&x, v, 4);
      return static_cast<int32_t>(be32toh(x));
    }
    case 2: {
      uint16_t x;
      std::memcpy(&x, v, 2);
      return static_cast<int16_t>(be16toh(x));
    }
    case 1:
      return static_cast<unsigned char>(v[0]);
    default:
      return 0;
  }
}

bool Result::Bool(int row, int col) const { return Int64(row, col) != 0; }

std::string Result::Bytes(int row, int col) const {
  return std::string(PQgetvalue(res_, row, col), PQgetlength(res_, row, col));
}

absl::string_view Result::View(int row, int col) const {
  return absl::string_view(PQgetvalue(res_, row, col),
                           static_cast<size_t>(PQgetlength(res_, row, col)));
}

Param Param::Int(int64_t v) { return Text(absl::StrCat(v)); }

absl::StatusCode CodeForSqlState(absl::string_view sqlstate) {
  if (sqlstate.empty()) return absl::StatusCode::kUnavailable;
  if (sqlstate == "23505") return absl::StatusCode::kAlreadyExists;
  if (sqlstate == "40001" || sqlstate == "40P01") return absl::StatusCode::kAborted;
  // 57014: statement_timeout / cancel; 57P0x: the server is shutting down or
  // starting; 25006: connected to a read-only standby (failover); 53300: too
  // many connections. All pass once the server is back.
  if (absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "57") || sqlstate == "25006" ||
      sqlstate == "53300" || sqlstate == "55P03") {
    return absl::StatusCode::kUnavailable;
  }
  if (absl::StartsWith(sqlstate, "53")) return absl::StatusCode::kResourceExhausted;
  if (absl::StartsWith(sqlstate, "22")) return absl::StatusCode::kInvalidArgument;
  if (absl::StartsWith(sqlstate, "28")) return absl::StatusCode::kPermissionDenied;
  if (absl::StartsWith(sqlstate, "42")) return absl::StatusCode::kFailedPrecondition;
  if (absl::StartsWith(sqlstate, "XX001") || absl::StartsWith(sqlstate, "XX002")) {
    return absl::StatusCode::kDataLoss;
  }
  return absl::StatusCode::kInternal;
}

namespace {
void IgnoreNotice(void*, const char*) {}
}  // namespace

ConnectionPool::ConnectionPool(const std::string& dsn, int max_connections, absl::Duration wait)
    : dsn_(dsn), secrets_(dsn), max_connections_(std::max(1, max_connections)), wait_(wait) {}

ConnectionPool::~ConnectionPool() {
  absl::MutexLock lock(&mu_);
  idle_.clear();
}

absl::StatusOr<ConnectionPool::Loan> ConnectionPool::Acquire(absl::string_view op) {
  std::unique_ptr<Connection> conn;
  std::vector<std::unique_ptr<Connection>> dead;
  {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(this, &ConnectionPool::CanAcquire), wait_)) {
      return StoreError(absl::UnavailableError(absl::StrCat(
          "postgres job store ", secrets_.display(), ": ", op, ": all ", max_connections_,
          " connections stayed busy for ", absl::FormatDuration(wait_))));
    }
    while (conn == nullptr && !idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
      if (!conn->Healthy()) {
        dead.push_back(std::move(conn));
        --open_;
      }
    }
    if (conn == nullptr) ++open_;  // a slot for the connection opened below
  }
  dead.clear();  // closed outside the lock
  if (conn == nullptr) {
    auto opened = Connection::Open(dsn_, secrets_, ConnectOptions{}, op);
    if (!opened.ok()) {
      absl::MutexLock lock(&mu_);
      --open_;
      return opened.status();
    }
    conn = *std::move(opened);
  }
  return Loan(this, std::move(conn));
}

void ConnectionPool::Return(std::unique_ptr<Connection> conn) {
  std::vector<std::unique_ptr<Connection>> dead;
  {
    absl::MutexLock lock(&mu_);
    if (!conn->broken()) {
      idle_.push_back(std::move(conn));
      return;
    }
    // Whatever broke this one (a restart, a failover) most likely broke
    // the idle ones too.
    dead.push_back(std::move(conn));
    for (auto& c : idle_) dead.push_back(std::move(c));
    open_ -= static_cast<int>(dead.size());
    idle_.clear();
  }
}

Connection::Connection(pg_conn* conn, const Secrets& secrets, absl::Duration call_timeout)
    : conn_(conn), secrets_(secrets), call_timeout_(call_timeout) {}

Connection::~Connection() { PQfinish(conn_); }

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& dsn,
                                                             const Secrets& secrets,
                                                             const ConnectOptions& options,
                                                             absl::string_view op) {
  if (dsn.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("postgres job store: ", op, ": the connection string contains NUL"));
  }
  {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
    if (opts == nullptr) {
      std::string message = err != nullptr ? secrets.Scrub(absl::StripAsciiWhitespace(err))
                                           : std::string("out of memory");
      if (err != nullptr) PQfreemem(err);
      return absl::InvalidArgumentError(absl::StrCat("postgres job store ", secrets.display(), ": ",
                                                     op, ": invalid connection string: ", message));
    }
    PQconninfoFree(opts);
  }
  const std::string connect_timeout =
      absl::StrCat(std::max<int64_t>(2, absl::ToInt64Seconds(options.connect_timeout)));
  // Our defaults first, the DSN last: with expand_dbname the DSN's own
  // settings override ours. Keepalives and tcp_user_timeout bound how long a
  // dead peer can hold a call even before the client-side deadline.
  const char* keys[] = {"connect_timeout",
                        "application_name",
                        "client_encoding",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "target_session_attrs",
                        "dbname",
                        nullptr};
  const char* values[] = {connect_timeout.c_str(),
                          "blueprint-syncd",
                          "UTF8",
                          "1",
                          "10",
                          "5",
                          "3",
                          "20000",
                          "read-write",
                          dsn.c_str(),
                          nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return StoreError(absl::ResourceExhaustedError(absl::StrCat(
        "postgres job store ", secrets.display(), ": ", op, ": cannot allocate a connection")));
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = secrets.Scrub(absl::StripAsciiWhitespace(PQerrorMessage(conn)));
    PQfinish(conn);
    return StoreError(absl::UnavailableError(absl::StrCat(
        "postgres job store ", secrets.display(), ": ", op, ": cannot connect: ", message)));
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  std::unique_ptr<Connection> c(
      new Connection(conn, secrets, options.statement_timeout + options.client_grace));
  const int64_t statement_ms =
      std::max<int64_t>(1, absl::ToInt64Milliseconds(options.statement_timeout));
  if (auto s = c->ExecScript(
          absl::StrCat(op, " (session settings)"),
          absl::StrCat("SET statement_timeout = ", statement_ms,
                       "; SET lock_timeout = ", statement_ms,
                       "; SET idle_in_transaction_session_timeout = ", 2 * statement_ms));
      !s.ok()) {
    return s;
  }
  return c;
}

bool Connection::Healthy() {
  if (broken_) return false;
  if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    broken_ = true;
    return false;
  }
  // An idle connection receives nothing unless the server is going away:
  // then a FATAL error (which libpq hands to the notice processor) and the
  // end of the stream. Read whatever is there without blocking; the EOF
  // makes PQconsumeInput fail.
  for (int i = 0; i < 4; ++i) {
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    const int ready = poll(&pfd, 1, 0);
    if (ready == 0) return true;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) break;
  }
  broken_ = true;  // closed, or unexpected traffic on an idle connection
  return false;
}

absl::StatusOr<std::vector<Connection::Notification>> Connection::AwaitNotifications(
    absl::Duration timeout) {
  std::vector<Notification> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(conn_)) {
      out.push_back(Notification{n->relname, n->extra});
      PQfreemem(n);
    }
  };
  auto lost = [&] {
    broken_ = true;
    return StoreError(absl::UnavailableError(
        absl::StrCat("postgres job store ", secrets_.display(), ": change feed: ",
                     secrets_.Scrub(absl::StripAsciiWhitespace(PQerrorMessage(conn_))))));
  };
  if (broken_ || PQstatus(conn_) != CONNECTION_OK) return lost();
  // Notifications read along with the answer to an earlier statement wait
  // in libpq's queue.
  drain();
  if (!out.empty()) return out;
  pollfd pfd{PQsocket(conn_), POLLIN, 0};
  const int ready = poll(&pfd, 1, static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout))));
  if (ready < 0 && errno == EINTR) return out;
  if (ready < 0) return lost();
  if (ready == 0) return out;
  // The socket is non-blocking inside libpq: this reads what is there. The
  // end of the stream (server restart, pg_terminate_backend) makes it fail.
  if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) return lost();
  drain();
  return out;
}

absl::StatusOr<Result> Connection::Exec(absl::string_view op, const std::string& sql,
                                        const std::vector<Param>& params) {
  return Run(op, sql, &params);
}

absl::Status Connection::ExecScript(absl::string_view op, const std::string& sql) {
  return Run(op, sql, nullptr).status();
}

absl::StatusOr<Result> Connection::Run(absl::string_view op, const std::string& sql,
                                       const std::vector<Param>* params) {
  last_sqlstate_.clear();
  timed_out_ = false;
  auto fail = [&](absl::string_view what) {
    broken_ = true;
    return StoreError(absl::UnavailableError(
        absl::StrCat("postgres job store ", secrets_.display(), ": ", op, ": ", what)));
  };
  if (broken_) return fail("the connection is broken");
  int sent;
  if (params != nullptr) {
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    for (const Param& p : *params) {
      if (!p.binary && p.value.find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("postgres job store ", secrets_.display(),
                                                       ": ", op, ": text contains NUL"));
      }
      values.push_back(p.null ? nullptr : p.value.c_str());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    sent = PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(params->size()), nullptr,
                             values.data(), lengths.data(), formats.data(), /*resultFormat=*/1);
  } else {
    sent = PQsendQuery(conn_, sql.c_str());
  }
  if (sent == 0) {
    return fail(secrets_.Scrub(absl::StripAsciiWhitespace(PQerrorMessage(conn_))));
  }

  const absl::Time deadline = absl::Now() + call_timeout_;
  PGresult* error = nullptr;  // the first error; later results are dropped
  std::optional<Result> last;
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (left_ms <= 0) {
        if (error != nullptr) PQclear(error);
        timed_out_ = true;
        return fail(
            absl::StrCat("no answer from the server within ", absl::FormatDuration(call_timeout_)));
      }
      pollfd pfd{PQsocket(conn_), POLLIN, 0};
      const int ready = poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
      if ((ready < 0 && errno != EINTR) || (ready > 0 && PQconsumeInput(conn_) == 0)) {
        if (error != nullptr) PQclear(error);
        return fail(secrets_.Scrub(absl::StripAsciiWhitespace(PQerrorMessage(conn_))));
      }
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
      if (error == nullptr) {
        error = r;
      } else {
        PQclear(r);
      }
    } else if (error == nullptr) {
      last.reset();
      last.emplace(r);
    } else {
      PQclear(r);
    }
  }
  if (PQstatus(conn_) != CONNECTION_OK) broken_ = true;
  if (error != nullptr) {
    const char* state = PQresultErrorField(error, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(error, PG_DIAG_MESSAGE_PRIMARY);
    const char* detail = PQresultErrorField(error, PG_DIAG_MESSAGE_DETAIL);
    last_sqlstate_ = state != nullptr ? state : "";
    std::string message =
        primary != nullptr ? std::string(primary)
                           : std::string(absl::StripAsciiWhitespace(PQresultErrorMessage(error)));
    if (detail != nullptr) absl::StrAppend(&message, " (", detail, ")");
    PQclear(error);
    if (last_sqlstate_.empty()) broken_ = broken_ || PQstatus(conn_) != CONNECTION_OK;
    return StoreError(absl::Status(
        broken_ ? absl::StatusCode::kUnavailable : CodeForSqlState(last_sqlstate_),
        absl::StrCat(
            "postgres job store ", secrets_.display(), ": ", op, ": ", secrets_.Scrub(message),
            last_sqlstate_.empty() ? "" : absl::StrCat(" (SQLSTATE ", last_sqlstate_, ")"))));
  }
  if (!last.has_value()) return fail("no result from the server");
  return std::move(*last);
}

namespace {

// Migration i takes the schema from version i to i + 1, in the same
// transaction as its schema_version row. Append only: a migration that has
// shipped is never edited.
constexpr const char* kMigrations[] = {
    // 1: jobs (the indexed columns duplicate fields of `record`, as in the
    // SQLite store) and the one-row leader lease.
    R"sql(
      CREATE TABLE jobs (
        sequence bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE,
        request_id text UNIQUE,
        state integer NOT NULL,
        blueprint_id text NOT NULL,
        source_region text NOT NULL,
        create_time_us bigint,
        update_time_us bigint,
        record bytea NOT NULL
      );
      CREATE INDEX jobs_by_state ON jobs (state, sequence);
      CREATE INDEX jobs_by_blueprint_id ON jobs (blueprint_id, sequence);
      CREATE INDEX jobs_by_source_region ON jobs (source_region, sequence);
      CREATE TABLE leader_lease (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        holder text NOT NULL,
        epoch bigint NOT NULL,
        acquired_at timestamptz NOT NULL,
        renewed_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      );
    )sql",
    // 2: jobs with creators, cancellation and copy cleanup (as SQLite's
    // migration 2):
    //  - request_key (RequestKey(): creator and request_id) takes over the
    //    uniqueness of request_id, which two creators may now share;
    //    request_id stays as a plain column for the request_id filter.
    //    Existing request ids are keys already (no creator then).
    //  - open (IsOpen()) finds the jobs the engine still has work on and
    //    the jobs retention may delete; before this version exactly the
    //    QUEUED and RUNNING ones were open.
    //  - creator and retry_of are filterable.
    // Replicas of the previous version must be stopped first: their
    // INSERT … ON CONFLICT (request_id) fails once that constraint is gone,
    // and their updates would not maintain `open`.
    R"sql(
      ALTER TABLE jobs
        ADD COLUMN request_key text,
        ADD COLUMN creator text NOT NULL DEFAULT '',
        ADD COLUMN retry_of text NOT NULL DEFAULT '',
        ADD COLUMN open boolean NOT NULL DEFAULT false,
        ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
      UPDATE jobs SET request_key = request_id, open = state IN (1, 2);
      ALTER TABLE jobs DROP CONSTRAINT jobs_request_id_key;
      ALTER TABLE jobs ADD CONSTRAINT jobs_request_key_key UNIQUE (request_key);
      CREATE INDEX jobs_by_request_id ON jobs (request_id, sequence);
      CREATE INDEX jobs_by_creator ON jobs (creator, sequence);
      CREATE INDEX jobs_by_retry_of ON jobs (retry_of, sequence);
      CREATE INDEX jobs_by_open ON jobs (open, sequence);
      CREATE INDEX jobs_by_open_update_time ON jobs (open, update_time_us, sequence);
    )sql",
};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// pg_advisory_xact_lock key serializing migrations: "bps_sch".
constexpr int64_t kMigrationLockKey = 0x6270735f736368;

}  // namespace

int SchemaVersion() { return kSchemaVersion; }

std::string LeaseFenceCondition(int epoch_param) {
  // FOR SHARE: a takeover (which updates the lease row) waits until the
  // write commits, or, if it came first, the write re-checks the new lease
  // row and writes nothing.
  return absl::StrCat("EXISTS (SELECT 1 FROM leader_lease WHERE epoch = $", epoch_param,
                      " AND expires_at > clock_timestamp() FOR SHARE)");
}

absl::StatusOr<std::string> DescribeLease(Connection& conn, absl::string_view op) {
  auto r = conn.Exec(op, "SELECT holder, epoch, expires_at > clock_timestamp() FROM leader_lease");
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::string("nobody holds the lease");
  return absl::StrCat("the lease is at epoch ", r->Int64(0, 1), ", held by \"", r->Bytes(0, 0),
                      "\" (", r->Bool(0, 2) ? "valid" : "expired", ")");
}

absl::Status EnsureTables(Connection& conn, absl::string_view op, const std::string& ddl) {
  if (auto s = conn.ExecScript(op, "BEGIN"); !s.ok()) return s;
  absl::Status s =
      conn.Exec(op, "SELECT pg_advisory_xact_lock($1)", {Param::Int(kMigrationLockKey)}).status();
  if (s.ok()) s = conn.ExecScript(op, ddl);
  if (s.ok()) return conn.ExecScript(op, "COMMIT");
  // As in EnsureSchema: the first error is the one to report.
  if (!conn.broken()) conn.ExecScript(op, "ROLLBACK").IgnoreError();
  return s;
}

absl::Status EnsureSchema(Connection& conn, const Secrets& secrets) {
  constexpr absl::string_view kOp = "open (schema migration)";
  if (auto s = conn.ExecScript(kOp, "BEGIN"); !s.ok()) return s;
  auto abort = [&conn](absl::Status s) {
    // A failed ROLLBACK leaves the connection broken, and the server rolls
    // back when it goes; the first error is the one to report.
    if (!conn.broken()) conn.ExecScript("open (rollback)", "ROLLBACK").IgnoreError();
    return s;
  };
  if (auto r = conn.Exec(kOp, "SELECT pg_advisory_xact_lock($1)", {Param::Int(kMigrationLockKey)});
      !r.ok()) {
    return abort(r.status());
  }
  if (auto s = conn.ExecScript(kOp,
                               "CREATE TABLE IF NOT EXISTS schema_version ("
                               "  version integer PRIMARY KEY,"
                               "  applied_at timestamptz NOT NULL DEFAULT now())");
      !s.ok()) {
    return abort(s);
  }
  auto current = conn.Exec(kOp, "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_version");
  if (!current.ok()) return abort(current.status());
  const int64_t version = current->Int64(0, 0);
  if (version > kSchemaVersion) {
    return abort(absl::FailedPreconditionError(
        absl::StrCat("postgres job store ", secrets.display(), " has schema version ", version,
                     ", newer than the newest this build knows (", kSchemaVersion,
                     "); refusing to use it (was it written by a newer blueprint-sync?)")));
  }
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    const std::string op = absl::StrCat("open (schema migration to version ", v + 1, ")");
    if (auto s = conn.ExecScript(op, kMigrations[v]); !s.ok()) return abort(s);
    if (auto r =
            conn.Exec(op, "INSERT INTO schema_version (version) VALUES ($1)", {Param::Int(v + 1)});
        !r.ok()) {
      return abort(r.status());
    }
  }
  return conn.ExecScript(kOp, "COMMIT");
}

}  // namespace pg
}  // namespace blueprintsync::jobs
