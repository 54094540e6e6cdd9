#include "service/tencent/rate_limiter.h"

#include <algorithm>
#include <functional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/testing/fake_clock.h"

namespace blueprintsync::tencent {
namespace {

using ::blueprintsync::testing::FakeClock;

TEST(RateLimiterTest, IntervalIsOneSecondPlusGuardOverRate) {
  FakeClock clock;
  // The default guard is 20 ms.
  EXPECT_EQ(RateLimiter(20, &clock).interval(), absl::Milliseconds(51));
  EXPECT_EQ(RateLimiter(10, &clock).interval(), absl::Milliseconds(102));
  EXPECT_EQ(RateLimiter(10, &clock, absl::ZeroDuration()).interval(), absl::Milliseconds(100));
  EXPECT_EQ(RateLimiter(4, &clock, absl::Milliseconds(200)).interval(), absl::Milliseconds(300));
  EXPECT_EQ(RateLimiter(0.5, &clock, absl::ZeroDuration()).interval(), absl::Seconds(2));
}

TEST(RateLimiterTest, FirstReservationIsImmediate) {
  FakeClock clock;
  RateLimiter limiter(20, &clock);
  EXPECT_EQ(limiter.NextFree(), clock.Now());
  absl::StatusOr<absl::Time> slot = limiter.Reserve();
  ASSERT_TRUE(slot.ok()) << slot.status();
  EXPECT_EQ(*slot, clock.Now());
}

TEST(RateLimiterTest, ReservationsAreEvenlySpaced) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  for (int i = 0; i < 25; ++i) {
    absl::StatusOr<absl::Time> slot = limiter.Reserve();
    ASSERT_TRUE(slot.ok());
    EXPECT_EQ(*slot, start + i * absl::Milliseconds(100)) << i;
  }
  EXPECT_EQ(limiter.NextFree(), start + absl::Milliseconds(2500));
}

TEST(RateLimiterTest, NoMoreThanRateInAnySlidingSecond) {
  FakeClock clock;
  RateLimiter limiter(20, &clock);  // default guard
  std::vector<absl::Time> slots;
  for (int i = 0; i < 100; ++i) slots.push_back(*limiter.Reserve());
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto end = std::lower_bound(slots.begin(), slots.end(), slots[i] + absl::Seconds(1));
    EXPECT_LE(end - (slots.begin() + i), 20) << i;
  }
}

TEST(RateLimiterTest, AcquireSleepsUntilTheSlot) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  ASSERT_TRUE(limiter.Acquire().ok());
  ASSERT_TRUE(limiter.Acquire().ok());
  ASSERT_TRUE(limiter.Acquire().ok());
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(200));
  EXPECT_THAT(clock.sleeps(), ::testing::ElementsAre(absl::ZeroDuration(), absl::Milliseconds(100),
                                                     absl::Milliseconds(100)));
}

TEST(RateLimiterTest, DeadlineRefusalReservesNothing) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  ASSERT_TRUE(limiter.Reserve().ok());  // start
  ASSERT_TRUE(limiter.Reserve().ok());  // +100ms
  absl::StatusOr<absl::Time> refused = limiter.Reserve(start + absl::Milliseconds(150));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(limiter.NextFree(), start + absl::Milliseconds(200));
  // Refused again and again: still nothing reserved.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.Reserve(start).ok());
  EXPECT_EQ(limiter.NextFree(), start + absl::Milliseconds(200));
  // A deadline exactly at the slot is in time.
  absl::StatusOr<absl::Time> exact = limiter.Reserve(start + absl::Milliseconds(200));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, start + absl::Milliseconds(200));
  // Acquire with a deadline refuses without sleeping.
  const size_t sleeps_before = clock.sleeps().size();
  EXPECT_EQ(limiter.Acquire(start).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(clock.sleeps().size(), sleeps_before);
  EXPECT_EQ(limiter.NextFree(), start + absl::Milliseconds(300));
}

