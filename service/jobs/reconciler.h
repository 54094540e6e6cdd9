// Reconciler: settles a job whose SyncBlueprint call may or may not have
// executed. It gathers the evidence (the copies earlier jobs on the source
// own, from the store; the source's name and state and the candidate copies
// in each destination region, from DescribeBlueprints), lets
// DecideReconcile judge it, and applies the verdict: adopt the copies,
// resubmit, or look again until reconcile_attempts looks have been made and
// then fail the job as needing attention.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_RECONCILER_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_RECONCILER_H_

#include <set>
#include <string>

#include "service/jobs/job_steps.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_table.h"
#include "service/jobs/reconcile_decision.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::jobs {

// Ambiguous SyncBlueprint attempts (transient failures) that the reconciler
// proves had not executed, after which a job fails for good.
inline constexpr int kMaxSubmitAttempts = 5;

class Reconciler {
 public:
  Reconciler(JobTable* table, JobSteps* steps, JobStore* store, tencent::LighthouseClient* client)
      : table_(table), steps_(steps), store_(store), client_(client) {}

  // Takes one look at `name` if its outcome is still unknown.
  void Run(const std::string& name);

 private:
  struct Look;
  bool Begin(const std::string& name, Look* look);
  ReconcileEvidence Gather(const std::string& name, const Look& look);
  // Adds the copies of jobs on the same source recorded before this one.
  std::string ClaimEarlierJobs(const std::string& name, const Look& look,
                               std::set<std::string>* claimed);
  void Apply(const std::string& name, const Look& look, const ReconcileEvidence& evidence);

  JobTable* const table_;
  JobSteps* const steps_;
  JobStore* const store_;
  tencent::LighthouseClient* const client_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_RECONCILER_H_
