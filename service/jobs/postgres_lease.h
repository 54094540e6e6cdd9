// PostgresLeaderLease: the leader lease of replicas sharing a PostgreSQL job
// store (LeaseBackend for LeaderElector, see leader_elector.h).
//
// The lease is the one row of table leader_lease (holder, epoch,
// expires_at), created by the store's migrations. Expiry is computed and
// compared by the DATABASE clock (now() + lease), so hosts' clocks need not
// agree. Epochs: the first acquisition gets 1; a renewal by the holder
// before expiry keeps the epoch; every other acquisition (after expiry or
// Release, even by the same holder) increments it. Job writes are fenced by
// the epoch: JobStore::SetWriteFence.
//
// The lease uses its own connection, so renewals never queue behind job
// store traffic; it reconnects lazily after the server went away (calls
// fail with Unavailable meanwhile) and no call waits longer than
// call_timeout plus a few seconds.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_LEASE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_LEASE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/jobs/leader_elector.h"
#include "service/jobs/postgres_connection.h"

namespace blueprintsync::jobs {

struct PostgresLeaseOptions {
  // Server-side statement timeout of each lease call (also the connect
  // timeout, at most 5 s, libpq's minimum 2 s); the client gives up at most
  // 1 s after it. Keep it well below the lease duration.
  absl::Duration call_timeout = absl::Seconds(5);
};

class PostgresLeaderLease final : public LeaseBackend {
 public:
  // Connects and creates or upgrades the schema (as OpenPostgresJobStore).
  static absl::StatusOr<std::unique_ptr<PostgresLeaderLease>> Open(
      const std::string& dsn, PostgresLeaseOptions options = {});
  ~PostgresLeaderLease() override;

  // InvalidArgument for an empty holder or a lease under 1 ms. When not
  // leader, State.epoch is the lease's current epoch (0: never held).
  absl::StatusOr<State> TryAcquireOrRenew(const std::string& holder, absl::Duration lease) override;
  // Expires the lease now if `holder` holds it; OK (and nothing changes)
  // otherwise.
  absl::Status Release(const std::string& holder) override;

  // The lease row as the database sees it now (diagnostics and tests).
  struct Snapshot {
    bool exists = false;  // false: never acquired
    std::string holder;
    int64_t epoch = 0;
    absl::Duration remaining;  // expires_at - now(); <= 0: expired
  };
  absl::StatusOr<Snapshot> Inspect();

 private:
  PostgresLeaderLease(const std::string& dsn, PostgresLeaseOptions options);
  absl::StatusOr<pg::Connection*> Conn() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dsn_;
  const pg::Secrets secrets_;
  const pg::ConnectOptions connect_options_;
  absl::Mutex mu_;
  std::unique_ptr<pg::Connection> conn_ ABSL_GUARDED_BY(mu_);
};

// Open() as the engine's LeaseBackend.
absl::StatusOr<std::unique_ptr<LeaseBackend>> OpenPostgresLeaderLease(
    const std::string& dsn, PostgresLeaseOptions options = {});

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_LEASE_H_
