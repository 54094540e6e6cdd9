// JobStorage: the job store named by --store, the policy store in the same
// database and, when several replicas share it (PostgreSQL), the leader
// lease and elector that pick the one replica that submits and tracks jobs
// and runs the policy controller. Built by main.cc before the engine and
// the controller, which use them, and destroyed after them.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_JOB_STORAGE_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_JOB_STORAGE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "service/jobs/job_store.h"
#include "service/jobs/leader_elector.h"
#include "service/jobs/store_health.h"
#include "service/jobs/store_lock.h"
#include "service/policies/policy_store.h"
#include "service/server/server_config.h"

namespace blueprintsync::server {

struct JobStorage {
  // SQLite: this process's exclusive hold on the file, for its lifetime
  // (null for other stores). Declared first, so it is released last.
  std::unique_ptr<jobs::StoreLock> lock;
  // Whether the job store can be written (readiness, metrics, the engine);
  // only the SQLite store reports into it, so it stays healthy for others.
  std::unique_ptr<jobs::StoreHealth> health = std::make_unique<jobs::StoreHealth>();
  std::unique_ptr<jobs::JobStore> store;
  // Replication policies, in the jobs' database (their own table).
  std::unique_ptr<policies::PolicyStore> policy_store;
  // Null unless the store is shared. Declared after what they use, so they
  // are destroyed first.
  std::unique_ptr<jobs::LeaseBackend> lease_backend;
  std::unique_ptr<jobs::LeaderElector> elector;

  // "one" or "several (leader lease)", for the start-up log line.
  const char* replicas() const { return elector ? "several (leader lease)" : "one"; }
};

// Opens both stores and, for a PostgreSQL store, the lease, and starts the
// elector. A SQLite file is locked first: FailedPrecondition naming the
// holder when another process has it. Errors name the store by its redacted spec, never a password.
absl::StatusOr<JobStorage> OpenJobStorage(const ServerConfig& config);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_JOB_STORAGE_H_
