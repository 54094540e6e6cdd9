// The regions Lighthouse SyncBlueprint accepts, which of them are in the
// Chinese mainland, and validation of a sync request against the documented
// rules. The service validates with this before anything leaves the process,
// so a rejected request costs no upstream call.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_REGIONS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_REGIONS_H_

#include <string>
#include <string_view>
#include <vector>

namespace blueprintsync::tencent {

struct RegionInfo {
  std::string_view id;         // "ap-singapore"
  std::string_view name;       // "Southeast Asia (Singapore)"
  bool china_mainland = false;
};

// The 15 regions of the SyncBlueprint API page, sorted by id.
const std::vector<RegionInfo>& SyncRegions();
// nullptr if `region` is not one of SyncRegions().
const RegionInfo* FindSyncRegion(std::string_view region);

inline constexpr int kMaxDestinationRegions = 10;
// Custom blueprint ids look like "lhbp-ls883feh": "lhbp-" + 8 of [0-9a-z].
bool IsValidBlueprintId(std::string_view id);

// One violated rule. `field` uses the gRPC request's field names
// ("source_region", "blueprint_id", "destination_regions",
// "destination_regions[3]"), `rule` is a stable UPPER_SNAKE identifier and
// `description` a complete English sentence naming the offending value.
struct FieldViolation {
  std::string field;
  std::string rule;
  std::string description;
};

// Rules, each reported at most once per field (one message per violated rule):
//   SOURCE_REGION_REQUIRED, SOURCE_REGION_UNSUPPORTED,
//   BLUEPRINT_ID_REQUIRED, BLUEPRINT_ID_MALFORMED,
//   DESTINATIONS_REQUIRED, TOO_MANY_DESTINATIONS (more than 10),
//   DESTINATION_REGION_UNSUPPORTED (per offending entry),
//   DESTINATION_SAME_AS_SOURCE, DESTINATION_DUPLICATED (per duplicate entry),
//   CROSS_BORDER_SYNC (mainland <-> non-mainland, per offending entry).
std::vector<FieldViolation> ValidateSyncRequest(std::string_view source_region,
                                                std::string_view blueprint_id,
                                                const std::vector<std::string>& destination_regions);

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_REGIONS_H_
