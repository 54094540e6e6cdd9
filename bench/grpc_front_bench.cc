// gRPC front: throughput and latency of GetSyncJob (a
// finished job) and ListSyncJobs (page_size 50) on the real blueprint-syncd,
// against the standard health Check RPC on the same server in the same run.
// The load client is bench/grpc_load.h: 16 calls in flight on one channel;
// the RPCs are interleaved over several rounds so drift in the machine's
// load hits all of them alike. The server's own CPU per call
// (/proc/PID/stat) is reported beside each, since client and server share
// the machine's two cores.
//
// Variants, each its own server and emulator:
//   sqlite      the production configuration: SQLite store with 1,000
//               finished jobs plus one job created through the service in
//               this run (the one GetSyncJob reads). Check, Get, List.
//   postgres    the replicated configuration: a throwaway PostgreSQL server
//               (tests/testing_util/postgres_server.h, loopback, fsync off)
//               holding the same 1,000 finished jobs plus the one created in
//               this run; one replica, so it leads. Check, Get, List. The
//               CPU per call is blueprint-syncd's alone, not PostgreSQL's.
//   memory      diagnosis: the memory store, so GetSyncJob skips SQLite.
//   sqlite-nodd diagnosis: SQLite, with Abseil's mutex deadlock detection
//               turned off in the unmodified server by an LD_PRELOAD shim.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/grpc_load.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "service/jobs/job_store.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::bench {
namespace {

constexpr int kOutstanding = 16;
constexpr int kRounds = 3;
constexpr absl::Duration kPerRound = absl::Seconds(3);
constexpr int kStoredJobs = 1000;

// What an interrupted run (Ctrl-C, or a SIGTERM to scripts/bench) must not
// leave behind: the running variant's directory and its PostgreSQL server
// with that server's data directory. The child processes die with this one
// (PR_SET_PDEATHSIG); directories do not. The signals are blocked in every
// thread and taken by one thread with sigwait, where stopping a server and
// deleting files is allowed, unlike in a signal handler.
absl::Mutex cleanup_mu;
std::string running_dir ABSL_GUARDED_BY(cleanup_mu);
testing::PostgresServer* running_postgres ABSL_GUARDED_BY(cleanup_mu) = nullptr;

void CleanUpOnSignal() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  // Before any thread starts, so that all of them inherit the mask.
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    absl::MutexLock lock(&cleanup_mu);
    std::error_code ec;
    if (running_postgres != nullptr) {
      running_postgres->Stop().IgnoreError();
      std::filesystem::remove_all(running_postgres->dir(), ec);
    }
    if (!running_dir.empty() && std::getenv("BPS_BENCH_KEEP") == nullptr) {
      std::filesystem::remove_all(running_dir, ec);
    }
    std::fprintf(stderr, "signal %d: cleaned up, exiting\n", sig);
    _exit(128 + sig);
  }).detach();
}

// For its lifetime, what the signal thread cleans up: the variant's directory
// and, once set, its PostgreSQL server (which must outlive this object).
class VariantCleanup {
 public:
  explicit VariantCleanup(const std::string& dir) {
    absl::MutexLock lock(&cleanup_mu);
    running_dir = dir;
  }
  void set_postgres(testing::PostgresServer* pg) {
    absl::MutexLock lock(&cleanup_mu);
    running_postgres = pg;
  }
  ~VariantCleanup() {
    absl::MutexLock lock(&cleanup_mu);
    running_dir.clear();
    running_postgres = nullptr;
  }
  VariantCleanup(const VariantCleanup&) = delete;
  VariantCleanup& operator=(const VariantCleanup&) = delete;
};

// The same finished jobs BuildSqliteStore writes, through the service's own
// PostgreSQL store; the connection is closed before the server starts.
absl::Status FillPostgresStore(const std::string& dsn, int count) {
  auto store = jobs::OpenPostgresJobStore(dsn);
  if (!store.ok()) return store.status();
  return FillFinishedJobs(store->get(), count, /*seed=*/count);
}

struct Target {
  std::string label;
  std::string method;
  std::string request;
  std::function<bool(const std::string&)> check;
  LoadResult total;
  double server_cpu_s = 0;
  double server_us_per_call() const {
    return total.ok > 0 ? server_cpu_s * 1e6 / static_cast<double>(total.ok) : 0;
  }
};

