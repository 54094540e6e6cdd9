// The pure rules of a job's end of life (job_lifecycle.h), the retry plan
// and the cancel answer for finished jobs (job_actions.h), and the request
// key and fingerprint rules they rely on.
#include "service/jobs/job_lifecycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "service/common/error_reason.h"
#include "service/jobs/job_actions.h"
#include "service/jobs/job_state.h"
#include "service/jobs/job_store.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::jobs {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1764633600);

JobRecord Job(JobRecord::SubmitPhase phase, v1::SyncJob::State state,
              std::vector<std::pair<std::string, v1::Destination::State>> dests) {
  JobRecord rec;
  rec.set_phase(phase);
  v1::SyncJob* job = rec.mutable_job();
  job->set_name("syncJobs/00000000-0000-4000-8000-000000000001");
  job->set_state(state);
  job->set_source_region("ap-singapore");
  job->set_blueprint_id("lhbp-source01");
  int n = 0;
  for (const auto& [region, dstate] : dests) {
    v1::Destination* d = job->add_destinations();
    d->set_region(region);
    d->set_state(dstate);
    if (phase == JobRecord::SUBMITTED) d->set_blueprint_id("lhbp-copy000" + std::to_string(++n));
  }
  return rec;
}

TEST(DeletableStateTest, OnlyTheStatesDeleteBlueprintsAccepts) {
  for (const char* s : {"NORMAL", "ISOLATED", "CREATEFAILED", "SYNCING_FAILED"}) {
    EXPECT_TRUE(IsDeletableState(s)) << s;
  }
  for (const char* s : {"SYNCING", "ISOLATING", "DELETING", "OFFLINE", "", "normal"}) {
    EXPECT_FALSE(IsDeletableState(s)) << s;
  }
}

TEST(MayDeleteCopyTest, NeverTheSourceNorAnythingThatIsNotACopyId) {
  JobRecord rec = Job(JobRecord::SUBMITTED, v1::SyncJob::RUNNING,
                      {{"ap-tokyo", v1::Destination::SYNCING}});
  const v1::SyncJob& job = rec.job();
  v1::Destination d = job.destinations(0);
  EXPECT_TRUE(MayDeleteCopy(job, d));
  d.set_blueprint_id(job.blueprint_id());
  EXPECT_FALSE(MayDeleteCopy(job, d));
  d.set_blueprint_id("");
  EXPECT_FALSE(MayDeleteCopy(job, d));
  d.set_blueprint_id("lhbp-");
  EXPECT_FALSE(MayDeleteCopy(job, d));
  d.set_blueprint_id("img-12345678");
  EXPECT_FALSE(MayDeleteCopy(job, d));
  d.set_blueprint_id("lhbp-copy0009");
  d.set_region(job.source_region());
  EXPECT_FALSE(MayDeleteCopy(job, d));
}

TEST(MarkFailedCopyTest, DeletesOrKeepsACopyAndIgnoresDestinationsWithout) {
  JobRecord rec = Job(JobRecord::SUBMITTED, v1::SyncJob::RUNNING,
                      {{"ap-tokyo", v1::Destination::FAILED}});
  v1::Destination& d = *rec.mutable_job()->mutable_destinations(0);
  MarkFailedCopy(rec.job(), d);
  EXPECT_EQ(d.copy_cleanup(), v1::Destination::DELETE_PENDING);

  d.clear_copy_cleanup();
  rec.mutable_job()->set_keep_failed_copies(true);
  MarkFailedCopy(rec.job(), d);
  EXPECT_EQ(d.copy_cleanup(), v1::Destination::KEPT);

  // Settled copies are not marked again.
  d.set_copy_cleanup(v1::Destination::DELETED);
  MarkFailedCopy(rec.job(), d);
  EXPECT_EQ(d.copy_cleanup(), v1::Destination::DELETED);

  d.clear_copy_cleanup();
  d.clear_blueprint_id();
  MarkFailedCopy(rec.job(), d);
  EXPECT_EQ(d.copy_cleanup(), v1::Destination::COPY_CLEANUP_UNSPECIFIED);
}

