// End-to-end: blueprint-syncd's Prometheus endpoint (--metrics-listen) is
// scraped before and after real work — a SyncBlueprint that runs to
// SUCCEEDED through one injected upstream throttle, a request rejected by
// validation, a health check and a WatchSyncJob — and every series moves by
// exactly what that work implies: the gRPC server series (go-grpc-prometheus
// names and labels), the upstream series (checked against what the emulator
// itself received) and the job series. No secret, job name or blueprint id
// may appear in the scrape.
#include <gtest/gtest.h>
#include <httplib.h>

#include <poll.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "rapidjson/document.h"
#include "service/metrics/testing/prometheus_text.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using Labels = std::map<std::string, std::string>;
using v1::SyncJob;

constexpr char kService[] = "blueprintsync.v1.BlueprintSync";

Labels Rpc(const std::string& method, const std::string& type = "unary",
           const std::string& service = kService) {
  return {{"grpc_type", type}, {"grpc_service", service}, {"grpc_method", method}};
}

Labels With(Labels labels, const Labels& more) {
  labels.insert(more.begin(), more.end());
  return labels;
}

class MetricsE2eTest : public E2eTest {
 protected:
  // host:port from the server's {"msg":"metrics serving","address":...} line.
  absl::StatusOr<std::string> MetricsAddress() {
    for (const std::string& line : server_process().StdoutLines()) {
      if (!absl::StrContains(line, "\"msg\":\"metrics serving\"")) continue;
      rapidjson::Document doc;
      doc.Parse(line.c_str(), line.size());
      if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("address") ||
          !doc["address"].IsString()) {
        return absl::InternalError(absl::StrCat("unexpected metrics line: ", line));
      }
      return std::string(doc["address"].GetString());
    }
    return absl::NotFoundError("no \"metrics serving\" log line");
  }

  absl::StatusOr<std::string> ScrapeText() {
    const size_t colon = metrics_address_.rfind(':');
    httplib::Client client(metrics_address_.substr(0, colon),
                           std::stoi(metrics_address_.substr(colon + 1)));
    client.set_connection_timeout(10, 0);
    client.set_read_timeout(10, 0);
    auto res = client.Get("/metrics");
    if (!res) return absl::UnavailableError(httplib::to_string(res.error()));
    if (res->status != 200) return absl::UnavailableError(absl::StrCat("HTTP ", res->status));
    return res->body;
  }

  PrometheusText Scrape() {
    absl::StatusOr<std::string> text = ScrapeText();
    EXPECT_TRUE(text.ok()) << text.status();
    if (!text.ok()) return PrometheusText("");
    scrapes_.push_back(*text);
    return PrometheusText(*text);
  }

  std::string metrics_address_;
  std::vector<std::string> scrapes_;
};

