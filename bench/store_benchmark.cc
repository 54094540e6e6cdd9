// The part of GetSyncJob below gRPC, in process (diagnosis for the figures
// of bench_grpc_front): JobEngine::GetJob of a finished job, which reads it
// from the store, for the SQLite and the memory store, from 1 and from 4
// threads (the gRPC callback executor runs handlers on several threads at
// once), and with Abseil's mutex deadlock detection on (what Debian's libabsl
// does unless a program turns it off) and off.
//
// Args: {store: 0 = SQLite, 1 = memory; deadlock detection: 1 = on, 0 = off}.
//
// BM_SqliteSubmissionWrites: the SQLite writes of one submission (issue #14),
// on a store holding 1,000 finished jobs: the job's record and its SUBMITTING
// mark (what precedes the SyncBlueprint call), with the record flushed on its
// own (CreateJob, before) or by the mark (CreateJobSyncLater, now); then the
// outcome (RUNNING with the copy's id), which precedes the caller's answer.
// paced: 100 ms idle between submissions (not timed), as single calls come.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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

void BM_SqliteSubmissionWrites(benchmark::State& state) {
  const bool sync_later = state.range(0) != 0;
  const bool with_outcome = state.range(1) != 0;
  TempDir dir("bps-bench-submission");
  const std::string db = dir.path() + "/jobs.db";
  if (!BuildSqliteStore(db, 1000).ok()) std::abort();
  auto opened = jobs::OpenSqliteJobStore(db);
  if (!opened.ok()) std::abort();
  jobs::JobStore* store = opened->get();
  const bool paced = state.range(2) != 0;
  int64_t n = 0;
  for (auto _ : state) {
    if (paced) {
      // As single calls arrive (bench_pacing: 120 ms apart), not back to back.
      state.PauseTiming();
      absl::SleepFor(absl::Milliseconds(100));
      state.ResumeTiming();
    }
    jobs::JobRecord rec;
    v1::SyncJob* job = rec.mutable_job();
    job->set_name(absl::StrCat("syncJobs/bench-", n));
    job->set_state(v1::SyncJob::QUEUED);
    job->set_source_region("ap-guangzhou");
    job->set_blueprint_id(absl::StrCat("lhbp-", 10000000 + n));
    job->set_request_id(absl::StrCat("9b2f0c1e-5d4a-4e8b-9c3d-", 100000000000 + n));
    job->set_creator("spiffe://cluster.local/ns/release/sa/pipeline");
    v1::Destination* d = job->add_destinations();
    d->set_region("ap-singapore");
    d->set_state(v1::Destination::PENDING);
    rec.set_phase(jobs::JobRecord::NOT_SUBMITTED);
    ++n;
    auto created = sync_later ? store->CreateJobSyncLater(rec) : store->CreateJob(rec);
    if (!created.ok()) {
      state.SkipWithError("CreateJob failed");
      break;
    }
    rec = created->record;
    rec.set_phase(jobs::JobRecord::SUBMITTING);
    rec.set_submit_attempts(1);
    if (!store->UpdateJob(rec).ok()) {
      state.SkipWithError("UpdateJob (SUBMITTING) failed");
      break;
    }
    if (with_outcome) {
      rec.set_phase(jobs::JobRecord::SUBMITTED);
      rec.mutable_job()->set_state(v1::SyncJob::RUNNING);
      rec.mutable_job()->mutable_destinations(0)->set_blueprint_id("lhbp-sg000001");
      rec.mutable_job()->mutable_destinations(0)->set_state(v1::Destination::SYNCING);
      if (!store->UpdateJob(rec).ok()) {
        state.SkipWithError("UpdateJob (outcome) failed");
        break;
      }
    }
  }
}
BENCHMARK(BM_SqliteSubmissionWrites)
    ->ArgNames({"sync_later", "with_outcome", "paced"})
    ->ArgsProduct({{0, 1}, {0, 1}, {0}})
    ->MinTime(2.0)
    ->UseRealTime();
BENCHMARK(BM_SqliteSubmissionWrites)
    ->ArgNames({"sync_later", "with_outcome", "paced"})
    ->ArgsProduct({{0, 1}, {0, 1}, {1}})
    ->Iterations(40)
    ->UseRealTime();

}  // namespace
}  // namespace blueprintsync::bench

BENCHMARK_MAIN();
