// Field rules that more than one request shares: a sync's regions and
// source (SyncBlueprint, and a SyncPolicy's source and destinations) and
// labels (SyncJob and SyncPolicy labels). One copy, so the two resources
// can never come to accept different values for the same field.
//
// Every check bounds its work by what a request may legitimately hold: a
// 1 MiB request can carry ~300k list entries or map keys, of which only the
// first few get per-entry rules; the count is reported as one violation.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_FIELD_RULES_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_FIELD_RULES_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/map.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "service/tencent/regions.h"

namespace blueprintsync::server {

inline constexpr int kMaxLabels = 32;

// tencent::ValidateSyncRequest over the first kMaxDestinationRegions
// destinations, with TOO_MANY_DESTINATIONS as one violation (before the
// per-entry ones) when there are more. A field passed as nullopt is not
// checked, and nothing is checked against it: without a source region,
// destinations are checked only for being supported and distinct (an
// update checks them against the stored source later).
std::vector<tencent::FieldViolation> ValidateSyncFields(
    std::optional<std::string_view> source_region, std::optional<std::string_view> blueprint_id,
    const google::protobuf::RepeatedPtrField<std::string>& destination_regions);

// Labels as Kubernetes accepts them: at most kMaxLabels entries; keys an
// optional DNS-subdomain prefix and "/", then a name of 1-63 of
// [A-Za-z0-9._-] beginning and ending with an alphanumeric; values empty or
// such a name. One violation per bad entry, named `labels["key"]`, for the
// first kMaxLabels keys in key order (so the same request always gets the
// same error); the count is one violation of its own.
void ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels,
                    std::vector<tencent::FieldViolation>& violations);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_FIELD_RULES_H_
