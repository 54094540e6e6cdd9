// Watch fan-out: many concurrent WatchSyncJob streams on the real
// blueprint-syncd, and how long one change of a job takes to reach all of
// its watchers.
//
// Variants, each its own server and emulator (memory store: what is
// measured is the fan-out, not the store's write):
//   one job     10,000 streams on one job.
//   1,000 jobs  10 streams on each of 1,000 jobs.
// The watched jobs are QUEUED behind a job that stays RUNNING (the
// emulator's copies take an hour), so nothing changes them until the bench
// cancels them: CancelSyncJob makes a QUEUED job CANCELLED, one change that
// is also its last, after which every stream must end with OK.
//
// Figures: the server's RSS (VmRSS, /proc/PID/status) before the watches
// and once every stream has its first version, the difference per stream,
// and, per stream, the time from the CancelSyncJob call to the stream's
// receipt of CANCELLED: p50, p99 and max over all streams. For 1,000 jobs
// the 1,000 cancels go out at once (16 in flight), each stream timed from
// its own job's cancel.
//
// The client is gRPC's callback API, 100 channels (one connection each,
// 100 streams per connection: the server's --max-concurrent-streams default;
// no server limit is raised). Client and server share the machine's cores.
//
// BPS_BENCH_SERVER (environment) runs another blueprint-syncd binary, e.g.
// one built from an earlier commit, for before/after figures.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/grpc_load.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"

namespace blueprintsync::bench {
namespace {

constexpr int kChannels = 100;
constexpr char kSource[] = "lhbp-gzbase01";  // the emulator's default seed, ap-guangzhou

int64_t NowNanos() { return absl::GetCurrentTimeNanos(); }

// What every stream saw, indexed by stream.
struct Observed {
  explicit Observed(int n) : first(n), changed(n), ended_ok(n) {}
  std::vector<std::atomic<int64_t>> first;    // first version received (ns)
  std::vector<std::atomic<int64_t>> changed;  // CANCELLED received (ns)
  std::vector<std::atomic<bool>> ended_ok;
  std::atomic<int> with_first{0};
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  absl::Mutex mu;
  std::string first_error ABSL_GUARDED_BY(mu);
};

class WatchStream final : public grpc::ClientReadReactor<v1::SyncJob> {
 public:
  WatchStream(v1::BlueprintSync::Stub* stub, const std::string& job, int index, Observed* seen)
      : index_(index), seen_(seen) {
    request_.set_name(job);
    stub->async()->WatchSyncJob(&context_, &request_, this);
    StartRead(&version_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const int64_t now = NowNanos();
    if (seen_->first[index_].load() == 0) {
      seen_->first[index_] = now;
      ++seen_->with_first;
    }
    if (version_.state() == v1::SyncJob::CANCELLED) seen_->changed[index_] = now;
    StartRead(&version_);
  }

  void Abandon() { context_.TryCancel(); }

  void OnDone(const grpc::Status& s) override {
    seen_->ended_ok[index_] = s.ok();
    if (!s.ok()) {
      ++seen_->failed;
      absl::MutexLock lock(&seen_->mu);
      if (seen_->first_error.empty()) {
        seen_->first_error = absl::StrCat(s.error_code(), ": ", s.error_message());
      }
    }
    ++seen_->done;
  }

 private:
  grpc::ClientContext context_;
  v1::WatchSyncJobRequest request_;
  v1::SyncJob version_;
  const int index_;
  Observed* const seen_;
};

absl::StatusOr<v1::SyncJob> Submit(v1::BlueprintSync::Stub* stub, const std::string& dest) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::SyncBlueprintRequest req;
  req.set_source_region("ap-guangzhou");
  req.set_blueprint_id(kSource);
  req.add_destination_regions(dest);
  v1::SyncJob job;
  grpc::Status st = stub->SyncBlueprint(&ctx, req, &job);
  if (!st.ok()) return absl::InternalError("SyncBlueprint: " + st.error_message());
  return job;
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

struct Result {
  int streams = 0;
  int64_t rss_before_kb = 0;
  int64_t rss_after_kb = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double all_ms = 0;  // first cancel sent -> last stream has CANCELLED
  // GetSyncJob of the owner job, one after another from the first cancel
  // until every stream has CANCELLED: what other callers wait meanwhile.
  double get_p50_ms = 0, get_max_ms = 0;
  int gets = 0;
};

// Runs `jobs` jobs with `per_job` streams each; nullopt on failure.
std::optional<Result> RunVariant(const std::string& label, int jobs, int per_job) {
  TempDir dir("bps-bench-watch");
  auto emulator = StartEmulator({"--sync-duration-ms", "3600000"}, dir.path());
  if (!emulator.ok()) {
    std::fprintf(stderr, "emulator: %s\n", std::string(emulator.status().message()).c_str());
    return std::nullopt;
  }
  auto server = StartServer(emulator->url, "memory:", {}, dir.path());
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", std::string(server.status().message()).c_str());
    return std::nullopt;
  }
  const pid_t pid = server->child->pid();
  auto control = v1::BlueprintSync::NewStub(MakeChannel(server->address));