TEST(SettleCancelTest, NeverSentIsCancelledAtOnce) {
  JobRecord rec = Job(JobRecord::NOT_SUBMITTED, v1::SyncJob::CANCELLING,
                      {{"ap-tokyo", v1::Destination::PENDING}});
  SettleCancel(rec, kNow);
  EXPECT_EQ(rec.job().state(), v1::SyncJob::CANCELLED);
  EXPECT_EQ(rec.job().destinations(0).state(), v1::Destination::CANCELLED);
  EXPECT_EQ(FromProto(rec.job().end_time()), kNow);
  EXPECT_EQ(FromProto(rec.job().cancel_time()), kNow);
  EXPECT_FALSE(IsOpen(rec));
}

TEST(SettleCancelTest, RejectedIsCancelledAtOnce) {
  JobRecord rec = Job(JobRecord::REJECTED, v1::SyncJob::CANCELLING,
                      {{"ap-tokyo", v1::Destination::PENDING}});
  SettleCancel(rec, kNow);
  EXPECT_EQ(rec.job().state(), v1::SyncJob::CANCELLED);
}

TEST(SettleCancelTest, AnUnknownOutcomeStaysCancellingUntilSettled) {
  for (auto phase : {JobRecord::SUBMITTING, JobRecord::OUTCOME_UNKNOWN}) {
    JobRecord rec = Job(phase, v1::SyncJob::CANCELLING, {{"ap-tokyo", v1::Destination::PENDING}});
    SettleCancel(rec, kNow);
    EXPECT_EQ(rec.job().state(), v1::SyncJob::CANCELLING);
    EXPECT_FALSE(rec.job().has_end_time());
    EXPECT_TRUE(IsOpen(rec));
  }
}

TEST(SettleCancelTest, SubmittedCopiesAreAllDeletedSucceededOnesToo) {
  JobRecord rec = Job(JobRecord::SUBMITTED, v1::SyncJob::CANCELLING,
                      {{"ap-tokyo", v1::Destination::SUCCEEDED},
                       {"ap-seoul", v1::Destination::SYNCING},
                       {"ap-bangkok", v1::Destination::FAILED}});
  rec.mutable_job()->mutable_destinations(2)->set_copy_cleanup(v1::Destination::KEPT);
  rec.mutable_job()->set_keep_failed_copies(true);
  SettleCancel(rec, kNow);
  const v1::SyncJob& job = rec.job();
  EXPECT_EQ(job.state(), v1::SyncJob::CANCELLING);
  EXPECT_EQ(job.destinations(0).state(), v1::Destination::CANCELLED);
  EXPECT_EQ(job.destinations(0).copy_cleanup(), v1::Destination::DELETE_PENDING);
  EXPECT_EQ(job.destinations(1).copy_cleanup(), v1::Destination::DELETE_PENDING);
  // A failed copy kept on request stays kept.
  EXPECT_EQ(job.destinations(2).state(), v1::Destination::FAILED);
  EXPECT_EQ(job.destinations(2).copy_cleanup(), v1::Destination::KEPT);

  rec.mutable_job()->mutable_destinations(0)->set_copy_cleanup(v1::Destination::DELETED);
  SettleCancel(rec, kNow);
  EXPECT_EQ(rec.job().state(), v1::SyncJob::CANCELLING);
  rec.mutable_job()->mutable_destinations(1)->set_copy_cleanup(v1::Destination::ALREADY_GONE);
  SettleCancel(rec, kNow);
  EXPECT_EQ(rec.job().state(), v1::SyncJob::CANCELLED);
  EXPECT_FALSE(IsOpen(rec));
}

TEST(SettleCancelTest, OnlyTouchesCancellingJobs) {
  JobRecord rec = Job(JobRecord::SUBMITTED, v1::SyncJob::RUNNING,
                      {{"ap-tokyo", v1::Destination::SYNCING}});
  const std::string before = rec.SerializeAsString();
  SettleCancel(rec, kNow);
  EXPECT_EQ(rec.SerializeAsString(), before);
}

