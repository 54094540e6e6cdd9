// JobStorage: the job store named by --store and, when several replicas
// share it (PostgreSQL), the leader lease and elector that pick the one
// replica that submits and tracks jobs. Built by main.cc before the engine,
// which uses all three, and destroyed after it.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_JOB_STORAGE_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_JOB_STORAGE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "service/jobs/job_store.h"
#include "service/jobs/leader_elector.h"
#include "service/server/server_config.h"

namespace blueprintsync::server {

struct JobStorage {
  std::unique_ptr<jobs::JobStore> store;
  // Null unless the store is shared. Declared after what they use, so they
  // are destroyed first.
  std::unique_ptr<jobs::LeaseBackend> lease_backend;
  std::unique_ptr<jobs::LeaderElector> elector;

  // "one" or "several (leader lease)", for the start-up log line.
  const char* replicas() const { return elector ? "several (leader lease)" : "one"; }
};

// Opens the store and, for a PostgreSQL store, the lease, and starts the
// elector. Errors name the store by its redacted spec, never a password.
absl::StatusOr<JobStorage> OpenJobStorage(const ServerConfig& config);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_JOB_STORAGE_H_
