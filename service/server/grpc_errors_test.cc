// ToGrpcStatus / ValidationError: the rich error details a client decodes
// from grpc-status-details-bin; and ValidateJobName, whose errors travel the
// same way.
#include "service/server/grpc_errors.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "service/common/error_reason.h"
#include "service/jobs/job_state.h"
#include "service/server/blueprint_sync_service.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

struct Decoded {
  google::rpc::Status rich;
  std::optional<google::rpc::ErrorInfo> info;
  std::optional<google::rpc::BadRequest> bad_request;
  int other_details = 0;
};

Decoded Decode(const grpc::Status& s) {
  Decoded d;
  EXPECT_TRUE(d.rich.ParseFromString(s.error_details())) << "details do not parse";
  EXPECT_EQ(d.rich.code(), static_cast<int>(s.error_code()));
  EXPECT_EQ(d.rich.message(), s.error_message());
  for (const auto& any : d.rich.details()) {
    if (any.Is<google::rpc::ErrorInfo>()) {
      EXPECT_FALSE(d.info.has_value()) << "two ErrorInfo";
      d.info.emplace();
      EXPECT_TRUE(any.UnpackTo(&*d.info));
    } else if (any.Is<google::rpc::BadRequest>()) {
      EXPECT_FALSE(d.bad_request.has_value()) << "two BadRequest";
      d.bad_request.emplace();
      EXPECT_TRUE(any.UnpackTo(&*d.bad_request));
    } else {
      ++d.other_details;
    }
  }
  return d;
}

std::map<std::string, std::string> Metadata(const google::rpc::ErrorInfo& info) {
  return {info.metadata().begin(), info.metadata().end()};
}

std::vector<std::pair<std::string, std::string>> Violations(const google::rpc::BadRequest& b) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& v : b.field_violations()) out.emplace_back(v.field(), v.description());
  return out;
}

tencent::ApiError Api(tencent::ErrorKind kind, const std::string& code,
                      const std::string& request_id = "req-123") {
  tencent::ApiError e;
  e.kind = kind;
  e.code = code;
  e.message = "upstream said no";
  e.request_id = request_id;
  e.action = "SyncBlueprint";
  return e;
}

TEST(ToGrpcStatusTest, OkIsOkWithoutDetails) {
  const grpc::Status s = ToGrpcStatus(absl::OkStatus());
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(s.error_details().empty());
}

TEST(ToGrpcStatusTest, FieldRuleBecomesErrorInfoAndBadRequest) {
  const absl::Status in =
      jobs::InvalidField("request_id", "REQUEST_ID_REUSED", "request_id \"x\" was already used");
  const grpc::Status s = ToGrpcStatus(in);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), std::string(in.message()));
  const Decoded d = Decode(s);
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "REQUEST_ID_REUSED");
  EXPECT_EQ(d.info->domain(), "blueprintsync.v1");
  EXPECT_THAT(Metadata(*d.info), ElementsAre(Pair("field", "request_id")));
  ASSERT_TRUE(d.bad_request.has_value());
  EXPECT_THAT(Violations(*d.bad_request),
              ElementsAre(Pair("request_id", std::string(in.message()))));
  EXPECT_EQ(d.other_details, 0);
}

TEST(ToGrpcStatusTest, TencentApiErrorCarriesCodeRequestIdAndAction) {
  const absl::Status in = tencent::MakeStatus(
      Api(tencent::ErrorKind::kApi, "ResourceNotFound.PrivateBlueprintNotFound"));
  const grpc::Status s = ToGrpcStatus(in);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), std::string(in.message()));
  const Decoded d = Decode(s);
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "UPSTREAM_ERROR");
  EXPECT_EQ(d.info->domain(), kErrorDomain);
  EXPECT_THAT(
      Metadata(*d.info),
      UnorderedElementsAre(Pair("tencent_code", "ResourceNotFound.PrivateBlueprintNotFound"),
                           Pair("tencent_request_id", "req-123"), Pair("action", "SyncBlueprint")));
  // Only INVALID_ARGUMENT names a request field.
  EXPECT_FALSE(d.bad_request.has_value());
}

struct FieldCase {
  std::string tencent_code;
  std::string field;
};

class TencentFieldTest : public ::testing::TestWithParam<FieldCase> {};

