// End-to-end: every SyncBlueprint validation rule is enforced by the real
// server before anything goes upstream — the emulator sees no call at all —
// and the rejection names the offending field in a google.rpc.BadRequest.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using v1::SyncBlueprintRequest;
using v1::SyncJob;

struct RuleCase {
  std::string label;
  SyncBlueprintRequest request;
  std::string field;   // expected among the BadRequest violations
  std::string reason;  // ErrorInfo.reason when it is the only violation, else ""
};

std::vector<RuleCase> RuleCases() {
  const std::vector<std::string> eleven = {
      "ap-hongkong", "ap-tokyo",    "ap-seoul",         "ap-bangkok", "ap-jakarta", "eu-frankfurt",
      "na-ashburn",  "sa-saopaulo", "na-siliconvalley", "ap-beijing", "ap-chengdu"};
  return {
      {"MissingSourceRegion", MakeRequest("", "lhbp-gzbase01", {"ap-beijing"}), "source_region",
       "SOURCE_REGION_REQUIRED"},
      {"UnsupportedSourceRegion", MakeRequest("ap-mars", "lhbp-gzbase01", {"ap-beijing"}),
       "source_region", "SOURCE_REGION_UNSUPPORTED"},
      {"MissingBlueprintId", MakeRequest("ap-guangzhou", "", {"ap-beijing"}), "blueprint_id",
       "BLUEPRINT_ID_REQUIRED"},
      {"MalformedBlueprintId", MakeRequest("ap-guangzhou", "lhbp-GZ_BASE", {"ap-beijing"}),
       "blueprint_id", "BLUEPRINT_ID_MALFORMED"},
      {"NoDestinations", MakeRequest("ap-guangzhou", "lhbp-gzbase01", {}), "destination_regions",
       "DESTINATIONS_REQUIRED"},
      // Eleven distinct regions: more than ten (and, unavoidably with only
      // ten non-mainland destinations, some cross the border too).
      {"ElevenDestinations", MakeRequest("ap-singapore", "lhbp-sgbase01", eleven),
       "destination_regions", ""},
      {"UnsupportedDestination", MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-mars"}),
       "destination_regions[0]", "DESTINATION_REGION_UNSUPPORTED"},
      {"DestinationIsSource",
       MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-guangzhou"}),
       "destination_regions[1]", "DESTINATION_SAME_AS_SOURCE"},
      {"DuplicateDestination",
       MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-beijing"}),
       "destination_regions[1]", "DESTINATION_DUPLICATED"},
      {"MainlandToNonMainland", MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-singapore"}),
       "destination_regions[0]", "CROSS_BORDER_SYNC"},
      {"NonMainlandToMainland", MakeRequest("ap-singapore", "lhbp-sgbase01", {"ap-shanghai"}),
       "destination_regions[0]", "CROSS_BORDER_SYNC"},
      {"MalformedRequestId",
       MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}, "retry-1"), "request_id",
       "REQUEST_ID_MALFORMED"},
      {"HalfMebibyteBlueprintId",
       MakeRequest("ap-guangzhou", std::string(512 * 1024, 'a'), {"ap-beijing"}), "blueprint_id",
       "BLUEPRINT_ID_MALFORMED"},
  };
}

class ValidationE2eTest : public E2eTest, public ::testing::WithParamInterface<RuleCase> {};

TEST_P(ValidationE2eTest, RejectedWithoutUpstreamCalls) {
  const RuleCase& c = GetParam();
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());
  auto before = admin().Stats();
  BPS_ASSERT_OK(before.status());

  SyncJob job;
  grpc::Status s = Sync(c.request, &job);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_message() << " " << job.ShortDebugString();
  EXPECT_LT(s.error_message().size(), 8192u) << "the message echoes the whole value";
  RichError rich = ParseRichError(s);
  ASSERT_TRUE(rich.bad_request.has_value()) << s.error_message();
  EXPECT_THAT(rich.violation_fields(), Contains(c.field)) << s.error_message();
  if (!c.reason.empty()) {
    EXPECT_EQ(rich.violation_fields().size(), 1u) << s.error_message();
    ASSERT_TRUE(rich.info.has_value());
    EXPECT_EQ(rich.info->reason(), c.reason);
  }
  // The field name appears in the human-readable message too.
  const std::string field_root = c.field.substr(0, c.field.find('['));
  EXPECT_THAT(s.error_message(), HasSubstr(field_root));

  // validate_only applies the same rules.
  SyncBlueprintRequest validate = c.request;
  validate.set_validate_only(true);
  s = Sync(validate, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  auto after = admin().Stats();
  BPS_ASSERT_OK(after.status());
  EXPECT_EQ(after->requests_total, before->requests_total);
  EXPECT_EQ(after->Action("SyncBlueprint").received, 0);
  EXPECT_TRUE(after->sync_submissions.empty());
  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  EXPECT_TRUE(jobs->empty()) << "a rejected request left a job";
}

