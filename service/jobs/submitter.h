// Submitter: sends each job's SyncBlueprint call at most once. The job is
// recorded SUBMITTING (durably) before the call; the call's outcome decides
// what follows: the job is tracked (accepted), tried again later (certainly
// not executed: throttled, unreachable, source busy), handed to the
// reconciler (outcome unknown: it may have executed, so it is never resent
// blindly), or failed (rejected).
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_SUBMITTER_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_SUBMITTER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_table.h"
#include "service/jobs/job_writer.h"
#include "service/jobs/leadership.h"
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

  // One SyncBlueprint attempt, from its start (the job marked SUBMITTING in
  // memory, in flight) to its outcome.
  struct Attempt {
    Leadership leadership = Leadership::Following();
    uint64_t generation = 0;
    tencent::SyncBlueprintRequest request;
    absl::Time call_deadline = absl::InfiniteFuture();
    bool lease_bounded = false;  // the call's deadline is the lease's, not the caller's
    // A policy's job waits for rate-limit capacity behind callers' own jobs.
    tencent::CallPriority priority = tencent::CallPriority::kForeground;
  };

  // Submits `name` if it is due: active, first on its source, not yet sent.
  // Records the attempt (SUBMITTING) durably before the call.
  void Run(const std::string& name);

  // The one-write path (JobIntake): a new job can be recorded already in the
  // state Run writes before its call, so the write that creates the job is
  // the only one before the call.
  //
  // Marks `rec` as the start of a submission attempt: what Begin changes in
  // a job before Run writes it (phase SUBMITTING, the attempt counted and
  // timed).
  static void MarkAttempt(JobRecord& rec, absl::Time now);
  // With the table's lock held, for a job just added from a record marked by
  // MarkAttempt and stored: starts that attempt if the job is due (as Begin
  // would) and returns true; SendRecorded must follow. False if it is not
  // due: nothing may be sent for that mark, which UnmarkAttempt undoes.
  bool BeginRecorded(TableState& s, JobEntry& e, Attempt* attempt);
  // Undoes MarkAttempt in memory for an attempt that was never begun: the
  // job is then as if recorded QUEUED (its next attempt is marked and
  // written again). The store still says SUBMITTING until the job is
  // written again, which the caller does.
  static void UnmarkAttempt(JobEntry& e, absl::Time now);
  // The rest of Run for an attempt begun by BeginRecorded: no write before
  // the call, because its SUBMITTING mark is already durable.
  void SendRecorded(const std::string& name, const Attempt& attempt);
  // An attempt begun by BeginRecorded that cannot be sent after all (the
  // engine is stopping): the job stays SUBMITTING in the store, so the next
  // start reconciles it, as after a kill.
  void Abandon(const std::string& name, const Attempt& attempt);

 private:
  // What follows a failed attempt: decided with the table's lock held, done
  // after it is let go.
  struct Next {
    enum Then { kSubmit, kReconcile, kFail, kCommit } then;
    absl::Time when;
  };
  // Records the attempt (SUBMITTING) in memory; false if the job is not due.
  bool Begin(const std::string& name, Attempt* attempt);
  // The part of Begin after the job was found due and marked: the job is in
  // flight, and `attempt` says what to send.
  void StartAttempt(TableState& s, JobEntry& e, Attempt* attempt);
  // After Begin or BeginRecorded: records the attempt unless `recorded`,
  // then sends it unless the store cannot be written or the job was
  // cancelled meanwhile, and applies the outcome.
  void Send(const std::string& name, const Attempt& attempt, bool recorded);
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
