#include "client/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/exit_codes.h"
#include "client/fake_connection.h"
#include "client/rpc_error.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/common/testing/fake_clock.h"

namespace blueprintsync::cli {
namespace {

using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::FakeConnection;
using ::blueprintsync::testing::ForwardingConnection;
using ::blueprintsync::testing::ParseJob;
using ::blueprintsync::testing::ParsePolicy;
using ::blueprintsync::testing::WatchScript;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

namespace v1 = ::blueprintsync::v1;

constexpr char kUuidV4[] = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

const char kQueued[] = R"pb(
  name: "syncJobs/j1"
  state: QUEUED
  source_region: "ap-guangzhou"
  blueprint_id: "lhbp-src"
  update_time { seconds: 1795816862 }
  destinations { region: "ap-singapore" state: PENDING }
  destinations { region: "ap-tokyo" state: PENDING }
)pb";

class CliTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args, std::map<std::string, std::string> env_vars = {}) {
    CliEnvironment env;
    env.out = &out_;
    env.err = &err_;
    env.stdout_is_terminal = terminal_;
    env.getenv = [env_vars](const std::string& name) -> std::optional<std::string> {
      auto it = env_vars.find(name);
      if (it == env_vars.end()) return std::nullopt;
      return it->second;
    };
    env.clock = &clock_;
    env.connect = [this](const ConnectionOptions& options) {
      connect_options_.push_back(options);
      return std::unique_ptr<BlueprintSyncConnection>(new ForwardingConnection(&fake_connection_));
    };
    env.redraw_interval = absl::ZeroDuration();
    return RunCli(args, env);
  }

  v1::SyncJob Done(v1::SyncJob::State state) {
    v1::SyncJob job = ParseJob(kQueued);
    job.set_state(state);
    for (auto& d : *job.mutable_destinations()) {
      d.set_state(state == v1::SyncJob::SUCCEEDED ? v1::Destination::SUCCEEDED
                                                  : v1::Destination::FAILED);
    }
    if (state == v1::SyncJob::FAILED) {
      job.mutable_destinations(0)->set_state(v1::Destination::SUCCEEDED);
      auto* e = job.mutable_destinations(1)->mutable_error();
      e->set_code(9);
      e->set_message("SYNCING_FAILED");
    }
    return job;
  }

  // The kQueued job cancelled while ap-singapore was being copied: that copy
  // was deleted, ap-tokyo had none.
  v1::SyncJob Cancelled() {
    v1::SyncJob job = ParseJob(kQueued);
    job.set_state(v1::SyncJob::CANCELLED);
    auto* sg = job.mutable_destinations(0);
    sg->set_state(v1::Destination::CANCELLED);
    sg->set_blueprint_id("lhbp-sg");
    sg->set_copy_cleanup(v1::Destination::DELETED);
    sg->mutable_copy_delete_time()->set_seconds(1795816870);
    sg->mutable_update_time()->set_seconds(1795816870);
    job.mutable_destinations(1)->set_state(v1::Destination::CANCELLED);
    return job;
  }

  FakeConnection fake_connection_;
  FakeConnection* const fake_ = &fake_connection_;
  FakeClock clock_{absl::FromUnixSeconds(1795816862)};
  bool terminal_ = false;
  std::ostringstream out_;
  std::ostringstream err_;
  std::vector<ConnectionOptions> connect_options_;
};

TEST_F(CliTest, SyncWithoutWaitPrintsTheJobAndExitsZero) {
  fake_->sync_result = ParseJob(kQueued);
  EXPECT_EQ(Run({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-src", "--to",
                 "ap-singapore,ap-tokyo", "--request-id", "rid"}),
            kExitOk);
  ASSERT_EQ(fake_->sync_requests.size(), 1u);
  const auto& r = fake_->sync_requests[0];
  EXPECT_EQ(r.source_region(), "ap-guangzhou");
  EXPECT_EQ(r.blueprint_id(), "lhbp-src");
  EXPECT_THAT(r.destination_regions(), ElementsAre("ap-singapore", "ap-tokyo"));
  EXPECT_EQ(r.request_id(), "rid");
  EXPECT_FALSE(r.validate_only());
  EXPECT_THAT(out_.str(), StartsWith("name:     syncJobs/j1\nstate:    QUEUED\n"));
  EXPECT_THAT(out_.str(), HasSubstr("  ap-tokyo      PENDING"));
  EXPECT_TRUE(fake_->watch_requests.empty());
  EXPECT_EQ(err_.str(), "");
  ASSERT_EQ(connect_options_.size(), 1u);
  EXPECT_EQ(connect_options_[0].server, "127.0.0.1:50051");
  EXPECT_EQ(connect_options_[0].timeout, absl::Seconds(30));
}

