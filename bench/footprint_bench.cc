// Footprint: time from exec to a SERVING health answer, idle
// RSS, the SQLite store's size with 100,000 finished jobs and the server's
// RSS on it, and the latency of one ListSyncJobs page (50 jobs, one call in
// flight) with 1k, 10k and 100k jobs in the store.
//
// Stores are filled through jobs::OpenSqliteJobStore by bench_util
// (BuildSqliteStore) and copied to disk before the server opens them. The
// server's upstream endpoint is the emulator, which it never needs to call:
// no job is unfinished.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/grpc_load.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "grpc/health/v1/health.pb.h"

namespace blueprintsync::bench {
namespace {

constexpr int kStartupRuns = 5;
constexpr absl::Duration kSettle = absl::Seconds(2);
constexpr absl::Duration kListTime = absl::Seconds(4);  // per store size, in rounds
constexpr int kListRounds = 8;
constexpr double kRssTargetMb = 30;

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool CanConnect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool IsServing(const std::string& bytes) {
  grpc::health::v1::HealthCheckResponse r;
  return r.ParseFromString(bytes) && r.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

struct Started {
  std::unique_ptr<Child> child;
  std::string address;
  double startup_ms = 0;  // exec -> first SERVING answer
};

// Starts blueprint-syncd on a port chosen up front, so the health probe can
// start knocking before the server has printed anything.
absl::StatusOr<Started> StartAndProbe(const std::string& emulator_url, const std::string& store,
                                      const std::string& log_dir) {
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  const int port = FreePort();
  Started s;
  s.address = absl::StrCat("127.0.0.1:", port);
  auto child =
      Child::Spawn({ServerBinary(), "--listen=" + s.address, "--metrics-listen=127.0.0.1:0",
                    "--lighthouse-endpoint=" + emulator_url, "--store=" + store},
                   {{"TENCENTCLOUD_SECRET_ID", kSecretId}, {"TENCENTCLOUD_SECRET_KEY", kSecretKey}},
                   log_dir + "/server.out", log_dir + "/server.err");
  if (!child.ok()) return child.status();
  s.child = *std::move(child);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!CanConnect(port)) {
    if (!s.child->Running()) return absl::InternalError("server exited; see " + log_dir);
    if (absl::Now() > deadline) return absl::DeadlineExceededError("server never listened");
    absl::SleepFor(absl::Microseconds(200));
  }
  const std::string request = grpc::health::v1::HealthCheckRequest().SerializeAsString();
  auto channel = MakeChannel(s.address);
  while (true) {
    LoadResult r = RunUnaryLoad(channel, "/grpc.health.v1.Health/Check", request, 1,
                                absl::ZeroDuration(), IsServing);
    if (r.ok == 1) break;
    if (absl::Now() > deadline) return absl::DeadlineExceededError("never SERVING");
    absl::SleepFor(absl::Microseconds(200));
  }
  s.startup_ms = absl::ToDoubleMilliseconds(absl::Now() - s.child->spawn_time());
  return s;
}

double Mb(int64_t kib) { return static_cast<double>(kib) / 1024.0; }

int Main() {
  TempDir dir("bps-bench-footprint");
  auto emulator = StartEmulator({}, dir.path());
  if (!emulator.ok()) {
    std::fprintf(stderr, "emulator: %s\n", std::string(emulator.status().message()).c_str());
    return 1;
  }

  // Startup and idle RSS with an empty store: the first start creates the
  // SQLite file (schema, WAL, fsyncs); the later ones reopen it, as every
  // restart does.
  std::vector<double> startup_ms, idle_rss_mb;
  double first_start_ms = 0;
  const std::string empty_db = absl::StrCat("sqlite:", dir.path(), "/empty.db");
  for (int i = 0; i <= kStartupRuns; ++i) {
    auto s = StartAndProbe(emulator->url, empty_db, dir.path());
    if (!s.ok()) {
      std::fprintf(stderr, "start: %s\n", std::string(s.status().message()).c_str());
      return 1;
    }
    absl::SleepFor(kSettle);
    auto rss = ReadStatusKb(s->child->pid(), "VmRSS");
    if (i == 0) {
      first_start_ms = s->startup_ms;
    } else {
      startup_ms.push_back(s->startup_ms);
    }
    idle_rss_mb.push_back(rss.ok() ? Mb(*rss) : -1);
    s->child->Stop(absl::Seconds(10));
  }
  const double startup = Median(startup_ms);
  const double idle_rss = Median(idle_rss_mb);
  PrintRow({"Startup: exec to first SERVING health answer (existing empty store)",
            absl::StrCat(Fixed(startup, 1), " ms (median of ", kStartupRuns, ")"), "", "", "", ""});
  PrintRow({"  first start, creating the SQLite store",
            absl::StrCat(Fixed(first_start_ms, 1), " ms"),
            absl::StrCat("restart ", Fixed(startup, 1), " ms"), Fixed(first_start_ms / startup, 2),
            "", ""});
  PrintRow({"Idle RSS (empty store, 2 s after SERVING)", absl::StrCat(Fixed(idle_rss, 1), " MB"),
            "", "", "<= 30 MB", MetText(idle_rss > 0 && idle_rss <= kRssTargetMb)});

  // Stores of 1k, 10k and 100k finished jobs, a server on each. The list
  // latency is measured in interleaved rounds so that load from other
  // processes falls on all three sizes alike.
  const int sizes[] = {1000, 10000, 100000};
  struct Sized {
    int n;
    int64_t bytes;
    Started server;
    int64_t rss_idle_kb;
    std::shared_ptr<grpc::Channel> channel;
    LoadResult list;
  };
  std::vector<Sized> stores;
  for (int n : sizes) {
    const std::string db = absl::StrCat(dir.path(), "/jobs-", n, ".db");
    const absl::Time f0 = absl::Now();
    if (absl::Status st = BuildSqliteStore(db, n); !st.ok()) {
      std::fprintf(stderr, "fill %d: %s\n", n, std::string(st.message()).c_str());
      return 1;
    }
    std::fprintf(stderr, "filled %d jobs in %.1f s\n", n, absl::ToDoubleSeconds(absl::Now() - f0));
    // Three starts (the last one stays up); the median startup is kept.
    std::vector<double> starts;
    absl::StatusOr<Started> s;
    for (int i = 0; i < 3; ++i) {
      if (s.ok()) s->child->Stop(absl::Seconds(10));
      s = StartAndProbe(emulator->url, "sqlite:" + db, dir.path() + "/" + std::to_string(n));
      if (!s.ok()) {
        std::fprintf(stderr, "start: %s\n", std::string(s.status().message()).c_str());
        return 1;
      }
      starts.push_back(s->startup_ms);
    }
    s->startup_ms = Median(starts);
    absl::SleepFor(kSettle);
    auto rss = ReadStatusKb(s->child->pid(), "VmRSS");
    auto channel = MakeChannel(s->address);
    stores.push_back({n, FileSize(db), *std::move(s), rss.ok() ? *rss : -1, channel, {}});
  }
  v1::ListSyncJobsRequest req;
  req.set_page_size(50);
  const std::string list_request = req.SerializeAsString();
  const std::string method = "/blueprintsync.v1.BlueprintSync/ListSyncJobs";
  auto full_page = [](const std::string& response) {
    v1::ListSyncJobsResponse r;
    return r.ParseFromString(response) && r.sync_jobs_size() == 50;
  };
  for (Sized& st : stores) {  // warm-up
    RunUnaryLoad(st.channel, method, list_request, 1, absl::Seconds(1), full_page);
  }
  for (int round = 0; round < kListRounds; ++round) {
    for (Sized& st : stores) {
      st.list.Merge(
          RunUnaryLoad(st.channel, method, list_request, 1, kListTime / kListRounds, full_page));
    }
  }
  const double list_p50_1k = stores[0].list.p50_us() / 1000;
  for (Sized& st : stores) {
    if (st.list.errors > 0 || st.list.ok == 0) {
      std::fprintf(stderr, "ListSyncJobs at %d: %s\n", st.n, st.list.first_error.c_str());
      return 1;
    }
    const double p50 = st.list.p50_us() / 1000;
    const double ratio = p50 / list_p50_1k;
    PrintRow({absl::StrCat("ListSyncJobs first page (50), 1 in flight, ", st.n, " jobs: p50"),
              absl::StrCat(Fixed(p50, 3), " ms (p99 ", Fixed(st.list.p99_us() / 1000, 3), ")"),
              absl::StrCat("1k jobs ", Fixed(list_p50_1k, 3), " ms"), Fixed(ratio, 2),
              "flat: <= 1.25x", MetText(ratio <= 1.25)});
  }
  const Sized& big = stores.back();
  auto rss_after = ReadStatusKb(big.server.child->pid(), "VmRSS");
  PrintRow({"SQLite store with 100,000 finished jobs: file size",
            absl::StrCat(Fixed(static_cast<double>(big.bytes) / 1e6, 1), " MB (", big.bytes / big.n,
                         " B/job)"),
            "", "", "", ""});
  PrintRow({"RSS with 100,000 jobs: idle / after ListSyncJobs load",
            absl::StrCat(Fixed(Mb(big.rss_idle_kb), 1), " / ",
                         Fixed(rss_after.ok() ? Mb(*rss_after) : -1, 1), " MB"),
            absl::StrCat("empty store ", Fixed(idle_rss, 1), " MB"),
            Fixed((rss_after.ok() ? Mb(*rss_after) : 0) / idle_rss, 2), "", ""});
  PrintRow({"Startup to SERVING with 100,000 jobs",
            absl::StrCat(Fixed(big.server.startup_ms, 1), " ms (median of 3)"),
            absl::StrCat("empty store ", Fixed(startup, 1), " ms"),
            Fixed(big.server.startup_ms / startup, 2), "", ""});
  for (Sized& st : stores) st.server.child->Stop(absl::Seconds(10));
  emulator->child->Stop(absl::Seconds(5));
  return 0;
}

}  // namespace
}  // namespace blueprintsync::bench

int main() { return blueprintsync::bench::Main(); }
