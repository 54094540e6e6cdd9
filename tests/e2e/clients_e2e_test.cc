// End-to-end: the Go and Python client examples (clients/) against a real
// server and emulator, run as child processes the way a service would run
// them. Each language must show what the examples are for:
//   - a SyncBlueprint whose first attempt times out on the client is retried
//     with the same request id and makes exactly one job and one upstream
//     SyncBlueprint call;
//   - a watch survives the server being killed and restarted on the same
//     store and port, and ends with the job's SUCCEEDED;
//   - an error's google.rpc.ErrorInfo reason is read and printed;
// and clients/service_config.json must load into a real gRPC channel (and a
// malformed one must not).
//
// A missing toolchain (go, protoc plugins, python3-grpcio) fails these
// tests with the hint to run scripts/install-deps; it never skips them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// The value after `prefix` on the first line that starts with it; "" if none.
std::string LineValue(const std::vector<std::string>& lines, absl::string_view prefix) {
  for (absl::string_view line : lines) {
    if (absl::ConsumePrefix(&line, prefix)) return std::string(line);
  }
  return "";
}

struct Language {
  const char* name;
};
// Test names and failure messages show "go" / "python", not the bytes.
void PrintTo(const Language& language, std::ostream* os) { *os << language.name; }

class ClientsE2eTest : public E2eTest, public ::testing::WithParamInterface<Language> {
 protected:
  bool IsGo() const { return std::string(GetParam().name) == "go"; }

  // Fails the test (never skips) when the example cannot run here.
  void CheckToolchain() {
    if (IsGo()) {
      ASSERT_TRUE(Executable(BPS_GO_EXAMPLE))
          << BPS_GO_EXAMPLE << " was not built: go, protoc-gen-go or protoc-gen-go-grpc is missing "
          << "(run scripts/install-deps, then reconfigure and rebuild)";
      return;
    }
    ASSERT_TRUE(Executable(BPS_PYTHON3)) << BPS_PYTHON3 << " missing (scripts/install-deps)";
    ASSERT_EQ(access(BPS_PYTHON_STUBS "/blueprintsync/v1/blueprint_sync_pb2_grpc.py", R_OK), 0)
        << "the Python stubs were not generated: grpc_python_plugin is missing "
        << "(run scripts/install-deps, then reconfigure and rebuild)";
    ChildProcessOptions import_grpc;
    import_grpc.argv = {BPS_PYTHON3, "-c", "import grpc, google.protobuf"};
    auto probe = RunToCompletion(std::move(import_grpc), absl::Seconds(30));
    ASSERT_TRUE(probe.ok()) << probe.status();
    ASSERT_EQ(probe->status, ExitedWith(0))
        << BPS_PYTHON3 << " cannot import grpc (python3-grpcio, python3-protobuf; "
        << "scripts/install-deps): " << probe->err;
  }

  // The example's command line: flags spelled per language.
  ChildProcessOptions Example(const std::vector<std::pair<std::string, std::string>>& flags,
                              const std::string& service_config = BPS_SERVICE_CONFIG) {
    ChildProcessOptions o;
    const std::string dash = IsGo() ? "-" : "--";
    if (IsGo()) {
      o.argv = {BPS_GO_EXAMPLE};
      // Debian's grpc-go 1.33 applies the service config's retryPolicy only then.
      o.env = {{"GRPC_GO_RETRY", "on"}};
    } else {
      o.argv = {BPS_PYTHON3, BPS_PYTHON_EXAMPLE};
      o.env = {{"PYTHONPATH", BPS_PYTHON_STUBS}, {"PYTHONUNBUFFERED", "1"}};
    }
    o.argv.insert(o.argv.end(),
                  {dash + "target", server_address(), dash + "service-config", service_config});
    for (const auto& [flag, value] : flags) o.argv.insert(o.argv.end(), {dash + flag, value});
    o.unset_env = {"http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"};
    o.stdout_path = absl::StrCat(temp_dir(), "/example-", GetParam().name, ".out");
    o.stderr_path = absl::StrCat(temp_dir(), "/example-", GetParam().name, ".err");
    return o;
  }

  absl::StatusOr<EmulatorStats> WaitForEmulator(
      const std::function<bool(const EmulatorStats&)>& done,
      absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<EmulatorStats> stats = admin().Stats();
      if (stats.ok() && done(*stats)) return stats;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return absl::DeadlineExceededError("the emulator never got there");
  }

  static std::string Output(ChildProcess& p) {
    return absl::StrCat("stdout:\n", p.Stdout(), "\nstderr:\n", p.Stderr());
  }
};

