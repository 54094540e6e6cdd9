// Chaos, targeted: SIGKILL the server at the two moments around a new job's
// only write before its SyncBlueprint call (the one-write path: with a
// single replica, a job submitted at once is recorded already SUBMITTING
// when it is created, and the Submitter sends that attempt without writing
// again), then restart it on the same SQLite file.
//
//   - Killed after the write, with the call on the wire (the emulator holds
//     every SyncBlueprint for a while *before* executing it, so it executes
//     after the server is gone): the store must say SUBMITTING, and the
//     restarted server must reconcile the job (adopt the copy the call
//     made), never send it again.
//   - Killed after the write, before the call went out (the calls wait for
//     rate-limit capacity, --sync-rate 1): the jobs not sent yet are in the
//     store exactly as the Submitter's own write would have left them
//     (SUBMITTING, one attempt counted), and after the restart each is
//     reconciled and sent exactly once.
//
// The random kills of crash_restart_e2e_tests cover these windows among many
// others; these two land in them every time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/jobs/job_store.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using jobs::JobRecord;
using v1::SyncJob;

class SubmissionCrashE2eTest : public E2eTest {
 protected:
  // Sends SyncBlueprint for each request on its own thread and its own
  // channel (the answers never come: the server is killed first).
  void SubmitInBackground(const std::vector<v1::SyncBlueprintRequest>& requests) {
    for (const v1::SyncBlueprintRequest& request : requests) {
      callers_.emplace_back([this, request, address = server_address()] {
        auto stub = v1::BlueprintSync::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
        SyncJob ignored;
        (void)stub->SyncBlueprint(&ctx, request, &ignored);
      });
    }
  }

  void TearDown() override {
    for (std::thread& t : callers_) t.join();
    E2eTest::TearDown();
  }

  // Polls until `ready` or `timeout`.
  static bool PollUntil(const std::function<bool()>& ready, absl::Duration timeout) {
    const absl::Time give_up = absl::Now() + timeout;
    while (absl::Now() < give_up) {
      if (ready()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return ready();
  }

  int64_t SyncReceived() {
    auto stats = admin().Stats();
    return stats.ok() ? stats->Action("SyncBlueprint").received : -1;
  }

  // The unfinished jobs as the (killed) server left them in its SQLite
  // file, by source blueprint id.
  absl::StatusOr<std::map<std::string, JobRecord>> StoredBySource() {
    auto store = jobs::OpenJobStore(absl::StrCat("sqlite:", store_path()));
    if (!store.ok()) return store.status();
    auto unfinished = (*store)->ListUnfinishedJobs();
    if (!unfinished.ok()) return unfinished.status();
    std::map<std::string, JobRecord> out;
    for (JobRecord& rec : *unfinished) out[rec.job().blueprint_id()] = std::move(rec);
    return out;
  }

 private:
  std::vector<std::thread> callers_;
};

TEST_F(SubmissionCrashE2eTest, KilledWithTheCallOnTheWireIsReconciledNotSentAgain) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  // Every call waits 3 s after it arrives and before it executes.
  BPS_ASSERT_OK(
      admin().SetFaults(R"({"rules":[{"action":"SyncBlueprint","fault":"latency","phase":"before",)"
                        R"("probability":1,"latency_ms":3000}]})"));
  BPS_ASSERT_OK(StartServer({"--reconcile-grace", "1s"}));

  SubmitInBackground({MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"},
                                  "8b0c5a52-52a4-4c1e-9d0a-5b8f5e0a1c01")});
  ASSERT_TRUE(PollUntil([&] { return SyncReceived() == 1; }, absl::Seconds(30)))
      << "the call never reached the emulator";
  auto killed = KillServer();
  BPS_ASSERT_OK(killed.status());
  ASSERT_EQ(*killed, KilledBy(SIGKILL)) << killed->ToString();

  // What the one write before the call left: the attempt, recorded.
  auto stored = StoredBySource();
  BPS_ASSERT_OK(stored.status());
  ASSERT_EQ(stored->size(), 1u);
  const JobRecord& rec = stored->begin()->second;
  EXPECT_EQ(rec.phase(), JobRecord::SUBMITTING) << rec.ShortDebugString();
  EXPECT_EQ(rec.submit_attempts(), 1) << rec.ShortDebugString();
  EXPECT_EQ(rec.job().state(), SyncJob::QUEUED) << rec.ShortDebugString();

