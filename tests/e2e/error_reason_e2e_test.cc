// End-to-end: the google.rpc.ErrorInfo reason (and metadata) a caller gets
// over real gRPC for errors the service raises itself, not Tencent Cloud:
// callers branch on the reason, so each must say what happened (a cancel
// of a finished job, a stale etag, ...) rather than a catch-all INTERNAL,
// and a validation error names its field in ErrorInfo metadata `field` as
// well as in BadRequest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "google/protobuf/empty.pb.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/e2e/policy_e2e_util.h"

namespace blueprintsync::testing {
namespace {

using v1::SyncJob;
using v1::SyncPolicy;

constexpr char kSource[] = "ap-guangzhou";
constexpr char kBlueprint[] = "lhbp-gzbase01";

// The ErrorInfo of `s`, or an empty one (the test then fails on its reason).
google::rpc::ErrorInfo InfoOf(const grpc::Status& s) {
  const RichError rich = ParseRichError(s);
  EXPECT_TRUE(rich.info.has_value()) << "no ErrorInfo in " << s.error_message();
  return rich.info.value_or(google::rpc::ErrorInfo());
}

std::string Metadata(const google::rpc::ErrorInfo& info, const std::string& key) {
  auto it = info.metadata().find(key);
  return it == info.metadata().end() ? "" : it->second;
}

class ErrorReasonE2eTest : public E2eTest {
 protected:
  grpc::ClientContext* Context(grpc::ClientContext* ctx) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return ctx;
  }
  grpc::Status Cancel(const std::string& name, SyncJob* job) {
    grpc::ClientContext ctx;
    v1::CancelSyncJobRequest request;
    request.set_name(name);
    return stub().CancelSyncJob(Context(&ctx), request, job);
  }
  grpc::Status Retry(const std::string& name, SyncJob* job) {
    grpc::ClientContext ctx;
    v1::RetrySyncJobRequest request;
    request.set_name(name);
    return stub().RetrySyncJob(Context(&ctx), request, job);
  }
  grpc::Status Delete(const std::string& name) {
    grpc::ClientContext ctx;
    v1::DeleteSyncJobRequest request;
    request.set_name(name);
    google::protobuf::Empty empty;
    return stub().DeleteSyncJob(Context(&ctx), request, &empty);
  }
};

TEST_F(ErrorReasonE2eTest, AFinishedJobCannotBeCancelledOrRetried) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "300"}));
  BPS_ASSERT_OK(StartServer());
  SyncJob job;
  grpc::Status s = Sync(MakeRequest(kSource, kBlueprint, {"ap-beijing"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto done = WaitForTerminal(job.name());
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), SyncJob::SUCCEEDED);

  SyncJob out;
  s = Cancel(job.name(), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  google::rpc::ErrorInfo info = InfoOf(s);
  EXPECT_EQ(info.reason(), "JOB_ALREADY_FINISHED") << s.error_message();
  EXPECT_EQ(info.domain(), "blueprintsync.v1");
  EXPECT_EQ(Metadata(info, "job"), job.name());

  s = Retry(job.name(), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(InfoOf(s).reason(), "NOTHING_TO_RETRY") << s.error_message();
}

TEST_F(ErrorReasonE2eTest, AJobStillRunningCannotBeRetriedOrDeleted) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "600000"}));  // never finishes here
  BPS_ASSERT_OK(StartServer());
  SyncJob running;
  grpc::Status s = Sync(MakeRequest(kSource, kBlueprint, {"ap-shanghai"}), &running);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(IsTerminalJobState(running.state()));
  SyncJob out;
  s = Retry(running.name(), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(InfoOf(s).reason(), "JOB_NOT_FINISHED") << s.error_message();
  s = Delete(running.name());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(InfoOf(s).reason(), "JOB_NOT_FINISHED") << s.error_message();
}

TEST_F(ErrorReasonE2eTest, AStaleEtagIsEtagMismatch) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  SyncPolicy created;
  grpc::Status s = CreatePolicy(stub(), "gz-base",
                                FixedPolicy(kSource, kBlueprint, {"ap-beijing"}, 1), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  SyncPolicy change = created;  // carries the etag as read
  change.set_keep_versions(3);
  SyncPolicy updated;
  s = UpdatePolicy(stub(), change, {"keep_versions"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  change.set_keep_versions(4);  // the etag is now stale
  s = UpdatePolicy(stub(), change, {"keep_versions"}, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << s.error_message();
  EXPECT_EQ(InfoOf(s).reason(), "ETAG_MISMATCH") << s.error_message();

  // The id is taken: unchanged, ALREADY_EXISTS.
  s = CreatePolicy(stub(), "gz-base", FixedPolicy(kSource, kBlueprint, {"ap-beijing"}, 1),
                   &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_EQ(InfoOf(s).reason(), "ALREADY_EXISTS") << s.error_message();
}

TEST_F(ErrorReasonE2eTest, AValidationErrorNamesItsFieldInErrorInfoAndBadRequest) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  SyncJob out;
  // One violated rule: the rule is the reason, the field is in both.
  grpc::Status s = Sync(MakeRequest(kSource, "", {"ap-beijing"}), &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  RichError rich = ParseRichError(s);
  ASSERT_TRUE(rich.info.has_value());
  EXPECT_EQ(rich.info->reason(), "BLUEPRINT_ID_REQUIRED");
  EXPECT_EQ(Metadata(*rich.info, "field"), "blueprint_id");
  ASSERT_TRUE(rich.bad_request.has_value());
  EXPECT_EQ(rich.violation_fields(), std::vector<std::string>{"blueprint_id"});

  // Several: INVALID_REQUEST, `field` lists each violated field once.
  s = Sync(MakeRequest("", "", {}), &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  rich = ParseRichError(s);
  ASSERT_TRUE(rich.info.has_value());
  EXPECT_EQ(rich.info->reason(), "INVALID_REQUEST");
  EXPECT_EQ(Metadata(*rich.info, "field"), "source_region,blueprint_id,destination_regions");
  ASSERT_TRUE(rich.bad_request.has_value());
  EXPECT_EQ(rich.bad_request->field_violations_size(), 3);

  // The same for a policy.
  SyncPolicy created;
  s = CreatePolicy(stub(), "Bad_Id", FixedPolicy(kSource, kBlueprint, {"ap-beijing"}, 1), &created);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  rich = ParseRichError(s);
  ASSERT_TRUE(rich.info.has_value());
  EXPECT_EQ(rich.info->reason(), "SYNC_POLICY_ID_MALFORMED");
  EXPECT_EQ(Metadata(*rich.info, "field"), "sync_policy_id");
}

}  // namespace
}  // namespace blueprintsync::testing