TEST(RateLimiterTest, DeadlineInThePastStillGetsAnImmediateFreeSlot) {
  FakeClock clock;
  RateLimiter limiter(10, &clock);
  // The slot is "now", which is after a past deadline: refused.
  EXPECT_FALSE(limiter.Reserve(clock.Now() - absl::Milliseconds(1)).ok());
  EXPECT_TRUE(limiter.Reserve(clock.Now()).ok());
}

TEST(RateLimiterTest, IdleTimeDoesNotAccumulateBurstCredit) {
  FakeClock clock;
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  ASSERT_TRUE(limiter.Reserve().ok());
  clock.Advance(absl::Seconds(30));
  const absl::Time now = clock.Now();
  EXPECT_EQ(*limiter.Reserve(), now);
  EXPECT_EQ(*limiter.Reserve(), now + absl::Milliseconds(100));
  EXPECT_EQ(*limiter.Reserve(), now + absl::Milliseconds(200));
}

TEST(RateLimiterTest, PartlyElapsedIntervalIsHonoured) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  ASSERT_TRUE(limiter.Reserve().ok());
  clock.Advance(absl::Milliseconds(30));
  EXPECT_EQ(*limiter.Reserve(), start + absl::Milliseconds(100));
}

TEST(RateLimiterTest, ConcurrentReservationsGetDistinctEvenlySpacedSlots) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(20, &clock, absl::ZeroDuration());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  absl::Mutex mu;
  std::vector<absl::Time> slots;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<absl::Time> mine;
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<absl::Time> slot = limiter.Reserve();
        if (slot.ok()) mine.push_back(*slot);
      }
      absl::MutexLock lock(&mu);
      slots.insert(slots.end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(slots.size(), static_cast<size_t>(kThreads * kPerThread));
  std::sort(slots.begin(), slots.end());
  for (size_t i = 0; i < slots.size(); ++i) {
    ASSERT_EQ(slots[i], start + static_cast<int64_t>(i) * absl::Milliseconds(50)) << i;
  }
}

TEST(RateLimiterTest, InvalidRateIsPacedAtOnePerSecond) {
  FakeClock clock;
  EXPECT_EQ(RateLimiter(0, &clock, absl::ZeroDuration()).interval(), absl::Seconds(1));
  EXPECT_EQ(RateLimiter(-5, &clock, absl::ZeroDuration()).interval(), absl::Seconds(1));
}

// A manual clock whose sleeps can run a hook first (another caller acting
// while this one waits) and can end late, as they do on a loaded host.
class ScriptedClock final : public Clock {
 public:
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void SleepUntil(absl::Time t) override {
    std::function<void()> hook;
    {
      absl::MutexLock lock(&mu_);
      hook = std::exchange(on_next_sleep_, nullptr);
    }
    if (hook) hook();
    absl::MutexLock lock(&mu_);
    now_ = std::max(now_, t) + late_;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }
  void set_late(absl::Duration late) {
    absl::MutexLock lock(&mu_);
    late_ = late;
  }
  void OnNextSleep(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    on_next_sleep_ = std::move(hook);
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1700000000);
  absl::Duration late_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_next_sleep_ ABSL_GUARDED_BY(mu_);
};

TEST(RateLimiterTest, ASlowCallHoldsBackTheCallASecondOfSlotsLater) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());  // 100 ms apart
  uint64_t first = 0;
  ASSERT_TRUE(limiter.Acquire(absl::InfiniteFuture(), &first).ok());
  // The nine calls after it keep their even slots...
  for (int i = 1; i < 10; ++i) EXPECT_EQ(*limiter.Reserve(), start + i * absl::Milliseconds(100));
  clock.Set(start + absl::Milliseconds(150));  // e.g. a new connection's handshake
  limiter.Ended(first);
  // ...the tenth keeps a second from when the slow one may have arrived: at
  // its slot it could reach Tencent 850 ms after it.
  EXPECT_EQ(*limiter.Reserve(), start + absl::Milliseconds(1150));
  EXPECT_EQ(limiter.NextFree(), start + absl::Milliseconds(1250));
}

