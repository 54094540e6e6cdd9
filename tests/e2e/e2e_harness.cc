#include "tests/e2e/e2e_harness.h"

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "rapidjson/document.h"

namespace blueprintsync::testing {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(20);

// Keeps the environment from leaking into the children: the server's flags
// all have BLUEPRINT_SYNC_* variables, and a session token would be sent
// with the emulator's permanent key.
const std::vector<std::string>& UnsetEnv() {
  static const auto* v = new std::vector<std::string>{
      "BLUEPRINT_SYNC_*", "TENCENTCLOUD_*", "http_proxy", "https_proxy", "HTTP_PROXY",
      "HTTPS_PROXY",      "all_proxy",      "ALL_PROXY",  "grpc_proxy"};
  return *v;
}

std::string Tail(const std::string& text, size_t max_lines) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.size() > max_lines) lines.erase(lines.begin(), lines.end() - max_lines);
  return absl::StrJoin(lines, "\n");
}

void Report(const std::string& what, const ChildProcess& p) {
  std::cerr << "----- " << what << " (pid " << p.pid() << ") stdout, last lines -----\n"
            << Tail(p.Stdout(), 40) << "\n----- " << what << " stderr, last lines -----\n"
            << Tail(p.Stderr(), 40) << "\n";
}

}  // namespace

std::vector<std::string> RichError::violation_fields() const {
  std::vector<std::string> out;
  if (!bad_request.has_value()) return out;
  for (const auto& v : bad_request->field_violations()) out.push_back(v.field());
  return out;
}

RichError ParseRichError(const grpc::Status& status) {
  RichError out;
  google::rpc::Status rich;
  if (status.error_details().empty() || !rich.ParseFromString(status.error_details())) return out;
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&info)) {
      out.info = info;
    } else if (any.UnpackTo(&bad)) {
      out.bad_request = bad;
    }
  }
  return out;
}

int ConnectAndSend(const std::string& address, const std::string& bytes) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) return -1;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

bool IsSet(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::StatusOr<int> HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service, absl::Duration timeout) {
  grpc::TemplatedGenericStub<grpc::health::v1::HealthCheckRequest,
                             grpc::health::v1::HealthCheckResponse>
      generic(channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  absl::Notification done;
  grpc::Status result;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      result = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  if (!result.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(result.error_code()), result.error_message());
  }
  return static_cast<int>(response.status());
}

absl::StatusOr<Emulator> StartEmulator(const std::vector<std::string>& extra_args,
                                       const std::string& log_prefix) {
  ChildProcessOptions o;
  o.argv = {LIGHTHOUSE_EMULATOR, "--listen", "127.0.0.1:0"};
  o.argv.insert(o.argv.end(), extra_args.begin(), extra_args.end());
  o.unset_env = UnsetEnv();
  o.stdout_path = log_prefix + ".stdout";
  o.stderr_path = log_prefix + ".stderr";
  auto p = ChildProcess::Start(std::move(o));
  if (!p.ok()) return p.status();
  constexpr absl::string_view kPrefix = "lighthouse-emulator listening on ";
  auto line = (*p)->WaitForStdoutLine(
      [&](absl::string_view l) { return absl::StartsWith(l, kPrefix); }, kStartTimeout);
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat(line.status().message(), "; stderr: ", (*p)->Stderr()));
  }
  Emulator e;
  e.url = line->substr(kPrefix.size());
  e.admin = std::make_unique<EmulatorAdmin>(e.url);
  e.process = *std::move(p);
  return e;
}

