// Chaos, part 2: a matrix of upstream faults, injected by the emulator into
// SyncBlueprint and DescribeBlueprints before or after the call executes,
// plus credential failures. For every row, while a background prober checks
// health every 100 ms:
//   - valid jobs end SUCCEEDED with exactly one executed SyncBlueprint each
//     (rows that model a permanent failure: the job FAILS with an error that
//     names the Tencent Cloud code, and nothing executes);
//   - health answers SERVING throughout;
//   - the upstream calls are bounded. Every attempt is either the first one
//     of a submission, of a poll cycle's call per region or of a reconcile
//     look (1 + regions per job calls, at most 6 looks per ambiguous
//     submission), or is explained by an injected fault that the client may
//     retry, or by a throttle. So with J jobs, D destination regions, poll
//     interval P, W the time from the first job's creation to the last one's
//     end, F_sync / F_desc retryable faults fired on each action and
//     U <= F_sync ambiguous submissions:
//       SyncBlueprint      <= J + F_sync + throttled
//       DescribeBlueprints <= (W/P + 1) * D + 6 * U * (1 + regions per job)
//                             + F_desc + throttled
//     plus J requests rejected at authentication in the credential rows. A
//     permanent fault (not retryable) adds nothing: no retry storm.
// Each row prints one line of the table; running the binary prints the
// whole table at the end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/e2e/chaos_util.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using v1::SyncJob;

// The emulator's built-in temporary key (tests/emulator/README.md).
constexpr char kTmpSecretId[] = "AKIDTMPEMULATOR000000000000000000000";
constexpr char kTmpSecretKey[] = "TmpEmulatorSecretKey00000000000000";
constexpr char kTmpToken[] = "emulator-session-token";
constexpr char kEmulatorRoleArn[] = "qcs::cam::uin/100000000001:roleName/blueprint-sync";

enum class Setup {
  kFaultRule,            // `rule` is armed after the server started
  kStsShortLived,        // the server assumes a role; the keys it gets live 3 s
  kTemporaryKeyExpired,  // the server's static temporary key expires upstream
  kNoPermission,         // the server's key lacks the permission
};

struct FaultCase {
  const char* name = "";
  const char* fault = "";   // the table's "fault" column
  const char* action = "";  // the upstream action hit
  const char* phase = "";   // before / after execution, or "-"
  Setup setup = Setup::kFaultRule;
  std::string rule;  // one emulator fault rule (JSON object)
  // Expected end: SUCCEEDED, or FAILED with `grpc_code`, naming
  // `tencent_code` (when set).
  bool succeed = true;
  std::string tencent_code;
  // Failed jobs: text the error message must contain (empty: not checked).
  std::string message_contains;
  int grpc_code = 0;
  // Whether the SyncBlueprint RPC itself answers OK (a job was submitted).
  bool rpc_ok = true;
  // Executed SyncBlueprint calls per job.
  int executed_per_job = 1;
  // Whether the injected fault makes the client try again (a throttle or a
  // transient error); a permanent one must not.
  bool retryable_fault = true;
  // SyncBlueprint calls each job must cost exactly, -1: only the bound.
  int sync_received_per_job = -1;
  std::vector<std::string> server_args;
  int64_t sync_duration_ms = 800;
};

std::ostream& operator<<(std::ostream& os, const FaultCase& c) { return os << c.name; }

constexpr absl::Duration kPoll = absl::Milliseconds(200);
constexpr int kReconcileAttempts = 6;  // the engine's default

std::string Rule(const std::string& action, const std::string& body) {
  return absl::StrCat(R"({"action":")", action, R"(",)", body, "}");
}

// A row that must end SUCCEEDED at `sync_per_job` SyncBlueprint calls per job.
FaultCase Ok(const char* name, const char* fault, const char* action, const char* phase,
             std::string rule, int sync_per_job) {
  FaultCase c;
  c.name = name;
  c.fault = fault;
  c.action = action;
  c.phase = phase;
  c.rule = std::move(rule);
  c.sync_received_per_job = sync_per_job;
  return c;
}