// The first attempt's deadline passes while the server holds the call (it is
// stopped with SIGSTOP right after the SyncBlueprint reached the emulator, so
// the server cannot answer before the client gives up, as a stalled network
// or a paused VM would do). The example must retry with the same request id
// and end with the one job the first attempt created.
TEST_P(ClientsE2eTest, SyncSurvivesAForcedClientTimeoutWithoutASecondJob) {
  CheckToolchain();
  if (HasFatalFailure()) return;
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  // Upstream answers 2 s after executing, so the call is in flight when the
  // server is stopped.
  BPS_ASSERT_OK(admin().SetFaults(
      R"({"rules":[{"action":"SyncBlueprint","fault":"latency","phase":"after","latency_ms":2000,"count":1}]})"));
  BPS_ASSERT_OK(StartServer());

  auto example = ChildProcess::Start(Example({{"source-region", "ap-guangzhou"},
                                              {"blueprint-id", "lhbp-gzbase01"},
                                              {"to", "ap-beijing,ap-shanghai"},
                                              {"attempt-timeout", IsGo() ? "5s" : "5"},
                                              {"watch-timeout", IsGo() ? "60s" : "60"}}));
  BPS_ASSERT_OK(example.status());
  ChildProcess& client = **example;
  BPS_ASSERT_OK(WaitForEmulator([](const EmulatorStats& s) {
                  return s.Action("SyncBlueprint").received == 1;
                }).status());
  // The server answers a call 300 ms before its deadline with the job as it
  // stands; stopped, it cannot, and the client's deadline passes.
  BPS_ASSERT_OK(server_process().Signal(SIGSTOP));
  auto timed_out = client.WaitForStdoutLine(
      [](absl::string_view l) { return absl::StartsWith(l, "attempt 1: DEADLINE_EXCEEDED"); },
      absl::Seconds(30));
  BPS_ASSERT_OK(server_process().Signal(SIGCONT));
  ASSERT_TRUE(timed_out.ok()) << timed_out.status() << "\n" << Output(client);

  auto exit = client.WaitForExit(absl::Seconds(60));
  BPS_ASSERT_OK(exit.status());
  client.FinishOutput(absl::Seconds(5));
  EXPECT_EQ(*exit, ExitedWith(0)) << exit->ToString() << "\n" << Output(client);
  const std::vector<std::string> lines = client.StdoutLines();
  const std::string request_id = LineValue(lines, "request id: ");
  ASSERT_FALSE(request_id.empty()) << Output(client);
  EXPECT_THAT(client.Stdout(),
              HasSubstr(absl::StrCat("retrying with the same request id ", request_id)));
  EXPECT_THAT(client.Stdout(), HasSubstr("final state: SUCCEEDED")) << Output(client);

  // What the issue asks: one upstream SyncBlueprint, one job.
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
  EXPECT_EQ(stats->sync_submissions.size(), 1u);
  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  ASSERT_EQ(jobs->size(), 1u) << "a second job was created:\n" << Output(client);
  EXPECT_EQ((*jobs)[0].request_id(), request_id);
  EXPECT_EQ((*jobs)[0].state(), v1::SyncJob::SUCCEEDED);
  // The answer of the retry named that job.
  const std::string answered = LineValue(lines, "job: ");
  EXPECT_TRUE(absl::StartsWith(answered, (*jobs)[0].name())) << answered;
}

// The server is SIGKILLed while the example watches a RUNNING job and
// restarted on the same store and port; the example reconnects, resumes and
// sees the job end SUCCEEDED.
TEST_P(ClientsE2eTest, WatchSurvivesAServerRestart) {
  CheckToolchain();
  if (HasFatalFailure()) return;
  // Long enough that the copy is still going when the server is killed.
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "6000"}));
  BPS_ASSERT_OK(StartServer());
  const std::string address = server_address();

  auto example = ChildProcess::Start(Example({{"source-region", "ap-guangzhou"},
                                              {"blueprint-id", "lhbp-gzbase01"},
                                              {"to", "ap-beijing"},
                                              {"watch-timeout", IsGo() ? "90s" : "90"}}));
  BPS_ASSERT_OK(example.status());
  ChildProcess& client = **example;
  // A watch line (the SyncBlueprint answer's line names its attempt).
  auto watching = client.WaitForStdoutLine(
      [](absl::string_view l) {
        return absl::StartsWith(l, "job: ") && absl::EndsWith(l, "state: RUNNING");
      },
      absl::Seconds(30));
  ASSERT_TRUE(watching.ok()) << watching.status() << "\n" << Output(client);

  auto killed = KillServer();
  BPS_ASSERT_OK(killed.status());
  auto interrupted = client.WaitForStdoutLine(
      [](absl::string_view l) { return absl::StartsWith(l, "watch interrupted"); },
      absl::Seconds(30));
  ASSERT_TRUE(interrupted.ok()) << interrupted.status() << "\n" << Output(client);
  BPS_ASSERT_OK(StartServer({"--listen", address}));
  ASSERT_EQ(server_address(), address);

  auto exit = client.WaitForExit(absl::Seconds(60));
  BPS_ASSERT_OK(exit.status());
  client.FinishOutput(absl::Seconds(5));
  EXPECT_EQ(*exit, ExitedWith(0)) << exit->ToString() << "\n" << Output(client);
  EXPECT_THAT(client.Stdout(), HasSubstr("final state: SUCCEEDED")) << Output(client);
  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].state(), v1::SyncJob::SUCCEEDED);
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
}

