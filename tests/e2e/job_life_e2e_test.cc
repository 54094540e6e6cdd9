// End-to-end: the whole life of a job against real processes — cancel (of a
// QUEUED job across a SIGKILL, of a RUNNING one until its copies are gone
// upstream), cleanup of failed copies (and keeping them on request), a copy
// that lands after the job's deadline, transient upstream codes on
// SyncBlueprint, a permanent rejection's replay, retry of the failed
// regions, DeleteSyncJob and retention.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/empty.pb.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::HasSubstr;
using v1::Destination;
using v1::SyncJob;

constexpr char kSource[] = "ap-guangzhou";
constexpr char kBlueprint[] = "lhbp-gzbase01";

class JobLifeE2eTest : public E2eTest {
 protected:
  grpc::Status Cancel(const std::string& name, SyncJob* job) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::CancelSyncJobRequest request;
    request.set_name(name);
    return stub().CancelSyncJob(&ctx, request, job);
  }
  grpc::Status Retry(const std::string& name, const std::string& request_id, SyncJob* job) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::RetrySyncJobRequest request;
    request.set_name(name);
    request.set_request_id(request_id);
    return stub().RetrySyncJob(&ctx, request, job);
  }
  grpc::Status Delete(const std::string& name) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::DeleteSyncJobRequest request;
    request.set_name(name);
    google::protobuf::Empty empty;
    return stub().DeleteSyncJob(&ctx, request, &empty);
  }
  // The ids of the blueprints the emulator has in `region`.
  std::set<std::string> Upstream(const std::string& region) {
    std::set<std::string> ids;
    auto list = admin().Blueprints(region);
    EXPECT_TRUE(list.ok()) << list.status();
    if (list.ok()) {
      for (const auto& b : *list) ids.insert(b.id);
    }
    return ids;
  }
  absl::StatusOr<SyncJob> WaitForCleanup(const std::string& name, int index,
                                         Destination::CopyCleanup cleanup,
                                         absl::Duration timeout = absl::Seconds(30)) {
    return WaitForJob(
        name, [&](const SyncJob& j) { return j.destinations(index).copy_cleanup() == cleanup; },
        timeout);
  }
};

TEST_F(JobLifeE2eTest, ACancelledQueuedJobIsNeverSentEvenAfterASigkill) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "3000"}));
  BPS_ASSERT_OK(StartServer());
  SyncJob first;
  grpc::Status s = Sync(MakeRequest(kSource, kBlueprint, {"ap-beijing"}), &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(first.state(), SyncJob::RUNNING);
  SyncJob queued;
  s = Sync(MakeRequest(kSource, kBlueprint, {"ap-shanghai"}), &queued);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(queued.state(), SyncJob::QUEUED);

  SyncJob cancelled;
  s = Cancel(queued.name(), &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelled.state(), SyncJob::CANCELLED) << cancelled.ShortDebugString();
  auto killed = KillServer();  // at once: the answer must already be durable
  BPS_ASSERT_OK(killed.status());

  BPS_ASSERT_OK(StartServer());
  SyncJob after;
  s = Get(queued.name(), &after);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(after.state(), SyncJob::CANCELLED);
  EXPECT_EQ(after.destinations(0).state(), Destination::CANCELLED);
  auto done = WaitForTerminal(first.name());
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED);
  absl::SleepFor(absl::Seconds(1));  // room for a wrong submission to show
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  ASSERT_EQ(stats->sync_submissions.size(), 1u);
  EXPECT_THAT(stats->sync_submissions[0].destination_regions, ::testing::ElementsAre("ap-beijing"));

  // Cancelling a finished job is refused, naming it.
  SyncJob refused;
  s = Cancel(first.name(), &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const RichError rich = ParseRichError(s);
  ASSERT_TRUE(rich.info.has_value());
  EXPECT_EQ(rich.info->metadata().at("job"), first.name());
}