TEST(RateLimiterTest, ACallThatEndsAfterTheSlotLaterWasGivenStillHoldsItBack) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  uint64_t first = 0;
  ASSERT_TRUE(limiter.Acquire(absl::InfiniteFuture(), &first).ok());
  for (int i = 1; i < 10; ++i) ASSERT_TRUE(limiter.Reserve().ok());
  // The tenth call gets the slot at +1 s; while it waits, the first ends.
  clock.OnNextSleep([&] {
    clock.Set(start + absl::Milliseconds(150));
    limiter.Ended(first);
  });
  ASSERT_TRUE(limiter.Acquire().ok());
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(1150));
}

TEST(RateLimiterTest, AWaitPastTheDeadlineForASlowCallIsRefused) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  uint64_t first = 0;
  ASSERT_TRUE(limiter.Acquire(absl::InfiniteFuture(), &first).ok());
  for (int i = 1; i < 10; ++i) ASSERT_TRUE(limiter.Reserve().ok());
  clock.OnNextSleep([&] {
    clock.Set(start + absl::Milliseconds(150));
    limiter.Ended(first);
  });
  EXPECT_EQ(limiter.Acquire(start + absl::Milliseconds(1100)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_LE(clock.Now(), start + absl::Milliseconds(1100));
}

TEST(RateLimiterTest, ACallerWokenLateHoldsBackTheCallASecondOfSlotsLater) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  clock.set_late(absl::Milliseconds(30));
  ASSERT_TRUE(limiter.Acquire().ok());  // its slot is `start`; it goes at +30 ms
  clock.set_late(absl::ZeroDuration());
  for (int i = 1; i < 10; ++i) EXPECT_EQ(*limiter.Reserve(), start + i * absl::Milliseconds(100));
  EXPECT_EQ(*limiter.Reserve(), start + absl::Milliseconds(1030));
}

TEST(RateLimiterTest, CallsThatGoAndEndOnTimeKeepTheirEvenSlots) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  for (int i = 0; i < 25; ++i) {
    uint64_t call = 0;
    ASSERT_TRUE(limiter.Acquire(absl::InfiniteFuture(), &call).ok());
    EXPECT_EQ(clock.Now(), start + i * absl::Milliseconds(100)) << i;
    limiter.Ended(call);
  }
}

TEST(RateLimiterTest, ACallStillOnItsWayAWindowEarlierHoldsTheCallUntilASecondAfterItsEnd) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  uint64_t first = 0;
  ASSERT_TRUE(limiter.Acquire(absl::InfiniteFuture(), &first).ok());
  for (int i = 1; i < 10; ++i) ASSERT_TRUE(limiter.Reserve().ok());
  // The tenth call's slot comes (+1 s) while the first has no answer yet: it
  // may still reach Tencent at any moment. It comes at +1.3 s.
  clock.OnNextSleep([&] {
    clock.OnNextSleep([&] {
      clock.Set(start + absl::Milliseconds(1300));
      limiter.Ended(first);
    });
  });
  ASSERT_TRUE(limiter.Acquire().ok());
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(2300));
}

TEST(RateLimiterTest, ACallStillOnItsWayPastTheDeadlineRefusesAtOnce) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  uint64_t first = 0;
  ASSERT_TRUE(limiter.Acquire(absl::InfiniteFuture(), &first).ok());
  for (int i = 1; i < 10; ++i) ASSERT_TRUE(limiter.Reserve().ok());
  // At its slot (+1 s) the first call is on its way: the tenth could go a
  // second after its end at the earliest, after its deadline.
  const absl::Status refused = limiter.Acquire(start + absl::Milliseconds(1900));
  EXPECT_EQ(refused.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("still on its way"));
  EXPECT_EQ(clock.Now(), start + absl::Seconds(1));
}

