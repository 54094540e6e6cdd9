#include "service/metrics/metrics.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "service/common/testing/fake_clock.h"
#include "service/jobs/job_state.h"
#include "service/metrics/process_stats.h"
#include "service/metrics/testing/prometheus_text.h"
#include "service/tencent/call_observer.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::metrics {
namespace {

using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::PrometheusText;

TEST(GoCodeNameTest, SpelledLikeGo) {
  EXPECT_EQ(GoCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(GoCodeName(grpc::StatusCode::CANCELLED), "Canceled");
  EXPECT_EQ(GoCodeName(grpc::StatusCode::INVALID_ARGUMENT), "InvalidArgument");
  EXPECT_EQ(GoCodeName(grpc::StatusCode::DEADLINE_EXCEEDED), "DeadlineExceeded");
  EXPECT_EQ(GoCodeName(grpc::StatusCode::NOT_FOUND), "NotFound");
  EXPECT_EQ(GoCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "ResourceExhausted");
  EXPECT_EQ(GoCodeName(grpc::StatusCode::FAILED_PRECONDITION), "FailedPrecondition");
  EXPECT_EQ(GoCodeName(grpc::StatusCode::UNAVAILABLE), "Unavailable");
  EXPECT_EQ(GoCodeName(grpc::StatusCode::UNAUTHENTICATED), "Unauthenticated");
  EXPECT_EQ(GoCodeName(static_cast<grpc::StatusCode>(42)), "Code(42)");
}

TEST(MetricsTest, UpstreamAttemptsRetriesAndThrottles) {
  Metrics m;
  m.OnAttempt("SyncBlueprint", "RequestLimitExceeded", true, absl::Milliseconds(30));
  m.OnRetry("SyncBlueprint");
  m.OnAttempt("SyncBlueprint", "OK", false, absl::Milliseconds(70));
  m.OnAttempt("DescribeBlueprints", "OK", false, absl::Milliseconds(5));
  PrometheusText t(m.TextExposition());
  EXPECT_EQ(t.Sum("blueprintsync_upstream_requests_total",
                  {{"action", "SyncBlueprint"}, {"code", "RequestLimitExceeded"}}),
            1);
  EXPECT_EQ(
      t.Sum("blueprintsync_upstream_requests_total", {{"action", "SyncBlueprint"}, {"code", "OK"}}),
      1);
  EXPECT_EQ(t.Sum("blueprintsync_upstream_requests_total", {{"action", "DescribeBlueprints"}}), 1);
  EXPECT_EQ(t.Sum("blueprintsync_upstream_throttled_total", {{"action", "SyncBlueprint"}}), 1);
  EXPECT_EQ(t.Sum("blueprintsync_upstream_throttled_total", {{"action", "DescribeBlueprints"}}), 0);
  EXPECT_EQ(t.Sum("blueprintsync_upstream_retries_total", {{"action", "SyncBlueprint"}}), 1);
  EXPECT_EQ(
      t.Sum("blueprintsync_upstream_request_duration_seconds_count", {{"action", "SyncBlueprint"}}),
      2);
  EXPECT_NEAR(
      t.Sum("blueprintsync_upstream_request_duration_seconds_sum", {{"action", "SyncBlueprint"}}),
      0.1, 1e-9);
  EXPECT_EQ(t.Sum("blueprintsync_upstream_request_duration_seconds_bucket",
                  {{"action", "SyncBlueprint"}, {"le", "0.05"}}),
            1);
}

TEST(MetricsTest, ErrorCodeLabelsAreBounded) {
  Metrics m;
  for (int i = 0; i < 3 * kMaxLabelValues; ++i) {
    m.OnAttempt("DescribeBlueprints", absl::StrCat("InternalError.Code", i), false,
                absl::Milliseconds(1));
  }
  m.OnAttempt("DescribeBlueprints", "Bad code\"with{quotes}", false, absl::Milliseconds(1));
  PrometheusText t(m.TextExposition());
  // "OK" (there from the start) holds one of the 64 values; 63 error codes
  // get theirs, the rest are "other".
  const auto series =
      t.Matching("blueprintsync_upstream_requests_total", {{"action", "DescribeBlueprints"}});
  EXPECT_EQ(series.size(), static_cast<size_t>(kMaxLabelValues) + 1);
  EXPECT_EQ(t.Sum("blueprintsync_upstream_requests_total", {{"code", "other"}}),
            2 * kMaxLabelValues + 2);
  EXPECT_EQ(t.Sum("blueprintsync_upstream_requests_total"), 3 * kMaxLabelValues + 1);
}

TEST(MetricsTest, FinishedJobsAndDestinationDurations) {
  Metrics m;
  const absl::Time submit = absl::FromUnixSeconds(1700000000);
  v1::SyncJob job;
  job.set_name("syncJobs/secret-looking-name");
  job.set_blueprint_id("lhbp-abcdefgh");
  job.set_state(v1::SyncJob::FAILED);
  *job.mutable_submit_time() = jobs::ToProto(submit);
  v1::Destination* ok = job.add_destinations();
  ok->set_region("ap-beijing");
  ok->set_state(v1::Destination::SUCCEEDED);
  *ok->mutable_update_time() = jobs::ToProto(submit + absl::Seconds(30));
  v1::Destination* bad = job.add_destinations();
  bad->set_region("ap-shanghai");
  bad->set_state(v1::Destination::FAILED);
  *bad->mutable_update_time() = jobs::ToProto(submit + absl::Seconds(90));
  m.OnJobFinished(job);

  // Rejected before submission: counted, but no copy to time.
  v1::SyncJob rejected;
  rejected.set_state(v1::SyncJob::FAILED);
  v1::Destination* never = rejected.add_destinations();
  never->set_region("ap-beijing");
  never->set_state(v1::Destination::FAILED);
  m.OnJobFinished(rejected);

  const std::string text = m.TextExposition();
  PrometheusText t(text);
  EXPECT_EQ(t.Sum("blueprintsync_jobs_finished_total", {{"state", "FAILED"}}), 2);
  EXPECT_EQ(t.Sum("blueprintsync_jobs_finished_total", {{"state", "SUCCEEDED"}}), 0);
  EXPECT_EQ(t.Matching("blueprintsync_jobs_finished_total", {{"state", "SUCCEEDED"}}).size(), 1u)
      << "known states are exported from the start";
  EXPECT_EQ(
      t.Sum("blueprintsync_destination_sync_duration_seconds_count", {{"region", "ap-beijing"}}),
      1);
  EXPECT_EQ(
      t.Sum("blueprintsync_destination_sync_duration_seconds_sum", {{"region", "ap-beijing"}}), 30);
  EXPECT_EQ(
      t.Sum("blueprintsync_destination_sync_duration_seconds_sum", {{"region", "ap-shanghai"}}),
      90);
  EXPECT_EQ(text.find("secret-looking-name"), std::string::npos);
  EXPECT_EQ(text.find("lhbp-abcdefgh"), std::string::npos);
}

TEST(MetricsTest, PulledSources) {
  Metrics m;
  PrometheusText before(m.TextExposition());
  EXPECT_EQ(before.Matching("blueprintsync_jobs", {{"state", "QUEUED"}}).size(), 1u);
  EXPECT_EQ(before.Sum("blueprintsync_jobs"), 0);
  EXPECT_EQ(before.Matching("blueprintsync_credential_refresh_failures_total", {}).size(), 1u);

  int64_t queued = 2;
  m.SetActiveJobsSource([&] {
    ActiveJobCounts counts;
    counts.queued = queued;
    counts.running = 3;
    return counts;
  });
  m.AddCredentialRefreshFailuresSource([] { return uint64_t{4}; });
  m.AddCredentialRefreshFailuresSource([] { return uint64_t{1}; });
  PrometheusText t(m.TextExposition());
  EXPECT_EQ(t.Sum("blueprintsync_jobs", {{"state", "QUEUED"}}), 2);
  EXPECT_EQ(t.Sum("blueprintsync_jobs", {{"state", "RUNNING"}}), 3);
  EXPECT_EQ(t.Sum("blueprintsync_credential_refresh_failures_total"), 5);
  queued = 7;  // read at each scrape, not copied
  EXPECT_EQ(PrometheusText(m.TextExposition()).Sum("blueprintsync_jobs", {{"state", "QUEUED"}}), 7);
  m.SetActiveJobsSource(nullptr);
  EXPECT_EQ(PrometheusText(m.TextExposition()).Sum("blueprintsync_jobs"), 0);
}

TEST(MetricsTest, RegionTableSeriesFollowTheSource) {
  Metrics m;
  PrometheusText before(m.TextExposition());
  EXPECT_EQ(before.Matching("blueprintsync_regions", {}).size(), 1u);
  EXPECT_EQ(before.Sum("blueprintsync_region_refresh_failures_total"), 0);
  m.SetRegionSource([] {
    RegionTableCounts counts;
    counts.regions = 16;
    counts.refresh_failures = 3;
    return counts;
  });
  PrometheusText t(m.TextExposition());
  EXPECT_EQ(t.Sum("blueprintsync_regions"), 16);
  EXPECT_EQ(t.Sum("blueprintsync_region_refresh_failures_total"), 3);
  m.SetRegionSource(nullptr);
  EXPECT_EQ(PrometheusText(m.TextExposition()).Sum("blueprintsync_regions"), 0);
}

TEST(MetricsTest, LifecycleSeriesExistBeforeTheirFirstEventAndFollowTheSource) {
  Metrics m;
  PrometheusText before(m.TextExposition());
  for (const char* name :
       {"blueprintsync_jobs_cleaning_up", "blueprintsync_copies_deleted_total",
        "blueprintsync_copy_delete_failures_total", "blueprintsync_copy_deletes_abandoned_total",
        "blueprintsync_jobs_cancelled_total", "blueprintsync_job_records_deleted_total"}) {
    EXPECT_EQ(before.Matching(name, {}).size(), 1u) << name;
    EXPECT_EQ(before.Sum(name), 0) << name;
  }
  ActiveJobCounts counts;
  counts.cancelling = 1;
  counts.cleaning_up = 2;
  counts.copies_deleted = 3;
  counts.copy_delete_failures = 4;
  counts.copy_deletes_abandoned = 5;
  counts.jobs_cancelled = 6;
  counts.job_records_deleted = 7;
  m.SetActiveJobsSource([&] { return counts; });
  PrometheusText t(m.TextExposition());
  EXPECT_EQ(t.Sum("blueprintsync_jobs", {{"state", "CANCELLING"}}), 1);
  EXPECT_EQ(t.Sum("blueprintsync_jobs_cleaning_up"), 2);
  EXPECT_EQ(t.Sum("blueprintsync_copies_deleted_total"), 3);
  EXPECT_EQ(t.Sum("blueprintsync_copy_delete_failures_total"), 4);
  EXPECT_EQ(t.Sum("blueprintsync_copy_deletes_abandoned_total"), 5);
  EXPECT_EQ(t.Sum("blueprintsync_jobs_cancelled_total"), 6);
  EXPECT_EQ(t.Sum("blueprintsync_job_records_deleted_total"), 7);
  m.SetActiveJobsSource(nullptr);
}

TEST(MetricsTest, StoreHealthSeriesFollowTheSource) {
  Metrics m;
  PrometheusText before(m.TextExposition());
  EXPECT_EQ(before.Sum("blueprintsync_store_healthy"), 1);
  EXPECT_EQ(before.Matching("blueprintsync_store_problem", {}).size(), 5u);
  EXPECT_EQ(before.Sum("blueprintsync_store_problem"), 0);
  ActiveJobCounts counts;
  counts.store_problem = "no_space";
  m.SetActiveJobsSource([&] { return counts; });
  PrometheusText t(m.TextExposition());
  EXPECT_EQ(t.Sum("blueprintsync_store_healthy"), 0);
  EXPECT_EQ(t.Sum("blueprintsync_store_problem", {{"reason", "no_space"}}), 1);
  EXPECT_EQ(t.Sum("blueprintsync_store_problem"), 1);
  m.SetActiveJobsSource(nullptr);
}

TEST(MetricsTest, PolicySeriesExistBeforeTheFirstPassAndFollowTheSource) {
  const std::vector<const char*> counters = {"blueprintsync_policy_jobs_started_total",
                                             "blueprintsync_policy_drift_repairs_total",
                                             "blueprintsync_policy_copies_deleted_total",
                                             "blueprintsync_policy_copy_delete_failures_total",
                                             "blueprintsync_policy_describe_calls_total",
                                             "blueprintsync_policy_passes_total",
                                             "blueprintsync_policy_pass_failures_total"};
  Metrics m;
  PrometheusText before(m.TextExposition());
  // Every state from the start, so that an alert on out_of_sync has a series.
  for (const char* state : {"in_sync", "out_of_sync", "paused"}) {
    EXPECT_EQ(before.Matching("blueprintsync_policies", {{"state", state}}).size(), 1u) << state;
  }
  EXPECT_EQ(before.Matching("blueprintsync_policies", {}).size(), 3u);
  EXPECT_EQ(before.Sum("blueprintsync_policies"), 0);
  for (const char* name : counters) {
    EXPECT_EQ(before.Matching(name, {}).size(), 1u) << name;
    EXPECT_EQ(before.Sum(name), 0) << name;
  }
  const std::string text = m.TextExposition();
  EXPECT_NE(text.find("# TYPE blueprintsync_policies gauge"), std::string::npos);
  EXPECT_NE(text.find("# TYPE blueprintsync_policy_passes_total counter"), std::string::npos);

  PolicyCounts counts;
  counts.in_sync = 5;
  counts.out_of_sync = 2;
  counts.paused = 1;
  counts.jobs_started = 3;
  counts.drift_repairs = 4;
  counts.copies_deleted = 6;
  counts.copy_delete_failures = 7;
  counts.describe_calls = 8;
  counts.passes = 9;
  counts.pass_failures = 10;
  m.SetPolicySource([&] { return counts; });
  PrometheusText t(m.TextExposition());
  EXPECT_EQ(t.Sum("blueprintsync_policies", {{"state", "in_sync"}}), 5);
  EXPECT_EQ(t.Sum("blueprintsync_policies", {{"state", "out_of_sync"}}), 2);
  EXPECT_EQ(t.Sum("blueprintsync_policies", {{"state", "paused"}}), 1);
  EXPECT_EQ(t.Sum("blueprintsync_policy_jobs_started_total"), 3);
  EXPECT_EQ(t.Sum("blueprintsync_policy_drift_repairs_total"), 4);
  EXPECT_EQ(t.Sum("blueprintsync_policy_copies_deleted_total"), 6);
  EXPECT_EQ(t.Sum("blueprintsync_policy_copy_delete_failures_total"), 7);
  EXPECT_EQ(t.Sum("blueprintsync_policy_describe_calls_total"), 8);
  EXPECT_EQ(t.Sum("blueprintsync_policy_passes_total"), 9);
  EXPECT_EQ(t.Sum("blueprintsync_policy_pass_failures_total"), 10);
  // Read at each scrape, not copied.
  counts.out_of_sync = 0;
  EXPECT_EQ(
      PrometheusText(m.TextExposition()).Sum("blueprintsync_policies", {{"state", "out_of_sync"}}),
      0);
  // The job series are not touched by the policy source.
  EXPECT_EQ(t.Sum("blueprintsync_jobs"), 0);
  EXPECT_EQ(t.Sum("blueprintsync_copies_deleted_total"), 0);
  m.SetPolicySource(nullptr);
  EXPECT_EQ(PrometheusText(m.TextExposition()).Sum("blueprintsync_policies"), 0);
}

TEST(MetricsTest, ServesOverHttpAndRefusesABusyPort) {
  Metrics m;
  m.OnRetry("DescribeRegions");
  absl::StatusOr<int> port = m.Serve("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_GT(*port, 0);
  httplib::Client client("127.0.0.1", *port);
  client.set_read_timeout(10, 0);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(PrometheusText(res->body).Sum("blueprintsync_upstream_retries_total",
                                          {{"action", "DescribeRegions"}}),
            1);
  EXPECT_EQ(PrometheusText(res->body).Matching("blueprintsync_jobs", {}).size(), 3u);  // QUEUED, RUNNING, CANCELLING

  EXPECT_FALSE(m.Serve("127.0.0.1:0").ok()) << "serving twice";
  Metrics other;
  absl::StatusOr<int> busy = other.Serve(absl::StrCat("127.0.0.1:", *port));
  EXPECT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kUnavailable);
}

// --- The Lighthouse client reports attempts and retries through its observer. ---

class RecordingObserver final : public tencent::CallObserver {
 public:
  void OnAttempt(std::string_view action, std::string_view code, bool throttled,
                 absl::Duration) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(
        absl::StrCat(std::string(action), " ", std::string(code), throttled ? " throttled" : ""));
  }
  void OnRetry(std::string_view action) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(absl::StrCat(std::string(action), " retry"));
  }
  std::vector<std::string> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
};