TEST_F(CliTest, SyncValidateOnlyShowsTheDryRun) {
  v1::SyncJob job = ParseJob(kQueued);
  job.clear_name();
  job.set_jobs_ahead(3);
  fake_->sync_result = job;
  EXPECT_EQ(Run({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-src", "--to",
                 "ap-singapore,ap-tokyo", "--validate-only"}),
            kExitOk);
  ASSERT_EQ(fake_->sync_requests.size(), 1u);
  EXPECT_TRUE(fake_->sync_requests[0].validate_only());
  // A dry run creates nothing, so no request id is made up for it.
  EXPECT_EQ(fake_->sync_requests[0].request_id(), "");
  EXPECT_EQ(out_.str(),
            "valid: would copy lhbp-src in ap-guangzhou to ap-singapore, ap-tokyo; "
            "3 job(s) ahead on this source\n"
            "nothing was created (--validate-only)\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CliTest, SyncValidateOnlyJsonIsTheJobAsReturned) {
  v1::SyncJob job = ParseJob(kQueued);
  job.clear_name();
  job.clear_destinations();
  job.clear_update_time();
  job.set_jobs_ahead(1);
  fake_->sync_result = job;
  EXPECT_EQ(Run({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-src", "--to",
                 "ap-tokyo", "--validate-only", "--output", "json"}),
            kExitOk);
  EXPECT_EQ(out_.str(),
            "{\"state\":\"QUEUED\",\"sourceRegion\":\"ap-guangzhou\","
            "\"blueprintId\":\"lhbp-src\",\"jobsAhead\":1}\n");
}

const char kSyncToShanghai[] =
    "sync --source-region ap-guangzhou --blueprint-id lhbp-src --to "
    "ap-shanghai";

std::vector<std::string> Args(const std::string& line, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = absl::StrSplit(line, ' ');
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST_F(CliTest, SyncMakesUpARequestIdAndShowsItFirst) {
  fake_->sync_result = ParseJob(kQueued);
  EXPECT_EQ(Run(Args(kSyncToShanghai)), kExitOk);
  ASSERT_EQ(fake_->sync_requests.size(), 1u);
  const std::string id = fake_->sync_requests[0].request_id();
  EXPECT_THAT(id, MatchesRegex(kUuidV4));
  EXPECT_EQ(err_.str(), absl::StrCat("request id: ", id, "\n"));
  // Another run, another id.
  EXPECT_EQ(Run(Args(kSyncToShanghai)), kExitOk);
  ASSERT_EQ(fake_->sync_requests.size(), 2u);
  EXPECT_THAT(fake_->sync_requests[1].request_id(), MatchesRegex(kUuidV4));
  EXPECT_NE(fake_->sync_requests[1].request_id(), id);
}

TEST_F(CliTest, SyncWithARequestIdOrJsonOutputKeepsStderrQuiet) {
  fake_->sync_result = ParseJob(kQueued);
  EXPECT_EQ(Run(Args(kSyncToShanghai, {"--request-id", "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c"})),
            kExitOk);
  EXPECT_EQ(fake_->sync_requests[0].request_id(), "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_EQ(Run(Args(kSyncToShanghai, {"--output", "json"})), kExitOk);
  EXPECT_THAT(fake_->sync_requests[1].request_id(), MatchesRegex(kUuidV4));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CliTest, SyncResendsTheSameRequestAfterDeadlineExceededOrUnavailable) {
  fake_->sync_results.push_back(absl::DeadlineExceededError("Deadline Exceeded"));
  fake_->sync_results.push_back(absl::UnavailableError("Socket closed"));
  fake_->sync_result = ParseJob(kQueued);
  EXPECT_EQ(Run(Args(kSyncToShanghai, {"--label", "team=web"})), kExitOk);
  ASSERT_EQ(fake_->sync_requests.size(), 3u);
  const std::string id = fake_->sync_requests[0].request_id();
  EXPECT_THAT(id, MatchesRegex(kUuidV4));
  for (const auto& r : fake_->sync_requests) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(r, fake_->sync_requests[0]))
        << r.DebugString();
  }
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Milliseconds(500), absl::Seconds(1)));
  EXPECT_EQ(err_.str(),
            absl::StrCat("request id: ", id, "\n",
                         "note: attempt 1 of 5 failed (DEADLINE_EXCEEDED: Deadline Exceeded); "
                         "sending again with the same request id in 500ms\n"
                         "note: attempt 2 of 5 failed (UNAVAILABLE: Socket closed); sending "
                         "again with the same request id in 1s\n"));
  EXPECT_THAT(out_.str(), StartsWith("name:     syncJobs/j1\n"));
}

TEST_F(CliTest, SyncDoesNotResendAfterOtherErrors) {
  for (absl::Status error :
       {absl::InvalidArgumentError("bad region"), absl::FailedPreconditionError("not NORMAL"),
        absl::ResourceExhaustedError("quota"), absl::InternalError("bug"),
        absl::CancelledError("cancelled")}) {
    fake_->sync_requests.clear();
    fake_->sync_result = error;
    EXPECT_EQ(Run(Args(kSyncToShanghai)), kExitRpcError) << error;
    EXPECT_EQ(fake_->sync_requests.size(), 1u) << error;
  }
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(CliTest, SyncGivesUpAfterFiveAttemptsAndNamesTheRequestId) {
  fake_->sync_result = absl::UnavailableError("failed to connect to all addresses");
  EXPECT_EQ(Run(Args(kSyncToShanghai, {"--wait"})), kExitRpcError);
  ASSERT_EQ(fake_->sync_requests.size(), 5u);
  const std::string id = fake_->sync_requests[0].request_id();
  for (const auto& r : fake_->sync_requests) EXPECT_EQ(r.request_id(), id);
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Milliseconds(500), absl::Seconds(1),
                                           absl::Seconds(2), absl::Seconds(4)));
  EXPECT_THAT(err_.str(),
              HasSubstr(absl::StrCat("note: attempt 5 of 5 failed (UNAVAILABLE: failed to connect "
                                     "to all addresses); giving up. The job may exist: run the "
                                     "command again with --request-id ",
                                     id, " to get it without making another\n")));
  EXPECT_THAT(err_.str(), HasSubstr("error: UNAVAILABLE (14)"));
  EXPECT_TRUE(fake_->watch_requests.empty());
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTest, SyncSendsLabelsJobTimeoutAndKeepFailedCopies) {
  fake_->sync_result = ParseJob(kQueued);
  EXPECT_EQ(Run(Args(kSyncToShanghai, {"--label", "team=web", "--label=env=prod", "--job-timeout",
                                       "1h30m0.25s", "--keep-failed-copies"})),
            kExitOk);
  const auto& r = fake_->sync_requests[0];
  EXPECT_EQ(r.labels_size(), 2);
  EXPECT_EQ(r.labels().at("team"), "web");
  EXPECT_EQ(r.labels().at("env"), "prod");
  ASSERT_TRUE(r.has_timeout());
  EXPECT_EQ(r.timeout().seconds(), 5400);
  EXPECT_EQ(r.timeout().nanos(), 250000000);
  ASSERT_TRUE(r.has_keep_failed_copies());
  EXPECT_TRUE(r.keep_failed_copies());

  EXPECT_EQ(Run(Args(kSyncToShanghai, {"--keep-failed-copies=false"})), kExitOk);
  ASSERT_TRUE(fake_->sync_requests[1].has_keep_failed_copies());
  EXPECT_FALSE(fake_->sync_requests[1].keep_failed_copies());

  EXPECT_EQ(Run(Args(kSyncToShanghai)), kExitOk);
  EXPECT_FALSE(fake_->sync_requests[2].has_keep_failed_copies());
  EXPECT_FALSE(fake_->sync_requests[2].has_timeout());
  EXPECT_EQ(fake_->sync_requests[2].labels_size(), 0);
}

TEST_F(CliTest, SyncWaitForAJobThatEndsCancelledExitsOne) {
  fake_->sync_result = ParseJob(kQueued);
  fake_->watch_scripts.push_back({absl::OkStatus(), {Cancelled()}, absl::OkStatus()});
  EXPECT_EQ(Run(Args(kSyncToShanghai, {"--wait"})), kExitJobFailed);
  EXPECT_THAT(out_.str(), HasSubstr("job syncJobs/j1 CANCELLED (0/2 destinations)\n"));
}

