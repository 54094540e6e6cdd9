#include "service/server/policy_validation.h"

#include <algorithm>
#include <iterator>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/common/display.h"
#include "service/jobs/job_state.h"
#include "service/policies/policy_service.h"
#include "service/policies/policy_store.h"
#include "service/server/field_rules.h"

namespace blueprintsync::server {
namespace {

constexpr absl::string_view kPolicyPrefix = "syncPolicies/";
constexpr size_t kMinPolicyIdBytes = 4;
constexpr size_t kMaxPolicyIdBytes = 63;
// More paths than fields exist can only repeat or misspell them; beyond
// this many only the count is reported.
constexpr int kMaxMaskPaths = 16;
constexpr absl::string_view kIdRule =
    "4-63 characters, lower-case letters, digits and hyphens, beginning with a letter and not "
    "ending with a hyphen (AIP-122)";

bool IsPolicyId(absl::string_view id) {
  if (id.size() < kMinPolicyIdBytes || id.size() > kMaxPolicyIdBytes) return false;
  if (!absl::ascii_islower(static_cast<unsigned char>(id.front())) || id.back() == '-') {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return absl::ascii_islower(u) || absl::ascii_isdigit(u) || c == '-';
  });
}

std::optional<tencent::FieldViolation> ValidatePolicyId(const std::string& id) {
  if (id.empty()) {
    return tencent::FieldViolation{"sync_policy_id", "SYNC_POLICY_ID_REQUIRED",
                                   absl::StrCat("sync_policy_id is required: ", kIdRule, ".")};
  }
  if (IsPolicyId(id)) return std::nullopt;
  return tencent::FieldViolation{
      "sync_policy_id", "SYNC_POLICY_ID_MALFORMED",
      absl::StrCat("sync_policy_id \"", Shown(id), "\" is not a policy id: ", kIdRule, ".")};
}

tencent::FieldViolation ToViolation(const absl::Status& status, absl::string_view field,
                                    absl::string_view rule) {
  if (auto known = jobs::GetFieldRule(status)) {
    return {known->field, known->rule, std::string(status.message())};
  }
  return {std::string(field), std::string(rule), std::string(status.message())};
}

// A family name: 1-60 characters (UTF-8 code points; gRPC has already
// refused invalid UTF-8 in a string field) and no control characters (C0,
// DEL or C1), which could not be typed into the console and would break
// log lines and terminals.
void ValidateBlueprintName(const std::string& name,
                           std::vector<tencent::FieldViolation>& violations) {
  if (name.empty()) {
    violations.push_back({"blueprint_name", "BLUEPRINT_NAME_REQUIRED",
                          absl::StrCat("blueprint_name is empty: it names the image family (1-",
                                       kMaxBlueprintNameCharacters, " characters).")});
    return;
  }
  size_t characters = 0;
  bool control = false;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto u = static_cast<unsigned char>(name[i]);
    if ((u & 0xc0) != 0x80) ++characters;
    if (u < 0x20 || u == 0x7f) control = true;
    // U+0080..U+009F are encoded as 0xC2 0x80..0x9F.
    if (u == 0xc2 && i + 1 < name.size()) {
      const auto next = static_cast<unsigned char>(name[i + 1]);
      if (next >= 0x80 && next <= 0x9f) control = true;
    }
  }
  if (characters > static_cast<size_t>(kMaxBlueprintNameCharacters)) {
    violations.push_back(
        {"blueprint_name", "BLUEPRINT_NAME_TOO_LONG",
         absl::StrCat("blueprint_name \"", Shown(name), "\" has ", characters,
                      " characters; at most ", kMaxBlueprintNameCharacters, " are allowed.")});
  }
  if (control) {
    violations.push_back(
        {"blueprint_name", "BLUEPRINT_NAME_MALFORMED",
         absl::StrCat("blueprint_name \"", Shown(name),
                      "\" contains control characters; a blueprint name is printable text.")});
  }
}

