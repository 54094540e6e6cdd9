#include "service/tencent/regions.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::tencent {
namespace {

constexpr std::string_view kBlueprintPrefix = "lhbp-";
constexpr size_t kBlueprintSuffixLength = 8;
// Caller-supplied values are quoted in messages; a megabyte of garbage is
// not worth echoing back in full.
constexpr size_t kMaxQuotedLength = 64;

std::string Quote(std::string_view value) {
  // Debian's Abseil has its own absl::string_view; convert explicitly.
  const absl::string_view v(value.data(), value.size());
  if (v.size() <= kMaxQuotedLength) return absl::StrCat("\"", absl::CEscape(v), "\"");
  return absl::StrCat("\"", absl::CEscape(v.substr(0, kMaxQuotedLength)), "\"... (", v.size(),
                      " bytes)");
}

std::string MainlandWord(const RegionInfo& region) {
  return region.china_mainland ? "in the Chinese mainland" : "outside the Chinese mainland";
}

}  // namespace

const std::vector<RegionInfo>& SyncRegions() {
  // The SyncBlueprint API page's list; names as Tencent Cloud's English
  // console shows them.
  static const std::vector<RegionInfo>* const regions = new std::vector<RegionInfo>{
      {"ap-bangkok", "Southeast Asia (Bangkok)", false},
      {"ap-beijing", "North China (Beijing)", true},
      {"ap-chengdu", "Southwest China (Chengdu)", true},
      {"ap-guangzhou", "South China (Guangzhou)", true},
      {"ap-hongkong", "Hong Kong, Macau and Taiwan (China) (Hong Kong, China)", false},
      {"ap-jakarta", "Southeast Asia (Jakarta)", false},
      {"ap-nanjing", "East China (Nanjing)", true},
      {"ap-seoul", "Northeast Asia (Seoul)", false},
      {"ap-shanghai", "East China (Shanghai)", true},
      {"ap-singapore", "Southeast Asia (Singapore)", false},
      {"ap-tokyo", "Northeast Asia (Tokyo)", false},
      {"eu-frankfurt", "Europe (Frankfurt)", false},
      {"na-ashburn", "US East (Virginia)", false},
      {"na-siliconvalley", "US West (Silicon Valley)", false},
      {"sa-saopaulo", "South America (Sao Paulo)", false},
  };
  return *regions;
}

const RegionInfo* FindSyncRegion(std::string_view region) {
  return RegionTable::Compiled()->Find(region);
}

std::shared_ptr<const RegionTable> RegionTable::Compiled() {
  static const auto* const table = new std::shared_ptr<const RegionTable>(
      std::make_shared<RegionTable>(SyncRegions(), "compiled"));
  return *table;
}

absl::StatusOr<std::shared_ptr<const RegionTable>> RegionTable::FromDescribeRegions(
    const DescribeRegionsResponse& answer) {
  std::vector<RegionInfo> regions;
  for (size_t i = 0; i < answer.regions.size(); ++i) {
    const Region& r = answer.regions[i];
    const std::string path = absl::StrCat("Response.RegionSet[", i, "]");
    if (absl::Status s = bounds::CheckRegion(absl::StrCat(path, ".Region"), r.region); !s.ok()) {
      return s;
    }
    if (!r.region_state.empty() && r.region_state != "AVAILABLE") continue;
    if (regions.size() == kMaxRegions) {
      return absl::InvalidArgumentError(absl::StrCat("Response.RegionSet: more than ", kMaxRegions,
                                                     " available regions; not believed"));
    }
    regions.push_back(
        {r.region, bounds::BoundText(r.region_name, kMaxNameBytes), r.is_china_mainland});
  }
  if (regions.empty()) {
    return absl::InvalidArgumentError("Response.RegionSet: no AVAILABLE region; not believed");
  }
  std::sort(regions.begin(), regions.end(),
            [](const RegionInfo& a, const RegionInfo& b) { return a.id < b.id; });
  for (size_t i = 1; i < regions.size(); ++i) {
    if (regions[i].id == regions[i - 1].id) {
      return absl::InvalidArgumentError(absl::StrCat("Response.RegionSet: region \"", regions[i].id,
                                                     "\" listed twice; not believed"));
    }
  }
  return std::make_shared<const RegionTable>(std::move(regions), "DescribeRegions");
}

RegionTable::RegionTable(std::vector<RegionInfo> regions, std::string origin)
    : regions_(std::move(regions)), origin_(std::move(origin)) {
  std::sort(regions_.begin(), regions_.end(),
            [](const RegionInfo& a, const RegionInfo& b) { return a.id < b.id; });
  std::vector<std::string> ids;
  for (const RegionInfo& region : regions_) ids.push_back(region.id);
  ids_ = absl::StrJoin(ids, ", ");
}

const RegionInfo* RegionTable::Find(std::string_view region) const {
  auto it = std::lower_bound(regions_.begin(), regions_.end(), region,
                             [](const RegionInfo& r, std::string_view id) { return r.id < id; });
  if (it == regions_.end() || it->id != region) return nullptr;
  return &*it;
}

bool RegionTable::SameRegionsAs(const RegionTable& other) const {
  return std::equal(regions_.begin(), regions_.end(), other.regions_.begin(), other.regions_.end(),
                    [](const RegionInfo& a, const RegionInfo& b) {
                      return a.id == b.id && a.china_mainland == b.china_mainland;
                    });
}