std::string LatencyText(const LoadResult& r) {
  return absl::StrCat(Fixed(r.qps(), 0), "/s (p50 ", Fixed(r.p50_us() / 1000, 2), " ms, p99 ",
                      Fixed(r.p99_us() / 1000, 2), " ms)");
}

struct Variant {
  std::string name;
  std::string store;  // "sqlite", "postgres" or "memory"
  bool preload_no_deadlock_detection = false;
  bool with_list = true;
  std::string source_blueprint;  // in ap-guangzhou, from the emulator's default seed
};

// Runs one variant; returns its targets (Check first), or empty on failure.
std::vector<Target> RunVariant(const Variant& variant) {
  TempDir dir("bps-bench-front");
  // Declared before everything that uses it, so that the server and the
  // emulator stop first (the server must not spend the end of the run
  // reconnecting to a vanished database). The destructor stops PostgreSQL
  // and deletes its directory.
  std::unique_ptr<testing::PostgresServer> postgres;
  VariantCleanup cleanup(dir.path());
  std::string store = "memory:";
  if (variant.store == "sqlite") {
    const std::string db = dir.path() + "/jobs.db";
    if (absl::Status s = BuildSqliteStore(db, kStoredJobs); !s.ok()) {
      std::fprintf(stderr, "fill: %s\n", std::string(s.message()).c_str());
      return {};
    }
    store = "sqlite:" + db;
  }
  if (variant.store == "postgres") {
    auto pg = testing::PostgresServer::Create();
    if (!pg.ok()) {
      std::fprintf(stderr, "postgres: %s\n", std::string(pg.status().message()).c_str());
      return {};
    }
    postgres = *std::move(pg);
    cleanup.set_postgres(postgres.get());
    auto dsn = postgres->CreateDatabase();
    absl::Status filled = dsn.ok() ? FillPostgresStore(*dsn, kStoredJobs) : dsn.status();
    if (!filled.ok()) {
      std::fprintf(stderr, "postgres fill: %s\n%s\n", std::string(filled.message()).c_str(),
                   postgres->LogTail().c_str());
      return {};
    }
    store = *dsn;
  }
  auto emulator = StartEmulator({"--sync-duration-ms", "300"}, dir.path());
  if (!emulator.ok()) {
    std::fprintf(stderr, "emulator: %s\n", std::string(emulator.status().message()).c_str());
    return {};
  }
  std::vector<std::pair<std::string, std::string>> env;
  if (variant.preload_no_deadlock_detection) env.emplace_back("LD_PRELOAD", BPS_BENCH_PRELOAD);
  auto server = StartServer(emulator->url, store, {"--poll-interval=200ms"}, dir.path(), env);
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", std::string(server.status().message()).c_str());
    return {};
  }

  // One job through the real path, followed to SUCCEEDED.
  auto channel = MakeChannel(server->address);
  auto stub = v1::BlueprintSync::NewStub(channel);
  v1::SyncJob job;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::SyncBlueprintRequest req;
    req.set_source_region("ap-guangzhou");
    req.set_blueprint_id(variant.source_blueprint);
    req.add_destination_regions("ap-beijing");
    req.add_destination_regions("ap-shanghai");
    grpc::Status st = stub->SyncBlueprint(&ctx, req, &job);
    if (!st.ok()) {
      std::fprintf(stderr, "SyncBlueprint: %s\n", st.error_message().c_str());
      return {};
    }
  }
  const absl::Time wait_until = absl::Now() + absl::Seconds(30);
  while (job.state() != v1::SyncJob::SUCCEEDED) {
    if (absl::Now() > wait_until || job.state() == v1::SyncJob::FAILED) {
      std::fprintf(stderr, "job %s did not succeed (state %d)\n", job.name().c_str(), job.state());
      return {};
    }
    absl::SleepFor(absl::Milliseconds(100));
    grpc::ClientContext ctx;
    v1::GetSyncJobRequest req;
    req.set_name(job.name());
    if (grpc::Status st = stub->GetSyncJob(&ctx, req, &job); !st.ok()) {
      std::fprintf(stderr, "GetSyncJob: %s\n", st.error_message().c_str());
      return {};
    }
  }

  grpc::health::v1::HealthCheckRequest check_req;
  v1::GetSyncJobRequest get_req;
  get_req.set_name(job.name());
  v1::ListSyncJobsRequest list_req;
  list_req.set_page_size(50);
  const std::string job_name = job.name();
  std::vector<Target> targets = {
      {"Check",
       "/grpc.health.v1.Health/Check",
       check_req.SerializeAsString(),
       [](const std::string& bytes) {
         grpc::health::v1::HealthCheckResponse r;
         return r.ParseFromString(bytes) &&
                r.status() == grpc::health::v1::HealthCheckResponse::SERVING;
       },
       {},
       0},
      {"GetSyncJob",
       "/blueprintsync.v1.BlueprintSync/GetSyncJob",
       get_req.SerializeAsString(),
       [job_name](const std::string& bytes) {
         v1::SyncJob r;
         return r.ParseFromString(bytes) && r.name() == job_name &&
                r.state() == v1::SyncJob::SUCCEEDED;
       },
       {},
       0},
  };
  if (variant.with_list) {
    targets.push_back({"ListSyncJobs",
                       "/blueprintsync.v1.BlueprintSync/ListSyncJobs",
                       list_req.SerializeAsString(),
                       [](const std::string& bytes) {
                         v1::ListSyncJobsResponse r;
                         return r.ParseFromString(bytes) && r.sync_jobs_size() == 50 &&
                                !r.next_page_token().empty();
                       },
                       {},
                       0});
    // Diagnosis: the same call for one job, so that the page's cost splits
    // into a per-call part and a per-job part.
    v1::ListSyncJobsRequest list_one = list_req;
    list_one.set_page_size(1);
    targets.push_back({"ListSyncJobs/1",
                       "/blueprintsync.v1.BlueprintSync/ListSyncJobs",
                       list_one.SerializeAsString(),
                       [](const std::string& bytes) {
                         v1::ListSyncJobsResponse r;
                         return r.ParseFromString(bytes) && r.sync_jobs_size() == 1 &&
                                !r.next_page_token().empty();
                       },
                       {},
                       0});
  }

  auto load_channel = MakeChannel(server->address);
  for (Target& t : targets) {  // warm-up: connections, caches, SQLite pages
    RunUnaryLoad(load_channel, t.method, t.request, kOutstanding, absl::Seconds(1), t.check);
  }
  const pid_t pid = server->child->pid();
  for (int round = 0; round < kRounds; ++round) {
    for (Target& t : targets) {
      const double cpu0 = ProcessCpuSeconds(pid);
      LoadResult r =
          RunUnaryLoad(load_channel, t.method, t.request, kOutstanding, kPerRound, t.check);
      const double cpu = ProcessCpuSeconds(pid) - cpu0;
      std::fprintf(stderr, "[%s] round %d %-12s %s, server %.1f us CPU/call, errors=%lld %s\n",
                   variant.name.c_str(), round, t.label.c_str(), LatencyText(r).c_str(),
                   r.ok > 0 ? cpu * 1e6 / static_cast<double>(r.ok) : 0.0,
                   static_cast<long long>(r.errors), r.first_error.c_str());
      t.total.Merge(r);
      t.server_cpu_s += cpu;
    }
  }
  for (const Target& t : targets) {
    if (t.total.errors > 0 || t.total.ok == 0) {
      std::fprintf(stderr, "[%s] %s: %lld errors, first: %s\n", variant.name.c_str(),
                   t.label.c_str(), static_cast<long long>(t.total.errors),
                   t.total.first_error.c_str());
      return {};
    }
  }
  server->child->Stop(absl::Seconds(10));
  emulator->child->Stop(absl::Seconds(5));
  return targets;
}

