// End-to-end: the Tencent Cloud conventions of blueprint-syncd with real
// processes. The region table follows DescribeRegions at runtime (a region
// the emulator opens becomes usable without a rebuild; a failing
// DescribeRegions leaves the compiled table in use), the log names the
// credential source without a secret, and a named credential profile is used
// as tccli would use it, or stops the start when it does not exist.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/metrics/testing/prometheus_text.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kServing = 1;  // grpc.health.v1 SERVING

// The 15 built-in regions, and those plus a mainland "ap-newcity".
constexpr char kBuiltInRegions[] = R"json(
    {"Region":"ap-bangkok","IsChinaMainland":false},{"Region":"ap-beijing","IsChinaMainland":true},
    {"Region":"ap-chengdu","IsChinaMainland":true},{"Region":"ap-guangzhou","IsChinaMainland":true},
    {"Region":"ap-hongkong","IsChinaMainland":false},{"Region":"ap-jakarta","IsChinaMainland":false},
    {"Region":"ap-nanjing","IsChinaMainland":true},{"Region":"ap-seoul","IsChinaMainland":false},
    {"Region":"ap-shanghai","IsChinaMainland":true},{"Region":"ap-singapore","IsChinaMainland":false},
    {"Region":"ap-tokyo","IsChinaMainland":false},{"Region":"eu-frankfurt","IsChinaMainland":false},
    {"Region":"na-ashburn","IsChinaMainland":false},
    {"Region":"na-siliconvalley","IsChinaMainland":false},
    {"Region":"sa-saopaulo","IsChinaMainland":false})json";
std::string RegionsWithoutNewCity() { return absl::StrCat(R"({"regions":[)", kBuiltInRegions, "]}"); }
std::string RegionsWithNewCity() {
  return absl::StrCat(
      R"({"regions":[)", kBuiltInRegions,
      R"json(,{"Region":"ap-newcity","RegionName":"South China (New City)","IsChinaMainland":true}]})json");
}

class TencentE2eTest : public E2eTest {
 protected:
  // GET /metrics at the address of the server's "metrics serving" line.
  absl::StatusOr<std::string> ScrapeMetrics() {
    const std::string out = server_process().Stdout();
    const std::string key = "\"msg\":\"metrics serving\",\"address\":\"127.0.0.1:";
    const size_t at = out.find(key);
    if (at == std::string::npos) return absl::NotFoundError("no metrics serving line");
    const int port = std::atoi(out.c_str() + at + key.size());
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(10, 0);
    client.set_read_timeout(10, 0);
    auto res = client.Get("/metrics");
    if (!res || res->status != 200) return absl::UnavailableError("scrape failed");
    return res->body;
  }
  int64_t DescribeRegionsCalls() {
    absl::StatusOr<EmulatorStats> stats = admin().Stats();
    return stats.ok() ? stats->Action("DescribeRegions").executed : -1;
  }
  // ap-guangzhou's lhbp-gzbase01 copied to ap-beijing ends SUCCEEDED.
  void ExpectACopySucceeds() {
    v1::SyncJob job;
    grpc::Status s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
    absl::StatusOr<v1::SyncJob> done = WaitForTerminal(job.name(), absl::Seconds(60));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->state(), v1::SyncJob::SUCCEEDED);
  }
  bool WaitForDescribeRegions(int64_t at_least, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      if (DescribeRegionsCalls() >= at_least) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }
};

TEST_F(TencentE2eTest, ARegionOpenedUpstreamIsRefusedUntilTheRefreshThenCopiedTo) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-guangzhou", {"lhbp-gzbase01"})));
  BPS_ASSERT_OK(StartServer({"--region-refresh-interval", "8s"}));
  ASSERT_TRUE(WaitForDescribeRegions(1, absl::Seconds(20))) << "no refresh at start";

  // The refused call must come before the next refresh, which the emulator's
  // count shows. On a machine stalled past the interval a refresh may come
  // between: the region is taken away again, two refreshes are waited for
  // (one may have read the list before), and the round is tried again.
  v1::SyncJob job;
  grpc::Status refused;
  int64_t calls_before = 0;
  for (int round = 0;; ++round) {
    ASSERT_LT(round, 5) << "a refresh came between opening the region and the call every time";
    calls_before = DescribeRegionsCalls();
    BPS_ASSERT_OK(admin().Post("/_emulator/regions", RegionsWithNewCity()).status());
    refused = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-newcity"}), &job);
    if (DescribeRegionsCalls() == calls_before) break;
    BPS_ASSERT_OK(admin().Post("/_emulator/regions", RegionsWithoutNewCity()).status());
    ASSERT_TRUE(WaitForDescribeRegions(DescribeRegionsCalls() + 2, absl::Seconds(60)));
  }
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
  EXPECT_THAT(ParseRichError(refused).violation_fields(),
              ::testing::ElementsAre("destination_regions[0]"));
  ASSERT_TRUE(ParseRichError(refused).info.has_value());
  EXPECT_EQ(ParseRichError(refused).info->reason(), "DESTINATION_REGION_UNSUPPORTED");
  EXPECT_THAT(refused.error_message(), HasSubstr("ap-newcity"));

  // After the next refresh the region is known, with its mainland flag.
  ASSERT_TRUE(WaitForDescribeRegions(calls_before + 1, absl::Seconds(30)));
  const std::string request_id = "5a0e6c1d-7b2f-4e3a-9c8d-1f2e3d4c5b6a";
  grpc::Status accepted;
  const absl::Time end = absl::Now() + absl::Seconds(10);
  do {
    accepted =
        Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-newcity"}, request_id), &job);
    if (accepted.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < end);
  ASSERT_TRUE(accepted.ok()) << accepted.error_message();
  const std::string job_name = job.name();
  absl::StatusOr<v1::SyncJob> done = WaitForTerminal(job.name(), absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::SyncJob::SUCCEEDED) << done->DebugString();
  // The mainland rule holds for the new region too.
  grpc::Status cross = Sync(MakeRequest("ap-singapore", "lhbp-sgbase01", {"ap-newcity"}), &job);
  EXPECT_EQ(cross.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(ParseRichError(cross).info.has_value());
  EXPECT_EQ(ParseRichError(cross).info->reason(), "CROSS_BORDER_SYNC");
  EXPECT_THAT(server_process().Stdout(), HasSubstr("\"added\":\"ap-newcity\""));

  // The region leaves the table again (as on a replica that has not
  // refreshed yet): a repeat of the recorded request still gets its job,
  // while a new request to the region is refused.
  const int64_t calls_now = DescribeRegionsCalls();
  BPS_ASSERT_OK(admin().Post("/_emulator/regions", RegionsWithoutNewCity()).status());
  ASSERT_TRUE(WaitForDescribeRegions(calls_now + 2, absl::Seconds(60)));
  ASSERT_THAT(server_process().Stdout(), HasSubstr("\"removed\":\"ap-newcity\""));
  v1::SyncJob repeat;
  grpc::Status again =
      Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-newcity"}, request_id), &repeat);
  ASSERT_TRUE(again.ok()) << again.error_message();
  EXPECT_EQ(repeat.name(), job_name);
  EXPECT_EQ(repeat.state(), v1::SyncJob::SUCCEEDED);
  grpc::Status fresh = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-newcity"},
                                        "6b1f7d2e-8c3a-4f4b-8d9e-2a3f4e5d6c7b"),
                            &repeat);
  EXPECT_EQ(fresh.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << fresh.error_message();
  absl::StatusOr<EmulatorStats> stats = admin().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
}