TEST(UpdateSubmittedJobStateTest, DerivesOrSettlesACancel) {
  JobRecord rec = Job(JobRecord::SUBMITTED, v1::SyncJob::RUNNING,
                      {{"ap-tokyo", v1::Destination::SUCCEEDED}});
  UpdateSubmittedJobState(rec, kNow);
  EXPECT_EQ(rec.job().state(), v1::SyncJob::SUCCEEDED);
  EXPECT_TRUE(rec.job().has_end_time());

  JobRecord cancelled = Job(JobRecord::SUBMITTED, v1::SyncJob::CANCELLING,
                            {{"ap-tokyo", v1::Destination::SUCCEEDED}});
  UpdateSubmittedJobState(cancelled, kNow);
  EXPECT_EQ(cancelled.job().state(), v1::SyncJob::CANCELLING);
  EXPECT_EQ(cancelled.job().destinations(0).copy_cleanup(), v1::Destination::DELETE_PENDING);
}

TEST(PermanentFailureTest, RetryableCodesBecomeFailedPreconditionKeepingTheDetails) {
  tencent::ApiError api;
  api.kind = tencent::ErrorKind::kApi;
  api.code = "ServiceUnavailable";
  api.request_id = "req-1";
  api.message = "try later";
  const absl::Status permanent = PermanentFailure(tencent::MakeStatus(api));
  EXPECT_EQ(permanent.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(permanent.message(), HasSubstr("UNAVAILABLE"));
  auto kept = tencent::GetApiError(permanent);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->code, "ServiceUnavailable");
  for (auto code : {absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kAborted,
                    absl::StatusCode::kResourceExhausted, absl::StatusCode::kCancelled}) {
    EXPECT_EQ(PermanentFailure(absl::Status(code, "x")).code(),
              absl::StatusCode::kFailedPrecondition);
  }
  for (auto code : {absl::StatusCode::kNotFound, absl::StatusCode::kInvalidArgument,
                    absl::StatusCode::kPermissionDenied, absl::StatusCode::kFailedPrecondition,
                    absl::StatusCode::kUnknown, absl::StatusCode::kInternal}) {
    EXPECT_EQ(PermanentFailure(absl::Status(code, "x")).code(), code);
  }
}

// A caller answered with a job's end learns that it is the job's end
// (JOB_FAILED), not the transient cause's reason (a store error, ...); an
// already permanent one keeps a more specific reason.
TEST(PermanentFailureTest, TheEndOfAJobHasReasonJobFailed) {
  const absl::Status from_store = StoreError(absl::UnavailableError("database is locked"));
  EXPECT_EQ(GetReason(PermanentFailure(from_store)), reason::kJobFailed);
  // A stored one, answered again, is FAILED_PRECONDITION already.
  EXPECT_EQ(GetReason(PermanentFailure(absl::FailedPreconditionError("the job failed for good"))),
            reason::kJobFailed);
  const absl::Status specific =
      WithReason(absl::FailedPreconditionError("not NORMAL"), reason::kBlueprintNotNormal);
  EXPECT_EQ(GetReason(PermanentFailure(specific)), reason::kBlueprintNotNormal);
  EXPECT_EQ(GetReason(PermanentFailure(absl::InternalError("x"))), "");
}

