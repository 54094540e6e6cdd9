// End-to-end: ambiguous SyncBlueprint outcomes are reconciled against the
// upstream state instead of being resent. The emulator executes (or not) a
// call and then answers with a fault, as a timeout or a 5xx after Tencent
// had acted would look; the job must still end SUCCEEDED with exactly one
// executed SyncBlueprint.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using v1::SyncJob;

class ReconcileE2eTest : public E2eTest {
 protected:
  // Submits one job while `fault_rule` is armed and waits for its end.
  void RunWithFault(const std::string& fault_rule, int expected_received) {
    ASSERT_TRUE(StartEmulator({"--sync-duration-ms", "1500"}).ok());
    ASSERT_TRUE(StartServer({"--poll-interval", "200ms", "--reconcile-grace", "500ms"}).ok());
    ASSERT_TRUE(admin().SetFaults(R"({"rules":[)" + fault_rule + "]}").ok());

    SyncJob job;
    grpc::Status s =
        Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"}), &job);
    // The caller is answered with the job (its outcome is being reconciled),
    // not with an error and not twice submitted.
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    EXPECT_EQ(job.state(), SyncJob::RUNNING) << job.ShortDebugString();

    auto done = WaitForTerminal(job.name(), absl::Seconds(60));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->ShortDebugString();

    auto stats = admin().Stats();
    ASSERT_TRUE(stats.ok()) << stats.status();
    const EmulatorActionStats sync = stats->Action("SyncBlueprint");
    EXPECT_EQ(sync.executed, 1) << "the job must create exactly one set of paid copies";
    EXPECT_EQ(sync.received, expected_received);
    ASSERT_EQ(stats->sync_submissions.size(), 1u);
    // The job tracks the copies the single execution created.
    std::set<std::string> created(stats->sync_submissions[0].destination_blueprint_ids.begin(),
                                  stats->sync_submissions[0].destination_blueprint_ids.end());
    ASSERT_EQ(done->destinations_size(), 2);
    for (const auto& d : done->destinations()) {
      EXPECT_TRUE(created.count(d.blueprint_id())) << d.ShortDebugString();
      EXPECT_EQ(d.blueprint_state(), "NORMAL");
    }
  }
};

TEST_F(ReconcileE2eTest, ExecutedThenInternalErrorIsAdoptedNotResent) {
  RunWithFault(R"({"action":"SyncBlueprint","fault":"internal_error","phase":"after","count":1})",
               /*expected_received=*/1);
}

TEST_F(ReconcileE2eTest, ExecutedThenConnectionDroppedIsAdoptedNotResent) {
  RunWithFault(R"({"action":"SyncBlueprint","fault":"drop","phase":"after","count":1})",
               /*expected_received=*/1);
}

TEST_F(ReconcileE2eTest, NotExecutedBut5xxIsResubmittedOnce) {
  // HTTP 503 before executing: the client cannot tell, the reconciler finds
  // no copy and a NORMAL source, so the job is submitted a second time.
  RunWithFault(R"({"action":"SyncBlueprint","fault":"http_5xx","phase":"before","count":1})",
               /*expected_received=*/2);
}

// The reconciler must not take the copies of an earlier, already finished
// job on the same source (same name, same region, created seconds before)
// for the result of the ambiguous call. Before the fix, `after` = false
// adopted the earlier job's copy (two jobs, one paid sync, and the call was
// never made) and `after` = true saw two copies and failed the job as
// "needs attention" although its call had executed.
class ReconcileAfterFinishedJobE2eTest : public E2eTest,
                                         public ::testing::WithParamInterface<bool> {
 protected:
  // Runs `request` once to SUCCEEDED (into *done): the copy it makes is the
  // one the later jobs on the same source must not take for their own.
  void SyncToSuccess(const v1::SyncBlueprintRequest& request, SyncJob* done) {
    SyncJob first;
    grpc::Status s = Sync(request, &first);
    ASSERT_TRUE(s.ok()) << s.error_message();
    auto first_done = WaitForTerminal(first.name());
    BPS_ASSERT_OK(first_done.status());
    ASSERT_EQ(first_done->state(), SyncJob::SUCCEEDED);
    *done = *first_done;
  }
};

