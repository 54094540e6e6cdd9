// Validation of the replication-policy requests (CreateSyncPolicy,
// UpdateSyncPolicy, DeleteSyncPolicy and policy names), before anything
// reaches policies::PolicyService. Regions, the fixed source and labels
// follow SyncBlueprint's rules exactly (field_rules.h); the rest is the
// policy's own: ids (AIP-122), the family name, keep_versions, the update
// mask and etags.
//
// Violations name the SyncPolicy field as SyncBlueprint's do
// ("destination_regions[2]", "labels[\"team\"]", "keep_versions"), and the
// request's own fields by their names ("sync_policy_id", "update_mask",
// "etag"); "source" when neither blueprint_id nor blueprint_name is set.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_POLICY_VALIDATION_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_POLICY_VALIDATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "service/tencent/regions.h"

namespace blueprintsync::server {

inline constexpr int kMaxKeepVersions = 100;
inline constexpr int kMaxBlueprintNameCharacters = 60;

// "syncPolicies/{id}" with an AIP-122 id (4-63 of [a-z0-9-], beginning with
// a letter, not ending with a hyphen). INVALID_ARGUMENT naming "name"
// (NAME_REQUIRED, NAME_MALFORMED).
absl::Status ValidatePolicyName(const std::string& name);

// Every violated rule of a CreateSyncPolicyRequest; empty when it is valid.
std::vector<tencent::FieldViolation> ValidateCreatePolicy(
    const v1::CreateSyncPolicyRequest& request);

// The policy a valid CreateSyncPolicyRequest asks for: its input fields,
// named "syncPolicies/{sync_policy_id}"; the output-only fields a caller
// may have copied from another policy (etag, times, creator, status) are
// dropped.
v1::SyncPolicy NewPolicySpec(const v1::CreateSyncPolicyRequest& request);

// What a valid UpdateSyncPolicyRequest asks policies::PolicyService::Update
// to do.
struct PolicyUpdate {
  v1::SyncPolicy policy;                     // the request's, name validated
  std::vector<std::string> paths;            // each of kUpdatablePolicyFields once ("*" expanded)
  std::optional<int64_t> expected_revision;  // from the etag, when set
};

// Every violated rule of an UpdateSyncPolicyRequest: the name, the mask
// (required; paths from kUpdatablePolicyFields or "*"; the source fields
// are named as immutable), the etag, and the masked fields as on create.
// Destinations are checked without the source region, which the request
// does not carry reliably: PolicyApi checks them against the stored one.
// On success fills `update`.
std::vector<tencent::FieldViolation> ValidateUpdatePolicy(
    const v1::UpdateSyncPolicyRequest& request, PolicyUpdate* update);

// A DeleteSyncPolicyRequest's name and etag; on success sets
// `expected_revision` from the etag, when there is one.
std::vector<tencent::FieldViolation> ValidateDeletePolicy(
    const v1::DeleteSyncPolicyRequest& request, std::optional<int64_t>* expected_revision);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_POLICY_VALIDATION_H_
