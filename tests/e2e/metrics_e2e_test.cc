// End-to-end: blueprint-syncd's Prometheus endpoint (--metrics-listen) is
// scraped before and after real work — a SyncBlueprint that runs to
// SUCCEEDED through one injected upstream throttle, a request rejected by
// validation, a health check and a WatchSyncJob — and every series moves by
// exactly what that work implies: the gRPC server series (go-grpc-prometheus
// names and labels), the upstream series (checked against what the emulator
// itself received) and the job series. No secret, job name or blueprint id
// may appear in the scrape, and promtool finds nothing to lint in it. A
// freshly started server already shows every series the README documents.
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
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

// A series the README's Metrics table documents.
struct DocumentedSeries {
  std::string name;
  bool histogram = false;
};

// Every series name in the first column of the README's Metrics table, so
// that documenting a series is enough to have it checked here.
std::vector<DocumentedSeries> ReadmeSeries() {
  std::ifstream in(BPS_README);
  std::string line;
  bool in_metrics = false;
  std::vector<DocumentedSeries> out;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "## ")) in_metrics = line == "## Metrics";
    if (!in_metrics || !absl::StartsWith(line, "| `")) continue;
    const std::vector<absl::string_view> cells = absl::StrSplit(line, '|');
    if (cells.size() < 2) continue;
    const absl::string_view first = cells[1];
    const std::vector<absl::string_view> quoted = absl::StrSplit(first, '`');
    // Odd pieces are the text between backticks.
    for (size_t i = 1; i < quoted.size(); i += 2) {
      out.push_back({std::string(quoted[i]), absl::StrContains(first, "(histogram")});
    }
  }
  return out;
}

// promtool's verdict on a scrape: its exit status and what it printed.
struct PromtoolResult {
  int status = -1;
  std::string output;
};

PromtoolResult PromtoolCheckMetrics(const std::string& scrape_file) {
  PromtoolResult r;
  const std::string command =
      absl::StrCat("'", BPS_PROMTOOL, "' check metrics < '", scrape_file, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  r.status = pclose(pipe);
  return r;
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

  // --- The server's "rpc finished" line of the accepted SyncBlueprint. ---
  {
    bool found = false;
    for (const std::string& line : server_process().StdoutLines()) {
      if (!absl::StrContains(line, "\"msg\":\"rpc finished\"") ||
          !absl::StrContains(line, "\"grpc.method\":\"SyncBlueprint\"") ||
          !absl::StrContains(line, "\"grpc.code\":\"OK\"")) {
        continue;
      }
      found = true;
      rapidjson::Document d;
      d.Parse(line.c_str(), line.size());
      ASSERT_FALSE(d.HasParseError()) << line;
      ASSERT_TRUE(d.HasMember("grpc.time_ms") && d["grpc.time_ms"].IsInt64())
          << "grpc.time_ms must be a JSON number: " << line;
      ASSERT_TRUE(d.HasMember("request_id") && d["request_id"].IsString()) << line;
      EXPECT_EQ(std::string(d["request_id"].GetString()), request_id);
      ASSERT_TRUE(d.HasMember("job") && d["job"].IsString()) << line;
      EXPECT_EQ(std::string(d["job"].GetString()), job.name());
      ASSERT_TRUE(d.HasMember("peer.address") && d["peer.address"].IsString()) << line;
      EXPECT_TRUE(absl::StartsWith(d["peer.address"].GetString(), "ipv4:127.0.0.1:")) << line;
    }
    EXPECT_TRUE(found) << "no rpc finished line for the accepted SyncBlueprint";
  }

  // --- promtool's lint (names, units, HELP, TYPE) on the scrape after real work. ---
  {
    const std::string file = temp_dir() + "/after.prom";
    std::ofstream(file) << scrapes_.back();
    const PromtoolResult lint = PromtoolCheckMetrics(file);
    EXPECT_EQ(lint.status, 0) << "promtool check metrics (install the Debian package prometheus "
                                 "with scripts/install-deps): "
                              << lint.output;
    EXPECT_EQ(lint.output, "");
  }
  for (const char* name :
       {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
        "process_start_time_seconds", "blueprintsync_build_info"}) {
    EXPECT_EQ(after.Matching(name, {}).size(), 1u) << name;
  }

  // --- Nothing secret or unbounded. ---
  for (const std::string& text : scrapes_) {
    for (const std::string& needle : {std::string(kTestSecretKey), std::string(kTestSecretId),
                                      job.name(), job.name().substr(job.name().find('/') + 1),
                                      std::string("lhbp-"), request_id, std::string("syncJobs")}) {
      EXPECT_FALSE(absl::StrContains(text, needle)) << "scrape contains " << needle;
    }
  }
}

// Every series the README documents is there before anything happened
// (counters at 0 until their first event), so rate() sees the first event
// and absent() alerts do not fire on a replica that has simply had no
// traffic yet.
TEST_F(MetricsE2eTest, AFreshServerShowsEveryDocumentedSeries) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer({"--metrics-listen", "127.0.0.1:0"}));
  absl::StatusOr<std::string> address = MetricsAddress();
  BPS_ASSERT_OK(address.status());
  metrics_address_ = *address;
  const PrometheusText fresh = Scrape();
  ASSERT_FALSE(HasFailure());

  const std::vector<DocumentedSeries> documented = ReadmeSeries();
  ASSERT_GE(documented.size(), 30u) << "the README's Metrics table was not found in " << BPS_README;
  // Labelled by the region of a finished copy: a region's series appears
  // with its first copy (regions are data, not a list known in advance).
  const std::set<std::string> made_by_data = {"blueprintsync_destination_sync_duration_seconds"};
  std::set<std::string> seen;
  for (const DocumentedSeries& d : documented) {
    ASSERT_TRUE(seen.insert(d.name).second) << d.name << " documented twice";
    if (made_by_data.count(d.name) != 0) continue;
    const std::string sample = d.histogram ? d.name + "_count" : d.name;
    EXPECT_FALSE(fresh.Matching(sample, {}).empty())
        << d.name << " is documented in the README but absent from a fresh server's /metrics";
  }
  for (const std::string& name : made_by_data) {
    EXPECT_TRUE(seen.count(name) != 0) << name << " is no longer documented; drop it here";
  }

  // Series the server cannot know in advance have their known labels: every
  // method of the service with every code, every upstream action.
  EXPECT_EQ(fresh
                .Matching("grpc_server_handled_total",
                          With(Rpc("SyncBlueprint"), {{"grpc_code", "Unavailable"}}))
                .size(),
            1u);
  EXPECT_EQ(
      fresh.Matching("grpc_server_started_total", Rpc("WatchSyncJob", "server_stream")).size(), 1u);
  EXPECT_EQ(fresh
                .Matching("blueprintsync_upstream_requests_total",
                          {{"action", "DeleteBlueprints"}, {"code", "OK"}})
                .size(),
            1u);
  EXPECT_EQ(fresh.Matching("blueprintsync_jobs_finished_total", {{"state", "CANCELLED"}}).size(),
            1u);

  const auto build = fresh.Matching("blueprintsync_build_info", {});
  ASSERT_EQ(build.size(), 1u);
  EXPECT_EQ(build[0].value, 1);
  EXPECT_EQ(build[0].labels.at("version"), "0.1.0");
  EXPECT_FALSE(build[0].labels.at("revision").empty());
  EXPECT_FALSE(build[0].labels.at("grpc_version").empty());
  EXPECT_GT(fresh.Sum("process_resident_memory_bytes"), 0);
  EXPECT_GT(fresh.Sum("process_open_fds"), 0);
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
