// ReplicaFollower: the part of the engine that exists only with several
// replicas on a shared store. Every follow_interval (or when woken) it
// checks the lease: on taking the lead it loads every unfinished job from the
// store and resumes it as after a restart; on losing it, it drops its
// in-memory jobs at once and makes no further calls. While leading it adopts
// the jobs other replicas recorded. On every replica it follows, by
// re-reading the store, the jobs another replica runs that a caller or a
// watcher here waits on.
//
// What it reads: with the store's change feed (JobStore::OpenChangeFeed)
// connected, only the jobs the feed names: the leader reads new jobs and
// cancellation requests, every replica the changed jobs someone here waits
// on (and, once, each job someone starts waiting on). So the leader's cost
// per cycle follows the changes, not the number of unfinished jobs, and a
// watcher here sees a change as soon as it commits. Everything is re-read
// (every unfinished job on the leader, every waited-on job) on the first
// cycle, every follow_resync_interval, after the feed reconnects and on
// every cycle while it is disconnected: notifications are not durable (one
// sent while the feed was down is gone), and these re-reads are what makes
// a lost one cost time, never a job.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_REPLICA_FOLLOWER_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_REPLICA_FOLLOWER_H_

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/executor.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_table.h"
#include "service/jobs/leader_elector.h"

namespace blueprintsync::jobs {

class ReplicaFollower {
 public:
  ReplicaFollower(JobTable* table, JobSteps* steps, JobStore* store, LeaderElector* elector)
      : table_(table), steps_(steps), store_(store), elector_(elector) {}

  // Follows until the table says it is stopping; listens to the store's
  // change feed meanwhile (if it has one and follow_change_feed is on).
  void Loop();
  void FollowOnce();

  // A SyncBlueprint caller whose job another replica will run: answered once
  // the submission has an outcome in the store, or at `reply_by` with the
  // job as it stands then. Timers run on `executor`.
  void AwaitOutcome(const std::string& name, JobService::JobCallback done, absl::Time reply_by,
                    Executor* executor);
  // Answers every caller still waiting (shutdown).
  void AnswerAll();

  // Answers a caller from the store's version of its job.
  static void AnswerFrom(const JobRecord& rec, JobService::JobCallback& done);

  // What the leader does with a job whose cancellation another replica
  // recorded (JobStore::RequestCancel): cancel it here.
  void OnCancelRequested(std::function<void(const std::string& name)> cancel) {
    cancel_requested_ = std::move(cancel);
  }

 private:
  // What one cycle reads: everything, or only these changed jobs.
  struct Work {
    bool everything = true;
    std::set<std::string> changed;
    std::set<std::string> cancel_requested;
    // Deleted: read back only if someone here watches or waits on them.
    std::set<std::string> deleted;
    // Too many deletes to name: read every watched or waited-on job once.
    bool refollow = false;
  };
  Work TakeWork();
  // How long Loop sleeps unless woken: the follow interval, or less when a
  // full re-read was held back (TakeWork) and falls due sooner.
  absl::Duration UntilNextCycle();
  // On the feed's thread.
  void OnChanges(JobChanges changes);

  void ChangeLeadership(const Leadership& current, int64_t term);
  void AdoptNewJobs(uint64_t generation);
  // The leader's share of the changed jobs: reads those it does not run
  // (new jobs, recorded elsewhere) and those whose cancellation was asked.
  void AdoptChangedJobs(const Work& work, uint64_t generation);
  void AnswerFromStore(const std::string& name, std::vector<RemoteReply>& replies);
  // Whether a QUEUED job waits behind another on its source (its caller is
  // then answered at once, as on the leader).
  bool WaitsBehindAnother(const JobRecord& rec);
  // Re-reads the jobs run elsewhere that callers or watchers here wait on:
  // all of them, or those changed and those newly waited on.
  void FollowRemoteJobs(const Work& work);
  // Adopts `unfinished` (see JobSteps::Adopt), then carries out the
  // cancellations other replicas recorded for them.
  void AdoptAndCancel(std::vector<JobRecord> unfinished, uint64_t read_tick, uint64_t generation,
                      std::optional<Leadership> become);

  std::function<void(const std::string& name)> cancel_requested_;

  // The store reads of the current cycle (logged at debug level): what the
  // change feed is meant to keep flat as unfinished jobs grow.
  struct CycleCost {
    int queries = 0;
    int64_t rows = 0;
  };
  CycleCost cost_;

  // The jobs of the last FollowRemoteJobs: one waited on that is not among
  // them is new, and read once.
  std::set<std::string> followed_;
  // Of those, the jobs a caller here waits on that were not submitted yet
  // nor queued behind another when last read: read again every cycle.
  std::set<std::string> unanswered_;
  // Set by Loop; used on the follower's thread only.
  std::unique_ptr<JobChangeFeed> feed_;
  bool feed_listening_ = false;
  absl::Mutex changes_mu_;
  // Named by the feed, not read yet. Past kMaxPendingChanges, the names are
  // dropped for a full re-read (cheaper then, and memory stays bounded).
  static constexpr size_t kMaxPendingChanges = 10000;
  std::set<std::string> changed_ ABSL_GUARDED_BY(changes_mu_);
  std::set<std::string> cancel_requested_names_ ABSL_GUARDED_BY(changes_mu_);
  std::set<std::string> deleted_ ABSL_GUARDED_BY(changes_mu_);
  bool refollow_ ABSL_GUARDED_BY(changes_mu_) = false;
  bool resync_ ABSL_GUARDED_BY(changes_mu_) = true;
  absl::Time next_resync_ ABSL_GUARDED_BY(changes_mu_) = absl::InfinitePast();
  // When the last full re-read started: the next waits a follow interval.
  absl::Time last_full_read_ ABSL_GUARDED_BY(changes_mu_) = absl::InfinitePast();

  JobTable* const table_;
  JobSteps* const steps_;
  JobStore* const store_;
  LeaderElector* const elector_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_REPLICA_FOLLOWER_H_
