// JobTable: the engine's in-memory state and the one lock that guards it
// (JobWriter's per-job write locks order store writes and are never held
// with it):
// the unfinished jobs this replica runs, the queue of jobs on each source
// blueprint, watchers, recently finished jobs, callers waiting on jobs that
// another replica runs, leadership, and the counters metrics read.
//
// Every part of the engine works the same way: take the lock (Locked), look
// and change memory, let go; then write to the store or call Tencent Cloud;
// then take the lock again to apply the outcome. No store or upstream call is
// ever made with the lock held: TableState has no way to reach either, and
// JobTableLockHeld() lets the tests check every store and upstream call.
//
// A change to a job is published to watchers and answered to callers only
// after it has been written (JobWriter), so nobody is ever told of a state
// that a crash could take back.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_TABLE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_TABLE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/jobs/engine_options.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_state.h"
#include "service/jobs/job_store.h"
#include "service/jobs/leadership.h"
#include "service/jobs/watch_feed.h"

namespace blueprintsync::jobs {

// SyncJob.state_reason while the outcome of a job's SyncBlueprint call is
// unknown and the reconciler is looking for its copies.
inline constexpr char kReconcilingReason[] =
    "outcome of SyncBlueprint unknown; reconciling (DescribeBlueprints)";

// True while the calling thread holds a JobTable's lock.
bool JobTableLockHeld();

// An unfinished job this replica runs.
struct JobEntry {
  JobRecord rec;
  // Bumped by every change to `rec`. JobWriter writes the newest version,
  // in order: the store holds `written_version`, watchers have been sent
  // `published_version`.
  uint64_t version = 1;
  uint64_t written_version = 0;
  uint64_t published_version = 0;
  bool unpersisted = false;  // the last write failed; memory stays authoritative
  // The version watchers and callers were last given: written (or its write
  // failed and memory is authoritative). Answers come from it, never from a
  // change whose write is still under way.
  v1::SyncJob published;
  // One store write of this job at a time, so writes land in version order.
  // Never held together with the table's lock.
  std::shared_ptr<absl::Mutex> write_mu = std::make_shared<absl::Mutex>();

  // Callers still waiting for the submission's outcome: the one who asked,
  // and any who retried with the same request_id meanwhile. All get the
  // same answer, or each the job as it stands at its own reply_by.
  struct Waiter {
    JobService::JobCallback done;
    absl::Time reply_by = absl::InfiniteFuture();
  };
  std::vector<Waiter> waiters;
  int transient_failures = 0;
  absl::Time busy_since = absl::InfiniteFuture();
  int reconcile_looks = 0;
  bool submit_in_flight = false;
  // Resubmitted after a reconcile found no copy: a "source busy" answer may
  // then mean the earlier call has just executed after all.
  bool resubmitted = false;
  // Why the last submission attempt did not go through (for the error of a
  // job that runs out of attempts).
  std::string last_submit_error;
  // Ambiguous attempts the reconciler proved had not executed (throttled
  // and other certainly-not-sent attempts do not count).
  int attempts_not_executed = 0;

  // Takes `stored` as the store has it (just created, or read back):
  // written and published as it is.
  void LoadStored(JobRecord stored);
  // Marks `rec` changed (stamping its update_time).
  void Touch(absl::Time now);
  // The call may have executed: the reconciler must settle it. Callers see
  // it RUNNING, as after a call that was accepted, with state_reason saying
  // so (kReconcilingReason) until the reconciler has settled it.
  void MarkOutcomeUnknown();
  // Adds a caller waiting for the submission's outcome. Past
  // kMaxWaiters (a client repeating one request_id in a loop) the caller is
  // answered at once with the job as it stands, as before joining existed:
  // memory per job stays bounded.
  static constexpr size_t kMaxWaiters = 64;
  void AddWaiter(JobService::JobCallback done, absl::Time reply_by);
  // The latest reply_by of the callers waiting (InfinitePast if none): the
  // submission may go on for as long as one of them still waits.
  absl::Time LatestReplyBy() const;
};

// A watched job: its one feed, which every watcher of the job follows (see
// watch_feed.h). Publishing to it costs the same for one watcher or 10,000.
struct Watcher {
  std::string name;
  std::shared_ptr<JobFeed> feed;
  // The last version delivered (serialized) when followed through store
  // re-reads, so a re-read delivers only changes.
  std::string last_sent;
  bool delivered = false;
  // A finished job never changes: once its terminal version went out,
  // nothing may follow it. (A follower's re-read that began before the job
  // finished, or the store's older version after leadership is lost, would
  // otherwise go out after it and look newer to the feed.)
  bool terminal_sent = false;

