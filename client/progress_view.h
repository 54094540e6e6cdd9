// ProgressView: the live display of `watch` and of `sync`, `retry` and
// `cancel` with --wait. It is fed every job update from the WatchSyncJob
// stream (plus notes such as "reconnecting") and writes one of three forms:
//   kTerminal  stdout is a TTY: a compact table redrawn in place with ANSI
//              cursor movement, with the elapsed time and the latest note;
//   kLines     one timestamped line per change, for logs and pipes; notes go
//              to stderr so stdout stays one record per line;
//   kJson      every distinct job update as one JSON object per line;
//   kQuiet     nothing on stdout (-o name prints the name once it ends);
//              notes go to stderr.
// On a terminal every line is cut to the terminal's width: a line that
// wrapped would take two rows, and moving the cursor up by one row per line
// would then leave stale rows behind.
// Updates may repeat (the stream restarts with the current state after a
// reconnect); only changes are printed. Thread-safe: a ticker thread may call
// OnTick() while the watch thread calls OnJob().
#ifndef BLUEPRINTSYNC_CLIENT_PROGRESS_VIEW_H_
#define BLUEPRINTSYNC_CLIENT_PROGRESS_VIEW_H_

#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "service/common/clock.h"

namespace blueprintsync::cli {

enum class DisplayMode { kTerminal, kLines, kJson, kQuiet };

// The terminal's width in columns, asked at every redraw (the window may be
// resized); 0 when unknown.
using TerminalWidth = std::function<int()>;
inline constexpr int kDefaultTerminalWidth = 80;

// `line` cut to fit in `width` columns without the terminal wrapping it:
// at most width - 1 bytes (a byte is at most one column; the last column is
// left free, where some terminals wrap early), ending in "..." when cut, and
// never in the middle of a UTF-8 character.
std::string FitToWidth(const std::string& line, int width);

class ProgressView {
 public:
  // Streams and clock are not owned and must outlive the view.
  // `width`: nullptr or 0 means kDefaultTerminalWidth.
  ProgressView(DisplayMode mode, std::ostream* out, std::ostream* err, Clock* clock,
               TerminalWidth width = nullptr);

  void OnJob(const blueprintsync::v1::SyncJob& job);
  // `note` is shown as is; callers pass text made safe with Printable().
  void OnNote(const std::string& note);
  // Redraws the terminal table so the elapsed time moves; no-op otherwise.
  void OnTick();
  // Ends the display: for a finished job in text modes, the summary line(s).
  void Finish();

  // The last job seen, if any.
  std::optional<blueprintsync::v1::SyncJob> last_job() const;

 private:
  void LinesLocked(const blueprintsync::v1::SyncJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void JsonLocked(const blueprintsync::v1::SyncJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RedrawLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string ElapsedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DisplayMode mode_;
  std::ostream* const out_;
  std::ostream* const err_;
  Clock* const clock_;
  const absl::Time started_;
  const TerminalWidth width_;

  mutable absl::Mutex mu_;
  std::optional<blueprintsync::v1::SyncJob> last_ ABSL_GUARDED_BY(mu_);
  // kLines: what was last printed per region, and for the job itself.
  std::map<std::string, std::string> shown_ ABSL_GUARDED_BY(mu_);
  std::string shown_job_state_ ABSL_GUARDED_BY(mu_);
  // kJson: the last line printed.
  std::string last_json_ ABSL_GUARDED_BY(mu_);
  // kTerminal: lines drawn last time, to move the cursor back over them.
  int drawn_lines_ ABSL_GUARDED_BY(mu_) = 0;
  std::string note_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Calls view->OnTick() every `interval` on its own thread until destroyed, so
// the elapsed time on the terminal moves while the stream is quiet. A zero
// interval starts no thread.
class ProgressTicker {
 public:
  ProgressTicker(ProgressView* view, absl::Duration interval);
  ~ProgressTicker();
  ProgressTicker(const ProgressTicker&) = delete;
  ProgressTicker& operator=(const ProgressTicker&) = delete;

 private:
  absl::Mutex mu_;
  absl::CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_PROGRESS_VIEW_H_
