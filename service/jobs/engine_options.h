// What the job engine and each of its parts are configured with, and the
// counters they keep. Kept apart from job_engine.h so the parts need not
// include the facade that wires them.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_ENGINE_OPTIONS_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_ENGINE_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"

namespace blueprintsync::jobs {

class LeaderElector;
class PacingClock;
class StoreHealth;

// Told about every job that ends (metrics). Runs under the job table's lock:
// must be quick and must not call back into the engine.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  // `job` has just become SUCCEEDED or FAILED; each destination has ended
  // (its update_time is when it did).
  virtual void OnJobFinished(const v1::SyncJob& job) = 0;
};

struct JobEngineOptions {
  // Unfinished destinations are polled with DescribeBlueprints at least
  // this often (the longest gap between two tracker cycles).
  absl::Duration poll_interval = absl::Seconds(10);
  // Adaptive tracking (see tracking_pace.h): the next cycle comes as soon as
  // poll_budget_share of describe_per_second allows for the calls the last
  // one made, but not sooner than min_poll_interval after it began. The
  // rest of the budget is left to other users of the account and to the
  // service's other DescribeBlueprints callers. min_poll_interval <=
  // poll_interval; min_poll_interval == poll_interval turns it off.
  double poll_budget_share = 0.5;
  absl::Duration min_poll_interval = absl::Milliseconds(500);
  // The client's DescribeBlueprints limit (--describe-rate), per second.
  double describe_per_second = 10;
  // A job whose destinations are not all finished by then fails them.
  absl::Duration job_deadline = absl::Hours(6);
  // Submission workers (each may wait for rate-limit capacity).
  int workers = 4;
  // Backoff for submissions that certainly did not execute (connection
  // refused, throttled after retries): doubles from initial to max.
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Seconds(30);
  // A source that Tencent reports busy is retried this often, for at most
  // busy_window, before the job fails with ABORTED.
  absl::Duration busy_retry_interval = absl::Seconds(5);
  absl::Duration busy_window = absl::Minutes(10);
  // How long after an ambiguous submission the reconciler first looks, how
  // often it looks again, and how many looks before giving up.
  absl::Duration reconcile_grace = absl::Seconds(10);
  int reconcile_attempts = 6;
  // Finished jobs kept in memory for Get (0 disables).
  int finished_cache_size = 10000;
  // Copies created this long before our attempt still count as its result
  // (clock skew between this host and Tencent Cloud).
  absl::Duration reconcile_clock_skew = absl::Seconds(30);
  // Not owned; must outlive the engine. None when null.
  JobObserver* observer = nullptr;
  // Several replicas on a shared store: only the lease holder calls
  // upstream. Null: this process is the only one and always leads. Not
  // owned; must be started before Start() and outlive the engine.
  LeaderElector* elector = nullptr;
  // Finished jobs (not open) last changed longer ago than this are deleted
  // with their request ids, at most retention_batch per retention_interval
  // (on the leader only). Zero keeps them forever.
  absl::Duration job_retention = absl::Hours(24 * 30);
  absl::Duration retention_interval = absl::Minutes(10);
  int retention_batch = 1000;
  // A copy that could not be deleted (it never became deletable, or every
  // attempt failed) is given up on this long after its destination ended:
  // DELETE_ABANDONED, with the last error.
  absl::Duration cleanup_give_up_after = absl::Hours(24);
  // With an elector: how often leadership is checked, the leader looks for
  // jobs other replicas recorded, and jobs another replica runs are re-read
  // for callers and watchers here.
  absl::Duration follow_interval = absl::Seconds(1);
  // With an elector, on a store with a change feed (PostgreSQL's
  // LISTEN/NOTIFY, JobStore::OpenChangeFeed): the leader reads only the
  // jobs the feed names, and every replica re-reads only the named jobs its
  // callers and watchers wait on, as soon as they change. Everything is
  // still re-read every follow_resync_interval, and whenever the feed
  // (re)connects, so a lost notification delays a change but never loses a
  // job. Without a feed, while it is disconnected, or with
  // follow_change_feed off, everything is re-read every follow_interval.
  bool follow_change_feed = true;
  absl::Duration follow_resync_interval = absl::Seconds(30);
  // Whether the store can be written (see store_health.h): while it cannot,
  // new jobs are refused with UNAVAILABLE and queued ones are not submitted.
  // Not owned; must outlive the engine. Null: always writable.
  const StoreHealth* store_health = nullptr;
  // The clock the tracker paces its cycles on (tracking_pace.h). Null: real
  // time, whatever clock the engine was given (tests that fake the engine's
  // time drive cycles themselves). Not owned.
  PacingClock* pacing_clock = nullptr;
};

struct JobEngineStats {
  int64_t poll_cycles = 0;
  int64_t describe_calls = 0;             // DescribeBlueprints calls by the tracker, total
  int64_t last_cycle_describe_calls = 0;  // in the most recent completed cycle
  int64_t sync_calls = 0;                 // SyncBlueprint calls made
  int64_t active_jobs = 0;
  // Active jobs by the state callers see.
  int64_t queued_jobs = 0;
  int64_t running_jobs = 0;
  int64_t cancelling_jobs = 0;
  // -1: single replica (always leads); 0: not leading; else the lease epoch.
  int64_t leader_term = 0;
  int64_t leadership_changes = 0;  // times this engine took or lost the lead
  // Copies of failed destinations and cancelled jobs (Cleaner).
  int64_t copies_deleted = 0;
  int64_t copy_delete_failures = 0;    // attempts that failed (retried later)
  int64_t copy_deletes_abandoned = 0;  // copies given up on
  int64_t cleanup_jobs = 0;            // finished jobs with copies still to delete
  int64_t jobs_cancelled = 0;
  int64_t jobs_deleted = 0;  // records deleted (DeleteSyncJob and retention)
  // Why the store cannot be written (StoreProblemName), "" while it can.
  std::string store_problem;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_ENGINE_OPTIONS_H_
