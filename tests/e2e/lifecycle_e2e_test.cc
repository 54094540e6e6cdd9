// End-to-end: the server process's life — SIGKILL mid-job and restart on the
// same SQLite file, graceful SIGTERM with health going NOT_SERVING, and the
// tracker's batching of DescribeBlueprints across many jobs in one cycle.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::HasSubstr;
using v1::Destination;
using v1::SyncJob;

class LifecycleE2eTest : public E2eTest {};

TEST_F(LifecycleE2eTest, KilledServerResumesTheJobWithoutResubmitting) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "4000"}));
  BPS_ASSERT_OK(StartServer());

  SyncJob job;
  grpc::Status s =
      Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(job.state(), SyncJob::RUNNING) << job.ShortDebugString();
  ASSERT_EQ(job.destinations_size(), 2);

  auto killed = KillServer();
  BPS_ASSERT_OK(killed.status());
  EXPECT_EQ(*killed, KilledBy(SIGKILL)) << killed->ToString();
  // Killed while the copies were still being made.
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  ASSERT_EQ(stats->sync_submissions.size(), 1u);
  auto upstream = admin().Blueprints("ap-beijing");
  BPS_ASSERT_OK(upstream.status());
  for (const EmulatorBlueprint& b : *upstream) {
    if (b.id == job.destinations(0).blueprint_id()) {
      EXPECT_EQ(b.state, "SYNCING") << "the copy finished before the kill; the test proves less";
    }
  }

  BPS_ASSERT_OK(StartServer());
  SyncJob resumed;
  s = Get(job.name(), &resumed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(resumed.state(), SyncJob::FAILED) << resumed.ShortDebugString();
  ASSERT_EQ(resumed.destinations_size(), 2);
  EXPECT_EQ(resumed.destinations(0).blueprint_id(), job.destinations(0).blueprint_id());

  auto done = WaitForTerminal(job.name());
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->ShortDebugString();
  ASSERT_EQ(done->destinations_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(done->destinations(i).blueprint_id(), job.destinations(i).blueprint_id());
    EXPECT_EQ(done->destinations(i).state(), Destination::SUCCEEDED);
  }

  stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
  EXPECT_EQ(stats->sync_submissions.size(), 1u);
  auto all = ListAll("");
  BPS_ASSERT_OK(all.status());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(LifecycleE2eTest, SigtermDrainsStopsServingAndKeepsTheJob) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "4000"}));
  BPS_ASSERT_OK(StartServer({"--drain-timeout", "5s"}));

  for (const char* service : {"", "blueprintsync.v1.BlueprintSync"}) {
    auto health = HealthCheck(channel(), service, absl::Seconds(5));
    BPS_ASSERT_OK(health.status());
    EXPECT_EQ(*health, 1 /* SERVING */) << service;
  }

  SyncJob job;
  grpc::Status s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(job.state(), SyncJob::RUNNING);

  // A watcher in flight is told to come back, not left hanging.
  grpc::ClientContext watch_context;
  watch_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::WatchSyncJobRequest watch_request;
  watch_request.set_name(job.name());
  auto watch = stub().WatchSyncJob(&watch_context, watch_request);
  SyncJob first;
  ASSERT_TRUE(watch->Read(&first));
  EXPECT_EQ(first.state(), SyncJob::RUNNING);

  BPS_ASSERT_OK(server_process().Signal(SIGTERM));
  // Health must stop saying SERVING: NOT_SERVING while draining, or no
  // answer at all once the port is closed.
  bool stopped_serving = false;
  std::string last_answer;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    auto health = HealthCheck(channel(), "blueprintsync.v1.BlueprintSync", absl::Seconds(2));
    if (!health.ok() || *health != 1) {
      stopped_serving = true;
      last_answer = health.ok() ? absl::StrCat("status ", *health) : health.status().ToString();
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(stopped_serving) << "still SERVING 20 s after SIGTERM";

  auto exit = server_process().WaitForExit(absl::Seconds(30));
  BPS_ASSERT_OK(exit.status());
  EXPECT_EQ(*exit, ExitedWith(0)) << exit->ToString();
  SyncJob msg;
  while (watch->Read(&msg)) {
  }
  s = watch->Finish();
  EXPECT_FALSE(s.ok()) << "the watch ended OK although the job had not finished";
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();

  // After exit nobody answers on that port.
  auto gone = HealthCheck(channel(), "", absl::Seconds(2));
  EXPECT_FALSE(gone.ok());

  BPS_ASSERT_OK(StartServer());
  SyncJob kept;
  s = Get(job.name(), &kept);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(kept.name(), job.name());
  ASSERT_EQ(kept.destinations_size(), 1);
  EXPECT_EQ(kept.destinations(0).blueprint_id(), job.destinations(0).blueprint_id());
  EXPECT_NE(kept.state(), SyncJob::FAILED) << kept.ShortDebugString();
  auto done = WaitForTerminal(job.name());
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->ShortDebugString();
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
}