TEST_P(TencentFieldTest, InvalidParameterNamesTheRequestField) {
  const absl::Status in =
      tencent::MakeStatus(Api(tencent::ErrorKind::kApi, GetParam().tencent_code));
  ASSERT_EQ(in.code(), absl::StatusCode::kInvalidArgument) << GetParam().tencent_code;
  const Decoded d = Decode(ToGrpcStatus(in));
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "UPSTREAM_ERROR");
  EXPECT_EQ(Metadata(*d.info)["tencent_code"], GetParam().tencent_code);
  EXPECT_EQ(Metadata(*d.info)["field"], GetParam().field);
  if (GetParam().field.empty()) {
    EXPECT_FALSE(d.bad_request.has_value());
  } else {
    ASSERT_TRUE(d.bad_request.has_value());
    EXPECT_THAT(Violations(*d.bad_request),
                ElementsAre(Pair(GetParam().field, std::string(in.message()))));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Codes, TencentFieldTest,
    ::testing::Values(
        FieldCase{"InvalidParameterValue.DestinationRegionInvalid", "destination_regions"},
        FieldCase{"InvalidParameterValue.DestinationRegionIsCurrentRegion", "destination_regions"},
        FieldCase{"InvalidParameterValue.DuplicateParameterValue", "destination_regions"},
        FieldCase{"InvalidParameterValue.BlueprintIdMalformed", "blueprint_id"},
        FieldCase{"UnsupportedRegion", "source_region"}, FieldCase{"MissingParameter", ""},
        FieldCase{"InvalidParameter", ""}));

TEST(ToGrpcStatusTest, UpstreamKindsHaveTheirOwnReasons) {
  struct Case {
    tencent::ErrorKind kind;
    std::string code;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {tencent::ErrorKind::kOutcomeUnknown, "ClientError.OutcomeUnknown",
            "UPSTREAM_OUTCOME_UNKNOWN"},
           {tencent::ErrorKind::kTransport, "ClientError.NetworkError", "UPSTREAM_UNAVAILABLE"},
           {tencent::ErrorKind::kHttpStatus, "ClientError.HttpStatusCodeError",
            "UPSTREAM_UNAVAILABLE"},
           {tencent::ErrorKind::kCredentials, "ClientError.CredentialError", "SERVICE_CREDENTIALS"},
       }) {
    const absl::Status in = tencent::MakeStatus(Api(c.kind, c.code, ""));
    const grpc::Status s = ToGrpcStatus(in);
    EXPECT_EQ(static_cast<int>(s.error_code()), static_cast<int>(in.code())) << c.code;
    const Decoded d = Decode(s);
    ASSERT_TRUE(d.info.has_value()) << c.code;
    EXPECT_EQ(d.info->reason(), c.reason) << c.code;
    // Empty values (no RequestId came back) are left out.
    EXPECT_THAT(Metadata(*d.info),
                UnorderedElementsAre(Pair("tencent_code", c.code), Pair("action", "SyncBlueprint")))
        << c.code;
  }
}