TEST_F(JobLifeE2eTest, ACancelledRunningJobEndsOnlyOnceItsCopiesAreGoneUpstream) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "2500"}));
  BPS_ASSERT_OK(StartServer());
  SyncJob job;
  grpc::Status s = Sync(MakeRequest(kSource, kBlueprint, {"ap-beijing", "ap-shanghai"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(job.state(), SyncJob::RUNNING);
  const std::string bj = job.destinations(0).blueprint_id();
  const std::string sh = job.destinations(1).blueprint_id();
  ASSERT_TRUE(Upstream("ap-beijing").count(bj));

  SyncJob cancelling;
  s = Cancel(job.name(), &cancelling);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelling.state(), SyncJob::CANCELLING) << cancelling.ShortDebugString();
  EXPECT_TRUE(IsSet(cancelling.cancel_time()));

  auto done = WaitForTerminal(job.name());
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::CANCELLED) << done->ShortDebugString();
  // When the job says CANCELLED, nothing of it is left upstream.
  EXPECT_FALSE(Upstream("ap-beijing").count(bj));
  EXPECT_FALSE(Upstream("ap-shanghai").count(sh));
  for (const Destination& d : done->destinations()) {
    EXPECT_EQ(d.state(), Destination::CANCELLED);
    EXPECT_EQ(d.copy_cleanup(), Destination::DELETED) << d.ShortDebugString();
    EXPECT_TRUE(IsSet(d.copy_delete_time()));
  }
  EXPECT_TRUE(Upstream(kSource).count(kBlueprint));  // never the source
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_GE(stats->Action("DeleteBlueprints").executed, 1);

  // Cancelling again answers the job as it is.
  SyncJob again;
  s = Cancel(job.name(), &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.state(), SyncJob::CANCELLED);
}

TEST_F(JobLifeE2eTest, AFailedCopyIsDeletedUnlessTheCallerKeepsIt) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1000"}));
  BPS_ASSERT_OK(StartServer());
  BPS_ASSERT_OK(admin().UpdateConfig(R"({"fail_regions":["ap-shanghai"]})"));
  for (const bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "keep_failed_copies" : "default");
    v1::SyncBlueprintRequest request = MakeRequest(kSource, kBlueprint, {"ap-beijing", "ap-shanghai"});
    if (keep) request.set_keep_failed_copies(true);
    SyncJob job;
    grpc::Status s = Sync(request, &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
    const std::string failed_copy = job.destinations(1).blueprint_id();
    auto done = WaitForTerminal(job.name());
    BPS_ASSERT_OK(done.status());
    EXPECT_EQ(done->state(), SyncJob::FAILED);
    EXPECT_EQ(done->destinations(1).state(), Destination::FAILED);
    if (keep) {
      EXPECT_EQ(done->destinations(1).copy_cleanup(), Destination::KEPT);
      absl::SleepFor(absl::Seconds(1));
      EXPECT_TRUE(Upstream("ap-shanghai").count(failed_copy));
    } else {
      auto cleaned = WaitForCleanup(job.name(), 1, Destination::DELETED);
      BPS_ASSERT_OK(cleaned.status());
      EXPECT_EQ(cleaned->state(), SyncJob::FAILED);
      EXPECT_TRUE(IsSet(cleaned->destinations(1).copy_delete_time()));
      EXPECT_FALSE(Upstream("ap-shanghai").count(failed_copy));
    }
    // The good copy stays either way.
    EXPECT_TRUE(Upstream("ap-beijing").count(job.destinations(0).blueprint_id()));
  }
}

