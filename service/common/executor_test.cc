// Executor tests. Orderings are asserted, not durations: the only timeouts are
// generous bounds on waiting for something that must happen.
#include "service/common/executor.h"

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blueprintsync {
namespace {

using ::testing::ElementsAre;

bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > end) return pred();
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class Log {
 public:
  void Add(const std::string& s) {
    absl::MutexLock lock(&mu_);
    entries_.push_back(s);
  }
  std::vector<std::string> entries() const {
    absl::MutexLock lock(&mu_);
    return entries_;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> entries_;
};

TEST(ExecutorTest, PostRunsTasksInOrderOnOneThread) {
  Executor ex(1);
  Log log;
  for (int i = 0; i < 5; ++i) ex.Post([&log, i] { log.Add(std::to_string(i)); });
  ASSERT_TRUE(WaitFor([&] { return log.size() == 5; }));
  EXPECT_THAT(log.entries(), ElementsAre("0", "1", "2", "3", "4"));
}

TEST(ExecutorTest, ZeroThreadsMeansOne) {
  Executor ex(0);
  absl::Notification ran;
  ex.Post([&] { ran.Notify(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(ExecutorTest, ThreadsRunTasksConcurrently) {
  Executor ex(2);
  absl::Notification a_started, b_started;
  std::atomic<int> done{0};
  // Each task waits for the other to start: only possible on two threads.
  ex.Post([&] {
    a_started.Notify();
    if (b_started.WaitForNotificationWithTimeout(absl::Seconds(10))) ++done;
  });
  ex.Post([&] {
    b_started.Notify();
    if (a_started.WaitForNotificationWithTimeout(absl::Seconds(10))) ++done;
  });
  ASSERT_TRUE(WaitFor([&] { return done == 2; }, absl::Seconds(20)));
}

TEST(ExecutorTest, PostAtRunsInTimeOrderNotPostingOrder) {
  Executor ex(1);
  Log log;
  const absl::Time now = absl::Now();
  ex.PostAt(now + absl::Milliseconds(60), [&] { log.Add("c"); });
  ex.PostAt(now + absl::Milliseconds(20), [&] { log.Add("a"); });
  ex.PostAt(now + absl::Milliseconds(40), [&] { log.Add("b"); });
  ASSERT_TRUE(WaitFor([&] { return log.size() == 3; }));
  EXPECT_THAT(log.entries(), ElementsAre("a", "b", "c"));
}

TEST(ExecutorTest, PostAtWithEqualTimesKeepsPostingOrder) {
  Executor ex(1);
  Log log;
  absl::Notification release;
  ex.Post([&] { release.WaitForNotification(); });  // keep the worker busy
  const absl::Time when = absl::Now() + absl::Milliseconds(5);
  for (int i = 0; i < 5; ++i) ex.PostAt(when, [&log, i] { log.Add(std::to_string(i)); });
  release.Notify();
  ASSERT_TRUE(WaitFor([&] { return log.size() == 5; }));
  EXPECT_THAT(log.entries(), ElementsAre("0", "1", "2", "3", "4"));
}

TEST(ExecutorTest, PostAtInThePastRunsAtOnce) {
  Executor ex(1);
  absl::Notification ran;
  ex.PostAt(absl::Now() - absl::Hours(1), [&] { ran.Notify(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(ExecutorTest, EarlierTimerPostedLaterWakesASleepingWorker) {
  Executor ex(1);
  Log log;
  // The worker goes to sleep until this far-away timer ...
  ex.PostAt(absl::Now() + absl::Hours(1), [&] { log.Add("late"); });
  absl::SleepFor(absl::Milliseconds(20));
  // ... and must wake for an earlier one posted afterwards. Had it kept
  // sleeping, "early" could not run before "late".
  absl::Notification early_ran;
  ex.PostAt(absl::Now() + absl::Milliseconds(10), [&] {
    log.Add("early");
    early_ran.Notify();
  });
  ASSERT_TRUE(early_ran.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "the sleeping worker was not woken by the earlier timer";
  EXPECT_THAT(log.entries(), ElementsAre("early"));
  ex.Shutdown();
  EXPECT_THAT(log.entries(), ElementsAre("early"));
}

TEST(ExecutorTest, PostWakesAWorkerSleepingOnATimer) {
  Executor ex(1);
  ex.PostAt(absl::Now() + absl::Hours(1), [] {});
  absl::SleepFor(absl::Milliseconds(20));
  absl::Notification ran;
  ex.Post([&] { ran.Notify(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(ExecutorTest, ShutdownDropsDelayedTasksThatAreNotDue) {
  std::atomic<bool> ran{false};
  Executor ex(2);
  ex.PostAt(absl::Now() + absl::Hours(1), [&] { ran = true; });
  EXPECT_EQ(ex.pending(), 1u);
  ex.Shutdown();
  EXPECT_FALSE(ran);
  EXPECT_EQ(ex.pending(), 0u);
}

TEST(ExecutorTest, ShutdownFinishesRunningAndQueuedTasks) {
  Executor ex(1);
  absl::Notification started, release;
  std::atomic<int> count{0};
  ex.Post([&] {
    started.Notify();
    release.WaitForNotification();
    ++count;
  });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  for (int i = 0; i < 10; ++i) ex.Post([&] { ++count; });
  ex.PostAt(absl::Now() - absl::Seconds(1), [&] { ++count; });  // already due
  EXPECT_EQ(ex.pending(), 11u);
  std::thread stopper([&] { ex.Shutdown(); });
  absl::SleepFor(absl::Milliseconds(20));
  release.Notify();
  stopper.join();
  EXPECT_EQ(count, 12);
}

TEST(ExecutorTest, NothingIsAcceptedAfterShutdown) {
  Executor ex(1);
  ex.Shutdown();
  std::atomic<bool> ran{false};
  ex.Post([&] { ran = true; });
  ex.PostAt(absl::Now() - absl::Seconds(1), [&] { ran = true; });
  EXPECT_EQ(ex.pending(), 0u);
  ex.Shutdown();  // idempotent
  EXPECT_FALSE(ran);
}

TEST(ExecutorTest, TasksMayPostMoreTasks) {
  Executor ex(1);
  absl::Notification done;
  ex.Post([&] {
    ex.Post([&] { ex.PostAt(absl::Now(), [&] { done.Notify(); }); });
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(ExecutorTest, DestructorJoinsWorkers) {
  std::atomic<int> count{0};
  {
    Executor ex(2);
    for (int i = 0; i < 100; ++i) ex.Post([&] { ++count; });
  }
  EXPECT_EQ(count, 100);
}

}  // namespace
}  // namespace blueprintsync
