// Failure handling of the production Lighthouse client stack against the
// emulator over real HTTP: authentication failures, throttling retried
// without double execution, client-side pacing, read retries through
// injected faults, and the one rule that matters most for a paid,
// non-idempotent call: SyncBlueprint is never sent again after a failure in
// which it may have run. Assertions are on counts the emulator kept, never
// on elapsed time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/common/testing/fake_clock.h"
#include "tests/integration/integration_harness.h"

namespace blueprintsync::testing {
namespace {

using tencent::DescribeBlueprintsRequest;
using tencent::ErrorKind;
using tencent::SyncBlueprintRequest;

DescribeBlueprintsRequest DescribeGuangzhou() {
  DescribeBlueprintsRequest req;
  req.region = "ap-guangzhou";
  req.blueprint_ids = {"lhbp-gzbase01"};
  return req;
}

SyncBlueprintRequest SyncGuangzhouToShanghai() {
  return SyncBlueprintRequest{"ap-guangzhou", "lhbp-gzbase01", {"ap-shanghai"}};
}

// Longer than the client's total timeout in the latency tests, with margin.
constexpr int kTimeoutMs = 1000;
constexpr int kLatencyMs = 2000;

ClientSetup OneSecondTimeout() {
  ClientSetup setup;
  setup.transport.total_timeout = absl::Milliseconds(kTimeoutMs);
  return setup;
}

// ---------------------------------------------------------------------------
// Authentication

TEST(LighthouseAuthTest, WrongSecretKeyIsSignatureFailure) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ClientSetup setup;
  setup.credentials.secret_key = "WrongSecretKeyWrongSecretKey0000";
  auto client = emu.Client(setup);

  auto r = client->DescribeBlueprints(DescribeGuangzhou());
  ASSERT_FALSE(r.ok());
  auto e = ApiErrorOf(r);
  ASSERT_TRUE(e.has_value()) << r.status();
  EXPECT_EQ(e->kind, ErrorKind::kApi);
  EXPECT_EQ(e->code, "AuthFailure.SignatureFailure");
  EXPECT_FALSE(e->request_id.empty());
  EXPECT_EQ(e->http_status, 200);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);

  auto s = client->SyncBlueprint(SyncGuangzhouToShanghai());
  ASSERT_FALSE(s.ok());
  auto se = ApiErrorOf(s);
  ASSERT_TRUE(se.has_value()) << s.status();
  EXPECT_EQ(se->kind, ErrorKind::kApi);
  EXPECT_EQ(se->code, "AuthFailure.SignatureFailure");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInternal);

  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->signature_failures, 2);  // one attempt each: not retried
  EXPECT_EQ(stats->requests_total, 2);
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 0);
}

TEST(LighthouseAuthTest, UnknownSecretIdIsSecretIdNotFound) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ClientSetup setup;
  setup.credentials.secret_id = "AKIDunknownunknownunknownunknown0000";
  auto r = emu.Client(setup)->DescribeRegions("ap-guangzhou");
  auto e = ApiErrorOf(r);
  ASSERT_TRUE(e.has_value()) << r.status();
  EXPECT_EQ(e->kind, ErrorKind::kApi);
  EXPECT_EQ(e->code, "AuthFailure.SecretIdNotFound");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
}

TEST(LighthouseAuthTest, ClockTenMinutesOffIsSignatureExpire) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  for (absl::Duration skew : {absl::Minutes(-10), absl::Minutes(10)}) {
    SCOPED_TRACE(absl::FormatDuration(skew));
    FakeClock skewed(absl::Now() + skew);
    ClientSetup setup;
    setup.clock = &skewed;
    auto client = emu.Client(setup);
    auto r = client->DescribeBlueprints(DescribeGuangzhou());
    ASSERT_FALSE(r.ok());
    auto e = ApiErrorOf(r);
    ASSERT_TRUE(e.has_value()) << r.status();
    EXPECT_EQ(e->kind, ErrorKind::kApi);
    EXPECT_EQ(e->code, "AuthFailure.SignatureExpire");
    EXPECT_FALSE(e->request_id.empty());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  }
  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->auth_failures, 2);
  EXPECT_EQ(stats->requests_total, 2);
}

// ---------------------------------------------------------------------------
// Throttling and pacing

