// Helpers of the replication-policy end-to-end tests (policy_e2e_test.cc,
// policy_ha_e2e_test.cc): the five policy RPCs with a deadline, polling a
// policy until it reaches a state, and the emulator-side checks every
// scenario makes (which copies exist, which SyncBlueprint calls executed for
// which source and region).
#ifndef BLUEPRINTSYNC_TESTS_E2E_POLICY_E2E_UTIL_H_
#define BLUEPRINTSYNC_TESTS_E2E_POLICY_E2E_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "tests/testing_util/emulator_admin.h"

namespace blueprintsync::testing {

// A policy copying the newest NORMAL blueprint named `name` in `source_region`.
v1::SyncPolicy FamilyPolicy(const std::string& source_region, const std::string& name,
                            const std::vector<std::string>& destinations, int keep_versions);
// A policy copying one fixed blueprint.
v1::SyncPolicy FixedPolicy(const std::string& source_region, const std::string& blueprint_id,
                           const std::vector<std::string>& destinations, int keep_versions);

// The policy RPCs, each with a 30 s deadline (a hung server must not hang
// the test).
grpc::Status CreatePolicy(v1::BlueprintSync::Stub& stub, const std::string& id,
                          const v1::SyncPolicy& policy, v1::SyncPolicy* created,
                          bool validate_only = false);
grpc::Status GetPolicy(v1::BlueprintSync::Stub& stub, const std::string& name,
                       v1::SyncPolicy* policy);
grpc::Status UpdatePolicy(v1::BlueprintSync::Stub& stub, const v1::SyncPolicy& policy,
                          const std::vector<std::string>& paths, v1::SyncPolicy* updated);
grpc::Status DeletePolicy(v1::BlueprintSync::Stub& stub, const std::string& name,
                          bool delete_copies);
grpc::Status GetJob(v1::BlueprintSync::Stub& stub, const std::string& name, v1::SyncJob* job);
// Every job whose `policy` is `policy_name` (ListSyncJobs filter), oldest first.
absl::StatusOr<std::vector<v1::SyncJob>> PolicyJobs(v1::BlueprintSync::Stub& stub,
                                                    const std::string& policy_name);

// Polls GetSyncPolicy every 100 ms until `done(policy)`; DeadlineExceeded
// with the last answer seen after `timeout`. `stub` is asked for anew on
// every poll, so an HA test can move to a surviving replica.
absl::StatusOr<v1::SyncPolicy> WaitForPolicy(const std::function<v1::BlueprintSync::Stub&()>& stub,
                                             const std::string& name,
                                             const std::function<bool(const v1::SyncPolicy&)>& done,
                                             absl::Duration timeout);
// in_sync, and every region IN_SYNC for the current source.
bool FullyInSync(const v1::SyncPolicy& policy);
// in_sync for `source` (the resolved source_blueprint_id).
bool InSyncFor(const v1::SyncPolicy& policy, const std::string& source);
// The region's status in `policy`; a default one (state unspecified) if absent.
v1::SyncPolicyRegion RegionOf(const v1::SyncPolicy& policy, const std::string& region);
// One line per region, for failure messages.
std::string DescribePolicy(const v1::SyncPolicy& policy);

// What an IN_SYNC policy promises, checked against the emulator and the jobs
// that made the copies (gtest expectations): every region IN_SYNC, in
// destination order, served by a NORMAL copy upstream of the current source,
// made by a job that names the policy, tracked as the region's newest copy.
void ExpectServedUpstream(v1::BlueprintSync::Stub& stub, const EmulatorAdmin& admin,
                          const v1::SyncPolicy& policy);

// Blueprint id -> state of every blueprint the emulator holds in `region`.
absl::StatusOr<std::map<std::string, std::string>> UpstreamStates(const EmulatorAdmin& admin,
                                                                  const std::string& region);
// Executed SyncBlueprint calls per (source blueprint id, destination region).
std::map<std::pair<std::string, std::string>, int> SubmissionsPerSourceAndRegion(
    const std::vector<EmulatorSyncSubmission>& submissions);
// {"blueprints":[...]} for one NORMAL custom blueprint named `name`, created
// at `created` ("2024-01-15T08:00:00Z").
std::string SeedNamedJson(const std::string& region, const std::string& id, const std::string& name,
                          const std::string& created);

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_E2E_POLICY_E2E_UTIL_H_
