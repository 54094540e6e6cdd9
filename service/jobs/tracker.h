// Tracker: follows every destination copy of the submitted jobs until it is
// NORMAL or has failed, and fails jobs that pass their deadline. A cycle
// makes one DescribeBlueprints per region per 100 ids, whatever the number
// of jobs, so its cost grows with regions, not with jobs; cycles come as
// often as a share of the DescribeBlueprints budget allows for that cost
// (tracking_pace.h; the engine's tracker thread runs them).
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_TRACKER_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_TRACKER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "service/jobs/cleaner.h"
#include "service/jobs/job_steps.h"
#include "service/jobs/job_table.h"
#include "service/jobs/job_writer.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::jobs {

class Tracker {
 public:
  Tracker(JobTable* table, JobWriter* writer, JobSteps* steps, Cleaner* cleaner,
          tencent::LighthouseClient* client)
      : table_(table), writer_(writer), steps_(steps), cleaner_(cleaner), client_(client) {}

  // One cycle: retries failed final writes, expires deadlines, polls the
  // copies being tracked and those waiting to be deleted (in the same
  // batched calls), then lets the cleaner delete what it can. Returns the
  // DescribeBlueprints calls it made (0 when not leading or nothing pending).
  int64_t PollOnce();

 private:
  struct Poll {
    std::map<std::string, tencent::Blueprint> seen;  // id -> latest view
    std::map<std::string, std::string> failed;       // region -> error
    std::vector<std::string> answered;               // regions that answered
    // Ids asked in calls that succeeded: one of them not in `seen` is gone.
    std::set<std::string> answered_ids;
    int64_t calls = 0;
  };
  using Seen = std::map<std::string, tencent::Blueprint>;
  void ExpireDeadlines(uint64_t generation);
  // Calls `region_done` with what each region's calls saw as soon as they
  // are in, then returns the whole cycle's view.
  Poll Describe(std::map<std::string, std::vector<std::string>> by_region,
                const std::function<void(const Seen&)>& region_done);
  // Applies what was seen to the destinations of `jobs`; returns the jobs
  // that changed.
  std::vector<std::string> Apply(uint64_t generation, const Seen& seen,
                                 const std::set<std::string>& jobs);
  // Counts the cycle and keeps each region's poll error (for deadlines).
  void Record(const Poll& poll);

  JobTable* const table_;
  JobWriter* const writer_;
  JobSteps* const steps_;
  Cleaner* const cleaner_;
  tencent::LighthouseClient* const client_;
  absl::Mutex poll_mu_;  // one cycle at a time
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_TRACKER_H_