// A row that must end FAILED, naming `tencent_code`, answered with INTERNAL.
FaultCase Fails(const char* name, const char* fault, Setup setup, std::string tencent_code,
                int sync_per_job) {
  FaultCase c;
  c.name = name;
  c.fault = fault;
  c.action = "SyncBlueprint";
  c.phase = "-";
  c.setup = setup;
  c.succeed = false;
  c.tencent_code = std::move(tencent_code);
  c.grpc_code = 13;  // INTERNAL: the service's own credentials are wrong
  c.rpc_ok = false;
  c.executed_per_job = 0;
  c.sync_received_per_job = sync_per_job;
  return c;
}

const std::vector<FaultCase>& Cases() {
  static const auto* cases = [] {
    auto* v = new std::vector<FaultCase>;
    const char* kSync = "SyncBlueprint";
    const char* kDesc = "DescribeBlueprints";
    // --- SyncBlueprint. Before: not executed, but the client cannot tell
    // (except for throttling): reconciled, found not executed, sent again.
    // After: executed, the answer lost: reconciled and adopted, never resent.
    // count 2: the first call of each of the two jobs.
    v->push_back(Ok("SyncInternalErrorBefore", "InternalError", kSync, "before",
                    Rule(kSync, R"("fault":"internal_error","phase":"before","count":2)"), 2));
    v->push_back(Ok("SyncInternalErrorAfter", "InternalError", kSync, "after",
                    Rule(kSync, R"("fault":"internal_error","phase":"after","count":2)"), 1));
    v->push_back(Ok("SyncHttp502Before", "HTTP 502", kSync, "before",
                    Rule(kSync, R"("fault":"http_5xx","status":502,"phase":"before","count":2)"),
                    2));
    v->push_back(Ok("SyncHttp503After", "HTTP 503", kSync, "after",
                    Rule(kSync, R"("fault":"http_5xx","status":503,"phase":"after","count":2)"),
                    1));
    // 1.5 s against --http-timeout 1s. "before" sleeps and then executes
    // (Tencent acting after the client gave up): adopted, like "after".
    v->push_back(
        Ok("SyncTimeoutBefore", "latency>timeout", kSync, "before",
           Rule(kSync, R"("fault":"latency","latency_ms":1500,"phase":"before","count":2)"), 1));
    v->push_back(Ok("SyncTimeoutAfter", "latency>timeout", kSync, "after",
                    Rule(kSync, R"("fault":"latency","latency_ms":1500,"phase":"after","count":2)"),
                    1));
    v->push_back(Ok("SyncDropBefore", "dropped conn", kSync, "before",
                    Rule(kSync, R"("fault":"drop","phase":"before","count":2)"), 2));
    v->push_back(Ok("SyncDropAfter", "dropped conn", kSync, "after",
                    Rule(kSync, R"("fault":"drop","phase":"after","count":2)"), 1));
    v->push_back(Ok("SyncMalformedBefore", "malformed JSON", kSync, "before",
                    Rule(kSync, R"("fault":"malformed","phase":"before","count":2)"), 2));
    v->push_back(Ok("SyncMalformedAfter", "malformed JSON", kSync, "after",
                    Rule(kSync, R"("fault":"malformed","phase":"after","count":2)"), 1));
    // Throttled calls are never executed, so only "before" exists. 14
    // throttles: more than the client's 6 attempts per call for both jobs,
    // so the engine's own backoff takes over too. 16 calls for 2 jobs.
    v->push_back(Ok("SyncThrottleStorm", "RequestLimitExceeded x14", kSync, "before",
                    Rule(kSync, R"("fault":"error","code":"RequestLimitExceeded",)"
                                R"("phase":"before","count":14)"),
                    8));
    // --- DescribeBlueprints: a read, retried by the client; "after"
    // executes it, which changes nothing upstream.
    v->push_back(Ok("DescribeInternalErrorBefore", "InternalError", kDesc, "before",
                    Rule(kDesc, R"("fault":"internal_error","phase":"before","count":4)"), 1));
    v->push_back(Ok("DescribeHttp503After", "HTTP 503", kDesc, "after",
                    Rule(kDesc, R"("fault":"http_5xx","status":503,"phase":"after","count":4)"),
                    1));
    v->push_back(
        Ok("DescribeTimeoutBefore", "latency>timeout", kDesc, "before",
           Rule(kDesc, R"("fault":"latency","latency_ms":1500,"phase":"before","count":3)"), 1));
    v->push_back(Ok("DescribeDropAfter", "dropped conn", kDesc, "after",
                    Rule(kDesc, R"("fault":"drop","phase":"after","count":4)"), 1));
    v->push_back(Ok("DescribeMalformedBefore", "malformed JSON", kDesc, "before",
                    Rule(kDesc, R"("fault":"malformed","phase":"before","count":4)"), 1));
    v->push_back(Ok("DescribeThrottleStorm", "RequestLimitExceeded x20", kDesc, "before",
                    Rule(kDesc, R"("fault":"error","code":"RequestLimitExceeded",)"
                                R"("phase":"before","count":20)"),
                    1));
    // --- Credentials. Temporary keys from STS AssumeRole that live 3 s (the
    // emulator rejects them once expired): the server must rotate them in
    // time; the syncs take 4 s so the jobs span a rotation.
    FaultCase sts = Ok("CredentialsRotateBeforeExpiry", "STS keys live 3 s", "all", "-", "", 1);
    sts.setup = Setup::kStsShortLived;
    sts.sync_duration_ms = 4000;
    v->push_back(sts);
    // A static temporary key that expires upstream: nothing can renew it.
    v->push_back(Fails("CredentialsExpiredTemporaryKey", "temporary key expired",
                       Setup::kTemporaryKeyExpired, "AuthFailure.TokenFailure", 0));
    v->push_back(Fails("CredentialsNoPermission", "UnauthorizedOperation", Setup::kNoPermission,
                       "UnauthorizedOperation.NoPermission", 1));
    // Permanent auth failure while tracking (SyncBlueprint went through, then
    // every DescribeBlueprints is refused): the job must not hang, and must
    // not retry in a storm. The tracker keeps polling (a refused poll may be
    // a rotation hiccup) until the job deadline (5 s here) fails the job.
    FaultCase track = Ok("DescribeAuthFailurePermanent", "AuthFailure (tracking)", kDesc, "before",
                         Rule(kDesc, R"("fault":"error","code":"AuthFailure.SecretIdNotFound",)"
                                     R"("phase":"before")"),
                         1);
    track.succeed = false;
    track.grpc_code = 4;  // DEADLINE_EXCEEDED
    track.retryable_fault = false;
    track.server_args = {"--job-deadline", "5s"};
    // ...with an error that says why the images could not be followed.
    track.message_contains = "answered AuthFailure.SecretIdNotFound";
    v->push_back(track);
    return v;
  }();
  return *cases;
}

