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
#include "service/policies/policy_store.h"
#include "service/server/server_config.h"

namespace blueprintsync::server {

struct JobStorage {
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
// elector. Errors name the store by its redacted spec, never a password.
absl::StatusOr<JobStorage> OpenJobStorage(const ServerConfig& config);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_JOB_STORAGE_H_
