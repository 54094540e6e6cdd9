#include "service/jobs/replica_follower.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/common/error_reason.h"
#include "service/common/log.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::jobs {

void ReplicaFollower::Loop() {
  if (steps_->options().follow_change_feed) {
    feed_ = store_->OpenChangeFeed([this](JobChanges changes) { OnChanges(std::move(changes)); });
  }
  while (true) {
    table_->AwaitFollowerWake(UntilNextCycle());
    if (table_->Locked([](TableState& s) { return s.stopping; })) break;
    FollowOnce();
  }
  feed_.reset();  // stops its thread, which calls OnChanges
}

void ReplicaFollower::OnChanges(JobChanges changes) {
  // The finished-job cache first, at once: from here on a Get must not
  // answer a job this batch says was deleted (or might have been).
  table_->Locked([&](TableState& s) { s.OnFeedChanges(changes); });
  {
    absl::MutexLock lock(&changes_mu_);
    if (changes.resync) resync_ = true;
    for (JobChange& c : changes.changes) {
      if (c.kind == JobChange::Kind::kDeleted) {
        // Only a finished job is deleted, and it is never open again (names
        // are not reused): nothing to adopt. Retention deleting many jobs
        // must not turn into one read each: only a job someone here watches
        // or waits on is read back (FollowRemoteJobs), to end the watch.
        changed_.erase(c.name);
        cancel_requested_names_.erase(c.name);
        deleted_.insert(std::move(c.name));
        continue;
      }
      if (c.kind == JobChange::Kind::kCancelRequested) cancel_requested_names_.insert(c.name);
      changed_.insert(std::move(c.name));
    }
    if (changed_.size() > kMaxPendingChanges) {
      changed_.clear();
      cancel_requested_names_.clear();
      resync_ = true;
    }
    if (deleted_.size() > kMaxPendingChanges) {
      // Retention's backlog: no full re-read for it, only the jobs watched
      // here are read once more.
      deleted_.clear();
      refollow_ = true;
    }
  }
  table_->Locked([](TableState& s) { s.wake_follower = true; });
}

absl::Duration ReplicaFollower::UntilNextCycle() {
  const absl::Duration interval = steps_->options().follow_interval;
  absl::MutexLock lock(&changes_mu_);
  if (!resync_) return interval;
  // A full re-read is pending but was not due yet (TakeWork): wake when it is.
  return std::clamp(last_full_read_ + interval - absl::Now(), absl::ZeroDuration(), interval);
}

ReplicaFollower::Work ReplicaFollower::TakeWork() {
  const absl::Status feed = feed_ != nullptr ? feed_->status() : absl::OkStatus();
  if (feed_ != nullptr && feed.ok() != feed_listening_) {
    feed_listening_ = feed.ok();
    if (feed_listening_) {
      log::Info("change feed listening: reading only changed jobs, everything every resync interval",
                {{"resync_interval", absl::FormatDuration(steps_->options().follow_resync_interval)}});
    } else {
      log::Warn("change feed lost: re-reading every follow interval until it is back",
                {{"error", feed.message()}});
    }
  }
  Work work;
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&changes_mu_);
    // A notification lost while the feed was down, or while it noticed it
    // was, is made up for here: the re-read after it listens again
    // (resync_), and the periodic one should a notification go missing some
    // other way.
    //
    // But never two full re-reads within one follow interval, whoever asks:
    // anyone who can reach the database can NOTIFY the channel with payloads
    // that ask for a resync, and a server that accepts connections and drops
    // them asks for one per reconnect; each would read every unfinished job.
    // A resync asked for too soon stays pending until it is due (and Loop
    // wakes for it); meanwhile the changed jobs named are read as usual.
    const bool wanted = feed_ == nullptr || !feed_listening_ || resync_ || now >= next_resync_;
    if (!wanted || now < last_full_read_ + steps_->options().follow_interval) {
      if (wanted) resync_ = true;
      work.everything = false;
      work.changed.swap(changed_);
      work.cancel_requested.swap(cancel_requested_names_);
      work.deleted.swap(deleted_);
      work.refollow = std::exchange(refollow_, false);
      return work;
    }
    changed_.clear();
    cancel_requested_names_.clear();
    deleted_.clear();
    refollow_ = false;
    resync_ = false;
    last_full_read_ = now;
    next_resync_ = now + steps_->options().follow_resync_interval;
  }
  // The finished-job cache is only as fresh as the notifications: one lost
  // on a connection that died unnoticed would let a deleted job be answered.
  // Emptying it with every full re-read bounds that to the resync interval.
  table_->Locked([](TableState& s) { s.DropFeedCacheEntries(); });
  return work;
}

