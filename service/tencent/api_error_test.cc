#include "service/tencent/api_error.h"

#include <string>
#include <vector>

#include "absl/strings/cord.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blueprintsync::tencent {
namespace {

using ::testing::HasSubstr;

constexpr char kTypeUrl[] = "type.googleapis.com/blueprintsync.tencent.ApiError";

ApiError Api(std::string code) {
  ApiError e;
  e.kind = ErrorKind::kApi;
  e.code = std::move(code);
  return e;
}

ApiError Kind(ErrorKind kind, std::string code = "") {
  ApiError e;
  e.kind = kind;
  e.code = std::move(code);
  return e;
}

TEST(ErrorKindNameTest, EveryKindHasADistinctName) {
  const std::vector<ErrorKind> kinds = {ErrorKind::kApi,
                                        ErrorKind::kHttpStatus,
                                        ErrorKind::kTransport,
                                        ErrorKind::kOutcomeUnknown,
                                        ErrorKind::kMalformedResponse,
                                        ErrorKind::kCredentials,
                                        ErrorKind::kLocal};
  EXPECT_EQ(ErrorKindName(ErrorKind::kApi), "API");
  EXPECT_EQ(ErrorKindName(ErrorKind::kHttpStatus), "HTTP_STATUS");
  EXPECT_EQ(ErrorKindName(ErrorKind::kTransport), "TRANSPORT");
  EXPECT_EQ(ErrorKindName(ErrorKind::kOutcomeUnknown), "OUTCOME_UNKNOWN");
  EXPECT_EQ(ErrorKindName(ErrorKind::kMalformedResponse), "MALFORMED_RESPONSE");
  EXPECT_EQ(ErrorKindName(ErrorKind::kCredentials), "CREDENTIALS");
  EXPECT_EQ(ErrorKindName(ErrorKind::kLocal), "LOCAL");
  for (size_t i = 0; i < kinds.size(); ++i) {
    for (size_t j = i + 1; j < kinds.size(); ++j) {
      EXPECT_NE(ErrorKindName(kinds[i]), ErrorKindName(kinds[j]));
    }
  }
}

TEST(ApiErrorTest, OnlyOutcomeUnknownMayHaveExecuted) {
  EXPECT_TRUE(Kind(ErrorKind::kOutcomeUnknown).MayHaveExecuted());
  for (ErrorKind kind :
       {ErrorKind::kApi, ErrorKind::kHttpStatus, ErrorKind::kTransport,
        ErrorKind::kMalformedResponse, ErrorKind::kCredentials, ErrorKind::kLocal}) {
    EXPECT_FALSE(Kind(kind).MayHaveExecuted()) << ErrorKindName(kind);
  }
}

TEST(CanonicalCodeTest, NonApiKinds) {
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kOutcomeUnknown, "ClientError.OutcomeUnknown")),
            absl::StatusCode::kUnknown);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kTransport, "ClientError.NetworkError")),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kHttpStatus, "ClientError.HttpStatusCodeError")),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kMalformedResponse, "ClientError.ParseJsonError")),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kCredentials, "ClientError.CredentialError")),
            absl::StatusCode::kInternal);
  // The kind decides, not a Tencent-looking code.
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kTransport, "InvalidParameter")),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kCredentials, "AuthFailure")),
            absl::StatusCode::kInternal);
}

TEST(CanonicalCodeTest, LocalKind) {
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kLocal, "ClientError.DeadlineExceeded")),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kLocal, "ClientError.InvalidArgument")),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kLocal, "ClientError.InvalidArgument.RequestTooLarge")),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kLocal, "ClientError.DeadlineExceeded.Other")),
            absl::StatusCode::kInternal);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kLocal, "ClientError.Other")),
            absl::StatusCode::kInternal);
  EXPECT_EQ(CanonicalCode(Kind(ErrorKind::kLocal, "")), absl::StatusCode::kInternal);
}

struct Row {
  const char* code;
  absl::StatusCode expected;
};

