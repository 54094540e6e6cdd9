#include "client/progress_view.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/job_format.h"
#include "client/printable.h"
#include "client/rpc_error.h"

namespace blueprintsync::cli {
namespace {

namespace v1 = ::blueprintsync::v1;

// ANSI: cursor up N lines, carriage return + erase line, erase to end of screen.
std::string CursorUp(int n) { return absl::StrCat("\x1b[", n, "A"); }
constexpr char kEraseLine[] = "\r\x1b[2K";
constexpr char kEraseBelow[] = "\x1b[J";

bool IsSet(const google::protobuf::Timestamp& ts) { return ts.seconds() != 0 || ts.nanos() != 0; }

std::string FormatElapsed(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  d = absl::Trunc(d, absl::Seconds(1));
  return d == absl::ZeroDuration() ? "0s" : absl::FormatDuration(d);
}

std::string Dash(const std::string& s) { return s.empty() ? "-" : Printable(s); }

// What a line says about one destination, without the timestamp; a new line
// is printed only when this changes.
std::string DestinationLine(const v1::Destination& d) {
  std::string line = absl::StrCat(Dash(d.region()), " ", DestinationStateName(d.state()), " ",
                                  Dash(d.blueprint_id()));
  if (!d.blueprint_state().empty())
    absl::StrAppend(&line, " [", Printable(d.blueprint_state()), "]");
  if (d.has_error()) absl::StrAppend(&line, " error: ", FormatSyncError(d.error()));
  if (const std::string cleanup = CopyCleanupText(d); !cleanup.empty()) {
    absl::StrAppend(&line, ", ", cleanup);
  }
  return line;
}

bool AnyCleanup(const v1::SyncJob& job) {
  for (const auto& d : job.destinations()) {
    if (d.copy_cleanup() != v1::Destination::COPY_CLEANUP_UNSPECIFIED) return true;
  }
  return false;
}

}  // namespace

std::string FitToWidth(const std::string& line, int width) {
  const size_t room = static_cast<size_t>(std::max(width, 2) - 1);
  if (line.size() <= room) return line;
  const std::string kMark = "...";
  size_t cut = room > kMark.size() + 4 ? room - kMark.size() : room;
  // Back off over UTF-8 continuation bytes (10xxxxxx) to a character start.
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  std::string out = line.substr(0, cut);
  if (cut + kMark.size() <= room) out.append(kMark);
  return out;
}

ProgressView::ProgressView(DisplayMode mode, std::ostream* out, std::ostream* err, Clock* clock,
                           TerminalWidth width)
    : mode_(mode),
      out_(out),
      err_(err),
      clock_(clock),
      started_(clock->Now()),
      width_(std::move(width)) {}

void ProgressView::OnJob(const v1::SyncJob& job) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  last_ = job;
  switch (mode_) {
    case DisplayMode::kLines:
      LinesLocked(job);
      break;
    case DisplayMode::kJson:
      JsonLocked(job);
      break;
    case DisplayMode::kTerminal:
      note_.clear();  // an update means the stream is flowing again
      RedrawLocked();
      break;
    case DisplayMode::kQuiet:
      break;
  }
  out_->flush();
}

void ProgressView::OnNote(const std::string& note) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  if (mode_ == DisplayMode::kTerminal && last_.has_value()) {
    note_ = note;
    RedrawLocked();
    out_->flush();
    return;
  }
  *err_ << "note: " << note << "\n";
  err_->flush();
}

void ProgressView::OnTick() {
  absl::MutexLock lock(&mu_);
  if (finished_ || mode_ != DisplayMode::kTerminal || !last_.has_value()) return;
  RedrawLocked();
  out_->flush();
}

void ProgressView::Finish() {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  if (mode_ == DisplayMode::kJson || mode_ == DisplayMode::kQuiet || !last_.has_value() ||
      !IsTerminal(last_->state()))
    return;
  *out_ << FormatSummary(*last_);
  out_->flush();
}

std::optional<v1::SyncJob> ProgressView::last_job() const {
  absl::MutexLock lock(&mu_);
  return last_;
}