struct Row {
  std::string fault, action, phase, service_action, outcome;
  int jobs = 0;
  int64_t sync_executed = 0, sync_received = 0, total = 0, bound = 0;
};

std::vector<Row>& Rows() {
  static auto* rows = new std::vector<Row>;
  return *rows;
}

std::string Header() {
  return absl::StrFormat("%-26s %-18s %-6s %-34s %4s %-26s %9s %17s", "fault", "action", "phase",
                         "service did", "jobs", "outcome", "sync exec", "calls/job (bound)");
}

std::string Format(const Row& r) {
  return absl::StrFormat("%-26s %-18s %-6s %-34s %4d %-26s %4d/%-4d %8.1f (%.1f)", r.fault,
                         r.action, r.phase, r.service_action, r.jobs, r.outcome, r.sync_executed,
                         r.sync_received, static_cast<double>(r.total) / r.jobs,
                         static_cast<double>(r.bound) / r.jobs);
}

class FaultMatrixE2eTest : public E2eTest, public ::testing::WithParamInterface<FaultCase> {
 public:
  static void TearDownTestSuite() {
    if (Rows().empty()) return;
    std::cout << "\n[faults] " << Header() << "\n";
    for (const Row& r : Rows()) std::cout << "[faults] " << Format(r) << "\n";
    std::cout << "[faults] sync exec = SyncBlueprint executed/received over all jobs of the row; "
                 "calls = every Lighthouse API request the emulator saw\n"
              << std::flush;
  }