TEST(ToGrpcStatusTest, PlainStatusesGetAReasonFromTheirCode) {
  struct Case {
    absl::Status status;
    grpc::StatusCode code;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {absl::NotFoundError("no job"), grpc::StatusCode::NOT_FOUND, "NOT_FOUND"},
           {absl::InvalidArgumentError("bad"), grpc::StatusCode::INVALID_ARGUMENT,
            "INVALID_ARGUMENT"},
           {absl::UnavailableError("later"), grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE"},
           {absl::DeadlineExceededError("late"), grpc::StatusCode::DEADLINE_EXCEEDED,
            "DEADLINE_EXCEEDED"},
           {absl::UnknownError("needs attention: x"), grpc::StatusCode::UNKNOWN, "NEEDS_ATTENTION"},
           {absl::InternalError("bug"), grpc::StatusCode::INTERNAL, "INTERNAL"},
           {absl::PermissionDeniedError("only writers"), grpc::StatusCode::PERMISSION_DENIED,
            "PERMISSION_DENIED"},
           {absl::UnauthenticatedError("no certificate"), grpc::StatusCode::UNAUTHENTICATED,
            "UNAUTHENTICATED"},
           {absl::AbortedError("etag \"r3\" is stale"), grpc::StatusCode::ABORTED, "ABORTED"},
           {absl::AlreadyExistsError("taken"), grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS"},
           {absl::UnimplementedError("not enabled"), grpc::StatusCode::UNIMPLEMENTED,
            "UNIMPLEMENTED"},
       }) {
    const grpc::Status s = ToGrpcStatus(c.status);
    EXPECT_EQ(s.error_code(), c.code) << c.status;
    EXPECT_EQ(s.error_message(), std::string(c.status.message()));
    const Decoded d = Decode(s);
    ASSERT_TRUE(d.info.has_value());
    EXPECT_EQ(d.info->reason(), c.reason) << c.status;
    EXPECT_EQ(d.info->domain(), kErrorDomain);
    EXPECT_THAT(Metadata(*d.info), IsEmpty());
    EXPECT_FALSE(d.bad_request.has_value()) << c.status;
  }
}

TEST(ToGrpcStatusTest, StoredJobErrorKeepsItsTencentDetails) {
  // A job rejected earlier is answered from its stored SyncError.
  const absl::Status original = tencent::MakeStatus(
      Api(tencent::ErrorKind::kApi, "LimitExceeded.BlueprintQuotaLimitExceeded", "req-stored"));
  const absl::Status answered = jobs::FromSyncError(jobs::ToSyncError(original));
  const grpc::Status s = ToGrpcStatus(answered);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const Decoded d = Decode(s);
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "UPSTREAM_ERROR");
  EXPECT_EQ(Metadata(*d.info)["tencent_code"], "LimitExceeded.BlueprintQuotaLimitExceeded");
  EXPECT_EQ(Metadata(*d.info)["tencent_request_id"], "req-stored");
}

TEST(ToGrpcStatusTest, AnErrorAboutARecordedJobNamesItInMetadataJob) {
  constexpr char kJob[] = "syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
  // A plain status: the job is the only metadata.
  Decoded d = Decode(ToGrpcStatus(jobs::WithJobName(
      absl::FailedPreconditionError("the job has SUCCEEDED; nothing to cancel"), kJob)));
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "FAILED_PRECONDITION");
  EXPECT_THAT(Metadata(*d.info), ElementsAre(Pair("job", kJob)));

  // A replayed upstream error keeps its Tencent details next to the job.
  const grpc::Status s = ToGrpcStatus(jobs::WithJobName(
      tencent::MakeStatus(
          Api(tencent::ErrorKind::kApi, "ResourceNotFound.PrivateBlueprintNotFound", "req-stored")),
      kJob));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  d = Decode(s);
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "UPSTREAM_ERROR");
  EXPECT_THAT(
      Metadata(*d.info),
      UnorderedElementsAre(
          Pair("job", kJob), Pair("tencent_code", "ResourceNotFound.PrivateBlueprintNotFound"),
          Pair("tencent_request_id", "req-stored"), Pair("action", "SyncBlueprint")));

  // And a field rule too.
  d = Decode(ToGrpcStatus(jobs::WithJobName(
      jobs::InvalidField("request_id", "REQUEST_ID_REUSED", "request_id was already used"), kJob)));
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "REQUEST_ID_REUSED");
  EXPECT_THAT(Metadata(*d.info),
              UnorderedElementsAre(Pair("field", "request_id"), Pair("job", kJob)));
}

// Errors the service makes itself carry the reason attached where they are
// made, whatever their code: a caller can tell a cancel of a finished job
// from a store failure without reading the message.
TEST(ToGrpcStatusTest, AServiceErrorCarriesTheReasonItWasMadeWith) {
  constexpr char kJob[] = "syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
  struct Case {
    absl::Status status;
    grpc::StatusCode code;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {WithReason(absl::FailedPreconditionError("has already finished"),
                       reason::kJobAlreadyFinished),
            grpc::StatusCode::FAILED_PRECONDITION, "JOB_ALREADY_FINISHED"},
           {WithReason(absl::FailedPreconditionError("is not finished"), reason::kJobNotFinished),
            grpc::StatusCode::FAILED_PRECONDITION, "JOB_NOT_FINISHED"},
           {WithReason(absl::ResourceExhaustedError("unread answers"),
                       reason::kResponseBudgetExceeded),
            grpc::StatusCode::RESOURCE_EXHAUSTED, "RESPONSE_BUDGET_EXCEEDED"},
           {WithReason(absl::AbortedError("etag r3 was given"), reason::kEtagMismatch),
            grpc::StatusCode::ABORTED, "ETAG_MISMATCH"},
           {StoreError(absl::UnavailableError("database is locked")), grpc::StatusCode::UNAVAILABLE,
            "STORE_UNAVAILABLE"},
           // A database's own code (a refused login) is not the caller's
           // permission.
           {StoreError(absl::PermissionDeniedError("password authentication failed")),
            grpc::StatusCode::PERMISSION_DENIED, "STORE_ERROR"},
       }) {
    const grpc::Status s = ToGrpcStatus(jobs::WithJobName(c.status, kJob));
    EXPECT_EQ(s.error_code(), c.code) << c.status;
    EXPECT_EQ(s.error_message(), std::string(c.status.message()));
    const Decoded d = Decode(s);
    ASSERT_TRUE(d.info.has_value());
    EXPECT_EQ(d.info->reason(), c.reason) << c.status;
    EXPECT_EQ(d.info->domain(), kErrorDomain);
    // The reason travels as an internal payload, never as metadata.
    EXPECT_THAT(Metadata(*d.info), ElementsAre(Pair("job", kJob))) << c.status;
  }
}

