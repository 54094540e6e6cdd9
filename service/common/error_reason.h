// The google.rpc.ErrorInfo reason of an error the service raises itself.
// Callers branch on the reason, not the message, so it is attached where
// the error is made (as a status payload that travels with it through the
// engine) rather than guessed later from the code or the text. The gRPC
// layer (service/server/grpc_errors.cc) puts it in ErrorInfo; README's
// "Error reasons" table documents each one. Header-only: the job and policy
// stores, which make some of these errors, do not link bps_common.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_ERROR_REASON_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_ERROR_REASON_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace blueprintsync {

namespace reason {
// FAILED_PRECONDITION: the job is in the wrong state for the call.
inline constexpr char kJobAlreadyFinished[] = "JOB_ALREADY_FINISHED";         // cancel
inline constexpr char kJobNotFinished[] = "JOB_NOT_FINISHED";                 // retry, delete
inline constexpr char kNothingToRetry[] = "NOTHING_TO_RETRY";                 // retry
inline constexpr char kJobCopiesBeingDeleted[] = "JOB_COPIES_BEING_DELETED";  // delete
// FAILED_PRECONDITION: the job (this request's) failed for good.
inline constexpr char kJobFailed[] = "JOB_FAILED";
// FAILED_PRECONDITION: the source blueprint cannot be synced (validate_only).
inline constexpr char kBlueprintNotPrivate[] = "BLUEPRINT_NOT_PRIVATE";
inline constexpr char kBlueprintNotNormal[] = "BLUEPRINT_NOT_NORMAL";
// UNAVAILABLE: try again shortly.
inline constexpr char kStoreUnavailable[] = "STORE_UNAVAILABLE";
// Any other code: the database under the job or policy store failed.
inline constexpr char kStoreError[] = "STORE_ERROR";
inline constexpr char kJobBusy[] = "JOB_BUSY";
inline constexpr char kCancelNotConfirmed[] = "CANCEL_NOT_CONFIRMED";
inline constexpr char kShuttingDown[] = "SHUTTING_DOWN";
// FAILED_PRECONDITION: this replica may not write (another one leads).
inline constexpr char kNotLeader[] = "NOT_LEADER";
// RESOURCE_EXHAUSTED: the server holds too many unread answers.
inline constexpr char kResponseBudgetExceeded[] = "RESPONSE_BUDGET_EXCEEDED";
// Replication policies.
inline constexpr char kEtagMismatch[] = "ETAG_MISMATCH";               // ABORTED
inline constexpr char kConcurrentUpdate[] = "CONCURRENT_UPDATE";       // ABORTED
inline constexpr char kPolicyBeingDeleted[] = "POLICY_BEING_DELETED";  // FAILED_PRECONDITION
inline constexpr char kTooManyPolicies[] = "TOO_MANY_POLICIES";        // RESOURCE_EXHAUSTED
}  // namespace reason

inline constexpr char kReasonPayloadUrl[] = "type.googleapis.com/blueprintsync.internal.Reason";

// `status` with `reason` attached (replacing any earlier one). OK stays OK.
inline absl::Status WithReason(absl::Status status, absl::string_view reason) {
  if (!status.ok()) status.SetPayload(kReasonPayloadUrl, absl::Cord(reason));
  return status;
}

// The reason attached by WithReason, or "".
inline std::string GetReason(const absl::Status& status) {
  const auto payload = status.GetPayload(kReasonPayloadUrl);
  return payload ? std::string(*payload) : std::string();
}

// An error of the database under a store (SQLite, PostgreSQL): its code is
// the database's (a full disk is RESOURCE_EXHAUSTED, a refused login
// PERMISSION_DENIED), so the reason says it is the store's and not, say,
// the caller's permission.
inline absl::Status StoreError(absl::Status status) {
  const bool passes = status.code() == absl::StatusCode::kUnavailable;
  return WithReason(std::move(status), passes ? reason::kStoreUnavailable : reason::kStoreError);
}

}  // namespace blueprintsync

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_ERROR_REASON_H_
