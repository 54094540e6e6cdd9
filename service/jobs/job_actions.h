// JobActions: what callers may do to a job after it was created — cancel it,
// retry its failed destinations, delete its record — and the dry run of a
// submission. Each answers through a callback; reads go to the store and
// calls to Tencent Cloud on the executors given, never under the table's
// lock.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_ACTIONS_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_ACTIONS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/executor.h"
#include "service/jobs/job_intake.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_table.h"
#include "service/jobs/job_writer.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::jobs {

// The job a retry of `job` creates: its destinations that did not succeed,
// with its source, labels and keep_failed_copies, and `retry`'s creator,
// request_id and timeout. FailedPrecondition (naming the job) if `job` is
// not finished or nothing failed.
absl::StatusOr<NewJob> PlanRetry(const v1::SyncJob& job, NewJob retry);

// The answer to cancelling a job that has already finished: the job if it
// was cancelled (cancelling twice is harmless), else FailedPrecondition.
absl::StatusOr<v1::SyncJob> CancelFinished(const v1::SyncJob& job);

class JobActions {
 public:
  struct Threads {
    Executor* readers;   // store reads
    Executor* upstream;  // DescribeBlueprints for dry runs
    Executor* intake;    // recording new jobs
    Executor* timers;
  };

  JobActions(JobTable* table, JobWriter* writer, JobSteps* steps, JobStore* store,
             tencent::LighthouseClient* client, JobIntake* intake)
      : table_(table),
        writer_(writer),
        steps_(steps),
        store_(store),
        client_(client),
        intake_(intake) {}

  void Wire(Threads threads) { threads_ = threads; }

  void Cancel(const std::string& name, JobService::JobCallback done);
  // Carries out a cancellation another replica recorded (leader only).
  void CancelRequested(const std::string& name);
  void Retry(const std::string& name, NewJob retry, absl::Time reply_by,
             JobService::JobCallback done);
  void Delete(const std::string& name, JobService::StatusCallback done);
  void PreviewSubmit(NewJob job, JobService::PreviewCallback done);
  // The job as this replica knows it, else as the store has it (on a
  // reader thread). Answers GetSyncJob, and is the first step of cancel
  // and retry.
  void Lookup(const std::string& name, JobService::JobCallback then);

 private:
  // Cancels a job this replica runs; false if it does not run it.
  bool CancelHere(const std::string& name, const JobService::JobCallback& done);
  // Another replica runs the job: records the cancellation for the leader,
  // then answers once the store shows it carried out (or after a while,
  // Unavailable: it will be, by whichever replica leads).
  void CancelThroughStore(const std::string& name,
                          std::shared_ptr<JobService::JobCallback> done);
  void AwaitCancelled(const std::string& name, std::shared_ptr<JobService::JobCallback> done,
                      absl::Time give_up);
  // Unfinished jobs on the same source that a new job would wait for.
  int JobsAhead(const v1::SyncJob& job);

  JobTable* const table_;
  JobWriter* const writer_;
  JobSteps* const steps_;
  JobStore* const store_;
  tencent::LighthouseClient* const client_;
  JobIntake* const intake_;
  Threads threads_{};
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_ACTIONS_H_