TEST_F(CliTest, CancelPrintsTheJob) {
  v1::SyncJob cancelling = ParseJob(kQueued);
  cancelling.set_state(v1::SyncJob::CANCELLING);
  fake_->cancel_result = cancelling;
  EXPECT_EQ(Run({"cancel", "j1"}), kExitOk);
  ASSERT_EQ(fake_->cancel_requests.size(), 1u);
  EXPECT_EQ(fake_->cancel_requests[0].name(), "syncJobs/j1");
  EXPECT_THAT(out_.str(), StartsWith("name:     syncJobs/j1\nstate:    CANCELLING\n"));
  EXPECT_TRUE(fake_->watch_requests.empty());
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CliTest, CancelWaitFollowsTheJobUntilCancelled) {
  v1::SyncJob cancelling = ParseJob(kQueued);
  cancelling.set_state(v1::SyncJob::CANCELLING);
  fake_->cancel_result = cancelling;
  fake_->watch_scripts.push_back({absl::OkStatus(), {cancelling, Cancelled()}, absl::OkStatus()});
  EXPECT_EQ(Run({"cancel", "syncJobs/j1", "--wait"}), kExitOk);
  ASSERT_EQ(fake_->watch_requests.size(), 1u);
  EXPECT_EQ(fake_->watch_requests[0].name(), "syncJobs/j1");
  EXPECT_THAT(out_.str(), HasSubstr("syncJobs/j1 job CANCELLING\n"));
  EXPECT_THAT(out_.str(), HasSubstr("syncJobs/j1 ap-singapore CANCELLED lhbp-sg, copy deleted "
                                    "2026-11-27T22:01:10Z\n"));
  EXPECT_THAT(out_.str(), HasSubstr("job syncJobs/j1 CANCELLED (0/2 destinations)\n"
                                    "  ap-singapore: CANCELLED; copy deleted "
                                    "2026-11-27T22:01:10Z\n"
                                    "  ap-tokyo: CANCELLED\n"));
}

TEST_F(CliTest, CancelWaitOfAQueuedJobNeedsNoWatch) {
  fake_->cancel_result = Cancelled();
  EXPECT_EQ(Run({"cancel", "j1", "--wait"}), kExitOk);
  EXPECT_TRUE(fake_->watch_requests.empty());
  EXPECT_THAT(out_.str(), HasSubstr("job syncJobs/j1 CANCELLED"));
}

TEST_F(CliTest, CancelWaitForAJobThatEndsOtherwiseExitsOne) {
  v1::SyncJob cancelling = ParseJob(kQueued);
  cancelling.set_state(v1::SyncJob::CANCELLING);
  fake_->cancel_result = cancelling;
  fake_->watch_scripts.push_back({absl::OkStatus(), {Done(v1::SyncJob::FAILED)}, absl::OkStatus()});
  EXPECT_EQ(Run({"cancel", "j1", "--wait"}), kExitJobFailed);
}

TEST_F(CliTest, CancelOfAFinishedJobIsAnRpcError) {
  fake_->cancel_result = absl::FailedPreconditionError("job syncJobs/j1 is SUCCEEDED");
  EXPECT_EQ(Run({"cancel", "j1", "--wait"}), kExitRpcError);
  EXPECT_THAT(err_.str(), StartsWith("error: FAILED_PRECONDITION (9): job syncJobs/j1 is "
                                     "SUCCEEDED\n"));
  EXPECT_TRUE(fake_->watch_requests.empty());
  // Not resent: cancelling is not a call that could make a second job.
  EXPECT_EQ(fake_->cancel_requests.size(), 1u);
}

TEST_F(CliTest, RetryMakesUpARequestIdResendsItAndPrintsTheNewJob) {
  v1::SyncJob retried = ParseJob(kQueued);
  retried.set_name("syncJobs/j2");
  retried.set_retry_of("syncJobs/j1");
  fake_->retry_results.push_back(absl::DeadlineExceededError("Deadline Exceeded"));
  fake_->retry_result = retried;
  EXPECT_EQ(Run({"retry", "j1"}), kExitOk);
  ASSERT_EQ(fake_->retry_requests.size(), 2u);
  EXPECT_EQ(fake_->retry_requests[0].name(), "syncJobs/j1");
  const std::string id = fake_->retry_requests[0].request_id();
  EXPECT_THAT(id, MatchesRegex(kUuidV4));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(fake_->retry_requests[0],
                                                                 fake_->retry_requests[1]));
  EXPECT_THAT(err_.str(), StartsWith(absl::StrCat("request id: ", id, "\n")));
  EXPECT_THAT(out_.str(), StartsWith("name:      syncJobs/j2\n"));
  EXPECT_THAT(out_.str(), HasSubstr("retry of:  syncJobs/j1\n"));
}

