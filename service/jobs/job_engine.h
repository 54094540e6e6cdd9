// JobEngine: turns accepted SyncBlueprint requests into durable jobs, submits
// each exactly once, and tracks every destination image until it is usable
// or has failed. It owns the service's worker threads; gRPC handlers only
// hand requests in and receive callbacks, so they never block.
//
// Data flow:  Submit -> JobStore (QUEUED) -> per-source queue -> submit worker
//   -> JobStore (SUBMITTING) -> LighthouseClient.SyncBlueprint
//   -> JobStore (RUNNING, destination ids) -> tracker (DescribeBlueprints,
//   batched per region) -> JobStore -> watchers.
//
// At-most-once submission: a job is written as SUBMITTING (durably) before
// the SyncBlueprint call. A job found SUBMITTING after a restart, or whose
// call ended with an unknown outcome, is never resent blindly: the reconciler
// looks upstream for the copies that call would have created (see README,
// "Ambiguous submissions") and adopts them, resubmits only when the call
// provably did not execute, and otherwise fails the job as needing attention.
//
// Jobs on the same source blueprint run one after another: the source image
// is busy while it syncs, so a second SyncBlueprint would be rejected.
//
// Several replicas on one shared store (options.elector set): every replica
// records jobs and answers reads, but only the one holding the leader lease
// calls Tencent Cloud. The leader adopts jobs other replicas recorded (it
// re-reads the store's unfinished jobs every follow_interval) and, on taking
// over, resumes every unfinished job as after a restart; a replica that loses
// the lease drops its in-memory jobs at once and makes no further calls.
// Callers and watchers on a replica that is not leading follow the job by
// re-reading it from the store every follow_interval. See README, "High
// availability".
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_ENGINE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "service/common/executor.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_store.h"
#include "service/jobs/leader_elector.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::jobs {

// Told about every job that ends (metrics). Runs under the engine's lock:
// must be quick and must not call back into the engine.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  // `job` has just become SUCCEEDED or FAILED; each destination has ended
  // (its update_time is when it did).
  virtual void OnJobFinished(const v1::SyncJob& job) = 0;
};

struct JobEngineOptions {
  // How often unfinished destinations are polled with DescribeBlueprints.
  absl::Duration poll_interval = absl::Seconds(10);
  // A job whose destinations are not all finished by then fails them.
  absl::Duration job_deadline = absl::Hours(6);
  // Submission workers (each may wait for rate-limit capacity).
  int workers = 4;
  // Backoff for submissions that certainly did not execute (connection
  // refused, throttled after retries): doubles from initial to max.
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Seconds(30);
  // A source that Tencent reports busy is retried this often, for at most
  // busy_window, before the job fails with ABORTED.
  absl::Duration busy_retry_interval = absl::Seconds(5);
  absl::Duration busy_window = absl::Minutes(10);
  // How long after an ambiguous submission the reconciler first looks, how
  // often it looks again, and how many looks before giving up.
  absl::Duration reconcile_grace = absl::Seconds(10);
  int reconcile_attempts = 6;
  // Finished jobs kept in memory for Get (0 disables).
  int finished_cache_size = 10000;
  // Copies created this long before our attempt still count as its result
  // (clock skew between this host and Tencent Cloud).
  absl::Duration reconcile_clock_skew = absl::Seconds(30);
  // Not owned; must outlive the engine. None when null.
  JobObserver* observer = nullptr;
  // Several replicas on a shared store: only the lease holder calls
  // upstream. Null: this process is the only one and always leads. Not
  // owned; must be started before Start() and outlive the engine.
  LeaderElector* elector = nullptr;
  // With an elector: how often leadership is checked, the leader looks for
  // jobs other replicas recorded, and jobs another replica runs are re-read
  // for callers and watchers here.
  absl::Duration follow_interval = absl::Seconds(1);
};

struct JobEngineStats {
  int64_t poll_cycles = 0;
  int64_t describe_calls = 0;             // DescribeBlueprints calls by the tracker, total
  int64_t last_cycle_describe_calls = 0;  // in the most recent completed cycle
  int64_t sync_calls = 0;                 // SyncBlueprint calls made
  int64_t active_jobs = 0;
  // Active jobs by the state callers see.
  int64_t queued_jobs = 0;
  int64_t running_jobs = 0;
  // -1: single replica (always leads); 0: not leading; else the lease epoch.
  int64_t leader_term = 0;
  int64_t leadership_changes = 0;  // times this engine took or lost the lead
};