  // Sends `job` to the job's watchers (one shared copy); `serialized` is its
  // serialization where store re-reads must be told apart from it (several
  // replicas), else "".
  void Deliver(const v1::SyncJob& job, std::string serialized) {
    if (terminal_sent) return;
    last_sent = std::move(serialized);
    delivered = true;
    terminal_sent = IsTerminal(job.state());
    feed->Publish(std::make_shared<const v1::SyncJob>(job));
  }
};

// One WatchJob call: the watched job (its Watcher's id) and its end of the
// job's feed.
struct Subscription {
  uint64_t watcher = 0;
  std::shared_ptr<WatchSubscriber> subscriber;
};

// A SyncBlueprint caller whose job another replica runs: answered from the
// store once the submission has an outcome, or at reply_by.
struct RemoteReply {
  JobService::JobCallback done;
  absl::Time reply_by;
};

// Everything JobTable guards. Its methods only touch memory.
struct TableState {
  TableState(const JobEngineOptions& o, WatchFanOut* f) : options(o), fanout(f) {}
  const JobEngineOptions& options;
  WatchFanOut* const fanout;  // delivers watched jobs' versions off this lock

  Leadership leadership = Leadership::Following();
  // Bumped whenever leadership is taken or lost (even for the same epoch):
  // work that completes under another generation is dropped.
  uint64_t generation = 0;
  bool stopping = false;
  int in_flight = 0;  // upstream calls under way (Shutdown waits for them)
  // Job writes under way. A new leader waits for the previous generation's
  // before it reads the store, so a late write cannot land after the read
  // (or after the new generation's own writes).
  int writes_in_flight = 0;
  bool wake_tracker = false;
  bool wake_follower = false;

  std::map<std::string, JobEntry> active;
  // Finished jobs (SUCCEEDED, FAILED, CANCELLED) with copies still to
  // delete (Cleaner). They no longer hold their source; they stay here,
  // written like active jobs, until no copy is DELETE_PENDING.
  std::map<std::string, JobEntry> cleaning;
  // Source key -> unfinished jobs on it, oldest first; the front one owns it.
  std::map<std::string, std::deque<std::string>> sources;
  // Watched jobs, one entry each however many watch them (id -> Watcher;
  // job name -> that id), and the watches on them (WatchJob's ids).
  std::map<uint64_t, Watcher> watchers;
  std::multimap<std::string, uint64_t> watchers_by_job;
  std::map<uint64_t, Subscription> subscriptions;
  uint64_t next_watch_id = 1;
  std::map<std::string, std::vector<RemoteReply>> remote_replies;

  // Recently finished jobs, for Get without a store read (single replica
  // only: it makes every delete itself and drops the entry; on a shared
  // store see FeedCache) and to keep a job finished here from being placed
  // or adopted again.
  std::map<std::string, v1::SyncJob> finished;
  std::deque<std::string> finished_order;

