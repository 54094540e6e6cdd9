#include "client/policy_waiter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/printable.h"

namespace blueprintsync::cli {

namespace v1 = ::blueprintsync::v1;

bool AnyRegionFailed(const v1::SyncPolicy& policy) {
  return std::any_of(
      policy.regions().begin(), policy.regions().end(),
      [](const v1::SyncPolicyRegion& r) { return r.state() == v1::SyncPolicyRegion::FAILED; });
}

PolicyWaiter::PolicyWaiter(BlueprintSyncConnection* connection, Clock* clock,
                           PolicyWaitOptions options)
    : connection_(connection), clock_(clock), options_(std::move(options)) {}

absl::StatusOr<PolicyWaitResult> PolicyWaiter::Wait(const std::string& name,
                                                    const PolicyCallback& on_policy,
                                                    const NoteCallback& on_note) {
  v1::GetSyncPolicyRequest request;
  request.set_name(name);
  std::optional<v1::SyncPolicy> last;
  // When the current run of failed calls began; unset after an answer.
  std::optional<absl::Time> failing_since;
  bool noted_paused = false;

  while (true) {
    absl::StatusOr<v1::SyncPolicy> policy = connection_->GetSyncPolicy(request);
    const absl::Time now = clock_->Now();
    if (policy.ok()) {
      if (failing_since.has_value()) {
        on_note(absl::StrCat(
            "reached the service again after ",
            absl::FormatDuration(absl::Trunc(now - *failing_since, absl::Milliseconds(100)))));
        failing_since.reset();
      }
      last = *std::move(policy);
      on_policy(*last);
      if (last->in_sync()) return PolicyWaitResult{PolicyWaitOutcome::kInSync, *last};
      if (AnyRegionFailed(*last)) return PolicyWaitResult{PolicyWaitOutcome::kRegionFailed, *last};
      // Said once per pause: a paused policy makes no progress, so a wait
      // without --timeout would go on until someone resumes it.
      if (last->paused() && !noted_paused) {
        on_note("the policy is paused: it will not change until it is resumed");
      }
      noted_paused = last->paused();
    } else {
      if (!last.has_value() || !IsReconnectable(policy.status())) return policy.status();
      if (!failing_since.has_value()) failing_since = now;
      if (now - *failing_since >= options_.reconnect.give_up_after) {
        on_note(
            absl::StrCat("gave up after ",
                         absl::FormatDuration(absl::Trunc(now - *failing_since, absl::Seconds(1))),
                         " without an answer"));
        return policy.status();
      }
      on_note(absl::StrCat("GetSyncPolicy failed (",
                           absl::StatusCodeToString(policy.status().code()), ": ",
                           Printable(policy.status().message(), 200), "); asking again in ",
                           absl::FormatDuration(options_.poll_interval)));
    }
    absl::Time next = now + options_.poll_interval;
    if (options_.deadline.has_value()) {
      if (now >= *options_.deadline) return PolicyWaitResult{PolicyWaitOutcome::kTimedOut, *last};
      // One last look at the deadline itself.
      next = std::min(next, *options_.deadline);
    }
    clock_->SleepUntil(next);
  }
}

}  // namespace blueprintsync::cli
