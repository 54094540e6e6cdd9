#include "client/progress_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <sstream>
#include <string>
#include <vector>

#include "client/fake_connection.h"
#include "service/common/testing/fake_clock.h"

namespace blueprintsync::cli {
namespace {

using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::ParseJob;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace v1 = ::blueprintsync::v1;

// 2026-11-27T22:01:02Z
const absl::Time kT0 = absl::FromUnixSeconds(1795816862);

v1::SyncJob Running() {
  return ParseJob(R"pb(
    name: "syncJobs/j1"
    state: RUNNING
    update_time { seconds: 1795816862 }
    create_time { seconds: 1795816862 }
    destinations {
      region: "ap-singapore"
      state: SYNCING
      blueprint_id: "lhbp-sg"
      update_time { seconds: 1795816863 }
    }
    destinations { region: "ap-tokyo" state: PENDING }
  )pb");
}

class ProgressViewTest : public ::testing::Test {
 protected:
  FakeClock clock_{kT0 + absl::Seconds(90)};
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ProgressViewTest, LinesPrintOnlyChanges) {
  ProgressView view(DisplayMode::kLines, &out_, &err_, &clock_);
  view.OnJob(Running());
  EXPECT_EQ(out_.str(),
            "2026-11-27T22:01:03Z syncJobs/j1 ap-singapore SYNCING lhbp-sg\n"
            "2026-11-27T22:01:02Z syncJobs/j1 ap-tokyo PENDING -\n"
            "2026-11-27T22:01:02Z syncJobs/j1 job RUNNING\n");
  out_.str("");
  // The same state again (as after a reconnect): nothing new.
  view.OnJob(Running());
  EXPECT_EQ(out_.str(), "");

  v1::SyncJob next = Running();
  auto* sg = next.mutable_destinations(0);
  sg->set_blueprint_state("SYNCING");
  sg->mutable_update_time()->set_seconds(1795816872);
  view.OnJob(next);
  EXPECT_EQ(out_.str(),
            "2026-11-27T22:01:12Z syncJobs/j1 ap-singapore SYNCING lhbp-sg [SYNCING]\n");
  out_.str("");

  next.set_state(v1::SyncJob::FAILED);
  next.mutable_update_time()->set_seconds(1795816900);
  auto* tokyo = next.mutable_destinations(1);
  tokyo->set_state(v1::Destination::FAILED);
  tokyo->mutable_error()->set_code(9);
  tokyo->mutable_error()->set_message("bad");
  view.OnJob(next);
  EXPECT_EQ(
      out_.str(),
      "2026-11-27T22:01:40Z syncJobs/j1 ap-tokyo FAILED - error: FAILED_PRECONDITION (9): bad\n"
      "2026-11-27T22:01:40Z syncJobs/j1 job FAILED\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(ProgressViewTest, LinesUseTheClockWhenTheJobHasNoTimes) {
  ProgressView view(DisplayMode::kLines, &out_, &err_, &clock_);
  view.OnJob(ParseJob(R"pb(name: "syncJobs/j1" state: QUEUED)pb"));
  EXPECT_EQ(out_.str(), "2026-11-27T22:02:32Z syncJobs/j1 job QUEUED\n");
}

TEST_F(ProgressViewTest, LinesSendNotesToStderrAndSummaryToStdout) {
  ProgressView view(DisplayMode::kLines, &out_, &err_, &clock_);
  view.OnJob(Running());
  view.OnNote("watch interrupted; reconnecting in 500ms");
  EXPECT_EQ(err_.str(), "note: watch interrupted; reconnecting in 500ms\n");
  v1::SyncJob done = Running();
  done.set_state(v1::SyncJob::SUCCEEDED);
  for (auto& d : *done.mutable_destinations()) d.set_state(v1::Destination::SUCCEEDED);
  view.OnJob(done);
  out_.str("");
  view.Finish();
  EXPECT_EQ(out_.str(), "job syncJobs/j1 SUCCEEDED (2/2 destinations)\n");
  // Nothing after Finish.
  view.OnJob(Running());
  view.OnNote("late");
  EXPECT_EQ(out_.str(), "job syncJobs/j1 SUCCEEDED (2/2 destinations)\n");
  EXPECT_THAT(err_.str(), Not(HasSubstr("late")));
}

TEST_F(ProgressViewTest, NoSummaryWhenTheJobDidNotFinish) {
  ProgressView view(DisplayMode::kLines, &out_, &err_, &clock_);
  view.OnJob(Running());
  out_.str("");
  view.Finish();
  EXPECT_EQ(out_.str(), "");
}

TEST_F(ProgressViewTest, JsonPrintsEachDistinctUpdateOnOneLine) {
  ProgressView view(DisplayMode::kJson, &out_, &err_, &clock_);
  view.OnJob(ParseJob(R"pb(name: "syncJobs/j1" state: QUEUED)pb"));
  view.OnJob(ParseJob(R"pb(name: "syncJobs/j1" state: QUEUED)pb"));
  view.OnJob(ParseJob(R"pb(name: "syncJobs/j1" state: SUCCEEDED)pb"));
  view.OnNote("reconnected");
  view.Finish();
  EXPECT_EQ(out_.str(),
            "{\"name\":\"syncJobs/j1\",\"state\":\"QUEUED\"}\n"
            "{\"name\":\"syncJobs/j1\",\"state\":\"SUCCEEDED\"}\n");
  EXPECT_EQ(err_.str(), "note: reconnected\n");
}

TEST_F(ProgressViewTest, TerminalRedrawsTheTableInPlace) {
  ProgressView view(DisplayMode::kTerminal, &out_, &err_, &clock_);
  view.OnJob(Running());
  const std::string first = out_.str();
  EXPECT_EQ(first,
            "\r\x1b[2KsyncJobs/j1  RUNNING  elapsed 1m30s\n"
            "\r\x1b[2K  REGION        STATE    BLUEPRINT ID  BLUEPRINT STATE\n"
            "\r\x1b[2K  ap-singapore  SYNCING  lhbp-sg       -\n"
            "\r\x1b[2K  ap-tokyo      PENDING  -             -\n"
            "\x1b[J");
  out_.str("");
  clock_.Advance(absl::Seconds(5));
  view.OnTick();
  // Back up over the four lines drawn, redraw with the new elapsed time.
  EXPECT_THAT(out_.str(), StartsWith("\x1b[4A\r\x1b[2KsyncJobs/j1  RUNNING  elapsed 1m35s\n"));
  out_.str("");
  view.OnNote("watch interrupted (UNAVAILABLE: gone); reconnecting in 1s (attempt 1)");
  EXPECT_THAT(out_.str(), StartsWith("\x1b[4A"));
  EXPECT_THAT(out_.str(), HasSubstr("\r\x1b[2K  note: watch interrupted (UNAVAILABLE: gone); "
                                    "reconnecting in 1s (attempt 1)\n\x1b[J"));
  EXPECT_EQ(err_.str(), "");
  out_.str("");
  // An update clears the note; the cursor goes back over five lines.
  view.OnJob(Running());
  EXPECT_THAT(out_.str(), StartsWith("\x1b[5A"));
  EXPECT_THAT(out_.str(), Not(HasSubstr("note:")));
}

// A terminal of `width` columns as xterm behaves: text wraps to the next row
// at the right margin (deferred: the wrap happens when a character follows
// a full row), "\n" is CR LF (the tty's onlcr), and the three sequences the
// view uses: ESC[nA (cursor up), ESC[2K (erase line), ESC[J (erase below).
class FakeTerminal {
 public:
  explicit FakeTerminal(int width) : width_(width) {}

  void Write(const std::string& bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      const char c = bytes[i];
      if (c == '\r') {
        col_ = 0;
      } else if (c == '\n') {
        col_ = 0;
        ++row_;
      } else if (c == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
        size_t j = i + 2;
        int n = 0;
        while (j < bytes.size() && bytes[j] >= '0' && bytes[j] <= '9')
          n = n * 10 + (bytes[j++] - '0');
        ASSERT_LT(j, bytes.size()) << "unterminated escape";
        switch (bytes[j]) {
          case 'A':
            row_ = std::max(0, row_ - std::max(n, 1));
            col_ = std::min(col_, width_ - 1);
            break;
          case 'K':
            ASSERT_EQ(n, 2);
            Row(row_).clear();
            break;
          case 'J':
            Row(row_).resize(std::min<size_t>(Row(row_).size(), static_cast<size_t>(col_)));
            rows_.resize(static_cast<size_t>(row_) + 1);
            break;
          default:
            FAIL() << "unexpected escape " << bytes[j];
        }
        i = j;
      } else {
        if (col_ == width_) {  // the deferred wrap
          col_ = 0;
          ++row_;
        }
        std::string& r = Row(row_);
        if (r.size() <= static_cast<size_t>(col_)) r.resize(static_cast<size_t>(col_) + 1, ' ');
        r[static_cast<size_t>(col_)] = c;
        ++col_;
      }
    }
  }

  // The non-empty rows, top to bottom, without trailing spaces.
  std::vector<std::string> Screen() const {
    std::vector<std::string> out;
    for (std::string r : rows_) {
      while (!r.empty() && r.back() == ' ') r.pop_back();
      out.push_back(r);
    }
    while (!out.empty() && out.back().empty()) out.pop_back();
    return out;
  }

 private:
  std::string& Row(int row) {
    if (rows_.size() <= static_cast<size_t>(row)) rows_.resize(static_cast<size_t>(row) + 1);
    return rows_[static_cast<size_t>(row)];
  }

  const int width_;
  int row_ = 0;
  int col_ = 0;
  std::vector<std::string> rows_;
};

TEST(FakeTerminalTest, WrapsLongLinesAndMovesUpByRows) {
  FakeTerminal t(10);
  t.Write("0123456789abc\nxy\n");
  EXPECT_THAT(t.Screen(), ElementsAre("0123456789", "abc", "xy"));
  t.Write("\x1b[2A\r\x1b[2Kq\n\x1b[J");
  EXPECT_THAT(t.Screen(), ElementsAre("0123456789", "q"));
}

TEST(FitToWidthTest, CutsToOneLessThanTheWidthAtACharacterBoundary) {
  EXPECT_EQ(FitToWidth("short", 40), "short");
  EXPECT_EQ(FitToWidth(std::string(39, 'a'), 40), std::string(39, 'a'));
  EXPECT_EQ(FitToWidth(std::string(40, 'a'), 40), std::string(36, 'a') + "...");
  // "é" is two bytes: never cut in half.
  const std::string accents = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
  EXPECT_EQ(FitToWidth(accents, 12), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...");
  EXPECT_LE(FitToWidth(std::string(50, 'x'), 3).size(), 2u);
}

// A frame with rows longer than the terminal, then a shorter frame: on a
// terminal of that width the screen must show exactly the new frame, no row
// of the old one (before each line was fitted, the wrapped rows of the
// first frame pushed the cursor-up short and left stale rows on screen).
TEST_F(ProgressViewTest, RedrawLeavesNoStaleRowsAtAnyWidth) {
  for (int width : {110, 40}) {
    SCOPED_TRACE(width);
    std::ostringstream out;
    ProgressView view(DisplayMode::kTerminal, &out, &err_, &clock_, [width] { return width; });
    v1::SyncJob long_job = Running();
    long_job.set_state_reason(std::string(100, 'r'));
    long_job.mutable_destinations(0)->set_blueprint_state(std::string(90, 'S'));
    view.OnJob(long_job);
    view.OnNote(std::string(100, 'n'));
    FakeTerminal terminal(width);
    terminal.Write(out.str());
    for (const std::string& row : terminal.Screen()) {
      EXPECT_LT(row.size(), static_cast<size_t>(width)) << row;
    }
    out.str("");
    view.OnJob(Running());  // no reason, short rows: a smaller frame
    terminal.Write(out.str());
    std::vector<std::string> expected;
    for (const char* line :
         {"syncJobs/j1  RUNNING  elapsed 1m30s",
          "  REGION        STATE    BLUEPRINT ID  BLUEPRINT STATE",
          "  ap-singapore  SYNCING  lhbp-sg       -", "  ap-tokyo      PENDING  -             -"}) {
      expected.push_back(FitToWidth(line, width));
    }
    EXPECT_EQ(terminal.Screen(), expected);
  }
}

TEST_F(ProgressViewTest, QuietPrintsNothingButNotes) {
  ProgressView view(DisplayMode::kQuiet, &out_, &err_, &clock_);
  view.OnJob(Running());
  view.OnNote("reconnecting");
  view.Finish();
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "note: reconnecting\n");
}

TEST_F(ProgressViewTest, LinesShowCancellationAndEachCopysCleanup) {
  ProgressView view(DisplayMode::kLines, &out_, &err_, &clock_);
  view.OnJob(Running());
  out_.str("");
  v1::SyncJob cancelling = Running();
  cancelling.set_state(v1::SyncJob::CANCELLING);
  cancelling.mutable_destinations(0)->set_copy_cleanup(v1::Destination::DELETE_PENDING);
  cancelling.mutable_destinations(1)->set_state(v1::Destination::CANCELLED);
  view.OnJob(cancelling);
  EXPECT_EQ(out_.str(),
            "2026-11-27T22:01:03Z syncJobs/j1 ap-singapore SYNCING lhbp-sg, deleting copy...\n"
            "2026-11-27T22:01:02Z syncJobs/j1 ap-tokyo CANCELLED -\n"
            "2026-11-27T22:01:02Z syncJobs/j1 job CANCELLING\n");
  out_.str("");
  v1::SyncJob cancelled = cancelling;
  cancelled.set_state(v1::SyncJob::CANCELLED);
  auto* sg = cancelled.mutable_destinations(0);
  sg->set_state(v1::Destination::CANCELLED);
  sg->set_copy_cleanup(v1::Destination::DELETED);
  sg->mutable_copy_delete_time()->set_seconds(1795816870);
  sg->mutable_update_time()->set_seconds(1795816870);
  view.OnJob(cancelled);
  view.Finish();
  EXPECT_EQ(out_.str(),
            "2026-11-27T22:01:10Z syncJobs/j1 ap-singapore CANCELLED lhbp-sg, copy deleted "
            "2026-11-27T22:01:10Z\n"
            "2026-11-27T22:01:02Z syncJobs/j1 job CANCELLED\n"
            "job syncJobs/j1 CANCELLED (0/2 destinations)\n"
            "  ap-singapore: CANCELLED; copy deleted 2026-11-27T22:01:10Z\n"
            "  ap-tokyo: CANCELLED\n");
}

TEST_F(ProgressViewTest, TerminalAddsACopyColumnOnceACopyIsCleanedUp) {
  // Wide enough for the whole capped column.
  ProgressView view(DisplayMode::kTerminal, &out_, &err_, &clock_, [] { return 200; });
  v1::SyncJob job = Running();
  job.set_state(v1::SyncJob::CANCELLING);
  auto* sg = job.mutable_destinations(0);
  sg->set_copy_cleanup(v1::Destination::DELETE_ABANDONED);
  sg->mutable_cleanup_error()->set_code(7);
  sg->mutable_cleanup_error()->set_message(std::string(200, 'x'));
  view.OnJob(job);
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("syncJobs/j1  CANCELLING  elapsed"));
  EXPECT_THAT(out, HasSubstr("  REGION        STATE    BLUEPRINT ID  BLUEPRINT STATE  COPY\n"));
  EXPECT_THAT(out, HasSubstr("  ap-singapore  SYNCING  lhbp-sg       -                "
                             "copy NOT deleted: PERMISSION_DENIED (7): xxx"));
  // The long error is cut so the line does not wrap.
  EXPECT_THAT(out, HasSubstr("xxx...\n"));
  EXPECT_THAT(out, Not(HasSubstr(std::string(100, 'x'))));
}

TEST_F(ProgressViewTest, TerminalElapsedStopsAtTheEndTime) {
  ProgressView view(DisplayMode::kTerminal, &out_, &err_, &clock_);
  v1::SyncJob done = Running();
  done.set_state(v1::SyncJob::SUCCEEDED);
  done.mutable_end_time()->set_seconds(1795816862 + 65);
  for (auto& d : *done.mutable_destinations()) d.set_state(v1::Destination::SUCCEEDED);
  view.OnJob(done);
  EXPECT_THAT(out_.str(), HasSubstr("syncJobs/j1  SUCCEEDED  elapsed 1m5s\n"));
  view.Finish();
  EXPECT_THAT(out_.str(), HasSubstr("\x1b[Jjob syncJobs/j1 SUCCEEDED (2/2 destinations)\n"));
}

TEST_F(ProgressViewTest, TerminalElapsedIgnoresACreateTimeInTheFuture) {
  FakeClock behind(kT0 - absl::Hours(1));  // the CLI's clock is an hour behind the server's
  ProgressView view(DisplayMode::kTerminal, &out_, &err_, &behind);
  behind.Advance(absl::Seconds(7));
  view.OnJob(Running());
  EXPECT_THAT(out_.str(), HasSubstr("elapsed 7s\n"));
}

TEST_F(ProgressViewTest, TerminalNoteBeforeAnyJobGoesToStderr) {
  ProgressView view(DisplayMode::kTerminal, &out_, &err_, &clock_);
  view.OnNote("connecting");
  view.OnTick();
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "note: connecting\n");
}