class JobEngine final : public JobService {
 public:
  // Called exactly once per Submit: with the job (QUEUED, or RUNNING with the
  // new destination ids), or with the error that rejected it. Runs under the
  // engine's lock: must be quick and must not call back into the engine.
  using SubmitCallback = std::function<void(absl::StatusOr<v1::SyncJob>)>;
  // Called with each new version of a watched job, in order; with nullptr
  // when the engine shuts down. Runs under the engine's lock: must be quick
  // and must not call back into the engine.
  using WatchCallback = std::function<void(const v1::SyncJob*)>;

  JobEngine(JobEngineOptions options, JobStore* store, tencent::LighthouseClient* client,
            Clock* clock = SystemClock::Default());
  ~JobEngine();
  JobEngine(const JobEngine&) = delete;
  JobEngine& operator=(const JobEngine&) = delete;

  // Loads every unfinished job from the store and resumes it: QUEUED jobs
  // are queued again, RUNNING ones tracked, interrupted submissions
  // reconciled. Then starts the workers and the tracker.
  absl::Status Start();
  // Stops taking work, lets in-flight upstream calls finish (until
  // `deadline`), answers pending callers with the job as it stands and
  // closes watches. Everything is already persisted. Idempotent.
  void Shutdown(absl::Time deadline);

  // `request` must already be validated. The callback runs on an engine
  // thread; if the submission has not been answered by `reply_by` the
  // callback gets the job as it stands (QUEUED).
  void Submit(const v1::SyncBlueprintRequest& request, absl::Time reply_by,
              SubmitCallback done) override;

  // JobService.
  void GetJob(const std::string& name, JobCallback done) override { done(Get(name)); }
  void ListJobs(const JobQuery& query, PageCallback done) override {
    done(store_->ListJobs(query));
  }
  uint64_t WatchJob(const std::string& name, JobService::WatchCallback callback) override;

  // The job as it stands (memory for unfinished jobs, else the store).
  absl::StatusOr<v1::SyncJob> Get(const std::string& name);

  // Calls `callback` with the job as it stands, before returning, and then
  // with every change until Unwatch (so no change can fall in between).
  // For a finished job only the first call happens and *watch_id is 0.
  // NotFound if there is no such job.
  absl::Status Watch(const std::string& name, uint64_t* watch_id, WatchCallback callback);
  void Unwatch(uint64_t watch_id) override;

  // Runs one tracker cycle now (tests); returns when it is done.
  void PollOnceForTest();
  JobEngineStats stats() const;
  bool serving() const { return started_ && !stopping_; }

 private:
  struct Active {
    JobRecord rec;
    SubmitCallback reply;  // pending caller answer, if any
    absl::Time reply_by = absl::InfiniteFuture();
    int transient_failures = 0;
    absl::Time busy_since = absl::InfiniteFuture();
    int reconcile_looks = 0;
    bool submit_in_flight = false;
    // The last write of this job to the store failed.
    bool unpersisted = false;
    // Resubmitted after a reconcile found no copy: a "source busy" answer
    // may then mean the earlier call has just executed after all.
    bool resubmitted = false;
  };
  struct Watcher {
    std::string name;
    WatchCallback callback;
    // The last version delivered (serialized), so re-reads of a job another
    // replica runs deliver only changes.
    std::string last_sent;
  };
  // A SyncBlueprint caller on a replica that is not running the job: answered
  // from the store once the submission has an outcome, or at reply_by.
  struct RemoteReply {
    SubmitCallback done;
    absl::Time reply_by;
  };
  static constexpr int64_t kSingleReplicaTerm = -1;

  static std::string SourceKey(const v1::SyncJob& job);

