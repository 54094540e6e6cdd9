#include "service/tencent/rate_limiter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace blueprintsync::tencent {
namespace {

absl::Duration IntervalFor(double per_second, absl::Duration guard) {
  // A zero, negative or NaN rate is a configuration mistake; pacing at
  // 1/s is safer than either never sending or never pacing.
  if (!(per_second > 0)) per_second = 1;
  return (absl::Seconds(1) + std::max(guard, absl::ZeroDuration())) / per_second;
}

}  // namespace

RateLimiter::RateLimiter(double per_second, Clock* clock, absl::Duration guard)
    : clock_(clock != nullptr ? clock : SystemClock::Default()),
      interval_(IntervalFor(per_second, guard)) {}

absl::StatusOr<absl::Time> RateLimiter::Reserve(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  // Read under the lock so that slots are handed out in the order of the
  // times the callers observed.
  const absl::Time now = clock_->Now();
  // max(now, next_free_): time spent idle is not banked as burst credit.
  const absl::Time slot = std::max(now, next_free_);
  if (slot > deadline) {
    return absl::DeadlineExceededError(absl::StrCat("rate limit: the next free slot is ",
                                                    absl::FormatDuration(slot - now),
                                                    " away, after the deadline"));
  }
  next_free_ = slot + interval_;
  return slot;
}

absl::Status RateLimiter::Acquire(absl::Time deadline) {
  absl::StatusOr<absl::Time> slot = Reserve(deadline);
  if (!slot.ok()) return slot.status();
  clock_->SleepUntil(*slot);
  return absl::OkStatus();
}

absl::Time RateLimiter::NextFree() const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  return std::max(now, next_free_);
}

ActionRateLimiters::ActionRateLimiters(RateLimits limits, Clock* clock)
    : limits_(std::move(limits)), clock_(clock != nullptr ? clock : SystemClock::Default()) {}

RateLimiter& ActionRateLimiters::For(const std::string& action) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<RateLimiter>& limiter = limiters_[action];
  if (limiter == nullptr) {
    double rate = limits_.default_per_second;
    if (action == "SyncBlueprint") {
      rate = limits_.sync_blueprint_per_second;
    } else if (action == "DescribeBlueprints") {
      rate = limits_.describe_blueprints_per_second;
    } else if (action == "DescribeRegions") {
      rate = limits_.describe_regions_per_second;
    }
    limiter = std::make_unique<RateLimiter>(rate, clock_, limits_.guard);
  }
  return *limiter;
}

}  // namespace blueprintsync::tencent
