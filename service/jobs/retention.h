// Retention: deletes the records of finished jobs (not open: no copy left
// to delete) that last changed longer ago than options.job_retention,
// freeing their request ids. On the leader only (or the single replica), in
// batches of retention_batch every retention_interval, so a large backlog
// is worked off without one long store call. Copies upstream are never
// touched.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_RETENTION_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_RETENTION_H_

#include "absl/time/time.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_table.h"

namespace blueprintsync::jobs {

class Retention {
 public:
  Retention(JobTable* table, JobSteps* steps, JobStore* store)
      : table_(table), steps_(steps), store_(store) {}

  // Deletes one batch if one is due; returns how many records went.
  int MaybeRun();

 private:
  JobTable* const table_;
  JobSteps* const steps_;
  JobStore* const store_;
  absl::Time next_run_ = absl::InfinitePast();  // tracker thread only
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_RETENTION_H_
