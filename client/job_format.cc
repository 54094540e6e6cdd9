#include "client/job_format.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/printable.h"
#include "client/rpc_error.h"
#include "google/protobuf/util/json_util.h"

namespace blueprintsync::cli {
namespace {

namespace v1 = ::blueprintsync::v1;

std::string OrDash(const std::string& s) { return s.empty() ? "-" : Printable(s); }

int SucceededCount(const v1::SyncJob& job) {
  return static_cast<int>(std::count_if(
      job.destinations().begin(), job.destinations().end(),
      [](const v1::Destination& d) { return d.state() == v1::Destination::SUCCEEDED; }));
}

}  // namespace

std::string JobStateName(v1::SyncJob::State state) {
  const std::string& name = v1::SyncJob::State_Name(state);
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

std::string DestinationStateName(v1::Destination::State state) {
  const std::string& name = v1::Destination::State_Name(state);
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

bool IsTerminal(v1::SyncJob::State state) {
  return state == v1::SyncJob::SUCCEEDED || state == v1::SyncJob::FAILED;
}

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "";
  return FormatUtc(ToTime(ts));
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string FormatJobText(const v1::SyncJob& job) {
  std::vector<std::vector<std::string>> fields;
  auto add = [&fields](const std::string& label, const std::string& value) {
    if (!value.empty()) fields.push_back({label + ":", value});
  };
  add("name", job.name().empty() ? "(none: validate-only)" : Printable(job.name()));
  if (job.state() != v1::SyncJob::STATE_UNSPECIFIED) add("state", JobStateName(job.state()));
  if (!job.blueprint_id().empty() || !job.source_region().empty()) {
    add("source", absl::StrCat(OrDash(job.blueprint_id()), " in ", OrDash(job.source_region())));
  }
  add("request id", Printable(job.request_id()));
  add("upstream request id", Printable(job.upstream_request_id()));
  add("created", FormatTimestamp(job.create_time()));
  add("submitted", FormatTimestamp(job.submit_time()));
  add("updated", FormatTimestamp(job.update_time()));
  add("ended", FormatTimestamp(job.end_time()));
  add("deadline", FormatTimestamp(job.deadline()));
  if (job.has_error()) add("error", FormatSyncError(job.error()));
  std::string out = FormatTable(fields);
  if (job.destinations_size() == 0) return out;
  std::vector<std::vector<std::string>> rows = {
      {"REGION", "STATE", "BLUEPRINT ID", "BLUEPRINT STATE", "UPDATED"}};
  std::vector<std::string> errors;
  for (const auto& d : job.destinations()) {
    rows.push_back({OrDash(d.region()), DestinationStateName(d.state()), OrDash(d.blueprint_id()),
                    OrDash(d.blueprint_state()), OrDash(FormatTimestamp(d.update_time()))});
    if (d.has_error()) {
      errors.push_back(absl::StrCat("  ", Printable(d.region()), ": ", FormatSyncError(d.error())));
    }
  }
  absl::StrAppend(&out, "destinations:\n");
  std::string table = FormatTable(rows);
  // Indent the table under "destinations:".
  std::string indented;
  for (absl::string_view line : absl::StrSplit(table, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&indented, "  ", line, "\n");
  }
  absl::StrAppend(&out, indented);
  if (!errors.empty()) absl::StrAppend(&out, "errors:\n", absl::StrJoin(errors, "\n"), "\n");
  return out;
}

std::string FormatJobListText(const v1::ListSyncJobsResponse& response) {
  std::string out;
  if (response.sync_jobs().empty()) {
    out = "no sync jobs\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "STATE", "BLUEPRINT", "SOURCE", "DESTINATIONS", "CREATED"}};
    for (const auto& job : response.sync_jobs()) {
      std::vector<std::string> regions;
      for (const auto& d : job.destinations()) regions.push_back(Printable(d.region()));
      rows.push_back({OrDash(job.name()), JobStateName(job.state()), OrDash(job.blueprint_id()),
                      OrDash(job.source_region()),
                      absl::StrCat(SucceededCount(job), "/", job.destinations_size(), " ",
                                   absl::StrJoin(regions, ",")),
                      OrDash(FormatTimestamp(job.create_time()))});
    }
    out = FormatTable(rows);
  }
  if (!response.next_page_token().empty()) {
    absl::StrAppend(&out, "next page token: ", Printable(response.next_page_token()), "\n");
  }
  return out;
}

absl::StatusOr<std::string> ToJsonLine(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = false;
  options.preserve_proto_field_names = false;  // lowerCamelCase, as grpcurl prints
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the reply as JSON: ", std::string(status.message())));
  }
  return out;
}

std::string FormatSummary(const v1::SyncJob& job) {
  std::string out =
      absl::StrCat("job ", Printable(job.name()), " ", JobStateName(job.state()), " (",
                   SucceededCount(job), "/", job.destinations_size(), " destinations)\n");
  if (job.state() == v1::SyncJob::SUCCEEDED) return out;
  if (job.has_error()) absl::StrAppend(&out, "  job: ", FormatSyncError(job.error()), "\n");
  for (const auto& d : job.destinations()) {
    if (d.state() != v1::Destination::FAILED) continue;
    absl::StrAppend(&out, "  ", Printable(d.region()), ": ",
                    d.has_error() ? FormatSyncError(d.error()) : "FAILED (no error recorded)",
                    "\n");
  }
  return out;
}

}  // namespace blueprintsync::cli
