#include "client/policy_format.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/job_format.h"
#include "client/printable.h"
#include "client/rpc_error.h"

namespace blueprintsync::cli {
namespace {

namespace v1 = ::blueprintsync::v1;

std::string Regions(const v1::SyncPolicy& policy) {
  std::vector<std::string> regions;
  for (const auto& r : policy.destination_regions()) regions.push_back(Printable(r));
  return regions.empty() ? "-" : absl::StrJoin(regions, ", ");
}

std::string KeepVersionsText(int32_t keep) {
  if (keep <= 0) return "all";
  return absl::StrCat(keep, keep == 1 ? " version" : " versions", " per region");
}

// A region's error with what the controller will do about it.
std::string RegionErrorText(const v1::SyncPolicyRegion& r) {
  std::string text = FormatSyncError(r.last_error());
  if (r.failures() > 0) {
    absl::StrAppend(&text, "; ", r.failures(), r.failures() == 1 ? " failure" : " failures",
                    " in a row");
  }
  if (const std::string next = FormatTimestamp(r.next_attempt_time()); !next.empty()) {
    absl::StrAppend(&text, ", next attempt ", next);
  }
  return text;
}

}  // namespace

std::string PolicyRegionStateName(v1::SyncPolicyRegion::State state) {
  const std::string& name = v1::SyncPolicyRegion::State_Name(state);
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

std::string PolicySourceText(const v1::SyncPolicy& policy) {
  const std::string where = absl::StrCat(" in ", OrDash(policy.source_region()));
  switch (policy.source_case()) {
    case v1::SyncPolicy::kBlueprintName:
      return absl::StrCat("family ", OrDash(policy.blueprint_name()), where);
    case v1::SyncPolicy::kBlueprintId:
      return absl::StrCat(OrDash(policy.blueprint_id()), where);
    case v1::SyncPolicy::SOURCE_NOT_SET:
      break;
  }
  return absl::StrCat("-", where);
}

std::string InSyncCount(const v1::SyncPolicy& policy) {
  const auto in_sync = std::count_if(
      policy.regions().begin(), policy.regions().end(),
      [](const v1::SyncPolicyRegion& r) { return r.state() == v1::SyncPolicyRegion::IN_SYNC; });
  // Before the first pass there are no region entries yet; the destinations
  // say how many there will be.
  const int total = std::max(policy.regions_size(), policy.destination_regions_size());
  return absl::StrCat(in_sync, "/", total);
}

std::string FormatPolicyText(const v1::SyncPolicy& policy) {
  std::vector<std::vector<std::string>> fields;
  auto add = [&fields](const std::string& label, const std::string& value) {
    if (!value.empty()) fields.push_back({label + ":", value});
  };
  add("name", policy.name().empty() ? "(none: validate-only)" : Printable(policy.name()));
  add("source", PolicySourceText(policy));
  add("current source", Printable(policy.source_blueprint_id()));
  if (policy.has_source_error()) add("source error", FormatSyncError(policy.source_error()));
  add("destinations", Regions(policy));
  add("in sync", policy.in_sync() ? "yes" : absl::StrCat("no (", InSyncCount(policy), " regions)"));
  if (policy.paused()) add("paused", "yes: no upstream calls until resumed");
  if (policy.deleting()) add("deleting", "yes: the copies it made are being deleted");
  add("keep", KeepVersionsText(policy.keep_versions()));
  add("labels", FormatLabels(policy.labels()));
  add("creator", Printable(policy.creator()));
  add("etag", Printable(policy.etag()));
  add("created", FormatTimestamp(policy.create_time()));
  add("updated", FormatTimestamp(policy.update_time()));
  add("reconciled", FormatTimestamp(policy.reconcile_time()));
  std::string out = FormatTable(fields);
  if (policy.regions_size() == 0) return out;
  std::vector<std::vector<std::string>> rows = {
      {"REGION", "STATE", "SERVING COPY", "OF SOURCE", "COPIES", "LAST JOB", "CONFIRMED"}};
  std::vector<std::string> errors;
  for (const auto& r : policy.regions()) {
    rows.push_back({OrDash(r.region()), PolicyRegionStateName(r.state()), OrDash(r.blueprint_id()),
                    OrDash(r.serving_source_blueprint_id()), absl::StrCat(r.copies_size()),
                    OrDash(r.last_job()), OrDash(FormatTimestamp(r.confirm_time()))});
    if (r.has_last_error()) {
      errors.push_back(absl::StrCat("  ", Printable(r.region()), ": ", RegionErrorText(r)));
    }
  }
  absl::StrAppend(&out, "regions:\n", IndentLines(FormatTable(rows)));
  if (!errors.empty()) absl::StrAppend(&out, "errors:\n", absl::StrJoin(errors, "\n"), "\n");
  return out;
}

std::string FormatPolicyValidateOnlyText(const v1::SyncPolicy& policy) {
  return absl::StrCat("valid: would keep ", PolicySourceText(policy), " in ", Regions(policy),
                      " (keep ", KeepVersionsText(policy.keep_versions()),
                      policy.paused() ? "; paused" : "",
                      ")\nnothing was created (--validate-only)\n");
}

std::string FormatPolicyListText(const v1::ListSyncPoliciesResponse& response) {
  std::vector<std::string> blocks;
  for (const auto& policy : response.sync_policies()) blocks.push_back(FormatPolicyText(policy));
  std::string out = blocks.empty() ? "no sync policies\n" : absl::StrJoin(blocks, "\n");
  if (!response.next_page_token().empty()) {
    absl::StrAppend(&out, "next page token: ", Printable(response.next_page_token()), "\n");
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> PolicyProgressItems(const v1::SyncPolicy& policy) {
  std::vector<std::pair<std::string, std::string>> items;
  std::string whole;
  if (policy.deleting()) {
    whole = "deleting";
  } else if (policy.has_source_error()) {
    whole = absl::StrCat("source not resolved: ", FormatSyncError(policy.source_error()));
  } else if (policy.in_sync()) {
    whole = absl::StrCat("in sync with ", OrDash(policy.source_blueprint_id()), " (",
                         InSyncCount(policy), " regions)");
  } else {
    whole = absl::StrCat("source ", OrDash(policy.source_blueprint_id()), ", ", InSyncCount(policy),
                         " regions in sync");
  }
  if (policy.paused()) whole = absl::StrCat("paused, ", whole);
  items.emplace_back("", std::move(whole));
  for (const auto& r : policy.regions()) {
    std::string line = absl::StrCat(OrDash(r.region()), " ", PolicyRegionStateName(r.state()));
    if (!r.blueprint_id().empty()) absl::StrAppend(&line, " copy ", Printable(r.blueprint_id()));
    if (!r.last_job().empty()) absl::StrAppend(&line, " job ", Printable(r.last_job()));
    if (r.has_last_error()) absl::StrAppend(&line, " error: ", RegionErrorText(r));
    items.emplace_back(r.region(), std::move(line));
  }
  return items;
}

std::string FormatPolicySummary(const v1::SyncPolicy& policy) {
  if (policy.in_sync()) {
    return absl::StrCat("policy ", OrDash(policy.name()),
                        " in sync: ", OrDash(policy.source_blueprint_id()), " in ",
                        InSyncCount(policy), " regions\n");
  }
  std::string out = absl::StrCat("policy ", OrDash(policy.name()), " not in sync (",
                                 InSyncCount(policy), " regions)\n");
  if (policy.has_source_error()) {
    absl::StrAppend(&out, "  source: ", FormatSyncError(policy.source_error()), "\n");
  }
  for (const auto& r : policy.regions()) {
    if (r.state() == v1::SyncPolicyRegion::IN_SYNC) continue;
    absl::StrAppend(&out, "  ", OrDash(r.region()), ": ", PolicyRegionStateName(r.state()));
    if (r.has_last_error()) absl::StrAppend(&out, ": ", RegionErrorText(r));
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace blueprintsync::cli
