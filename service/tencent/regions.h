// The regions Lighthouse SyncBlueprint accepts, which of them are in the
// Chinese mainland, and validation of a sync request against the documented
// rules. The service validates with this before anything leaves the process,
// so a rejected request costs no upstream call.
//
// Two tables: the compiled one (the SyncBlueprint API page's 15 regions),
// and the live one the service validates with (LiveRegions), which starts
// as the compiled one and is replaced by what DescribeRegions answers
// (region_refresher.h), so a region Tencent adds is usable without a
// rebuild. A table is immutable; the live one is swapped as a whole.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_REGIONS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_REGIONS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "service/tencent/lighthouse_types.h"

namespace blueprintsync::tencent {

struct RegionInfo {
  std::string id;    // "ap-singapore"
  std::string name;  // "Southeast Asia (Singapore)"
  bool china_mainland = false;
};

// The 15 regions of the SyncBlueprint API page, sorted by id (the compiled
// table).
const std::vector<RegionInfo>& SyncRegions();
// nullptr if `region` is not one of SyncRegions().
const RegionInfo* FindSyncRegion(std::string_view region);

// An immutable set of regions, sorted by id.
class RegionTable {
 public:
  // A DescribeRegions answer holds at most this many usable regions
  // (Lighthouse has about 20); a longer list is not believed.
  static constexpr size_t kMaxRegions = 64;
  // Region names are only shown (in error messages); cut to this.
  static constexpr size_t kMaxNameBytes = 128;

  // The compiled table (SyncRegions()).
  static std::shared_ptr<const RegionTable> Compiled();
  // The table a DescribeRegions answer describes: its AVAILABLE regions
  // (a region without a state counts as available). InvalidArgument naming
  // the rule when the answer is not believable: no available region, more
  // than kMaxRegions, a region id that is not one (upstream_bounds.h) or
  // that appears twice.
  static absl::StatusOr<std::shared_ptr<const RegionTable>> FromDescribeRegions(
      const DescribeRegionsResponse& answer);

  explicit RegionTable(std::vector<RegionInfo> regions, std::string origin);

  // nullptr if `region` is not in the table.
  const RegionInfo* Find(std::string_view region) const;
  const std::vector<RegionInfo>& regions() const { return regions_; }
  // "ap-bangkok, ap-beijing, ...", for messages.
  const std::string& ids() const { return ids_; }
  // "compiled" or "DescribeRegions".
  const std::string& origin() const { return origin_; }
  bool SameRegionsAs(const RegionTable& other) const;

 private:
  std::vector<RegionInfo> regions_;
  std::string ids_;
  std::string origin_;
};

// The table requests are validated with. Readers take a snapshot (a
// shared_ptr copy under a mutex held for nothing else), so a swap never
// changes a table under a validation that is using it, and the refresh does
// its I/O before it takes the lock.
class LiveRegions {
 public:
  LiveRegions();  // starts as RegionTable::Compiled()
  std::shared_ptr<const RegionTable> Get() const;
  void Set(std::shared_ptr<const RegionTable> table);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const RegionTable> table_ ABSL_GUARDED_BY(mu_);
};

// The process's live table: the one ValidateSyncRequest() without a table
// uses, and the one blueprint-syncd's refresher updates.
LiveRegions& ProcessRegions();

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
// Regions are checked against `regions`.
std::vector<FieldViolation> ValidateSyncRequest(
    const RegionTable& regions, std::string_view source_region, std::string_view blueprint_id,
    const std::vector<std::string>& destination_regions);
// The same against the process's live table (ProcessRegions()).
std::vector<FieldViolation> ValidateSyncRequest(std::string_view source_region,
                                                std::string_view blueprint_id,
                                                const std::vector<std::string>& destination_regions);

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_REGIONS_H_
