// JobSteps: what every part of the engine does after it has changed a job:
// write it, answer the caller waiting on it, finish it when it is terminal
// (which hands its source blueprint to the next job), and schedule the next
// submission or reconciliation. Keeps that order in one place, so no caller
// or watcher hears of a state before it is durable.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_STEPS_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_STEPS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/common/executor.h"
#include "service/jobs/engine_options.h"
#include "service/jobs/job_table.h"
#include "service/jobs/job_writer.h"

namespace blueprintsync::jobs {

class JobSteps {
 public:
  using Runner = std::function<void(const std::string& name)>;
  // Submission started on the caller's thread: true once the job's
  // SUBMITTING mark is written (and so its record flushed).
  using StartingRunner = std::function<bool(const std::string& name)>;

  JobSteps(const JobEngineOptions& options, JobTable* table, JobWriter* writer, Clock* clock)
      : options_(options), table_(table), writer_(writer), clock_(clock) {}

  // Where scheduled work runs, and what runs: submission and reconciliation;
  // `submit_now` is submission started on the caller's thread (SubmitNow).
  void Wire(Executor* executor, Runner submit, StartingRunner submit_now, Runner reconcile);

  // After a change to `name` under generation `gen`: writes it, answers a
  // waiting caller (with `reply_error` if not OK, else the job), and if the
  // job is terminal finishes it and starts the next job on its source.
  void Commit(const std::string& name, uint64_t gen,
              const absl::Status& reply_error = absl::OkStatus());

  // Fails the job with `error` (every unfinished destination too), then
  // commits it, answering a waiting caller with `error`.
  void Fail(const std::string& name, uint64_t gen, const absl::Status& error);
  // The in-memory part of Fail, for a part that already holds the lock.
  static void MarkFailed(JobEntry& e, const absl::Status& error, absl::Time now);

  // Takes over unfinished jobs read from the store (start-up, a new
  // leadership term, or recorded by another replica) that this replica does
  // not run yet: QUEUED ones are queued, RUNNING ones tracked, interrupted
  // submissions reconciled. `read_tick` is the table's tick taken before
  // the read began (see TableState::MayAdopt). With `become`, leadership
  // changes to it in the same step, so no new job can overtake an earlier
  // one on its source; without, nothing is adopted if leadership changed
  // since `generation`. Logs the counts as `message` (also when there were
  // none if `log_if_none`).
  void Adopt(std::vector<JobRecord> records, uint64_t read_tick, uint64_t generation,
             std::optional<Leadership> become, const char* message, bool log_if_none);

  void ScheduleSubmit(const std::string& name, absl::Time when);
  // Starts submitting a job the intake has just placed, on this thread:
  // its durable SUBMITTING write here, its call on the executor. False if
  // nothing was written (the job was not due: stopping, cancelled, ...).
  bool SubmitNow(const std::string& name);
  void ScheduleReconcile(const std::string& name, absl::Time when);
  // Answers a caller still waiting on `name` at `reply_by` with the job as
  // it stands (nothing if InfiniteFuture).
  void ScheduleReplyBy(const std::string& name, absl::Time reply_by);
  // Backoff after `failures` transient failures: doubles up to retry_max.
  absl::Duration BackoffFor(int failures) const;

  Clock* clock() const { return clock_; }
  const JobEngineOptions& options() const { return options_; }

 private:
  void Post(absl::Time when, std::function<void()> task);

  const JobEngineOptions& options_;
  JobTable* const table_;
  JobWriter* const writer_;
  Clock* const clock_;
  Executor* executor_ = nullptr;
  Runner submit_;
  StartingRunner submit_now_;
  Runner reconcile_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_STEPS_H_