// Without a specific reason the code names itself: INTERNAL is only ever the
// reason of an INTERNAL error.
TEST(ToGrpcStatusTest, OnlyAnInternalErrorHasReasonInternal) {
  for (const absl::Status& status :
       {absl::FailedPreconditionError("x"), absl::ResourceExhaustedError("x"),
        absl::CancelledError("x"), absl::DataLossError("x"), absl::OutOfRangeError("x")}) {
    const Decoded d = Decode(ToGrpcStatus(status));
    ASSERT_TRUE(d.info.has_value());
    EXPECT_EQ(d.info->reason(), absl::StatusCodeToString(status.code())) << status;
  }
  const Decoded d = Decode(ToGrpcStatus(absl::InternalError("cannot serialize")));
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "INTERNAL");
}

// An upstream error keeps the reason clients already branch on, even when
// it ended a job (FAILED_PRECONDITION, JOB_FAILED attached).
TEST(ToGrpcStatusTest, AnUpstreamReasonWinsOverAnAttachedOne) {
  const absl::Status upstream = tencent::MakeStatus(
      Api(tencent::ErrorKind::kApi, "LimitExceeded.BlueprintQuotaLimitExceeded"));
  const Decoded d = Decode(ToGrpcStatus(WithReason(upstream, reason::kJobFailed)));
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "UPSTREAM_ERROR");
}

TEST(ValidationErrorTest, OneViolationUsesItsRule) {
  const grpc::Status s = ValidationError(
      {{"blueprint_id", "BLUEPRINT_ID_MALFORMED", "blueprint_id \"x\" is not a blueprint id."}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "blueprint_id \"x\" is not a blueprint id.");
  const Decoded d = Decode(s);
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "BLUEPRINT_ID_MALFORMED");
  EXPECT_EQ(d.info->domain(), kErrorDomain);
  EXPECT_THAT(Metadata(*d.info), ElementsAre(Pair("field", "blueprint_id")));
  ASSERT_TRUE(d.bad_request.has_value());
  EXPECT_THAT(Violations(*d.bad_request),
              ElementsAre(Pair("blueprint_id", "blueprint_id \"x\" is not a blueprint id.")));
}

TEST(ValidationErrorTest, SeveralViolationsAreAllListedInOrder) {
  const grpc::Status s = ValidationError({
      {"source_region", "SOURCE_REGION_REQUIRED", "source_region is required."},
      {"destination_regions[1]", "DESTINATION_DUPLICATED", "ap-tokyo is listed twice."},
      {"destination_regions[2]", "DESTINATION_DUPLICATED", "ap-tokyo is listed three times."},
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "source_region is required. ap-tokyo is listed twice. ap-tokyo is listed three times.");
  const Decoded d = Decode(s);
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "INVALID_REQUEST");
  // The fields as BadRequest names them, comma-separated.
  EXPECT_THAT(
      Metadata(*d.info),
      ElementsAre(Pair("field", "source_region,destination_regions[1],destination_regions[2]")));
  ASSERT_TRUE(d.bad_request.has_value());
  EXPECT_THAT(Violations(*d.bad_request),
              ElementsAre(Pair("source_region", "source_region is required."),
                          Pair("destination_regions[1]", "ap-tokyo is listed twice."),
                          Pair("destination_regions[2]", "ap-tokyo is listed three times.")));
}