// A request the service rejects: the example prints ErrorInfo's reason and
// metadata, does not retry (INVALID_ARGUMENT is final) and exits 1.
TEST_P(ClientsE2eTest, PrintsTheErrorInfoReasonAndDoesNotRetryAFinalError) {
  CheckToolchain();
  if (HasFatalFailure()) return;
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  auto run = RunToCompletion(Example({{"source-region", "ap-guangzhou"},
                                      {"blueprint-id", "lhbp-gzbase01"},
                                      {"to", "ap-guangzhou"}}),
                             absl::Seconds(60));
  BPS_ASSERT_OK(run.status());
  EXPECT_EQ(run->status, ExitedWith(1)) << run->out << run->err;
  EXPECT_THAT(run->out, HasSubstr("sync failed: INVALID_ARGUMENT"));
  EXPECT_THAT(run->out, HasSubstr("[reason=DESTINATION_SAME_AS_SOURCE domain=blueprintsync.v1 field=destination_regions[0]]"))
      << run->out << run->err;
  EXPECT_THAT(run->out, HasSubstr("[field destination_regions[0]: "));
  EXPECT_THAT(run->out, Not(HasSubstr("retrying")));
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 0);
}

// A malformed service config stops the example before any call: Go refuses
// it when it dials (exit 2); Python's channel (the C++ core) turns lame and
// answers INVALID_ARGUMENT, which the example does not retry (exit 1).
TEST_P(ClientsE2eTest, AMalformedServiceConfigMakesNoCall) {
  CheckToolchain();
  if (HasFatalFailure()) return;
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  const std::string bad = temp_dir() + "/bad_service_config.json";
  std::string text = ReadFile(BPS_SERVICE_CONFIG);
  const size_t at = text.find("\"maxAttempts\": 4");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 16, "\"maxAttempts\": \"four\"");
  std::ofstream(bad) << text;
  auto run = RunToCompletion(Example({{"source-region", "ap-guangzhou"},
                                      {"blueprint-id", "lhbp-gzbase01"},
                                      {"to", "ap-beijing"}},
                                     bad),
                             absl::Seconds(60));
  BPS_ASSERT_OK(run.status());
  if (IsGo()) {
    EXPECT_EQ(run->status, ExitedWith(2)) << run->out << run->err;
    EXPECT_THAT(run->err, HasSubstr("service config")) << run->err;
  } else {
    EXPECT_EQ(run->status, ExitedWith(1)) << run->out << run->err;
    EXPECT_THAT(run->out, HasSubstr("sync failed: INVALID_ARGUMENT")) << run->out << run->err;
    EXPECT_THAT(run->out, Not(HasSubstr("retrying")));
  }
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 0);
  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  EXPECT_TRUE(jobs->empty());
}

INSTANTIATE_TEST_SUITE_P(Languages, ClientsE2eTest,
                         ::testing::Values(Language{"go"}, Language{"python"}),
                         [](const ::testing::TestParamInfo<Language>& p) {
                           return std::string(p.param.name);
                         });

// clients/service_config.json in a real gRPC channel (the C++ core, which
// Python's grpcio is built on): calls go through with it; a malformed config
// turns the channel lame (every call INVALID_ARGUMENT), so a test that
// merely loads it would catch a broken file.
class ServiceConfigE2eTest : public E2eTest {
 protected:
  grpc::Status GetWith(const std::string& service_config) {
    grpc::ChannelArguments args;
    args.SetServiceConfigJSON(service_config);
    auto channel =
        grpc::CreateCustomChannel(server_address(), grpc::InsecureChannelCredentials(), args);
    auto stub = v1::BlueprintSync::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::GetSyncJobRequest request;
    request.set_name("syncJobs/6f0c2a1e-1d2b-4c3a-9e8f-0000000000c1");
    v1::SyncJob job;
    return stub->GetSyncJob(&context, request, &job);
  }
};

TEST_F(ServiceConfigE2eTest, TheCheckedInConfigLoadsIntoARealChannel) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  const std::string config = ReadFile(BPS_SERVICE_CONFIG);
  ASSERT_FALSE(config.empty()) << BPS_SERVICE_CONFIG;
  // The server's own answer for a job that does not exist: the call went through.
  const grpc::Status ok = GetWith(config);
  EXPECT_EQ(ok.error_code(), grpc::StatusCode::NOT_FOUND) << ok.error_message();

  std::string bad = config;
  const size_t at = bad.find("\"UNAVAILABLE\"");
  ASSERT_NE(at, std::string::npos);
  bad.replace(at, 13, "\"UNAVAILABLEX\"");
  const grpc::Status refused = GetWith(bad);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
  const grpc::Status truncated = GetWith(config.substr(0, config.size() / 2));
  EXPECT_EQ(truncated.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << truncated.error_message();
}

}  // namespace
}  // namespace blueprintsync::testing
