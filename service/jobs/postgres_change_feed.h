// The PostgreSQL job store's change feed (JobStore::OpenChangeFeed):
// LISTEN/NOTIFY on one dedicated connection per replica.
//
// Every job write of postgres_job_store.cc sends, in its own statement (so
// in its own transaction, delivered only if and when it commits), a
// notification on kJobChannel whose payload is "<kind>:<job name>" (see
// JobChangeNotify). Why in the statement and not by a trigger: a trigger
// would be a schema migration, and a replica of an older build refuses a
// database with a newer schema, so a rolling upgrade would stop; the
// statement also knows what kind of change it makes. The price is that a
// new write path must notify too; postgres_job_store_test checks each one.
//
// The listener (StartPostgresChangeFeed) owns one connection that runs
// LISTEN and then only waits: poll() on its socket with a short timeout,
// so it notices being stopped promptly. When the connection is lost it
// reports disconnected() (readers poll meanwhile), reconnects with backoff
// and, once it listens again, calls back with `resync`: notifications sent
// while nobody listened are lost for good, and only a full re-read after
// LISTEN is in place makes up for them.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_CHANGE_FEED_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_CHANGE_FEED_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/jobs/job_store.h"

namespace blueprintsync::jobs::pg {

inline constexpr char kJobChannel[] = "blueprintsync_jobs";

// Payloads longer than this are not job names (ours are far shorter): the
// reader is told to re-read everything instead.
inline constexpr size_t kMaxChangePayload = 512;

// The SQL expression that notifies a change of `kind` to the job whose name
// is the SQL expression `name_sql` (e.g. "w.name").
std::string JobChangeNotify(JobChange::Kind kind, absl::string_view name_sql);

// "<kind>:<name>" -> the change; nullopt for anything else.
std::optional<JobChange> ParseJobChange(absl::string_view payload);

struct ChangeFeedOptions {
  // How long one wait for notifications lasts: the bound on how long
  // stopping the feed takes while it is connected.
  absl::Duration wait = absl::Milliseconds(200);
  // Reconnect backoff: doubles from min to max while connecting fails.
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // A connection lost sooner than this after LISTEN does not reset the
  // backoff (a server that accepts and then drops connections).
  absl::Duration stable_after = absl::Seconds(30);
  // Server-side statement timeout and client-side grace for the feed's own
  // statements: what bounds stopping the feed while a server is frozen.
  absl::Duration call_timeout = absl::Seconds(1);
  absl::Duration call_grace = absl::Milliseconds(500);
};

std::unique_ptr<JobChangeFeed> StartPostgresChangeFeed(
    const std::string& dsn, std::function<void(JobChanges)> on_changes,
    const ChangeFeedOptions& options = {});

}  // namespace blueprintsync::jobs::pg

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_CHANGE_FEED_H_