// --- Background calls (AcquireBackground) ---

TEST(RateLimiterTest, BackgroundCallsAloneGoAtTheFullRate) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  std::vector<absl::Time> went;
  for (int i = 0; i < 25; ++i) {
    uint64_t call = 0;
    ASSERT_TRUE(limiter.AcquireBackground(absl::InfiniteFuture(), &call).ok()) << i;
    went.push_back(clock.Now());
    limiter.Ended(call);
  }
  for (int i = 0; i < 25; ++i) EXPECT_EQ(went[i], start + i * absl::Milliseconds(100)) << i;
  // And they are slots like any other: a foreground caller comes next.
  EXPECT_EQ(*limiter.Reserve(), start + absl::Milliseconds(2500));
}

TEST(RateLimiterTest, BackgroundAndForegroundCallsTogetherKeepTheRateInAnySlidingSecond) {
  FakeClock clock;
  RateLimiter limiter(20, &clock);  // default guard
  std::vector<absl::Time> went;
  for (int i = 0; i < 100; ++i) {
    uint64_t call = 0;
    const absl::Status s = i % 3 == 0 ? limiter.AcquireBackground(absl::InfiniteFuture(), &call)
                                      : limiter.Acquire(absl::InfiniteFuture(), &call);
    ASSERT_TRUE(s.ok()) << i << ": " << s;
    went.push_back(clock.Now());
    limiter.Ended(call);
  }
  for (size_t i = 0; i < went.size(); ++i) {
    const auto end = std::lower_bound(went.begin(), went.end(), went[i] + absl::Seconds(1));
    EXPECT_LE(end - (went.begin() + i), 20) << i;
  }
}

TEST(RateLimiterTest, ForegroundCallersArrivingWhileABackgroundOneWaitsGoFirst) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());  // 100 ms apart
  ASSERT_TRUE(limiter.Acquire().ok());                    // at start
  // The background caller waits for the next free slot (+100 ms); two
  // foreground callers come meanwhile and take +100 ms and +200 ms.
  std::vector<absl::Time> foreground;
  clock.OnNextSleep([&] {
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(limiter.Acquire().ok());
      foreground.push_back(clock.Now());
    }
  });
  uint64_t call = 0;
  ASSERT_TRUE(limiter.AcquireBackground(absl::InfiniteFuture(), &call).ok());
  EXPECT_THAT(foreground, ::testing::ElementsAre(start + absl::Milliseconds(100),
                                                 start + absl::Milliseconds(200)));
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(300));
  limiter.Ended(call);
  // A foreground caller after it waits one interval, as behind any caller.
  EXPECT_EQ(*limiter.Reserve(), start + absl::Milliseconds(400));
}

TEST(RateLimiterTest, ABackgroundCallWaitsForAForegroundCallerHeldBackByASlowCall) {
  ScriptedClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  uint64_t first = 0;
  ASSERT_TRUE(limiter.Acquire(absl::InfiniteFuture(), &first).ok());
  for (int i = 1; i < 10; ++i) ASSERT_TRUE(limiter.Reserve().ok());
  // The tenth call (slot +1 s) waits for the first, which ends at +1.15 s,
  // so until +2.15 s. Meanwhile no slot is reserved ahead of now (the next
  // is +1.1 s), but a background call must still wait for the tenth.
  absl::Status background_meanwhile;
  absl::Time next_free_meanwhile;
  clock.OnNextSleep([&] {    // the tenth sleeps until its slot
    clock.OnNextSleep([&] {  // ...then for the first call's end
      clock.Set(start + absl::Milliseconds(1150));
      limiter.Ended(first);
      clock.OnNextSleep([&] {  // ...then until a second after it
        background_meanwhile = limiter.AcquireBackground(start + absl::Seconds(2));
        next_free_meanwhile = limiter.NextFree();
      });
    });
  });
  ASSERT_TRUE(limiter.Acquire().ok());
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(2150));
  EXPECT_EQ(background_meanwhile.code(), absl::StatusCode::kDeadlineExceeded)
      << background_meanwhile;
  // Refused without reserving anything.
  EXPECT_EQ(next_free_meanwhile, start + absl::Milliseconds(1150));
  // Once the tenth has gone, the limiter is idle.
  ASSERT_TRUE(limiter.AcquireBackground().ok());
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(2150));
}

