#include "client/rpc_error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace blueprintsync::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Built the way service/server/grpc_errors.cc builds its statuses.
grpc::Status RichStatus(grpc::StatusCode code, const std::string& message,
                        const std::string& reason,
                        const std::map<std::string, std::string>& metadata,
                        const std::vector<std::pair<std::string, std::string>>& violations,
                        const std::string& domain = "blueprintsync.v1") {
  google::rpc::Status rich;
  rich.set_code(code);
  rich.set_message(message);
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  info.set_domain(domain);
  for (const auto& [k, v] : metadata) (*info.mutable_metadata())[k] = v;
  rich.add_details()->PackFrom(info);
  if (!violations.empty()) {
    google::rpc::BadRequest bad;
    for (const auto& [f, d] : violations) {
      auto* v = bad.add_field_violations();
      v->set_field(f);
      v->set_description(d);
    }
    rich.add_details()->PackFrom(bad);
  }
  return grpc::Status(code, message, rich.SerializeAsString());
}

TEST(FromGrpcStatusTest, KeepsCodeMessageAndDetails) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  grpc::Status g =
      RichStatus(grpc::StatusCode::NOT_FOUND, "no job syncJobs/x", "NOT_FOUND", {}, {});
  absl::Status s = FromGrpcStatus(g);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "no job syncJobs/x");
  auto payload = s.GetPayload(kRpcStatusPayloadUrl);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(std::string(*payload), g.error_details());
  EXPECT_FALSE(FromGrpcStatus(grpc::Status(grpc::StatusCode::INTERNAL, "x"))
                   .GetPayload(kRpcStatusPayloadUrl)
                   .has_value());
}

TEST(FormatRpcErrorTest, ValidationErrorListsFields) {
  absl::Status s = FromGrpcStatus(
      RichStatus(grpc::StatusCode::INVALID_ARGUMENT,
                 "destination_regions: ap-guangzhou is the source region; request_id: not a UUID",
                 "INVALID_REQUEST", {},
                 {{"destination_regions", "ap-guangzhou is the source region"},
                  {"request_id", "not a UUID"}}));
  EXPECT_EQ(FormatRpcError(s, "127.0.0.1:50051"),
            "error: INVALID_ARGUMENT (3): destination_regions: ap-guangzhou is the source region; "
            "request_id: not a UUID\n"
            "  field destination_regions: ap-guangzhou is the source region\n"
            "  field request_id: not a UUID\n");
}

TEST(FormatRpcErrorTest, UpstreamErrorShowsTencentCodeActionAndRequestId) {
  absl::Status s = FromGrpcStatus(
      RichStatus(grpc::StatusCode::FAILED_PRECONDITION, "blueprint is not NORMAL", "UPSTREAM_ERROR",
                 {{"tencent_code", "UnsupportedOperation.InvalidBlueprintState"},
                  {"tencent_request_id", "6e3f0d4a-1111-2222-3333-444455556666"},
                  {"action", "SyncBlueprint"}},
                 {}));
  EXPECT_EQ(FormatRpcError(s),
            "error: FAILED_PRECONDITION (9): blueprint is not NORMAL\n"
            "  tencent code: UnsupportedOperation.InvalidBlueprintState\n"
            "  tencent action: SyncBlueprint\n"
            "  tencent request id: 6e3f0d4a-1111-2222-3333-444455556666\n");
}

TEST(FormatRpcErrorTest, FieldRuleWithMatchingViolationIsListedOnce) {
  absl::Status s = FromGrpcStatus(RichStatus(grpc::StatusCode::INVALID_ARGUMENT,
                                             "request_id reused with a different request",
                                             "REQUEST_ID_REUSED", {{"field", "request_id"}},
                                             {{"request_id", "reused with a different request"}}));
  const std::string text = FormatRpcError(s);
  EXPECT_EQ(text,
            "error: INVALID_ARGUMENT (3): request_id reused with a different request\n"
            "  field request_id: reused with a different request\n");
}