// The emulator allows 2 SyncBlueprint/s while the client would send 1000/s:
// the emulator throttles, the client retries RequestLimitExceeded (a
// throttled call is rejected before execution), and every call ends up
// executed exactly once.
TEST(LighthouseThrottlingTest, ThrottledSyncBlueprintRetriedNeverDoubleExecuted) {
  constexpr int kCalls = 6;
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ASSERT_TRUE(emu.emulator().UpdateConfig(R"({"rate_limits":{"SyncBlueprint":2}})").ok());
  std::string seed = R"({"blueprints":[)";
  std::vector<std::string> ids;
  for (int i = 0; i < kCalls; ++i) {
    ids.push_back(absl::StrCat("lhbp-thrott0", i));
    absl::StrAppend(&seed, i > 0 ? "," : "", R"({"Region":"ap-guangzhou","BlueprintId":")",
                    ids.back(), R"("})");
  }
  ASSERT_TRUE(emu.emulator().PutBlueprints(absl::StrCat(seed, "]}")).ok());

  ClientSetup setup;
  setup.rate_limits.sync_blueprint_per_second = 1000;
  setup.retry.max_attempts = 60;
  setup.retry.initial_backoff = absl::Milliseconds(100);
  setup.retry.max_backoff = absl::Milliseconds(500);
  auto client = emu.Client(setup);

  std::vector<absl::Status> results(kCalls);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      auto r = client->SyncBlueprint(SyncBlueprintRequest{"ap-guangzhou", ids[i], {"ap-shanghai"}});
      results[i] = r.status();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCalls; ++i) EXPECT_TRUE(results[i].ok()) << ids[i] << ": " << results[i];

  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const EmulatorActionStats sync = stats->Action("SyncBlueprint");
  EXPECT_GT(sync.throttled, 0);
  EXPECT_EQ(sync.executed, kCalls);
  EXPECT_EQ(sync.received, kCalls + sync.throttled);
  EXPECT_EQ(sync.errors, 0);
  std::multiset<std::string> synced;
  for (const EmulatorSyncSubmission& s : stats->sync_submissions) synced.insert(s.blueprint_id);
  EXPECT_EQ(synced, std::multiset<std::string>(ids.begin(), ids.end()));
}

// With the production limits on both sides the client paces itself below
// the emulator's limit, so nothing is ever throttled.
TEST(LighthouseThrottlingTest, ClientPacingKeepsEmulatorFromThrottling) {
  constexpr int kThreads = 6;
  constexpr int kCallsPerThread = 5;
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  auto client = emu.Client();

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        auto r = client->DescribeBlueprints(DescribeGuangzhou());
        if (!r.ok()) {
          ++failures;
          ADD_FAILURE() << r.status();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const EmulatorActionStats describe = stats->Action("DescribeBlueprints");
  // The client spaces calls (1 s + kDefaultRateGuard) / 10 apart, and starts
  // none sooner than that second after the call ten before it was answered
  // (so had arrived); the emulator counts arrivals in a sliding second. Slots
  // alone are not enough: the first calls open new connections and arrive
  // late, as they would at Tencent.
  EXPECT_EQ(describe.throttled, 0);
  EXPECT_EQ(describe.received, kThreads * kCallsPerThread);
  EXPECT_EQ(describe.executed, kThreads * kCallsPerThread);
}

// Holds the first request up for `delay` before sending it: its caller went
// at its slot, but the request reaches the emulator late (a sending thread
// a loaded host does not run, a slow handshake), long after its slot.
class FirstRequestHeldUp final : public tencent::HttpTransport {
 public:
  FirstRequestHeldUp(std::shared_ptr<tencent::HttpTransport> next, absl::Duration delay)
      : next_(std::move(next)), delay_(delay) {}
  absl::StatusOr<tencent::HttpResponse> Post(const tencent::HttpRequest& request) override {
    // The fault injected, not a wait for a result.
    if (!held_.exchange(true)) absl::SleepFor(delay_);
    return next_->Post(request);
  }

 private:
  std::shared_ptr<tencent::HttpTransport> next_;
  const absl::Duration delay_;
  std::atomic<bool> held_{false};
};

// The first call reaches the emulator 1.5 s after its slot, while the calls
// after it keep theirs: the call ten slots later (+1.02 s) must wait for the
// first call's answer (it may arrive at any moment until then), else both
// land within a second with nine calls between them, and the emulator
// throttles one.
TEST(LighthouseThrottlingTest, ACallHeldUpOnItsWayKeepsTheCallASecondLaterBack) {
  constexpr int kThreads = 6;
  constexpr int kCallsPerThread = 5;
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ClientSetup setup;
  setup.wrap_transport = [](std::shared_ptr<tencent::HttpTransport> next) {
    return std::make_shared<FirstRequestHeldUp>(std::move(next), absl::Milliseconds(1500));
  };
  auto client = emu.Client(setup);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        auto r = client->DescribeBlueprints(DescribeGuangzhou());
        EXPECT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (auto& t : threads) t.join();

  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const EmulatorActionStats describe = stats->Action("DescribeBlueprints");
  EXPECT_EQ(describe.throttled, 0);
  EXPECT_EQ(describe.received, kThreads * kCallsPerThread);
  EXPECT_EQ(describe.executed, kThreads * kCallsPerThread);
}

// ---------------------------------------------------------------------------
// Read retries

TEST(LighthouseReadRetryTest, DescribeBlueprintsSucceedsThroughInjectedFaults) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  // Rules fire in order, each until its count is used up: 7 failed attempts.
  ASSERT_TRUE(
      emu.emulator()
          .SetFaults(absl::StrCat(
              R"({"rules":[)",
              R"({"action":"DescribeBlueprints","fault":"internal_error","count":2},)",
              R"({"action":"DescribeBlueprints","fault":"http_5xx","status":503,"count":2},)",
              R"({"action":"DescribeBlueprints","fault":"drop","count":1},)",
              R"({"action":"DescribeBlueprints","fault":"malformed","count":1},)",
              R"({"action":"DescribeBlueprints","fault":"latency","latency_ms":)", kLatencyMs,
              R"(,"count":1}]})"))
          .ok());
  ClientSetup setup = OneSecondTimeout();
  setup.retry.max_attempts = 10;
  auto client = emu.Client(setup);

  auto r = client->DescribeBlueprints(DescribeGuangzhou());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total_count, 1);
  ASSERT_EQ(r->blueprints.size(), 1u);
  EXPECT_EQ(r->blueprints[0].blueprint_id, "lhbp-gzbase01");

  // The timed-out attempt is counted when the emulator's delayed answer ends.
  auto stats = emu.StatsWhen([](const EmulatorStats& s) { return s.Fault("latency") > 0; });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->Fault("internal_error"), 2);
  EXPECT_EQ(stats->Fault("http_5xx"), 2);
  EXPECT_EQ(stats->Fault("drop"), 1);
  EXPECT_EQ(stats->Fault("malformed"), 1);
  EXPECT_EQ(stats->Fault("latency"), 1);
  const EmulatorActionStats describe = stats->Action("DescribeBlueprints");
  EXPECT_EQ(describe.received, 8);  // 7 faulted attempts + the one that succeeded
  EXPECT_EQ(describe.errors, 2);    // the two InternalError envelopes
  EXPECT_GE(describe.executed, 1);
}

