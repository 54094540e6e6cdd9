#include "service/tencent/rate_limiter.h"

#include <algorithm>
#include <cmath>
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

// How often a caller waiting for the end of the call a window earlier
// looks again. Any step under a second costs nothing: once that call has
// ended, the caller waits a second after its end anyway.
constexpr absl::Duration kInFlightPoll = absl::Milliseconds(50);

uint64_t WindowCalls(double per_second) {
  if (!(per_second > 1)) return 1;
  return static_cast<uint64_t>(std::min(std::ceil(per_second), 1e6));
}

}  // namespace

RateLimiter::RateLimiter(double per_second, Clock* clock, absl::Duration guard)
    : clock_(clock != nullptr ? clock : SystemClock::Default()),
      interval_(IntervalFor(per_second, guard)),
      window_calls_(WindowCalls(per_second)) {}

const RateLimiter::Mark* RateLimiter::WindowEarlierLocked(uint64_t number) const {
  if (number < window_calls_) return nullptr;
  auto it = marks_.find(number - window_calls_);
  return it == marks_.end() ? nullptr : &it->second;  // none: a window old, no bound
}

absl::Time RateLimiter::AfterWindowLocked(uint64_t number) const {
  const Mark* earlier = WindowEarlierLocked(number);
  if (earlier == nullptr) return absl::InfinitePast();
  // `by` is when that call had certainly arrived (its answer was back), and
  // a call cannot arrive before it is sent: a plain second after it is
  // enough. The guard is for slots alone, where the arrival is a guess;
  // adding it here too would cost one guard per second at full rate.
  return earlier->by + absl::Seconds(1);
}

absl::Time RateLimiter::ClearOfWindowLocked(uint64_t number, absl::Time now) const {
  const Mark* earlier = WindowEarlierLocked(number);
  if (earlier == nullptr) return absl::InfinitePast();
  if (!earlier->final) return std::max(earlier->by, now) + absl::Seconds(1);
  return earlier->by + absl::Seconds(1);
}

absl::Time RateLimiter::IdleAtLocked(absl::Time now) const {
  absl::Time at = std::max({now, next_free_, ClearOfWindowLocked(next_number_, now)});
  for (const auto& [number, going] : waiting_) at = std::max(at, going);
  // A foreground caller whose time has come is about to go: look again
  // once it would have taken its slot.
  if (!waiting_.empty() && at <= now) at = now + interval_;
  return at;
}

void RateLimiter::MarkLocked(uint64_t number, absl::Time by, bool final) {
  auto it = marks_.find(number);
  if (it != marks_.end()) {
    it->second.by = std::max(it->second.by, by);
    it->second.final = it->second.final || final;
  }
  PruneLocked(clock_->Now());
}

void RateLimiter::PruneLocked(absl::Time now) {
  // A final mark a window old bounds nothing any more; an unfinished one
  // still may (its call can be on its way), and keeps the ones after it.
  const absl::Duration window = static_cast<int64_t>(window_calls_) * interval_;
  while (!marks_.empty() && marks_.begin()->second.final &&
         marks_.begin()->second.by + window <= now) {
    marks_.erase(marks_.begin());
  }
}

absl::Status RateLimiter::ReserveLocked(absl::Time deadline, bool final, absl::Time* slot,
                                        uint64_t* number) {
  // Read under the lock so that slots are handed out in the order of the
  // times the callers observed.
  const absl::Time now = clock_->Now();
  // max(now, next_free_): time spent idle is not banked as burst credit.
  *slot = std::max({now, next_free_, AfterWindowLocked(next_number_)});
  if (*slot > deadline) {
    return absl::DeadlineExceededError(absl::StrCat("rate limit: the next free slot is ",
                                                    absl::FormatDuration(*slot - now),
                                                    " away, after the deadline"));
  }
  next_free_ = *slot + interval_;
  *number = next_number_++;
  marks_[*number] = Mark{*slot, final};
  PruneLocked(now);
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> RateLimiter::Reserve(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  absl::Time slot;
  uint64_t number;
  // Reserve() alone says nothing more about the call: it goes at its slot.
  if (absl::Status s = ReserveLocked(deadline, /*final=*/true, &slot, &number); !s.ok()) return s;
  return slot;
}

absl::Status RateLimiter::Acquire(absl::Time deadline, uint64_t* call) {
  absl::Time slot;
  uint64_t number;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = ReserveLocked(deadline, /*final=*/false, &slot, &number); !s.ok()) {
      return s;
    }
    waiting_[number] = slot;
  }
  clock_->SleepUntil(slot);
  // The call a window earlier may have ended since this slot was handed
  // out, or may not have ended yet.
  for (;;) {
    absl::Time wake;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = clock_->Now();
      const absl::Time after = ClearOfWindowLocked(number, now);
      if (after <= now) {
        MarkLocked(number, now, call == nullptr);
        waiting_.erase(number);
        break;
      }
      const Mark* earlier = WindowEarlierLocked(number);
      const bool on_its_way = earlier != nullptr && !earlier->final;
      if (after > deadline) {
        MarkLocked(number, slot, true);  // never sent
        waiting_.erase(number);
        return absl::DeadlineExceededError(
            on_its_way ? "rate limit: the call a second earlier is still on its way, so this one "
                         "could not go before its deadline"
                       : absl::StrCat("rate limit: the call a second earlier ended ",
                                      absl::FormatDuration(after - slot),
                                      " too late for this slot's deadline"));
      }
      waiting_[number] = after;
      // Still on its way: look again for its end (the bound moves with it).
      wake = on_its_way ? std::min(after, now + kInFlightPoll) : after;
    }
    clock_->SleepUntil(wake);
  }
  if (call != nullptr) *call = number;
  return absl::OkStatus();
}

absl::Status RateLimiter::AcquireBackground(absl::Time deadline, uint64_t* call) {
  for (;;) {
    absl::Time idle_at;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = clock_->Now();
      idle_at = IdleAtLocked(now);
      if (idle_at <= now) {
        // Idle: the slot is now, and the call a window earlier has ended a
        // second ago or more; the call goes at once.
        absl::Time slot;
        uint64_t number;
        if (absl::Status s = ReserveLocked(deadline, /*final=*/call == nullptr, &slot, &number);
            !s.ok()) {
          return s;
        }
        if (call != nullptr) *call = number;
        return absl::OkStatus();
      }
      if (idle_at > deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "rate limit: a background call waits until the limiter is idle, at the earliest ",
            absl::FormatDuration(idle_at - now), " from now, after the deadline"));
      }
    }
    clock_->SleepUntil(idle_at);
  }
}

void RateLimiter::Ended(uint64_t call) {
  absl::MutexLock lock(&mu_);
  MarkLocked(call, clock_->Now(), true);
}

absl::Time RateLimiter::NextFree() const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  return std::max({now, next_free_, AfterWindowLocked(next_number_)});
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
    } else if (action == "DeleteBlueprints") {
      rate = limits_.delete_blueprints_per_second;
    }
    limiter = std::make_unique<RateLimiter>(rate, clock_, limits_.guard);
  }
  return *limiter;
}

}  // namespace blueprintsync::tencent