absl::StatusOr<Server> StartServer(const std::string& emulator_url, const std::string& store,
                                   const std::vector<std::string>& extra_args,
                                   const std::string& log_prefix,
                                   const std::vector<std::pair<std::string, std::string>>& env) {
  ChildProcessOptions o;
  o.argv = {BLUEPRINT_SYNCD, "--listen", "127.0.0.1:0", "--lighthouse-endpoint", emulator_url,
            "--store",
            // A path, or a whole spec (postgres://…, memory:).
            absl::StrContains(store, "://") || absl::StartsWith(store, "memory:")
                ? store
                : absl::StrCat("sqlite:", store)};
  bool poll_given = false, metrics_given = false, regions_given = false;
  for (const std::string& a : extra_args) {
    poll_given |= absl::StartsWith(a, "--poll-interval");
    metrics_given |= absl::StartsWith(a, "--metrics-listen");
    regions_given |= absl::StartsWith(a, "--region-refresh-interval");
  }
  if (!poll_given) o.argv.insert(o.argv.end(), {"--poll-interval", "200ms"});
  // The server's own DescribeRegions calls would blur the upstream call
  // counts most tests assert; tests of the refresh ask for it.
  if (!regions_given) o.argv.push_back("--region-refresh-interval=0");
  // The default, 0.0.0.0:8087, would collide between tests run in parallel.
  if (!metrics_given) o.argv.push_back("--metrics-listen=");
  o.argv.insert(o.argv.end(), extra_args.begin(), extra_args.end());
  o.unset_env = UnsetEnv();
  o.env = {{"TENCENTCLOUD_SECRET_ID", kTestSecretId}, {"TENCENTCLOUD_SECRET_KEY", kTestSecretKey}};
  for (const auto& [name, value] : env) {
    auto same = std::find_if(o.env.begin(), o.env.end(),
                             [&name = name](const auto& e) { return e.first == name; });
    if (same != o.env.end()) {
      same->second = value;
    } else {
      o.env.emplace_back(name, value);
    }
  }
  o.stdout_path = log_prefix + ".stdout";
  o.stderr_path = log_prefix + ".stderr";
  auto p = ChildProcess::Start(std::move(o));
  if (!p.ok()) return p.status();
  auto line = (*p)->WaitForStdoutLine(
      [](absl::string_view l) { return absl::StrContains(l, "\"msg\":\"serving\""); },
      kStartTimeout);
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat(line.status().message(), "; stdout: ", (*p)->Stdout(),
                                     "; stderr: ", (*p)->Stderr()));
  }
  rapidjson::Document doc;
  doc.Parse(line->c_str(), line->size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("address") ||
      !doc["address"].IsString()) {
    return absl::InternalError(absl::StrCat("unexpected serving line: ", *line));
  }
  Server s;
  s.address = doc["address"].GetString();
  s.channel = grpc::CreateChannel(s.address, grpc::InsecureChannelCredentials());
  s.stub = v1::BlueprintSync::NewStub(s.channel);
  s.process = *std::move(p);
  return s;
}

void E2eTest::SetUp() {
  std::string pattern = ::testing::TempDir();
  if (pattern.empty() || pattern.back() != '/') pattern += '/';
  pattern += "bps_e2e_XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
  temp_dir_ = pattern;
}

void E2eTest::TearDown() {
  // Secret hygiene, for every scenario of this suite: the configured secret
  // key and anything that looks like a signature must never reach the logs
  // of the server or the emulator (the SecretId may appear only masked).
  std::vector<std::pair<std::string, ChildProcess*>> all;
  for (const auto& p : retired_) all.emplace_back("earlier " + p->name(), p.get());
  if (emulator_.process) all.emplace_back("lighthouse-emulator", emulator_.process.get());
  if (server_.process) all.emplace_back("blueprint-syncd", server_.process.get());
  for (const auto& [what, p] : all) {
    for (const std::string& text : {p->Stdout(), p->Stderr()}) {
      for (const char* secret : {kTestSecretKey, kTestSecretId, "Signature=", "TC3-HMAC-SHA256 "}) {
        EXPECT_EQ(text.find(secret), std::string::npos)
            << what << " logged \"" << (secret == kTestSecretKey ? "<the secret key>" : secret)
            << "\"";
      }
    }
  }
  if (server_.process) {
    // Every server that served a call wrote a structured access-log line.
    const std::string out = server_.process->Stdout();
    if (out.find("\"msg\":\"serving\"") != std::string::npos &&
        out.find("\"msg\":\"rpc finished\"") != std::string::npos) {
      EXPECT_NE(out.find("\"grpc.code\":"), std::string::npos) << "access log without grpc.code";
    }
  }
  if (HasFailure()) {
    for (const auto& p : retired_) Report("earlier " + p->name(), *p);
    if (emulator_.process) Report("lighthouse-emulator", *emulator_.process);
    if (server_.process) Report("blueprint-syncd", *server_.process);
    std::cerr << "full logs kept in " << temp_dir_ << "\n";
  }
  // Children first, so nothing writes into the directory being removed.
  server_ = Server{};
  emulator_ = Emulator{};
  retired_.clear();
  if (!HasFailure() && !temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
  }
}

