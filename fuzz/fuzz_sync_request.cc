// Fuzz target: validation of a caller's SyncBlueprint request
// (service/tencent/regions.h ValidateSyncRequest, IsValidBlueprintId). The
// fields come from the gRPC caller, so they are arbitrary bytes of any length.
// FuzzedDataProvider splits the input into the source region, the blueprint id
// and up to 16 destinations; each region is either a real region (picked by
// index, so the cross-border and duplicate rules are reachable) or raw bytes.
// Checked:
//   - every violation has a non-empty field, a documented rule and a
//     description of at most kMaxDescription bytes (no unbounded echo);
//   - fields are the request's names, destination indexes are in range, and
//     each (field, rule) pair is reported once;
//   - the result is deterministic;
//   - "no violations" agrees with an independent model of the documented
//     rules, and IsValidBlueprintId with the documented id shape.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "service/tencent/regions.h"

namespace {

using blueprintsync::tencent::FieldViolation;
using blueprintsync::tencent::FindSyncRegion;
using blueprintsync::tencent::IsValidBlueprintId;
using blueprintsync::tencent::RegionInfo;
using blueprintsync::tencent::SyncRegions;
using blueprintsync::tencent::ValidateSyncRequest;

// Longest legitimate description: a 64-byte value quoted with every byte
// octal-escaped (256), its length, and the 15-region supported list.
constexpr size_t kMaxDescription = 600;
constexpr size_t kMaxDestinations = 16;

const std::set<std::string>& KnownRules() {
  static const std::set<std::string>* const rules = new std::set<std::string>{
      "SOURCE_REGION_REQUIRED",  "SOURCE_REGION_UNSUPPORTED",      "BLUEPRINT_ID_REQUIRED",
      "BLUEPRINT_ID_MALFORMED",  "DESTINATIONS_REQUIRED",          "TOO_MANY_DESTINATIONS",
      "DESTINATION_REGION_UNSUPPORTED", "DESTINATION_SAME_AS_SOURCE", "DESTINATION_DUPLICATED",
      "CROSS_BORDER_SYNC",
  };
  return *rules;
}

std::string Region(FuzzedDataProvider& fdp) {
  const std::vector<RegionInfo>& regions = SyncRegions();
  if (fdp.ConsumeBool()) {
    return std::string(regions[fdp.ConsumeIntegralInRange<size_t>(0, regions.size() - 1)].id);
  }
  return fdp.ConsumeRandomLengthString(256);
}

// The documented id shape, written independently of regions.cc.
bool ModelBlueprintId(std::string_view id) {
  if (id.size() != 13 || id.compare(0, 5, "lhbp-") != 0) return false;
  for (size_t i = 5; i < id.size(); ++i) {
    const char c = id[i];
    const bool digit = c >= '0' && c <= '9';
    const bool lower = c >= 'a' && c <= 'z';
    if (!digit && !lower) return false;
  }
  return true;
}

// The SyncBlueprint API page's rules: a supported source, a well-formed id,
// 1..10 supported, distinct destinations, none the source, none across the
// mainland border.
bool ModelValid(const std::string& source, const std::string& id,
                const std::vector<std::string>& destinations) {
  const RegionInfo* src = FindSyncRegion(source);
  if (src == nullptr || !ModelBlueprintId(id)) return false;
  if (destinations.empty() || destinations.size() > 10) return false;
  std::set<std::string> seen;
  for (const std::string& d : destinations) {
    const RegionInfo* dst = FindSyncRegion(d);
    if (dst == nullptr || d == source || !seen.insert(d).second) return false;
    if (dst->china_mainland != src->china_mainland) return false;
  }
  return true;
}

bool SameViolations(const std::vector<FieldViolation>& a, const std::vector<FieldViolation>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].field != b[i].field || a[i].rule != b[i].rule ||
        a[i].description != b[i].description) {
      return false;
    }
  }
  return true;
}

bool ValidField(const std::string& field, size_t destinations) {
  if (field == "source_region" || field == "blueprint_id" || field == "destination_regions") {
    return true;
  }
  constexpr std::string_view kPrefix = "destination_regions[";
  if (field.size() <= kPrefix.size() + 1 || field.compare(0, kPrefix.size(), kPrefix) != 0 ||
      field.back() != ']') {
    return false;
  }
  const std::string digits = field.substr(kPrefix.size(), field.size() - kPrefix.size() - 1);
  if (digits.empty() || digits.size() > 3) return false;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  return std::stoul(digits) < destinations;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const std::string source = Region(fdp);
  const std::string blueprint_id = fdp.ConsumeBool() ? fdp.ConsumeRandomLengthString(64)
                                                     : fdp.ConsumeRandomLengthString(4096);
  const size_t count = fdp.ConsumeIntegralInRange<size_t>(0, kMaxDestinations);
  std::vector<std::string> destinations;
  for (size_t i = 0; i < count; ++i) destinations.push_back(Region(fdp));

  FUZZ_CHECK(IsValidBlueprintId(blueprint_id) == ModelBlueprintId(blueprint_id),
             "IsValidBlueprintId matches the documented id shape");

  const std::vector<FieldViolation> violations =
      ValidateSyncRequest(source, blueprint_id, destinations);
  std::set<std::pair<std::string, std::string>> seen;
  for (const FieldViolation& v : violations) {
    FUZZ_CHECK(!v.field.empty(), "violation has a field");
    FUZZ_CHECK(!v.rule.empty(), "violation has a rule");
    FUZZ_CHECK(!v.description.empty(), "violation has a description");
    FUZZ_CHECK_SHOW(v.description.size() <= kMaxDescription, "description is bounded",
                    v.description);
    FUZZ_CHECK(KnownRules().count(v.rule) == 1, "rule is one of the documented rules");
    FUZZ_CHECK(ValidField(v.field, destinations.size()), "field names a request field");
    FUZZ_CHECK(seen.emplace(v.field, v.rule).second, "each rule reported once per field");
  }
  FUZZ_CHECK(violations.empty() == ModelValid(source, blueprint_id, destinations),
             "no violations exactly when the documented rules hold");
  FUZZ_CHECK(SameViolations(violations, ValidateSyncRequest(source, blueprint_id, destinations)),
             "validation is deterministic");
  return 0;
}