LiveRegions::LiveRegions() : table_(RegionTable::Compiled()) {}

std::shared_ptr<const RegionTable> LiveRegions::Get() const {
  absl::MutexLock lock(&mu_);
  return table_;
}

void LiveRegions::Set(std::shared_ptr<const RegionTable> table) {
  if (table == nullptr) return;
  absl::MutexLock lock(&mu_);
  table_.swap(table);
  // The old table (now in `table`) is released after the lock: a reader's
  // snapshot may still hold it.
}

LiveRegions& ProcessRegions() {
  static LiveRegions* const regions = new LiveRegions();
  return *regions;
}

bool IsValidBlueprintId(std::string_view id) {
  if (id.size() != kBlueprintPrefix.size() + kBlueprintSuffixLength) return false;
  if (id.substr(0, kBlueprintPrefix.size()) != kBlueprintPrefix) return false;
  for (char c : id.substr(kBlueprintPrefix.size())) {
    if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z')) return false;
  }
  return true;
}

std::vector<FieldViolation> ValidateSyncRequest(
    std::string_view source_region, std::string_view blueprint_id,
    const std::vector<std::string>& destination_regions) {
  // Held for the whole validation: a refresh may swap the live table meanwhile.
  const std::shared_ptr<const RegionTable> regions = ProcessRegions().Get();
  return ValidateSyncRequest(*regions, source_region, blueprint_id, destination_regions);
}

std::vector<FieldViolation> ValidateSyncRequest(
    const RegionTable& regions, std::string_view source_region, std::string_view blueprint_id,
    const std::vector<std::string>& destination_regions) {
  std::vector<FieldViolation> violations;
  auto add = [&violations](std::string field, std::string rule, std::string description) {
    violations.push_back({std::move(field), std::move(rule), std::move(description)});
  };

  const RegionInfo* source = nullptr;
  if (source_region.empty()) {
    add("source_region", "SOURCE_REGION_REQUIRED",
        "source_region is required: it is the region that holds the blueprint.");
  } else {
    source = regions.Find(source_region);
    if (source == nullptr) {
      add("source_region", "SOURCE_REGION_UNSUPPORTED",
          absl::StrCat("source_region ", Quote(source_region),
                       " is not a region SyncBlueprint supports (supported: ", regions.ids(),
                       ")."));
    }
  }

  if (blueprint_id.empty()) {
    add("blueprint_id", "BLUEPRINT_ID_REQUIRED", "blueprint_id is required.");
  } else if (!IsValidBlueprintId(blueprint_id)) {
    add("blueprint_id", "BLUEPRINT_ID_MALFORMED",
        absl::StrCat("blueprint_id ", Quote(blueprint_id),
                     " is malformed: a custom blueprint id is \"lhbp-\" followed by 8 lower-case "
                     "letters or digits, e.g. \"lhbp-ls883feh\"."));
  }

  if (destination_regions.empty()) {
    add("destination_regions", "DESTINATIONS_REQUIRED",
        "destination_regions must list at least one region to sync to.");
  } else if (destination_regions.size() > static_cast<size_t>(kMaxDestinationRegions)) {
    add("destination_regions", "TOO_MANY_DESTINATIONS",
        absl::StrCat("destination_regions lists ", destination_regions.size(),
                     " regions; SyncBlueprint accepts at most ", kMaxDestinationRegions,
                     " per request."));
  }

  for (size_t i = 0; i < destination_regions.size(); ++i) {
    const std::string& region = destination_regions[i];
    const std::string field = absl::StrCat("destination_regions[", i, "]");
    const auto first =
        std::find(destination_regions.begin(), destination_regions.begin() + i, region);
    if (first != destination_regions.begin() + i) {
      // Whatever else is wrong with this value was reported at its first
      // occurrence; repeating it here would only add noise.
      add(field, "DESTINATION_DUPLICATED",
          absl::StrCat(field, " ", Quote(region), " repeats destination_regions[",
                       first - destination_regions.begin(), "]; list each region once."));
      continue;
    }
    const RegionInfo* destination = regions.Find(region);
    if (destination == nullptr) {
      add(field, "DESTINATION_REGION_UNSUPPORTED",
          absl::StrCat(field, " ", Quote(region),
                       " is not a region SyncBlueprint supports (supported: ", regions.ids(),
                       ")."));
    }
    if (!source_region.empty() && region == source_region) {
      add(field, "DESTINATION_SAME_AS_SOURCE",
          absl::StrCat(field, " ", Quote(region),
                       " is the source region; a blueprint cannot be synced to the region it is "
                       "in."));
    }
    // Only decidable when both regions are known.
    if (source != nullptr && destination != nullptr &&
        source->china_mainland != destination->china_mainland) {
      add(field, "CROSS_BORDER_SYNC",
          absl::StrCat(field, " ", Quote(region), " is ", MainlandWord(*destination),
                       " but source_region ", Quote(source_region), " is ", MainlandWord(*source),
                       "; SyncBlueprint cannot sync between mainland and non-mainland regions."));
    }
  }
  return violations;
}

}  // namespace blueprintsync::tencent