void ValidateKeepVersions(int32_t keep_versions, std::vector<tencent::FieldViolation>& violations) {
  if (keep_versions >= 0 && keep_versions <= kMaxKeepVersions) return;
  violations.push_back({"keep_versions", "KEEP_VERSIONS_OUT_OF_RANGE",
                        absl::StrCat("keep_versions ", keep_versions,
                                     " is not from 0 (keep all) to ", kMaxKeepVersions, ".")});
}

void Append(std::vector<tencent::FieldViolation>& to, std::vector<tencent::FieldViolation> from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

void ValidateName(const std::string& name, std::vector<tencent::FieldViolation>& violations) {
  if (absl::Status s = ValidatePolicyName(name); !s.ok()) {
    violations.push_back(ToViolation(s, "name", "NAME_MALFORMED"));
  }
}

// An etag, when set, is the revision the caller read.
void ValidateEtag(const std::string& etag, std::optional<int64_t>* expected_revision,
                  std::vector<tencent::FieldViolation>& violations) {
  if (etag.empty()) return;
  auto revision = policies::ParsePolicyEtag(etag, "etag");
  if (!revision.ok()) {
    violations.push_back(ToViolation(revision.status(), "etag", "ETAG_MALFORMED"));
    return;
  }
  *expected_revision = *revision;
}

bool IsUpdatable(absl::string_view path) {
  return std::any_of(std::begin(policies::kUpdatablePolicyFields),
                     std::end(policies::kUpdatablePolicyFields),
                     [path](const char* field) { return path == field; });
}

// The mask's paths as PolicyService::Update takes them (kUpdatablePolicyFields
// order, each once), or its violations.
std::vector<std::string> ValidateMask(const google::protobuf::FieldMask& mask, bool has_mask,
                                      std::vector<tencent::FieldViolation>& violations) {
  if (!has_mask || mask.paths().empty()) {
    violations.push_back(
        {"update_mask", "UPDATE_MASK_REQUIRED",
         "update_mask is required: list the fields to change (destination_regions, "
         "keep_versions, paused, labels), or \"*\" for all of them."});
    return {};
  }
  const int all = mask.paths_size();
  const int checked = std::min(all, kMaxMaskPaths);
  if (all > checked) {
    violations.push_back({"update_mask", "TOO_MANY_PATHS",
                          absl::StrCat("update_mask lists ", all, " paths; at most ", kMaxMaskPaths,
                                       " are allowed.")});
  }
  std::set<std::string> asked;
  for (int i = 0; i < checked; ++i) {
    const std::string& path = mask.paths(i);
    const std::string field = absl::StrCat("update_mask.paths[", i, "]");
    if (path == "*") {
      for (const char* f : policies::kUpdatablePolicyFields) asked.insert(f);
    } else if (path == "source_region" || path == "blueprint_id" || path == "blueprint_name") {
      violations.push_back(
          {field, "SOURCE_IMMUTABLE",
           absl::StrCat(field, " \"", path,
                        "\": the source of a policy (source_region, blueprint_id or "
                        "blueprint_name) cannot change; create another policy instead.")});
    } else if (IsUpdatable(path)) {
      asked.insert(path);
    } else {
      violations.push_back(
          {field, "UPDATE_MASK_PATH_UNKNOWN",
           absl::StrCat(field, " \"", Shown(path),
                        "\" is not a field UpdateSyncPolicy can change (destination_regions, "
                        "keep_versions, paused, labels, or \"*\" for all of them).")});
    }
  }
  std::vector<std::string> paths;
  for (const char* f : policies::kUpdatablePolicyFields) {
    if (asked.count(f)) paths.push_back(f);
  }
  return paths;
}

}  // namespace