// Adaptive tracking, with the default budget flags (--poll-budget-share 0.5,
// --min-poll-interval 500ms): a copy that becomes NORMAL upstream reaches a
// watcher as soon as the budget allows, not at the next --poll-interval, and
// Tencent never throttles the tracker. The poll interval is a minute here so
// that fixed-interval tracking would miss the 10 s bound by far (each copy,
// landing 3 s after its submission, would wait about 57 s), while a sanitizer
// build on a loaded 2-core machine meets it with room to spare (typically
// well under a second). Two jobs in a row: the second one's copy lands in
// the middle of the tracker's rhythm, not just after a start-up cycle.
TEST_F(JobLifeE2eTest, ACopyThatBecomesNormalIsReportedWellWithinThePollInterval) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "3000"}));
  BPS_ASSERT_OK(StartServer({"--poll-interval", "60s"}));  // the harness's is 200ms
  for (int round = 0; round < 2; ++round) {
    SyncJob job;
    grpc::Status s = Sync(MakeRequest(kSource, kBlueprint, {"ap-beijing"}), &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::WatchSyncJobRequest watch;
    watch.set_name(job.name());
    auto reader = stub().WatchSyncJob(&ctx, watch);
    SyncJob seen;
    absl::Time seen_at = absl::InfiniteFuture();
    while (reader->Read(&seen)) {
      if (IsTerminalJobState(seen.state())) {
        seen_at = absl::Now();
        break;
      }
    }
    ctx.TryCancel();
    ASSERT_EQ(seen.state(), SyncJob::SUCCEEDED) << seen.DebugString();
    const std::string copy = seen.destinations(0).blueprint_id();
    auto upstream = admin().Blueprints("ap-beijing");
    BPS_ASSERT_OK(upstream.status());
    int64_t settled_ms = 0;
    for (const auto& b : *upstream) {
      if (b.id == copy) settled_ms = b.settled_at_ms;
    }
    ASSERT_GT(settled_ms, 0) << "the emulator has no settle time for " << copy;
    const absl::Duration latency = seen_at - absl::FromUnixMillis(settled_ms);
    EXPECT_GE(latency, absl::ZeroDuration()) << "round " << round;
    EXPECT_LT(latency, absl::Seconds(10)) << "round " << round;
  }
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("DescribeBlueprints").throttled, 0);
  EXPECT_GT(stats->Action("DescribeBlueprints").executed, 0);
}

TEST_F(JobLifeE2eTest, ACopyThatLandsAfterTheDeadlineIsDeleted) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "5000"}));
  BPS_ASSERT_OK(StartServer({"--poll-interval", "200ms", "--job-deadline", "2s"}));
  SyncJob job;
  grpc::Status s = Sync(MakeRequest(kSource, kBlueprint, {"ap-beijing"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string copy = job.destinations(0).blueprint_id();
  auto failed = WaitForTerminal(job.name());
  BPS_ASSERT_OK(failed.status());
  EXPECT_EQ(failed->state(), SyncJob::FAILED);
  EXPECT_EQ(failed->destinations(0).copy_cleanup(), Destination::DELETE_PENDING);
  auto cleaned = WaitForCleanup(job.name(), 0, Destination::DELETED);
  BPS_ASSERT_OK(cleaned.status());
  EXPECT_FALSE(Upstream("ap-beijing").count(copy));
}

TEST_F(JobLifeE2eTest, TransientUpstreamCodesEndSucceededWithOneExecutedCall) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "500"}));
  BPS_ASSERT_OK(StartServer({"--poll-interval", "200ms", "--reconcile-grace", "500ms"}));
  for (const char* code : {"FailedOperation.RequestError",
                           "FailedOperation.DescribeBlueprintQuotaFailed", "ServiceUnavailable",
                           "ResourceUnavailable"}) {
    SCOPED_TRACE(code);
    BPS_ASSERT_OK(admin().ResetStats());
    BPS_ASSERT_OK(admin().SetFaults(absl::StrCat(
        R"({"rules":[{"action":"SyncBlueprint","fault":"error","phase":"before","count":1,"code":")",
        code, R"("}]})")));
    SyncJob job;
    grpc::Status s = Sync(MakeRequest(kSource, kBlueprint, {"ap-beijing"}), &job);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    auto done = WaitForTerminal(job.name(), absl::Seconds(60));
    BPS_ASSERT_OK(done.status());
    EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->ShortDebugString();
    auto stats = admin().Stats();
    BPS_ASSERT_OK(stats.status());
    EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
    EXPECT_EQ(stats->Fault("error"), 1);
  }
}