INSTANTIATE_TEST_SUITE_P(Rules, ValidationE2eTest, ::testing::ValuesIn(RuleCases()),
                         [](const ::testing::TestParamInfo<RuleCase>& param_info) {
                           return param_info.param.label;
                         });

class OversizedRequestE2eTest : public E2eTest {};

// A 1 MiB blueprint_id makes the request larger than the server's 1 MiB
// message limit: refused (either by gRPC or by validation), the server
// keeps serving, nothing goes upstream.
TEST_F(OversizedRequestE2eTest, OneMebibyteFieldIsRefusedAndTheServerSurvives) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());

  SyncJob job;
  grpc::Status s =
      Sync(MakeRequest("ap-guangzhou", std::string(1 << 20, 'x'), {"ap-beijing"}), &job);
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
              s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_code() << " " << s.error_message().substr(0, 200);

  // Same for the other RPCs' string fields.
  v1::ListSyncJobsRequest list;
  list.set_filter(std::string(1 << 20, 'f'));
  v1::ListSyncJobsResponse response;
  s = List(list, &response);
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
              s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_code() << " " << s.error_message().substr(0, 200);
  s = Get(std::string(1 << 20, 'n'), &job);
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
              s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_code() << " " << s.error_message().substr(0, 200);

  EXPECT_FALSE(server_process().TryWait().has_value()) << "the server died";
  auto health = HealthCheck(channel(), "", absl::Seconds(5));
  BPS_ASSERT_OK(health.status());
  EXPECT_EQ(*health, 1 /* SERVING */);

  // It still works.
  s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
}

class UnparsableRequestE2eTest : public E2eTest {};

// Bytes that are not the method's request message: gRPC 1.51 alone answers
// UNIMPLEMENTED with no message, as if the method did not exist. The server
// cannot tell such a call from one its client reset before the request
// arrived (a rapid-reset flood, counted as CANCELLED), so it answers
// CANCELLED, with a message that names the request type it should have
// been. Nothing is recorded or sent upstream.
TEST_F(UnparsableRequestE2eTest, AnswerNamesTheRequestType) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  grpc::GenericStub generic(channel());
  // Field 1, length-delimited, with a length varint that never ends.
  const std::string garbage = "\x0a\xff\xff\xff\xff\xff\xff";
  for (const std::string method : {"SyncBlueprint", "GetSyncJob", "ListSyncJobs"}) {
    grpc::Slice slice(garbage);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    absl::Notification done;
    grpc::Status status;
    generic.UnaryCall(&context, "/blueprintsync.v1.BlueprintSync/" + method,
                      grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
                        status = std::move(s);
                        done.Notify();
                      });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << method;
    EXPECT_THAT(status.error_message(),
                HasSubstr("not a valid blueprintsync.v1." + method + "Request"))
        << method;
  }
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 0);
  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  EXPECT_TRUE(jobs->empty());
}

class ValidateOnlyE2eTest : public E2eTest {};

TEST_F(ValidateOnlyE2eTest, ValidRequestIsNeitherRecordedNorSubmitted) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());
  SyncBlueprintRequest request =
      MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"});
  request.set_validate_only(true);
  auto before = admin().Stats();
  BPS_ASSERT_OK(before.status());
  SyncJob job;
  grpc::Status s = Sync(request, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(job.name().empty()) << job.ShortDebugString();
  ASSERT_EQ(job.destinations_size(), 2);
  EXPECT_EQ(job.destinations(0).region(), "ap-beijing");
  EXPECT_EQ(job.destinations(0).state(), v1::Destination::PENDING);

  // A dry run reads the source (one DescribeBlueprints) and sends nothing else.
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->requests_total, before->requests_total + 1);
  EXPECT_EQ(stats->Action("DescribeBlueprints").received,
            before->Action("DescribeBlueprints").received + 1);
  EXPECT_EQ(stats->Action("SyncBlueprint").received, before->Action("SyncBlueprint").received);
  EXPECT_EQ(job.jobs_ahead(), 0);
  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  EXPECT_TRUE(jobs->empty());

  // A source that does not exist is found out before anything is recorded.
  SyncBlueprintRequest missing = request;
  missing.set_blueprint_id("lhbp-nosuch01");
  s = Sync(missing, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("lhbp-nosuch01"));
  jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  EXPECT_TRUE(jobs->empty());
}

}  // namespace
}  // namespace blueprintsync::testing