TEST(ValidationErrorTest, AFieldWithTwoViolationsIsNamedOnceInMetadata) {
  const Decoded d = Decode(ValidationError({
      {"labels", "TOO_MANY_LABELS", "labels has 65 entries."},
      {"labels", "LABEL_KEY_MALFORMED", "labels key \"A\" is malformed."},
      {"timeout", "TIMEOUT_OUT_OF_RANGE", "timeout 1s is too short."},
  }));
  ASSERT_TRUE(d.info.has_value());
  EXPECT_THAT(Metadata(*d.info), ElementsAre(Pair("field", "labels,timeout")));
  ASSERT_TRUE(d.bad_request.has_value());
  EXPECT_EQ(d.bad_request->field_violations_size(), 3);
}

// The worst case validation can produce (every entry of a maximal request
// violating two rules with a long description) still fits the 8 KiB of
// metadata a gRPC client accepts, and still names every field.
TEST(ValidationErrorTest, ManyLongViolationsStayWithinTheTrailerBudget) {
  std::vector<tencent::FieldViolation> violations;
  for (int i = 0; i < 24; ++i) {
    const std::string field = absl::StrCat("destination_regions[", i, "]");
    violations.push_back(
        {field, "DESTINATION_REGION_UNSUPPORTED",
         absl::StrCat(field, " \"", std::string(250, 'x'), "\" is not supported.")});
  }
  const grpc::Status s = ValidationError(violations);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LE(s.error_message().size(), 1200u);
  EXPECT_THAT(s.error_message(), HasSubstr("more in the BadRequest details)"));
  // grpc-message plus grpc-status-details-bin (base64) must stay well under 8 KiB.
  EXPECT_LT(s.error_message().size() + (s.error_details().size() + 2) / 3 * 4, 7000u);
  const Decoded d = Decode(s);
  ASSERT_TRUE(d.bad_request.has_value());
  ASSERT_EQ(d.bad_request->field_violations_size(), 24);
  EXPECT_EQ(d.bad_request->field_violations(23).field(), "destination_regions[23]");
  EXPECT_EQ(d.bad_request->field_violations(0).description(), violations[0].description);
}

TEST(ValidateJobNameTest, AcceptsSyncJobsSlashUuid) {
  EXPECT_TRUE(ValidateJobName("syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c").ok());
  EXPECT_TRUE(ValidateJobName("syncJobs/3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C").ok());
  EXPECT_TRUE(ValidateJobName(jobs::NewJobName()).ok());
}

TEST(ValidateJobNameTest, EmptyIsRequired) {
  const absl::Status s = ValidateJobName("");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  auto rule = jobs::GetFieldRule(s);
  ASSERT_TRUE(rule.has_value());
  EXPECT_EQ(rule->field, "name");
  EXPECT_EQ(rule->rule, "NAME_REQUIRED");
}

TEST(ValidateJobNameTest, MalformedNames) {
  for (const std::string bad : {
           "syncJobs/",
           "syncjobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c",
           "SyncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c",
           "jobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c",
           "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c",
           "syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c/",
           "syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5cd",
           "syncJobs//3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c",
           " syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c",
           "syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5g",
           "syncJobs/../3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4",
       }) {
    const absl::Status s = ValidateJobName(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    auto rule = jobs::GetFieldRule(s);
    ASSERT_TRUE(rule.has_value()) << bad;
    EXPECT_EQ(rule->field, "name");
    EXPECT_EQ(rule->rule, "NAME_MALFORMED") << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("syncJobs/{uuid}"));
  }
}

TEST(ValidateJobNameTest, LongNameIsNotEchoedInFull) {
  const std::string name = "syncJobs/" + std::string(5000, 'a');
  const absl::Status s = ValidateJobName(name);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 300u);
  EXPECT_THAT(std::string(s.message()), HasSubstr("..."));
  // And it reaches the client as NAME_MALFORMED on field name.
  const Decoded d = Decode(ToGrpcStatus(s));
  ASSERT_TRUE(d.info.has_value());
  EXPECT_EQ(d.info->reason(), "NAME_MALFORMED");
  ASSERT_TRUE(d.bad_request.has_value());
  ASSERT_EQ(d.bad_request->field_violations_size(), 1);
  EXPECT_EQ(d.bad_request->field_violations(0).field(), "name");
}

}  // namespace
}  // namespace blueprintsync::server