  // The call executes after the server is gone.
  ASSERT_TRUE(PollUntil(
      [&] {
        auto stats = admin().Stats();
        return stats.ok() && stats->Action("SyncBlueprint").executed == 1;
      },
      absl::Seconds(30)));

  BPS_ASSERT_OK(StartServer({"--reconcile-grace", "1s"}));
  auto done = WaitForTerminal(rec.job().name(), absl::Seconds(60));
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->ShortDebugString();

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1) << "sent again after the restart";
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
  ASSERT_EQ(stats->sync_submissions.size(), 1u);
  // The copies the call made are the job's: adopted, not made again.
  ASSERT_EQ(done->destinations_size(), 2);
  const auto& made = stats->sync_submissions[0].destination_blueprint_ids;
  for (const v1::Destination& d : done->destinations()) {
    EXPECT_THAT(made, ::testing::Contains(d.blueprint_id())) << done->ShortDebugString();
  }
}

TEST_F(SubmissionCrashE2eTest, KilledBeforeTheCallsWentOutEachIsSentOnceAfterTheRestart) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1000"}));
  constexpr int kJobs = 4;
  std::vector<std::string> ids;
  for (int i = 1; i <= kJobs; ++i) ids.push_back(absl::StrFormat("lhbp-scrs%04d", i));
  BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-singapore", ids)));
  // One call a second: after the first, the others are recorded and wait
  // for rate-limit capacity.
  BPS_ASSERT_OK(StartServer({"--sync-rate", "1", "--reconcile-grace", "1s"}));

  std::vector<v1::SyncBlueprintRequest> requests;
  for (int i = 0; i < kJobs; ++i) {
    requests.push_back(MakeRequest("ap-singapore", ids[i], {"ap-tokyo"},
                                   absl::StrFormat("5d7e4a10-3c2b-4f6e-8a1d-0000000000%02d", i)));
  }
  SubmitInBackground(requests);
  // Every job recorded, and the first call sent: then kill.
  std::map<std::string, std::string> names;  // blueprint id -> job name
  ASSERT_TRUE(PollUntil(
      [&] {
        auto all = ListAll("");
        if (!all.ok() || all->size() != static_cast<size_t>(kJobs) || SyncReceived() < 1) {
          return false;
        }
        for (const SyncJob& job : *all) names[job.blueprint_id()] = job.name();
        return true;
      },
      absl::Seconds(30)));
  auto killed = KillServer();
  BPS_ASSERT_OK(killed.status());
  ASSERT_EQ(*killed, KilledBy(SIGKILL)) << killed->ToString();

  auto before = admin().Stats();
  BPS_ASSERT_OK(before.status());
  std::map<std::string, int> sent_before;
  for (const EmulatorSyncSubmission& s : before->sync_submissions) ++sent_before[s.blueprint_id];
  ASSERT_LT(sent_before.size(), static_cast<size_t>(kJobs))
      << "every call went out before the kill; the test proves less";

  auto stored = StoredBySource();
  BPS_ASSERT_OK(stored.status());
  for (const std::string& id : ids) {
    if (sent_before.count(id)) continue;
    ASSERT_TRUE(stored->count(id)) << id << " not in the store as an unfinished job";
    const JobRecord& rec = stored->at(id);
    // Not sent: recorded exactly as the Submitter would before its call.
    EXPECT_EQ(rec.phase(), JobRecord::SUBMITTING) << id << ": " << rec.ShortDebugString();
    EXPECT_EQ(rec.submit_attempts(), 1) << id << ": " << rec.ShortDebugString();
    EXPECT_TRUE(rec.has_submit_attempt_time()) << id << ": " << rec.ShortDebugString();
  }

  BPS_ASSERT_OK(StartServer({"--sync-rate", "1", "--reconcile-grace", "1s"}));
  for (const std::string& id : ids) {
    auto done = WaitForTerminal(names[id], absl::Seconds(90));
    BPS_ASSERT_OK(done.status());
    EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << id << ": " << done->ShortDebugString();
  }
  auto after = admin().Stats();
  BPS_ASSERT_OK(after.status());
  std::map<std::string, int> executed;
  for (const EmulatorSyncSubmission& s : after->sync_submissions) ++executed[s.blueprint_id];
  for (const std::string& id : ids) EXPECT_EQ(executed[id], 1) << id << " executed not once";
  EXPECT_EQ(after->Action("SyncBlueprint").executed, kJobs);
}

}  // namespace
}  // namespace blueprintsync::testing
