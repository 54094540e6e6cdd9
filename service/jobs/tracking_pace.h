// Adaptive tracking: when the tracker's next cycle may and must begin.
//
// A cycle makes Σ⌈n_region/100⌉ DescribeBlueprints calls. Spacing cycle
// starts at least calls / (share × rate) apart keeps the tracker's average
// below `share` of the account's DescribeBlueprints limit, however many
// copies are pending, while a small backlog is polled far more often than
// the fixed poll interval would. The gap is clamped to
// [min_poll_interval, poll_interval]: never slower than the fixed interval
// (with more calls per cycle than share × rate × poll_interval the tracker
// then takes more than its share, as it always did, still paced by the
// client's limiter), never a busy loop for one call.
//
// A wake (a submission just made new copies pending, a cancellation, a new
// leader) can bring the next cycle forward, but not before `earliest`: the
// budget holds for woken cycles too.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_TRACKING_PACE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_TRACKING_PACE_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/jobs/engine_options.h"

namespace blueprintsync::jobs {

// The time the tracker paces its cycles on, and its wait between cycles.
// Real time in production; a test substitutes a clock that jumps to the end
// of every wait, so minutes of pacing run in milliseconds.
class PacingClock {
 public:
  virtual ~PacingClock() = default;
  virtual absl::Time Now() = 0;
  // With `mu` held: waits until `cond` holds (re-checked whenever another
  // thread releases `mu`) or Now() >= t; returns whether it holds.
  virtual bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time t) = 0;
  // The real one (absl::Now); never destroyed.
  static PacingClock* Real();
};

struct PollWindow {
  absl::Time earliest;  // a wake does not start the next cycle before this
  absl::Time latest;    // the next cycle starts by then without a wake
};

// After a cycle that began at `start` and made `calls` DescribeBlueprints
// calls (0: nothing pending, which waits the full poll_interval unless woken).
PollWindow NextPollWindow(const JobEngineOptions& options, absl::Time start, int64_t calls);

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_TRACKING_PACE_H_