  // The job that owns the source (RUNNING for the whole run), then the
  // watched ones, QUEUED behind it.
  auto owner = Submit(control.get(), "ap-beijing");
  if (!owner.ok()) {
    std::fprintf(stderr, "%s\n", std::string(owner.status().message()).c_str());
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (int j = 0; j < jobs; ++j) {
    auto job = Submit(control.get(), "ap-shanghai");
    if (!job.ok() || job->state() != v1::SyncJob::QUEUED) {
      std::fprintf(stderr, "job %d not QUEUED: %s\n", j,
                   job.ok() ? job->DebugString().c_str()
                            : std::string(job.status().message()).c_str());
      return std::nullopt;
    }
    names.push_back(job->name());
  }

  std::vector<std::unique_ptr<v1::BlueprintSync::Stub>> stubs;
  for (int c = 0; c < kChannels; ++c) {
    stubs.push_back(v1::BlueprintSync::NewStub(MakeChannel(server->address)));
  }
  absl::SleepFor(absl::Seconds(1));  // let the server settle after the submissions
  Result r;
  r.streams = jobs * per_job;
  r.rss_before_kb = ReadStatusKb(pid, "VmRSS").value_or(-1);

  Observed seen(r.streams);
  std::vector<std::unique_ptr<WatchStream>> streams;
  streams.reserve(r.streams);
  // A stream may be destroyed only after its OnDone.
  auto give_up = [&]() -> std::optional<Result> {
    for (auto& s : streams) s->Abandon();
    WaitUntil([&] { return seen.done.load() >= static_cast<int>(streams.size()); },
              absl::Seconds(60));
    return std::nullopt;
  };
  for (int i = 0; i < r.streams; ++i) {
    streams.push_back(std::make_unique<WatchStream>(stubs[i % kChannels].get(),
                                                    names[i / per_job], i, &seen));
  }
  if (!WaitUntil([&] { return seen.with_first.load() + seen.failed.load() >= r.streams; },
                 absl::Seconds(120)) ||
      seen.failed.load() > 0) {
    {
      absl::MutexLock lock(&seen.mu);
      std::fprintf(stderr, "[%s] %d of %d streams started, %d failed: %s\n", label.c_str(),
                   seen.with_first.load(), r.streams, seen.failed.load(),
                   seen.first_error.c_str());
    }
    return give_up();
  }
  absl::SleepFor(absl::Seconds(1));
  r.rss_after_kb = ReadStatusKb(pid, "VmRSS").value_or(-1);

  // The change: cancel every watched job, 16 cancels in flight, while
  // another caller reads a job the change does not touch.
  std::vector<int64_t> cancel_sent(jobs);
  std::vector<double> get_ms;
  std::thread prober([&] {
    auto stub = v1::BlueprintSync::NewStub(MakeChannel(server->address));
    while (seen.done.load() < r.streams) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      v1::GetSyncJobRequest req;
      req.set_name(owner->name());
      v1::SyncJob out;
      const int64_t t0 = NowNanos();
      if (!stub->GetSyncJob(&ctx, req, &out).ok()) break;
      get_ms.push_back(static_cast<double>(NowNanos() - t0) / 1e6);
    }
  });
  {
    std::atomic<int> next{0};
    std::vector<std::thread> cancellers;
    for (int t = 0; t < std::min(jobs, 16); ++t) {
      cancellers.emplace_back([&] {
        for (int j = next++; j < jobs; j = next++) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          v1::CancelSyncJobRequest req;
          req.set_name(names[j]);
          v1::SyncJob out;
          cancel_sent[j] = NowNanos();
          grpc::Status st = control->CancelSyncJob(&ctx, req, &out);
          if (!st.ok() || out.state() != v1::SyncJob::CANCELLED) {
            std::fprintf(stderr, "cancel %s: %s\n", names[j].c_str(), st.error_message().c_str());
          }
        }
      });
    }
    for (auto& t : cancellers) t.join();
  }
  if (!WaitUntil([&] { return seen.done.load() >= r.streams; }, absl::Seconds(120))) {
    std::fprintf(stderr, "[%s] only %d of %d streams ended\n", label.c_str(), seen.done.load(),
                 r.streams);
    std::optional<Result> none = give_up();
    prober.join();
    return none;
  }
  prober.join();
  r.gets = static_cast<int>(get_ms.size());
  if (!get_ms.empty()) {
    r.get_p50_ms = Percentile(get_ms, 50);
    r.get_max_ms = Percentile(get_ms, 100);
  }
  std::vector<double> ms;
  int64_t last = 0;
  for (int i = 0; i < r.streams; ++i) {
    const int64_t at = seen.changed[i].load();
    if (at == 0 || !seen.ended_ok[i].load()) {
      absl::MutexLock lock(&seen.mu);
      std::fprintf(stderr, "[%s] stream %d never saw CANCELLED or did not end OK (%s)\n",
                   label.c_str(), i, seen.first_error.c_str());
      return std::nullopt;
    }
    ms.push_back(static_cast<double>(at - cancel_sent[i / per_job]) / 1e6);
    last = std::max(last, at);
  }
  r.p50_ms = Percentile(ms, 50);
  r.p99_ms = Percentile(ms, 99);
  r.max_ms = Percentile(ms, 100);
  r.all_ms = static_cast<double>(last - *std::min_element(cancel_sent.begin(), cancel_sent.end())) /
             1e6;
  std::fprintf(stderr,
               "[%s] %d streams: RSS %lld -> %lld KiB; change -> stream p50 %.1f ms, p99 %.1f "
               "ms, max %.1f ms; all %.1f ms; %d GetSyncJob meanwhile p50 %.1f ms, max %.1f ms\n",
               label.c_str(), r.streams, static_cast<long long>(r.rss_before_kb),
               static_cast<long long>(r.rss_after_kb), r.p50_ms, r.p99_ms, r.max_ms, r.all_ms,
               r.gets, r.get_p50_ms, r.get_max_ms);
  streams.clear();
  server->child->Stop(absl::Seconds(10));
  emulator->child->Stop(absl::Seconds(5));
  return r;
}

void PrintResult(const std::string& what, const Result& r) {
  const double per_stream =
      static_cast<double>(r.rss_after_kb - r.rss_before_kb) * 1024.0 / r.streams;
  PrintRow({absl::StrCat("WatchSyncJob ", what, ": server RSS before -> with the streams"),
            absl::StrCat(Fixed(r.rss_before_kb / 1024.0, 1), " -> ",
                         Fixed(r.rss_after_kb / 1024.0, 1), " MiB"),
            "", "", "", "-"});
  PrintRow({absl::StrCat("WatchSyncJob ", what, ": server memory per stream"),
            absl::StrCat(Fixed(per_stream / 1024.0, 1), " KiB"), "", "", "", "-"});
  PrintRow({absl::StrCat("WatchSyncJob ", what, ": one change -> each stream, p50 / p99 / max"),
            absl::StrCat(Fixed(r.p50_ms, 1), " / ", Fixed(r.p99_ms, 1), " / ", Fixed(r.max_ms, 1),
                         " ms"),
            "", "", "", "-"});
  PrintRow({absl::StrCat("WatchSyncJob ", what,
                         ": GetSyncJob of another job during the fan-out, p50 / max"),
            absl::StrCat(Fixed(r.get_p50_ms, 1), " / ", Fixed(r.get_max_ms, 1), " ms (",
                         r.gets, " calls)"),
            "", "", "", "-"});
}

int Main() {
  const std::optional<Result> one = RunVariant("one job", 1, 10000);
  if (one.has_value()) {
    PrintResult("10,000 streams on one job", *one);
  } else {
    PrintRow({"WatchSyncJob 10,000 streams on one job: FAILED (see stderr)", "-", "", "", "",
              "NO"});
  }
  const std::optional<Result> many = RunVariant("1,000 jobs", 1000, 10);
  if (many.has_value()) {
    PrintResult("10 streams on each of 1,000 jobs", *many);
    PrintRow({"WatchSyncJob 1,000 jobs: 1,000 cancels (16 in flight) -> all 10,000 streams",
              absl::StrCat(Fixed(many->all_ms, 0), " ms"), "", "", "", "-"});
  } else {
    PrintRow({"WatchSyncJob 10 streams on each of 1,000 jobs: FAILED (see stderr)", "-", "", "",
              "", "NO"});
  }
  return one.has_value() && many.has_value() ? 0 : 1;
}

}  // namespace
}  // namespace blueprintsync::bench

int main() { return blueprintsync::bench::Main(); }
