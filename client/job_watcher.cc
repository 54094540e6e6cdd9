#include "client/job_watcher.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/job_format.h"
#include "client/printable.h"
#include "client/rpc_error.h"

namespace blueprintsync::cli {
namespace {

namespace v1 = ::blueprintsync::v1;

std::string Describe(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                      Printable(status.message(), 200));
}

}  // namespace

bool IsReconnectable(const absl::Status& status) {
  // UNAVAILABLE: connection lost or server draining. DEADLINE_EXCEEDED: could
  // not connect in time. CANCELLED: the CLI never cancels a watch, so this
  // is a server shutting down with the call still open. Anything else
  // (NOT_FOUND, PERMISSION_DENIED, ...) will not change by asking again.
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded ||
         status.code() == absl::StatusCode::kCancelled;
}

JobWatcher::JobWatcher(BlueprintSyncConnection* connection, Clock* clock, ReconnectPolicy policy)
    : connection_(connection), clock_(clock), policy_(policy) {}

absl::StatusOr<v1::SyncJob> JobWatcher::Watch(const std::string& name,
                                              std::optional<v1::SyncJob> known,
                                              const JobCallback& on_job,
                                              const NoteCallback& on_note) {
  v1::WatchSyncJobRequest request;
  request.set_name(name);
  std::optional<v1::SyncJob> last = std::move(known);
  // When the current outage began; unset while a stream is delivering.
  std::optional<absl::Time> broken_since;
  absl::Duration backoff = policy_.initial_backoff;
  int attempt = 0;

  while (true) {
    if (last.has_value() && IsTerminal(last->state())) return *last;

    absl::Status status;
    auto stream = connection_->WatchSyncJob(request);
    if (!stream.ok()) {
      status = stream.status();
    } else {
      v1::SyncJob job;
      while ((*stream)->Read(&job)) {
        if (broken_since.has_value()) {
          on_note(absl::StrCat("reconnected after ",
                               absl::FormatDuration(absl::Trunc(clock_->Now() - *broken_since,
                                                                absl::Milliseconds(100)))));
        }
        broken_since.reset();
        backoff = policy_.initial_backoff;
        attempt = 0;
        last = job;
        on_job(job);
      }
      status = (*stream)->Finish();
    }
    if (last.has_value() && IsTerminal(last->state())) return *last;
    if (status.ok()) {
      // The server promises to end a watch only after the terminal state.
      status = absl::UnavailableError("the watch ended before the job finished");
    }
    if (!last.has_value() || !IsReconnectable(status)) return status;

    const absl::Time now = clock_->Now();
    if (!broken_since.has_value()) broken_since = now;
    if (now + backoff - *broken_since > policy_.give_up_after) {
      on_note(
          absl::StrCat("gave up reconnecting after ",
                       absl::FormatDuration(absl::Trunc(now - *broken_since, absl::Seconds(1)))));
      return status;
    }
    ++attempt;
    on_note(absl::StrCat(attempt == 1 ? "watch interrupted" : "still unreachable", " (",
                         Describe(status), "); reconnecting in ", absl::FormatDuration(backoff),
                         " (attempt ", attempt, ")"));
    clock_->SleepUntil(now + backoff);
    backoff = std::min(backoff * 2, policy_.max_backoff);
  }
}

}  // namespace blueprintsync::cli
