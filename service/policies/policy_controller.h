// PolicyController: keeps every replication policy true. On the leader
// only (a single replica always leads), once per `interval` and whenever a
// policy changes, one pass:
//
//   1. read every policy (PolicyStore::ListAll);
//   2. survey upstream (PolicySurvey): per region, one DescribeBlueprints
//      per 100 ids (fixed sources and every copy the policies track) and,
//      per source region, one per 100 blueprints of the families' names;
//      so its cost grows with regions and copies, not with policies;
//   3. plan each policy (PlanPolicy, pure): resolve its source, settle its
//      open job, say per region IN_SYNC / SYNCING / PENDING / FAILED, which
//      regions need a job, which old copies to delete;
//   4. act: start at most one job per policy (JobService::Submit with a
//      request_id derived from the policy's uid and job_attempt, so a crash
//      between the submission and the status write finds the same job),
//      delete copies beyond keep_versions, cancel the job and delete the
//      copies of a policy deleted with delete_copies;
//   5. write each policy's status (fenced by the leader lease).
//
// Upstream calls go at background priority (tencent::CallPriority), and
// the controller submits one policy job at a time and waits for its answer,
// so callers' own jobs always find free submission workers and go first.
// No lock is held during any store or upstream call.
#ifndef BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_CONTROLLER_H_
#define BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_CONTROLLER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/jobs/job_service.h"
#include "service/jobs/leader_elector.h"
#include "service/policies/policy_plan.h"
#include "service/policies/policy_store.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::policies {

struct PolicyControllerOptions {
  // A full pass at least this often (--policy-interval).
  absl::Duration interval = absl::Seconds(60);
  // With several replicas: how often the leader checks the store for
  // policy changes made elsewhere (PolicyStore::ChangeMark).
  absl::Duration change_poll_interval = absl::Seconds(1);
  // A region whose job failed is tried again after this, doubling per
  // failure in a row up to backoff_max.
  absl::Duration backoff_initial = absl::Seconds(60);
  absl::Duration backoff_max = absl::Hours(1);
  // Old copies that cannot be deleted are given up on after this (as the
  // job cleaner's --cleanup-give-up-after).
  absl::Duration cleanup_give_up_after = absl::Hours(24);
  // The timeout of the jobs policies start (zero: the engine's default).
  absl::Duration job_timeout = absl::ZeroDuration();
  // Several replicas: act only while holding the lease. Null: always lead.
  jobs::LeaderElector* elector = nullptr;
};

struct PolicyControllerStats {
  int64_t passes = 0;
  int64_t policies = 0;           // at the last pass
  int64_t policies_in_sync = 0;   // at the last pass, not paused
  int64_t policies_paused = 0;    // at the last pass
  int64_t describe_calls = 0;     // DescribeBlueprints by the controller, total
  int64_t last_pass_describe_calls = 0;
  int64_t jobs_started = 0;       // policy jobs created
  int64_t drift_repairs = 0;      // regions re-synced because their copy vanished or failed
  int64_t copies_deleted = 0;     // old versions and copies of deleted policies
  int64_t copy_delete_failures = 0;
  int64_t pass_failures = 0;      // passes that could not read the store
};

class PolicyController {
 public:
  PolicyController(PolicyControllerOptions options, PolicyStore* store,
                   jobs::JobService* jobs, tencent::LighthouseClient* client,
                   Clock* clock = SystemClock::Default());
  ~PolicyController();  // Shutdown()
  PolicyController(const PolicyController&) = delete;
  PolicyController& operator=(const PolicyController&) = delete;

  // Starts the controller's thread (first pass at once).
  void Start();
  // Stops after the current pass. Idempotent.
  void Shutdown();
  // A policy changed on this replica: pass soon.
  void Wake();

  // One pass now, on the calling thread (tests; not with Start()).
  void PassOnceForTest();
  PolicyControllerStats stats() const;

 private:
  void Loop();
  void RunPass();
  bool stopping() const;
  // Watches each job in `open_jobs` (and stops watching the others): a
  // job that ends wakes the controller, so a policy does not wait for the
  // next interval to learn that its copies are ready.
  void FollowOpenJobs(const std::set<std::string>& open_jobs);
  // Starts (or finds, after a crash) the job `plan` asks for; amends
  // plan->status. False if the service could not take it this pass.
  bool StartJob(const PolicyRecord& record, PolicyPlan* plan);
  OpenJobView ReadOpenJob(const std::string& name);
  // The policy's job number `attempt` (by its derived request_id), if it
  // was recorded. *looked: whether the job service could answer.
  std::optional<v1::SyncJob> FindJob(const PolicyRecord& record, int64_t attempt,
                                     bool* looked = nullptr);

  const PolicyControllerOptions options_;
  PolicyStore* const store_;
  jobs::JobService* const jobs_;
  tencent::LighthouseClient* const client_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  PolicyControllerStats stats_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> watches_ ABSL_GUARDED_BY(mu_);  // open job -> watch id
  std::thread thread_;
};

}  // namespace blueprintsync::policies

#endif  // BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_CONTROLLER_H_