class ScriptedTransport final : public tencent::HttpTransport {
 public:
  explicit ScriptedTransport(std::deque<tencent::HttpResponse> script)
      : script_(std::move(script)) {}
  absl::StatusOr<tencent::HttpResponse> Post(const tencent::HttpRequest&) override {
    absl::MutexLock lock(&mu_);
    if (script_.empty()) return absl::InternalError("script exhausted");
    tencent::HttpResponse r = script_.front();
    script_.pop_front();
    return r;
  }

 private:
  absl::Mutex mu_;
  std::deque<tencent::HttpResponse> script_ ABSL_GUARDED_BY(mu_);
};

tencent::HttpResponse Json(std::string body) {
  tencent::HttpResponse r;
  r.status = 200;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

TEST(LighthouseClientObserverTest, EveryAttemptAndRetryIsReported) {
  FakeClock clock;
  auto observer = std::make_shared<RecordingObserver>();
  tencent::LighthouseClientOptions options;
  options.endpoint = "http://127.0.0.1:1";
  options.observer = observer;
  auto transport = std::make_shared<ScriptedTransport>(std::deque<tencent::HttpResponse>{
      Json(R"({"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"slow down"},)"
           R"("RequestId":"r1"}})"),
      Json(R"({"Response":{"TotalCount":1,"RegionSet":[{"Region":"ap-beijing",)"
           R"("RegionName":"Beijing","RegionState":"AVAILABLE","IsChinaMainland":true}],)"
           R"("RequestId":"r2"}})"),
      Json(R"({"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"no"},)"
           R"("RequestId":"r3"}})"),
  });
  tencent::Credentials creds;
  creds.secret_id = "AKIDEXAMPLE";
  creds.secret_key = "key";
  auto client = tencent::MakeLighthouseClient(
      options, std::make_shared<tencent::StaticCredentialProvider>(creds), transport, nullptr,
      &clock);
  auto regions = client->DescribeRegions("ap-beijing");
  ASSERT_TRUE(regions.ok()) << regions.status();
  EXPECT_FALSE(client->DescribeRegions("ap-beijing").ok());
  EXPECT_EQ(observer->events(),
            (std::vector<std::string>{"DescribeRegions RequestLimitExceeded throttled",
                                      "DescribeRegions retry", "DescribeRegions OK",
                                      "DescribeRegions AuthFailure.SignatureFailure"}));
}

