// End-to-end: the SQLite store's guards, on real processes and real files.
//  - One server per SQLite file: a second one exits non-zero naming the
//    holder; a SIGKILLed server's lock dies with it, so it restarts at once.
//  - Storage faults are service health: a deleted database file or a full
//    disk (a small tmpfs; needs root, else skipped) turns readiness
//    NOT_SERVING, new SyncBlueprint calls get UNAVAILABLE naming the
//    problem, and nothing is executed upstream for a job that was not
//    recorded; the full disk recovers by itself when space returns.
//  - A database file that cannot be opened for writing is refused at start.
#include <fcntl.h>
#include <httplib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "service/metrics/testing/prometheus_text.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using v1::SyncJob;

constexpr int kServing = 1;
constexpr int kNotServing = 2;

// Generous for a loaded machine running sanitized builds.
bool PollUntil(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(60)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return done();
}

int Readiness(const std::shared_ptr<grpc::Channel>& channel) {
  absl::StatusOr<int> r = HealthCheck(channel, "readiness", absl::Seconds(10));
  return r.ok() ? *r : -1;
}

int64_t Executed(const EmulatorAdmin& admin) {
  auto stats = admin.Stats();
  EXPECT_TRUE(stats.ok()) << stats.status();
  return stats.ok() ? static_cast<int64_t>(stats->sync_submissions.size()) : -1;
}

grpc::Status SyncOn(v1::BlueprintSync::Stub& stub, const v1::SyncBlueprintRequest& request,
                    SyncJob* job) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return stub.SyncBlueprint(&ctx, request, job);
}

// The /metrics text of a server started with --metrics-listen=127.0.0.1:0
// ("" if it cannot be had).
std::string ScrapeMetrics(ChildProcess& server) {
  for (const std::string& line : server.StdoutLines()) {
    if (!absl::StrContains(line, "\"msg\":\"metrics serving\"")) continue;
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("address")) return "";
    const std::string address = doc["address"].GetString();
    const size_t colon = address.rfind(':');
    httplib::Client client(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
    client.set_connection_timeout(10, 0);
    client.set_read_timeout(10, 0);
    auto res = client.Get("/metrics");
    return res && res->status == 200 ? res->body : "";
  }
  return "";
}

class StoreE2eTest : public E2eTest {};

TEST_F(StoreE2eTest, SecondServerOnTheSameFileIsRefusedNamingTheHolder) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());

  ChildProcessOptions o;
  o.argv = {BLUEPRINT_SYNCD,         "--listen",    "127.0.0.1:0",
            "--metrics-listen=",     "--store",     absl::StrCat("sqlite:", store_path()),
            "--lighthouse-endpoint", emulator_url()};
  o.unset_env = {"BLUEPRINT_SYNC_*", "TENCENTCLOUD_*"};
  o.env = {{"TENCENTCLOUD_SECRET_ID", kTestSecretId}, {"TENCENTCLOUD_SECRET_KEY", kTestSecretKey}};
  auto second = RunToCompletion(std::move(o), absl::Seconds(60));
  BPS_ASSERT_OK(second.status());
  EXPECT_TRUE(second->status.exited && second->status.code != 0) << second->status.ToString();
  EXPECT_THAT(second->out + second->err,
              AllOf(HasSubstr("in use by another blueprint-syncd"),
                    HasSubstr(absl::StrCat("pid ", server_process().pid(), " on host ")),
                    HasSubstr(store_path() + ".lock")));

  // The first one is untouched.
  SyncJob job;
  grpc::Status s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Executed(admin()), 1);
}

TEST_F(StoreE2eTest, KilledServerRestartsAtOnceOnTheSameFile) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  BPS_ASSERT_OK(KillServer().status());
  // No wait, no stale-lock cleanup: the lock died with the process.
  BPS_ASSERT_OK(StartServer());
  EXPECT_EQ(Readiness(channel()), kServing);
}

TEST_F(StoreE2eTest, DeletedDatabaseTurnsNotServingAndSubmitsNothing) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  ASSERT_EQ(Readiness(channel()), kServing);

  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::remove((store_path() + suffix).c_str());
  }
  // At once, before any probe may have run: the job's own write notices.
  SyncJob job;
  grpc::Status s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("deleted or replaced"));

  EXPECT_TRUE(PollUntil([&] { return Readiness(channel()) == kNotServing; }))
      << "readiness stayed " << Readiness(channel());
  s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase02", {"ap-shanghai"}), &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("file_replaced"), HasSubstr("restart needed")));
  EXPECT_EQ(Executed(admin()), 0) << "a copy was made by a job no store holds";
  EXPECT_THAT(server_process().Stdout(), HasSubstr("readiness NOT_SERVING"));
  // It stays so: the file it has open is gone for good.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(Readiness(channel()), kNotServing);
}

