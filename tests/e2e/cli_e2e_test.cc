// End-to-end: the blueprint-sync CLI against the real server and emulator,
// run as a script would run it (no TTY): exit codes 0 / 1 / 3, the text
// output of `sync --wait`, `--output json get`, and that client-side
// timeouts never make a second job.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "rapidjson/document.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr char kUuidV4[] = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

// The id from the "request id: ..." line a text-mode sync prints on stderr;
// "" if there is none.
std::string PrintedRequestId(const std::string& err) {
  constexpr absl::string_view kPrefix = "request id: ";
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (absl::ConsumePrefix(&line, kPrefix)) return std::string(line);
  }
  return "";
}

class CliE2eTest : public E2eTest {
 protected:
  absl::StatusOr<RunResult> Cli(std::vector<std::string> args) {
    ChildProcessOptions o;
    o.argv = {BLUEPRINT_SYNC_CLI, "--server", server_address()};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.unset_env = {"BLUEPRINT_SYNC_*", "TENCENTCLOUD_*", "http_proxy", "https_proxy", "grpc_proxy"};
    return RunToCompletion(std::move(o), absl::Seconds(60));
  }
};

TEST_F(CliE2eTest, SyncWaitSucceedsAndGetPrintsJson) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());

  auto run = Cli({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-gzbase01",
                  "--to", "ap-beijing,ap-shanghai", "--wait"});
  BPS_ASSERT_OK(run.status());
  EXPECT_EQ(run->status, ExitedWith(0)) << run->status.ToString() << "\nstdout:\n"
                                        << run->out << "\nstderr:\n"
                                        << run->err;
  const std::string all = run->out + run->err;
  EXPECT_THAT(run->out, HasSubstr("ap-beijing"));
  EXPECT_THAT(run->out, HasSubstr("ap-shanghai"));
  EXPECT_THAT(run->out, HasSubstr("SUCCEEDED"));
  EXPECT_THAT(all, Not(HasSubstr("\x1b["))) << "terminal escapes without a TTY";

  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  ASSERT_EQ(jobs->size(), 1u);
  const v1::SyncJob& job = (*jobs)[0];
  EXPECT_EQ(job.state(), v1::SyncJob::SUCCEEDED);
  EXPECT_THAT(run->out, HasSubstr(job.name().substr(job.name().find('/') + 1)));

  for (const std::string& name : {job.name(), job.name().substr(job.name().find('/') + 1)}) {
    auto get = Cli({"--output", "json", "get", name});
    BPS_ASSERT_OK(get.status());
    EXPECT_EQ(get->status, ExitedWith(0)) << get->err;
    rapidjson::Document doc;
    doc.Parse(get->out.c_str(), get->out.size());
    ASSERT_FALSE(doc.HasParseError()) << "not JSON: " << get->out;
    ASSERT_TRUE(doc.IsObject()) << get->out;
    ASSERT_TRUE(doc.HasMember("state") && doc["state"].IsString()) << get->out;
    EXPECT_STREQ(doc["state"].GetString(), "SUCCEEDED");
    ASSERT_TRUE(doc.HasMember("name") && doc["name"].IsString()) << get->out;
    EXPECT_EQ(doc["name"].GetString(), job.name());
    ASSERT_TRUE(doc.HasMember("destinations") && doc["destinations"].IsArray()) << get->out;
    EXPECT_EQ(doc["destinations"].Size(), 2u);
  }

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
}

TEST_F(CliE2eTest, FailedDestinationExitsOne) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(admin().UpdateConfig(R"({"fail_regions":["ap-shanghai"]})"));
  BPS_ASSERT_OK(StartServer());

  auto run = Cli({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-gzbase01",
                  "--to", "ap-beijing,ap-shanghai", "--wait"});
  BPS_ASSERT_OK(run.status());
  EXPECT_EQ(run->status, ExitedWith(1)) << run->status.ToString() << "\nstdout:\n"
                                        << run->out << "\nstderr:\n"
                                        << run->err;
  EXPECT_THAT(run->out + run->err, HasSubstr("FAILED"));
  EXPECT_THAT(run->out + run->err, HasSubstr("ap-shanghai"));
}

