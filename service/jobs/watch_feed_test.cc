// JobFeed, WatchSubscriber and WatchFanOut: one shared version per change,
// delivered off the publisher's thread, conflated for a slow watcher.
#include "service/jobs/watch_feed.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace blueprintsync::jobs {
namespace {

constexpr absl::Duration kWait = absl::Seconds(30);

JobVersion Version(int n, v1::SyncJob::State state = v1::SyncJob::RUNNING) {
  auto job = std::make_shared<v1::SyncJob>();
  job->set_name("syncJobs/feed");
  job->set_upstream_request_id(absl::StrCat(n));
  job->set_state(state);
  return job;
}

// What one subscriber was given: versions (by number), the status that
// ended it, the pointers (to check sharing). The record lives as long as the
// callbacks that fill it: the fan-out thread may still be finishing a call
// (releasing the record's mutex) when a test that saw its last version ends.
class Seen {
  struct State {
    absl::Notification entered;
    absl::Notification* gate = nullptr;
    mutable absl::Mutex mu;
    std::vector<int> numbers ABSL_GUARDED_BY(mu);
    std::vector<const v1::SyncJob*> pointers ABSL_GUARDED_BY(mu);
    absl::Status end ABSL_GUARDED_BY(mu);
  };
  const std::shared_ptr<State> st_ = std::make_shared<State>();

 public:
  JobService::WatchCallback Callback() {
    return [st = st_](absl::StatusOr<JobVersion> v) {
      if (!st->entered.HasBeenNotified()) st->entered.Notify();
      if (st->gate != nullptr) st->gate->WaitForNotification();
      absl::MutexLock lock(&st->mu);
      if (v.ok()) {
        st->numbers.push_back(std::stoi((*v)->upstream_request_id()));
        st->pointers.push_back(v->get());
      } else {
        st->end = v.status();
      }
    };
  }
  absl::Notification& entered = st_->entered;  // the first call has begun
  // Calls wait for `gate` before they record anything.
  void HoldOn(absl::Notification* gate) { st_->gate = gate; }
  std::vector<int> numbers() const {
    absl::MutexLock lock(&st_->mu);
    return st_->numbers;
  }
  std::vector<const v1::SyncJob*> pointers() const {
    absl::MutexLock lock(&st_->mu);
    return st_->pointers;
  }
  absl::Status end() const {
    absl::MutexLock lock(&st_->mu);
    return st_->end;
  }
  bool WaitForLast(int n) const {
    State* st = st_.get();
    absl::MutexLock lock(&st->mu);
    auto got = [st, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(st->mu) {
      return !st->numbers.empty() && st->numbers.back() == n;
    };
    return st->mu.AwaitWithTimeout(absl::Condition(&got), kWait);
  }
};

void ExpectIncreasing(const std::vector<int>& numbers) {
  for (size_t i = 1; i < numbers.size(); ++i) {
    EXPECT_LT(numbers[i - 1], numbers[i]) << "went back at " << i;
  }
}

TEST(WatchFeedTest, EverySubscriberGetsTheSameSharedVersion) {
  WatchFanOut fanout;
  auto feed = std::make_shared<JobFeed>(&fanout);
  std::vector<std::unique_ptr<Seen>> seen;
  for (int i = 0; i < 1000; ++i) {
    seen.push_back(std::make_unique<Seen>());
    feed->Subscribe(i, std::make_shared<WatchSubscriber>(seen.back()->Callback()));
  }
  JobVersion v = Version(1);
  feed->Publish(v);
  for (const auto& s : seen) {
    ASSERT_TRUE(s->WaitForLast(1));
    EXPECT_EQ(s->pointers(), std::vector<const v1::SyncJob*>{v.get()}) << "a copy per watcher";
  }
}

TEST(WatchFeedTest, PublishDoesNotWaitForASlowSubscriber) {
  // The engine publishes under its lock: a stuck watcher must not stop it.
  WatchFanOut fanout;
  auto feed = std::make_shared<JobFeed>(&fanout);
  absl::Notification gate;
  Seen slow;
  slow.HoldOn(&gate);
  feed->Subscribe(1, std::make_shared<WatchSubscriber>(slow.Callback()));
  for (int n = 1; n <= 100; ++n) feed->Publish(Version(n));  // returns although slow is stuck
  EXPECT_EQ(feed->Latest().second, 100u);
  gate.Notify();
  EXPECT_TRUE(slow.WaitForLast(100));
}

TEST(WatchFeedTest, ASlowSubscriberSkipsToTheLatestInsteadOfQueueing) {
  WatchFanOut fanout;
  auto feed = std::make_shared<JobFeed>(&fanout);
  absl::Notification gate;
  Seen slow, quick;
  slow.HoldOn(&gate);
  feed->Subscribe(1, std::make_shared<WatchSubscriber>(slow.Callback()));
  feed->Subscribe(2, std::make_shared<WatchSubscriber>(quick.Callback()));
  feed->Publish(Version(1));
  // slow is stuck in its first call (the fan-out with it) while 2..999
  // and the terminal version come.
  ASSERT_TRUE(slow.entered.WaitForNotificationWithTimeout(kWait));
  for (int n = 2; n < 1000; ++n) feed->Publish(Version(n));
  feed->Publish(Version(1000, v1::SyncJob::SUCCEEDED));
  gate.Notify();
  ASSERT_TRUE(slow.WaitForLast(1000));
  ASSERT_TRUE(quick.WaitForLast(1000));
  const std::vector<int> got = slow.numbers();
  ExpectIncreasing(got);
  EXPECT_EQ(got.front(), 1);
  EXPECT_LE(got.size(), 3u) << "intermediate versions were queued for a slow watcher";
  ExpectIncreasing(quick.numbers());
}

TEST(WatchFeedTest, ConcurrentPublishersAndManySubscribersNeverGoBackAndEndOnTheLast) {
  WatchFanOut fanout;
  auto feed = std::make_shared<JobFeed>(&fanout);
  constexpr int kSubscribers = 2000;
  std::vector<std::unique_ptr<Seen>> seen;
  for (int i = 0; i < kSubscribers; ++i) {
    seen.push_back(std::make_unique<Seen>());
    feed->Subscribe(i, std::make_shared<WatchSubscriber>(seen.back()->Callback()));
  }
  // Publishing is ordered by the caller's lock (the engine's): so here.
  absl::Mutex order;
  std::atomic<int> next{1};
  std::vector<std::thread> publishers;
  for (int t = 0; t < 4; ++t) {
    publishers.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        absl::MutexLock lock(&order);
        const int n = next++;
        feed->Publish(Version(n, n == 1000 ? v1::SyncJob::SUCCEEDED : v1::SyncJob::RUNNING));
      }
    });
  }
  for (auto& t : publishers) t.join();
  for (const auto& s : seen) {
    ASSERT_TRUE(s->WaitForLast(1000));
    ExpectIncreasing(s->numbers());
  }
}

