#include "service/jobs/tracking_pace.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace blueprintsync::jobs {
namespace {

class RealPacingClock final : public PacingClock {
 public:
  absl::Time Now() override { return absl::Now(); }
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time t) override {
    return mu->AwaitWithDeadline(cond, t);
  }
};

}  // namespace

PacingClock* PacingClock::Real() {
  static PacingClock* const clock = new RealPacingClock();
  return clock;
}

PollWindow NextPollWindow(const JobEngineOptions& options, absl::Time start, int64_t calls) {
  const absl::Duration min_gap = std::min(options.min_poll_interval, options.poll_interval);
  const double budget_per_second = options.poll_budget_share * options.describe_per_second;
  // The time `calls` take out of the tracker's share of the budget.
  const absl::Duration paid = budget_per_second > 0
                                  ? absl::Seconds(static_cast<double>(calls) / budget_per_second)
                                  : options.poll_interval;
  const absl::Duration gap = std::clamp(paid, min_gap, options.poll_interval);
  PollWindow w;
  w.earliest = start + gap;
  // Nothing was pending: nothing to poll until something is woken for.
  w.latest = calls > 0 ? w.earliest : start + options.poll_interval;
  return w;
}

}  // namespace blueprintsync::jobs
