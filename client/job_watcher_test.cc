#include "client/job_watcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/fake_connection.h"
#include "service/common/testing/fake_clock.h"

namespace blueprintsync::cli {
namespace {

using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::FakeConnection;
using ::blueprintsync::testing::ParseJob;
using ::blueprintsync::testing::WatchScript;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace v1 = ::blueprintsync::v1;

v1::SyncJob Job(v1::SyncJob::State state) {
  v1::SyncJob job = ParseJob(R"pb(name: "syncJobs/j1")pb");
  job.set_state(state);
  return job;
}

class JobWatcherTest : public ::testing::Test {
 protected:
  absl::StatusOr<v1::SyncJob> Watch(std::optional<v1::SyncJob> known = std::nullopt) {
    JobWatcher watcher(&connection_, &clock_, policy_);
    return watcher.Watch(
        "syncJobs/j1", std::move(known),
        [this](const v1::SyncJob& job) { states_.push_back(job.state()); },
        [this](const std::string& note) { notes_.push_back(note); });
  }

  FakeConnection connection_;
  FakeClock clock_;
  ReconnectPolicy policy_;  // 500ms doubling to 10s, give up after 2m
  std::vector<int> states_;
  std::vector<std::string> notes_;
};

TEST_F(JobWatcherTest, StreamsUntilTheTerminalState) {
  connection_.watch_scripts.push_back({absl::OkStatus(),
                                       {Job(v1::SyncJob::RUNNING), Job(v1::SyncJob::SUCCEEDED)},
                                       absl::OkStatus()});
  auto result = Watch();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state(), v1::SyncJob::SUCCEEDED);
  EXPECT_THAT(states_, ElementsAre(v1::SyncJob::RUNNING, v1::SyncJob::SUCCEEDED));
  ASSERT_EQ(connection_.watch_requests.size(), 1u);
  EXPECT_EQ(connection_.watch_requests[0].name(), "syncJobs/j1");
  EXPECT_TRUE(notes_.empty());
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(JobWatcherTest, ReconnectsAfterABreakAndContinues) {
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::RUNNING)}, absl::UnavailableError("Socket closed")});
  connection_.watch_scripts.push_back(
      {absl::UnavailableError("connection refused"), {}, absl::OkStatus()});
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::RUNNING), Job(v1::SyncJob::FAILED)}, absl::OkStatus()});
  auto result = Watch();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state(), v1::SyncJob::FAILED);
  EXPECT_EQ(connection_.watch_requests.size(), 3u);
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Milliseconds(500), absl::Seconds(1)));
  ASSERT_EQ(notes_.size(), 3u);
  EXPECT_EQ(notes_[0],
            "watch interrupted (UNAVAILABLE: Socket closed); reconnecting in 500ms (attempt 1)");
  EXPECT_EQ(notes_[1],
            "still unreachable (UNAVAILABLE: connection refused); reconnecting in 1s (attempt 2)");
  EXPECT_EQ(notes_[2], "reconnected after 1.5s");
}

TEST_F(JobWatcherTest, BackoffDoublesUpToTheCapAndResetsAfterProgress) {
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::RUNNING)}, absl::UnavailableError("x")});
  for (int i = 0; i < 6; ++i) {
    connection_.watch_scripts.push_back({absl::UnavailableError("down"), {}, absl::OkStatus()});
  }
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::RUNNING)}, absl::UnavailableError("again")});
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::SUCCEEDED)}, absl::OkStatus()});
  policy_.max_backoff = absl::Seconds(4);
  auto result = Watch();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(clock_.sleeps(),
              ElementsAre(absl::Milliseconds(500), absl::Seconds(1), absl::Seconds(2),
                          absl::Seconds(4), absl::Seconds(4), absl::Seconds(4), absl::Seconds(4),
                          // The stream delivered again: back to the start.
                          absl::Milliseconds(500)));
}

TEST_F(JobWatcherTest, GivesUpAfterTheBudget) {
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::RUNNING)}, absl::UnavailableError("x")});
  for (int i = 0; i < 100; ++i) {
    connection_.watch_scripts.push_back({absl::UnavailableError("down"), {}, absl::OkStatus()});
  }
  auto result = Watch();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result.status().message(), "down");
  absl::Duration slept;
  for (auto d : clock_.sleeps()) slept += d;
  EXPECT_LE(slept, policy_.give_up_after);
  // 0.5+1+2+4+8 = 15.5s, then 10s steps: 15.5 + 10*10 = 115.5s; one more would pass 2m.
  EXPECT_EQ(clock_.sleeps().size(), 15u);
  EXPECT_THAT(notes_.back(), HasSubstr("gave up reconnecting after 1m55s"));
}

TEST_F(JobWatcherTest, PermanentErrorsAreNotRetried) {
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::RUNNING)}, absl::UnavailableError("x")});
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {}, absl::NotFoundError("no job syncJobs/j1")});
  auto result = Watch();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(connection_.watch_requests.size(), 2u);
}

TEST_F(JobWatcherTest, FirstFailureWithoutAKnownJobIsReturnedAtOnce) {
  connection_.watch_scripts.push_back({absl::UnavailableError("refused"), {}, absl::OkStatus()});
  auto result = Watch();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(connection_.watch_requests.size(), 1u);
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(JobWatcherTest, FirstFailureWithAKnownJobIsRetried) {
  connection_.watch_scripts.push_back({absl::UnavailableError("refused"), {}, absl::OkStatus()});
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::SUCCEEDED)}, absl::OkStatus()});
  auto result = Watch(Job(v1::SyncJob::QUEUED));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state(), v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(connection_.watch_requests.size(), 2u);
}

TEST_F(JobWatcherTest, StreamEndingEarlyWithOkIsTreatedAsABreak) {
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::RUNNING)}, absl::OkStatus()});
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::SUCCEEDED)}, absl::OkStatus()});
  auto result = Watch();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(connection_.watch_requests.size(), 2u);
  EXPECT_THAT(notes_[0], HasSubstr("the watch ended before the job finished"));
}

TEST_F(JobWatcherTest, TerminalStateWinsOverAStreamError) {
  connection_.watch_scripts.push_back(
      {absl::OkStatus(), {Job(v1::SyncJob::SUCCEEDED)}, absl::UnavailableError("reset")});
  auto result = Watch();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(connection_.watch_requests.size(), 1u);
}

TEST_F(JobWatcherTest, KnownTerminalJobNeedsNoStream) {
  auto result = Watch(Job(v1::SyncJob::FAILED));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state(), v1::SyncJob::FAILED);
  EXPECT_TRUE(connection_.watch_requests.empty());
}

TEST(IsReconnectableTest, Codes) {
  EXPECT_TRUE(IsReconnectable(absl::UnavailableError("")));
  EXPECT_TRUE(IsReconnectable(absl::DeadlineExceededError("")));
  EXPECT_TRUE(IsReconnectable(absl::CancelledError("")));
  EXPECT_FALSE(IsReconnectable(absl::NotFoundError("")));
  EXPECT_FALSE(IsReconnectable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsReconnectable(absl::PermissionDeniedError("")));
}

}  // namespace
}  // namespace blueprintsync::cli
