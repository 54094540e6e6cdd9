// Chaos, part 1: SIGKILL the server at random moments while callers submit
// many jobs, restart it on the same SQLite file each time, and check that no
// accepted job is lost and that no job's SyncBlueprint executes twice.
//
// The moments are chosen to hit the dangerous windows:
//   - between the SQLite SUBMITTING write and the upstream call: the server
//     paces SyncBlueprint at a few calls per second (--sync-rate), so with
//     several sources ready, submissions sit recorded as SUBMITTING while
//     they wait for rate-limit capacity;
//   - while a call is in flight, before it executes: the emulator delays a
//     share of SyncBlueprint calls by 700 ms *before* executing them (fault
//     "latency", phase "before"), so a kill lands while Tencent has the
//     request and executes it after the client is gone;
//   - right after the service accepted a submission (the caller's answer);
//   - anywhere else, e.g. mid-poll (200 ms poll interval).
// Callers retry with the same request_id until the service answers, as the
// API asks, so the request-id idempotency is exercised across crashes too.
// A share of the jobs is cancelled at a random moment after it was
// accepted (QUEUED, in flight, or RUNNING), retried the same way: a job
// answered CANCELLED is never executed, and no copy of a cancelled job is
// left upstream at the end.
//
// Knobs (tests/e2e/README.md): BPS_CRASH_JOBS, BPS_CRASH_KILLS,
// BPS_CRASH_CANCEL_PERCENT (share of jobs cancelled, default 25),
// BPS_CRASH_SEED (the plan's RNG seed; printed, so a failing run can be
// replayed; the process timing itself is not deterministic).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/e2e/chaos_util.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using v1::SyncJob;

struct PlannedJob {
  std::string source_region;
  std::string blueprint_id;
  std::vector<std::string> destinations;
  std::string request_id;
  bool cancel = false;  // the plan cancels it once accepted
  // Set by the submitter that got the answer.
  std::string name;
  int attempts = 0;
  // Set by the canceller: the state its cancel was answered with (or
  // "FAILED_PRECONDITION" when the job had already finished).
  std::string cancel_answer;
};

std::string Uuid(std::mt19937_64& rng) {
  const uint64_t hi = rng(), lo = rng();
  return absl::StrFormat("%08x-%04x-4%03x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xfff,
                         0x8000 | ((lo >> 48) & 0x3fff), lo & 0xffffffffffffULL);
}

class CrashRestartE2eTest : public E2eTest {
 protected:
  // The stub of the server that is running now (submitter threads use it
  // while the main thread kills and restarts the server).
  std::shared_ptr<v1::BlueprintSync::Stub> CurrentStub() {
    absl::MutexLock lock(&stub_mu_);
    return stub_;
  }
  void RefreshStub() {
    auto channel = grpc::CreateChannel(server_address(), grpc::InsecureChannelCredentials());
    absl::MutexLock lock(&stub_mu_);
    stub_ = v1::BlueprintSync::NewStub(channel);
  }

 private:
  absl::Mutex stub_mu_;
  std::shared_ptr<v1::BlueprintSync::Stub> stub_ ABSL_GUARDED_BY(stub_mu_);
};

