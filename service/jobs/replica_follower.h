// ReplicaFollower: the part of the engine that exists only with several
// replicas on a shared store. Every follow_interval (or when woken) it
// checks the lease: on taking the lead it loads every unfinished job from the
// store and resumes it as after a restart; on losing it, it drops its
// in-memory jobs at once and makes no further calls. While leading it adopts
// the jobs other replicas recorded. On every replica it follows, by
// re-reading the store, the jobs another replica runs that a caller or a
// watcher here waits on.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_REPLICA_FOLLOWER_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_REPLICA_FOLLOWER_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

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

  // Follows until the table says it is stopping.
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
  void ChangeLeadership(const Leadership& current, int64_t term);
  void AdoptNewJobs(uint64_t generation);
  void AnswerFromStore(const std::string& name, std::vector<RemoteReply>& replies);
  // Whether a QUEUED job waits behind another on its source (its caller is
  // then answered at once, as on the leader).
  bool WaitsBehindAnother(const JobRecord& rec);
  // Re-reads the jobs run elsewhere that callers or watchers here wait on.
  void FollowRemoteJobs();
  // Adopts `unfinished` (see JobSteps::Adopt), then carries out the
  // cancellations other replicas recorded for them.
  void AdoptAndCancel(std::vector<JobRecord> unfinished, uint64_t read_tick, uint64_t generation,
                      std::optional<Leadership> become);

  std::function<void(const std::string& name)> cancel_requested_;

  JobTable* const table_;
  JobSteps* const steps_;
  JobStore* const store_;
  LeaderElector* const elector_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_REPLICA_FOLLOWER_H_