// 250 destinations SYNCING in one region: one tracker cycle must ask for
// them with ceil(250 / 100) = 3 DescribeBlueprints calls, not one per job.
// The cycle is isolated by restarting the server with a one-hour poll
// interval, fixed (minimum one hour too, so pending copies do not bring
// cycles sooner): its only cycle is the one at start-up.
TEST_F(LifecycleE2eTest, OneTrackerCycleBatchesDescribeBlueprintsPerRegion) {
  constexpr int kJobs = 250;
  // The copies stay SYNCING for the whole test.
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "600000", "--quiet"}));
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) ids.push_back(absl::StrFormat("lhbp-bat%05d", i));
  BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-guangzhou", ids)));
  BPS_ASSERT_OK(StartServer({"--poll-interval", "1h", "--min-poll-interval", "1h"}));

  // Submit everything from a few client threads; the server paces the
  // upstream calls at 20/s, so this takes about 13 s.
  constexpr int kThreads = 10;
  std::atomic<int> next{0};
  std::vector<grpc::Status> statuses(kJobs);
  std::vector<SyncJob> jobs(kJobs);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < kJobs;) {
        statuses[i] =
            Sync(MakeRequest("ap-guangzhou", ids[i], {"ap-beijing"}), &jobs[i], absl::Seconds(90));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_code() << " "
                                  << statuses[i].error_message();
  }
  std::vector<SyncJob> running;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    auto r = ListAll("state = RUNNING");
    BPS_ASSERT_OK(r.status());
    running = *std::move(r);
    if (static_cast<int>(running.size()) == kJobs || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_EQ(static_cast<int>(running.size()), kJobs);
  std::set<std::string> destination_ids;
  for (const SyncJob& j : running) {
    ASSERT_EQ(j.destinations_size(), 1);
    destination_ids.insert(j.destinations(0).blueprint_id());
  }
  EXPECT_EQ(static_cast<int>(destination_ids.size()), kJobs);
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, kJobs);

  auto stopped = StopServer();
  BPS_ASSERT_OK(stopped.status());
  EXPECT_EQ(*stopped, ExitedWith(0)) << stopped->ToString();
  BPS_ASSERT_OK(admin().ResetStats());
  BPS_ASSERT_OK(StartServer({"--poll-interval", "1h", "--min-poll-interval", "1h"}));

  // The start-up cycle is over once every destination carries the state it
  // read upstream (SYNCING), whatever it carried before.
  std::vector<SyncJob> seen;
  const absl::Time cycle_deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    auto r = ListAll("state = RUNNING");
    BPS_ASSERT_OK(r.status());
    seen = *std::move(r);
    int synced = 0;
    for (const SyncJob& j : seen) {
      synced += j.destinations(0).blueprint_state() == "SYNCING" ? 1 : 0;
    }
    stats = admin().Stats();
    BPS_ASSERT_OK(stats.status());
    if ((synced == kJobs && stats->Action("DescribeBlueprints").received > 0) ||
        absl::Now() > cycle_deadline) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  // The count must also have stopped moving (the next cycle is an hour away).
  int64_t previous = -1;
  const absl::Time settle_deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    stats = admin().Stats();
    BPS_ASSERT_OK(stats.status());
    const int64_t now_seen = stats->Action("DescribeBlueprints").received;
    if (now_seen == previous || absl::Now() > settle_deadline) break;
    previous = now_seen;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(stats->Action("DescribeBlueprints").received, 3);
  EXPECT_EQ(stats->Action("DescribeBlueprints").executed, 3);
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 0) << "a restart resubmitted jobs";
  EXPECT_EQ(static_cast<int>(seen.size()), kJobs);
}

}  // namespace
}  // namespace blueprintsync::testing
