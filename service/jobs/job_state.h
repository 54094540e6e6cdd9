// Pure functions over SyncJob: how upstream BlueprintState values map to
// destination states, how a job's state follows from its destinations, and
// how an error Status becomes the SyncError stored on a job. Kept free of I/O
// so the rules can be tested exhaustively.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_STATE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_STATE_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace blueprintsync::jobs {

// NORMAL -> SUCCEEDED; SYNCING_FAILED, CREATEFAILED, OFFLINE, ISOLATING,
// ISOLATED, DELETING, DESTROYING (and any ISOLAT*/DELET* variant) -> FAILED;
// SYNCING and anything unknown -> SYNCING (pending until the job deadline).
v1::Destination::State DestinationStateFor(absl::string_view blueprint_state);

bool IsTerminal(v1::SyncJob::State state);
bool IsTerminal(v1::Destination::State state);

// The job state implied by its destinations once submitted: RUNNING while
// any destination is PENDING or SYNCING; then SUCCEEDED if all succeeded,
// else FAILED.
v1::SyncJob::State DeriveSubmittedJobState(const v1::SyncJob& job);

// Stable fingerprint of what a request asks for (not of request_id or
// validate_only): equal for equal source, blueprint, destination set (in
// any order), labels, keep_failed_copies, timeout, retried job and the
// policy that asks. A job without a policy keeps the fingerprint it had
// before policies existed, so stored request ids still match.
std::string RequestFingerprint(const v1::SyncBlueprintRequest& request,
                               const std::string& retry_of = "", const std::string& policy = "");
// Whether a stored fingerprint matches `request`: also accepts the format
// of earlier versions (source, blueprint and ordered destination list).
bool FingerprintMatches(const std::string& stored, const v1::SyncBlueprintRequest& request,
                        const std::string& retry_of = "", const std::string& policy = "");

// A stored error message is cut (and marked) at this many bytes.
inline constexpr size_t kMaxStoredErrorBytes = 2048;
// SyncError for a failed Status; takes Tencent code and RequestId from an
// ApiError payload when there is one. Every field is bounded and valid UTF-8.
v1::SyncError ToSyncError(const absl::Status& status);
// The inverse, for answering a caller with a job's stored error.
absl::Status FromSyncError(const v1::SyncError& error);

google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& t);
// "2026-12-02T06:44:33Z", as Tencent Cloud writes times, for logs and errors.
std::string TimeText(absl::Time t);

// An INVALID_ARGUMENT status that names the request field and the violated
// rule; the gRPC layer turns it into a google.rpc.BadRequest detail.
absl::Status InvalidField(absl::string_view field, absl::string_view rule,
                          absl::string_view description);
struct FieldRule {
  std::string field;
  std::string rule;
};
std::optional<FieldRule> GetFieldRule(const absl::Status& status);

// `status` with the name of the job it is about attached (as a payload), so
// the gRPC layer can put it in ErrorInfo metadata `job`. OK stays OK.
absl::Status WithJobName(absl::Status status, absl::string_view job_name);
// The job name attached by WithJobName, or "".
std::string GetJobName(const absl::Status& status);

// "syncJobs/" + a random UUID v4.
std::string NewJobName();
// True for "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in hex (any version).
bool IsUuid(absl::string_view text);

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_STATE_H_