// --- Process and build series. ---

TEST(ProcStatTest, FieldsAreCountedFromTheLastParenthesis) {
  // A command name with spaces and parentheses must not shift the fields.
  const std::string line =
      "4242 (evil) name (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
      "250 50 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 "
      "1 0 0 0 0 0\n";
  const std::optional<ProcStat> s = ParseProcStat(line);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->utime_ticks, 250u);
  EXPECT_EQ(s->stime_ticks, 50u);
  EXPECT_EQ(s->start_ticks, 123456u);
  EXPECT_EQ(s->vsize_bytes, 987654321u);
  EXPECT_EQ(s->rss_pages, 2048);
  EXPECT_FALSE(ParseProcStat("4242 (cut short) S 1 2 3").has_value());
  EXPECT_FALSE(ParseProcStat("no parenthesis at all").has_value());
}

TEST(ProcStatTest, BootTimeFromProcStat) {
  EXPECT_EQ(ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1764750000\nprocesses 9\n"),
            std::optional<int64_t>(1764750000));
  EXPECT_FALSE(ParseBootTime("cpu  1 2 3\n").has_value());
}

TEST(MetricsTest, ProcessSeriesInTheStandardNames) {
  Metrics m;
  const absl::Time before = absl::Now();
  PrometheusText t(m.TextExposition());
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"}) {
    ASSERT_EQ(t.Matching(name, {}).size(), 1u) << name;
  }
  EXPECT_GT(t.Sum("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(t.Sum("process_virtual_memory_bytes"), t.Sum("process_resident_memory_bytes"));
  EXPECT_GE(t.Sum("process_open_fds"), 3);
  EXPECT_GE(t.Sum("process_max_fds"), t.Sum("process_open_fds"));
  // This test process started before the scrape, and not before 2020.
  EXPECT_LE(t.Sum("process_start_time_seconds"), absl::ToUnixSeconds(before) + 1);
  EXPECT_GT(t.Sum("process_start_time_seconds"), 1577836800);
  const std::string text = m.TextExposition();
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE process_open_fds gauge"), std::string::npos);
}

TEST(MetricsTest, BuildInfoNamesTheBuild) {
  Metrics m(BuildInfo{"1.2.3", "0123456789ab"});
  PrometheusText t(m.TextExposition());
  const auto info = t.Matching("blueprintsync_build_info", {});
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0].value, 1);
  EXPECT_EQ(info[0].labels.at("version"), "1.2.3");
  EXPECT_EQ(info[0].labels.at("revision"), "0123456789ab");
  EXPECT_EQ(info[0].labels.at("grpc_version"), grpc::Version());
  EXPECT_FALSE(info[0].labels.at("protobuf_version").empty());
}