void ReplicaFollower::FollowOnce() {
  const absl::Time start = absl::Now();
  cost_ = CycleCost{};
  const Work work = TakeWork();
  const int64_t term = elector_->Term();
  uint64_t generation = 0;
  bool stopping = false;
  const Leadership current = table_->Locked([&](TableState& s) {
    generation = s.generation;
    stopping = s.stopping;
    return s.leadership;
  });
  if (stopping) return;
  if (Leadership::FromTerm(term) != current) {
    ChangeLeadership(current, term);
  } else if (current.leading()) {
    if (work.everything) {
      AdoptNewJobs(generation);
    } else {
      AdoptChangedJobs(work, generation);
    }
  }
  FollowRemoteJobs(work);
  log::Debug("follow cycle", {{"full_read", work.everything},
                              {"changed_jobs", work.changed.size()},
                              {"store_queries", cost_.queries},
                              {"rows_read", cost_.rows},
                              {"took_us", absl::ToInt64Microseconds(absl::Now() - start)}});
}

void ReplicaFollower::ChangeLeadership(const Leadership& current, int64_t term) {
  if (current.leading()) {
    table_->Locked([&](TableState& s) {
      log::Warn("no longer leading: dropping in-memory jobs, no further upstream calls",
                {{"epoch", current.epoch()}, {"jobs", s.active.size()}});
      // Callers still waiting here get the job as it stands; watchers of
      // these jobs are followed through the store from now on.
      s.DropActive();
      s.leadership = Leadership::Following();
      ++s.generation;
      s.stats.leader_term = 0;
      ++s.stats.leadership_changes;
      // The store's fence stays at the old epoch: a write still in flight
      // from this term fails once another replica holds a newer one. This
      // replica may get the same epoch back, so it also waits for its own
      // writes before it leads again (below).
    });
  }
  if (term == 0) return;
  // A write the previous generation started may still be under way (a store
  // that stalled is what costs a lease): the list below must see it, and it
  // must not land after this generation's own writes.
  table_->AwaitNoWritesInFlight();
  // Job updates from now on carry this epoch; the store refuses them once
  // another replica holds a newer one.
  store_->SetWriteFence(term);
  // Lead only with every unfinished job loaded: a new job must not be sent
  // while an earlier one on its source is still unknown to this replica.
  const uint64_t read_tick = table_->Locked([](TableState& s) { return ++s.tick; });
  absl::StatusOr<std::vector<JobRecord>> unfinished = store_->ListUnfinishedJobs();
  ++cost_.queries;
  if (unfinished.ok()) cost_.rows += static_cast<int64_t>(unfinished->size());
  if (!unfinished.ok()) {
    log::Warn("holding the lease but cannot load unfinished jobs; not leading yet",
              {{"epoch", term}, {"error", unfinished.status().message()}});
    return;
  }
  AdoptAndCancel(std::move(*unfinished), read_tick, 0, Leadership::Leading(term));
  const size_t jobs = table_->Locked([](TableState& s) { return s.active.size(); });
  log::Info("leading: resumed unfinished jobs", {{"epoch", term}, {"jobs", jobs}});
}

void ReplicaFollower::AdoptNewJobs(uint64_t generation) {
  const uint64_t read_tick = table_->Locked([](TableState& s) { return ++s.tick; });
  absl::StatusOr<std::vector<JobRecord>> unfinished = store_->ListUnfinishedJobs();
  ++cost_.queries;
  if (unfinished.ok()) cost_.rows += static_cast<int64_t>(unfinished->size());
  if (!unfinished.ok()) {
    log::Warn("could not read unfinished jobs; will try again",
              {{"error", unfinished.status().message()}});
    return;
  }
  AdoptAndCancel(std::move(*unfinished), read_tick, generation, std::nullopt);
}

