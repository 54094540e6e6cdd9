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
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/common/testing/fake_clock.h"

namespace blueprintsync::cli {
namespace {

using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::FakeConnection;
using ::blueprintsync::testing::ForwardingConnection;
using ::blueprintsync::testing::ParseJob;
using ::blueprintsync::testing::WatchScript;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace v1 = ::blueprintsync::v1;

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

TEST_F(CliTest, SyncValidateOnlySaysNothingWasCreated) {
  v1::SyncJob job = ParseJob(kQueued);
  job.clear_name();
  fake_->sync_result = job;
  EXPECT_EQ(Run({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-src", "--to",
                 "ap-tokyo", "--validate-only"}),
            kExitOk);
  EXPECT_TRUE(fake_->sync_requests[0].validate_only());
  EXPECT_THAT(out_.str(),
              StartsWith("the request is valid (--validate-only: nothing was created)\n"));
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
                 "ap-mars", "--wait"}),
            kExitRpcError);
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
  EXPECT_EQ(Run({"list", "--filter", "state = QUEUED", "--page-size", "1"}), kExitOk);
  ASSERT_EQ(fake_->list_requests.size(), 1u);
  EXPECT_EQ(fake_->list_requests[0].filter(), "state = QUEUED");
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
            "{\"name\":\"syncJobs/before-\"}]}\n");
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

}  // namespace
}  // namespace blueprintsync::cli
