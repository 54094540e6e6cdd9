// LeaderElector: decides which of several replicas sharing one job store may
// call Tencent Cloud. Exactly one replica at a time holds a lease in the
// store (PostgreSQL: a one-row table whose expiry is computed by the
// database's clock); it renews the lease often and is the only one that
// submits and polls. Every replica keeps accepting and serving requests.
//
// Safety does not depend on clocks agreeing across hosts:
//  - The lease's expiry is set by the database (now() + lease), so another
//    replica can take it over only after the database says it expired.
//  - The holder considers itself leader only until (local monotonic time when
//    it *sent* its last successful renewal) + lease - margin. The database
//    computed the expiry after that instant, so the holder stops calling
//    upstream at least `margin` before anyone else may start.
//  - Each acquisition gets a new epoch, and the store refuses job updates
//    fenced with an older epoch, so a deposed leader cannot overwrite what
//    its successor wrote.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_LEADER_ELECTOR_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_LEADER_ELECTOR_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace blueprintsync::jobs {

// The store side of the lease (implemented on PostgreSQL; a fake in tests).
class LeaseBackend {
 public:
  struct State {
    bool leader = false;  // `holder` holds the lease now
    int64_t epoch = 0;    // the lease's epoch (when leader: ours)
  };
  virtual ~LeaseBackend() = default;
  // Takes the lease if nobody holds it or it has expired (a new epoch), or
  // renews it if `holder` already holds it (same epoch).
  virtual absl::StatusOr<State> TryAcquireOrRenew(const std::string& holder,
                                                  absl::Duration lease) = 0;
  // Gives the lease up at once if `holder` holds it (a clean shutdown, so a
  // successor need not wait for expiry).
  virtual absl::Status Release(const std::string& holder) = 0;
};

struct LeaderElectorOptions {
  std::string holder;  // unique per process (host, pid, random)
  absl::Duration lease = absl::Seconds(15);
  // How often the lease is renewed (or, by non-leaders, tried).
  absl::Duration renew_interval = absl::Seconds(3);
  // The leader stops this long before the lease could expire.
  absl::Duration margin = absl::Seconds(3);
};

class LeaderElector {
 public:
  LeaderElector(LeaderElectorOptions options, LeaseBackend* backend);
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // InvalidArgument if the timings cannot be safe (renew + margin >= lease).
  absl::Status Validate() const;
  // Tries once at once, then keeps renewing on its own thread.
  void Start();
  // Stops renewing; releases the lease if held. Idempotent.
  void Stop();

  // The epoch of the lease this process holds and may act on now, else 0.
  int64_t Term() const;
  // Term() == term && term != 0.
  bool Holds(int64_t term) const { return term != 0 && Term() == term; }
  // The wall-clock time until which this process may act under `term`
  // (InfinitePast if it does not hold it): a deadline for upstream calls.
  absl::Time ValidUntil(int64_t term) const;
  // Whether the last attempt to reach the store succeeded.
  bool store_reachable() const;
  const std::string& holder() const { return options_.holder; }

  // One acquire-or-renew round (the thread's body; tests call it directly).
  void RoundForTest() { Round(); }

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  void Round();
  void Loop();

  const LeaderElectorOptions options_;
  LeaseBackend* const backend_;

  mutable absl::Mutex mu_;
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  SteadyTime valid_until_ ABSL_GUARDED_BY(mu_);
  bool reachable_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ = false;
  std::thread thread_;
};

// A holder id for this process: "<hostname>/<pid>/<random>".
std::string DefaultHolderId();

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_LEADER_ELECTOR_H_