// A tmpfs of its own, so the test can fill it and free it again.
class SmallDisk {
 public:
  explicit SmallDisk(std::string dir) : dir_(std::move(dir)) {
    mkdir(dir_.c_str(), 0755);
    mounted_ = mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=8m") == 0;
    error_ = mounted_ ? 0 : errno;
  }
  ~SmallDisk() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  std::string error() const { return std::strerror(error_); }
  // Writes a filler file until the disk is full.
  bool Fill() {
    const int fd = open(filler().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return false;
    std::string chunk(4096, 'f');
    while (write(fd, chunk.data(), chunk.size()) > 0) {
    }
    const bool full = errno == ENOSPC;
    close(fd);
    return full;
  }
  void Free() { std::remove(filler().c_str()); }

 private:
  std::string filler() const { return dir_ + "/filler"; }
  const std::string dir_;
  bool mounted_ = false;
  int error_ = 0;
};

TEST_F(StoreE2eTest, FullDiskTurnsNotServingSubmitsNothingAndRecovers) {
  SmallDisk disk(temp_dir() + "/small");
  if (!disk.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.error()
                 << "); this case needs root (CAP_SYS_ADMIN)";
  }
  BPS_ASSERT_OK(StartEmulator());
  auto server =
      testing::StartServer(emulator_url(), temp_dir() + "/small/jobs.db",
                           {"--metrics-listen=127.0.0.1:0"}, temp_dir() + "/small_server");
  BPS_ASSERT_OK(server.status());
  // Stopped before the tmpfs goes (the disk is declared first).
  absl::Cleanup stop = [&] { server->process->Kill().IgnoreError(); };
  ASSERT_EQ(Readiness(server->channel), kServing);

  ASSERT_TRUE(disk.Fill());
  SyncJob job;
  grpc::Status s =
      SyncOn(*server->stub, MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_TRUE(PollUntil([&] { return Readiness(server->channel) == kNotServing; }))
      << "readiness stayed " << Readiness(server->channel);
  s = SyncOn(*server->stub, MakeRequest("ap-guangzhou", "lhbp-gzbase02", {"ap-beijing"}), &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("no_space"));
  EXPECT_EQ(Executed(admin()), 0) << "a copy was made by a job no store holds";
  PrometheusText full(ScrapeMetrics(*server->process));
  EXPECT_EQ(full.Sum("blueprintsync_store_healthy"), 0);
  EXPECT_EQ(full.Sum("blueprintsync_store_problem", {{"reason", "no_space"}}), 1);

  disk.Free();
  EXPECT_TRUE(PollUntil([&] { return Readiness(server->channel) == kServing; }))
      << "readiness stayed " << Readiness(server->channel);
  s = SyncOn(*server->stub, MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Executed(admin()), 1);
  EXPECT_THAT(server->process->Stdout(), HasSubstr("store writable again"));
  PrometheusText recovered(ScrapeMetrics(*server->process));
  EXPECT_EQ(recovered.Sum("blueprintsync_store_healthy"), 1);
  EXPECT_EQ(recovered.Sum("blueprintsync_store_problem"), 0);
}

TEST_F(StoreE2eTest, DatabaseThatCannotBeWrittenIsRefusedAtStart) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  BPS_ASSERT_OK(StopServer().status());
  // chmod stops other users; root needs the immutable flag (not every file
  // system has it).
  const std::string db = store_path();
  bool protected_file = false;
  if (geteuid() == 0) {
    protected_file = std::system(absl::StrCat("chattr +i '", db, "' 2>/dev/null").c_str()) == 0;
  } else {
    protected_file = chmod(db.c_str(), 0444) == 0;
  }
  if (!protected_file) GTEST_SKIP() << "cannot make " << db << " read-only here";
  absl::Cleanup unprotect = [&] {
    if (geteuid() == 0) std::system(absl::StrCat("chattr -i '", db, "'").c_str());
  };
  absl::Status started = StartServer();
  ASSERT_FALSE(started.ok()) << "a server started on a database it cannot write";
  EXPECT_THAT(started.message(), HasSubstr("cannot be opened for writing"));
}

}  // namespace
}  // namespace blueprintsync::testing