  // Finished jobs for Get on a shared store, where another replica may
  // delete one at any time (DeleteSyncJob, retention): they answer only
  // while the store's change feed proves them fresh (see Known). Each rule
  // exists because without it a Get could show a job that was deleted:
  // - `fresh` only while the feed listens and has resynced: a delete
  //   notification sent while nobody listened is lost for good.
  // - every resync or disconnect starts a new `generation` and empties the
  //   cache: what was cached may have been deleted while notifications were
  //   missed. Entries are stamped with the generation they were filled in.
  // - every change notification drops its job (deletes and purges first of
  //   all; others to be safe) and bumps `tick`; so does a delete here.
  // - filled only by a Get that read a finished job from the store, and
  //   only if no change of that job was noted since its read began
  //   (MayFillFinished); not when a job finishes here, since another
  //   replica may delete it before this one gets to cache it, its delete
  //   notification already applied.
  struct FeedCache {
    bool fresh = false;
    uint64_t generation = 0;
    uint64_t tick = 0;
    struct Entry {
      v1::SyncJob job;
      uint64_t generation = 0;
    };
    std::map<std::string, Entry> cached;
    std::deque<std::string> cached_order;  // oldest first, for the bound
    // The latest changes (tick, job), newest last, bounded: a fill whose
    // read began before the oldest of them is refused.
    static constexpr size_t kRecentChanges = 256;
    std::deque<std::pair<uint64_t, std::string>> recent;
  };
  FeedCache feed;
  // Where a store read for a possible cache fill began (FeedTicket).
  struct FillTicket {
    bool fresh = false;
    uint64_t generation = 0;
    uint64_t tick = 0;
  };
  // Finished jobs whose final write failed: retried, and never adopted
  // again from the store's older version meanwhile.
  std::map<std::string, JobRecord> unpersisted;
  // Jobs finished here -> the tick at which they were. A list of
  // unfinished jobs whose read began before that tick may still show them
  // unfinished; such a list must not bring them back.
  std::map<std::string, uint64_t> finished_at_tick;
  uint64_t tick = 0;

  // Region -> the error of its last failed DescribeBlueprints (cleared when
  // one succeeds), so a job that times out says why it was not tracked.
  std::map<std::string, std::string> poll_errors;
  JobEngineStats stats;