std::string Cpu(const Target& t) {
  return absl::StrCat("; server ", Fixed(t.server_us_per_call(), 0), " us CPU/call");
}

int Main() {
  CleanUpOnSignal();
  const std::vector<Target> sqlite = RunVariant({"sqlite", "sqlite", false, true, "lhbp-gzbase01"});
  if (sqlite.empty()) return 1;
  const Target& check = sqlite[0];
  const Target& get = sqlite[1];
  const Target& list = sqlite[2];
  const Target& list_one = sqlite[3];
  PrintRow({"gRPC health Check, 16 in flight", LatencyText(check.total) + Cpu(check),
            "trivial callback server, same machine kind: 20,352-25,199/s",
            Fixed(check.total.qps() / 20352.0, 2), "", ""});
  const double get_ratio = get.total.qps() / check.total.qps();
  PrintRow({"gRPC GetSyncJob (finished job, SQLite store), 16 in flight",
            LatencyText(get.total) + Cpu(get),
            absl::StrCat("Check ", Fixed(check.total.qps(), 0), "/s"), Fixed(get_ratio, 2),
            ">= 0.9x", MetText(get_ratio >= 0.9)});
  PrintRow({"gRPC ListSyncJobs page_size 50 (1k jobs), 16 in flight",
            LatencyText(list.total) + Cpu(list),
            absl::StrCat("Check ", Fixed(check.total.qps(), 0), "/s"),
            Fixed(list.total.qps() / check.total.qps(), 2), ">= 0.3x",
            MetText(list.total.qps() / check.total.qps() >= 0.3)});
  PrintRow({"  diagnosis: ListSyncJobs page_size 1 (SQLite); per job of a page of 50",
            absl::StrCat(LatencyText(list_one.total), Cpu(list_one), "; ",
                         Fixed((list.server_us_per_call() - list_one.server_us_per_call()) / 49, 1),
                         " us CPU per further job"),
            absl::StrCat("Check ", Fixed(check.total.qps(), 0), "/s"),
            Fixed(list_one.total.qps() / check.total.qps(), 2), "", ""});

  // A failure here still lets the diagnosis rows run; the exit status tells.
  int status = 0;
  const std::vector<Target> pg = RunVariant({"postgres", "postgres", false, true, "lhbp-gzbase01"});
  if (pg.empty()) {
    status = 1;
  } else {
    const double pg_get_ratio = pg[1].total.qps() / pg[0].total.qps();
    PrintRow({"gRPC GetSyncJob (finished job, PostgreSQL store), 16 in flight",
              LatencyText(pg[1].total) + Cpu(pg[1]),
              absl::StrCat("Check ", Fixed(pg[0].total.qps(), 0), "/s"), Fixed(pg_get_ratio, 2),
              ">= 0.9x", MetText(pg_get_ratio >= 0.9)});
    PrintRow({"gRPC ListSyncJobs page_size 50 (1k jobs, PostgreSQL store), 16 in flight",
              LatencyText(pg[2].total) + Cpu(pg[2]),
              absl::StrCat("Check ", Fixed(pg[0].total.qps(), 0), "/s"),
              Fixed(pg[2].total.qps() / pg[0].total.qps(), 2), ">= 0.3x",
              MetText(pg[2].total.qps() / pg[0].total.qps() >= 0.3)});
  }

  // Diagnosis variants: where GetSyncJob's extra cost goes.
  if (std::getenv("BPS_BENCH_FRONT_NO_DIAGNOSIS") != nullptr) return status;
  const std::vector<Target> memory =
      RunVariant({"memory", "memory", false, false, "lhbp-gzbase02"});
  if (memory.empty()) return 1;
  PrintRow({"  diagnosis: GetSyncJob with the memory store (no SQLite read)",
            LatencyText(memory[1].total) + Cpu(memory[1]),
            absl::StrCat("Check ", Fixed(memory[0].total.qps(), 0), "/s"),
            Fixed(memory[1].total.qps() / memory[0].total.qps(), 2), ">= 0.8x",
            MetText(memory[1].total.qps() / memory[0].total.qps() >= 0.8)});
  const std::vector<Target> nodd =
      RunVariant({"sqlite-nodd", "sqlite", true, false, "lhbp-gzbase01"});
  if (nodd.empty()) return 1;
  PrintRow(
      {"  diagnosis: Check with absl deadlock detection off (LD_PRELOAD)",
       LatencyText(nodd[0].total) + Cpu(nodd[0]),
       absl::StrCat("server CPU with it on ", Fixed(check.server_us_per_call(), 0), " us/call"),
       Fixed(nodd[0].server_us_per_call() / check.server_us_per_call(), 2), "", ""});
  PrintRow({"  diagnosis: GetSyncJob (SQLite) with absl deadlock detection off",
            LatencyText(nodd[1].total) + Cpu(nodd[1]),
            absl::StrCat("Check ", Fixed(nodd[0].total.qps(), 0), "/s"),
            Fixed(nodd[1].total.qps() / nodd[0].total.qps(), 2), ">= 0.8x",
            MetText(nodd[1].total.qps() / nodd[0].total.qps() >= 0.8)});
  return status;
}

}  // namespace
}  // namespace blueprintsync::bench

int main() { return blueprintsync::bench::Main(); }
