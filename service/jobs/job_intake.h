// JobIntake: records each accepted SyncBlueprint request as a durable QUEUED
// job (or finds the job an earlier request with the same request_id
// created) and hands it on: to this replica's submission queue when it
// leads, else to the leader through the store, answering the caller once
// the submission has an outcome. Recording means an fsync (or a PostgreSQL
// round trip), so it runs on its own threads and a burst of new jobs cannot
// delay submissions that are due.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_INTAKE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_INTAKE_H_

#include <optional>

#include "absl/time/time.h"
#include "service/common/executor.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_table.h"
#include "service/jobs/replica_follower.h"

namespace blueprintsync::jobs {

class JobIntake {
 public:
  // `follower` is null with a single replica.
  JobIntake(JobTable* table, JobSteps* steps, JobStore* store, ReplicaFollower* follower)
      : table_(table), steps_(steps), store_(store), follower_(follower) {}

  // Records the job on `threads` (see JobService::Submit).
  void Submit(NewJob job, absl::Time reply_by, JobService::JobCallback done, Executor* threads,
              Executor* timers);

  // The record of a new job for `job` (QUEUED, not yet stored).
  JobRecord NewRecord(const NewJob& job) const;

 private:
  void Record(const NewJob& job, absl::Time reply_by, JobService::JobCallback done,
              Executor* timers);
  // A request_id seen before: the existing job once its submission has an
  // outcome (joining the first caller's wait), or why it cannot be reused.
  // An only_if_repeat job: the recorded job with its request_id answers as
  // AnswerRepeat does; none recorded: NoRepeatFound().
  void AnswerOnlyARepeat(const NewJob& asked, absl::Time reply_by, JobService::JobCallback& done,
                         Executor* timers);
  void AnswerRepeat(const NewJob& job, const JobRecord& existing, absl::Time reply_by,
                    JobService::JobCallback& done, Executor* timers);
  // Whether callers of `e` wait for its submission's outcome: it is first on
  // its source and has not been answered upstream yet.
  static bool SubmissionPending(const TableState& s, const JobEntry& e);
  enum class Next { kSubmit, kWaitHere, kAwaitLeader, kAnswer, kAnswered };
  struct Placed {
    Next next = Next::kAnswer;
    std::optional<JobRecord> as_remote;   // kAnswer: as to a remote caller
    std::optional<v1::SyncJob> as_it_is;  // kAnswer: this version
  };
  // Puts a new job where it belongs, with the table's lock held: this
  // replica's queue (single replica, or leading), a run of it that this
  // replica adopted already, or the leader's (through the store).
  static Placed Place(TableState& s, const JobRecord& rec, absl::Time reply_by,
                      JobService::JobCallback& done);
  // Flushes the store (a new job's record, CreateJobSyncLater) before its
  // caller may be answered; logs a failure (the store reports it).
  void FlushOrLog(const std::string& name);
  // Whether Place would send `rec` to the Submitter (Next::kSubmit), whose
  // durable SUBMITTING write then makes the job's record durable too.
  static bool SubmitsAtOnce(const TableState& s, const JobRecord& rec);

  JobTable* const table_;
  JobSteps* const steps_;
  JobStore* const store_;
  ReplicaFollower* const follower_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_INTAKE_H_
