#include "service/server/field_rules.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "service/common/display.h"

namespace blueprintsync::server {
namespace {

constexpr size_t kMaxLabelNameBytes = 63;
constexpr size_t kMaxLabelPrefixBytes = 253;

bool IsAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }
bool IsLowerAlnum(char c) {
  return absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'z');
}

// A label name, or a non-empty label value: at most 63 of [A-Za-z0-9._-],
// beginning and ending with an alphanumeric (Kubernetes' rule, so labels
// can be copied to and from Kubernetes objects).
bool IsLabelName(absl::string_view s) {
  if (s.empty() || s.size() > kMaxLabelNameBytes || !IsAlnum(s.front()) || !IsAlnum(s.back())) {
    return false;
  }
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; });
}

// A label key prefix as Kubernetes checks it (an RFC 1123 subdomain):
// lower-case dot-separated parts of [a-z0-9-], each beginning and ending
// with an alphanumeric, at most 253 bytes in all.
bool IsDnsSubdomain(absl::string_view s) {
  if (s.empty() || s.size() > kMaxLabelPrefixBytes) return false;
  for (absl::string_view part : absl::StrSplit(s, '.')) {
    if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
    for (char c : part) {
      if (!IsLowerAlnum(c) && c != '-') return false;
    }
  }
  return true;
}

bool IsLabelKey(absl::string_view key) {
  const size_t slash = key.find('/');
  if (slash == absl::string_view::npos) return IsLabelName(key);
  return IsDnsSubdomain(key.substr(0, slash)) && IsLabelName(key.substr(slash + 1));
}

// `labels["key"]`, with the key bounded and its control characters and
// quotes escaped, so the field name stays one short line.
std::string LabelField(absl::string_view key) {
  return absl::StrCat("labels[\"", absl::StrReplaceAll(Shown(key), {{"\"", "\\x22"}}), "\"]");
}

}  // namespace

std::vector<tencent::FieldViolation> ValidateSyncFields(
    std::optional<std::string_view> source_region, std::optional<std::string_view> blueprint_id,
    const google::protobuf::RepeatedPtrField<std::string>& destination_regions) {
  // Only the first kMaxDestinationRegions get the per-entry rules (one
  // violation each and a duplicate search that is quadratic in the count);
  // the count itself is reported as one violation, so the error stays
  // small and cheap.
  const int all = destination_regions.size();
  const int checked = std::min(all, tencent::kMaxDestinationRegions);
  std::vector<std::string> destinations(destination_regions.begin(),
                                        destination_regions.begin() + checked);
  auto violations = tencent::ValidateSyncRequest(source_region.value_or(""),
                                                 blueprint_id.value_or(""), destinations);
  // A field not asked about has only "required" violations, which do not
  // apply; an empty source also took no part in the destinations' checks.
  violations.erase(std::remove_if(violations.begin(), violations.end(),
                                  [&](const tencent::FieldViolation& v) {
                                    return (!source_region && v.field == "source_region") ||
                                           (!blueprint_id && v.field == "blueprint_id");
                                  }),
                   violations.end());
  if (all > checked) {
    auto first_entry = std::find_if(violations.begin(), violations.end(), [](const auto& v) {
      return absl::StartsWith(v.field, "destination_regions");
    });
    violations.insert(
        first_entry,
        {"destination_regions", "TOO_MANY_DESTINATIONS",
         absl::StrCat("destination_regions lists ", all, " regions; SyncBlueprint accepts at most ",
                      tencent::kMaxDestinationRegions, " per request.")});
  }
  return violations;
}

void ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels,
                    std::vector<tencent::FieldViolation>& violations) {
  using Entry = google::protobuf::Map<std::string, std::string>::value_type;
  std::vector<const Entry*> entries;
  entries.reserve(labels.size());
  for (const Entry& e : labels) entries.push_back(&e);
  const size_t checked = std::min(entries.size(), static_cast<size_t>(kMaxLabels));
  std::partial_sort(entries.begin(), entries.begin() + checked, entries.end(),
                    [](const Entry* a, const Entry* b) { return a->first < b->first; });
  if (entries.size() > checked) {
    violations.push_back({"labels", "TOO_MANY_LABELS",
                          absl::StrCat("labels has ", entries.size(), " entries; at most ",
                                       kMaxLabels, " are allowed.")});
  }
  for (size_t i = 0; i < checked; ++i) {
    const auto& [key, value] = *entries[i];
    if (!IsLabelKey(key)) {
      violations.push_back(
          {LabelField(key), "LABEL_KEY_MALFORMED",
           absl::StrCat("labels key \"", Shown(key),
                        "\" is not a label key: an optional DNS subdomain prefix (lower-case, at "
                        "most 253 characters) and \"/\", then a name of 1-63 characters "
                        "[A-Za-z0-9._-] beginning and ending with an alphanumeric.")});
    }
    if (!value.empty() && !IsLabelName(value)) {
      violations.push_back(
          {LabelField(key), "LABEL_VALUE_MALFORMED",
           absl::StrCat(LabelField(key), " value \"", Shown(value),
                        "\" is not a label value: at most 63 characters [A-Za-z0-9._-], "
                        "beginning and ending with an alphanumeric.")});
    }
  }
}

}  // namespace blueprintsync::server
