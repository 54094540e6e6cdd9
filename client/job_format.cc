#include "client/job_format.h"

#include <algorithm>
#include <map>
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

int SucceededCount(const v1::SyncJob& job) {
  return static_cast<int>(std::count_if(
      job.destinations().begin(), job.destinations().end(),
      [](const v1::Destination& d) { return d.state() == v1::Destination::SUCCEEDED; }));
}

}  // namespace

std::string OrDash(const std::string& s) { return s.empty() ? "-" : Printable(s); }

std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  std::vector<std::string> pairs;
  for (const auto& [key, value] : labels) {
    pairs.push_back(absl::StrCat(Printable(key, 256), "=", Printable(value, 256)));
  }
  std::sort(pairs.begin(), pairs.end());
  return absl::StrJoin(pairs, ", ");
}

std::string IndentLines(const std::string& lines) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(lines, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

std::string JobStateName(v1::SyncJob::State state) {
  const std::string& name = v1::SyncJob::State_Name(state);
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

std::string DestinationStateName(v1::Destination::State state) {
  const std::string& name = v1::Destination::State_Name(state);
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

bool IsTerminal(v1::SyncJob::State state) {
  return state == v1::SyncJob::SUCCEEDED || state == v1::SyncJob::FAILED ||
         state == v1::SyncJob::CANCELLED;
}

std::string CopyCleanupText(const v1::Destination& d) {
  switch (d.copy_cleanup()) {
    case v1::Destination::COPY_CLEANUP_UNSPECIFIED:
      return "";
    case v1::Destination::DELETE_PENDING:
      if (!d.has_cleanup_error()) return "deleting copy...";
      return absl::StrCat("deleting copy... (last attempt: ", FormatSyncError(d.cleanup_error()),
                          ")");
    case v1::Destination::DELETED: {
      const std::string when = FormatTimestamp(d.copy_delete_time());
      return when.empty() ? "copy deleted" : absl::StrCat("copy deleted ", when);
    }
    case v1::Destination::ALREADY_GONE:
      return "copy already gone";
    case v1::Destination::KEPT:
      return "copy kept";
    case v1::Destination::DELETE_ABANDONED:
      return absl::StrCat("copy NOT deleted: ", d.has_cleanup_error()
                                                    ? FormatSyncError(d.cleanup_error())
                                                    : "no error recorded");
    default:
      break;
  }
  // A value newer than this CLI.
  const std::string& name = v1::Destination::CopyCleanup_Name(d.copy_cleanup());
  return absl::StrCat("copy cleanup ",
                      name.empty() ? absl::StrCat(static_cast<int>(d.copy_cleanup())) : name);
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
  add("state reason", Printable(job.state_reason()));
  if (!job.blueprint_id().empty() || !job.source_region().empty()) {
    add("source", absl::StrCat(OrDash(job.blueprint_id()), " in ", OrDash(job.source_region())));
  }
  add("request id", Printable(job.request_id()));
  add("upstream request id", Printable(job.upstream_request_id()));
  add("retry of", Printable(job.retry_of()));
  add("creator", Printable(job.creator()));
  add("labels", FormatLabels(job.labels()));
  if (job.keep_failed_copies()) add("keep failed copies", "yes");
  add("created", FormatTimestamp(job.create_time()));
  add("submitted", FormatTimestamp(job.submit_time()));
  add("cancel requested", FormatTimestamp(job.cancel_time()));
  add("updated", FormatTimestamp(job.update_time()));
  add("ended", FormatTimestamp(job.end_time()));
  add("deadline", FormatTimestamp(job.deadline()));
  if (job.has_error()) add("error", FormatSyncError(job.error()));
  std::string out = FormatTable(fields);
  if (job.destinations_size() == 0) return out;
  std::vector<std::vector<std::string>> rows = {
      {"REGION", "STATE", "BLUEPRINT ID", "BLUEPRINT STATE", "UPDATED"}};
  std::vector<std::string> errors;
  std::vector<std::string> cleanups;
  for (const auto& d : job.destinations()) {
    rows.push_back({OrDash(d.region()), DestinationStateName(d.state()), OrDash(d.blueprint_id()),
                    OrDash(d.blueprint_state()), OrDash(FormatTimestamp(d.update_time()))});
    if (d.has_error()) {
      errors.push_back(absl::StrCat("  ", Printable(d.region()), ": ", FormatSyncError(d.error())));
    }
    if (const std::string cleanup = CopyCleanupText(d); !cleanup.empty()) {
      cleanups.push_back(absl::StrCat("  ", Printable(d.region()), ": ", cleanup));
    }
  }
  absl::StrAppend(&out, "destinations:\n", IndentLines(FormatTable(rows)));
  if (!errors.empty()) absl::StrAppend(&out, "errors:\n", absl::StrJoin(errors, "\n"), "\n");
  if (!cleanups.empty()) {
    absl::StrAppend(&out, "cleanup:\n", absl::StrJoin(cleanups, "\n"), "\n");
  }
  return out;
}

std::string FormatValidateOnlyText(const v1::SyncJob& job) {
  std::vector<std::string> regions;
  for (const auto& d : job.destinations()) regions.push_back(OrDash(d.region()));
  return absl::StrCat("valid: would copy ", OrDash(job.blueprint_id()), " in ",
                      OrDash(job.source_region()), " to ",
                      regions.empty() ? "-" : absl::StrJoin(regions, ", "), "; ", job.jobs_ahead(),
                      " job(s) ahead on this source\nnothing was created (--validate-only)\n");
}

std::string FormatJobListText(const v1::ListSyncJobsResponse& response, bool wide) {
  std::string out;
  if (response.sync_jobs().empty()) {
    out = "no sync jobs\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "STATE", "BLUEPRINT", "SOURCE", "DESTINATIONS", "CREATED"}};
    if (wide) {
      for (const char* column : {"ENDED", "CREATOR", "REQUEST ID", "RETRY OF", "LABELS"}) {
        rows[0].push_back(column);
      }
    }
    for (const auto& job : response.sync_jobs()) {
      std::vector<std::string> regions;
      for (const auto& d : job.destinations()) regions.push_back(Printable(d.region()));
      rows.push_back({OrDash(job.name()), JobStateName(job.state()), OrDash(job.blueprint_id()),
                      OrDash(job.source_region()),
                      absl::StrCat(SucceededCount(job), "/", job.destinations_size(), " ",
                                   absl::StrJoin(regions, ",")),
                      OrDash(FormatTimestamp(job.create_time()))});
      if (!wide) continue;
      // Sorted, as the map's order is not stable across processes.
      std::map<std::string, std::string> labels(job.labels().begin(), job.labels().end());
      std::vector<std::string> pairs;
      for (const auto& [key, value] : labels) pairs.push_back(absl::StrCat(key, "=", value));
      for (std::string cell : {FormatTimestamp(job.end_time()), job.creator(), job.request_id(),
                               job.retry_of(), absl::StrJoin(pairs, ",")}) {
        rows.back().push_back(OrDash(cell));
      }
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
    const std::string cleanup = CopyCleanupText(d);
    std::string outcome;
    if (d.state() == v1::Destination::FAILED) {
      outcome = d.has_error() ? FormatSyncError(d.error()) : "FAILED (no error recorded)";
    } else if (d.state() != v1::Destination::SUCCEEDED || !cleanup.empty()) {
      outcome = DestinationStateName(d.state());
    } else {
      continue;
    }
    if (!cleanup.empty()) absl::StrAppend(&outcome, "; ", cleanup);
    absl::StrAppend(&out, "  ", Printable(d.region()), ": ", outcome, "\n");
  }
  return out;
}

}  // namespace blueprintsync::cli