void ReplicaFollower::AdoptChangedJobs(const Work& work, uint64_t generation) {
  if (work.changed.empty()) return;
  std::vector<std::string> to_read;
  const uint64_t read_tick = table_->Locked([&](TableState& s) {
    for (const std::string& name : work.changed) {
      // The leader's own writes come back through the feed: a job it runs
      // (or finished) changes only by its hand, unless cancellation was
      // asked elsewhere.
      const bool ours = s.active.count(name) || s.cleaning.count(name) ||
                        s.unpersisted.count(name) || s.finished_at_tick.count(name) ||
                        s.finished.count(name);
      if (!ours || work.cancel_requested.count(name)) {
        to_read.push_back(name);
      }
    }
    return ++s.tick;
  });
  std::vector<JobRecord> open;
  for (const std::string& name : to_read) {
    absl::StatusOr<JobRecord> rec = store_->GetJob(name);
    ++cost_.queries;
    if (rec.ok()) ++cost_.rows;
    if (absl::IsNotFound(rec.status())) continue;  // deleted since
    if (!rec.ok()) {
      // The safety net re-reads it; sooner if the store is back by then.
      log::Warn("could not read a changed job; will read it with the next full re-read",
                {{"job", name}, {"error", rec.status().message()}});
      absl::MutexLock lock(&changes_mu_);
      resync_ = true;
      return;
    }
    if (IsOpen(*rec)) open.push_back(*std::move(rec));
  }
  if (open.empty()) return;
  // In the order the jobs were recorded, not the names' order: the first
  // adopted job on a source blueprint is the one sent first.
  std::sort(open.begin(), open.end(), [](const JobRecord& a, const JobRecord& b) {
    return a.sequence() < b.sequence();
  });
  AdoptAndCancel(std::move(open), read_tick, generation, std::nullopt);
}

void ReplicaFollower::AdoptAndCancel(std::vector<JobRecord> unfinished, uint64_t read_tick,
                                     uint64_t generation, std::optional<Leadership> become) {
  std::vector<std::string> to_cancel;
  for (const JobRecord& rec : unfinished) {
    const v1::SyncJob::State state = rec.job().state();
    if (rec.cancel_requested() &&
        (state == v1::SyncJob::QUEUED || state == v1::SyncJob::RUNNING)) {
      to_cancel.push_back(rec.job().name());
    }
  }
  steps_->Adopt(std::move(unfinished), read_tick, generation, become, "adopted unfinished jobs",
                /*log_if_none=*/false);
  if (!cancel_requested_) return;
  for (const std::string& name : to_cancel) cancel_requested_(name);
}

void ReplicaFollower::AnswerFrom(const JobRecord& rec, JobService::JobCallback& done) {
  if (rec.phase() == JobRecord::REJECTED ||
      (rec.job().state() == v1::SyncJob::FAILED && rec.job().has_error())) {
    done(WithJobName(FromSyncError(rec.job().error()), rec.job().name()));
  } else {
    done(rec.job());
  }
}

void ReplicaFollower::AnswerFromStore(const std::string& name, std::vector<RemoteReply>& replies) {
  const absl::StatusOr<JobRecord> stored = store_->GetJob(name);
  for (RemoteReply& r : replies) {
    if (stored.ok()) {
      AnswerFrom(*stored, r.done);
    } else {
      r.done(WithReason(
          absl::UnavailableError(absl::StrCat(
              name, " is recorded but could not be read back: ", stored.status().message())),
          reason::kStoreUnavailable));
    }
  }
}

void ReplicaFollower::AwaitOutcome(const std::string& name, JobService::JobCallback done,
                                   absl::Time reply_by, Executor* executor) {
  table_->Locked([&](TableState& s) {
    s.remote_replies[name].push_back(RemoteReply{std::move(done), reply_by});
    s.wake_follower = true;
  });
  if (reply_by == absl::InfiniteFuture()) return;
  executor->PostAt(reply_by, [this, name] {
    std::vector<RemoteReply> due = table_->Locked([&](TableState& s) {
      std::vector<RemoteReply> out;
      auto found = s.remote_replies.find(name);
      if (found == s.remote_replies.end()) return out;
      // Only those due: a caller who retried with the same request_id
      // waits with a reply_by of its own.
      const absl::Time now = absl::Now();
      std::vector<RemoteReply>& all = found->second;
      for (auto it = all.begin(); it != all.end();) {
        if (it->reply_by <= now) {
          out.push_back(std::move(*it));
          it = all.erase(it);
        } else {
          ++it;
        }
      }
      if (all.empty()) s.remote_replies.erase(found);
      return out;
    });
    if (!due.empty()) AnswerFromStore(name, due);
  });
}