TEST(MetricsTest, UpstreamSeriesOfEveryActionStartAtZero) {
  Metrics m;
  PrometheusText t(m.TextExposition());
  for (std::string_view action : tencent::kObservedActions) {
    const std::map<std::string, std::string> a = {{"action", std::string(action)}};
    EXPECT_EQ(t.Matching("blueprintsync_upstream_requests_total",
                         {{"action", std::string(action)}, {"code", "OK"}})
                  .size(),
              1u)
        << action;
    EXPECT_EQ(t.Matching("blueprintsync_upstream_throttled_total", a).size(), 1u) << action;
    EXPECT_EQ(t.Matching("blueprintsync_upstream_retries_total", a).size(), 1u) << action;
    EXPECT_EQ(t.Matching("blueprintsync_upstream_request_duration_seconds_count", a).size(), 1u)
        << action;
  }
  EXPECT_EQ(t.Sum("blueprintsync_upstream_requests_total"), 0);
  for (const char* state : {"SUCCEEDED", "FAILED", "CANCELLED"}) {
    EXPECT_EQ(t.Matching("blueprintsync_jobs_finished_total", {{"state", state}}).size(), 1u)
        << state;
  }
}

// --- The interceptor, on a real server (gRPC's own health service). ---

class InterceptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    // A server needs one service of its own besides health; every method of
    // this one answers UNIMPLEMENTED.
    builder.RegisterService(&unimplemented_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(
        MakeGrpcServerMetricsFactory(&metrics_, GrpcMethodsOf({"grpc.health.v1.Health"})));
    builder.experimental().SetInterceptorCreators(std::move(factories));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }

  grpc::Status Check(const std::string& service) {
    grpc::TemplatedGenericStub<grpc::health::v1::HealthCheckRequest,
                               grpc::health::v1::HealthCheckResponse>
        stub(channel_);
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    absl::Notification done;
    grpc::Status result;
    stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                   &response, [&](grpc::Status s) {
                     result = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    return result;
  }

  // Polls until `pred` holds for a scrape (server-side accounting of a call
  // may finish just after the client has its answer).
  PrometheusText WaitFor(const std::function<bool(const PrometheusText&)>& pred) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      PrometheusText t(metrics_.TextExposition());
      if (pred(t) || absl::Now() > deadline) return t;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  Metrics metrics_;
  v1::BlueprintSync::CallbackService unimplemented_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(InterceptorTest, UnaryCallsByCode) {
  EXPECT_TRUE(Check("").ok());
  EXPECT_TRUE(Check("").ok());
  EXPECT_EQ(Check("no-such-service").error_code(), grpc::StatusCode::NOT_FOUND);
  const std::map<std::string, std::string> check = {
      {"grpc_type", "unary"}, {"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}};
  auto with = [&](std::map<std::string, std::string> extra) {
    extra.insert(check.begin(), check.end());
    return extra;
  };
  PrometheusText t = WaitFor(
      [&](const PrometheusText& x) { return x.Sum("grpc_server_handled_total", check) >= 3; });
  EXPECT_EQ(t.Sum("grpc_server_started_total", check), 3);
  EXPECT_EQ(t.Sum("grpc_server_handled_total", with({{"grpc_code", "OK"}})), 2);
  EXPECT_EQ(t.Sum("grpc_server_handled_total", with({{"grpc_code", "NotFound"}})), 1);
  EXPECT_EQ(t.Sum("grpc_server_msg_received_total", check), 3);
  EXPECT_EQ(t.Sum("grpc_server_msg_sent_total", check), 2) << "no message with an error status";
  EXPECT_EQ(t.Sum("grpc_server_handling_seconds_count", check), 3);
  EXPECT_EQ(t.Sum("grpc_server_handling_seconds_bucket", with({{"le", "+Inf"}})), 3);
  EXPECT_TRUE(t.Matching("grpc_server_handling_seconds_count", {{"grpc_code", "OK"}}).empty())
      << "the histogram has no grpc_code label (go-grpc-prometheus)";
}

TEST_F(InterceptorTest, UnknownMethodsShareOneSeries) {
  grpc::GenericStub stub(channel_);
  for (const char* method : {"/made.Up/One", "/grpc.health.v1.Health/Nope"}) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    absl::Notification done;
    grpc::Status result;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      result = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    EXPECT_EQ(result.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }
  const std::string text = metrics_.TextExposition();
  EXPECT_EQ(text.find("made.Up"), std::string::npos) << text;
  EXPECT_EQ(text.find("Nope"), std::string::npos) << text;
  PrometheusText t(text);
  EXPECT_EQ(
      t.Sum("grpc_server_started_total", {{"grpc_service", "unknown"}, {"grpc_method", "unknown"}}),
      2);
  EXPECT_EQ(t.Sum("grpc_server_handled_total", {{"grpc_service", "unknown"},
                                                {"grpc_method", "unknown"},
                                                {"grpc_code", "Unimplemented"}}),
            2);
}

TEST_F(InterceptorTest, ServerStreamCancelledByTheClient) {
  auto stub =
      std::make_unique<grpc::TemplatedGenericStub<grpc::health::v1::HealthCheckRequest,
                                                  grpc::health::v1::HealthCheckResponse>>(channel_);
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("");
  auto reader = stub->PrepareCall(&context, "/grpc.health.v1.Health/Watch", &cq);
  void* tag = nullptr;
  bool ok = false;
  reader->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  reader->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  reader->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::health::v1::HealthCheckResponse response;
  reader->Read(&response, reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  context.TryCancel();
  grpc::Status status;
  reader->Finish(&status, reinterpret_cast<void*>(5));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(5)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  const std::map<std::string, std::string> watch = {{"grpc_type", "server_stream"},
                                                    {"grpc_service", "grpc.health.v1.Health"},
                                                    {"grpc_method", "Watch"}};
  PrometheusText t = WaitFor(
      [&](const PrometheusText& x) { return x.Sum("grpc_server_handled_total", watch) >= 1; });
  EXPECT_EQ(t.Sum("grpc_server_started_total", watch), 1);
  EXPECT_EQ(t.Sum("grpc_server_handled_total", watch), 1);
  EXPECT_EQ(t.Sum("grpc_server_msg_received_total", watch), 1);
  EXPECT_GE(t.Sum("grpc_server_msg_sent_total", watch), 1);
}

}  // namespace
TEST_F(InterceptorTest, KnownMethodsStartAtZeroWithEveryCode) {
  PrometheusText t(metrics_.TextExposition());
  const std::map<std::string, std::string> check = {
      {"grpc_type", "unary"}, {"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}};
  const std::map<std::string, std::string> watch = {{"grpc_type", "server_stream"},
                                                    {"grpc_service", "grpc.health.v1.Health"},
                                                    {"grpc_method", "Watch"}};
  for (const auto& m : {check, watch}) {
    EXPECT_EQ(t.Matching("grpc_server_started_total", m).size(), 1u);
    EXPECT_EQ(t.Matching("grpc_server_msg_received_total", m).size(), 1u);
    EXPECT_EQ(t.Matching("grpc_server_msg_sent_total", m).size(), 1u);
    EXPECT_EQ(t.Matching("grpc_server_handling_seconds_count", m).size(), 1u);
    // One per code, OK to Unauthenticated, as go-grpc-prometheus does.
    EXPECT_EQ(t.Matching("grpc_server_handled_total", m).size(), 17u);
  }
  auto with_code = check;
  with_code["grpc_code"] = "Unavailable";
  EXPECT_EQ(t.Matching("grpc_server_handled_total", with_code).size(), 1u);
  EXPECT_EQ(t.Sum("grpc_server_started_total"), 0);
  EXPECT_EQ(t.Sum("grpc_server_handled_total"), 0);
}

}  // namespace blueprintsync::metrics
