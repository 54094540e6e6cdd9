// PolicyService: what the gRPC handlers need for replication policies.
// Requests arrive validated (service/server checks fields, names and
// regions); every call returns at once and answers through its callback
// from one of the service's own threads, so a gRPC thread never waits for
// the store. PolicyApi implements it; handler tests use a fake.
#ifndef BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_SERVICE_H_
#define BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_SERVICE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "service/policies/policy_store.h"

namespace blueprintsync::policies {

// The fields UpdateSyncPolicy may change (update_mask paths; "*" = all).
inline constexpr const char* kUpdatablePolicyFields[] = {"destination_regions", "keep_versions",
                                                         "paused", "labels"};

struct PolicyListPage {
  std::vector<v1::SyncPolicy> policies;
  std::optional<std::string> next_after;  // see PolicyPage
};

class PolicyService {
 public:
  using PolicyCallback = std::function<void(absl::StatusOr<v1::SyncPolicy>)>;
  using PageCallback = std::function<void(absl::StatusOr<PolicyListPage>)>;
  using StatusCallback = std::function<void(absl::Status)>;

  virtual ~PolicyService() = default;

  // Records `policy` (validated; name "syncPolicies/{id}" set) for
  // `creator`. AlreadyExists if the name is taken.
  virtual void Create(v1::SyncPolicy policy, std::string creator, PolicyCallback done) = 0;
  // NotFound if there is none.
  virtual void Get(const std::string& name, PolicyCallback done) = 0;
  virtual void List(const PolicyQuery& query, PageCallback done) = 0;
  // Copies the fields in `paths` (validated: each one of
  // kUpdatablePolicyFields) from `policy` onto the stored policy named
  // policy.name(). Aborted if expected_revision is set and differs;
  // NotFound; FailedPrecondition while it is being deleted.
  virtual void Update(v1::SyncPolicy policy, std::vector<std::string> paths,
                      std::optional<int64_t> expected_revision, PolicyCallback done) = 0;
  // Without delete_copies the record goes at once (the copies and a job
  // still running are left alone). With it, the record is marked and the
  // controller cancels the policy's job, deletes its copies, then removes
  // the record.
  virtual void Delete(const std::string& name, std::optional<int64_t> expected_revision,
                      bool delete_copies, StatusCallback done) = 0;
};

}  // namespace blueprintsync::policies

#endif  // BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_SERVICE_H_
