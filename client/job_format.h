// How the CLI shows jobs: the text views of `sync`, `get` and `list`, the
// one-line JSON form used by --output json, and the summary printed when a
// watched job ends. Pure functions of the protos, so tests pin the output.
#ifndef BLUEPRINTSYNC_CLIENT_JOB_FORMAT_H_
#define BLUEPRINTSYNC_CLIENT_JOB_FORMAT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "google/protobuf/map.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace blueprintsync::cli {

std::string JobStateName(blueprintsync::v1::SyncJob::State state);
std::string DestinationStateName(blueprintsync::v1::Destination::State state);
// SUCCEEDED, FAILED and CANCELLED: the job will not change any more (a
// CANCELLING job still is).
bool IsTerminal(blueprintsync::v1::SyncJob::State state);

// What happened to a destination's unwanted copy: "deleting copy...",
// "copy deleted 2026-11-27T22:01:05Z", "copy already gone", "copy kept",
// "copy NOT deleted: <error>"; "" when there is nothing to clean up.
std::string CopyCleanupText(const blueprintsync::v1::Destination& destination);

// RFC 3339 in UTC to the second, "2026-11-27T22:01:02Z"; "" when unset.
std::string FormatTimestamp(const google::protobuf::Timestamp& ts);
std::string FormatUtc(absl::Time t);
absl::Time ToTime(const google::protobuf::Timestamp& ts);

// Printable(s), or "-" for a field or cell that has no value (yet).
std::string OrDash(const std::string& s);
// "env=prod, team=web", sorted by key (map order is unspecified on the wire).
std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels);
// Every line indented two spaces, for a block under a heading such as
// "destinations:"; empty lines dropped.
std::string IndentLines(const std::string& lines);

// Left-aligned columns separated by two spaces; rows may be shorter than the
// header. Every line ends with '\n', trailing spaces trimmed.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// Multi-line description of one job (for `get`, `sync`, `cancel`, `retry`).
std::string FormatJobText(const blueprintsync::v1::SyncJob& job);
// The answer to `sync --validate-only`: "valid: would copy B in R to R1, R2;
// N job(s) ahead on this source" and a line saying nothing was created.
std::string FormatValidateOnlyText(const blueprintsync::v1::SyncJob& job);
// A table of jobs, "no sync jobs" when empty, then the next page token if any.
// `wide` (-o wide): also when each job ended, its creator, request id, the job
// it retries and its labels.
std::string FormatJobListText(const blueprintsync::v1::ListSyncJobsResponse& response,
                              bool wide = false);

// Protobuf JSON mapping (lowerCamelCase keys, default values omitted), on one
// line without the trailing '\n'.
absl::StatusOr<std::string> ToJsonLine(const google::protobuf::Message& message);

// "job syncJobs/x SUCCEEDED (2/2 destinations)\n", and for a job that did
// not succeed the job's own error and one line per destination that did not
// succeed: "  <region>: <error>" (FAILED) or "  <region>: CANCELLED", each
// followed by "; <copy cleanup>" when there is one.
std::string FormatSummary(const blueprintsync::v1::SyncJob& job);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_JOB_FORMAT_H_
