// Submitter: sends each job's SyncBlueprint call at most once. The job is
// recorded SUBMITTING (durably) before the call; the call's outcome decides
// what follows: the job is tracked (accepted), tried again later (certainly
// not executed: throttled, unreachable, source busy), handed to the
// reconciler (outcome unknown: it may have executed, so it is never resent
// blindly), or failed (rejected).
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_SUBMITTER_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_SUBMITTER_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/common/executor.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_table.h"
#include "service/jobs/job_writer.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::jobs {

// How a failed SyncBlueprint attempt is handled.
enum class SubmitFailure {
  kNotExecutedTransient,  // certainly not executed, worth trying again
  kSourceBusy,            // Tencent says the source image is busy
  kOutcomeUnknown,        // may have executed: reconcile, never resend blindly
  kRejected,              // not executed, and trying again will not help
};
SubmitFailure ClassifySubmitFailure(const absl::Status& status);

// Why a SyncBlueprint answer cannot be recorded as it is ("" if it can):
// every region asked for must come back exactly once, with a blueprint id,
// and no other region. Anything else means the call executed but the answer
// does not say which copy is where, which the reconciler settles.
std::string AnswerMismatch(const tencent::SyncBlueprintRequest& request,
                           const tencent::SyncBlueprintResponse& response);

class Submitter {
 public:
  Submitter(JobTable* table, JobWriter* writer, JobSteps* steps, tencent::LighthouseClient* client)
      : table_(table), writer_(writer), steps_(steps), client_(client) {}

  // Submits `name` if it is due: active, first on its source, not yet sent.
  void Run(const std::string& name);
  // Run for a job the intake has just placed: its durable SUBMITTING write
  // on this thread (which also makes the job's new record durable, see
  // JobStore::CreateJobSyncLater), then the call on one of `calls`, which
  // may wait for rate-limit capacity without holding the intake up.
  // True once the SUBMITTING mark is written (whether or not the call could
  // be handed over).
  bool RunHandingOffTheCall(const std::string& name, Executor* calls);

 private:
  struct Attempt;
  // What follows a failed attempt: decided with the table's lock held, done
  // after it is let go.
  struct Next {
    enum Then { kSubmit, kReconcile, kFail, kCommit } then;
    absl::Time when;
  };
  // Records the attempt (SUBMITTING) in memory; false if the job is not due.
  bool Begin(const std::string& name, Attempt* attempt);
  // Begin, then the durable SUBMITTING write; the attempt to send, or
  // nullopt if nothing may be sent (what follows is already arranged).
  std::optional<Attempt> Prepare(const std::string& name);
  // Sends the prepared attempt and acts on its outcome.
  void Send(const std::string& name, Attempt attempt);
  // A job cancelled while SUBMITTING (the mark is written, the call not
  // sent): nothing has been sent, so nothing is; it ends CANCELLED. True if
  // so.
  bool CancelledBeforeTheCall(const std::string& name, uint64_t generation);
  void OnAccepted(const std::string& name, const Attempt& attempt,
                  const tencent::SyncBlueprintResponse& response);
  void OnFailed(const std::string& name, const Attempt& attempt, const absl::Status& error);
  Next PlanAfterFailure(JobEntry& e, const Attempt& attempt, const absl::Status& error,
                        absl::Time now);
  Next PlanAfterBusy(JobEntry& e, absl::Time now);
  // The call was cut off at shutdown (ClientError.Abandoned).
  void OnAbandoned(const std::string& name, const Attempt& attempt, const absl::Status& error);
  // Leadership lapsed before the call: reconcile rather than leave the job
  // SUBMITTING.
  void OnLeaseLapsed(const std::string& name, const Attempt& attempt);

  JobTable* const table_;
  JobWriter* const writer_;
  JobSteps* const steps_;
  tencent::LighthouseClient* const client_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_SUBMITTER_H_