// A clock that counts how often the view asked for the time; each terminal
// redraw asks once.
class CountingClock final : public Clock {
 public:
  absl::Time Now() const override {
    ++calls_;
    return kT0 + absl::Seconds(90);
  }
  void SleepUntil(absl::Time) override {}
  int calls() const { return calls_.load(); }

 private:
  mutable std::atomic<int> calls_{0};
};

TEST(ProgressTickerTest, RedrawsTheTerminalTableUntilDestroyed) {
  CountingClock clock;
  std::ostringstream out, err;
  ProgressView view(DisplayMode::kTerminal, &out, &err, &clock);
  view.OnJob(Running());
  const int after_first_draw = clock.calls();
  {
    ProgressTicker ticker(&view, absl::Milliseconds(1));
    // No timing assertion: just wait (bounded) until two ticks have happened.
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (clock.calls() < after_first_draw + 2 && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  EXPECT_GE(clock.calls(), after_first_draw + 2);
  const int after_ticker = clock.calls();
  // Every tick redrew the table in place.
  EXPECT_THAT(out.str(), HasSubstr("\x1b[4A\r\x1b[2KsyncJobs/j1  RUNNING  elapsed 1m30s\n"));
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(clock.calls(), after_ticker) << "ticks after the ticker was destroyed";
}

TEST(ProgressTickerTest, ZeroIntervalStartsNothing) {
  CountingClock clock;
  std::ostringstream out, err;
  ProgressView view(DisplayMode::kTerminal, &out, &err, &clock);
  view.OnJob(Running());
  const std::string drawn = out.str();
  { ProgressTicker ticker(&view, absl::ZeroDuration()); }
  EXPECT_EQ(out.str(), drawn);
}

}  // namespace
}  // namespace blueprintsync::cli