TEST(RateLimiterTest, BackgroundDeadlineIsHonouredWithoutReservingOrSleeping) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter(10, &clock, absl::ZeroDuration());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.Reserve().ok());  // up to +200 ms
  EXPECT_EQ(limiter.AcquireBackground(start + absl::Milliseconds(250)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(clock.sleeps().empty());
  EXPECT_EQ(limiter.NextFree(), start + absl::Milliseconds(300));
  // A deadline exactly when the limiter turns idle is in time.
  ASSERT_TRUE(limiter.AcquireBackground(start + absl::Milliseconds(300)).ok());
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(300));
  // An idle limiter still refuses a deadline already past.
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(limiter.AcquireBackground(clock.Now() - absl::Milliseconds(1)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(limiter.NextFree(), clock.Now());
}

TEST(ActionRateLimitersTest, DefaultsPerAction) {
  FakeClock clock;
  ActionRateLimiters limiters(RateLimits{}, &clock);
  EXPECT_EQ(limiters.For("SyncBlueprint").interval(), absl::Milliseconds(51));
  EXPECT_EQ(limiters.For("DescribeBlueprints").interval(), absl::Milliseconds(102));
  EXPECT_EQ(limiters.For("DescribeRegions").interval(), absl::Milliseconds(102));
  // 20/s like ModifyBlueprintAttribute, not the 10/s default.
  EXPECT_EQ(limiters.For("DeleteBlueprints").interval(), absl::Milliseconds(51));
  EXPECT_EQ(limiters.For("SomethingElse").interval(), absl::Milliseconds(102));
}

TEST(ActionRateLimitersTest, ConfiguredRatesAndGuard) {
  FakeClock clock;
  RateLimits limits;
  limits.sync_blueprint_per_second = 5;
  limits.describe_blueprints_per_second = 2;
  limits.describe_regions_per_second = 1;
  limits.delete_blueprints_per_second = 8;
  limits.default_per_second = 4;
  limits.guard = absl::ZeroDuration();
  ActionRateLimiters limiters(limits, &clock);
  EXPECT_EQ(limiters.For("SyncBlueprint").interval(), absl::Milliseconds(200));
  EXPECT_EQ(limiters.For("DescribeBlueprints").interval(), absl::Milliseconds(500));
  EXPECT_EQ(limiters.For("DescribeRegions").interval(), absl::Seconds(1));
  EXPECT_EQ(limiters.For("DeleteBlueprints").interval(), absl::Milliseconds(125));
  EXPECT_EQ(limiters.For("ModifyBlueprintAttribute").interval(), absl::Milliseconds(250));
}

TEST(ActionRateLimitersTest, OneLimiterPerActionSharedAcrossCalls) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  ActionRateLimiters limiters(RateLimits{}, &clock);
  RateLimiter& sync = limiters.For("SyncBlueprint");
  EXPECT_EQ(&sync, &limiters.For("SyncBlueprint"));
  EXPECT_NE(&sync, &limiters.For("DescribeBlueprints"));
  EXPECT_NE(&limiters.For("A"), &limiters.For("B"));  // unknown actions are not pooled
  ASSERT_TRUE(sync.Reserve().ok());
  EXPECT_EQ(*limiters.For("SyncBlueprint").Reserve(), start + sync.interval());
  // Another action is not slowed by SyncBlueprint's reservations.
  EXPECT_EQ(*limiters.For("DescribeBlueprints").Reserve(), start);
}

}  // namespace
}  // namespace blueprintsync::tencent
