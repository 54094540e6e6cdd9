// PolicyWaiter: `policy get --wait`. Asks GetSyncPolicy every poll interval
// until the policy is in sync, a region of it is FAILED, or the deadline
// passes. It polls because there is no stream of policy changes, and a
// policy changes only when the service's controller looks at it (every
// --policy-interval) or a job of it moves, so a look every few seconds
// misses nothing a caller acts on.
//
// Like JobWatcher, it outlives a server restart: once the policy has been
// seen, a call that fails with a code after which asking again can help is
// asked again at the next interval, for up to ReconnectPolicy.give_up_after
// without an answer. The first call's failure ends the wait at once, so a
// mistyped name or a server that is down fails fast.
#ifndef BLUEPRINTSYNC_CLIENT_POLICY_WAITER_H_
#define BLUEPRINTSYNC_CLIENT_POLICY_WAITER_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "client/connection.h"
#include "client/job_watcher.h"
#include "service/common/clock.h"

namespace blueprintsync::cli {

struct PolicyWaitOptions {
  absl::Duration poll_interval = absl::Seconds(2);
  // When to stop waiting; unset: no limit.
  std::optional<absl::Time> deadline;
  ReconnectPolicy reconnect;
};

enum class PolicyWaitOutcome {
  kInSync,        // every region IN_SYNC for the current source
  kRegionFailed,  // at least one region FAILED
  kTimedOut,      // the deadline passed first
};

struct PolicyWaitResult {
  PolicyWaitOutcome outcome = PolicyWaitOutcome::kTimedOut;
  blueprintsync::v1::SyncPolicy policy;  // as last seen
};

// At least one region of the policy is FAILED.
bool AnyRegionFailed(const blueprintsync::v1::SyncPolicy& policy);

class PolicyWaiter {
 public:
  using PolicyCallback = std::function<void(const blueprintsync::v1::SyncPolicy&)>;
  using NoteCallback = std::function<void(const std::string&)>;

  // Not owned; must outlive the waiter.
  PolicyWaiter(BlueprintSyncConnection* connection, Clock* clock, PolicyWaitOptions options);

  // `name` is "syncPolicies/{id}". `on_policy` gets every answer, `on_note`
  // a sentence about each failed call that will be asked again and about a
  // policy that is paused (it will not change until resumed). Returns the
  // outcome, or the error that ended the wait.
  absl::StatusOr<PolicyWaitResult> Wait(const std::string& name, const PolicyCallback& on_policy,
                                        const NoteCallback& on_note);

 private:
  BlueprintSyncConnection* const connection_;
  Clock* const clock_;
  const PolicyWaitOptions options_;
};

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_POLICY_WAITER_H_