void ReplicaFollower::AnswerAll() {
  std::map<std::string, std::vector<RemoteReply>> remote;
  table_->Locked([&](TableState& s) { remote.swap(s.remote_replies); });
  for (auto& [name, replies] : remote) AnswerFromStore(name, replies);
}

bool ReplicaFollower::WaitsBehindAnother(const JobRecord& rec) {
  JobQuery q;
  q.source_region = rec.job().source_region();
  q.blueprint_id = rec.job().blueprint_id();
  q.page_size = 2;
  q.state = v1::SyncJob::RUNNING;
  auto running = store_->ListJobs(q);
  if (running.ok() && !running->records.empty()) return true;
  q.state = v1::SyncJob::QUEUED;
  q.cursor = rec.sequence();
  q.page_size = 1;
  auto earlier = store_->ListJobs(q);
  return earlier.ok() && !earlier->records.empty();
}

namespace {
absl::Status JobDeleted(const std::string& name) {
  return WithJobName(absl::NotFoundError(absl::StrCat(name, " was deleted")), name);
}
}  // namespace

void ReplicaFollower::FollowRemoteJobs(const Work& work) {
  std::set<std::string> names;    // jobs run elsewhere that someone here waits on
  std::set<std::string> waiting;  // of those, the ones with a caller waiting
  table_->Locked([&](TableState& s) {
    for (const auto& [name, replies] : s.remote_replies) {
      names.insert(name);
      waiting.insert(name);
    }
    for (const auto& [id, w] : s.watchers) {
      if (!s.active.count(w.name)) names.insert(w.name);
    }
  });
  std::vector<std::string> to_read;
  for (const std::string& name : names) {
    // Changed, or newly waited on (a change that committed before someone
    // here waited on the job was not theirs to see: read it once now).
    // Also read again: those whose caller is still waiting on a job not
    // submitted yet. An earlier job on the same source that commits (or
    // starts) after this one was read is a change to *that* job; without
    // this, the caller would wait for its reply_by instead of getting
    // QUEUED at once.
    if (work.everything || work.refollow || work.changed.count(name) ||
        work.deleted.count(name) || !followed_.count(name) || unanswered_.count(name)) {
      to_read.push_back(name);
    }
  }
  followed_ = std::move(names);
  unanswered_.clear();
  for (const std::string& name : to_read) {
    absl::StatusOr<JobRecord> rec = store_->GetJob(name);
    ++cost_.queries;
    if (rec.ok()) ++cost_.rows;
    if (absl::IsNotFound(rec.status())) {
      // Deleted (by another replica, likely before this one read its final
      // state): nothing will change it again, so its watches end. (A caller
      // still waiting on it is answered at its reply_by, as for any job
      // that cannot be read back.)
      table_->Locked([&](TableState& s) {
        if (s.stopping || s.active.count(name)) return;
        s.EndWatchesOf(name, JobDeleted(name));
      });
      followed_.erase(name);
      continue;
    }
    if (!rec.ok()) {
      // The store is unreachable: try again next round.
      followed_.erase(name);
      continue;
    }
    // As on the leader, a caller whose job waits behind an earlier job on
    // the same source blueprint is answered now (QUEUED), not when it starts.
    const bool not_submitted = waiting.count(name) && rec->phase() == JobRecord::NOT_SUBMITTED;
    const bool behind = not_submitted && WaitsBehindAnother(*rec);
    if (not_submitted && !behind) unanswered_.insert(name);
    std::vector<RemoteReply> answer;
    table_->Locked([&](TableState& s) {
      if (s.stopping) return;
      if (auto r = s.remote_replies.find(name); r != s.remote_replies.end()) {
        const JobRecord::SubmitPhase phase = rec->phase();
        if (behind || (phase != JobRecord::NOT_SUBMITTED && phase != JobRecord::SUBMITTING)) {
          answer.swap(r->second);
          s.remote_replies.erase(r);
        }
      }
      if (s.active.count(name)) return;  // adopted meanwhile: the engine tells its watchers
      const std::string serialized = rec->job().SerializeAsString();
      auto range = s.watchers_by_job.equal_range(name);
      for (auto it = range.first; it != range.second; ++it) {
        auto w = s.watchers.find(it->second);
        if (w == s.watchers.end() || w->second.last_sent == serialized) continue;
        w->second.Deliver(rec->job(), serialized);
      }
    });
    for (RemoteReply& r : answer) AnswerFrom(*rec, r.done);
  }
}

}  // namespace blueprintsync::jobs
