// Pure rules for the end of a job's life, kept free of I/O so they can be
// tested exhaustively: which copies the service deletes and when, how a
// cancel plays out in each submission phase, and which code a job that
// failed for good answers with.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_LIFECYCLE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_LIFECYCLE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "service/jobs/job_store.h"

namespace blueprintsync::jobs {

// States in which DeleteBlueprints accepts a blueprint: NORMAL, ISOLATED,
// CREATEFAILED, SYNCING_FAILED. A copy in any other state (SYNCING above
// all) must wait.
bool IsDeletableState(absl::string_view blueprint_state);

// Whether the service may delete this destination's copy: the id was
// recorded on the job by the service and is not the job's source. Anything
// else is never deleted, whatever the record says.
bool MayDeleteCopy(const v1::SyncJob& job, const v1::Destination& destination);

// A destination has just failed: if it has a copy upstream, the copy is
// marked DELETE_PENDING, or KEPT when the job keeps failed copies.
void MarkFailedCopy(const v1::SyncJob& job, v1::Destination& destination);

// After the destinations of a submitted job changed: a CANCELLING job is
// settled (SettleCancel); any other takes the state its destinations imply
// (DeriveSubmittedJobState), with end_time once terminal.
void UpdateSubmittedJobState(JobRecord& record, absl::Time now);

// Carries a cancel through as far as the job's submission phase allows;
// does nothing unless the job is CANCELLING. Unfinished and succeeded
// destinations become CANCELLED; once the copies are known (SUBMITTED),
// each becomes DELETE_PENDING. The job is CANCELLED when nothing can exist
// upstream (never sent, or rejected) or every copy is settled; it stays
// CANCELLING while a submission's outcome is unknown or a copy is pending.
void SettleCancel(JobRecord& record, absl::Time now);

// The error a job that failed for good answers with, now and on every
// repeat of its request_id. A code callers retry with the same request
// (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED, CANCELLED)
// becomes FAILED_PRECONDITION, naming the original code, so no retry loop
// replays it forever; other codes (INTERNAL: the service's own credentials
// are wrong), and the Tencent code and RequestId, are kept. A
// FAILED_PRECONDITION it returns has reason JOB_FAILED unless it had a more
// specific one (error_reason.h).
absl::Status PermanentFailure(const absl::Status& error);

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_LIFECYCLE_H_