TEST_F(MetricsE2eTest, SeriesMoveWithASyncAValidationErrorAndAWatch) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "4000"}));
  BPS_ASSERT_OK(StartServer({"--metrics-listen", "127.0.0.1:0"}));
  absl::StatusOr<std::string> address = MetricsAddress();
  BPS_ASSERT_OK(address.status());
  ASSERT_TRUE(absl::StartsWith(*address, "127.0.0.1:")) << *address;
  ASSERT_NE(*address, "127.0.0.1:0");
  metrics_address_ = *address;

  // The first SyncBlueprint attempt is throttled upstream (certainly not
  // executed), so the client retries it once.
  BPS_ASSERT_OK(admin().SetFaults(
      R"({"rules":[{"action":"SyncBlueprint","fault":"error","code":"RequestLimitExceeded",)"
      R"("message":"Injected throttle.","count":1}]})"));

  const PrometheusText before = Scrape();
  ASSERT_FALSE(HasFailure());
  // Every family is there before anything happened.
  for (const char* name : {"blueprintsync_jobs", "blueprintsync_jobs_finished_total",
                           "blueprintsync_credential_refresh_failures_total"}) {
    EXPECT_FALSE(before.Matching(name, {}).empty()) << name;
  }
  EXPECT_EQ(before.Sum("blueprintsync_jobs"), 0);

  const std::string request_id = "0b7c3f1e-9d2a-4c61-8e55-3f0a1b2c4d5e";
  SyncJob job;
  grpc::Status s =
      Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"}, request_id),
           &job);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();

  // While it runs, the gauge shows it (read before GetSyncJob: if the job is
  // still RUNNING afterwards, it was RUNNING at the scrape).
  const PrometheusText during = Scrape();
  SyncJob now;
  ASSERT_TRUE(Get(job.name(), &now).ok());
  if (now.state() == SyncJob::RUNNING) {
    EXPECT_EQ(during.Sum("blueprintsync_jobs", {{"state", "RUNNING"}}), 1);
    EXPECT_EQ(during.Sum("blueprintsync_jobs", {{"state", "QUEUED"}}), 0);
  } else {
    ADD_FAILURE() << "job ended within a 4 s sync before the scrape: " << now.ShortDebugString();
  }

  auto done = WaitForTerminal(job.name());
  BPS_ASSERT_OK(done.status());
  ASSERT_EQ(done->state(), SyncJob::SUCCEEDED) << done->ShortDebugString();

  SyncJob rejected;
  s = Sync(MakeRequest("ap-guangzhou", "lhbp-NOT_VALID", {"ap-beijing"}), &rejected);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  auto health = HealthCheck(channel(), "readiness", absl::Seconds(10));
  BPS_ASSERT_OK(health.status());

  {  // A watch of the finished job: its state, then OK.
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::WatchSyncJobRequest request;
    request.set_name(job.name());
    auto reader = stub().WatchSyncJob(&context, request);
    SyncJob update;
    int updates = 0;
    while (reader->Read(&update)) ++updates;
    EXPECT_EQ(updates, 1);
    const grpc::Status watch = reader->Finish();
    EXPECT_TRUE(watch.ok()) << watch.error_message();
  }

  const PrometheusText after = Scrape();
  ASSERT_FALSE(HasFailure());
  auto delta = [&](const std::string& name, const Labels& labels) {
    return after.Sum(name, labels) - before.Sum(name, labels);
  };

  // --- gRPC server, go-grpc-prometheus names, labels and code spellings. ---
  const Labels sync = Rpc("SyncBlueprint");
  EXPECT_EQ(delta("grpc_server_started_total", sync), 2);
  EXPECT_EQ(delta("grpc_server_handled_total", With(sync, {{"grpc_code", "OK"}})), 1);
  EXPECT_EQ(delta("grpc_server_handled_total", With(sync, {{"grpc_code", "InvalidArgument"}})), 1);
  EXPECT_EQ(delta("grpc_server_handled_total", sync), 2);
  EXPECT_EQ(delta("grpc_server_msg_received_total", sync), 2);
  EXPECT_EQ(delta("grpc_server_msg_sent_total", sync), 1);
  EXPECT_EQ(delta("grpc_server_handling_seconds_count", sync), 2);
  EXPECT_EQ(delta("grpc_server_handling_seconds_bucket", With(sync, {{"le", "+Inf"}})), 2);

  // GetSyncJob: the polls of the test; each started call was handled.
  const Labels get = Rpc("GetSyncJob");
  EXPECT_GE(delta("grpc_server_started_total", get), 2);
  EXPECT_EQ(delta("grpc_server_handled_total", With(get, {{"grpc_code", "OK"}})),
            delta("grpc_server_started_total", get));

  const Labels watch = Rpc("WatchSyncJob", "server_stream");
  EXPECT_EQ(delta("grpc_server_started_total", watch), 1);
  EXPECT_EQ(delta("grpc_server_msg_sent_total", watch), 1);
  EXPECT_EQ(delta("grpc_server_handled_total", With(watch, {{"grpc_code", "OK"}})), 1);

  const Labels check = Rpc("Check", "unary", "grpc.health.v1.Health");
  EXPECT_EQ(delta("grpc_server_handled_total", With(check, {{"grpc_code", "OK"}})), 1);
  EXPECT_EQ(after.Sum("grpc_server_started_total", {{"grpc_service", "unknown"}}), 0);

  // --- Upstream: per attempt, and exactly what the emulator received. ---
  const Labels sync_action = {{"action", "SyncBlueprint"}};
  EXPECT_EQ(delta("blueprintsync_upstream_requests_total",
                  {{"action", "SyncBlueprint"}, {"code", "RequestLimitExceeded"}}),
            1);
  EXPECT_EQ(
      delta("blueprintsync_upstream_requests_total", {{"action", "SyncBlueprint"}, {"code", "OK"}}),
      1);
  EXPECT_EQ(delta("blueprintsync_upstream_requests_total", sync_action), 2)
      << "the rejected request must not have gone upstream";
  EXPECT_EQ(delta("blueprintsync_upstream_throttled_total", sync_action), 1);
  EXPECT_EQ(delta("blueprintsync_upstream_retries_total", sync_action), 1);
  EXPECT_EQ(delta("blueprintsync_upstream_request_duration_seconds_count", sync_action), 2);
  const Labels describe = {{"action", "DescribeBlueprints"}};
  EXPECT_GE(delta("blueprintsync_upstream_requests_total",
                  {{"action", "DescribeBlueprints"}, {"code", "OK"}}),
            1);
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  for (const char* action : {"SyncBlueprint", "DescribeBlueprints"}) {
    EXPECT_EQ(after.Sum("blueprintsync_upstream_requests_total", {{"action", action}}),
              stats->Action(action).received)
        << action;
  }
  EXPECT_EQ(after.Sum("blueprintsync_upstream_request_duration_seconds_count", describe),
            after.Sum("blueprintsync_upstream_requests_total", describe));

  // --- Jobs. ---
  EXPECT_EQ(delta("blueprintsync_jobs_finished_total", {{"state", "SUCCEEDED"}}), 1);
  EXPECT_EQ(delta("blueprintsync_jobs_finished_total", {{"state", "FAILED"}}), 0)
      << "a rejected request creates no job";
  EXPECT_EQ(after.Sum("blueprintsync_jobs"), 0);
  for (const char* region : {"ap-beijing", "ap-shanghai"}) {
    const Labels r = {{"region", region}};
    EXPECT_EQ(delta("blueprintsync_destination_sync_duration_seconds_count", r), 1) << region;
    EXPECT_GT(delta("blueprintsync_destination_sync_duration_seconds_sum", r), 0) << region;
  }
  EXPECT_EQ(after.Sum("blueprintsync_destination_sync_duration_seconds_count"), 2);
  EXPECT_EQ(after.Sum("blueprintsync_credential_refresh_failures_total"), 0);

  // --- Nothing secret or unbounded. ---
  for (const std::string& text : scrapes_) {
    for (const std::string& needle : {std::string(kTestSecretKey), std::string(kTestSecretId),
                                      job.name(), job.name().substr(job.name().find('/') + 1),
                                      std::string("lhbp-"), request_id, std::string("syncJobs")}) {
      EXPECT_FALSE(absl::StrContains(text, needle)) << "scrape contains " << needle;
    }
  }
}