TEST_P(ReconcileAfterFinishedJobE2eTest, EarlierJobsCopiesAreNotMistakenForTheCallsResult) {
  const bool after = GetParam();
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "500"}));
  BPS_ASSERT_OK(StartServer({"--poll-interval", "100ms", "--reconcile-grace", "500ms"}));
  const auto request = MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"});

  SyncJob first;
  ASSERT_NO_FATAL_FAILURE(SyncToSuccess(request, &first));

  BPS_ASSERT_OK(admin().SetFaults(
      absl::StrCat(R"({"rules":[{"action":"SyncBlueprint","fault":"internal_error","phase":")",
                   after ? "after" : "before", R"(","count":1}]})")));
  SyncJob second;
  grpc::Status s = Sync(request, &second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto second_done = WaitForTerminal(second.name(), absl::Seconds(60));
  BPS_ASSERT_OK(second_done.status());
  EXPECT_EQ(second_done->state(), SyncJob::SUCCEEDED) << second_done->ShortDebugString();

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  // One execution per job, each job tracking its own copy.
  ASSERT_EQ(stats->sync_submissions.size(), 2u);
  EXPECT_EQ(stats->Action("SyncBlueprint").received, after ? 2 : 3);
  ASSERT_EQ(second_done->destinations_size(), 1);
  EXPECT_NE(second_done->destinations(0).blueprint_id(), first.destinations(0).blueprint_id())
      << "the second job adopted the first job's copy";
  EXPECT_EQ(second_done->destinations(0).blueprint_id(),
            stats->sync_submissions[1].destination_blueprint_ids.at(0));
}

INSTANTIATE_TEST_SUITE_P(BeforeAndAfterExecution, ReconcileAfterFinishedJobE2eTest,
                         ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "ExecutedThenInternalError"
                                              : "InternalErrorBeforeExecuting";
                         });

// The same with a backlog: more than a page of newer jobs queued on the
// source behind the ambiguous one when it is reconciled. The earlier job's
// copy must still be recognized as the earlier job's (the reconciler must
// look at the jobs created before this one, not at the newest ones).
TEST_F(ReconcileAfterFinishedJobE2eTest, EarlierJobsCopiesAreRecognizedBehindABacklog) {
  constexpr int kBacklog = 60;
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "500"}));
  BPS_ASSERT_OK(StartServer({"--poll-interval", "100ms", "--reconcile-grace", "3s"}));
  const auto request = MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"});

  SyncJob first;
  ASSERT_NO_FATAL_FAILURE(SyncToSuccess(request, &first));

  BPS_ASSERT_OK(admin().SetFaults(
      R"({"rules":[{"action":"SyncBlueprint","fault":"internal_error","phase":"before","count":1}]})"));
  SyncJob second;
  grpc::Status s = Sync(request, &second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(second.state(), SyncJob::RUNNING) << "expected an ambiguous submission";
  // Queued behind the second job, before its reconciliation looks (3 s).
  for (int i = 0; i < kBacklog; ++i) {
    SyncJob queued;
    s = Sync(request, &queued);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(queued.state(), SyncJob::QUEUED);
  }
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  ASSERT_EQ(stats->sync_submissions.size(), 1u) << "the backlog was queued too late";

  auto second_done = WaitForTerminal(second.name(), absl::Seconds(60));
  BPS_ASSERT_OK(second_done.status());
  EXPECT_EQ(second_done->state(), SyncJob::SUCCEEDED) << second_done->ShortDebugString();
  ASSERT_EQ(second_done->destinations_size(), 1);
  EXPECT_NE(second_done->destinations(0).blueprint_id(), first.destinations(0).blueprint_id())
      << "the second job adopted the first job's copy: its own sync was never made";
  stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  ASSERT_GE(stats->sync_submissions.size(), 2u);
  EXPECT_EQ(second_done->destinations(0).blueprint_id(),
            stats->sync_submissions[1].destination_blueprint_ids.at(0));
}

}  // namespace
}  // namespace blueprintsync::testing
