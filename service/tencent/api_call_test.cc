// The shared signed-request path: what goes on the wire (checked with the
// emulator's independent TC3 verifier, not with our signer), how every kind
// of answer becomes an ApiError, and the outcome-unknown rule.
#include "service/tencent/api_call.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/testing/fake_clock.h"
#include "service/tencent/crypto.h"
#include "service/tencent/testing/fake_http_transport.h"
#include "tests/emulator/tc3_verifier.h"

namespace blueprintsync::tencent {
namespace {

using ::blueprintsync::testing::Answer;
using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::FakeHttpTransport;
using ::blueprintsync::testing::TransportFailure;
using ::testing::HasSubstr;

constexpr char kSecretId[] = "AKIDapiCallTestSecretId000000000000";
constexpr char kSecretKey[] = "apiCallTestSecretKey0000000000000";
constexpr char kToken[] = "api-call-test-token";
constexpr int64_t kNow = 1551113065;
constexpr char kOk[] = R"({"Response":{"Answer":1,"RequestId":"ok-1"}})";

std::string ErrorBody(const std::string& code) {
  return absl::StrCat(R"({"Response":{"Error":{"Code":")", code,
                      R"(","Message":"the message"},"RequestId":"err-1"}})");
}

std::map<std::string, std::string> HeaderMap(const HttpRequest& request) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : request.headers) {
    EXPECT_TRUE(out.emplace(name, value).second) << "duplicate header " << name;
  }
  return out;
}

class ApiCallTest : public ::testing::Test {
 protected:
  std::unique_ptr<TencentApiCaller> Caller(std::string endpoint = "http://127.0.0.1:18443",
                                           std::string language = "") {
    absl::StatusOr<std::unique_ptr<TencentApiCaller>> caller = MakeTencentApiCaller(
        {std::move(endpoint), "lighthouse", "2020-03-24", std::move(language), "blueprint-sync"},
        transport_, &clock_);
    EXPECT_TRUE(caller.ok()) << caller.status();
    return caller.ok() ? *std::move(caller) : nullptr;
  }

  ApiRequest Request(Idempotency idempotency = Idempotency::kIdempotent) {
    ApiRequest request;
    request.action = "SyncBlueprint";
    request.region = "ap-guangzhou";
    request.body = R"({"BlueprintId":"lhbp-1"})";
    request.idempotency = idempotency;
    request.credentials = &credentials_;
    return request;
  }

  // The ApiError of one call answered with `answer`.
  ApiError ErrorFor(absl::StatusOr<HttpResponse> answer, Idempotency idempotency) {
    transport_->Push(std::move(answer));
    absl::StatusOr<std::string> body = Caller()->Call(Request(idempotency));
    EXPECT_FALSE(body.ok());
    if (body.ok()) return {};
    std::optional<ApiError> error = GetApiError(body.status());
    EXPECT_TRUE(error.has_value()) << body.status();
    return error.value_or(ApiError{});
  }

  FakeClock clock_{absl::FromUnixSeconds(kNow)};
  std::shared_ptr<FakeHttpTransport> transport_ = std::make_shared<FakeHttpTransport>(&clock_);
  Credentials credentials_{kSecretId, kSecretKey, kToken, absl::InfiniteFuture()};
};

TEST(ParseEndpointTest, AcceptsSchemeHostAndPort) {
  absl::StatusOr<ApiEndpoint> e = ParseEndpoint("https://lighthouse.tencentcloudapi.com//");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->url, "https://lighthouse.tencentcloudapi.com/");
  EXPECT_EQ(e->host, "lighthouse.tencentcloudapi.com");
  e = ParseEndpoint("http://127.0.0.1:8080");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->url, "http://127.0.0.1:8080/");
  EXPECT_EQ(e->host, "127.0.0.1:8080");
  e = ParseEndpoint("http://[::1]:8080/");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->host, "[::1]:8080");
}

TEST(ParseEndpointTest, RefusesAnythingThatIsNotJustAHost) {
  for (const char* bad :
       {"", "lighthouse.tencentcloudapi.com", "ftp://host", "HTTPS://host", "https://", "https:///",
        "https://host/v3", "https://host?x=1", "https://host#f", "https://user@host",
        "https://ho st", "https://host\t", "https://host\r\nX: y", "https://host\\x",
        "https://:443", "sts.tencentcloudapi.com://x"}) {
    absl::StatusOr<ApiEndpoint> e = ParseEndpoint(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(e.status())) << "'" << bad << "': " << e.status();
  }
  EXPECT_FALSE(MakeTencentApiCaller({"https://host/path", "sts", "2018-08-13", "", ""},
                                    std::make_shared<FakeHttpTransport>())
                   .ok());
}

