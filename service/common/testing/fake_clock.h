// FakeClock: a Clock whose time only moves when a test (or a sleeping caller)
// moves it. SleepUntil() advances the clock to the wake-up time at once, so
// code that backs off or paces itself runs instantly and deterministically.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_TESTING_FAKE_CLOCK_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_TESTING_FAKE_CLOCK_H_

#include <vector>

#include "absl/synchronization/mutex.h"
#include "service/common/clock.h"

namespace blueprintsync::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void SleepUntil(absl::Time t) override {
    absl::MutexLock lock(&mu_);
    sleeps_.push_back(t - now_);
    if (t > now_) now_ = t;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  // Every requested sleep, in order (negative or zero when already past).
  std::vector<absl::Duration> sleeps() const {
    absl::MutexLock lock(&mu_);
    return sleeps_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
  std::vector<absl::Duration> sleeps_;
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_TESTING_FAKE_CLOCK_H_