TEST_F(CliTest, RetryWithARequestIdAndWaitFollowsTheNewJob) {
  v1::SyncJob retried = ParseJob(kQueued);
  retried.set_name("syncJobs/j2");
  fake_->retry_result = retried;
  v1::SyncJob done = Done(v1::SyncJob::SUCCEEDED);
  done.set_name("syncJobs/j2");
  fake_->watch_scripts.push_back({absl::OkStatus(), {done}, absl::OkStatus()});
  EXPECT_EQ(Run({"retry", "j1", "--request-id", "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c", "--wait"}),
            kExitOk);
  EXPECT_EQ(fake_->retry_requests[0].request_id(), "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  ASSERT_EQ(fake_->watch_requests.size(), 1u);
  EXPECT_EQ(fake_->watch_requests[0].name(), "syncJobs/j2");
  EXPECT_THAT(out_.str(), HasSubstr("job syncJobs/j2 SUCCEEDED (2/2 destinations)\n"));
}

TEST_F(CliTest, RetryOfAnUnfinishedJobIsAnRpcErrorAndNotResent) {
  fake_->retry_result = absl::FailedPreconditionError("job syncJobs/j1 is RUNNING");
  EXPECT_EQ(Run({"retry", "j1"}), kExitRpcError);
  EXPECT_EQ(fake_->retry_requests.size(), 1u);
  EXPECT_THAT(err_.str(), HasSubstr("error: FAILED_PRECONDITION (9)"));
}

TEST_F(CliTest, DeletePrintsAConfirmationOrAnEmptyObject) {
  fake_->delete_result = absl::OkStatus();
  EXPECT_EQ(Run({"delete", "j1"}), kExitOk);
  ASSERT_EQ(fake_->delete_requests.size(), 1u);
  EXPECT_EQ(fake_->delete_requests[0].name(), "syncJobs/j1");
  EXPECT_EQ(out_.str(), "deleted syncJobs/j1\n");
  out_.str("");
  EXPECT_EQ(Run({"--output", "json", "delete", "syncJobs/j1"}), kExitOk);
  EXPECT_EQ(out_.str(), "{}\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CliTest, DeleteOfARunningJobIsAnRpcError) {
  fake_->delete_result = absl::FailedPreconditionError("job syncJobs/j1 is RUNNING; cancel it");
  EXPECT_EQ(Run({"delete", "j1"}), kExitRpcError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(err_.str(), HasSubstr("FAILED_PRECONDITION"));
}

TEST_F(CliTest, WatchOfACancelledJobExitsOne) {
  fake_->watch_scripts.push_back({absl::OkStatus(), {Cancelled()}, absl::OkStatus()});
  EXPECT_EQ(Run({"watch", "j1"}), kExitJobFailed);
}

TEST_F(CliTest, GetShowsCreatorLabelsAndRetryOf) {
  v1::SyncJob job = ParseJob(kQueued);
  job.set_creator("anonymous");
  job.set_retry_of("syncJobs/j0");
  (*job.mutable_labels())["team"] = "web";
  fake_->get_result = job;
  EXPECT_EQ(Run({"get", "j1"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("retry of:  syncJobs/j0\n"
                                    "creator:   anonymous\n"
                                    "labels:    team=web\n"));
}

TEST_F(CliTest, SyncWaitFollowsTheJobToSuccess) {
  fake_->sync_result = ParseJob(kQueued);
  fake_->watch_scripts.push_back(
      {absl::OkStatus(), {ParseJob(kQueued), Done(v1::SyncJob::SUCCEEDED)}, absl::OkStatus()});
  EXPECT_EQ(Run({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-src", "--to",
                 "ap-singapore", "--to", "ap-tokyo", "--wait"}),
            kExitOk);
  ASSERT_EQ(fake_->watch_requests.size(), 1u);
  EXPECT_EQ(fake_->watch_requests[0].name(), "syncJobs/j1");
  EXPECT_EQ(out_.str(),
            "2026-11-27T22:01:02Z syncJobs/j1 ap-singapore PENDING -\n"
            "2026-11-27T22:01:02Z syncJobs/j1 ap-tokyo PENDING -\n"
            "2026-11-27T22:01:02Z syncJobs/j1 job QUEUED\n"
            "2026-11-27T22:01:02Z syncJobs/j1 ap-singapore SUCCEEDED -\n"
            "2026-11-27T22:01:02Z syncJobs/j1 ap-tokyo SUCCEEDED -\n"
            "2026-11-27T22:01:02Z syncJobs/j1 job SUCCEEDED\n"
            "job syncJobs/j1 SUCCEEDED (2/2 destinations)\n");
}

TEST_F(CliTest, WatchOfAFailedJobExitsOne) {
  fake_->watch_scripts.push_back({absl::OkStatus(), {Done(v1::SyncJob::FAILED)}, absl::OkStatus()});
  EXPECT_EQ(Run({"watch", "j1"}), kExitJobFailed);
  EXPECT_EQ(fake_->watch_requests[0].name(), "syncJobs/j1");
  EXPECT_THAT(out_.str(), HasSubstr("job syncJobs/j1 FAILED (1/2 destinations)\n"
                                    "  ap-tokyo: FAILED_PRECONDITION (9): SYNCING_FAILED\n"));
}

TEST_F(CliTest, WatchReconnectsAndNotesItOnStderr) {
  fake_->watch_scripts.push_back({absl::OkStatus(),
                                  {ParseJob(kQueued)},
                                  absl::UnavailableError("the server is shutting down")});
  fake_->watch_scripts.push_back(
      {absl::OkStatus(), {ParseJob(kQueued), Done(v1::SyncJob::SUCCEEDED)}, absl::OkStatus()});
  EXPECT_EQ(Run({"watch", "syncJobs/j1"}), kExitOk);
  EXPECT_THAT(err_.str(), HasSubstr("note: watch interrupted (UNAVAILABLE: the server is shutting "
                                    "down); reconnecting in 500ms (attempt 1)\n"));
  EXPECT_THAT(err_.str(), HasSubstr("note: reconnected after 500ms\n"));
  // The replayed QUEUED state is not printed twice.
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(out_.str(), "job QUEUED")).size(), 2u)
      << out_.str();
}

TEST_F(CliTest, WatchJsonPrintsOneObjectPerUpdate) {
  fake_->watch_scripts.push_back({absl::OkStatus(),
                                  {ParseJob(R"pb(name: "syncJobs/j1" state: RUNNING)pb"),
                                   ParseJob(R"pb(name: "syncJobs/j1" state: SUCCEEDED)pb")},
                                  absl::OkStatus()});
  EXPECT_EQ(Run({"--output", "json", "watch", "j1"}), kExitOk);
  EXPECT_EQ(out_.str(),
            "{\"name\":\"syncJobs/j1\",\"state\":\"RUNNING\"}\n"
            "{\"name\":\"syncJobs/j1\",\"state\":\"SUCCEEDED\"}\n");
}

TEST_F(CliTest, WatchOnATerminalDrawsATable) {
  terminal_ = true;
  fake_->watch_scripts.push_back(
      {absl::OkStatus(), {ParseJob(kQueued), Done(v1::SyncJob::SUCCEEDED)}, absl::OkStatus()});
  EXPECT_EQ(Run({"watch", "j1"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("\x1b[4A"));
  EXPECT_THAT(out_.str(), HasSubstr("  ap-tokyo      SUCCEEDED  -"));
  EXPECT_THAT(out_.str(), HasSubstr("job syncJobs/j1 SUCCEEDED (2/2 destinations)\n"));
}

TEST_F(CliTest, RpcErrorPrintsDetailsAndExitsThree) {
  google::rpc::Status rich;
  rich.set_code(3);
  rich.set_message("destination_regions: unknown region ap-mars");
  google::rpc::ErrorInfo info;
  info.set_reason("UNSUPPORTED_REGION");
  info.set_domain("blueprintsync.v1");
  rich.add_details()->PackFrom(info);
  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field("destination_regions");
  v->set_description("unknown region ap-mars");
  rich.add_details()->PackFrom(bad);
  fake_->sync_result = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, rich.message(), rich.SerializeAsString()));
  EXPECT_EQ(Run({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-src", "--to",
                 "ap-mars", "--wait", "--request-id", "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c"}),
            kExitRpcError);
  EXPECT_EQ(fake_->sync_requests.size(), 1u);
  EXPECT_EQ(err_.str(),
            "error: INVALID_ARGUMENT (3): destination_regions: unknown region ap-mars\n"
            "  field destination_regions: unknown region ap-mars\n");
  EXPECT_EQ(out_.str(), "");
  EXPECT_TRUE(fake_->watch_requests.empty());
}

TEST_F(CliTest, UnreachableServerExitsThreeAndNamesTheServer) {
  fake_->get_result = absl::UnavailableError("failed to connect to all addresses");
  EXPECT_EQ(Run({"get", "j1"}, {{"BLUEPRINT_SYNC_SERVER", "bps.internal:50051"}}), kExitRpcError);
  EXPECT_EQ(connect_options_[0].server, "bps.internal:50051");
  EXPECT_THAT(err_.str(), HasSubstr("  server: bps.internal:50051"));
}

TEST_F(CliTest, GetPrintsTextOrJson) {
  fake_->get_result = ParseJob(kQueued);
  EXPECT_EQ(Run({"get", "syncJobs/j1", "--output=json", "--timeout=3s"}), kExitOk);
  EXPECT_EQ(fake_->get_requests[0].name(), "syncJobs/j1");
  EXPECT_EQ(connect_options_[0].timeout, absl::Seconds(3));
  EXPECT_THAT(out_.str(), StartsWith("{\"name\":\"syncJobs/j1\",\"state\":\"QUEUED\","
                                     "\"sourceRegion\":\"ap-guangzhou\""));
  const std::string out = out_.str();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
}

TEST_F(CliTest, ListOnePage) {
  v1::ListSyncJobsResponse page;
  *page.add_sync_jobs() = ParseJob(kQueued);
  page.set_next_page_token("t2");
  fake_->list_results.push_back(page);
  EXPECT_EQ(
      Run({"list", "--filter", "state = QUEUED", "--page-size", "1", "--order-by", "create_time"}),
      kExitOk);
  ASSERT_EQ(fake_->list_requests.size(), 1u);
  EXPECT_EQ(fake_->list_requests[0].filter(), "state = QUEUED");
  EXPECT_EQ(fake_->list_requests[0].order_by(), "create_time");
  EXPECT_EQ(fake_->list_requests[0].page_size(), 1);
  EXPECT_THAT(out_.str(), HasSubstr("syncJobs/j1  QUEUED"));
  EXPECT_THAT(out_.str(), HasSubstr("next page token: t2\n"));
}

TEST_F(CliTest, ListAllFollowsPageTokens) {
  for (const char* token : {"t2", "t3", ""}) {
    v1::ListSyncJobsResponse page;
    *page.add_sync_jobs() = ParseJob(absl::StrCat("name: \"syncJobs/before-", token, "\""));
    page.set_next_page_token(token);
    fake_->list_results.push_back(page);
  }
  EXPECT_EQ(Run({"list", "--all", "--output", "json", "--filter", "state = FAILED"}), kExitOk);
  ASSERT_EQ(fake_->list_requests.size(), 3u);
  EXPECT_EQ(fake_->list_requests[0].page_token(), "");
  EXPECT_EQ(fake_->list_requests[1].page_token(), "t2");
  EXPECT_EQ(fake_->list_requests[2].page_token(), "t3");
  EXPECT_EQ(fake_->list_requests[2].filter(), "state = FAILED");
  EXPECT_EQ(out_.str(),
            "{\"syncJobs\":[{\"name\":\"syncJobs/before-t2\"},{\"name\":\"syncJobs/before-t3\"},"
            "{\"name\":\"syncJobs/before-\"}],\"nextPageToken\":\"\"}\n");
}

TEST_F(CliTest, ListAllStopsOnARepeatedToken) {
  for (int i = 0; i < 3; ++i) {
    v1::ListSyncJobsResponse page;
    page.set_next_page_token("same");
    fake_->list_results.push_back(page);
  }
  EXPECT_EQ(Run({"list", "--all"}), kExitRpcError);
  EXPECT_EQ(fake_->list_requests.size(), 2u);
  EXPECT_THAT(err_.str(), HasSubstr("returned page token \"same\" twice"));
}

TEST_F(CliTest, UsageErrorExitsTwoWithoutConnecting) {
  EXPECT_EQ(Run({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-src"}),
            kExitUsage);
  EXPECT_EQ(err_.str(),
            "error: --to: at least one destination region is required\n"
            "run 'blueprint-sync --help' for usage\n");
  EXPECT_TRUE(connect_options_.empty());
}

TEST_F(CliTest, HelpExitsZeroWithoutConnecting) {
  EXPECT_EQ(Run({"--help"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("Exit codes:"));
  EXPECT_TRUE(connect_options_.empty());
}

// ---------------------------------------------------------------------------
// policy

// A family policy over ap-shanghai and ap-beijing, neither in sync yet.
const char kPolicy[] = R"pb(
  name: "syncPolicies/web-golden"
  source_region: "ap-guangzhou"
  blueprint_name: "web-golden"
  destination_regions: [ "ap-shanghai", "ap-beijing" ]
  keep_versions: 1
  etag: "e1"
  source_blueprint_id: "lhbp-v1000001"
  regions { region: "ap-shanghai" state: PENDING }
  regions { region: "ap-beijing" state: PENDING }
)pb";

v1::SyncPolicy PolicyWith(v1::SyncPolicyRegion::State shanghai,
                          v1::SyncPolicyRegion::State beijing) {
  v1::SyncPolicy policy = ParsePolicy(kPolicy);
  policy.mutable_regions(0)->set_state(shanghai);
  policy.mutable_regions(1)->set_state(beijing);
  for (auto& r : *policy.mutable_regions()) {
    if (r.state() == v1::SyncPolicyRegion::PENDING) continue;
    r.set_last_job("syncJobs/j1");
    if (r.state() == v1::SyncPolicyRegion::IN_SYNC) r.set_blueprint_id("lhbp-copy0001");
  }
  policy.set_in_sync(shanghai == v1::SyncPolicyRegion::IN_SYNC &&
                     beijing == v1::SyncPolicyRegion::IN_SYNC);
  return policy;
}

TEST_F(CliTest, PolicyCreateSendsThePolicyAndPrintsIt) {
  fake_->create_policy_result = ParsePolicy(kPolicy);
  EXPECT_EQ(Run({"policy", "create", "web-golden", "--source-region", "ap-guangzhou",
                 "--blueprint-name", "web-golden", "--to", "ap-shanghai", "--to=ap-beijing",
                 "--keep-versions", "1", "--label", "team=web", "--paused"}),
            kExitOk);
  ASSERT_EQ(fake_->create_policy_requests.size(), 1u);
  const v1::CreateSyncPolicyRequest& r = fake_->create_policy_requests[0];
  EXPECT_EQ(r.sync_policy_id(), "web-golden");
  EXPECT_FALSE(r.validate_only());
  EXPECT_EQ(r.sync_policy().source_region(), "ap-guangzhou");
  EXPECT_EQ(r.sync_policy().blueprint_name(), "web-golden");
  EXPECT_EQ(r.sync_policy().source_case(), v1::SyncPolicy::kBlueprintName);
  EXPECT_THAT(r.sync_policy().destination_regions(), ElementsAre("ap-shanghai", "ap-beijing"));
  EXPECT_EQ(r.sync_policy().keep_versions(), 1);
  EXPECT_TRUE(r.sync_policy().paused());
  EXPECT_EQ(r.sync_policy().labels().at("team"), "web");
  EXPECT_THAT(out_.str(), StartsWith("name:            syncPolicies/web-golden\n"
                                     "source:          family web-golden in ap-guangzhou\n"));
  EXPECT_THAT(out_.str(), HasSubstr("  ap-beijing   PENDING"));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CliTest, PolicyCreateOfAFixedImageValidateOnlyAndJson) {
  v1::SyncPolicy answer = ParsePolicy(kPolicy);
  answer.clear_name();
  answer.set_blueprint_id("lhbp-ls883feh");
  fake_->create_policy_result = answer;
  EXPECT_EQ(Run({"policy", "create", "syncPolicies/docs", "--source-region", "ap-guangzhou",
                 "--blueprint-id", "lhbp-ls883feh", "--to", "ap-shanghai", "--validate-only"}),
            kExitOk);
  const v1::CreateSyncPolicyRequest& r = fake_->create_policy_requests[0];
  EXPECT_EQ(r.sync_policy_id(), "docs");
  EXPECT_TRUE(r.validate_only());
  EXPECT_EQ(r.sync_policy().source_case(), v1::SyncPolicy::kBlueprintId);
  EXPECT_EQ(r.sync_policy().blueprint_id(), "lhbp-ls883feh");
  EXPECT_FALSE(r.sync_policy().paused());
  EXPECT_EQ(r.sync_policy().keep_versions(), 0);
  EXPECT_THAT(out_.str(), StartsWith("valid: would keep lhbp-ls883feh in ap-guangzhou in "
                                     "ap-shanghai, ap-beijing (keep 1 version per region)\n"));

  out_.str("");
  EXPECT_EQ(Run({"policy", "create", "docs", "--source-region", "ap-guangzhou", "--blueprint-id",
                 "lhbp-ls883feh", "--to", "ap-shanghai", "--output", "json"}),
            kExitOk);
  EXPECT_THAT(out_.str(), StartsWith("{\"sourceRegion\":\"ap-guangzhou\",\"blueprintId\":"
                                     "\"lhbp-ls883feh\",\"destinationRegions\":"));
}

TEST_F(CliTest, PolicyCreateOfATakenIdIsAnRpcErrorAndNotResent) {
  fake_->create_policy_result = absl::AlreadyExistsError("syncPolicies/web-golden already exists");
  EXPECT_EQ(Run({"policy", "create", "web-golden", "--source-region", "ap-guangzhou",
                 "--blueprint-name", "web-golden", "--to", "ap-shanghai"}),
            kExitRpcError);
  EXPECT_EQ(fake_->create_policy_requests.size(), 1u);
  EXPECT_THAT(err_.str(), HasSubstr("error: ALREADY_EXISTS (6): syncPolicies/web-golden already "
                                    "exists\n"));
}

TEST_F(CliTest, PolicyGetPrintsTextOrJson) {
  fake_->get_policy_result = ParsePolicy(kPolicy);
  EXPECT_EQ(Run({"policy", "get", "web-golden"}), kExitOk);
  ASSERT_EQ(fake_->get_policy_requests.size(), 1u);
  EXPECT_EQ(fake_->get_policy_requests[0].name(), "syncPolicies/web-golden");
  EXPECT_THAT(out_.str(), HasSubstr("in sync:         no (0/2 regions)\n"));

  out_.str("");
  EXPECT_EQ(Run({"--output", "json", "policy", "get", "syncPolicies/web-golden"}), kExitOk);
  EXPECT_THAT(out_.str(), StartsWith("{\"name\":\"syncPolicies/web-golden\",\"sourceRegion\":"
                                     "\"ap-guangzhou\",\"blueprintName\":\"web-golden\","));
  const std::string out = out_.str();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  EXPECT_EQ(fake_->get_policy_requests.size(), 2u);  // no polling without --wait
}

TEST_F(CliTest, PolicyGetWaitReturnsZeroOnceInSync) {
  fake_->get_policy_results = {
      PolicyWith(v1::SyncPolicyRegion::PENDING, v1::SyncPolicyRegion::PENDING),
      PolicyWith(v1::SyncPolicyRegion::SYNCING, v1::SyncPolicyRegion::SYNCING),
      PolicyWith(v1::SyncPolicyRegion::IN_SYNC, v1::SyncPolicyRegion::SYNCING),
      PolicyWith(v1::SyncPolicyRegion::IN_SYNC, v1::SyncPolicyRegion::IN_SYNC)};
  EXPECT_EQ(Run({"policy", "get", "web-golden", "--wait"}), kExitOk);
  EXPECT_EQ(fake_->get_policy_requests.size(), 4u);
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(2), absl::Seconds(2), absl::Seconds(2)));
  // Only what changed, one line each, with the time the CLI saw it.
  EXPECT_EQ(out_.str(),
            "2026-11-27T22:01:02Z syncPolicies/web-golden source lhbp-v1000001, 0/2 regions in "
            "sync\n"
            "2026-11-27T22:01:02Z syncPolicies/web-golden ap-shanghai PENDING\n"
            "2026-11-27T22:01:02Z syncPolicies/web-golden ap-beijing PENDING\n"
            "2026-11-27T22:01:04Z syncPolicies/web-golden ap-shanghai SYNCING job syncJobs/j1\n"
            "2026-11-27T22:01:04Z syncPolicies/web-golden ap-beijing SYNCING job syncJobs/j1\n"
            "2026-11-27T22:01:06Z syncPolicies/web-golden source lhbp-v1000001, 1/2 regions in "
            "sync\n"
            "2026-11-27T22:01:06Z syncPolicies/web-golden ap-shanghai IN_SYNC copy lhbp-copy0001 "
            "job syncJobs/j1\n"
            "2026-11-27T22:01:08Z syncPolicies/web-golden in sync with lhbp-v1000001 (2/2 "
            "regions)\n"
            "2026-11-27T22:01:08Z syncPolicies/web-golden ap-beijing IN_SYNC copy lhbp-copy0001 "
            "job syncJobs/j1\n"
            "policy syncPolicies/web-golden in sync: lhbp-v1000001 in 2/2 regions\n");
  EXPECT_EQ(err_.str(), "");
  // Without --timeout on the command line the calls keep the usual deadline.
  EXPECT_EQ(connect_options_[0].timeout, absl::Seconds(30));
}

TEST_F(CliTest, PolicyGetWaitExitsOneAndNamesTheFailedRegionsTencentError) {
  v1::SyncPolicy failed = PolicyWith(v1::SyncPolicyRegion::IN_SYNC, v1::SyncPolicyRegion::FAILED);
  auto* error = failed.mutable_regions(1)->mutable_last_error();
  error->set_code(8);
  error->set_message("The image quota of region `ap-beijing` is exceeded.");
  error->set_tencent_code("LimitExceeded.SyncBlueprintQuotaLimitExceeded");
  error->set_tencent_request_id("req-bj-1");
  fake_->get_policy_results = {
      PolicyWith(v1::SyncPolicyRegion::SYNCING, v1::SyncPolicyRegion::SYNCING), failed};
  EXPECT_EQ(Run({"policy", "get", "web-golden", "--wait", "--poll-interval", "5s"}),
            kExitJobFailed);
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(5)));
  EXPECT_THAT(out_.str(),
              HasSubstr("policy syncPolicies/web-golden not in sync (1/2 regions)\n"
                        "  ap-beijing: FAILED: RESOURCE_EXHAUSTED (8): The image quota of region "
                        "`ap-beijing` is exceeded. (tencent code "
                        "LimitExceeded.SyncBlueprintQuotaLimitExceeded, request id req-bj-1)\n"));
}

TEST_F(CliTest, PolicyGetWaitTimesOutWithItsOwnExitCode) {
  fake_->get_policy_result =
      PolicyWith(v1::SyncPolicyRegion::IN_SYNC, v1::SyncPolicyRegion::SYNCING);
  EXPECT_EQ(Run({"policy", "get", "web-golden", "--wait", "--timeout", "1m"}), kExitTimeout);
  // A look every 2s from 0s to 60s.
  EXPECT_EQ(fake_->get_policy_requests.size(), 31u);
  EXPECT_EQ(clock_.Now(), absl::FromUnixSeconds(1795816862) + absl::Minutes(1));
  // The wait is a minute; each call still gets at most the usual 30s.
  EXPECT_EQ(connect_options_[0].timeout, absl::Seconds(30));
  EXPECT_THAT(out_.str(), HasSubstr("policy syncPolicies/web-golden not in sync (1/2 regions)\n"
                                    "  ap-beijing: SYNCING\n"));
  EXPECT_EQ(err_.str(), "error: syncPolicies/web-golden was not in sync after 1m (--timeout)\n");
}

TEST_F(CliTest, PolicyGetWaitJsonPrintsEachChangedPolicyOnce) {
  fake_->get_policy_results = {
      PolicyWith(v1::SyncPolicyRegion::SYNCING, v1::SyncPolicyRegion::SYNCING),
      PolicyWith(v1::SyncPolicyRegion::SYNCING, v1::SyncPolicyRegion::SYNCING),
      PolicyWith(v1::SyncPolicyRegion::IN_SYNC, v1::SyncPolicyRegion::IN_SYNC)};
  EXPECT_EQ(Run({"policy", "get", "web-golden", "--wait", "--output", "json"}), kExitOk);
  const std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << out_.str();
  EXPECT_THAT(lines[0], HasSubstr("\"state\":\"SYNCING\""));
  EXPECT_THAT(lines[1], HasSubstr("\"inSync\":true"));
}

TEST_F(CliTest, PolicyGetWaitOfAMissingPolicyFailsAtOnce) {
  fake_->get_policy_result = absl::NotFoundError("syncPolicies/nope not found");
  EXPECT_EQ(Run({"policy", "get", "nope", "--wait"}), kExitRpcError);
  EXPECT_EQ(fake_->get_policy_requests.size(), 1u);
  EXPECT_THAT(err_.str(), HasSubstr("error: NOT_FOUND (5): syncPolicies/nope not found\n"));
}

TEST_F(CliTest, PolicyListOnePageOrAll) {
  v1::ListSyncPoliciesResponse page;
  *page.add_sync_policies() = ParsePolicy(kPolicy);
  page.set_next_page_token("t2");
  fake_->list_policies_results.push_back(page);
  EXPECT_EQ(Run({"policy", "list", "--filter", "in_sync = false", "--page-size", "1"}), kExitOk);
  ASSERT_EQ(fake_->list_policies_requests.size(), 1u);
  EXPECT_EQ(fake_->list_policies_requests[0].filter(), "in_sync = false");
  EXPECT_EQ(fake_->list_policies_requests[0].page_size(), 1);
  EXPECT_THAT(out_.str(), HasSubstr("name:            syncPolicies/web-golden\n"));
  EXPECT_THAT(out_.str(), HasSubstr("next page token: t2\n"));

  out_.str("");
  fake_->list_policies_requests.clear();
  for (const char* token : {"t2", ""}) {
    v1::ListSyncPoliciesResponse p;
    p.add_sync_policies()->set_name(absl::StrCat("syncPolicies/before-", token));
    p.set_next_page_token(token);
    fake_->list_policies_results.push_back(p);
  }
  EXPECT_EQ(Run({"policy", "list", "--all", "--output", "json"}), kExitOk);
  ASSERT_EQ(fake_->list_policies_requests.size(), 2u);
  EXPECT_EQ(fake_->list_policies_requests[1].page_token(), "t2");
  EXPECT_EQ(out_.str(),
            "{\"syncPolicies\":[{\"name\":\"syncPolicies/before-t2\"},"
            "{\"name\":\"syncPolicies/before-\"}],\"nextPageToken\":\"\"}\n");
}

TEST_F(CliTest, PolicyUpdateMasksOnlyTheFieldsGiven) {
  fake_->update_policy_result = ParsePolicy(kPolicy);
  EXPECT_EQ(
      Run({"policy", "update", "web-golden", "--keep-versions", "3", "--resume", "--etag", "e1"}),
      kExitOk);
  ASSERT_EQ(fake_->update_policy_requests.size(), 1u);
  const v1::UpdateSyncPolicyRequest& r = fake_->update_policy_requests[0];
  EXPECT_EQ(r.sync_policy().name(), "syncPolicies/web-golden");
  EXPECT_EQ(r.sync_policy().etag(), "e1");
  EXPECT_THAT(r.update_mask().paths(), ElementsAre("keep_versions", "paused"));
  EXPECT_EQ(r.sync_policy().keep_versions(), 3);
  EXPECT_FALSE(r.sync_policy().paused());
  EXPECT_THAT(out_.str(), StartsWith("name:            syncPolicies/web-golden\n"));

  EXPECT_EQ(Run({"policy", "update", "syncPolicies/web-golden", "--to", "ap-chengdu,ap-beijing",
                 "--label", "team=web", "--paused"}),
            kExitOk);
  const v1::UpdateSyncPolicyRequest& r2 = fake_->update_policy_requests[1];
  EXPECT_THAT(r2.update_mask().paths(), ElementsAre("destination_regions", "paused", "labels"));
  EXPECT_THAT(r2.sync_policy().destination_regions(), ElementsAre("ap-chengdu", "ap-beijing"));
  EXPECT_TRUE(r2.sync_policy().paused());
  EXPECT_EQ(r2.sync_policy().labels().at("team"), "web");
  EXPECT_EQ(r2.sync_policy().etag(), "");
}

TEST_F(CliTest, PolicyUpdateWithAStaleEtagIsAnRpcError) {
  fake_->update_policy_result = absl::AbortedError("the policy changed since etag e1");
  EXPECT_EQ(Run({"policy", "update", "web-golden", "--paused", "--etag", "e1"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("ABORTED (10): the policy changed since etag e1"));
}

TEST_F(CliTest, PolicyDeleteWithOrWithoutItsCopies) {
  fake_->delete_policy_result = absl::OkStatus();
  EXPECT_EQ(Run({"policy", "delete", "web-golden"}), kExitOk);
  ASSERT_EQ(fake_->delete_policy_requests.size(), 1u);
  EXPECT_EQ(fake_->delete_policy_requests[0].name(), "syncPolicies/web-golden");
  EXPECT_FALSE(fake_->delete_policy_requests[0].delete_copies());
  EXPECT_EQ(out_.str(), "deleted syncPolicies/web-golden (its copies stay)\n");

  out_.str("");
  EXPECT_EQ(Run({"policy", "delete", "web-golden", "--delete-copies", "--etag", "e1"}), kExitOk);
  EXPECT_TRUE(fake_->delete_policy_requests[1].delete_copies());
  EXPECT_EQ(fake_->delete_policy_requests[1].etag(), "e1");
  EXPECT_THAT(out_.str(), StartsWith("deleting syncPolicies/web-golden: the copies it made are "
                                     "being deleted"));

  out_.str("");
  EXPECT_EQ(Run({"--output", "json", "policy", "delete", "web-golden"}), kExitOk);
  EXPECT_EQ(out_.str(), "{}\n");
}

TEST_F(CliTest, PolicyHelpAndUsageErrorsDoNotConnect) {
  EXPECT_EQ(Run({"policy"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("Subcommands:"));
  EXPECT_EQ(Run({"policy", "frobnicate"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("policy: unknown subcommand \"frobnicate\""));
  EXPECT_EQ(Run({"policy", "update", "web-golden"}), kExitUsage);
  EXPECT_TRUE(connect_options_.empty());
}

}  // namespace
}  // namespace blueprintsync::cli

namespace blueprintsync::cli {
namespace {

class CliOutputTest : public CliTest {};

TEST_F(CliOutputTest, EmptyListsAreEmptyJsonArrays) {
  fake_->list_results.push_back(v1::ListSyncJobsResponse());
  EXPECT_EQ(Run({"list", "-o", "json"}), kExitOk);
  EXPECT_EQ(out_.str(), "{\"syncJobs\":[],\"nextPageToken\":\"\"}\n");
  out_.str("");
  fake_->list_policies_results.push_back(v1::ListSyncPoliciesResponse());
  EXPECT_EQ(Run({"policy", "list", "--output=json"}), kExitOk);
  EXPECT_EQ(out_.str(), "{\"syncPolicies\":[],\"nextPageToken\":\"\"}\n");
}

TEST_F(CliOutputTest, NamePrintsOnlyNamesOneALine) {
  v1::ListSyncJobsResponse page;
  *page.add_sync_jobs() = ParseJob("name: \"syncJobs/a\" state: RUNNING");
  *page.add_sync_jobs() = ParseJob("name: \"syncJobs/b\" state: FAILED");
  page.set_next_page_token("more");
  fake_->list_results.push_back(page);
  EXPECT_EQ(Run({"list", "-o", "name"}), kExitOk);
  EXPECT_EQ(out_.str(), "syncJobs/a\nsyncJobs/b\n");
  out_.str("");
  fake_->list_results.push_back(v1::ListSyncJobsResponse());
  EXPECT_EQ(Run({"list", "-oname"}), kExitOk);
  EXPECT_EQ(out_.str(), "");
  fake_->get_result = ParseJob(kQueued);
  EXPECT_EQ(Run({"get", "j1", "-o", "name"}), kExitOk);
  EXPECT_EQ(out_.str(), "syncJobs/j1\n");
}

TEST_F(CliOutputTest, WideAddsColumnsToTheJobList) {
  v1::ListSyncJobsResponse page;
  *page.add_sync_jobs() = ParseJob(R"pb(
    name: "syncJobs/a"
    state: SUCCEEDED
    creator: "dns:writer.test"
    request_id: "r-1"
    retry_of: "syncJobs/z"
    labels { key: "team" value: "web" }
    labels { key: "env" value: "prod" }
  )pb");
  fake_->list_results.push_back(page);
  fake_->list_results.push_back(page);
  EXPECT_EQ(Run({"list"}), kExitOk);
  const std::string text = out_.str();
  out_.str("");
  EXPECT_EQ(Run({"list", "-o", "wide"}), kExitOk);
  EXPECT_THAT(text, Not(HasSubstr("CREATOR")));
  EXPECT_THAT(out_.str(), HasSubstr("ENDED"));
  EXPECT_THAT(out_.str(), HasSubstr("CREATOR"));
  EXPECT_THAT(out_.str(), HasSubstr("dns:writer.test"));
  EXPECT_THAT(out_.str(), HasSubstr("r-1"));
  EXPECT_THAT(out_.str(), HasSubstr("syncJobs/z"));
  EXPECT_THAT(out_.str(), HasSubstr("env=prod,team=web"));
}

TEST_F(CliOutputTest, VersionNamesTheApi) {
  EXPECT_EQ(Run({"--version"}), kExitOk);
  EXPECT_THAT(out_.str(), StartsWith("blueprint-sync 0."));
  EXPECT_THAT(out_.str(), HasSubstr("\napi: blueprintsync.v1.BlueprintSync\n"));
  EXPECT_TRUE(connect_options_.empty());
}

TEST_F(CliOutputTest, CompletionPrintsAScriptWithoutConnecting) {
  EXPECT_EQ(Run({"completion", "bash"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("complete -F _blueprint_sync blueprint-sync"));
  EXPECT_THAT(out_.str(), HasSubstr("--source-region"));
  out_.str("");
  EXPECT_EQ(Run({"completion", "zsh"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("bashcompinit"));
  EXPECT_TRUE(connect_options_.empty());
}

TEST_F(CliOutputTest, UnreadableTlsFileIsAUsageErrorBeforeAnyCall) {
  EXPECT_EQ(Run({"list", "--cacert", "/nonexistent/ca.pem"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("error: --cacert: /nonexistent/ca.pem: cannot read"));
  EXPECT_TRUE(connect_options_.empty());
  err_.str("");
  EXPECT_EQ(Run({"list"}, {{"BLUEPRINT_SYNC_KEY", "/nonexistent/k.pem"}}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--cert and --key: give both or neither (only --key"));
}

TEST_F(CliOutputTest, UnavailableSaysWhetherTlsWasOn) {
  fake_->list_results.push_back(absl::UnavailableError("Socket closed"));
  EXPECT_EQ(Run({"list"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("tls: off; if the server uses TLS, give --cacert FILE"));
  EXPECT_FALSE(connect_options_.back().tls.enabled);
  err_.str("");
  fake_->list_results.push_back(absl::UnavailableError("handshake failed"));
  EXPECT_EQ(Run({"list", "--tls", "--server-name", "bps.test"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("tls: on"));
  EXPECT_TRUE(connect_options_.back().tls.enabled);
  EXPECT_EQ(connect_options_.back().tls.server_name, "bps.test");
}

TEST_F(CliOutputTest, UnknownCommandSuggestsTheClosest) {
  EXPECT_EQ(Run({"lsit"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("error: unknown command \"lsit\"; did you mean \"list\"?"));
}

}  // namespace
}  // namespace blueprintsync::cli