  void CreateJob(const v1::SyncBlueprintRequest& request, absl::Time reply_by, SubmitCallback done);
  void RunSubmit(const std::string& name);
  void RunReconcile(const std::string& name);
  void TrackerLoop();
  void PollOnce();
  // With an elector: leadership changes, adopting jobs other replicas
  // recorded, and re-reading jobs for remote callers and watchers.
  void FollowLoop();
  void FollowOnce();
  // Answers a remote caller from `job` (the store's version).
  static void AnswerRemote(SubmitCallback& done, const JobRecord& rec);
  // Answers `replies` from the store's version of `name` (Unavailable if it
  // cannot be read). Not under mu_: reads the store.
  void AnswerFromStore(const std::string& name, std::vector<RemoteReply>& replies);

  // Helpers that expect mu_ held.
  void ScheduleSubmitLocked(const std::string& name, absl::Time when)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleReconcileLocked(const std::string& name, absl::Time when)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers a caller still waiting on `name` with the job as it stands at
  // `reply_by` (nothing if InfiniteFuture).
  void ScheduleReplyByLocked(const std::string& name, absl::Time reply_by)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stamps update_time, writes to the store (logging failures: memory stays
  // authoritative until the next successful write) and notifies watchers.
  void PersistLocked(Active& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReplyLocked(Active& a, const absl::Status& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the job FAILED with `error` (unfinished destinations too),
  // persists, answers a pending caller with `error`, and finishes it.
  void FailJobLocked(Active& a, const absl::Status& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a terminal job and starts the next job on its source.
  void FinishLocked(std::string name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishLocked(const v1::SyncJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireDeadlinesLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes over an unfinished job read from the store (start-up, a new
  // leadership term, or recorded by another replica).
  void AdoptLocked(JobRecord rec, absl::Time now, int* queued, int* tracked, int* reconciling)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adopts each job not known here yet and logs the counts as `message`
  // (also when there were none if `log_if_none`).
  void AdoptLocked(std::vector<JobRecord> unfinished, const char* message, bool log_if_none)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Retries the final writes of finished jobs that failed.
  void RetryUnpersistedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BecomeLeaderLocked(int64_t term) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StepDownLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leader: adopts every unfinished job in the store this engine does not have.
  void AdoptNewJobsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool leading() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return term_ != 0; }
  absl::Duration BackoffFor(int failures) const;

  const JobEngineOptions options_;
  JobStore* const store_;
  tencent::LighthouseClient* const client_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  std::map<std::string, Active> active_ ABSL_GUARDED_BY(mu_);
  // Source key -> unfinished jobs on it, oldest first; the front one owns the source.
  std::map<std::string, std::deque<std::string>> sources_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Watcher> watchers_ ABSL_GUARDED_BY(mu_);
  std::multimap<std::string, uint64_t> watchers_by_job_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watch_id_ ABSL_GUARDED_BY(mu_) = 1;
  // kSingleReplicaTerm without an elector; with one, the lease epoch this
  // engine acts under (0: not leading). Work started under one term is
  // dropped if the term has changed when it completes.
  int64_t term_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped whenever leadership is taken or lost (even for the same epoch):
  // work completing under another generation is dropped.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Finished jobs whose final write failed, by name: retried, and never
  // adopted again from the store's older version meanwhile.
  std::map<std::string, JobRecord> unpersisted_ ABSL_GUARDED_BY(mu_);
  // Region -> the error of its last failed DescribeBlueprints (cleared when
  // one succeeds), so a job that times out says why it could not be tracked.
  std::map<std::string, std::string> poll_errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<RemoteReply>> remote_replies_ ABSL_GUARDED_BY(mu_);
  bool wake_follower_ ABSL_GUARDED_BY(mu_) = false;
  JobEngineStats stats_ ABSL_GUARDED_BY(mu_);
  bool wake_tracker_ ABSL_GUARDED_BY(mu_) = false;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex poll_mu_;  // one tracker cycle at a time
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::unique_ptr<Executor> executor_;
  // Recording new jobs (an fsync each) runs on its own threads, so a burst
  // of SyncBlueprint calls cannot delay submissions that are due.
  std::unique_ptr<Executor> intake_;
  // Recently finished jobs, for GetSyncJob without a store read: a finished
  // job never changes, so the cache cannot go stale.
  std::map<std::string, v1::SyncJob> finished_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> finished_order_ ABSL_GUARDED_BY(mu_);
  std::thread tracker_;
  std::thread follower_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_ENGINE_H_
