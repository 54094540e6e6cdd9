// JobEngine: turns accepted SyncBlueprint requests into durable jobs, submits
// each at most once, and tracks every destination image until it is usable
// or has failed. A facade: it owns the engine's threads and wires its parts,
// each in its own file:
//
//   JobIntake        records new jobs (QUEUED) and hands them on
//   Submitter        SUBMITTING (durable) -> SyncBlueprint -> outcome
//   Reconciler       settles calls whose outcome is unknown (never resends
//                    blindly; DecideReconcile judges the evidence)
//   Tracker          polls destinations (DescribeBlueprints, batched per
//                    region) and enforces deadlines
//   Cleaner          deletes the copies of failed destinations and of
//                    cancelled jobs (DeleteBlueprints)
//   JobActions       cancel, retry, delete, and the dry run of a submission
//   Retention        deletes the records of old finished jobs
//   ReplicaFollower  leadership, adopting jobs other replicas recorded,
//                    following jobs another replica runs
//   JobTable         the in-memory state and the only lock over it (each
//                    job also has a write lock, never held with it)
//   JobWriter        writes outside that lock, then publishes to watchers
//   JobSteps         write -> answer -> finish -> start the next on the source
//
// Jobs on the same source blueprint run one after another: the source image
// is busy while it syncs, so a second SyncBlueprint would be rejected.
//
// Several replicas on one shared store (options.elector set): every replica
// records jobs and answers reads, but only the one holding the leader lease
// calls Tencent Cloud. See README, "High availability".
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_ENGINE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/common/executor.h"
#include "service/jobs/cleaner.h"
#include "service/jobs/engine_options.h"
#include "service/jobs/job_actions.h"
#include "service/jobs/job_intake.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_table.h"
#include "service/jobs/job_writer.h"
#include "service/jobs/leader_elector.h"
#include "service/jobs/reconciler.h"
#include "service/jobs/replica_follower.h"
#include "service/jobs/retention.h"
#include "service/jobs/submitter.h"
#include "service/jobs/tracker.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::jobs {

class JobEngine final : public JobService {
 public:
  JobEngine(JobEngineOptions options, JobStore* store, tencent::LighthouseClient* client,
            Clock* clock = SystemClock::Default());
  ~JobEngine() override;
  JobEngine(const JobEngine&) = delete;
  JobEngine& operator=(const JobEngine&) = delete;

  // Loads every unfinished job from the store and resumes it: QUEUED jobs
  // are queued again, RUNNING ones tracked, interrupted submissions
  // reconciled. Then starts the workers and the tracker.
  absl::Status Start();
  // Stops taking work, lets in-flight upstream calls finish (until
  // `deadline`), answers pending callers with the job as it stands and
  // closes watches. Everything is already persisted. Idempotent. Returns
  // soon after `deadline` only if the calls still under way end then: the
  // server cuts them off with tencent::CallCutoff (a SyncBlueprint cut off
  // stays SUBMITTING, reconciled at the next start).
  void Shutdown(absl::Time deadline);

  // JobService. Reads that memory cannot answer go to the store on the
  // engine's reader threads.
  void Submit(NewJob job, absl::Time reply_by, JobCallback done) override;
  void PreviewSubmit(NewJob job, PreviewCallback done) override;
  void Cancel(const std::string& name, JobCallback done) override;
  void Retry(const std::string& name, NewJob retry, absl::Time reply_by,
             JobCallback done) override;
  void Delete(const std::string& name, StatusCallback done) override;
  void GetJob(const std::string& name, JobCallback done) override;
  void ListJobs(const JobQuery& query, PageCallback done) override;
  void ListJobsInto(const JobQuery& query, google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs,
                    CursorCallback done) override;
  uint64_t WatchJob(const std::string& name, WatchCallback callback) override;
  void Unwatch(uint64_t watch_id) override;

  // Runs one tracker cycle now (tests); returns when it is done.
  void PollOnceForTest() { tracker_.PollOnce(); }
  // Runs retention now if it is due (tests); returns the records deleted.
  int RetainOnceForTest() { return retention_.MaybeRun(); }
  // Counters only: never reads the store.
  JobEngineStats stats() const;
  bool serving() const { return started_ && !stopping_; }

 private:
  // Unless the engine serves (started, not stopping): answers `done` that
  // the service is shutting down, and returns true.
  template <typename Callback>
  bool RefusedWhenStopped(Callback& done) const {
    if (serving()) return false;
    done(ServiceShuttingDown());
    return true;
  }
  // Runs `read` on a reader thread, or answers `refused` at once if the
  // engine is shutting down.
  void Read(std::function<void()> read, std::function<void()> refused);
  // OK unless the store reports it cannot be written (UNAVAILABLE, naming why).
  absl::Status StoreWritable() const;
  // The tracker thread: a cycle, then the wait tracking_pace.h decides.
  void RunTracker();
  // Delivers the store's version of a watched job (first delivery only).
  void DeliverFirstRead(uint64_t id, const absl::StatusOr<JobRecord>& rec);

  const JobEngineOptions options_;
  JobStore* const store_;

  JobTable table_;
  JobWriter writer_;
  JobSteps steps_;
  Submitter submitter_;
  Reconciler reconciler_;
  Cleaner cleaner_;
  Tracker tracker_;
  Retention retention_;
  std::unique_ptr<ReplicaFollower> follower_;  // with an elector only
  JobIntake intake_;
  JobActions actions_;

  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::unique_ptr<Executor> workers_;  // submissions, reconciliation, timers
  std::unique_ptr<Executor> intake_threads_;
  std::unique_ptr<Executor> readers_;  // store reads for Get, List, Watch
  std::unique_ptr<Executor> previews_;  // dry runs' DescribeBlueprints
  std::thread tracker_thread_;
  std::thread follower_thread_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_ENGINE_H_