  static std::string SourceKey(const v1::SyncJob& job);
  // The entry if the job is active, not yet terminal, and `generation` is
  // still current. A terminal job stays active only until its final write
  // is done (JobSteps::Commit); nothing but cleanup may change it after.
  JobEntry* Find(const std::string& name, uint64_t generation);
  // As Find, terminal jobs included, and jobs being cleaned up (for
  // writing, finishing and cleaning up).
  JobEntry* FindAny(const std::string& name, uint64_t generation);
  // Adds a finished job with copies still to delete, as the store has it.
  void AddCleaning(JobRecord rec);
  // Ends the cleanup of a job whose copies are all settled (to the
  // finished cache).
  void EndCleanup(const std::string& name);
  // Adds a job, as the store has it, to the table and to the end of its source's queue; true if
  // it is first in that queue (it owns the source).
  bool Add(JobRecord rec);
  bool OwnsSource(const JobEntry& e) const;
  // Answers every waiting caller with the job as it stands, or with `error`.
  void Reply(JobEntry& e, const absl::Status& error = absl::OkStatus());
  // Answers, with the job as it stands, the waiting callers whose reply_by
  // is at or before `now`.
  void ReplyDue(JobEntry& e, absl::Time now);
  // Empties the finished-job cache of a shared store (it fills again from
  // store reads) without stopping it answering.
  void DropFeedCacheEntries() {
    feed.cached.clear();
    feed.cached_order.clear();
  }
  // Delivers `job` to its watchers: hands it to the job's feed, whose
  // fan-out thread passes it on without this lock.
  void Publish(const v1::SyncJob& job);
  // Removes a finished job (to `cleaning` if copies of it are still to be
  // deleted, else to the finished cache; to `unpersisted` if its final
  // write failed) and returns the job that now owns its source, if any.
  std::optional<std::string> Finish(const std::string& name);
  // The job as this replica last published it, if it runs it or has just
  // finished it (a single replica, or a shared store while the change feed
  // is fresh; nullptr: ask the store).
  const v1::SyncJob* Known(const std::string& name) const;
  // Keeps a finished job for Get (bounded by finished_cache_size).
  void RememberFinished(const v1::SyncJob& job);
  // Keeps, in FeedCache, a finished job read from the store that
  // MayFillFinished allows (bounded by finished_cache_size).
  void FillFromStore(const v1::SyncJob& job);
  // Notes a change of `name` (FeedCache::recent).
  void NoteChange(const std::string& name);
  // Drops `name` from the finished caches and notes the change, so a store
  // read under way for it cannot put it back (DeleteSyncJob here).
  void ForgetFinished(const std::string& name);
  // The change feed (shared store): its changes, `resync` (it listens again
  // and may have missed changes before) or `disconnected` (it is missing
  // them from now on).
  void OnFeedChanges(const JobChanges& changes);
  // Taken before a store read of a job that may fill the finished cache.
  FillTicket FeedTicket() const;
  // Whether `rec`, read from the store in a read that began at `ticket`,
  // may be cached: finished and not open, not cached yet, a shared store
  // whose feed has been fresh since the read began (same generation), and
  // no change of the job noted since.
  bool MayFillFinished(const JobRecord& rec, const FillTicket& ticket) const;
  // Remembers that `name` finished here (see MayAdopt).
  void MarkFinishedHere(const std::string& name);
  // Registers a watch of `name` (a subscription to its feed, made if it is
  // the first); returns its id.
  uint64_t AddWatcher(const std::string& name, JobService::WatchCallback callback);
  // Ends subscription `id` (and the job's feed with its last one); returns
  // its subscriber, for the caller to Close outside this lock, or nullptr.
  std::shared_ptr<WatchSubscriber> RemoveWatcher(uint64_t id);
  // Ends every watch with `status` (shutdown).
  void CloseWatchers(const absl::Status& status);
  // Ends with `status` the watches of the job `name` that had a version of
  // it here but not the terminal one (it was deleted meanwhile).
  void EndWatchesOf(const std::string& name, const absl::Status& status);
  // Marks the in-memory jobs as given up (leadership lost).
  void DropActive();
  // Whether a list of unfinished jobs read from tick `read_tick` may adopt
  // `name` (not active, not finished here since).
  bool MayAdopt(const std::string& name, uint64_t read_tick) const;
  // Forgets finish ticks older than `read_tick` (a read that began after
  // them shows those jobs finished).
  void PruneFinishTicks(uint64_t read_tick);
};

class JobTable {
 public:
  explicit JobTable(const JobEngineOptions& options) : state_(options, &fanout_) {}
  JobTable(const JobTable&) = delete;
  JobTable& operator=(const JobTable&) = delete;

  // Runs fn(TableState&) with the lock held and returns what it returns.
  template <typename Fn>
  auto Locked(Fn&& fn) {
    Hold hold(this);
    return fn(state_);
  }
  template <typename Fn>
  auto Locked(Fn&& fn) const {
    Hold hold(const_cast<JobTable*>(this));
    return fn(static_cast<const TableState&>(state_));
  }

  // Waits until no upstream call is in flight, or `deadline`.
  void AwaitNoCallsInFlight(absl::Time deadline);
  // Waits until no job write is under way (each is bounded by the store's
  // own timeouts).
  void AwaitNoWritesInFlight();
  // The tracker's wait between cycles, on `clock`: until `earliest` only a
  // stop ends it (a wake meanwhile is kept, so the cycle starts then); after
  // that a wake or a stop does, else `latest`. Clears the wake.
  void AwaitTrackerTurn(PacingClock* clock, absl::Time earliest, absl::Time latest);
  // Waits for a wake-up of the follower or `timeout`; clears it.
  void AwaitFollowerWake(absl::Duration timeout);

 private:
  class ABSL_SCOPED_LOCKABLE Hold {
   public:
    explicit Hold(JobTable* t) ABSL_EXCLUSIVE_LOCK_FUNCTION(t->mu_);
    ~Hold() ABSL_UNLOCK_FUNCTION();

   private:
    JobTable* t_;
  };
  void AwaitWake(bool TableState::*flag, absl::Duration timeout);

  // Stopped (joined) after state_ is gone; feeds on its queue are shared.
  WatchFanOut fanout_;
  mutable absl::Mutex mu_;
  TableState state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_TABLE_H_