TEST_F(JobLifeE2eTest, APermanentRejectionIsReplayedWithANonRetryableCode) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  BPS_ASSERT_OK(admin().SetFaults(
      R"({"rules":[{"action":"SyncBlueprint","fault":"error","phase":"before","count":1,"code":"LimitExceeded.BlueprintQuotaLimitExceeded"}]})"));
  const v1::SyncBlueprintRequest request =
      MakeRequest(kSource, kBlueprint, {"ap-beijing"}, "5e1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  std::string job_name;
  for (int i = 0; i < 2; ++i) {
    SyncJob job;
    grpc::Status s = Sync(request, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("RESOURCE_EXHAUSTED"));
    const RichError rich = ParseRichError(s);
    ASSERT_TRUE(rich.info.has_value());
    ASSERT_TRUE(rich.info->metadata().count("job"));
    if (i == 0) job_name = rich.info->metadata().at("job");
    EXPECT_EQ(rich.info->metadata().at("job"), job_name);
    EXPECT_EQ(rich.info->metadata().at("tencent_code"), "LimitExceeded.BlueprintQuotaLimitExceeded");
  }
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 0);
  SyncJob recorded;
  ASSERT_TRUE(Get(job_name, &recorded).ok());
  EXPECT_EQ(recorded.state(), SyncJob::FAILED);
}

TEST_F(JobLifeE2eTest, RetryCoversExactlyTheFailedRegionsAndDeleteRemovesTheRecord) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "800"}));
  BPS_ASSERT_OK(StartServer());
  BPS_ASSERT_OK(admin().UpdateConfig(R"({"fail_regions":["ap-shanghai"]})"));
  SyncJob job;
  grpc::Status s =
      Sync(MakeRequest(kSource, kBlueprint, {"ap-beijing", "ap-shanghai", "ap-chengdu"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto failed = WaitForTerminal(job.name());
  BPS_ASSERT_OK(failed.status());
  ASSERT_EQ(failed->state(), SyncJob::FAILED);
  BPS_ASSERT_OK(admin().UpdateConfig(R"({"fail_regions":[]})"));

  // Not finished: cannot be deleted.
  SyncJob retry;
  s = Retry(job.name(), "6e1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c", &retry);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(retry.retry_of(), job.name());
  ASSERT_EQ(retry.destinations_size(), 1);
  EXPECT_EQ(retry.destinations(0).region(), "ap-shanghai");
  EXPECT_EQ(Delete(retry.name()).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto done = WaitForTerminal(retry.name());
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED);

  // A retry of the same job with the same request id is the same job.
  SyncJob same;
  s = Retry(job.name(), "6e1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c", &same);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(same.name(), retry.name());

  auto listed = ListAll(absl::StrCat("retry_of = \"", job.name(), "\""));
  BPS_ASSERT_OK(listed.status());
  ASSERT_EQ(listed->size(), 1u);

  // The failed copy is cleaned up first; then the record may go.
  BPS_ASSERT_OK(WaitForCleanup(job.name(), 1, Destination::DELETED).status());
  s = Delete(job.name());
  ASSERT_TRUE(s.ok()) << s.error_message();
  SyncJob gone;
  EXPECT_EQ(Get(job.name(), &gone).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete(job.name()).error_code(), grpc::StatusCode::NOT_FOUND);
  // Records only: the copy it made stays.
  EXPECT_TRUE(Upstream("ap-beijing").count(job.destinations(0).blueprint_id()));
}

TEST_F(JobLifeE2eTest, RetentionDeletesOldRecordsAndFreesTheirRequestIds) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "300"}));
  BPS_ASSERT_OK(StartServer({"--poll-interval", "200ms", "--job-retention", "2s"}));
  const v1::SyncBlueprintRequest request =
      MakeRequest(kSource, kBlueprint, {"ap-beijing"}, "7f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  SyncJob job;
  grpc::Status s = Sync(request, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  BPS_ASSERT_OK(WaitForTerminal(job.name()).status());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  SyncJob got;
  while (Get(job.name(), &got).ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(Get(job.name(), &got).error_code(), grpc::StatusCode::NOT_FOUND);
  SyncJob fresh;
  s = Sync(request, &fresh);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(fresh.name(), job.name());
}

}  // namespace
}  // namespace blueprintsync::testing