TEST_F(ApiCallTest, SignedRequestPassesTheIndependentVerifier) {
  transport_->Push(Answer(200, kOk));
  absl::StatusOr<std::string> body = Caller("http://127.0.0.1:18443", "en-US")->Call(Request());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, kOk);

  ASSERT_EQ(transport_->requests().size(), 1u);
  const HttpRequest sent = transport_->requests()[0];
  EXPECT_EQ(sent.url, "http://127.0.0.1:18443/");
  EXPECT_EQ(sent.body, R"({"BlueprintId":"lhbp-1"})");
  std::map<std::string, std::string> h = HeaderMap(sent);
  EXPECT_EQ(h.size(), 10u);
  EXPECT_EQ(h["Content-Type"], "application/json");
  EXPECT_EQ(h["Host"], "127.0.0.1:18443");
  EXPECT_EQ(h["X-TC-Action"], "SyncBlueprint");
  EXPECT_EQ(h["X-TC-Version"], "2020-03-24");
  EXPECT_EQ(h["X-TC-Timestamp"], absl::StrCat(kNow));
  EXPECT_EQ(h["X-TC-Region"], "ap-guangzhou");
  EXPECT_EQ(h["X-TC-Token"], kToken);
  EXPECT_EQ(h["X-TC-Language"], "en-US");
  EXPECT_EQ(h["X-TC-RequestClient"], "blueprint-sync");

  // What Tencent's gateway does with the request as received.
  absl::StatusOr<emulator::Tc3Authorization> auth =
      emulator::ParseTc3Authorization(h["Authorization"]);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(auth->secret_id, kSecretId);
  EXPECT_EQ(auth->service, "lighthouse");
  EXPECT_EQ(auth->date, emulator::UtcDateOf(kNow));
  std::vector<std::pair<std::string, std::string>> signed_headers;
  for (const std::string& name : auth->signed_header_names) {
    std::string raw;
    for (const auto& [sent_name, value] : sent.headers) {
      if (absl::AsciiStrToLower(sent_name) == name) raw = value;
    }
    signed_headers.emplace_back(name, emulator::CanonicalHeaderValue(name, raw));
  }
  const std::string canonical = emulator::BuildCanonicalRequest(
      "POST", "/", "", signed_headers, auth->signed_headers, crypto::Sha256Hex(sent.body));
  EXPECT_EQ(auth->signature, emulator::ExpectedTc3Signature(kSecretKey, auth->date, "lighthouse",
                                                            absl::StrCat(kNow), canonical));
}

TEST_F(ApiCallTest, UnsignedCallSendsSkipAndNoToken) {
  transport_->Push(Answer(200, kOk));
  ApiRequest request = Request();
  request.credentials = nullptr;
  request.region = "";
  ASSERT_TRUE(Caller()->Call(request).ok());
  std::map<std::string, std::string> h = HeaderMap(transport_->requests().at(0));
  EXPECT_EQ(h["Authorization"], "SKIP");
  EXPECT_EQ(h.count("X-TC-Token"), 0u);
  EXPECT_EQ(h.count("X-TC-Region"), 0u);
  EXPECT_EQ(h.count("X-TC-Language"), 0u);
}

TEST_F(ApiCallTest, FreshConnectionAndTimeoutFollowTheRequest) {
  transport_->PushN(3, Answer(200, kOk));
  ApiRequest request = Request(Idempotency::kNonIdempotent);
  ASSERT_TRUE(Caller()->Call(request).ok());
  request = Request();
  request.timeout = absl::Seconds(10);
  ASSERT_TRUE(Caller()->Call(request).ok());
  request.deadline = clock_.Now() + absl::Seconds(4);
  ASSERT_TRUE(Caller()->Call(request).ok());
  const std::vector<HttpRequest> sent = transport_->requests();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_TRUE(sent[0].fresh_connection);
  EXPECT_EQ(sent[0].timeout, absl::ZeroDuration());
  EXPECT_FALSE(sent[1].fresh_connection);
  EXPECT_EQ(sent[1].timeout, absl::Seconds(10));
  EXPECT_EQ(sent[2].timeout, absl::Seconds(4));
}

TEST_F(ApiCallTest, PassedDeadlineIsNotSent) {
  ApiRequest request = Request();
  request.deadline = clock_.Now();
  absl::StatusOr<std::string> body = Caller()->Call(request);
  std::optional<ApiError> error = GetApiError(body.status());
  ASSERT_TRUE(error.has_value()) << body.status();
  EXPECT_EQ(error->kind, ErrorKind::kLocal);
  EXPECT_EQ(error->code, "ClientError.DeadlineExceeded");
  EXPECT_TRUE(transport_->requests().empty());
}