TEST_F(CliE2eTest, ValidationErrorExitsThreeWithTheCode) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());

  // Well-formed for the CLI, rejected by the service (crosses the border).
  auto run = Cli({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-gzbase01",
                  "--to", "ap-singapore", "--wait"});
  BPS_ASSERT_OK(run.status());
  EXPECT_EQ(run->status, ExitedWith(3)) << run->status.ToString() << "\nstdout:\n"
                                        << run->out << "\nstderr:\n"
                                        << run->err;
  EXPECT_THAT(run->err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(run->err, HasSubstr("destination_regions"));

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->requests_total, 0);
}

// Deadlines of a few milliseconds, far shorter than the service's answer
// (Tencent is made to answer SyncBlueprint 300ms late): attempts time out
// while the service may still record and submit the job. Each run sends
// every attempt with one request id, so a run makes at most one job, and
// running it again with that id returns that job instead of a new one.
TEST_F(CliE2eTest, SyncUnderClientTimeoutsOfAFewMsCreatesAtMostOneJobPerRun) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(
      admin().SetFaults(R"({"rules":[{"action":"SyncBlueprint","fault":"latency","phase":"before",)"
                        R"("latency_ms":300}]})"));
  BPS_ASSERT_OK(StartServer());
  const std::vector<std::string> sync = {"sync",           "--source-region", "ap-guangzhou",
                                         "--blueprint-id", "lhbp-gzbase01",   "--to",
                                         "ap-shanghai"};

  std::vector<std::string> request_ids;
  for (const char* timeout : {"1ms", "3ms", "5ms", "10ms", "30ms"}) {
    std::vector<std::string> args = {"--timeout", timeout};
    args.insert(args.end(), sync.begin(), sync.end());
    auto run = Cli(args);
    BPS_ASSERT_OK(run.status());
    // 0: an attempt got the answer; 3: every attempt timed out.
    EXPECT_TRUE(run->status == ExitedWith(0) || run->status == ExitedWith(3))
        << "--timeout " << timeout << ": " << run->status.ToString() << "\nstdout:\n"
        << run->out << "\nstderr:\n"
        << run->err;
    const std::string id = PrintedRequestId(run->err);
    ASSERT_THAT(id, MatchesRegex(kUuidV4)) << run->err;
    if (run->status == ExitedWith(3)) {
      EXPECT_THAT(run->err, HasSubstr("--request-id " + id)) << run->err;
    }
    request_ids.push_back(id);
  }

  // Each run again with its id and time to answer: the job the run made
  // (or, if no attempt reached the service, a new one), never a second.
  for (const std::string& id : request_ids) {
    std::vector<std::string> args = {"--timeout", "30s", "--output", "json"};
    args.insert(args.end(), sync.begin(), sync.end());
    args.insert(args.end(), {"--request-id", id});
    auto again = Cli(args);
    BPS_ASSERT_OK(again.status());
    EXPECT_EQ(again->status, ExitedWith(0)) << again->out << again->err;
    rapidjson::Document doc;
    doc.Parse(again->out.c_str(), again->out.size());
    ASSERT_FALSE(doc.HasParseError()) << "not JSON: " << again->out;
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("requestId") && doc["requestId"].IsString())
        << again->out;
    EXPECT_EQ(doc["requestId"].GetString(), id);
  }

  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  std::map<std::string, int> jobs_per_id;
  for (const v1::SyncJob& job : *jobs) ++jobs_per_id[job.request_id()];
  for (const std::string& id : request_ids) {
    EXPECT_EQ(jobs_per_id[id], 1) << "request id " << id;
  }
  EXPECT_EQ(jobs->size(), request_ids.size());
  // Nor was any job submitted to Tencent twice.
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_LE(stats->Action("SyncBlueprint").executed, static_cast<int64_t>(request_ids.size()));
}

TEST_F(CliE2eTest, UnreachableServerExitsThree) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());
  const std::string address = server_address();
  auto stopped = StopServer();
  BPS_ASSERT_OK(stopped.status());

  ChildProcessOptions o;
  o.argv = {BLUEPRINT_SYNC_CLI,
            "--server",
            address,
            "--timeout",
            "3s",
            "get",
            "syncJobs/0b7e2c52-6f0e-4a55-9d1e-5b7c3f1e2a90"};
  o.unset_env = {"BLUEPRINT_SYNC_*", "grpc_proxy"};
  auto run = RunToCompletion(std::move(o), absl::Seconds(30));
  BPS_ASSERT_OK(run.status());
  EXPECT_EQ(run->status, ExitedWith(3)) << run->out << run->err;
  EXPECT_THAT(run->err, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace blueprintsync::testing