TEST(CanonicalCodeTest, ApiCodes) {
  const Row rows[] = {
      // Our credentials or configuration.
      {"AuthFailure", absl::StatusCode::kInternal},
      {"AuthFailure.SignatureFailure", absl::StatusCode::kInternal},
      {"AuthFailure.SignatureExpire", absl::StatusCode::kInternal},
      {"AuthFailure.SecretIdNotFound", absl::StatusCode::kInternal},
      {"UnauthorizedOperation.NoPermission", absl::StatusCode::kInternal},
      {"InvalidAction", absl::StatusCode::kInternal},
      {"NoSuchVersion", absl::StatusCode::kInternal},
      {"ActionOffline", absl::StatusCode::kInternal},
      {"NoSuchProduct", absl::StatusCode::kInternal},
      {"UnsupportedProtocol", absl::StatusCode::kInternal},
      // Account state.
      {"UnauthorizedOperation.CertificationNeedUpgrade", absl::StatusCode::kFailedPrecondition},
      {"UnauthorizedOperation.NotCertification", absl::StatusCode::kFailedPrecondition},
      // Concurrent operations.
      {"OperationDenied.BlueprintOperationInProgress", absl::StatusCode::kAborted},
      {"UnsupportedOperation.BlueprintLatestOperationUnfinished", absl::StatusCode::kAborted},
      {"ResourceInUse", absl::StatusCode::kAborted},
      {"ResourceInUse.Something", absl::StatusCode::kAborted},
      // Bad requests.
      {"InvalidParameter", absl::StatusCode::kInvalidArgument},
      {"InvalidParameter.ParameterConflict", absl::StatusCode::kInvalidArgument},
      {"InvalidParameterValue", absl::StatusCode::kInvalidArgument},
      {"InvalidParameterValue.BlueprintIdMalformed", absl::StatusCode::kInvalidArgument},
      {"InvalidParameterValue.DestinationRegionSameAsSourceRegion",
       absl::StatusCode::kInvalidArgument},
      {"InvalidParameterValue.Duplicated", absl::StatusCode::kInvalidArgument},
      {"InvalidParameterValue.NotSupportCrossBorderSyncBlueprint",
       absl::StatusCode::kInvalidArgument},
      {"InvalidParameterValue.UnavailableRegion", absl::StatusCode::kInvalidArgument},
      {"MissingParameter", absl::StatusCode::kInvalidArgument},
      {"UnknownParameter", absl::StatusCode::kInvalidArgument},
      {"UnsupportedRegion", absl::StatusCode::kInvalidArgument},
      {"ResourceNotFound", absl::StatusCode::kNotFound},
      {"ResourceNotFound.PrivateBlueprintNotFound", absl::StatusCode::kNotFound},
      // Quotas.
      {"LimitExceeded", absl::StatusCode::kResourceExhausted},
      {"LimitExceeded.SyncBlueprintQuotaLimitExceeded", absl::StatusCode::kResourceExhausted},
      {"FailedOperation.NumLimitError", absl::StatusCode::kResourceExhausted},
      {"RequestSizeLimitExceeded", absl::StatusCode::kResourceExhausted},
      // Transient.
      {"RequestLimitExceeded", absl::StatusCode::kUnavailable},
      {"RequestLimitExceeded.UinLimitExceeded", absl::StatusCode::kUnavailable},
      {"RequestLimitExceeded.GlobalRegionUinLimitExceeded", absl::StatusCode::kUnavailable},
      {"InternalError", absl::StatusCode::kUnavailable},
      {"InternalError.InvalidCommandNotFound", absl::StatusCode::kUnavailable},
      {"ServiceUnavailable", absl::StatusCode::kUnavailable},
      {"ResourceUnavailable", absl::StatusCode::kUnavailable},
      {"FailedOperation.DescribeBlueprintQuotaFailed", absl::StatusCode::kUnavailable},
      {"FailedOperation.RequestError", absl::StatusCode::kUnavailable},
      // Resource or account state.
      {"FailedOperation", absl::StatusCode::kFailedPrecondition},
      {"FailedOperation.BalanceInsufficient", absl::StatusCode::kFailedPrecondition},
      {"FailedOperation.UnableToSyncBlueprint", absl::StatusCode::kFailedPrecondition},
      {"UnsupportedOperation", absl::StatusCode::kFailedPrecondition},
      {"UnsupportedOperation.BlueprintCurStateInvalid", absl::StatusCode::kFailedPrecondition},
      {"UnsupportedOperation.BlueprintOccupied", absl::StatusCode::kFailedPrecondition},
      {"ResourceInsufficient", absl::StatusCode::kFailedPrecondition},
      {"OperationDenied", absl::StatusCode::kFailedPrecondition},
      {"OperationDenied.Other", absl::StatusCode::kFailedPrecondition},
      // Other unauthorized operations.
      {"UnauthorizedOperation", absl::StatusCode::kInternal},
      {"UnauthorizedOperation.TokenInvalid", absl::StatusCode::kInternal},
      // Anything else.
      {"SomethingNew", absl::StatusCode::kUnknown},
      {"", absl::StatusCode::kUnknown},
      // Matching is on whole dotted components, not raw prefixes.
      {"ResourceNotFoundX", absl::StatusCode::kUnknown},
      {"LimitExceededSoon", absl::StatusCode::kUnknown},
      {"FailedOperationX.NumLimitError", absl::StatusCode::kUnknown},
      {"FailedOperation.NumLimitErrorX", absl::StatusCode::kFailedPrecondition},
      // A more specific entry wins even when the sub-code goes deeper.
      {"FailedOperation.NumLimitError.Deeper", absl::StatusCode::kResourceExhausted},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(CanonicalCode(Api(row.code)), row.expected) << "code \"" << row.code << "\"";
  }
}

