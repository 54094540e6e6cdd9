// Chaos, part 3: load. Hundreds of SyncBlueprint calls in flight at once
// (gRPC callback API, one channel), spread over ~20 source blueprints so that
// many jobs share a source, against the emulator's real per-action rate
// limits, with the server at its default rates. Checks:
//   - every call is answered, every job ends SUCCEEDED, one executed
//     SyncBlueprint per job and every execution tracked by its job;
//   - Tencent (the emulator) never throttled a call and never accepted more
//     than its per-second limit;
//   - jobs on one source never overlap upstream: each SyncBlueprint on a
//     source executes only after the previous sync of that source finished
//     (from the emulator's submission timeline), and none was refused as
//     "operation in progress";
//   - health keeps answering SERVING throughout (slowest answer printed);
//   - the server's peak RSS (VmHWM) stays under 200 MB.
// Knobs: BPS_LOAD_CALLERS (300), BPS_LOAD_BLUEPRINTS (20).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "rapidjson/document.h"
#include "tests/e2e/chaos_util.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using v1::SyncJob;

#if defined(__SANITIZE_ADDRESS__)
// Built with ASan, the server keeps up to 256 MB of freed memory in
// quarantine by design (to catch use-after-free); the bound allows for it.
constexpr int64_t kRssLimitKb = (200 + 256) * 1024;
#else
constexpr int64_t kRssLimitKb = 200 * 1024;
#endif

class LoadE2eTest : public E2eTest {};

// The emulator's configured rate limits (GET /_emulator/config).
std::map<std::string, int64_t> RateLimits(const EmulatorAdmin& admin) {
  std::map<std::string, int64_t> out;
  auto body = admin.Get("/_emulator/config");
  if (!body.ok()) return out;
  rapidjson::Document doc;
  doc.Parse(body->c_str(), body->size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("rate_limits") ||
      !doc["rate_limits"].IsObject()) {
    return out;
  }
  for (const auto& m : doc["rate_limits"].GetObject()) {
    if (m.value.IsInt64()) out[m.name.GetString()] = m.value.GetInt64();
  }
  return out;
}