TEST(PlanRetryTest, TakesTheDestinationsThatDidNotSucceed) {
  JobRecord rec = Job(JobRecord::SUBMITTED, v1::SyncJob::FAILED,
                      {{"ap-tokyo", v1::Destination::SUCCEEDED},
                       {"ap-seoul", v1::Destination::FAILED},
                       {"ap-bangkok", v1::Destination::CANCELLED}});
  (*rec.mutable_job()->mutable_labels())["team"] = "web";
  rec.mutable_job()->set_keep_failed_copies(true);
  NewJob retry;
  retry.creator = "cn:deployer";
  retry.request.set_request_id("3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  retry.request.add_destination_regions("ap-mumbai");  // ignored
  auto planned = PlanRetry(rec.job(), retry);
  ASSERT_TRUE(planned.ok()) << planned.status();
  EXPECT_EQ(planned->retry_of, rec.job().name());
  EXPECT_EQ(planned->creator, "cn:deployer");
  EXPECT_TRUE(planned->keep_failed_copies);
  EXPECT_THAT(planned->request.destination_regions(),
              ::testing::ElementsAre("ap-seoul", "ap-bangkok"));
  EXPECT_EQ(planned->request.source_region(), "ap-singapore");
  EXPECT_EQ(planned->request.blueprint_id(), "lhbp-source01");
  EXPECT_EQ(planned->request.labels().at("team"), "web");
  EXPECT_EQ(planned->request.request_id(), "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
}

TEST(PlanRetryTest, RefusesUnfinishedAndFullySucceededJobs) {
  for (auto state : {v1::SyncJob::QUEUED, v1::SyncJob::RUNNING, v1::SyncJob::CANCELLING}) {
    JobRecord rec = Job(JobRecord::SUBMITTED, state, {{"ap-tokyo", v1::Destination::FAILED}});
    auto planned = PlanRetry(rec.job(), NewJob());
    EXPECT_EQ(planned.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(GetJobName(planned.status()), rec.job().name());
  }
  JobRecord ok = Job(JobRecord::SUBMITTED, v1::SyncJob::SUCCEEDED,
                     {{"ap-tokyo", v1::Destination::SUCCEEDED}});
  EXPECT_EQ(PlanRetry(ok.job(), NewJob()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CancelFinishedTest, CancelledIsIdempotentOtherEndsAreRefused) {
  JobRecord rec = Job(JobRecord::SUBMITTED, v1::SyncJob::CANCELLED, {});
  EXPECT_TRUE(CancelFinished(rec.job()).ok());
  rec.mutable_job()->set_state(v1::SyncJob::CANCELLING);
  EXPECT_TRUE(CancelFinished(rec.job()).ok());
  for (auto state : {v1::SyncJob::SUCCEEDED, v1::SyncJob::FAILED}) {
    rec.mutable_job()->set_state(state);
    auto refused = CancelFinished(rec.job());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(GetJobName(refused.status()), rec.job().name());
  }
}

TEST(RequestKeyTest, ScopedPerCreatorWithAnonymousAndLegacyJobsUnscoped) {
  v1::SyncJob job;
  EXPECT_EQ(RequestKey(job), "");
  job.set_request_id("3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_EQ(RequestKey(job), job.request_id());
  job.set_creator(kAnonymousCreator);
  EXPECT_EQ(RequestKey(job), job.request_id());
  job.set_creator("cn:a");
  const std::string a = RequestKey(job);
  job.set_creator("cn:b");
  EXPECT_NE(RequestKey(job), a);
  EXPECT_NE(a, job.request_id());
}

TEST(FingerprintTest, IgnoresDestinationOrderAndAcceptsTheOldFormat) {
  v1::SyncBlueprintRequest a;
  a.set_source_region("ap-singapore");
  a.set_blueprint_id("lhbp-source01");
  a.add_destination_regions("ap-tokyo");
  a.add_destination_regions("ap-seoul");
  v1::SyncBlueprintRequest b = a;
  b.clear_destination_regions();
  b.add_destination_regions("ap-seoul");
  b.add_destination_regions("ap-tokyo");
  EXPECT_EQ(RequestFingerprint(a), RequestFingerprint(b));
  EXPECT_TRUE(FingerprintMatches(RequestFingerprint(a), b));

  v1::SyncBlueprintRequest labelled = a;
  (*labelled.mutable_labels())["team"] = "web";
  EXPECT_NE(RequestFingerprint(labelled), RequestFingerprint(a));
  v1::SyncBlueprintRequest kept = a;
  kept.set_keep_failed_copies(false);
  EXPECT_NE(RequestFingerprint(kept), RequestFingerprint(a));
  EXPECT_NE(RequestFingerprint(a, "syncJobs/x"), RequestFingerprint(a));

  // Jobs recorded by earlier versions: sha256 of the length-prefixed source,
  // blueprint and destinations in request order, no prefix.
  const std::string legacy_ab = "d3ae542afb2254cb5d740a87b1eb176fa42b5cedf60667868ac2714b08109ea8";
  EXPECT_TRUE(FingerprintMatches(legacy_ab, a));
  EXPECT_FALSE(FingerprintMatches(legacy_ab, b));  // the old format was order-sensitive
}

}  // namespace
}  // namespace blueprintsync::jobs