TEST(FormatRpcErrorTest, FieldWithoutViolationStillNamed) {
  absl::Status s = FromGrpcStatus(
      RichStatus(grpc::StatusCode::INVALID_ARGUMENT, "bad", "R", {{"field", "page_size"}}, {}));
  EXPECT_EQ(FormatRpcError(s), "error: INVALID_ARGUMENT (3): bad\n  field page_size\n");
}

TEST(FormatRpcErrorTest, PlainAndUnparseableDetailsGiveOneLine) {
  EXPECT_EQ(FormatRpcError(absl::InternalError("boom")), "error: INTERNAL (13): boom\n");
  absl::Status s = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::INTERNAL, "boom", std::string("\xff\xff\x01garbage", 10)));
  EXPECT_EQ(FormatRpcError(s), "error: INTERNAL (13): boom\n");
}

TEST(FormatRpcErrorTest, IgnoresErrorInfoOfOtherDomains) {
  absl::Status s = FromGrpcStatus(RichStatus(grpc::StatusCode::PERMISSION_DENIED, "denied", "X",
                                             {{"tencent_code", "Spoofed"}}, {}, "example.com"));
  EXPECT_EQ(FormatRpcError(s), "error: PERMISSION_DENIED (7): denied\n");
}

TEST(FormatRpcErrorTest, UnreachableServerGetsAHint) {
  EXPECT_EQ(FormatRpcError(absl::UnavailableError("failed to connect"), "10.0.0.1:50051"),
            "error: UNAVAILABLE (14): failed to connect\n"
            "  server: 10.0.0.1:50051 (set with --server or BLUEPRINT_SYNC_SERVER)\n");
  // The server answered (details from our domain): not a connectivity problem.
  absl::Status answered = FromGrpcStatus(
      RichStatus(grpc::StatusCode::UNAVAILABLE, "upstream down", "UPSTREAM_UNAVAILABLE", {}, {}));
  EXPECT_THAT(FormatRpcError(answered, "10.0.0.1:50051"), Not(HasSubstr("server:")));
}

TEST(FormatRpcErrorTest, NeutralisesControlCharactersFromTheServer) {
  absl::Status s =
      FromGrpcStatus(RichStatus(grpc::StatusCode::INVALID_ARGUMENT, "bad\x1b]0;pwned\x07", "R",
                                {{"tencent_code", "A\nB"}}, {{"f\x1b", "d\r"}}));
  const std::string text = FormatRpcError(s);
  EXPECT_THAT(text, Not(HasSubstr("\x1b")));
  EXPECT_THAT(text, Not(HasSubstr("\r")));
  EXPECT_THAT(text, HasSubstr("error: INVALID_ARGUMENT (3): bad?]0;pwned?\n"));
  EXPECT_THAT(text, HasSubstr("  tencent code: A?B\n"));
  EXPECT_THAT(text, HasSubstr("  field f?: d?\n"));
}

TEST(CodeLabelTest, NamesKnownAndUnknownCodes) {
  EXPECT_EQ(CodeLabel(0), "OK (0)");
  EXPECT_EQ(CodeLabel(16), "UNAUTHENTICATED (16)");
  EXPECT_EQ(CodeLabel(42), "CODE 42 (42)");
}

TEST(FormatSyncErrorTest, IncludesTencentFieldsWhenPresent) {
  blueprintsync::v1::SyncError e;
  e.set_code(9);
  e.set_message("copy failed");
  EXPECT_EQ(FormatSyncError(e), "FAILED_PRECONDITION (9): copy failed");
  e.set_tencent_request_id("req-1");
  EXPECT_EQ(FormatSyncError(e), "FAILED_PRECONDITION (9): copy failed (request id req-1)");
  e.set_tencent_code("FailedOperation.SyncBlueprintFailed");
  EXPECT_EQ(FormatSyncError(e),
            "FAILED_PRECONDITION (9): copy failed (tencent code "
            "FailedOperation.SyncBlueprintFailed, request id req-1)");
}

}  // namespace
}  // namespace blueprintsync::cli
