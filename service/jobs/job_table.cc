#include "service/jobs/job_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "service/common/log.h"
#include "service/jobs/job_state.h"
#include "service/jobs/tracking_pace.h"

namespace blueprintsync::jobs {
namespace {
thread_local int t_table_locks_held = 0;
}  // namespace

bool JobTableLockHeld() { return t_table_locks_held > 0; }

void JobEntry::Touch(absl::Time now) {
  ++version;
  *rec.mutable_job()->mutable_update_time() = ToProto(now);
}

void JobEntry::MarkOutcomeUnknown() {
  rec.set_phase(JobRecord::OUTCOME_UNKNOWN);
  // RUNNING without destination ids would otherwise read like a bug.
  rec.mutable_job()->set_state_reason(kReconcilingReason);
  // A cancelled job stays CANCELLING: the reconciler finds what to delete.
  if (rec.job().state() != v1::SyncJob::CANCELLING) {
    rec.mutable_job()->set_state(v1::SyncJob::RUNNING);
  }
}

void JobEntry::AddWaiter(JobService::JobCallback done, absl::Time reply_by) {
  if (waiters.size() >= kMaxWaiters) {
    done(published);
    return;
  }
  waiters.push_back(Waiter{std::move(done), reply_by});
}

absl::Time JobEntry::LatestReplyBy() const {
  absl::Time latest = absl::InfinitePast();
  for (const Waiter& w : waiters) latest = std::max(latest, w.reply_by);
  return latest;
}

std::string TableState::SourceKey(const v1::SyncJob& job) {
  return absl::StrCat(job.source_region(), "/", job.blueprint_id());
}

JobEntry* TableState::FindAny(const std::string& name, uint64_t gen) {
  if (gen != generation) return nullptr;
  if (auto it = active.find(name); it != active.end()) return &it->second;
  if (auto it = cleaning.find(name); it != cleaning.end()) return &it->second;
  return nullptr;
}

JobEntry* TableState::Find(const std::string& name, uint64_t gen) {
  if (gen != generation) return nullptr;
  auto it = active.find(name);
  return it != active.end() && !IsTerminal(it->second.rec.job().state()) ? &it->second : nullptr;
}

void JobEntry::LoadStored(JobRecord stored) {
  rec = std::move(stored);
  written_version = published_version = version;
  published = rec.job();
}

void TableState::AddCleaning(JobRecord rec) {
  const std::string name = rec.job().name();
  cleaning[name].LoadStored(std::move(rec));
}

void TableState::EndCleanup(const std::string& name) {
  auto it = cleaning.find(name);
  if (it == cleaning.end()) return;
  log::Info("cleanup of job finished", {{"job", name}});
  if (it->second.unpersisted) unpersisted[name] = it->second.rec;
  RememberFinished(it->second.rec.job());
  MarkFinishedHere(name);
  cleaning.erase(it);
}

void TableState::RememberFinished(const v1::SyncJob& job) {
  if (options.finished_cache_size <= 0) return;
  finished[job.name()] = job;
  finished_order.push_back(job.name());
  while (finished_order.size() > static_cast<size_t>(options.finished_cache_size)) {
    finished.erase(finished_order.front());
    finished_order.pop_front();
  }
}

void TableState::ForgetFinished(const std::string& name) {
  finished.erase(name);
  feed.cached.erase(name);
  // A Get whose store read began before the delete may still return the
  // job; noting the change here makes MayFillFinished refuse to cache it.
  NoteChange(name);
}

void TableState::OnFeedChanges(const JobChanges& changes) {
  if (changes.resync || changes.disconnected) {
    // Changes may have been missed (or are being missed): any cached job may
    // have been deleted meanwhile. Start over; a read under way belongs to
    // the old generation and cannot fill (MayFillFinished).
    ++feed.generation;
    feed.fresh = changes.resync && !changes.disconnected;
    feed.cached.clear();
    feed.cached_order.clear();
    feed.recent.clear();
  }
  // Any change drops its job, deletes and retention purges above all: only
  // a finished job is cached, and the only change a finished job's record
  // should see is its deletion, but an update is dropped too, to be safe.
  // (`finished` is left alone: on a shared store it does not answer Get,
  // and it keeps a job finished here from being placed again; see
  // JobIntake::Place.)
  for (const JobChange& c : changes.changes) {
    feed.cached.erase(c.name);
    NoteChange(c.name);
  }
}

void TableState::NoteChange(const std::string& name) {
  ++feed.tick;
  feed.recent.emplace_back(feed.tick, name);
  if (feed.recent.size() > FeedCache::kRecentChanges) feed.recent.pop_front();
}

void TableState::FillFromStore(const v1::SyncJob& job) {
  if (options.finished_cache_size <= 0) return;
  feed.cached[job.name()] = FeedCache::Entry{job, feed.generation};
  feed.cached_order.push_back(job.name());
  while (feed.cached_order.size() > static_cast<size_t>(options.finished_cache_size)) {
    feed.cached.erase(feed.cached_order.front());
    feed.cached_order.pop_front();
  }
}

TableState::FillTicket TableState::FeedTicket() const {
  return FillTicket{feed.fresh, feed.generation, feed.tick};
}

bool TableState::MayFillFinished(const JobRecord& rec, const FillTicket& ticket) const {
  const v1::SyncJob& job = rec.job();
  // A single replica caches a job when it finishes it, and its own delete
  // could race a fill; only the shared store, where the feed is, fills.
  if (leadership.single() || !IsTerminal(job.state())) return false;
  // Still open (copies to delete): its record will change, and a cached
  // job is never adopted (MayAdopt). Already cached: nothing to add.
  if (IsOpen(rec) || feed.cached.count(job.name()) > 0) return false;
  if (!ticket.fresh || !feed.fresh || ticket.generation != feed.generation) return false;
  if (feed.tick == ticket.tick) return true;
  // Changes were noted since the read began: the read may predate a delete
  // of this job whose notification has been applied, and caching its result
  // would bring the deleted job back. Refuse if one names it, or if the
  // changes since then are no longer all known.
  if (feed.recent.empty() || feed.recent.front().first > ticket.tick + 1) return false;
  for (auto it = feed.recent.rbegin(); it != feed.recent.rend() && it->first > ticket.tick; ++it) {
    if (it->second == job.name()) return false;
  }
  return true;
}

bool TableState::Add(JobRecord rec) {
  const std::string name = rec.job().name();
  JobEntry& e = active[name];
  e.LoadStored(std::move(rec));
  std::deque<std::string>& q = sources[SourceKey(e.rec.job())];
  q.push_back(name);
  stats.active_jobs = static_cast<int64_t>(active.size());
  return q.size() == 1;
}

bool TableState::OwnsSource(const JobEntry& e) const {
  auto q = sources.find(SourceKey(e.rec.job()));
  return q != sources.end() && !q->second.empty() && q->second.front() == e.rec.job().name();
}

void TableState::Reply(JobEntry& e, const absl::Status& error) {
  if (e.waiters.empty()) return;
  std::vector<JobEntry::Waiter> waiters;
  waiters.swap(e.waiters);
  for (JobEntry::Waiter& w : waiters) {
    if (error.ok()) {
      w.done(e.published);
    } else {
      w.done(WithJobName(error, e.rec.job().name()));
    }
  }
}

void TableState::ReplyDue(JobEntry& e, absl::Time now) {
  std::vector<JobEntry::Waiter> due;
  for (auto it = e.waiters.begin(); it != e.waiters.end();) {
    if (it->reply_by <= now) {
      due.push_back(std::move(*it));
      it = e.waiters.erase(it);
    } else {
      ++it;
    }
  }
  for (JobEntry::Waiter& w : due) w.done(e.published);
}

void TableState::Publish(const v1::SyncJob& job) {
  auto range = watchers_by_job.equal_range(job.name());
  if (range.first == range.second) return;
  // Only needed to tell store re-reads apart from what was already sent.
  const std::string serialized = leadership.single() ? "" : job.SerializeAsString();
  for (auto it = range.first; it != range.second; ++it) {
    auto w = watchers.find(it->second);
    if (w == watchers.end()) continue;
    w->second.Deliver(job, serialized);
  }
}

std::optional<std::string> TableState::Finish(const std::string& name) {
  auto it = active.find(name);
  if (it == active.end()) return std::nullopt;
  const JobEntry& e = it->second;
  const std::string key = SourceKey(e.rec.job());
  log::Info("job finished",
            {{"job", name}, {"state", v1::SyncJob::State_Name(e.rec.job().state())}});
  if (options.observer != nullptr) options.observer->OnJobFinished(e.rec.job());
  if (IsOpen(e.rec)) {
    // Copies to delete: the job stays (its version history included) until
    // they are settled.
    cleaning[name] = std::move(it->second);
  } else {
    if (e.unpersisted) unpersisted[name] = e.rec;
    RememberFinished(e.rec.job());
    MarkFinishedHere(name);
  }
  active.erase(it);
  stats.active_jobs = static_cast<int64_t>(active.size());
  auto q = sources.find(key);
  if (q == sources.end()) return std::nullopt;
  auto pos = std::find(q->second.begin(), q->second.end(), name);
  const bool was_front = pos == q->second.begin();
  if (pos != q->second.end()) q->second.erase(pos);
  if (q->second.empty()) {
    sources.erase(q);
    return std::nullopt;
  }
  if (!was_front) return std::nullopt;
  return q->second.front();
}

const v1::SyncJob* TableState::Known(const std::string& name) const {
  if (auto it = active.find(name); it != active.end()) return &it->second.published;
  if (auto it = cleaning.find(name); it != cleaning.end()) return &it->second.published;
  // With several replicas a finished job's record may be deleted on another
  // one (DeleteSyncJob, retention): the cache answers only for a single
  // replica, or while the change feed is fresh (it then drops every job
  // deleted anywhere as the notification arrives; see FeedCache).
  if (leadership.single()) {
    if (auto it = finished.find(name); it != finished.end()) return &it->second;
  } else if (feed.fresh) {
    // The stamp is a second guard: the cache is emptied whenever the
    // generation changes, so an older entry should not exist.
    auto it = feed.cached.find(name);
    if (it != feed.cached.end() && it->second.generation == feed.generation) {
      return &it->second.job;
    }
  }
  if (auto it = unpersisted.find(name); it != unpersisted.end()) return &it->second.job();
  return nullptr;
}

void TableState::MarkFinishedHere(const std::string& name) {
  if (!leadership.single()) finished_at_tick[name] = ++tick;  // read only by adoption
}

uint64_t TableState::AddWatcher(const std::string& name, JobService::WatchCallback callback) {
  uint64_t watcher = 0;
  if (auto it = watchers_by_job.find(name); it != watchers_by_job.end()) {
    watcher = it->second;
  } else {
    watcher = next_watch_id++;
    watchers[watcher] = Watcher{name, std::make_shared<JobFeed>(fanout), "", false};
    watchers_by_job.emplace(name, watcher);
  }
  const uint64_t id = next_watch_id++;
  auto subscriber = std::make_shared<WatchSubscriber>(std::move(callback));
  watchers[watcher].feed->Subscribe(id, subscriber);
  subscriptions[id] = Subscription{watcher, std::move(subscriber)};
  return id;
}

std::shared_ptr<WatchSubscriber> TableState::RemoveWatcher(uint64_t id) {
  auto sub = subscriptions.find(id);
  if (sub == subscriptions.end()) return nullptr;
  std::shared_ptr<WatchSubscriber> subscriber = std::move(sub->second.subscriber);
  const uint64_t watcher = sub->second.watcher;
  subscriptions.erase(sub);
  auto it = watchers.find(watcher);
  if (it == watchers.end() || it->second.feed->Unsubscribe(id) > 0) return subscriber;
  // The job's last watch: nobody follows the job any more.
  auto range = watchers_by_job.equal_range(it->second.name);
  for (auto w = range.first; w != range.second; ++w) {
    if (w->second == watcher) {
      watchers_by_job.erase(w);
      break;
    }
  }
  watchers.erase(it);
  return subscriber;
}

void TableState::CloseWatchers(const absl::Status& status) {
  for (auto& [id, w] : watchers) w.feed->CloseAll(status);
  watchers.clear();
  watchers_by_job.clear();
  subscriptions.clear();
}

void TableState::EndWatchesOf(const std::string& name, const absl::Status& status) {
  auto range = watchers_by_job.equal_range(name);
  for (auto it = range.first; it != range.second;) {
    auto w = watchers.find(it->second);
    // Only watches that saw the job here and not its end: one that never
    // had a version is ended by its first read (NotFound), one that had the
    // terminal version ends by itself.
    if (w == watchers.end() || !w->second.delivered || w->second.terminal_sent) {
      ++it;
      continue;
    }
    w->second.feed->CloseAll(status);
    for (auto sub = subscriptions.begin(); sub != subscriptions.end();) {
      sub = sub->second.watcher == it->second ? subscriptions.erase(sub) : std::next(sub);
    }
    watchers.erase(w);
    it = watchers_by_job.erase(it);
  }
}

void TableState::DropActive() {
  for (auto& [name, e] : active) Reply(e);
  active.clear();
  cleaning.clear();
  sources.clear();
  // Final states whose write failed are no longer this replica's to write:
  // the next leader takes the jobs on from what the store says.
  unpersisted.clear();
  stats.active_jobs = 0;
}

bool TableState::MayAdopt(const std::string& name, uint64_t read_tick) const {
  if (active.count(name) || cleaning.count(name) || unpersisted.count(name)) return false;
  // Finished here: never again, unless the read began after it finished
  // (then the store already said so and the job would not be listed).
  auto f = finished_at_tick.find(name);
  if (f != finished_at_tick.end() && f->second >= read_tick) return false;
  return finished.count(name) == 0;
}

void TableState::PruneFinishTicks(uint64_t read_tick) {
  for (auto it = finished_at_tick.begin(); it != finished_at_tick.end();) {
    it = it->second < read_tick ? finished_at_tick.erase(it) : std::next(it);
  }
}

JobTable::Hold::Hold(JobTable* t) : t_(t) {
  t_->mu_.Lock();
  ++t_table_locks_held;
}

JobTable::Hold::~Hold() {
  --t_table_locks_held;
  t_->mu_.Unlock();
}

void JobTable::AwaitNoCallsInFlight(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(
                            +[](TableState* s) { return s->in_flight == 0; }, &state_),
                        deadline);
}

void JobTable::AwaitNoWritesInFlight() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](TableState* s) { return s->writes_in_flight == 0; }, &state_));
}

void JobTable::AwaitWake(bool TableState::*flag, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  bool* b = &(state_.*flag);
  mu_.AwaitWithTimeout(absl::Condition(b), timeout);
  *b = false;
}

void JobTable::AwaitTrackerTurn(PacingClock* clock, absl::Time earliest, absl::Time latest) {
  absl::MutexLock lock(&mu_);
  clock->AwaitUntil(&mu_, absl::Condition(&state_.stopping), earliest);
  clock->AwaitUntil(&mu_,
                    absl::Condition(
                        +[](TableState* s) { return s->stopping || s->wake_tracker; }, &state_),
                    latest);
  state_.wake_tracker = false;
}

void JobTable::AwaitFollowerWake(absl::Duration timeout) {
  AwaitWake(&TableState::wake_follower, timeout);
}

}  // namespace blueprintsync::jobs