TEST_F(LoadE2eTest, HundredsOfConcurrentCallersStayWithinTencentLimits) {
  const int callers = static_cast<int>(EnvInt("BPS_LOAD_CALLERS", 300));
  const int blueprints = static_cast<int>(EnvInt("BPS_LOAD_BLUEPRINTS", 20));
  ASSERT_GT(callers, 0);
  ASSERT_GT(blueprints, 0);
  constexpr int kSyncMs = 1000;
  const absl::Time start = absl::Now();

  // The emulator keeps its default limits (SyncBlueprint 20/s,
  // DescribeBlueprints 10/s), the server its default rates.
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", absl::StrCat(kSyncMs), "--quiet"}));
  const std::map<std::string, int64_t> limits = RateLimits(admin());
  ASSERT_GT(limits.count("SyncBlueprint"), 0u);
  ASSERT_GT(limits.at("SyncBlueprint"), 0);
  ASSERT_GT(limits.count("DescribeBlueprints"), 0u);
  ASSERT_GT(limits.at("DescribeBlueprints"), 0);

  // Two thirds of the sources in the mainland, the rest outside.
  struct Source {
    std::string region, id;
    std::vector<std::vector<std::string>> region_sets;
  };
  std::vector<Source> sources;
  std::vector<std::string> gz, sg;
  for (int i = 0; i < blueprints; ++i) {
    if (i % 3 != 2) {
      gz.push_back(absl::StrFormat("lhbp-ldgz%04d", i));
      sources.push_back({"ap-guangzhou",
                         gz.back(),
                         {{"ap-beijing", "ap-shanghai"}, {"ap-chengdu"}, {"ap-nanjing"}}});
    } else {
      sg.push_back(absl::StrFormat("lhbp-ldsg%04d", i));
      sources.push_back(
          {"ap-singapore", sg.back(), {{"ap-hongkong", "ap-tokyo"}, {"ap-seoul"}, {"ap-bangkok"}}});
    }
  }
  if (!gz.empty()) BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-guangzhou", gz)));
  if (!sg.empty()) BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-singapore", sg)));

  BPS_ASSERT_OK(StartServer({"--poll-interval", "200ms"}));
  const pid_t server_pid = server_process().pid();
  HealthProber health(channel(), absl::Milliseconds(50));
  std::atomic<bool> stop_rss{false};
  std::atomic<int64_t> max_rss_kb{0};
  std::thread rss_sampler([&] {
    while (!stop_rss) {
      const int64_t kb = ProcStatusKb(server_pid, "VmRSS");
      if (kb > max_rss_kb) max_rss_kb = kb;
      absl::SleepFor(absl::Milliseconds(100));
    }
  });

  // All the calls at once.
  struct Call {
    v1::SyncBlueprintRequest request;
    SyncJob job;
    grpc::ClientContext context;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < callers; ++i) {
    const Source& s = sources[i % sources.size()];
    auto call = std::make_unique<Call>();
    call->request = MakeRequest(s.region, s.id, s.region_sets[(i / sources.size()) % 3],
                                absl::StrFormat("%08x-0000-4000-8000-%012x", 0x10ad, i));
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    calls.push_back(std::move(call));
  }
  absl::BlockingCounter answered(callers);
  for (auto& call : calls) {
    Call* c = call.get();
    stub().async()->SyncBlueprint(&c->context, &c->request, &c->job,
                                  [c, &answered](grpc::Status s) {
                                    c->status = std::move(s);
                                    answered.DecrementCount();
                                  });
  }
  answered.Wait();
  const absl::Duration all_answered = absl::Now() - start;
  std::map<std::string, int64_t> answers;
  for (int i = 0; i < callers; ++i) {
    const Call& c = *calls[i];
    ASSERT_TRUE(c.status.ok()) << i << ": " << c.status.error_code() << " "
                               << c.status.error_message();
    ++answers[SyncJob::State_Name(c.job.state())];
  }

  // Until every job has ended.
  std::vector<SyncJob> jobs;
  const absl::Time deadline = absl::Now() + absl::Seconds(200);
  for (;;) {
    auto all = ListAll("");
    BPS_ASSERT_OK(all.status());
    jobs = *std::move(all);
    bool done = static_cast<int>(jobs.size()) == callers;
    for (const SyncJob& j : jobs) done &= IsTerminalJobState(j.state());
    if (done || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  const absl::Duration all_done = absl::Now() - start;
  health.Stop();
  stop_rss = true;
  rss_sampler.join();
  const int64_t hwm_kb = ProcStatusKb(server_pid, "VmHWM");
  const int64_t rss_kb = ProcStatusKb(server_pid, "VmRSS");

  ASSERT_EQ(static_cast<int>(jobs.size()), callers);
  std::map<std::string, int64_t> states;
  for (const SyncJob& j : jobs) {
    ++states[SyncJob::State_Name(j.state())];
    EXPECT_EQ(j.state(), SyncJob::SUCCEEDED) << j.ShortDebugString();
  }
  for (int i = 0; i < callers; ++i) {
    EXPECT_FALSE(calls[i]->job.name().empty()) << i;
  }

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  ASSERT_FALSE(stats->max_accepted_per_second.empty())
      << "no max_accepted_per_second in the emulator's stats";
  const auto sync = stats->Action("SyncBlueprint");
  const auto describe = stats->Action("DescribeBlueprints");

  // One execution per job, each tracked by its job.
  const ExecutionAudit audit = AuditExecutions(jobs, stats->sync_submissions);
  for (const std::string& p : audit.problems) ADD_FAILURE() << p;
  EXPECT_EQ(audit.max_executed_per_job, 1);
  EXPECT_EQ(sync.executed, callers);

  // Tencent's limits: never throttled, never more than the limit per second.
  EXPECT_EQ(sync.throttled, 0);
  EXPECT_EQ(describe.throttled, 0);
  for (const char* action : {"SyncBlueprint", "DescribeBlueprints"}) {
    EXPECT_LE(stats->MaxAcceptedPerSecond(action), limits.at(action)) << action;
  }

  // Same-source jobs never overlap upstream.
  EXPECT_EQ(sync.errors, 0) << "some SyncBlueprint was refused (e.g. source busy)";
  std::map<std::string, std::vector<int64_t>> timeline;  // source -> execution times
  for (const EmulatorSyncSubmission& s : stats->sync_submissions) {
    timeline[s.region + "/" + s.blueprint_id].push_back(s.time_ms);
  }
  int64_t min_gap_ms = -1;
  for (auto& [source, times] : timeline) {
    std::sort(times.begin(), times.end());
    for (size_t i = 1; i < times.size(); ++i) {
      const int64_t gap = times[i] - times[i - 1];
      EXPECT_GE(gap, kSyncMs) << source << ": a SyncBlueprint executed " << gap
                              << " ms after the previous one, whose sync takes " << kSyncMs
                              << " ms";
      if (min_gap_ms < 0 || gap < min_gap_ms) min_gap_ms = gap;
    }
  }
  EXPECT_EQ(timeline.size(), sources.size());

  // Health answered SERVING every time.
  EXPECT_GT(health.checks(), 0);
  EXPECT_EQ(health.serving(), health.checks()) << absl::StrJoin(health.failures(), "; ");

  // Memory.
  EXPECT_GT(hwm_kb, 0) << "could not read /proc/" << server_pid << "/status";
  EXPECT_LT(hwm_kb, kRssLimitKb) << "server peak RSS";

  std::cout << absl::StrFormat(
      "[load] callers=%d sources=%d (%d jobs per source) sync=%dms; all answered after %s "
      "(%s), all ended after %s\n"
      "[load] SyncBlueprint received=%d executed=%d throttled=%d errors=%d max/s=%d (limit %d); "
      "executed per job max=%d\n"
      "[load] DescribeBlueprints received=%d throttled=%d max/s=%d (limit %d)\n"
      "[load] same-source gap between executions: min %d ms (sync takes %d ms)\n"
      "[load] health: %d checks, %d SERVING, slowest %s\n"
      "[load] server memory: VmHWM %.1f MB, VmRSS %.1f MB at the end (max sampled %.1f MB); "
      "bound %d MB\n"
      "[load] terminal states: %s; wall time %s\n",
      callers, sources.size(), (callers + blueprints - 1) / blueprints, kSyncMs,
      absl::FormatDuration(absl::Trunc(all_answered, absl::Milliseconds(100))),
      FormatCounts(answers), absl::FormatDuration(absl::Trunc(all_done, absl::Milliseconds(100))),
      sync.received, sync.executed, sync.throttled, sync.errors,
      stats->MaxAcceptedPerSecond("SyncBlueprint"), limits.at("SyncBlueprint"),
      audit.max_executed_per_job, describe.received, describe.throttled,
      stats->MaxAcceptedPerSecond("DescribeBlueprints"), limits.at("DescribeBlueprints"),
      min_gap_ms, kSyncMs, health.checks(), health.serving(),
      absl::FormatDuration(absl::Trunc(health.max_latency(), absl::Microseconds(100))),
      hwm_kb / 1024.0, rss_kb / 1024.0, max_rss_kb.load() / 1024.0, kRssLimitKb / 1024,
      FormatCounts(states),
      absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(100))));
}

}  // namespace
}  // namespace blueprintsync::testing
