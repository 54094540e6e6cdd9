// Watch fan-out: how one change of a job reaches every watcher of it.
//
// Each watched job has one JobFeed. The engine hands it each new version
// under its lock, which costs O(1) whatever the number of watchers: the
// feed keeps the version (shared, immutable) as its latest and puts itself
// on the WatchFanOut's queue. The fan-out thread then offers that latest
// version to each subscriber, without the engine's lock.
//
// A subscriber keeps no queue: it is offered the feed's latest version and
// passes it on unless it already has that one or a newer one. A watcher
// that falls behind (its callback is slow) therefore skips intermediate
// versions but always gets the newest, and so the terminal one, which is a
// job's last. Memory per watcher is a few pointers however slowly it reads.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_WATCH_FEED_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_WATCH_FEED_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "service/jobs/job_service.h"

namespace blueprintsync::jobs {

// One watcher's end of a feed: calls its callback with versions in
// increasing sequence order, each call under the subscriber's own mutex, so
// Close can promise that no call runs after it returns.
class WatchSubscriber {
 public:
  explicit WatchSubscriber(JobService::WatchCallback callback) : callback_(std::move(callback)) {}
  WatchSubscriber(const WatchSubscriber&) = delete;
  WatchSubscriber& operator=(const WatchSubscriber&) = delete;

  // Passes on version number `seq` of its feed unless it has passed on that
  // one or a newer one already, or has ended.
  void Offer(const JobVersion& version, uint64_t seq);
  // Ends the watch with `status` (the last call), unless it has ended.
  void End(const absl::Status& status);
  // As End, but only if no version has been passed on yet (a first read of
  // the job that failed after another source already had an answer).
  void EndIfNothingSent(const absl::Status& status);
  // No call after this returns; waits for one under way.
  void Close();

 private:
  absl::Mutex mu_;
  JobService::WatchCallback callback_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;  // the last sequence passed on
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

class WatchFanOut;

// The latest version of one watched job and the subscribers following it.
class JobFeed : public std::enable_shared_from_this<JobFeed> {
 public:
  explicit JobFeed(WatchFanOut* fanout) : fanout_(fanout) {}
  JobFeed(const JobFeed&) = delete;
  JobFeed& operator=(const JobFeed&) = delete;

  // Makes `version` the latest and has the fan-out deliver it. O(1); does no
  // callback, so it may be called under the engine's lock.
  void Publish(JobVersion version);
  // The latest version and its sequence number (nullptr, 0 before the first).
  std::pair<JobVersion, uint64_t> Latest() const;

  void Subscribe(uint64_t id, std::shared_ptr<WatchSubscriber> subscriber);
  // Removes subscriber `id`; returns how many are left. The subscriber may
  // still be called by a delivery under way: WatchSubscriber::Close waits.
  size_t Unsubscribe(uint64_t id);

  // Offers the latest version to every subscriber (the fan-out thread).
  void DeliverLatest();
  // Offers the latest version, then ends every subscription with `status`
  // and forgets the subscribers (shutdown).
  void CloseAll(const absl::Status& status);

 private:
  WatchFanOut* const fanout_;
  mutable absl::Mutex mu_;
  JobVersion latest_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool queued_ ABSL_GUARDED_BY(mu_) = false;  // on the fan-out's queue
  std::map<uint64_t, std::shared_ptr<WatchSubscriber>> subscribers_ ABSL_GUARDED_BY(mu_);
};

// Runs feeds' deliveries on one thread of its own, started at the first
// delivery. A feed is queued at most once however often it changes: the
// thread delivers whatever is latest when it gets to it.
class WatchFanOut {
 public:
  WatchFanOut() = default;
  WatchFanOut(const WatchFanOut&) = delete;
  WatchFanOut& operator=(const WatchFanOut&) = delete;
  ~WatchFanOut();  // delivers what is queued, then stops the thread

  void Post(std::shared_ptr<JobFeed> feed);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::shared_ptr<JobFeed>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_WATCH_FEED_H_