 protected:
  int64_t ServerLogCount(const std::string& needle) {
    return CountLinesInFiles(temp_dir(), "server", ".stdout", needle);
  }
};

TEST_P(FaultMatrixE2eTest, JobsEndCorrectlyWithBoundedCallsAndHealthyService) {
  const FaultCase& c = GetParam();
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", absl::StrCat(c.sync_duration_ms)}));
  std::vector<std::string> args = {"--poll-interval",   "200ms", "--http-timeout", "1s",
                                   "--reconcile-grace", "2500ms"};
  args.insert(args.end(), c.server_args.begin(), c.server_args.end());
  switch (c.setup) {
    case Setup::kFaultRule:
      break;
    case Setup::kStsShortLived:
      BPS_ASSERT_OK(admin().Post("/_emulator/sts", R"({"duration_seconds":3})").status());
      SetServerEnv({{"TENCENTCLOUD_ROLE_ARN", kEmulatorRoleArn},
                    {"TENCENTCLOUD_STS_ENDPOINT", emulator_url()}});
      break;
    case Setup::kTemporaryKeyExpired:
      SetServerEnv({{"TENCENTCLOUD_SECRET_ID", kTmpSecretId},
                    {"TENCENTCLOUD_SECRET_KEY", kTmpSecretKey},
                    {"TENCENTCLOUD_SESSION_TOKEN", kTmpToken}});
      break;
    case Setup::kNoPermission:
      BPS_ASSERT_OK(admin().UpdateConfig(
          absl::StrCat(R"({"no_permission_secret_ids":[")", kTestSecretId, R"("]})")));
      break;
  }
  const absl::Time start = absl::Now();
  BPS_ASSERT_OK(StartServer(args));
  HealthProber health(channel(), absl::Milliseconds(100));
  switch (c.setup) {
    case Setup::kFaultRule:
      BPS_ASSERT_OK(admin().SetFaults(absl::StrCat(R"({"rules":[)", c.rule, "]}")));
      break;
    case Setup::kTemporaryKeyExpired:
      BPS_ASSERT_OK(
          admin()
              .Post("/_emulator/keys",
                    absl::StrCat(R"({"keys":[{"SecretId":")", kTmpSecretId, R"(","SecretKey":")",
                                 kTmpSecretKey, R"(","Token":")", kTmpToken, R"(","ExpiredTime":)",
                                 absl::ToUnixSeconds(absl::Now()) - 1, "}]}"))
              .status());
      break;
    default:
      break;
  }

  // Two jobs on different sources, submitted at once.
  struct Submission {
    v1::SyncBlueprintRequest request;
    grpc::Status status;
    SyncJob job;
  };
  std::vector<Submission> subs(2);
  subs[0].request = MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"});
  subs[1].request = MakeRequest("ap-singapore", "lhbp-sgbase01", {"ap-hongkong", "ap-tokyo"});
  const int jobs_n = static_cast<int>(subs.size());
  const int regions_per_job = 2;
  const int destination_regions = 4;
  {
    std::vector<std::thread> threads;
    for (Submission& s : subs) {
      threads.emplace_back([&s, this] {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
        s.status = stub().SyncBlueprint(&context, s.request, &s.job);
      });
    }
    for (std::thread& t : threads) t.join();
  }
  for (const Submission& s : subs) {
    if (c.rpc_ok) {
      ASSERT_TRUE(s.status.ok()) << s.status.error_code() << " " << s.status.error_message();
    } else {
      // A permanent failure is the caller's answer, with the Tencent code.
      EXPECT_EQ(static_cast<int>(s.status.error_code()), c.grpc_code) << s.status.error_message();
      const RichError rich = ParseRichError(s.status);
      ASSERT_TRUE(rich.info.has_value()) << s.status.error_message();
      EXPECT_EQ(rich.info->metadata().at("tencent_code"), c.tencent_code);
    }
  }

  // Every job, as the service lists it, until all have ended.
  std::vector<SyncJob> jobs;
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  for (;;) {
    auto all = ListAll("");
    BPS_ASSERT_OK(all.status());
    jobs = *std::move(all);
    bool done = static_cast<int>(jobs.size()) == jobs_n;
    for (const SyncJob& j : jobs) done &= IsTerminalJobState(j.state());
    if (done || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  health.Stop();
  const absl::Duration elapsed = absl::Now() - start;
  ASSERT_EQ(static_cast<int>(jobs.size()), jobs_n);

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  ASSERT_FALSE(stats->faults.empty()) << "no faults in the emulator's stats";
  const int64_t fired = stats->TotalFaults();
  const auto sync = stats->Action("SyncBlueprint");
  const auto describe = stats->Action("DescribeBlueprints");
  const ExecutionAudit audit = AuditExecutions(jobs, stats->sync_submissions);

  // Outcome.
  std::map<std::string, int64_t> states;
  std::string failure_example;
  for (const SyncJob& j : jobs) {
    ++states[SyncJob::State_Name(j.state())];
    const int executed = audit.executed.count(j.name()) ? audit.executed.at(j.name()) : 0;
    EXPECT_EQ(executed, c.executed_per_job) << j.ShortDebugString();
    if (c.succeed) {
      EXPECT_EQ(j.state(), SyncJob::SUCCEEDED) << j.ShortDebugString();
    } else {
      EXPECT_EQ(j.state(), SyncJob::FAILED) << j.ShortDebugString();
      if (!c.tencent_code.empty()) {
        EXPECT_EQ(j.error().tencent_code(), c.tencent_code) << j.ShortDebugString();
        EXPECT_THAT(j.error().message(), ::testing::Not(::testing::IsEmpty()));
      }
      EXPECT_EQ(j.error().code(), c.grpc_code) << j.ShortDebugString();
      if (!c.message_contains.empty()) {
        EXPECT_THAT(j.error().message(), ::testing::HasSubstr(c.message_contains));
      }
      failure_example = j.error().ShortDebugString();
    }
  }
  for (const std::string& p : audit.problems) ADD_FAILURE() << p;
  EXPECT_EQ(sync.executed, c.executed_per_job * jobs_n);
  if (c.sync_received_per_job >= 0) {
    EXPECT_EQ(sync.received, c.sync_received_per_job * jobs_n)
        << "SyncBlueprint calls the emulator authenticated";
  }

  // Health: SERVING at every probe.
  EXPECT_GT(health.checks(), 0);
  EXPECT_EQ(health.serving(), health.checks()) << absl::StrJoin(health.failures(), "; ");

  // The bound (see the top of the file).
  // Poll cycles with anything to poll lie between the first job's creation
  // and the last job's end.
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  for (const SyncJob& j : jobs) {
    first = std::min(first, ToTime(j.create_time()));
    last = std::max(last, IsSet(j.end_time()) ? ToTime(j.end_time()) : absl::Now());
  }
  const bool sync_fault = absl::StrContains(c.rule, "\"SyncBlueprint\"");
  const int64_t retried_faults = c.retryable_fault ? fired : 0;
  const int64_t f_sync = sync_fault ? retried_faults : 0;
  const int64_t f_desc = sync_fault ? 0 : retried_faults;
  const int64_t cycles =
      static_cast<int64_t>(std::ceil(absl::FDivDuration(last - first, kPoll))) + 1;
  const int64_t sync_bound = jobs_n + f_sync + sync.throttled;
  // Throttled calls are certainly not executed: nothing to reconcile.
  const int64_t ambiguous = absl::StrContains(c.rule, "RequestLimitExceeded") ? 0 : f_sync;
  const int64_t describe_bound = cycles * destination_regions +
                                 kReconcileAttempts * ambiguous * (1 + regions_per_job) + f_desc +
                                 describe.throttled;
  const int64_t auth_bound = c.rpc_ok ? 0 : jobs_n;
  const int64_t bound = sync_bound + describe_bound + auth_bound;
  EXPECT_LE(sync.received, sync_bound);
  EXPECT_LE(describe.received, describe_bound);
  EXPECT_LE(stats->auth_failures, auth_bound) << "requests rejected at authentication";
  EXPECT_LE(stats->requests_total, bound);
  std::string detail;
  if (c.setup == Setup::kStsShortLived) {
    ASSERT_FALSE(stats->sts.empty()) << "no sts in the emulator's stats";
    std::map<std::string, int64_t> sts = stats->sts;
    // At start-up, and at least once more while the jobs ran.
    EXPECT_GE(sts["AssumeRole.issued"], 2) << FormatCounts(sts);
    EXPECT_EQ(sts["errors"], 0) << FormatCounts(sts);
    detail = absl::StrCat("; STS AssumeRole issued ", sts["AssumeRole.issued"], " keys, errors ",
                          sts["errors"]);
  }
  if (!failure_example.empty()) detail += absl::StrCat("; job error: ", failure_example);
  // The temporary secrets never reach a log either.
  for (const std::string& text : {server_process().Stdout(), server_process().Stderr()}) {
    EXPECT_FALSE(absl::StrContains(text, kTmpSecretKey));
    EXPECT_FALSE(absl::StrContains(text, kTmpToken));
  }

  // What the service did about it, from its log.
  std::vector<std::string> did;
  const std::pair<const char*, const char*> kinds[] = {
      {"reconciled: submission had executed", "adopted"},
      {"reconciled: submission had not executed", "resubmitted"},
      {"reconcile inconclusive", "looked again"},
      {"submission not sent; will retry", "requeued"},
      {"source blueprint busy", "waited busy"},
      {"poll failed", "poll failed"},
      {"submission rejected", "rejected"},
  };
  for (const auto& [needle, label] : kinds) {
    if (int64_t n = ServerLogCount(needle); n > 0) did.push_back(absl::StrCat(label, "x", n));
  }
  if (did.empty()) did.push_back(fired > 0 ? "retried in client" : "-");

  Row row;
  row.fault = c.fault;
  row.action = c.action;
  row.phase = c.phase;
  row.service_action = absl::StrJoin(did, ",");
  row.outcome = FormatCounts(states);
  row.jobs = jobs_n;
  row.sync_executed = sync.executed;
  row.sync_received = sync.received;
  row.total = stats->requests_total;
  row.bound = bound;
  Rows().push_back(row);
  std::cout << "[faults] " << Header() << "\n[faults] " << Format(row) << "\n"
            << absl::StrFormat(
                   "[faults] faults fired=%d, SyncBlueprint received=%d, DescribeBlueprints "
                   "received=%d (bound %d), auth failures=%d; health: %d checks, all SERVING=%s, "
                   "slowest %s; row took %s%s\n",
                   fired, sync.received, describe.received, describe_bound, stats->auth_failures,
                   health.checks(), health.serving() == health.checks() ? "yes" : "NO",
                   absl::FormatDuration(absl::Trunc(health.max_latency(), absl::Milliseconds(1))),
                   absl::FormatDuration(absl::Trunc(elapsed, absl::Milliseconds(100))), detail)
            << std::flush;
}

INSTANTIATE_TEST_SUITE_P(Matrix, FaultMatrixE2eTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<FaultCase>& param) {
                           return std::string(param.param.name);
                         });

}  // namespace
}  // namespace blueprintsync::testing
