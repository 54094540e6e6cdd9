// High availability on PostgreSQL: two real blueprint-syncd replicas on a
// throwaway PostgreSQL server (tests/testing_util/postgres_server.h,
// loopback, fsync off) and the lighthouse-emulator, with the change feed
// (LISTEN/NOTIFY, the default) and, for the "before" figures, without it
// (--follow-change-feed=false: every replica re-reads every follow
// interval, as before the feed existed).
//
//   latency   change -> follower watcher: a QUEUED job (waiting behind a
//             job that stays RUNNING) is watched on the follower, then
//             cancelled on the leader; the time from sending CancelSyncJob
//             to the follower's watcher receiving CANCELLED (so it also
//             counts the leader's cancel and its durable write).
//   cost      the leader's store reads per follow cycle with 100 and with
//             10,000 unfinished jobs: the replicas log each cycle at debug
//             level ("follow cycle": store_queries, rows_read, took_us);
//             the figures are over the cycles of a quiet window once the
//             jobs are adopted. The leader's CPU over the window is beside.
//   failover  SIGKILL the leader; the time until the other replica leads
//             and a job recorded on it right after the kill is submitted
//             (leaves QUEUED), against the lease.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/grpc_load.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "service/jobs/job_state.h"
#include "service/jobs/job_store.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::bench {
namespace {

constexpr char kSource[] = "ap-guangzhou";
constexpr absl::Duration kLease = absl::Seconds(5);
constexpr absl::Duration kFollowInterval = absl::Seconds(1);

std::string Blueprint(int i) { return absl::StrFormat("lhbp-hab%05d", i); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Two replicas on one database, one emulator whose copies take an hour (so a
// submitted job stays RUNNING and jobs on its source stay QUEUED).
struct Deployment {
  std::unique_ptr<TempDir> dir;
  std::string dsn;
  Emulator emulator;
  std::vector<std::unique_ptr<Server>> replicas;
  std::vector<std::unique_ptr<v1::BlueprintSync::Stub>> stubs;
  int leader = -1;
};

bool Leads(const Server& s) {
  const std::string out = ReadFile(s.child->stdout_path());
  const size_t became = out.rfind("\"msg\":\"leading: resumed unfinished jobs\"");
  const size_t lost = out.rfind("\"msg\":\"no longer leading");
  return became != std::string::npos && (lost == std::string::npos || lost < became);
}

absl::Status StartReplica(Deployment& d, bool feed, int index) {
  const std::string log_dir =
      absl::StrCat(d.dir->path(), "/replica", index, "-", absl::ToUnixMicros(absl::Now()));
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", log_dir, ": ", ec.message()));
  auto s = StartServer(
      d.emulator.url, d.dsn,
      {"--leader-lease=" + absl::FormatDuration(kLease),
       "--follow-interval=" + absl::FormatDuration(kFollowInterval),
       absl::StrCat("--follow-change-feed=", feed ? "true" : "false"),
       "--follow-resync-interval=30s", "--log-level=debug"},
      log_dir);
  if (!s.ok()) return s.status();
  auto server = std::make_unique<Server>(*std::move(s));
  auto stub = v1::BlueprintSync::NewStub(MakeChannel(server->address));
  if (index < static_cast<int>(d.replicas.size())) {
    d.replicas[index] = std::move(server);
    d.stubs[index] = std::move(stub);
  } else {
    d.replicas.push_back(std::move(server));
    d.stubs.push_back(std::move(stub));
  }
  return absl::OkStatus();
}

absl::Status AwaitLeader(Deployment& d, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    for (size_t i = 0; i < d.replicas.size(); ++i) {
      if (d.replicas[i] != nullptr && Leads(*d.replicas[i])) {
        d.leader = static_cast<int>(i);
        return absl::OkStatus();
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("no replica leads");
}

absl::StatusOr<Deployment> Deploy(testing::PostgresServer* pg, bool feed, const std::string& name) {
  Deployment d;
  d.dir = std::make_unique<TempDir>("bps-bench-ha-" + name);
  auto dsn = pg->CreateDatabase();
  if (!dsn.ok()) return dsn.status();
  d.dsn = *dsn;
  auto emu = StartEmulator({"--sync-duration-ms", "3600000"}, d.dir->path());
  if (!emu.ok()) return emu.status();
  d.emulator = *std::move(emu);
  std::string body = "{\"blueprints\":[";
  for (int i = 0; i < 8; ++i) {
    absl::StrAppend(&body, i == 0 ? "" : ",", "{\"Region\":\"", kSource, "\",\"BlueprintId\":\"",
                    Blueprint(i), "\",\"BlueprintName\":\"bench-ha-", i,
                    "\",\"BlueprintState\":\"NORMAL\"}");
  }
  body += "]}";
  if (auto s = HttpPost(d.emulator.url + "/_emulator/blueprints", body); !s.ok()) {
    return s.status();
  }
  for (int i = 0; i < 2; ++i) {
    if (absl::Status s = StartReplica(d, feed, i); !s.ok()) return s;
  }
  if (absl::Status s = AwaitLeader(d, absl::Seconds(30)); !s.ok()) return s;
  // Both replicas' feeds listen before anything is measured.
  if (feed) {
    for (auto& r : d.replicas) {
      if (auto l = r->child->WaitForLine("change feed listening", absl::Seconds(30)); !l.ok()) {
        return l.status();
      }
    }
  }
  return d;
}

v1::SyncBlueprintRequest Request(int blueprint, const std::string& dest) {
  v1::SyncBlueprintRequest req;
  req.set_source_region(kSource);
  req.set_blueprint_id(Blueprint(blueprint));
  req.add_destination_regions(dest);
  return req;
}

absl::StatusOr<v1::SyncJob> Sync(v1::BlueprintSync::Stub* stub, const v1::SyncBlueprintRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::SyncJob job;
  grpc::Status st = stub->SyncBlueprint(&ctx, req, &job);
  if (!st.ok()) return absl::UnknownError("SyncBlueprint: " + st.error_message());
  return job;
}

absl::StatusOr<v1::SyncJob> Get(v1::BlueprintSync::Stub* stub, const std::string& name) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetSyncJobRequest req;
  req.set_name(name);
  v1::SyncJob job;
  grpc::Status st = stub->GetSyncJob(&ctx, req, &job);
  if (!st.ok()) return absl::UnknownError("GetSyncJob: " + st.error_message());
  return job;
}

// --- change -> follower watcher ---

// One sample: microseconds from sending CancelSyncJob (leader) to the
// follower's watcher receiving CANCELLED.
absl::StatusOr<double> OneChange(Deployment& d) {
  v1::BlueprintSync::Stub* leader = d.stubs[d.leader].get();
  v1::BlueprintSync::Stub* follower = d.stubs[1 - d.leader].get();
  auto queued = Sync(leader, Request(0, "ap-beijing"));
  if (!queued.ok()) return queued.status();
  if (queued->state() != v1::SyncJob::QUEUED) {
    return absl::InternalError("expected a QUEUED job, got " + queued->ShortDebugString());
  }
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchSyncJobRequest watch;
  watch.set_name(queued->name());
  auto reader = follower->WatchSyncJob(&watch_ctx, watch);
  v1::SyncJob seen;
  if (!reader->Read(&seen)) return absl::InternalError("the follower's watch ended at once");
  absl::Mutex mu;
  absl::Time cancelled_seen = absl::InfiniteFuture();
  std::thread read_on([&] {
    v1::SyncJob job;
    while (reader->Read(&job)) {
      if (job.state() == v1::SyncJob::CANCELLED) {
        absl::MutexLock lock(&mu);
        cancelled_seen = absl::Now();
        break;
      }
    }
  });
  const absl::Time sent = absl::Now();
  grpc::ClientContext cancel_ctx;
  cancel_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::CancelSyncJobRequest cancel;
  cancel.set_name(queued->name());
  v1::SyncJob after;
  grpc::Status st = leader->CancelSyncJob(&cancel_ctx, cancel, &after);
  {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(
                            +[](absl::Time* t) { return *t != absl::InfiniteFuture(); },
                            &cancelled_seen),
                        absl::Seconds(60));
  }
  watch_ctx.TryCancel();
  read_on.join();
  if (!st.ok()) return absl::UnknownError("CancelSyncJob: " + st.error_message());
  if (cancelled_seen == absl::InfiniteFuture()) {
    return absl::DeadlineExceededError("the follower's watcher never saw CANCELLED");
  }
  return absl::ToDoubleMicroseconds(cancelled_seen - sent);
}

absl::StatusOr<std::vector<double>> MeasureLatency(testing::PostgresServer* pg, bool feed,
                                                   int samples) {
  auto d = Deploy(pg, feed, feed ? "latency-feed" : "latency-poll");
  if (!d.ok()) return d.status();
  // The job every sample's job waits behind.
  auto running = Sync(d->stubs[d->leader].get(), Request(0, "ap-shanghai"));
  if (!running.ok()) return running.status();
  std::vector<double> out;
  for (int i = 0; i < samples; ++i) {
    auto us = OneChange(*d);
    if (!us.ok()) return us.status();
    out.push_back(*us);
  }
  return out;
}

// --- the leader's store cost per follow cycle ---

jobs::JobRecord QueuedRecord(int blueprint, int i) {
  jobs::JobRecord rec;
  v1::SyncJob* job = rec.mutable_job();
  job->set_name("syncJobs/" + jobs::NewJobName());
  job->set_state(v1::SyncJob::QUEUED);
  job->set_source_region(kSource);
  job->set_blueprint_id(Blueprint(blueprint));
  job->set_creator(jobs::kAnonymousCreator);
  const absl::Time now = absl::Now();
  v1::Destination* d = job->add_destinations();
  d->set_region(i % 2 == 0 ? "ap-beijing" : "ap-chengdu");
  d->set_state(v1::Destination::PENDING);
  *d->mutable_update_time() = jobs::ToProto(now);
  *job->mutable_create_time() = jobs::ToProto(now);
  *job->mutable_update_time() = jobs::ToProto(now);
  *job->mutable_deadline() = jobs::ToProto(now + absl::Hours(6));
  rec.set_phase(jobs::JobRecord::NOT_SUBMITTED);
  rec.set_request_fingerprint(absl::StrCat("bench-", i));
  return rec;
}

// Records `count` QUEUED jobs on blueprint 1 as another replica would (4
// writers).
absl::Status RecordQueued(const std::string& dsn, int count) {
  std::atomic<int> next{0};
  absl::Mutex mu;
  absl::Status first;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&] {
      auto store = jobs::OpenPostgresJobStore(dsn);
      if (!store.ok()) {
        absl::MutexLock lock(&mu);
        first.Update(store.status());
        return;
      }
      for (int i; (i = next.fetch_add(1)) < count;) {
        auto created = (*store)->CreateJob(QueuedRecord(1, i));
        if (!created.ok()) {
          absl::MutexLock lock(&mu);
          first.Update(created.status());
          return;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  return first;
}

struct Cycle {
  bool full = false;
  int64_t queries = 0;
  int64_t rows = 0;
  int64_t took_us = 0;
};

int64_t Field(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  const size_t at = line.find(k);
  if (at == std::string::npos) return -1;
  int64_t v = -1;
  const size_t start = at + k.size();
  size_t end = start;
  while (end < line.size() && (isdigit(line[end]) || line[end] == '-')) ++end;
  if (!absl::SimpleAtoi(line.substr(start, end - start), &v)) return -1;
  return v;
}

std::vector<Cycle> CyclesIn(const std::string& log, size_t from) {
  std::vector<Cycle> out;
  std::istringstream in(log.substr(std::min(from, log.size())));
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"msg\":\"follow cycle\"") == std::string::npos) continue;
    Cycle c;
    c.full = line.find("\"full_read\":true") != std::string::npos;
    c.queries = Field(line, "store_queries");
    c.rows = Field(line, "rows_read");
    c.took_us = Field(line, "took_us");
    out.push_back(c);
  }
  return out;
}

struct CostFigures {
  std::vector<Cycle> cycles;  // in the quiet window
  double leader_cpu_ms_per_s = 0;
};

absl::StatusOr<CostFigures> MeasureCost(testing::PostgresServer* pg, bool feed, int unfinished) {
  auto d = Deploy(pg, feed, absl::StrCat("cost-", feed ? "feed-" : "poll-", unfinished));
  if (!d.ok()) return d.status();
  auto running = Sync(d->stubs[d->leader].get(), Request(1, "ap-shanghai"));
  if (!running.ok()) return running.status();
  if (absl::Status s = RecordQueued(d->dsn, unfinished); !s.ok()) return s;
  const std::string log_path = d->replicas[d->leader]->child->stdout_path();
  // Adopted once a cycle has read nothing new (polling: one full re-read
  // returns them all). Then a quiet window of 12 cycles.
  const absl::Time settle_by = absl::Now() + absl::Minutes(2);
  while (absl::Now() < settle_by) {
    absl::SleepFor(absl::Seconds(2));
    const std::string log = ReadFile(log_path);
    std::vector<Cycle> recent = CyclesIn(log, log.size() > 20000 ? log.size() - 20000 : 0);
    if (recent.size() < 2) continue;
    const Cycle& last = recent.back();
    const Cycle& before = recent[recent.size() - 2];
    if (feed ? (last.rows == 0 && before.rows == 0) : last.rows >= unfinished + 1) break;
  }
  CostFigures f;
  const pid_t pid = d->replicas[d->leader]->child->pid();
  const size_t from = ReadFile(log_path).size();
  const double cpu0 = ProcessCpuSeconds(pid);
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(12));
  const double cpu1 = ProcessCpuSeconds(pid);
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  const std::string log = ReadFile(log_path);
  f.cycles = CyclesIn(log, from);
  f.leader_cpu_ms_per_s = (cpu1 - cpu0) * 1000 / secs;
  if (f.cycles.empty()) return absl::InternalError("no follow cycles logged in the window");
  return f;
}

// --- failover ---

// Microseconds from SIGKILL of the leader to (a) the other replica leading
// and (b) a job recorded on it right after the kill leaving QUEUED.
absl::StatusOr<std::pair<double, double>> OneFailover(Deployment& d, int blueprint) {
  const int old = d.leader;
  const int survivor = 1 - old;
  const absl::Time killed = absl::Now();
  kill(d.replicas[old]->child->pid(), SIGKILL);
  // Recorded on the survivor while nobody leads; its caller is answered
  // QUEUED at its reply deadline (or as soon as it is submitted).
  absl::StatusOr<v1::SyncJob> job;
  std::thread submit([&] { job = Sync(d.stubs[survivor].get(), Request(blueprint, "ap-beijing")); });
  absl::Time led = absl::InfiniteFuture();
  const absl::Time end = killed + kLease * 4 + absl::Seconds(10);
  while (absl::Now() < end && led == absl::InfiniteFuture()) {
    if (Leads(*d.replicas[survivor])) led = absl::Now();
    absl::SleepFor(absl::Milliseconds(10));
  }
  submit.join();
  if (led == absl::InfiniteFuture()) return absl::DeadlineExceededError("nobody took over");
  if (!job.ok()) return job.status();
  absl::Time progressed = absl::InfiniteFuture();
  while (absl::Now() < end) {
    auto got = Get(d.stubs[survivor].get(), job->name());
    if (got.ok() && got->state() != v1::SyncJob::QUEUED) {
      progressed = absl::Now();
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (progressed == absl::InfiniteFuture()) return absl::DeadlineExceededError("job stuck");
  d.leader = survivor;
  return std::make_pair(absl::ToDoubleMicroseconds(led - killed),
                        absl::ToDoubleMicroseconds(progressed - killed));
}

std::string Ms(double us) { return Fixed(us / 1000, 1) + " ms"; }

int Main() {
  auto pg = testing::PostgresServer::Create();
  if (!pg.ok()) {
    std::fprintf(stderr, "postgres: %s\n", std::string(pg.status().message()).c_str());
    return 1;
  }
  int failures = 0;
  auto fail = [&](const std::string& what, const absl::Status& s) {
    std::fprintf(stderr, "%s: %s\n", what.c_str(), std::string(s.message()).c_str());
    PrintRow({"HA " + what + ": FAILED", std::string(s.message()), "", "", "", "NO"});
    ++failures;
  };

  // Change -> follower watcher.
  auto feed_lat = MeasureLatency(pg->get(), true, 200);
  auto poll_lat = MeasureLatency(pg->get(), false, 30);
  if (!feed_lat.ok()) fail("latency (feed)", feed_lat.status());
  if (!poll_lat.ok()) fail("latency (polling)", poll_lat.status());
  if (feed_lat.ok()) {
    const double p50 = Percentile(*feed_lat, 50), p99 = Percentile(*feed_lat, 99);
    std::string reference = "-", ratio = "";
    if (poll_lat.ok()) {
      reference = absl::StrCat("p50 ", Ms(Percentile(*poll_lat, 50)), " / p99 ",
                               Ms(Percentile(*poll_lat, 99)), " polling every 1 s (before)");
      ratio = Fixed(Percentile(*poll_lat, 99) / p99, 1) + "x";
    }
    PrintRow({absl::StrCat("HA PostgreSQL, 2 replicas: change -> follower watcher (", feed_lat->size(),
                           " changes)"),
              absl::StrCat("p50 ", Ms(p50), " / p99 ", Ms(p99)), reference, ratio,
              "p99 <= 100 ms", MetText(p99 <= 100000)});
  }

  // The leader's store cost per follow cycle. Polling (before) first: its
  // cycle is also what the feed's safety net costs once per 30 s.
  std::map<int, CostFigures> polling;
  for (bool feed : {false, true}) {
    std::vector<std::pair<int, CostFigures>> at;
    for (int n : {100, 10000}) {
      auto f = MeasureCost(pg->get(), feed, n);
      if (!f.ok()) {
        fail(absl::StrCat("store cost ", feed ? "(feed) " : "(polling) ", n), f.status());
        continue;
      }
      if (!feed) polling[n] = *f;
      at.emplace_back(n, *std::move(f));
    }
    for (const auto& [n, f] : at) {
      std::vector<double> queries, rows, took;
      for (const Cycle& c : f.cycles) {
        queries.push_back(static_cast<double>(c.queries));
        rows.push_back(static_cast<double>(c.rows));
        took.push_back(static_cast<double>(c.took_us));
      }
      std::string value = absl::StrCat(
          "p50 ", Fixed(Median(queries), 0), " queries / ", Fixed(Median(rows), 0), " rows / ",
          Fixed(Median(took), 0), " us, max ", Fixed(Percentile(rows, 100), 0), " rows (",
          f.cycles.size(), " cycles); leader CPU ", Fixed(f.leader_cpu_ms_per_s, 1), " ms/s");
      std::string reference = "-";
      if (feed && polling.count(n)) {
        std::vector<double> before_took;
        for (const Cycle& c : polling[n].cycles) before_took.push_back(c.took_us);
        reference = absl::StrCat("polling: ", polling[n].cycles.empty() ? 0 : polling[n].cycles.back().rows,
                                 " rows / ", Fixed(Median(before_took) / 1000, 1),
                                 " ms every cycle; the feed's safety net reads that once per 30 s");
      }
      PrintRow({absl::StrCat("HA leader store reads per follow cycle, ", n, " unfinished jobs, ",
                             feed ? "change feed" : "polling (before)"),
                value, reference, "", feed ? "flat in the number of unfinished jobs" : "",
                feed ? MetText(Median(rows) <= 1 && Median(queries) <= 1) : "-"});
    }
  }

  // Failover.
  {
    auto d = Deploy(pg->get(), true, "failover");
    if (!d.ok()) {
      fail("failover", d.status());
    } else {
      std::vector<double> lead, progress;
      for (int round = 0; round < 3; ++round) {
        auto r = OneFailover(*d, 2 + round);
        if (!r.ok()) {
          fail("failover", r.status());
          break;
        }
        lead.push_back(r->first);
        progress.push_back(r->second);
        // The killed replica comes back (as a follower) for the next round.
        const int dead = 1 - d->leader;
        if (absl::Status s = StartReplica(*d, true, dead); !s.ok()) {
          fail("failover restart", s);
          break;
        }
        absl::SleepFor(absl::Seconds(2));
      }
      if (!progress.empty()) {
        std::string each;
        for (size_t i = 0; i < progress.size(); ++i) {
          absl::StrAppend(&each, i ? ", " : "", Fixed(lead[i] / 1e6, 2), "/",
                          Fixed(progress[i] / 1e6, 2), " s");
        }
        const double worst = *std::max_element(progress.begin(), progress.end());
        const absl::Duration bound = kLease + kLease / 5 + kFollowInterval;
        PrintRow({absl::StrCat("HA failover: SIGKILL leader -> other leads / job submitted (",
                               progress.size(), " rounds)"),
                  each, absl::StrCat("lease ", absl::FormatDuration(kLease)),
                  Fixed(worst / 1e6 / absl::ToDoubleSeconds(kLease), 2) + "x lease",
                  absl::StrCat("<= lease + lease/5 + follow interval (",
                               absl::FormatDuration(bound), ")"),
                  MetText(worst <= absl::ToDoubleMicroseconds(bound))});
      }
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace blueprintsync::bench

int main() { return blueprintsync::bench::Main(); }
