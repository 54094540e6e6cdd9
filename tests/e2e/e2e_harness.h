// The end-to-end test harness: every test gets its own lighthouse-emulator
// process, its own blueprint-syncd process (real TCP on 127.0.0.1 port 0,
// real SQLite in a private temp dir) and a gRPC stub. Servers can be
// stopped, killed and restarted on the same store, which is what the crash
// and shutdown tests need. On failure the tail of every process's output is
// printed and the temp dir (with full logs) is kept.
#ifndef BLUEPRINTSYNC_TESTS_E2E_E2E_HARNESS_H_
#define BLUEPRINTSYNC_TESTS_E2E_E2E_HARNESS_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/rpc/error_details.pb.h"
#include "tests/testing_util/emulator_admin.h"
#include "tests/testing_util/process.h"

namespace blueprintsync::testing {

// The emulator's built-in key pair, handed to the server in its environment.
inline constexpr char kTestSecretId[] = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
inline constexpr char kTestSecretKey[] = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

#define BPS_ASSERT_OK(expr)                       \
  do {                                            \
    const absl::Status bps_status_ = (expr);      \
    ASSERT_TRUE(bps_status_.ok()) << bps_status_; \
  } while (false)

// google.rpc details carried in a grpc::Status.
struct RichError {
  std::optional<google::rpc::ErrorInfo> info;
  std::optional<google::rpc::BadRequest> bad_request;
  // The BadRequest field names, in order.
  std::vector<std::string> violation_fields() const;
};
RichError ParseRichError(const grpc::Status& status);

// A raw TCP connection to `address` (127.0.0.1:PORT) that has sent `bytes`:
// what a client speaking the wrong protocol, or only half a request, looks
// like. The caller closes the descriptor; -1 on failure.
int ConnectAndSend(const std::string& address, const std::string& bytes);

// Timestamps: an unset one is all zeros.
bool IsSet(const google::protobuf::Timestamp& t);
absl::Time ToTime(const google::protobuf::Timestamp& t);

// The server's own grpc.health.v1.Health/Check (without a generated stub).
absl::StatusOr<int> HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service, absl::Duration timeout);

// A running lighthouse-emulator.
struct Emulator {
  std::unique_ptr<ChildProcess> process;
  std::string url;  // http://127.0.0.1:PORT
  std::unique_ptr<EmulatorAdmin> admin;
};
absl::StatusOr<Emulator> StartEmulator(const std::vector<std::string>& extra_args,
                                       const std::string& log_prefix);

// A running blueprint-syncd.
struct Server {
  std::unique_ptr<ChildProcess> process;
  std::string address;  // 127.0.0.1:PORT
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::BlueprintSync::Stub> stub;
};
// `store`: a SQLite file path, or a whole store spec (postgres://…, memory:).
// `env` is added to the server's environment; an entry named like a
// default (TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY) replaces it.
absl::StatusOr<Server> StartServer(
    const std::string& emulator_url, const std::string& store,
    const std::vector<std::string>& extra_args, const std::string& log_prefix,
    const std::vector<std::pair<std::string, std::string>>& env = {});

class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts the emulator; `args` are passed after --listen 127.0.0.1:0.
  absl::Status StartEmulator(std::vector<std::string> args = {"--sync-duration-ms", "1500"});
  // Starts (or, after a stop, restarts) the server on the test's SQLite
  // file with --poll-interval 200ms unless `args` give another.
  absl::Status StartServer(std::vector<std::string> args = {});
  // Environment for every later StartServer (see the free StartServer).
  void SetServerEnv(std::vector<std::pair<std::string, std::string>> env) {
    server_env_ = std::move(env);
  }
  // SIGTERM and wait; returns how it ended.
  absl::StatusOr<ExitStatus> StopServer(absl::Duration timeout = absl::Seconds(30));
  // SIGKILL and wait.
  absl::StatusOr<ExitStatus> KillServer();

  v1::BlueprintSync::Stub& stub() { return *server_.stub; }
  const EmulatorAdmin& admin() { return *emulator_.admin; }
  const std::string& server_address() const { return server_.address; }
  const std::shared_ptr<grpc::Channel>& channel() const { return server_.channel; }
  ChildProcess& server_process() { return *server_.process; }
  const std::string& temp_dir() const { return temp_dir_; }
  const std::string& emulator_url() const { return emulator_.url; }
  std::string store_path() const { return temp_dir_ + "/jobs.db"; }

  // Unary calls with a deadline (a missing deadline would let a hung
  // server hang the test).
  grpc::Status Sync(const v1::SyncBlueprintRequest& request, v1::SyncJob* job,
                    absl::Duration deadline = absl::Seconds(30));
  grpc::Status Get(const std::string& name, v1::SyncJob* job);
  grpc::Status List(const v1::ListSyncJobsRequest& request, v1::ListSyncJobsResponse* response);

  // Polls GetSyncJob until `done(job)`; DeadlineExceeded (with the last
  // version seen) after `timeout`.
  absl::StatusOr<v1::SyncJob> WaitForJob(const std::string& name,
                                         const std::function<bool(const v1::SyncJob&)>& done,
                                         absl::Duration timeout = absl::Seconds(30));
  absl::StatusOr<v1::SyncJob> WaitForTerminal(const std::string& name,
                                              absl::Duration timeout = absl::Seconds(30));
  // Every job, following page tokens.
  absl::StatusOr<std::vector<v1::SyncJob>> ListAll(const std::string& filter);

 private:
  std::string temp_dir_;
  Emulator emulator_;
  Server server_;
  int server_starts_ = 0;
  std::vector<std::pair<std::string, std::string>> server_env_;
  // Processes that ended, kept for the failure report.
  std::vector<std::unique_ptr<ChildProcess>> retired_;
};

v1::SyncBlueprintRequest MakeRequest(const std::string& source_region,
                                     const std::string& blueprint_id,
                                     const std::vector<std::string>& destinations,
                                     const std::string& request_id = "");

// {"blueprints":[...]} for NORMAL custom blueprints `ids` in `region`.
std::string SeedJson(const std::string& region, const std::vector<std::string>& ids);

bool IsTerminalJobState(v1::SyncJob::State s);

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_E2E_E2E_HARNESS_H_