void ProgressView::LinesLocked(const v1::SyncJob& job) {
  const absl::Time now = clock_->Now();
  auto when = [&](const google::protobuf::Timestamp& ts) {
    if (IsSet(ts)) return FormatTimestamp(ts);
    if (IsSet(job.update_time())) return FormatTimestamp(job.update_time());
    return FormatUtc(now);
  };
  const std::string name = Dash(job.name());
  for (const auto& d : job.destinations()) {
    std::string line = DestinationLine(d);
    std::string& shown = shown_[d.region()];
    if (shown == line) continue;
    shown = line;
    *out_ << when(d.update_time()) << " " << name << " " << line << "\n";
  }
  std::string state = JobStateName(job.state());
  if (!job.state_reason().empty()) {
    absl::StrAppend(&state, " (", Printable(job.state_reason(), 100), ")");
  }
  if (state != shown_job_state_) {
    shown_job_state_ = state;
    *out_ << when(job.update_time()) << " " << name << " job " << state;
    if (job.has_error()) *out_ << " error: " << FormatSyncError(job.error());
    *out_ << "\n";
  }
}

void ProgressView::JsonLocked(const v1::SyncJob& job) {
  auto json = ToJsonLine(job);
  if (!json.ok()) {
    *err_ << "note: " << json.status().message() << "\n";
    return;
  }
  if (*json == last_json_) return;
  last_json_ = *json;
  *out_ << *json << "\n";
}

std::string ProgressView::ElapsedLocked() const {
  const v1::SyncJob& job = *last_;
  const absl::Time now = clock_->Now();
  absl::Time start = started_;
  // The job's own clock when it is sane; the CLI's otherwise (clock skew).
  if (IsSet(job.create_time()) && ToTime(job.create_time()) <= now) {
    start = ToTime(job.create_time());
  }
  absl::Time end = now;
  if (IsTerminal(job.state()) && IsSet(job.end_time()) && ToTime(job.end_time()) >= start) {
    end = ToTime(job.end_time());
  }
  return FormatElapsed(end - start);
}

void ProgressView::RedrawLocked() {
  if (!last_.has_value()) return;
  const v1::SyncJob& job = *last_;
  // The COPY column only once some copy is being cleaned up.
  const bool cleanup_column = AnyCleanup(job);
  std::vector<std::vector<std::string>> rows = {
      {"REGION", "STATE", "BLUEPRINT ID", "BLUEPRINT STATE"}};
  if (cleanup_column) rows[0].push_back("COPY");
  for (const auto& d : job.destinations()) {
    rows.push_back({Dash(d.region()), DestinationStateName(d.state()), Dash(d.blueprint_id()),
                    Dash(d.blueprint_state())});
    // Capped so that a long cleanup error does not wrap the line.
    if (cleanup_column) rows.back().push_back(Printable(CopyCleanupText(d), 60));
  }
  std::vector<std::string> lines = {absl::StrCat(Dash(job.name()), "  ", JobStateName(job.state()),
                                                 "  elapsed ", ElapsedLocked())};
  for (absl::string_view row : absl::StrSplit(FormatTable(rows), '\n', absl::SkipEmpty())) {
    lines.push_back(absl::StrCat("  ", row));
  }
  if (!job.state_reason().empty()) {
    lines.push_back(absl::StrCat("  reason: ", Printable(job.state_reason(), 100)));
  }
  if (!note_.empty()) lines.push_back(absl::StrCat("  note: ", Printable(note_, 100)));

  // Every line one row, so that the cursor moves back over exactly the rows
  // drawn (see FitToWidth).
  int width = width_ ? width_() : 0;
  if (width <= 0) width = kDefaultTerminalWidth;
  std::string frame;
  if (drawn_lines_ > 0) frame = CursorUp(drawn_lines_);
  for (const auto& line : lines) absl::StrAppend(&frame, kEraseLine, FitToWidth(line, width), "\n");
  frame += kEraseBelow;
  *out_ << frame;
  drawn_lines_ = static_cast<int>(lines.size());
}

ProgressTicker::ProgressTicker(ProgressView* view, absl::Duration interval) {
  if (interval <= absl::ZeroDuration()) return;
  thread_ = std::thread([this, view, interval] {
    absl::MutexLock lock(&mu_);
    while (true) {
      cv_.WaitWithTimeout(&mu_, interval);
      if (stop_) return;
      // Not under mu_: the view has its own lock, and the destructor must be
      // able to take mu_ meanwhile.
      mu_.Unlock();
      view->OnTick();
      mu_.Lock();
    }
  });
}

ProgressTicker::~ProgressTicker() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    cv_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace blueprintsync::cli
