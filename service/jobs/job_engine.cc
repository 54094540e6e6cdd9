#include "service/jobs/job_engine.h"

#include <optional>
#include <utility>
#include <vector>

#include "service/common/error_reason.h"
#include "service/common/log.h"
#include "service/jobs/job_state.h"
#include "service/jobs/store_health.h"
#include "service/jobs/tracking_pace.h"

namespace blueprintsync::jobs {
namespace {

// The same version of a job: every change stamps update_time (Touch).
bool SameStamp(const v1::SyncJob& a, const v1::SyncJob& b) {
  return a.state() == b.state() && a.update_time().seconds() == b.update_time().seconds() &&
         a.update_time().nanos() == b.update_time().nanos();
}

absl::Status WatchEnded() {
  return WithReason(absl::UnavailableError("the server is shutting down; watch again to continue"),
                    reason::kShuttingDown);
}

}  // namespace

JobEngine::JobEngine(JobEngineOptions options, JobStore* store, tencent::LighthouseClient* client,
                     Clock* clock)
    : options_(std::move(options)),
      store_(store),
      table_(options_),
      writer_(&table_, store),
      steps_(options_, &table_, &writer_, clock),
      submitter_(&table_, &writer_, &steps_, client),
      reconciler_(&table_, &steps_, store, client),
      cleaner_(&table_, &steps_, client),
      tracker_(&table_, &writer_, &steps_, &cleaner_, client),
      retention_(&table_, &steps_, store),
      follower_(options_.elector != nullptr
                    ? std::make_unique<ReplicaFollower>(&table_, &steps_, store, options_.elector)
                    : nullptr),
      intake_(&table_, &steps_, store, follower_.get()),
      actions_(&table_, &writer_, &steps_, store, client, &intake_) {}

JobEngine::~JobEngine() { Shutdown(absl::Now() + absl::Seconds(5)); }

absl::Status JobEngine::Start() {
  std::vector<JobRecord> unfinished;
  if (follower_ == nullptr) {
    // The only replica: everything unfinished in the store is ours. (With an
    // elector, jobs are loaded when this replica takes the lead.)
    auto loaded = store_->ListUnfinishedJobs();
    if (!loaded.ok()) return loaded.status();
    unfinished = std::move(*loaded);
  }
  workers_ = std::make_unique<Executor>(options_.workers);
  intake_threads_ = std::make_unique<Executor>(2);
  readers_ = std::make_unique<Executor>(2);
  previews_ = std::make_unique<Executor>(1);
  actions_.Wire({readers_.get(), previews_.get(), intake_threads_.get(), workers_.get()});
  if (follower_ != nullptr) {
    follower_->OnCancelRequested([this](const std::string& name) { actions_.CancelRequested(name); });
  }
  steps_.Wire(
      workers_.get(), [this](const std::string& name) { submitter_.Run(name); },
      [this](const std::string& name) {
        return submitter_.RunHandingOffTheCall(name, workers_.get());
      },
      [this](const std::string& name) { reconciler_.Run(name); });
  if (follower_ == nullptr) {
    steps_.Adopt(std::move(unfinished), 0, 0, Leadership::Single(), "job engine resumed",
                 /*log_if_none=*/true);
  }
  started_ = true;
  tracker_thread_ = std::thread([this] { RunTracker(); });
  if (follower_ != nullptr) {
    follower_->FollowOnce();  // take the lead now if the elector already has it
    follower_thread_ = std::thread([this] { follower_->Loop(); });
  }
  return absl::OkStatus();
}

void JobEngine::RunTracker() {
  PacingClock* const clock =
      options_.pacing_clock != nullptr ? options_.pacing_clock : PacingClock::Real();
  while (!table_.Locked([](TableState& s) { return s.stopping; })) {
    const absl::Time start = clock->Now();
    const int64_t calls = tracker_.PollOnce();
    retention_.MaybeRun();
    const PollWindow next = NextPollWindow(options_, start, calls);
    table_.AwaitTrackerTurn(clock, next.earliest, next.latest);
  }
}

void JobEngine::Shutdown(absl::Time deadline) {
  if (stopping_.exchange(true)) return;
  table_.Locked([](TableState& s) {
    s.stopping = true;
    s.wake_tracker = true;
    s.wake_follower = true;
  });
  if (tracker_thread_.joinable()) tracker_thread_.join();
  if (follower_thread_.joinable()) follower_thread_.join();
  if (follower_ != nullptr) follower_->AnswerAll();
  table_.AwaitNoCallsInFlight(deadline);
  // Callers are answered next: a new job placed before `stopping` was set
  // but never marked SUBMITTING is not flushed yet (CreateJobSyncLater).
  if (absl::Status synced = store_->Sync(); !synced.ok()) {
    log::Error("could not flush the job store at shutdown", {{"error", synced.message()}});
  }
  table_.Locked([](TableState& s) {
    // Callers still waiting get the job as it stands (QUEUED, or RUNNING for
    // a submission whose outcome is being reconciled).
    for (auto& [name, e] : s.active) s.Reply(e);
    s.CloseWatchers(WatchEnded());
  });
  if (intake_threads_) intake_threads_->Shutdown();
  if (readers_) readers_->Shutdown();
  if (previews_) previews_->Shutdown();
  if (workers_) workers_->Shutdown();
  log::Info("job engine stopped");
}

absl::Status JobEngine::StoreWritable() const {
  return options_.store_health != nullptr ? options_.store_health->Check() : absl::OkStatus();
}

void JobEngine::Submit(NewJob job, absl::Time reply_by, JobCallback done) {
  if (RefusedWhenStopped(done)) return;
  // A job that cannot be recorded must not be taken: this names the cause
  // at once. Repeats of a request_id are refused too (UNAVAILABLE, which a
  // caller retries with the same id): telling a repeat from a new job takes
  // the store, and a store whose file was deleted still "records" new jobs
  // in a file no restart will see.
  if (absl::Status s = StoreWritable(); !s.ok()) {
    done(s);
    return;
  }
  intake_.Submit(std::move(job), reply_by, std::move(done), intake_threads_.get(), workers_.get());
}

void JobEngine::PreviewSubmit(NewJob job, PreviewCallback done) {
  if (RefusedWhenStopped(done)) return;
  actions_.PreviewSubmit(std::move(job), std::move(done));
}

void JobEngine::Cancel(const std::string& name, JobCallback done) {
  if (RefusedWhenStopped(done)) return;
  actions_.Cancel(name, std::move(done));
}

void JobEngine::Retry(const std::string& name, NewJob retry, absl::Time reply_by,
                      JobCallback done) {
  if (RefusedWhenStopped(done)) return;
  if (absl::Status s = StoreWritable(); !s.ok()) {
    done(s);  // as in Submit
    return;
  }
  actions_.Retry(name, std::move(retry), reply_by, std::move(done));
}

void JobEngine::Delete(const std::string& name, StatusCallback done) {
  if (RefusedWhenStopped(done)) return;
  actions_.Delete(name, std::move(done));
}

void JobEngine::Read(std::function<void()> read, std::function<void()> refused) {
  if (readers_ == nullptr || !readers_->Post(std::move(read))) refused();
}

void JobEngine::GetJob(const std::string& name, JobCallback done) {
  actions_.Lookup(name, std::move(done));
}

void JobEngine::ListJobs(const JobQuery& query, PageCallback done) {
  auto shared_done = std::make_shared<PageCallback>(std::move(done));
  Read([this, query, shared_done] { (*shared_done)(store_->ListJobs(query)); },
       [shared_done] { (*shared_done)(ServiceShuttingDown()); });
}

void JobEngine::ListJobsInto(const JobQuery& query,
                             google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs,
                             CursorCallback done) {
  auto shared_done = std::make_shared<CursorCallback>(std::move(done));
  Read([this, query, jobs, shared_done] { (*shared_done)(store_->ListJobsInto(query, jobs)); },
       [shared_done] { (*shared_done)(ServiceShuttingDown()); });
}

uint64_t JobEngine::WatchJob(const std::string& name, WatchCallback callback) {
  // Whatever is delivered here is delivered after the table's lock is let
  // go: callbacks never run under it.
  std::optional<absl::StatusOr<JobVersion>> only;  // the whole watch, nothing registered
  std::shared_ptr<WatchSubscriber> subscriber;
  std::shared_ptr<JobFeed> feed;
  bool needs_read = false;
  const uint64_t id = table_.Locked([&](TableState& s) -> uint64_t {
    if (s.stopping) {
      only = WatchEnded();
      return 0;
    }
    const v1::SyncJob* job = s.Known(name);
    if (job != nullptr && !s.active.count(name)) {
      // Finished jobs do not change any more; no need to register.
      only = std::make_shared<const v1::SyncJob>(*job);
      return 0;
    }
    const uint64_t watch = s.AddWatcher(name, std::move(callback));
    const Subscription& sub = s.subscriptions[watch];
    Watcher& w = s.watchers[sub.watcher];
    subscriber = sub.subscriber;
    feed = w.feed;
    if (job != nullptr) {
      // The feed of a job this replica runs has its latest version already,
      // unless this is the job's first watcher (or the feed was fed by store
      // re-reads before this replica took the job over).
      const JobVersion latest = w.feed->Latest().first;
      if (latest == nullptr || !SameStamp(*latest, *job)) {
        w.Deliver(*job, s.leadership.single() ? "" : job->SerializeAsString());
      }
    } else if (!w.delivered) {
      needs_read = true;
      if (!s.leadership.single()) s.wake_follower = true;
    }
    return watch;
  });
  if (only.has_value()) {
    callback(*std::move(only));
    return 0;
  }
  // The current version before WatchJob returns, if there is one (the
  // fan-out may have been quicker: the subscriber drops a repeat).
  auto [version, seq] = feed->Latest();
  subscriber->Offer(version, seq);
  if (needs_read) {
    Read([this, id, name] { DeliverFirstRead(id, store_->GetJob(name)); },
         [this, id] { DeliverFirstRead(id, ServiceShuttingDown()); });
  }
  return id;
}

void JobEngine::DeliverFirstRead(uint64_t id, const absl::StatusOr<JobRecord>& rec) {
  table_.Locked([&](TableState& s) {
    auto sub = s.subscriptions.find(id);
    if (sub == s.subscriptions.end()) return;
    auto it = s.watchers.find(sub->second.watcher);
    if (it == s.watchers.end() || it->second.delivered) return;  // a version went out
    Watcher& w = it->second;
    if (!rec.ok()) {
      // Under the lock: once the watch is gone from the table, Unwatch no
      // longer waits for its callback.
      s.RemoveWatcher(id)->EndIfNothingSent(rec.status());
      return;
    }
    // Adopted or created here meanwhile: memory is at least as new.
    auto active = s.active.find(w.name);
    const v1::SyncJob& job = active != s.active.end() ? active->second.published : rec->job();
    w.Deliver(job, s.leadership.single() ? "" : job.SerializeAsString());
  });
}

void JobEngine::Unwatch(uint64_t watch_id) {
  if (watch_id == 0) return;
  std::shared_ptr<WatchSubscriber> subscriber =
      table_.Locked([&](TableState& s) { return s.RemoveWatcher(watch_id); });
  // Waits for a delivery under way to this watch; none after.
  if (subscriber != nullptr) subscriber->Close();
}

JobEngineStats JobEngine::stats() const {
  JobEngineStats counts = table_.Locked([](const TableState& s) {
    JobEngineStats out = s.stats;
    for (const auto& [name, e] : s.active) {
      const v1::SyncJob::State state = e.rec.job().state();
      if (state == v1::SyncJob::QUEUED) ++out.queued_jobs;
      if (state == v1::SyncJob::RUNNING) ++out.running_jobs;
      if (state == v1::SyncJob::CANCELLING) ++out.cancelling_jobs;
    }
    out.cleanup_jobs = static_cast<int64_t>(s.cleaning.size());
    return out;
  });
  if (options_.store_health != nullptr) {
    const StoreCondition c = options_.store_health->Get();
    if (!c.healthy()) counts.store_problem = StoreProblemName(c.problem);
  }
  return counts;
}

}  // namespace blueprintsync::jobs