TEST_F(TencentE2eTest, DescribeRegionsFailingAtStartKeepsTheCompiledTableAndServes) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-guangzhou", {"lhbp-gzbase01"})));
  BPS_ASSERT_OK(admin().SetFaults(
      R"({"rules":[{"action":"DescribeRegions","fault":"internal_error","count":100000}]})"));
  BPS_ASSERT_OK(StartServer({"--region-refresh-interval", "1s", "--metrics-listen=127.0.0.1:0"}));
  const absl::Time end = absl::Now() + absl::Seconds(30);
  while (absl::Now() < end &&
         !absl::StrContains(server_process().Stdout(), "region refresh failed")) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(server_process().Stdout(),
              HasSubstr("\"msg\":\"region refresh failed; keeping the region table in use\""));
  EXPECT_THAT(server_process().Stdout(), HasSubstr("\"table\":\"compiled\""));
  absl::StatusOr<std::string> text = ScrapeMetrics();
  ASSERT_TRUE(text.ok()) << text.status();
  PrometheusText scraped(*text);
  EXPECT_GE(scraped.Sum("blueprintsync_region_refresh_failures_total"), 1);
  EXPECT_EQ(scraped.Sum("blueprintsync_regions"), 15);
  absl::StatusOr<int> health = HealthCheck(channel(), "readiness", absl::Seconds(10));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, kServing);
  ExpectACopySucceeds();
}

TEST_F(TencentE2eTest, TheLogNamesTheCredentialSourceWithoutTheKey) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  const std::string out = server_process().Stdout();
  EXPECT_THAT(out, HasSubstr("\"msg\":\"Tencent Cloud credential source\""));
  EXPECT_THAT(out, HasSubstr("\"source\":\"environment\""));
  EXPECT_THAT(out, HasSubstr("\"secret_id\":\"AKID****MPLE\""));
  // TearDown checks the key and the whole SecretId appear nowhere.
  EXPECT_THAT(out, Not(HasSubstr(kTestSecretKey)));
}

TEST_F(TencentE2eTest, ANamedTccliProfileIsUsedInsteadOfTheEnvironment) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-guangzhou", {"lhbp-gzbase01"})));
  const std::string home = temp_dir() + "/home";
  ASSERT_EQ(::mkdir(home.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((home + "/.tccli").c_str(), 0700), 0);
  const std::string file = home + "/.tccli/prod.credential";
  std::ofstream(file) << R"({"secretId":")" << kTestSecretId << R"(","secretKey":")"
                      << kTestSecretKey << R"("})";
  // Were the environment's key used, every call would fail authentication.
  SetServerEnv({{"HOME", home},
                {"TENCENTCLOUD_PROFILE", "prod"},
                {"TENCENTCLOUD_SECRET_ID", "AKIDnotthekeynotthekeynotthekey1234"},
                {"TENCENTCLOUD_SECRET_KEY", "not-the-key"}});
  BPS_ASSERT_OK(StartServer());
  EXPECT_THAT(server_process().Stdout(),
              HasSubstr(absl::StrCat("\"source\":\"profile prod from ", file, "\"")));
  ExpectACopySucceeds();
}

TEST_F(TencentE2eTest, AMissingNamedProfileStopsTheStartNamingProfileAndFiles) {
  BPS_ASSERT_OK(StartEmulator());
  const std::string home = temp_dir() + "/emptyhome";
  ASSERT_EQ(::mkdir(home.c_str(), 0700), 0);
  SetServerEnv({{"HOME", home}});
  absl::Status s = StartServer({"--tencent-profile", "nosuch"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("credential profile \\\"nosuch\\\""));
  EXPECT_THAT(std::string(s.message()), HasSubstr(home + "/.tccli/nosuch.credential"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(home + "/.tencentcloud/credentials"));
}

}  // namespace
}  // namespace blueprintsync::testing