TEST(MakeStatusTest, FullMessageAndCode) {
  ApiError e = Api("InvalidParameterValue.Duplicated");
  e.action = "SyncBlueprint";
  e.message = "duplicate values are not allowed";
  e.request_id = "e35a5b7b-4dfa-49f8-8729-ba5c504807e0";
  e.http_status = 200;
  const absl::Status status = MakeStatus(e);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "SyncBlueprint: InvalidParameterValue.Duplicated: duplicate values are not allowed "
            "(RequestId e35a5b7b-4dfa-49f8-8729-ba5c504807e0)");
}

TEST(MakeStatusTest, EmptyPartsAreOmitted) {
  ApiError e = Kind(ErrorKind::kTransport, "ClientError.NetworkError");
  e.action = "DescribeBlueprints";
  e.message = "connection refused";
  EXPECT_EQ(MakeStatus(e).message(),
            "DescribeBlueprints: ClientError.NetworkError: connection refused");

  ApiError no_action = Api("InternalError");
  no_action.message = "oops";
  no_action.request_id = "r-1";
  EXPECT_EQ(MakeStatus(no_action).message(), "InternalError: oops (RequestId r-1)");

  ApiError no_message = Api("ResourceNotFound");
  no_message.action = "SyncBlueprint";
  EXPECT_EQ(MakeStatus(no_message).message(), "SyncBlueprint: ResourceNotFound");

  ApiError only_id;
  only_id.request_id = "r-2";
  EXPECT_EQ(MakeStatus(only_id).message(), "(RequestId r-2)");
  EXPECT_EQ(MakeStatus(ApiError{}).message(), "");
  EXPECT_EQ(MakeStatus(ApiError{}).code(), absl::StatusCode::kUnknown);
}

TEST(MakeStatusTest, PayloadRoundTripsEveryField) {
  for (ErrorKind kind :
       {ErrorKind::kApi, ErrorKind::kHttpStatus, ErrorKind::kTransport, ErrorKind::kOutcomeUnknown,
        ErrorKind::kMalformedResponse, ErrorKind::kCredentials, ErrorKind::kLocal}) {
    ApiError e;
    e.kind = kind;
    e.code = "Some.Code";
    // Characters JSON has to escape, and non-ASCII text.
    e.message = "quote \" backslash \\ newline \n tab \t \xe9\x95\x9c\xe5\x83\x8f";
    e.request_id = "req-123";
    e.action = "SyncBlueprint";
    e.http_status = 503;
    const absl::Status status = MakeStatus(e);
    EXPECT_TRUE(status.GetPayload(kTypeUrl).has_value());
    const std::optional<ApiError> back = GetApiError(status);
    ASSERT_TRUE(back.has_value()) << ErrorKindName(kind);
    EXPECT_EQ(back->kind, kind);
    EXPECT_EQ(back->code, e.code);
    EXPECT_EQ(back->message, e.message);
    EXPECT_EQ(back->request_id, e.request_id);
    EXPECT_EQ(back->action, e.action);
    EXPECT_EQ(back->http_status, 503);
    EXPECT_EQ(back->MayHaveExecuted(), kind == ErrorKind::kOutcomeUnknown);
  }
}

TEST(MakeStatusTest, PayloadSurvivesStatusCopiesAndEmptyFields) {
  const absl::Status original = MakeStatus(ApiError{});
  const absl::Status copy = original;  // NOLINT: copying is the point
  const std::optional<ApiError> back = GetApiError(copy);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->kind, ErrorKind::kApi);
  EXPECT_EQ(back->code, "");
  EXPECT_EQ(back->http_status, 0);
}

TEST(GetApiErrorTest, StatusesWithoutPayload) {
  EXPECT_FALSE(GetApiError(absl::OkStatus()).has_value());
  EXPECT_FALSE(GetApiError(absl::UnavailableError("x")).has_value());
  absl::Status other(absl::StatusCode::kInternal, "x");
  other.SetPayload("type.googleapis.com/other", absl::Cord("{}"));
  EXPECT_FALSE(GetApiError(other).has_value());
}

TEST(GetApiErrorTest, CorruptPayloadIsIgnored) {
  for (const char* payload :
       {"", "not json", "[]", "{}",
        R"({"kind":"NOPE","code":"","message":"","request_id":"",)"
        R"("action":"","http_status":0})",
        R"({"kind":"API","code":1,"message":"","request_id":"","action":"","http_status":0})",
        R"({"kind":"API","code":"","message":"","request_id":"","action":""})"}) {
    absl::Status status(absl::StatusCode::kInternal, "x");
    status.SetPayload(kTypeUrl, absl::Cord(payload));
    EXPECT_FALSE(GetApiError(status).has_value()) << payload;
  }
}

TEST(MakeStatusTest, MessageContainsNothingButTheFields) {
  ApiError e = Api("AuthFailure.SignatureFailure");
  e.action = "SyncBlueprint";
  e.message = "The provided credentials could not be validated.";
  const absl::Status status = MakeStatus(e);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("AuthFailure.SignatureFailure"));
  EXPECT_THAT(std::string(status.message()), ::testing::Not(HasSubstr("RequestId")));
}

}  // namespace
}  // namespace blueprintsync::tencent
