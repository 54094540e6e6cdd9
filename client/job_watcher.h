// JobWatcher: follows one job over WatchSyncJob until it is SUCCEEDED, FAILED
// or CANCELLED (IsTerminal), reconnecting when the stream breaks (the server
// restarted, a proxy dropped the connection). A copy can take an hour, longer
// than any connection is guaranteed to live, so a break is expected, not
// fatal: the watcher reopens the stream with exponential backoff for a
// bounded time and the server resends the current state first, so the latest
// state is never missed (a watch carries the latest state, not every one).
#ifndef BLUEPRINTSYNC_CLIENT_JOB_WATCHER_H_
#define BLUEPRINTSYNC_CLIENT_JOB_WATCHER_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "client/connection.h"
#include "service/common/clock.h"

namespace blueprintsync::cli {

struct ReconnectPolicy {
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(10);
  // Longest time without a working stream before giving up.
  absl::Duration give_up_after = absl::Minutes(2);
};

// Codes after which reopening the stream can help.
bool IsReconnectable(const absl::Status& status);

class JobWatcher {
 public:
  using JobCallback = std::function<void(const blueprintsync::v1::SyncJob&)>;
  using NoteCallback = std::function<void(const std::string&)>;

  // Not owned; must outlive the watcher.
  JobWatcher(BlueprintSyncConnection* connection, Clock* clock, ReconnectPolicy policy = {});

  // Returns the job in its terminal state, or the error that ended the watch.
  // `known` is the job as already seen (e.g. the SyncBlueprint reply): with
  // it, even the first stream may be retried, because the job is known to
  // exist; without it a first failure is returned at once, so a mistyped
  // name or a server that is down fails fast. `on_job` gets every update,
  // `on_note` a sentence about each break and reconnection.
  absl::StatusOr<blueprintsync::v1::SyncJob> Watch(const std::string& name,
                                                   std::optional<blueprintsync::v1::SyncJob> known,
                                                   const JobCallback& on_job,
                                                   const NoteCallback& on_note);

 private:
  BlueprintSyncConnection* const connection_;
  Clock* const clock_;
  const ReconnectPolicy policy_;
};

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_JOB_WATCHER_H_