TEST_F(CrashRestartE2eTest, RandomSigkillsLoseNoJobAndNeverSubmitTwice) {
  const int jobs_n = static_cast<int>(EnvInt("BPS_CRASH_JOBS", 60));
  const int kills_n = static_cast<int>(EnvInt("BPS_CRASH_KILLS", 20));
  const int cancel_percent = static_cast<int>(EnvInt("BPS_CRASH_CANCEL_PERCENT", 25));
  const uint64_t seed =
      static_cast<uint64_t>(EnvInt("BPS_CRASH_SEED", absl::ToUnixMicros(absl::Now()) % 1000000000));
  ASSERT_GT(jobs_n, 0);
  ASSERT_GE(kills_n, 0);
  std::cout << "[crash] seed=" << seed << " jobs=" << jobs_n << " kills=" << kills_n
            << "  (replay the plan: BPS_CRASH_SEED=" << seed << " BPS_CRASH_JOBS=" << jobs_n
            << " BPS_CRASH_KILLS=" << kills_n << ")" << std::endl;
  std::mt19937_64 rng(seed);
  const absl::Time start = absl::Now();

  // Short syncs keep the per-source queues moving; the emulator's fault RNG
  // follows the seed too.
  constexpr int kSyncMs = 1200;
  BPS_ASSERT_OK(StartEmulator(
      {"--sync-duration-ms", absl::StrCat(kSyncMs), "--fault-seed", absl::StrCat(seed)}));
  // Sources: 6 in the Chinese mainland, 3 outside, each with its own name
  // (the reconciler identifies copies by name).
  std::vector<std::pair<std::string, std::string>> sources;
  std::vector<std::string> gz_ids, sg_ids;
  for (int i = 1; i <= 6; ++i) gz_ids.push_back(absl::StrFormat("lhbp-crgz%04d", i));
  for (int i = 1; i <= 3; ++i) sg_ids.push_back(absl::StrFormat("lhbp-crsg%04d", i));
  BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-guangzhou", gz_ids)));
  BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-singapore", sg_ids)));
  for (const auto& id : gz_ids) sources.emplace_back("ap-guangzhou", id);
  for (const auto& id : sg_ids) sources.emplace_back("ap-singapore", id);
  const std::map<std::string, std::vector<std::vector<std::string>>> region_sets = {
      {"ap-guangzhou",
       {{"ap-beijing"},
        {"ap-beijing", "ap-shanghai"},
        {"ap-chengdu", "ap-nanjing", "ap-shanghai"}}},
      {"ap-singapore", {{"ap-hongkong"}, {"ap-tokyo", "ap-seoul"}, {"ap-bangkok", "ap-hongkong"}}},
  };
  // Delay a share of the calls before they execute, so kills land mid-call.
  BPS_ASSERT_OK(
      admin().SetFaults(R"({"rules":[{"action":"SyncBlueprint","fault":"latency","phase":"before",)"
                        R"("probability":0.3,"latency_ms":700}]})"));

  // The plan: several jobs per source, often with the same regions as an
  // earlier job on that source (the case where a reconciler could mistake
  // the earlier job's copies for its own).
  std::vector<PlannedJob> plan(jobs_n);
  std::map<std::string, int> per_source;
  int planned_cancels = 0;
  for (PlannedJob& j : plan) {
    const auto& [region, id] = sources[rng() % sources.size()];
    const auto& sets = region_sets.at(region);
    j.source_region = region;
    j.blueprint_id = id;
    j.destinations = sets[rng() % sets.size()];
    j.request_id = Uuid(rng);
    j.cancel = static_cast<int>(rng() % 100) < cancel_percent;
    planned_cancels += j.cancel ? 1 : 0;
    ++per_source[region + "/" + id];
  }

  // Reconcile grace (2 s) longer than the emulator's delay (0.7 s): a call
  // still executing when the reconciler first looks is a documented limit,
  // not what this test is about.
  const std::vector<std::string> server_args = {
      "--poll-interval", "200ms", "--reconcile-grace", "2s", "--sync-rate", "3"};
  BPS_ASSERT_OK(StartServer(server_args));
  RefreshStub();

  // Submitters: each takes the next planned job and retries it (same
  // request_id) until the service answers it. They are paced so that the
  // submissions spread over the whole kill phase (about 1.6 s per kill).
  constexpr int kSubmitters = 3;
  const int64_t gap_ms =
      std::clamp<int64_t>(int64_t{kills_n} * 1600 * kSubmitters / jobs_n, 50, 3000);
  const absl::Time submit_deadline = absl::Now() + absl::Seconds(150);
  std::atomic<int> next{0};
  std::atomic<int> accepted{0};
  std::atomic<int> rpc_failures{0};
  absl::Mutex plan_mu;
  std::vector<std::string> submit_errors;
  std::vector<std::thread> submitters;
  for (int t = 0; t < kSubmitters; ++t) {
    submitters.emplace_back([&, t] {
      std::mt19937_64 local(seed * 31 + t);
      for (int i; (i = next.fetch_add(1)) < jobs_n;) {
        PlannedJob& j = plan[i];
        const v1::SyncBlueprintRequest request =
            MakeRequest(j.source_region, j.blueprint_id, j.destinations, j.request_id);
        for (;;) {
          ++j.attempts;
          SyncJob job;
          grpc::ClientContext context;
          context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
          grpc::Status s = CurrentStub()->SyncBlueprint(&context, request, &job);
          if (s.ok()) {
            absl::MutexLock lock(&plan_mu);
            j.name = job.name();
            ++accepted;
            break;
          }
          ++rpc_failures;
          // Only "the server is not there / was cut off" is expected here.
          if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
              s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
              s.error_code() != grpc::StatusCode::CANCELLED) {
            absl::MutexLock lock(&plan_mu);
            submit_errors.push_back(
                absl::StrCat("job ", i, ": ", s.error_code(), " ", s.error_message()));
            break;
          }
          if (absl::Now() > submit_deadline) {
            absl::MutexLock lock(&plan_mu);
            submit_errors.push_back(absl::StrCat("job ", i, ": not accepted before the deadline"));
            break;
          }
          absl::SleepFor(absl::Milliseconds(100));
        }
        absl::SleepFor(absl::Milliseconds(local() % (2 * gap_ms)));
      }
    });
  }

  // The canceller: each planned cancel, a random moment after its job was
  // accepted, retried through kills like the submissions.
  std::atomic<int> cancels_answered{0};
  std::thread canceller([&] {
    std::mt19937_64 local(seed * 77);
    for (int i = 0; i < jobs_n; ++i) {
      if (!plan[i].cancel) continue;
      std::string name;
      while (name.empty() && absl::Now() < submit_deadline) {
        {
          absl::MutexLock lock(&plan_mu);
          name = plan[i].name;
        }
        if (name.empty()) absl::SleepFor(absl::Milliseconds(20));
      }
      if (name.empty()) return;  // the submitter reports it
      absl::SleepFor(absl::Milliseconds(local() % 1500));
      v1::CancelSyncJobRequest request;
      request.set_name(name);
      for (;;) {
        SyncJob job;
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
        grpc::Status s = CurrentStub()->CancelSyncJob(&context, request, &job);
        const bool answered =
            s.ok() || s.error_code() == grpc::StatusCode::FAILED_PRECONDITION;
        const bool retry = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                           s.error_code() == grpc::StatusCode::CANCELLED;
        {
          absl::MutexLock lock(&plan_mu);
          if (answered) {
            plan[i].cancel_answer =
                s.ok() ? SyncJob::State_Name(job.state()) : "FAILED_PRECONDITION";
            ++cancels_answered;
          } else if (!retry) {
            submit_errors.push_back(
                absl::StrCat("cancel of job ", i, ": ", s.error_code(), " ", s.error_message()));
          } else if (absl::Now() > submit_deadline) {
            submit_errors.push_back(absl::StrCat("cancel of job ", i, ": never answered"));
          }
        }
        if (answered || !retry || absl::Now() > submit_deadline) break;
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
  });

  // The chaos: kill at random moments, restart on the same store.
  int kills = 0, restarts = 0, kills_after_accept = 0;
  for (int k = 0; k < kills_n; ++k) {
    const int mode = static_cast<int>(rng() % 3);
    absl::SleepFor(absl::Milliseconds(300 + rng() % 1500));
    if (mode == 0) {
      // Right after the service answered a caller.
      const int before = accepted.load();
      const absl::Time until = absl::Now() + absl::Seconds(3);
      while (accepted.load() == before && absl::Now() < until && before < jobs_n) {
        absl::SleepFor(absl::Milliseconds(1));
      }
      if (accepted.load() != before) ++kills_after_accept;
    }
    auto killed = KillServer();
    BPS_ASSERT_OK(killed.status());
    ASSERT_EQ(*killed, KilledBy(SIGKILL)) << killed->ToString();
    ++kills;
    // Down for a moment: callers see UNAVAILABLE and retry.
    absl::SleepFor(absl::Milliseconds(rng() % 300));
    BPS_ASSERT_OK(StartServer(server_args));
    RefreshStub();
    ++restarts;
  }
  for (std::thread& t : submitters) t.join();
  canceller.join();
  for (const std::string& e : submit_errors) ADD_FAILURE() << e;
  ASSERT_EQ(accepted.load(), jobs_n) << "every planned job must be accepted eventually";

  // Every accepted job must end. Reconciliation takes a grace period or a
  // few, so the deadline is generous; the loop ends as soon as all are done.
  std::map<std::string, SyncJob> final_jobs;
  const absl::Time wait_deadline = absl::Now() + absl::Seconds(240);
  for (;;) {
    auto all = ListAll("");
    BPS_ASSERT_OK(all.status());
    final_jobs.clear();
    int unfinished = 0;
    for (const SyncJob& j : *all) {
      final_jobs[j.name()] = j;
      unfinished += IsTerminalJobState(j.state()) ? 0 : 1;
    }
    if (unfinished == 0 || absl::Now() > wait_deadline) break;
    absl::SleepFor(absl::Milliseconds(500));
  }

  // No job lost: every accepted name is listed and Get-able, and nothing
  // else exists (callers' retries never created a second job).
  std::set<std::string> names;
  for (int i = 0; i < jobs_n; ++i) {
    const PlannedJob& j = plan[i];
    ASSERT_FALSE(j.name.empty()) << i;
    EXPECT_TRUE(names.insert(j.name).second) << "two requests answered with " << j.name;
    auto it = final_jobs.find(j.name);
    EXPECT_NE(it, final_jobs.end()) << j.name << " is not listed";
    SyncJob got;
    grpc::Status s = Get(j.name, &got);
    EXPECT_TRUE(s.ok()) << j.name << ": " << s.error_message();
    if (s.ok()) {
      EXPECT_EQ(got.request_id(), j.request_id) << j.name;
      EXPECT_EQ(got.blueprint_id(), j.blueprint_id) << j.name;
    }
  }
  EXPECT_EQ(final_jobs.size(), static_cast<size_t>(jobs_n))
      << "the store holds jobs nobody asked for (a retried request created a second job?)";

  // Terminal states, and what the emulator executed.
  std::map<std::string, int64_t> states;
  std::vector<SyncJob> jobs;
  for (const auto& [name, j] : final_jobs) {
    ++states[SyncJob::State_Name(j.state())];
    jobs.push_back(j);
  }
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  const ExecutionAudit audit = AuditExecutions(jobs, stats->sync_submissions);
  for (const std::string& p : audit.problems) ADD_FAILURE() << p;
  std::map<std::string, const PlannedJob*> planned_by_name;
  for (const PlannedJob& j : plan) planned_by_name[j.name] = &j;
  int cancelled = 0, cancelled_unsent = 0, executed_total = 0;
  for (const SyncJob& j : jobs) {
    EXPECT_TRUE(IsTerminalJobState(j.state())) << "never finished: " << j.ShortDebugString();
    const int executed = audit.executed.count(j.name()) ? audit.executed.at(j.name()) : 0;
    executed_total += executed;
    EXPECT_LE(executed, 1) << "executed more than once: " << j.ShortDebugString();
    const PlannedJob* p = planned_by_name.count(j.name()) ? planned_by_name[j.name()] : nullptr;
    if (j.state() == SyncJob::CANCELLED) {
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(p->cancel) << "cancelled without being asked: " << j.ShortDebugString();
      ++cancelled;
      cancelled_unsent += executed == 0 ? 1 : 0;
      // A cancel answered CANCELLED promised that nothing would be sent.
      if (p->cancel_answer == "CANCELLED") {
        EXPECT_EQ(executed, 0) << "sent after its cancel was answered: " << j.ShortDebugString();
      }
      // Nothing of a cancelled job is left upstream.
      for (const auto& d : j.destinations()) {
        if (d.blueprint_id().empty()) continue;
        EXPECT_TRUE(d.copy_cleanup() == v1::Destination::DELETED ||
                    d.copy_cleanup() == v1::Destination::ALREADY_GONE)
            << j.ShortDebugString();
        auto upstream = admin().Blueprints(d.region());
        BPS_ASSERT_OK(upstream.status());
        for (const EmulatorBlueprint& b : *upstream) {
          EXPECT_NE(b.id, d.blueprint_id()) << "copy of a cancelled job left: "
                                            << j.ShortDebugString();
        }
      }
      continue;
    }
    // Every other job here is valid and its source exists: it must have
    // been submitted (exactly once) and have succeeded.
    EXPECT_EQ(executed, 1) << "never executed: " << j.ShortDebugString();
    EXPECT_EQ(j.state(), SyncJob::SUCCEEDED) << j.ShortDebugString();
    if (p != nullptr && p->cancel) {
      EXPECT_EQ(p->cancel_answer, "FAILED_PRECONDITION")
          << "a cancel was accepted but the job " << SyncJob::State_Name(j.state());
    }
  }
  EXPECT_EQ(audit.orphans, 0);

  // How the kills landed, from the servers' own logs.
  const int64_t resumed_reconciling =
      CountLinesInFiles(temp_dir(), "server", ".stdout", "\"msg\":\"job engine resumed\"") -
      CountLinesInFiles(temp_dir(), "server", ".stdout", "\"reconciling\":\"0\"");
  const int64_t reconciled_not_executed =
      CountLinesInFiles(temp_dir(), "server", ".stdout", "reconciled: submission had not executed");
  const int64_t reconciled_executed =
      CountLinesInFiles(temp_dir(), "server", ".stdout", "reconciled: submission had executed");

  const auto sync = stats->Action("SyncBlueprint");
  const auto describe = stats->Action("DescribeBlueprints");
  int max_per_source = 0;
  for (const auto& [k, n] : per_source) max_per_source = std::max(max_per_source, n);
  std::cout << absl::StrFormat(
      "[crash] seed=%d jobs=%d sources=%d (max %d jobs on one source) kills=%d "
      "(%d right after an accepted submission) restarts=%d\n"
      "[crash] caller RPC failures retried=%d; restarts that found interrupted submissions=%d; "
      "reconciled as not executed (resubmitted)=%d, as executed (adopted)=%d\n"
      "[crash] SyncBlueprint received=%d executed=%d throttled=%d errors=%d (%.2f received per "
      "job); executed per job: max=%d; orphan executions=%d; DescribeBlueprints received=%d\n"
      "[crash] cancels asked=%d answered=%d; cancelled=%d (never sent: %d)\n"
      "[crash] terminal states: %s; wall time %s\n",
      seed, jobs_n, per_source.size(), max_per_source, kills, kills_after_accept, restarts,
      rpc_failures.load(), resumed_reconciling, reconciled_not_executed, reconciled_executed,
      sync.received, sync.executed, sync.throttled, sync.errors,
      static_cast<double>(sync.received) / jobs_n, audit.max_executed_per_job, audit.orphans,
      describe.received, planned_cancels, cancels_answered.load(), cancelled, cancelled_unsent,
      FormatCounts(states),
      absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(100))));
  EXPECT_EQ(sync.executed, executed_total) << "every execution belongs to one job";
  EXPECT_EQ(sync.executed, jobs_n - cancelled_unsent)
      << "one executed SyncBlueprint per job that was not cancelled before it was sent";
  EXPECT_EQ(restarts, kills_n);
  // The run proved what it is for only if some kill fell between the
  // SUBMITTING write and the recorded answer (the server pacing submissions
  // at 3/s makes that nearly every kill while jobs are being submitted).
  if (kills_n >= 5) {
    EXPECT_GT(resumed_reconciling, 0) << "no kill landed in a submission; the run proves less";
  }
}

}  // namespace
}  // namespace blueprintsync::testing