absl::Status E2eTest::StartEmulator(std::vector<std::string> args) {
  auto e = testing::StartEmulator(args, temp_dir_ + "/emulator");
  if (!e.ok()) return e.status();
  emulator_ = *std::move(e);
  return absl::OkStatus();
}

absl::Status E2eTest::StartServer(std::vector<std::string> args) {
  if (emulator_.url.empty()) return absl::FailedPreconditionError("start the emulator first");
  if (server_.process) retired_.push_back(std::move(server_.process));
  auto s = testing::StartServer(emulator_.url, store_path(), args,
                                absl::StrCat(temp_dir_, "/server", ++server_starts_), server_env_);
  if (!s.ok()) return s.status();
  server_ = *std::move(s);
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> E2eTest::StopServer(absl::Duration timeout) {
  if (absl::Status s = server_.process->Signal(SIGTERM); !s.ok()) return s;
  return server_.process->WaitForExit(timeout);
}

absl::StatusOr<ExitStatus> E2eTest::KillServer() { return server_.process->Kill(); }

grpc::Status E2eTest::Sync(const v1::SyncBlueprintRequest& request, v1::SyncJob* job,
                           absl::Duration deadline) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return stub().SyncBlueprint(&context, request, job);
}

grpc::Status E2eTest::Get(const std::string& name, v1::SyncJob* job) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetSyncJobRequest request;
  request.set_name(name);
  return stub().GetSyncJob(&context, request, job);
}

grpc::Status E2eTest::List(const v1::ListSyncJobsRequest& request,
                           v1::ListSyncJobsResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return stub().ListSyncJobs(&context, request, response);
}

absl::StatusOr<v1::SyncJob> E2eTest::WaitForJob(const std::string& name,
                                                const std::function<bool(const v1::SyncJob&)>& done,
                                                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  v1::SyncJob job;
  grpc::Status last;
  for (;;) {
    last = Get(name, &job);
    if (last.ok() && done(job)) return job;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      name, " did not reach the expected state within ", absl::FormatDuration(timeout),
      "; last GetSyncJob: ", last.ok() ? job.ShortDebugString() : last.error_message()));
}

absl::StatusOr<v1::SyncJob> E2eTest::WaitForTerminal(const std::string& name,
                                                     absl::Duration timeout) {
  return WaitForJob(
      name, [](const v1::SyncJob& j) { return IsTerminalJobState(j.state()); }, timeout);
}

absl::StatusOr<std::vector<v1::SyncJob>> E2eTest::ListAll(const std::string& filter) {
  std::vector<v1::SyncJob> out;
  v1::ListSyncJobsRequest request;
  request.set_filter(filter);
  request.set_page_size(1000);
  for (int pages = 0; pages < 100; ++pages) {
    v1::ListSyncJobsResponse response;
    grpc::Status s = List(request, &response);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    out.insert(out.end(), response.sync_jobs().begin(), response.sync_jobs().end());
    if (response.next_page_token().empty()) return out;
    request.set_page_token(response.next_page_token());
  }
  return absl::InternalError("ListSyncJobs kept returning page tokens");
}

v1::SyncBlueprintRequest MakeRequest(const std::string& source_region,
                                     const std::string& blueprint_id,
                                     const std::vector<std::string>& destinations,
                                     const std::string& request_id) {
  v1::SyncBlueprintRequest r;
  r.set_source_region(source_region);
  r.set_blueprint_id(blueprint_id);
  for (const std::string& d : destinations) r.add_destination_regions(d);
  r.set_request_id(request_id);
  return r;
}

std::string SeedJson(const std::string& region, const std::vector<std::string>& ids) {
  std::vector<std::string> entries;
  for (const std::string& id : ids) {
    entries.push_back(absl::StrCat("{\"BlueprintId\":\"", id, "\",\"Region\":\"", region,
                                   "\",\"BlueprintName\":\"e2e-", id, "\"}"));
  }
  return absl::StrCat("{\"blueprints\":[", absl::StrJoin(entries, ","), "]}");
}

bool IsTerminalJobState(v1::SyncJob::State s) {
  return s == v1::SyncJob::SUCCEEDED || s == v1::SyncJob::FAILED || s == v1::SyncJob::CANCELLED;
}

}  // namespace blueprintsync::testing
