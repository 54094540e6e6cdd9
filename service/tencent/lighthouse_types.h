// Plain request/response structs for the Lighthouse (2020-03-24) actions the
// service uses. Field names follow the API's own (Lighthouse API 2020-03-24).
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_TYPES_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace blueprintsync::tencent {

struct Blueprint {
  std::string blueprint_id;
  std::string blueprint_name;
  std::string blueprint_state;  // NORMAL, SYNCING, SYNCING_FAILED, ... (kept verbatim)
  std::string blueprint_type;   // PRIVATE, APP_OS, ...
  std::string platform_type;
  std::string os_name;
  std::string description;
  std::string created_time;  // ISO-8601 UTC as sent, empty when null
  int64_t required_system_disk_size = 0;
};

struct SyncBlueprintRequest {
  std::string region;  // the source region (X-TC-Region)
  std::string blueprint_id;
  std::vector<std::string> destination_regions;
};

struct DestinationRegionBlueprint {
  std::string region;
  std::string blueprint_id;
};

struct SyncBlueprintResponse {
  std::vector<DestinationRegionBlueprint> destinations;
  std::string request_id;
};

struct DescribeFilter {
  std::string name;  // blueprint-id, blueprint-type, blueprint-name, blueprint-state, ...
  std::vector<std::string> values;
};

struct DescribeBlueprintsRequest {
  std::string region;
  std::vector<std::string> blueprint_ids;  // at most 100; not together with filters
  std::vector<DescribeFilter> filters;     // at most 10, each at most 100 values
  std::optional<int64_t> offset;
  std::optional<int64_t> limit;  // 1..100, API default 20
};

// DeleteBlueprints: deletes custom blueprints in one region. Tencent
// accepts only blueprints in NORMAL, ISOLATED, CREATEFAILED or
// SYNCING_FAILED (else UnsupportedOperation.BlueprintCurStateInvalid); an
// unknown id is ResourceNotFound.PrivateBlueprintNotFound; a blueprint in
// use is UnsupportedOperation.BlueprintOccupied.
inline constexpr int kMaxDeleteIds = 100;
struct DeleteBlueprintsRequest {
  std::string region;
  std::vector<std::string> blueprint_ids;  // 1..kMaxDeleteIds
};

struct DeleteBlueprintsResponse {
  std::string request_id;
};

struct DescribeBlueprintsResponse {
  int64_t total_count = 0;
  std::vector<Blueprint> blueprints;
  std::string request_id;
};

struct Region {
  std::string region;
  std::string region_name;
  std::string region_state;
  bool is_china_mainland = false;
};

struct DescribeRegionsResponse {
  int64_t total_count = 0;
  std::vector<Region> regions;
  std::string request_id;
};

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_TYPES_H_