TEST_F(ApiCallTest, ErrorEnvelopeIsAnApiErrorWhateverTheStatus) {
  for (long status : {200L, 400L}) {
    ApiError e =
        ErrorFor(Answer(status, ErrorBody("InvalidParameterValue")), Idempotency::kNonIdempotent);
    EXPECT_EQ(e.kind, ErrorKind::kApi);
    EXPECT_EQ(e.code, "InvalidParameterValue");
    EXPECT_EQ(e.message, "the message");
    EXPECT_EQ(e.request_id, "err-1");
    EXPECT_EQ(e.action, "SyncBlueprint");
    EXPECT_EQ(e.http_status, status);
  }
}

TEST_F(ApiCallTest, NonSuccessStatusWithoutEnvelopeIsHttpStatus) {
  ApiError e = ErrorFor(Answer(403, "<html>no</html>", "text/html"), Idempotency::kNonIdempotent);
  EXPECT_EQ(e.kind, ErrorKind::kHttpStatus);
  EXPECT_EQ(e.code, "ClientError.HttpStatusCodeError");
  EXPECT_EQ(e.http_status, 403);
  EXPECT_THAT(e.message, HasSubstr("text/html"));
}

TEST_F(ApiCallTest, TransportFailuresKeepTheirKindAndGainTheAction) {
  for (ErrorKind kind : {ErrorKind::kTransport, ErrorKind::kOutcomeUnknown}) {
    ApiError e = ErrorFor(TransportFailure(kind), Idempotency::kIdempotent);
    EXPECT_EQ(e.kind, kind);
    EXPECT_EQ(e.action, "SyncBlueprint");
  }
  // A transport error without an ApiError may have been sent.
  ApiError e = ErrorFor(absl::UnknownError("odd"), Idempotency::kIdempotent);
  EXPECT_EQ(e.kind, ErrorKind::kOutcomeUnknown);
}

TEST_F(ApiCallTest, IdempotentServerFailuresStayWhatTheyAre) {
  EXPECT_EQ(ErrorFor(Answer(503, "busy", "text/plain"), Idempotency::kIdempotent).kind,
            ErrorKind::kHttpStatus);
  EXPECT_EQ(ErrorFor(Answer(200, ErrorBody("InternalError")), Idempotency::kIdempotent).kind,
            ErrorKind::kApi);
}

TEST_F(ApiCallTest, NonIdempotentServerFailuresAreOutcomeUnknown) {
  ApiError e = ErrorFor(Answer(502, "bad gateway", "text/plain"), Idempotency::kNonIdempotent);
  EXPECT_EQ(e.kind, ErrorKind::kOutcomeUnknown);
  EXPECT_EQ(e.code, "ClientError.HttpStatusCodeError");
  EXPECT_EQ(e.http_status, 502);

  e = ErrorFor(Answer(200, ErrorBody("InternalError.Unknown")), Idempotency::kNonIdempotent);
  EXPECT_EQ(e.kind, ErrorKind::kOutcomeUnknown);
  EXPECT_EQ(e.code, "InternalError.Unknown");
  EXPECT_EQ(e.request_id, "err-1");

  e = ErrorFor(Answer(500, ErrorBody("LimitExceeded")), Idempotency::kNonIdempotent);
  EXPECT_EQ(e.kind, ErrorKind::kOutcomeUnknown);

  e = ErrorFor(TransportFailure(ErrorKind::kTransport), Idempotency::kNonIdempotent);
  EXPECT_EQ(e.kind, ErrorKind::kTransport) << "nothing was sent, so it did not run";
}

TEST_F(ApiCallTest, MalformedAnswerIsOutcomeUnknownOnlyForNonIdempotentActions) {
  auto decode = [](std::string_view body) -> absl::StatusOr<int> {
    ApiError error;
    error.kind = ErrorKind::kMalformedResponse;
    error.code = "ClientError.ParseJsonError";
    error.message = absl::StrCat("cannot read ", body.size(), " bytes");
    error.http_status = 200;
    return MakeStatus(error);
  };
  transport_->PushN(2, Answer(200, "{not json"));
  absl::StatusOr<int> r = CallAndDecode(*Caller(), Request(Idempotency::kIdempotent), decode);
  EXPECT_EQ(GetApiError(r.status())->kind, ErrorKind::kMalformedResponse);
  r = CallAndDecode(*Caller(), Request(Idempotency::kNonIdempotent), decode);
  EXPECT_EQ(GetApiError(r.status())->kind, ErrorKind::kOutcomeUnknown);
  EXPECT_EQ(GetApiError(r.status())->code, "ClientError.ParseJsonError");
}

}  // namespace
}  // namespace blueprintsync::tencent
