// The part of GetSyncJob below gRPC, in process (diagnosis for the figures
// of bench_grpc_front): JobEngine::GetJob of a finished job, which reads it
// from the store, for the SQLite and the memory store, from 1 and from 4
// threads (the gRPC callback executor runs handlers on several threads at
// once), and with Abseil's mutex deadlock detection on (what Debian's libabsl
// does unless a program turns it off) and off.
//
// Args: {store: 0 = SQLite, 1 = memory; deadlock detection: 1 = on, 0 = off}.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "bench/bench_util.h"
#include "service/jobs/job_engine.h"
#include "service/tencent/testing/fake_lighthouse_client.h"

namespace blueprintsync::bench {
namespace {

struct Fixture {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<jobs::JobStore> store;
  testing::FakeLighthouseClient client;  // no upstream: every call fails
  std::unique_ptr<jobs::JobEngine> engine;
  std::string name;  // a finished job
};

Fixture* GetFixture(int store_kind) {
  static Fixture* fixtures[2] = {nullptr, nullptr};
  if (fixtures[store_kind] != nullptr) return fixtures[store_kind];
  auto* f = new Fixture();
  f->client.FailUnscripted(absl::UnavailableError("no upstream in this benchmark"));
  if (store_kind == 0) {
    f->dir = std::make_unique<TempDir>("bps-bench-store");
    const std::string db = f->dir->path() + "/jobs.db";
    if (!BuildSqliteStore(db, 1000).ok()) std::abort();
    auto s = jobs::OpenSqliteJobStore(db);
    if (!s.ok()) std::abort();
    f->store = *std::move(s);
  } else {
    f->store = jobs::MakeMemoryJobStore();
    if (!FillFinishedJobs(f->store.get(), 1000, 1000).ok()) std::abort();
  }
  jobs::JobQuery q;
  q.page_size = 1;
  auto page = f->store->ListJobs(q);
  if (!page.ok() || page->records.empty()) std::abort();
  f->name = page->records[0].job().name();
  jobs::JobEngineOptions options;
  options.poll_interval = absl::Hours(1);
  f->engine = std::make_unique<jobs::JobEngine>(options, f->store.get(), &f->client);
  if (!f->engine->Start().ok()) std::abort();
  fixtures[store_kind] = f;
  return f;
}

void BM_EngineGetFinishedJob(benchmark::State& state) {
  Fixture* f = GetFixture(static_cast<int>(state.range(0)));
  if (state.thread_index() == 0) {
    absl::SetMutexDeadlockDetectionMode(state.range(1) != 0 ? absl::OnDeadlockCycle::kAbort
                                                            : absl::OnDeadlockCycle::kIgnore);
  }
  for (auto _ : state) {
    // A finished job that is not cached is read on the engine's reader
    // threads; wait for the answer as a gRPC handler's reactor would.
    absl::Notification done;
    bool ok = false;
    f->engine->GetJob(f->name, [&](absl::StatusOr<v1::SyncJob> job) {
      ok = job.ok();
      benchmark::DoNotOptimize(job);
      done.Notify();
    });
    done.WaitForNotification();
    if (!ok) state.SkipWithError("GetJob failed");
  }
}
BENCHMARK(BM_EngineGetFinishedJob)
    ->ArgNames({"memory_store", "deadlock_detection"})
    ->ArgsProduct({{0, 1}, {1, 0}})
    ->Threads(1)
    ->Threads(4)
    ->UseRealTime();

}  // namespace
}  // namespace blueprintsync::bench

BENCHMARK_MAIN();