TEST(LighthouseReadRetryTest, DescribeRegionsRetriedThroughInternalError) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ASSERT_TRUE(
      emu.emulator()
          .SetFaults(
              R"({"rules":[{"action":"DescribeRegions","fault":"internal_error","count":3}]})")
          .ok());
  auto r = emu.Client()->DescribeRegions("ap-guangzhou");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total_count, 15);
  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->Action("DescribeRegions").received, 4);
}

// DeleteBlueprints is retried like a read: throttled and lost answers are
// sent again, and a repeat of a delete that ran answers NOT_FOUND.
TEST(LighthouseDeleteRetryTest, ThrottledAndLostDeletesAreResent) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ASSERT_TRUE(emu.emulator()
                  .SetFaults(R"({"rules":[)"
                             R"({"action":"DeleteBlueprints","fault":"error","count":2,)"
                             R"("code":"RequestLimitExceeded"},)"
                             R"({"action":"DeleteBlueprints","fault":"http_5xx","count":1}]})")
                  .ok());
  auto client = emu.Client();
  auto r =
      client->DeleteBlueprints(tencent::DeleteBlueprintsRequest{"ap-guangzhou", {"lhbp-gzbase01"}});
  ASSERT_TRUE(r.ok()) << r.status();
  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->Action("DeleteBlueprints").received, 4);
  EXPECT_EQ(stats->Action("DeleteBlueprints").executed, 1);
  EXPECT_EQ(stats->deleted_blueprints_total, 1);

  // The answer of an executed delete is lost: the resend finds nothing.
  ASSERT_TRUE(
      emu.emulator()
          .SetFaults(
              R"({"rules":[{"action":"DeleteBlueprints","fault":"drop","phase":"after","count":1}]})")
          .ok());
  auto lost =
      client->DeleteBlueprints(tencent::DeleteBlueprintsRequest{"ap-guangzhou", {"lhbp-gzbase02"}});
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kNotFound) << lost.status();
  stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->WasDeleted("ap-guangzhou", "lhbp-gzbase02"));
  EXPECT_EQ(stats->deleted_blueprints_total, 2);
}

// ---------------------------------------------------------------------------
// No SyncBlueprint resend on an ambiguous failure

struct AmbiguousCase {
  std::string name;
  std::string fault;  // the emulator fault kind
  std::string phase;
  std::string expected_code;  // ApiError.code the client keeps
  long expected_http_status;
  int expected_executed;
};

void PrintTo(const AmbiguousCase& c, std::ostream* os) { *os << c.name; }

class SyncBlueprintAmbiguousTest : public ::testing::TestWithParam<AmbiguousCase> {};

