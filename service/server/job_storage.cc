#include "service/server/job_storage.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "service/jobs/postgres_lease.h"

namespace blueprintsync::server {
namespace {

absl::StatusOr<std::unique_ptr<jobs::LeaseBackend>> OpenLease(const std::string& store_spec,
                                                              absl::Duration lease) {
  jobs::PostgresLeaseOptions lease_options;
  // A hung renewal must not outlast the renew interval by much.
  lease_options.call_timeout = std::clamp(lease / 5, absl::Seconds(1), absl::Seconds(5));
  return jobs::OpenPostgresLeaderLease(store_spec, lease_options);
}

}  // namespace

absl::StatusOr<JobStorage> OpenJobStorage(const ServerConfig& config) {
  const std::string& store_spec = config.store;
  JobStorage storage;
  // Before the database is opened: a second process must not even migrate
  // or resume jobs.
  if (const std::string path = jobs::SqlitePathOf(store_spec); !path.empty()) {
    auto lock = jobs::StoreLock::Acquire(path);
    if (!lock.ok()) return lock.status();
    storage.lock = *std::move(lock);
  }
  auto store = jobs::OpenJobStore(store_spec, storage.health.get());
  if (!store.ok()) return store.status();
  storage.store = *std::move(store);
  auto policy_store = policies::OpenPolicyStore(store_spec);
  if (!policy_store.ok()) return policy_store.status();
  storage.policy_store = *std::move(policy_store);
  // Several replicas share a PostgreSQL store: one leads, the others serve
  // reads and hand their submissions over through the store.
  if (absl::StartsWith(store_spec, "postgres://") ||
      absl::StartsWith(store_spec, "postgresql://")) {
    auto backend = OpenLease(store_spec, config.leader_lease);
    if (!backend.ok()) return backend.status();
    storage.lease_backend = *std::move(backend);
    jobs::LeaderElectorOptions elector_options;
    elector_options.holder = jobs::DefaultHolderId();
    elector_options.lease = config.leader_lease;
    elector_options.renew_interval = config.leader_lease / 5;
    elector_options.margin = config.leader_lease / 5;
    storage.elector =
        std::make_unique<jobs::LeaderElector>(elector_options, storage.lease_backend.get());
    if (absl::Status s = storage.elector->Validate(); !s.ok()) return s;
    storage.elector->Start();
  }
  return storage;
}

}  // namespace blueprintsync::server
