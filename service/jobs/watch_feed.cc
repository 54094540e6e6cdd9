#include "service/jobs/watch_feed.h"

#include <vector>

namespace blueprintsync::jobs {

void WatchSubscriber::Offer(const JobVersion& version, uint64_t seq) {
  absl::MutexLock lock(&mu_);
  // Two deliveries may race (the first one inside WatchJob, the fan-out's):
  // the sequence keeps a stream from ever going back to an older version.
  if (ended_ || version == nullptr || seq <= seq_) return;
  seq_ = seq;
  callback_(version);
}

void WatchSubscriber::End(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  ended_ = true;
  callback_(status);
}

void WatchSubscriber::EndIfNothingSent(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (ended_ || seq_ != 0) return;
  ended_ = true;
  callback_(status);
}

void WatchSubscriber::Close() {
  JobService::WatchCallback gone;
  {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    gone = std::move(callback_);
    callback_ = nullptr;
  }
  // `gone` (and whatever it holds) is destroyed here, outside the mutex.
}

void JobFeed::Publish(JobVersion version) {
  bool post = false;
  {
    absl::MutexLock lock(&mu_);
    latest_ = std::move(version);
    ++seq_;
    post = !queued_;
    queued_ = true;
  }
  if (post) fanout_->Post(shared_from_this());
}

std::pair<JobVersion, uint64_t> JobFeed::Latest() const {
  absl::MutexLock lock(&mu_);
  return {latest_, seq_};
}

void JobFeed::Subscribe(uint64_t id, std::shared_ptr<WatchSubscriber> subscriber) {
  absl::MutexLock lock(&mu_);
  subscribers_[id] = std::move(subscriber);
}

size_t JobFeed::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(id);
  return subscribers_.size();
}

void JobFeed::DeliverLatest() {
  JobVersion version;
  uint64_t seq = 0;
  std::vector<std::shared_ptr<WatchSubscriber>> to;
  {
    absl::MutexLock lock(&mu_);
    // From here a new version queues the feed again; this round delivers
    // what is latest now.
    queued_ = false;
    version = latest_;
    seq = seq_;
    to.reserve(subscribers_.size());
    for (const auto& [id, s] : subscribers_) to.push_back(s);
  }
  for (const auto& s : to) s->Offer(version, seq);
}

void JobFeed::CloseAll(const absl::Status& status) {
  JobVersion version;
  uint64_t seq = 0;
  std::map<uint64_t, std::shared_ptr<WatchSubscriber>> to;
  {
    absl::MutexLock lock(&mu_);
    version = latest_;
    seq = seq_;
    to.swap(subscribers_);
  }
  for (const auto& [id, s] : to) {
    s->Offer(version, seq);  // a watcher ends knowing the latest version
    s->End(status);
  }
}

WatchFanOut::~WatchFanOut() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void WatchFanOut::Post(std::shared_ptr<JobFeed> feed) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(feed));
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
}

void WatchFanOut::Loop() {
  while (true) {
    std::shared_ptr<JobFeed> feed;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left to deliver
      feed = std::move(queue_.front());
      queue_.pop_front();
    }
    feed->DeliverLatest();
  }
}

}  // namespace blueprintsync::jobs