TEST_P(SyncBlueprintAmbiguousTest, OutcomeUnknownAndSentOnce) {
  const AmbiguousCase& c = GetParam();
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ASSERT_TRUE(emu.emulator()
                  .SetFaults(absl::StrCat(
                      R"({"rules":[{"action":"SyncBlueprint","fault":")", c.fault, R"(","phase":")",
                      c.phase, R"(","status":503,"latency_ms":)", kLatencyMs, R"(,"count":0}]})"))
                  .ok());
  ClientSetup setup = OneSecondTimeout();
  setup.retry.max_attempts = 10;  // room for a resend, were the client to make one
  auto client = emu.Client(setup);

  auto r = client->SyncBlueprint(SyncGuangzhouToShanghai());
  ASSERT_FALSE(r.ok());
  auto e = ApiErrorOf(r);
  ASSERT_TRUE(e.has_value()) << r.status();
  EXPECT_EQ(e->kind, ErrorKind::kOutcomeUnknown) << r.status();
  EXPECT_TRUE(e->MayHaveExecuted());
  EXPECT_EQ(e->code, c.expected_code) << r.status();
  EXPECT_EQ(e->action, "SyncBlueprint");
  EXPECT_EQ(e->http_status, c.expected_http_status) << r.status();
  if (c.fault == "internal_error") {
    EXPECT_FALSE(e->request_id.empty());
  }
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnknown) << r.status();

  // A latency fault holds the emulator's answer (and its counters) back
  // past the client's timeout: wait, boundedly, until the fault is counted.
  auto stats = emu.StatsWhen([&](const EmulatorStats& s) { return s.Fault(c.fault) > 0; });
  ASSERT_TRUE(stats.ok()) << stats.status();
  const EmulatorActionStats sync = stats->Action("SyncBlueprint");
  EXPECT_EQ(sync.received, 1);
  EXPECT_EQ(sync.executed, c.expected_executed);
  EXPECT_EQ(stats->sync_submissions.size(), static_cast<size_t>(c.expected_executed));
  EXPECT_EQ(stats->Fault(c.fault), 1);
  EXPECT_EQ(stats->requests_total, 1);
}

INSTANTIATE_TEST_SUITE_P(
    Faults, SyncBlueprintAmbiguousTest,
    ::testing::Values(
        AmbiguousCase{"AfterInternalError", "internal_error", "after", "InternalError", 200, 1},
        AmbiguousCase{"AfterHttp5xx", "http_5xx", "after", "ClientError.HttpStatusCodeError", 503,
                      1},
        AmbiguousCase{"AfterDrop", "drop", "after", "ClientError.NetworkError", 200, 1},
        AmbiguousCase{"AfterMalformed", "malformed", "after", "ClientError.ParseJsonError", 200, 1},
        AmbiguousCase{"AfterLatencyBeyondTimeout", "latency", "after", "ClientError.NetworkError",
                      0, 1},
        // Rejected before execution, but an HTTP 503 does not say so: the
        // client must still treat it as possibly executed.
        AmbiguousCase{"BeforeHttp5xx", "http_5xx", "before", "ClientError.HttpStatusCodeError", 503,
                      0}),
    [](const ::testing::TestParamInfo<AmbiguousCase>& param) { return param.param.name; });

// ---------------------------------------------------------------------------
// Nothing listening

TEST(LighthouseTransportTest, ConnectionRefusedIsTransportUnavailable) {
  // A bound socket that never listens: the port is ours (nobody else can
  // take it) and connecting to it is refused.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  tencent::LighthouseClientOptions options;
  options.endpoint = absl::StrCat("http://127.0.0.1:", port);
  options.retry = ClientSetup::FastRetry();
  options.retry.max_attempts = 3;
  auto client = tencent::MakeLighthouseClient(
      options, std::make_shared<tencent::StaticCredentialProvider>(ClientSetup{}.credentials),
      tencent::MakeCurlTransport(ClientSetup::ShortTimeouts()));

  auto d = client->DescribeBlueprints(DescribeGuangzhou());
  auto de = ApiErrorOf(d);
  ASSERT_TRUE(de.has_value()) << d.status();
  EXPECT_EQ(de->kind, ErrorKind::kTransport) << d.status();
  EXPECT_EQ(de->code, "ClientError.NetworkError");
  EXPECT_EQ(de->http_status, 0);
  EXPECT_TRUE(de->request_id.empty());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);

  // Nothing was sent, so even SyncBlueprint is a plain transport failure.
  auto s = client->SyncBlueprint(SyncGuangzhouToShanghai());
  auto se = ApiErrorOf(s);
  ASSERT_TRUE(se.has_value()) << s.status();
  EXPECT_EQ(se->kind, ErrorKind::kTransport) << s.status();
  EXPECT_FALSE(se->MayHaveExecuted());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  ::close(fd);
}

}  // namespace
}  // namespace blueprintsync::testing