absl::Status ValidatePolicyName(const std::string& name) {
  if (name.empty()) return jobs::InvalidField("name", "NAME_REQUIRED", "name is required");
  if (!absl::StartsWith(name, kPolicyPrefix) ||
      !IsPolicyId(absl::string_view(name).substr(kPolicyPrefix.size()))) {
    return jobs::InvalidField(
        "name", "NAME_MALFORMED",
        absl::StrCat("name \"", Shown(name), "\" is not of the form syncPolicies/{id}, the id ",
                     kIdRule));
  }
  return absl::OkStatus();
}

std::vector<tencent::FieldViolation> ValidateCreatePolicy(
    const v1::CreateSyncPolicyRequest& request) {
  std::vector<tencent::FieldViolation> violations;
  if (auto v = ValidatePolicyId(request.sync_policy_id())) violations.push_back(*std::move(v));
  const v1::SyncPolicy& p = request.sync_policy();
  const bool fixed = p.source_case() == v1::SyncPolicy::kBlueprintId;
  Append(violations, ValidateSyncFields(
                         p.source_region(),
                         fixed ? std::optional<std::string_view>(p.blueprint_id()) : std::nullopt,
                         p.destination_regions()));
  if (p.source_case() == v1::SyncPolicy::kBlueprintName) {
    ValidateBlueprintName(p.blueprint_name(), violations);
  } else if (p.source_case() == v1::SyncPolicy::SOURCE_NOT_SET) {
    violations.push_back(
        {"source", "SOURCE_REQUIRED",
         "the source is required: set blueprint_id (one fixed custom blueprint) or "
         "blueprint_name (the newest NORMAL blueprint with that name: an image family)."});
  }
  ValidateKeepVersions(p.keep_versions(), violations);
  ValidateLabels(p.labels(), violations);
  return violations;
}

v1::SyncPolicy NewPolicySpec(const v1::CreateSyncPolicyRequest& request) {
  const v1::SyncPolicy& asked = request.sync_policy();
  v1::SyncPolicy spec;
  spec.set_name(absl::StrCat(kPolicyPrefix, request.sync_policy_id()));
  spec.set_source_region(asked.source_region());
  if (asked.source_case() == v1::SyncPolicy::kBlueprintId)
    spec.set_blueprint_id(asked.blueprint_id());
  if (asked.source_case() == v1::SyncPolicy::kBlueprintName) {
    spec.set_blueprint_name(asked.blueprint_name());
  }
  *spec.mutable_destination_regions() = asked.destination_regions();
  spec.set_keep_versions(asked.keep_versions());
  spec.set_paused(asked.paused());
  *spec.mutable_labels() = asked.labels();
  return spec;
}

std::vector<tencent::FieldViolation> ValidateUpdatePolicy(
    const v1::UpdateSyncPolicyRequest& request, PolicyUpdate* update) {
  std::vector<tencent::FieldViolation> violations;
  const v1::SyncPolicy& p = request.sync_policy();
  ValidateName(p.name(), violations);
  std::vector<std::string> paths =
      ValidateMask(request.update_mask(), request.has_update_mask(), violations);
  std::optional<int64_t> expected_revision;
  ValidateEtag(p.etag(), &expected_revision, violations);
  // The fields that change must be valid as on create; the others are not
  // applied, so whatever they hold does not matter.
  for (const std::string& path : paths) {
    if (path == "destination_regions") {
      Append(violations, ValidateSyncFields(std::nullopt, std::nullopt, p.destination_regions()));
    } else if (path == "keep_versions") {
      ValidateKeepVersions(p.keep_versions(), violations);
    } else if (path == "labels") {
      ValidateLabels(p.labels(), violations);
    }
  }
  if (violations.empty()) *update = PolicyUpdate{p, std::move(paths), expected_revision};
  return violations;
}

std::vector<tencent::FieldViolation> ValidateDeletePolicy(
    const v1::DeleteSyncPolicyRequest& request, std::optional<int64_t>* expected_revision) {
  std::vector<tencent::FieldViolation> violations;
  ValidateName(request.name(), violations);
  ValidateEtag(request.etag(), expected_revision, violations);
  return violations;
}

}  // namespace blueprintsync::server