// Clients that send half a request and then nothing used to hold the
// endpoint's two workers for 30 s each, so every scrape meanwhile hung: a
// scrape now answers while they wait, and the server drops them after its
// request timeout.
TEST_F(MetricsE2eTest, HalfSentRequestsDoNotBlindScrapes) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer({"--metrics-listen", "127.0.0.1:0"}));
  absl::StatusOr<std::string> address = MetricsAddress();
  BPS_ASSERT_OK(address.status());
  metrics_address_ = *address;
  std::vector<int> slow;
  for (int i = 0; i < 6; ++i) {
    const int fd = ConnectAndSend(*address, "GET /metrics HTTP/1.1\r\nHost: slow\r\n");
    ASSERT_GE(fd, 0) << "connection " << i;
    slow.push_back(fd);
  }
  absl::SleepFor(absl::Milliseconds(200));  // let the workers take them
  {
    const size_t colon = address->rfind(':');
    httplib::Client client(address->substr(0, colon), std::stoi(address->substr(colon + 1)));
    // Far below the 30 s the half-sent requests used to hold the workers.
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(5, 0);
    auto res = client.Get("/metrics");
    ASSERT_TRUE(res) << "scrape failed while 6 clients sat on half-sent requests: "
                     << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_TRUE(absl::StrContains(res->body, "blueprintsync_jobs_finished_total")) << res->body;
  }
  // The server gives up on each of them (an answer or a close, not a wait
  // for ever).
  for (const int fd : slow) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, /*timeout ms=*/20000), 1) << "a half-sent request was kept open";
    close(fd);
  }
}

TEST_F(MetricsE2eTest, EmptyAddressServesNoMetrics) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer({"--metrics-listen="}));
  EXPECT_EQ(MetricsAddress().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MetricsE2eTest, BusyMetricsPortIsAStartupError) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer({"--metrics-listen", "127.0.0.1:0"}));
  absl::StatusOr<std::string> address = MetricsAddress();
  BPS_ASSERT_OK(address.status());
  // A second server on the metrics port of the first must not start half-way.
  absl::StatusOr<Server> second =
      testing::StartServer(emulator_url(), temp_dir() + "/second.db",
                           {"--metrics-listen", *address}, temp_dir() + "/second");
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "cannot serve metrics"))
      << second.status();
}

}  // namespace
}  // namespace blueprintsync::testing
