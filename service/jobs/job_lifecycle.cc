#include "service/jobs/job_lifecycle.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/common/error_reason.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::jobs {

bool IsDeletableState(absl::string_view s) {
  return s == "NORMAL" || s == "ISOLATED" || s == "CREATEFAILED" || s == "SYNCING_FAILED";
}

bool MayDeleteCopy(const v1::SyncJob& job, const v1::Destination& d) {
  const std::string& id = d.blueprint_id();
  return absl::StartsWith(id, "lhbp-") && id.size() > 5 && id != job.blueprint_id() &&
         d.region() != job.source_region();
}

void MarkFailedCopy(const v1::SyncJob& job, v1::Destination& d) {
  if (d.blueprint_id().empty() || d.copy_cleanup() != v1::Destination::COPY_CLEANUP_UNSPECIFIED) {
    return;
  }
  d.set_copy_cleanup(job.keep_failed_copies() || !MayDeleteCopy(job, d)
                         ? v1::Destination::KEPT
                         : v1::Destination::DELETE_PENDING);
}

void UpdateSubmittedJobState(JobRecord& record, absl::Time now) {
  v1::SyncJob* job = record.mutable_job();
  if (job->state() == v1::SyncJob::CANCELLING) {
    SettleCancel(record, now);
    return;
  }
  job->set_state(DeriveSubmittedJobState(*job));
  if (IsTerminal(job->state()) && !job->has_end_time()) *job->mutable_end_time() = ToProto(now);
}

void SettleCancel(JobRecord& record, absl::Time now) {
  v1::SyncJob* job = record.mutable_job();
  if (job->state() != v1::SyncJob::CANCELLING) return;
  if (!job->has_cancel_time()) *job->mutable_cancel_time() = ToProto(now);
  const JobRecord::SubmitPhase phase = record.phase();
  const bool copies_known = phase == JobRecord::SUBMITTED;
  const bool nothing_sent = phase == JobRecord::NOT_SUBMITTED || phase == JobRecord::REJECTED;
  bool pending = false;
  for (auto& d : *job->mutable_destinations()) {
    if (d.state() != v1::Destination::FAILED && d.state() != v1::Destination::CANCELLED) {
      d.set_state(v1::Destination::CANCELLED);
      *d.mutable_update_time() = ToProto(now);
    }
    if (copies_known && !d.blueprint_id().empty() &&
        d.copy_cleanup() == v1::Destination::COPY_CLEANUP_UNSPECIFIED) {
      // A cancel deletes every copy the job made, kept failures aside.
      d.set_copy_cleanup(MayDeleteCopy(*job, d) ? v1::Destination::DELETE_PENDING
                                                : v1::Destination::KEPT);
    }
    pending |= d.copy_cleanup() == v1::Destination::DELETE_PENDING;
  }
  if ((copies_known && !pending) || nothing_sent) {
    job->set_state(v1::SyncJob::CANCELLED);
    *job->mutable_end_time() = ToProto(now);
  }
}

absl::Status PermanentFailure(const absl::Status& error) {
  switch (error.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kCancelled:
      break;
    case absl::StatusCode::kFailedPrecondition:
      // Already permanent (e.g. a stored one, answered again): says so
      // unless it has a more specific reason.
      return GetReason(error).empty() ? WithReason(error, reason::kJobFailed) : error;
    default:
      return error;
  }
  absl::Status permanent(
      absl::StatusCode::kFailedPrecondition,
      absl::StrCat("the job failed for good (", absl::StatusCodeToString(error.code()),
                   "); send a new request to try again: ", error.message()));
  error.ForEachPayload([&permanent](absl::string_view type_url, const absl::Cord& payload) {
    permanent.SetPayload(type_url, payload);
  });
  // The job's end, whatever the transient error's own reason was.
  return WithReason(std::move(permanent), reason::kJobFailed);
}

}  // namespace blueprintsync::jobs
