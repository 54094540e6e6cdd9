// Cleaner: deletes the copies nobody wants any more — those of destinations
// that failed (unless the job keeps failed copies) and every copy of a
// cancelled job — with DeleteBlueprints, and records each outcome on its
// destination (copy_cleanup, copy_delete_time, cleanup_error).
//
// It only ever deletes a blueprint id recorded on a destination of one of
// the service's own jobs, never a job's source (MayDeleteCopy). A copy is
// deleted once Tencent reports it in a deletable state (a SYNCING copy
// waits); one already gone is recorded as such; a failed attempt
// (throttled, occupied, transient) is recorded and tried again next cycle,
// until cleanup_give_up_after has passed since the destination ended.
//
// Runs on the tracker's thread, after each poll, with the states that poll
// saw: the copies to delete are polled in the same batched
// DescribeBlueprints calls as the copies being tracked.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_CLEANER_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_CLEANER_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_table.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::jobs {

class Cleaner {
 public:
  Cleaner(JobTable* table, JobSteps* steps, tencent::LighthouseClient* client)
      : table_(table), steps_(steps), client_(client) {}

  // Adds the copies waiting to be deleted to `by_region` (region -> ids),
  // for the tracker's poll.
  void CollectPending(uint64_t generation,
                      std::map<std::string, std::vector<std::string>>* by_region);

  // After a poll: `seen` is every blueprint the poll returned, `asked` the
  // ids of the calls that succeeded (a pending copy asked about and not
  // seen is gone; one not asked about, e.g. adopted after the poll began,
  // waits for the next poll). Deletes what can be deleted now and commits
  // every job whose destinations changed.
  void Run(uint64_t generation, const std::map<std::string, tencent::Blueprint>& seen,
           const std::set<std::string>& asked);

 private:
  struct Copy {
    std::string job;
    std::string region;
    std::string blueprint_id;
  };
  // A copy's outcome: deleted, already gone, or the error of the attempt.
  struct Outcome {
    Copy copy;
    absl::Status status;
  };

  // Under the lock: settles copies that are gone or given up on, records
  // the state each was seen in, and picks the ones to delete now.
  std::vector<Copy> Plan(uint64_t generation, const std::map<std::string, tencent::Blueprint>& seen,
                         const std::set<std::string>& asked, std::set<std::string>* changed);
  // Outside the lock: one DeleteBlueprints per region and batch; a batch
  // that fails for a reason other than a transient one is split, so one
  // copy that cannot go does not hold back the others.
  std::vector<Outcome> Delete(const std::vector<Copy>& copies);
  void DeleteOneByOne(const std::vector<Copy>& copies, std::vector<Outcome>* outcomes);
  void Apply(uint64_t generation, const std::vector<Outcome>& outcomes,
             std::set<std::string>* changed);

  JobTable* const table_;
  JobSteps* const steps_;
  tencent::LighthouseClient* const client_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_CLEANER_H_
