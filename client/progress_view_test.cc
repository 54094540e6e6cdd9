#include "client/progress_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <sstream>
#include <string>

#include "client/fake_connection.h"
#include "service/common/testing/fake_clock.h"

namespace blueprintsync::cli {
namespace {

using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::ParseJob;
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
  ProgressView view(DisplayMode::kTerminal, &out_, &err_, &clock_);
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
