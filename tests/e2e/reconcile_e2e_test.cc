// End-to-end: ambiguous SyncBlueprint outcomes are reconciled against the
// upstream state instead of being resent. The emulator executes (or not) a
// call and then answers with a fault, as a timeout or a 5xx after Tencent
// had acted would look; the job must still end SUCCEEDED with exactly one
// executed SyncBlueprint.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

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

}  // namespace
}  // namespace blueprintsync::testing
