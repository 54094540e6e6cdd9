// Clock: the one source of "now" and of sleeping for code whose timing matters
// (rate limiters, retry backoff, credential expiry, job deadlines). Production
// code uses SystemClock; unit tests use testing::FakeClock so that time-based
// behaviour is tested without real waiting.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_CLOCK_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace blueprintsync {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Blocks the calling thread until Now() >= t (returns at once if already past).
  virtual void SleepUntil(absl::Time t) = 0;
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  void SleepUntil(absl::Time t) override {
    const absl::Duration d = t - absl::Now();
    if (d > absl::ZeroDuration()) absl::SleepFor(d);
  }
  // A process-wide instance; never destroyed.
  static SystemClock* Default() {
    static SystemClock* const clock = new SystemClock();
    return clock;
  }
};

}  // namespace blueprintsync

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_CLOCK_H_
