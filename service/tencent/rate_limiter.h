// RateLimiter: paces calls of one API action so that the service itself never
// exceeds Tencent's per-action limits (SyncBlueprint and DeleteBlueprints
// 20/s, DescribeBlueprints 10/s). Calls are spaced evenly, (1 s + guard) /
// rate apart, rather than allowed in bursts: a burst at the end of one second
// followed by another at the start of the next would exceed the limit over a
// sliding second. The small guard (kDefaultRateGuard) absorbs network jitter
// between our send time and Tencent's arrival time.
//
// Even spacing of the slots is not enough on its own: Tencent counts a call
// when it arrives, and a call can arrive long after its slot (a new
// connection's handshake, a caller that a loaded host wakes late) while the
// call a second's worth of slots later goes out at once on a warm
// connection; the two then arrive less than a second apart, whatever the
// guard. A call has arrived by the time its answer is back, so each call
// also goes no sooner than a second after the end of the call a second's
// worth of reservations before it (callers report ends through
// Acquire(deadline, &call) and Ended(call)); while that call is still on
// its way, it may arrive at any moment, so the later one waits for its end.
//
// Reservations are first come, first served and thread-safe. A caller with a
// deadline learns at once whether its slot would come in time and, if not,
// reserves nothing; Acquire() can still refuse after the wait if the call a
// second earlier ended too late for it.
//
// Background calls (AcquireBackground: work nobody is waiting on, such as
// the policy controller's) take a slot only when the limiter is idle: no
// slot reserved ahead of now and no Acquire() caller waiting for its own.
// A foreground caller that arrives while background ones wait goes first;
// one that arrives just after a background call was granted waits one
// interval for it, as it would behind any caller. Background calls keep
// every rule above.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_RATE_LIMITER_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_RATE_LIMITER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/clock.h"

namespace blueprintsync::tencent {

// Default widening of the 1 s window: 2% of it. Smaller guards were seen to
// draw occasional throttles when the sender's threads were delayed by load;
// 2% keeps a 20/s limit at 19.6/s.
inline constexpr absl::Duration kDefaultRateGuard = absl::Milliseconds(20);

class RateLimiter {
 public:
  // `per_second` > 0. `guard` widens the 1 s window.
  RateLimiter(double per_second, Clock* clock, absl::Duration guard = kDefaultRateGuard);

  // Reserves the next free slot and returns when it is. If that slot would be
  // later than `deadline`, reserves nothing and returns DeadlineExceeded.
  absl::StatusOr<absl::Time> Reserve(absl::Time deadline = absl::InfiniteFuture());
  // Reserve() and sleep until the slot, longer if the call a second's worth
  // of slots earlier ended late or has not ended yet. With `call`, the
  // caller then makes one call and must report its end with Ended(*call)
  // (the call a window later waits for it); without, the call is taken to
  // have reached Tencent when this returns.
  absl::Status Acquire(absl::Time deadline = absl::InfiniteFuture(), uint64_t* call = nullptr);
  // Acquire() at background priority: waits (sleeping on the clock) until
  // the limiter is idle, then takes the slot that is free now. If it cannot
  // be idle by `deadline` as far as is known (more foreground callers can
  // only make it later), reserves nothing and returns DeadlineExceeded.
  absl::Status AcquireBackground(absl::Time deadline = absl::InfiniteFuture(),
                                 uint64_t* call = nullptr);
  // The call numbered by Acquire() or AcquireBackground() has its answer
  // (or gave up on one).
  void Ended(uint64_t call);
  // When a reservation made now would be granted (does not reserve).
  absl::Time NextFree() const;

  absl::Duration interval() const { return interval_; }

 private:
  struct Mark {
    // The latest time known by which the call may have reached Tencent: its
    // slot, when it went, when it ended.
    absl::Time by;
    bool final = false;  // ended, or never sent
  };
  // The mark of the call a second's worth of slots before `number`, if it
  // still bounds anything.
  const Mark* WindowEarlierLocked(uint64_t number) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The earliest time the call numbered `number` may go, from the call a
  // second's worth of slots earlier, estimated as if that call arrived by
  // its mark (for handing out slots).
  absl::Time AfterWindowLocked(uint64_t number) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The same, for a call about to go at `now`: while the call a window
  // earlier has not ended, it may still arrive at any moment, so not
  // before a second from now.
  absl::Time ClearOfWindowLocked(uint64_t number, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When a background call could take a slot: `now` if the limiter is idle.
  absl::Time IdleAtLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands out the next slot (and its call number) unless it is past
  // `deadline`; `final`: nothing more will be said about the call.
  absl::Status ReserveLocked(absl::Time deadline, bool final, absl::Time* slot, uint64_t* number)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkLocked(uint64_t number, absl::Time by, bool final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const absl::Duration interval_;
  // The calls one second holds at this rate.
  const uint64_t window_calls_;
  mutable absl::Mutex mu_;
  absl::Time next_free_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t next_number_ ABSL_GUARDED_BY(mu_) = 0;
  // By call number; a mark is dropped once final and a window old.
  std::map<uint64_t, Mark> marks_ ABSL_GUARDED_BY(mu_);
  // Acquire() callers from their reservation until they go or give up, by
  // call number: when each means to go. Background callers wait for them.
  std::map<uint64_t, absl::Time> waiting_ ABSL_GUARDED_BY(mu_);
};

// One limiter per action name. Unknown actions get `default_per_second`.
struct RateLimits {
  double sync_blueprint_per_second = 20;
  double describe_blueprints_per_second = 10;
  double describe_regions_per_second = 10;
  // Tencent's limit for DeleteBlueprints, as for ModifyBlueprintAttribute.
  double delete_blueprints_per_second = 20;
  double default_per_second = 10;
  absl::Duration guard = kDefaultRateGuard;
};

class ActionRateLimiters {
 public:
  ActionRateLimiters(RateLimits limits, Clock* clock);
  RateLimiter& For(const std::string& action);

 private:
  RateLimits limits_;
  Clock* clock_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<RateLimiter>> limiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_RATE_LIMITER_H_