TEST(WatchFeedTest, ALateSubscriberOfferedAnOlderVersionKeepsTheNewer) {
  // WatchJob offers the latest itself while the fan-out may be quicker.
  Seen seen;
  WatchSubscriber sub(seen.Callback());
  sub.Offer(Version(5), 5);
  sub.Offer(Version(4), 4);
  sub.Offer(Version(5), 5);
  sub.Offer(Version(6), 6);
  EXPECT_EQ(seen.numbers(), (std::vector<int>{5, 6}));
}

TEST(WatchFeedTest, CloseWaitsForACallUnderWayAndNothingRunsAfter) {
  WatchFanOut fanout;
  auto feed = std::make_shared<JobFeed>(&fanout);
  absl::Notification in_call, release;
  std::atomic<int> calls{0};
  std::atomic<bool> closed{false};
  std::atomic<bool> call_after_close{false};
  auto sub = std::make_shared<WatchSubscriber>([&](absl::StatusOr<JobVersion>) {
    if (closed) call_after_close = true;
    if (calls++ == 0) {
      in_call.Notify();
      release.WaitForNotification();
    }
  });
  feed->Subscribe(1, sub);
  feed->Publish(Version(1));
  ASSERT_TRUE(in_call.WaitForNotificationWithTimeout(kWait));
  // Unwatch while the fan-out thread is inside the callback.
  absl::Notification close_returned;
  std::thread closer([&] {
    feed->Unsubscribe(1);
    sub->Close();
    closed = true;
    close_returned.Notify();
  });
  EXPECT_FALSE(close_returned.WaitForNotificationWithTimeout(absl::Milliseconds(200)))
      << "Close returned while a call was under way";
  release.Notify();
  closer.join();
  feed->Publish(Version(2));
  sub->Offer(Version(3), 3);
  sub->End(absl::UnavailableError("down"));
  // Let the fan-out run what it was given.
  Seen other;
  feed->Subscribe(2, std::make_shared<WatchSubscriber>(other.Callback()));
  feed->Publish(Version(4));
  ASSERT_TRUE(other.WaitForLast(4));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_FALSE(call_after_close.load());
}

TEST(WatchFeedTest, CloseAllSendsTheLatestThenTheStatusOnce) {
  WatchFanOut fanout;
  auto feed = std::make_shared<JobFeed>(&fanout);
  absl::Notification gate;
  Seen behind;
  behind.HoldOn(&gate);
  feed->Subscribe(1, std::make_shared<WatchSubscriber>(behind.Callback()));
  feed->Publish(Version(1));
  feed->Publish(Version(2));
  std::thread closer([&] { feed->CloseAll(absl::UnavailableError("shutting down")); });
  gate.Notify();
  closer.join();
  ASSERT_TRUE(behind.WaitForLast(2));
  EXPECT_EQ(behind.end().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(feed->Unsubscribe(1), 0u);
}

TEST(WatchFeedTest, EndIfNothingSentKeepsAWatchThatHasAVersion) {
  Seen got_one, got_none;
  WatchSubscriber a(got_one.Callback()), b(got_none.Callback());
  a.Offer(Version(1), 1);
  a.EndIfNothingSent(absl::NotFoundError("gone"));
  b.EndIfNothingSent(absl::NotFoundError("gone"));
  EXPECT_TRUE(got_one.end().ok());
  EXPECT_EQ(got_none.end().code(), absl::StatusCode::kNotFound);
  b.Offer(Version(2), 2);  // nothing after the end
  EXPECT_TRUE(got_none.numbers().empty());
}

}  // namespace
}  // namespace blueprintsync::jobs
