#include "service/tencent/lighthouse_client.h"

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/testing/fake_clock.h"
#include "service/tencent/api_error.h"
#include "service/tencent/lighthouse_json.h"
#include "service/tencent/tc3_signer.h"
#include "service/tencent/testing/fake_http_transport.h"

namespace blueprintsync::tencent {
namespace {

using ::blueprintsync::testing::Answer;
using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::FakeHttpTransport;
using ::blueprintsync::testing::TransportFailure;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Return;
using ::testing::UnorderedElementsAre;

constexpr char kSecretId[] = "AKIDtestSECRETID0000000000000000EXAMPLE";
constexpr char kSecretKey[] = "testSecretKeyValue0000000000KEYEXAMPLE";
constexpr char kToken[] = "session-token-value-0123456789";

constexpr char kSyncOk[] =
    R"({"Response":{"DestinationRegionBlueprintSet":[{"Region":"ap-singapore","BlueprintId":"lhbp-lf3gjs2f"},)"
    R"({"Region":"ap-hongkong","BlueprintId":"lhbp-lfle246l"}],"RequestId":"e35a5b7b-4dfa-49f8-8729-ba5c504807e0"}})";
constexpr char kDescribeOk[] =
    R"({"Response":{"TotalCount":1,"BlueprintSet":[{"BlueprintId":"lhbp-ls883feh","BlueprintState":"NORMAL"}],"RequestId":"d-1"}})";
constexpr char kDeleteOk[] = R"({"Response":{"RequestId":"del-1"}})";
constexpr char kRegionsOk[] =
    R"({"Response":{"TotalCount":1,"RegionSet":[{"Region":"ap-beijing","RegionName":"Beijing","RegionState":"AVAILABLE","IsChinaMainland":true}],"RequestId":"g-1"}})";

std::string ErrorBody(const std::string& code, const std::string& request_id = "err-req") {
  return R"({"Response":{"Error":{"Code":")" + code + R"(","Message":"message for )" + code +
         R"("},"RequestId":")" + request_id + R"("}})";
}

class FakeCredentialProvider final : public CredentialProvider {
 public:
  explicit FakeCredentialProvider(absl::StatusOr<Credentials> result)
      : result_(std::move(result)) {}
  absl::StatusOr<Credentials> GetCredentials() override { return result_; }
  std::string Name() const override { return "fake"; }

 private:
  absl::StatusOr<Credentials> result_;
};

Credentials TestCredentials(bool with_token) {
  Credentials c;
  c.secret_id = kSecretId;
  c.secret_key = kSecretKey;
  if (with_token) c.token = kToken;
  return c;
}

std::map<std::string, std::string> HeaderMap(const HttpRequest& request) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : request.headers) {
    EXPECT_TRUE(out.emplace(name, value).second) << "duplicate header " << name;
  }
  return out;
}

std::vector<std::string> HeaderNames(const HttpRequest& request) {
  std::vector<std::string> out;
  for (const auto& header : request.headers) out.push_back(header.first);
  return out;
}

SyncBlueprintRequest SyncRequest() {
  SyncBlueprintRequest r;
  r.region = "ap-guangzhou";
  r.blueprint_id = "lhbp-ls883feh";
  r.destination_regions = {"ap-shanghai", "ap-beijing"};
  return r;
}

DescribeBlueprintsRequest DescribeRequest() {
  DescribeBlueprintsRequest r;
  r.region = "ap-singapore";
  r.blueprint_ids = {"lhbp-ls883feh"};
  return r;
}

DeleteBlueprintsRequest DeleteRequest() {
  DeleteBlueprintsRequest r;
  r.region = "ap-shanghai";
  r.blueprint_ids = {"lhbp-lf3gjs2f", "lhbp-lfle246l"};
  return r;
}

ApiError ErrorOf(const absl::Status& status) {
  std::optional<ApiError> e = GetApiError(status);
  EXPECT_TRUE(e.has_value()) << status;
  return e.value_or(ApiError{});
}

void ExpectNoSecrets(const absl::Status& status) {
  const std::string text = status.ToString();
  EXPECT_THAT(text, Not(HasSubstr(kSecretKey)));
  EXPECT_THAT(text, Not(HasSubstr(kToken)));
  EXPECT_THAT(text, Not(HasSubstr("Signature=")));
}

// --- LighthouseHttpClient: the request on the wire ---

class HttpClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<LighthouseClient> MakeClient(bool with_token = true,
                                               std::string endpoint = "http://127.0.0.1:18443",
                                               std::string language = "") {
    LighthouseClientOptions options;
    options.endpoint = std::move(endpoint);
    options.language = std::move(language);
    return MakeLighthouseHttpClient(
        options, std::make_shared<FakeCredentialProvider>(TestCredentials(with_token)), transport_,
        &clock_);
  }

  FakeClock clock_{absl::FromUnixSeconds(1551113065)};
  std::shared_ptr<FakeHttpTransport> transport_ = std::make_shared<FakeHttpTransport>(&clock_);
};

TEST_F(HttpClientTest, SyncBlueprintRequestIsSignedForLighthouse) {
  transport_->Push(Answer(200, kSyncOk));
  auto client = MakeClient(/*with_token=*/true, "http://127.0.0.1:18443", "en-US");
  absl::StatusOr<SyncBlueprintResponse> r = client->SyncBlueprint(SyncRequest(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->destinations.size(), 2u);
  EXPECT_EQ(r->destinations[1].blueprint_id, "lhbp-lfle246l");

  ASSERT_EQ(transport_->requests().size(), 1u);
  const HttpRequest sent = transport_->requests().at(0);
  EXPECT_EQ(sent.url, "http://127.0.0.1:18443/");
  EXPECT_TRUE(sent.fresh_connection);
  EXPECT_EQ(sent.timeout, absl::ZeroDuration());
  EXPECT_EQ(sent.body,
            R"({"BlueprintId":"lhbp-ls883feh","DestinationRegions":["ap-shanghai","ap-beijing"]})");
  EXPECT_THAT(HeaderNames(sent),
              UnorderedElementsAre("Authorization", "Content-Type", "Host", "X-TC-Action",
                                   "X-TC-Version", "X-TC-Timestamp", "X-TC-Region", "X-TC-Token",
                                   "X-TC-Language", "X-TC-RequestClient"));
  std::map<std::string, std::string> h = HeaderMap(sent);
  EXPECT_EQ(h["Content-Type"], "application/json");
  EXPECT_EQ(h["Host"], "127.0.0.1:18443");
  EXPECT_EQ(h["X-TC-Action"], "SyncBlueprint");
  EXPECT_EQ(h["X-TC-Version"], "2020-03-24");
  EXPECT_EQ(h["X-TC-Timestamp"], "1551113065");
  EXPECT_EQ(h["X-TC-Region"], "ap-guangzhou");
  EXPECT_EQ(h["X-TC-Token"], kToken);
  EXPECT_EQ(h["X-TC-Language"], "en-US");
  EXPECT_EQ(h["X-TC-RequestClient"], "blueprint-sync");

  // Recompute the signature from what was actually sent: the Content-Type,
  // Host and body on the wire, service "lighthouse" although the host is an IP.
  SignInput in;
  in.service = "lighthouse";
  in.host = h["Host"];
  in.content_type = h["Content-Type"];
  in.payload = sent.body;
  in.timestamp = 1551113065;
  EXPECT_EQ(h["Authorization"], Tc3Signer::Authorization(kSecretId, kSecretKey, in));
  EXPECT_THAT(h["Authorization"], HasSubstr(std::string("Credential=") + kSecretId +
                                            "/2019-02-25/lighthouse/tc3_request"));
  EXPECT_THAT(h["Authorization"], HasSubstr("SignedHeaders=content-type;host,"));
}

TEST_F(HttpClientTest, DefaultEndpointHostAndUrl) {
  transport_->Push(Answer(200, kSyncOk));
  LighthouseClientOptions options;  // default endpoint
  auto client = MakeLighthouseHttpClient(
      options, std::make_shared<FakeCredentialProvider>(TestCredentials(false)), transport_,
      &clock_);
  ASSERT_TRUE(client->SyncBlueprint(SyncRequest(), {}).ok());
  const HttpRequest sent = transport_->requests().at(0);
  EXPECT_EQ(sent.url, "https://lighthouse.tencentcloudapi.com/");
  EXPECT_EQ(HeaderMap(sent)["Host"], "lighthouse.tencentcloudapi.com");
}

// Every site and style: the URL, the Host sent and the Host signed agree,
// and the signing service is "lighthouse" whatever the domain.
TEST_F(HttpClientTest, SitesAndRegionalEndpointsSignTheHostTheySend) {
  struct Case {
    TencentSite site;
    EndpointStyle style;
    std::string host;
  };
  const Case cases[] = {
      {TencentSite::kChina, EndpointStyle::kGlobal, "lighthouse.tencentcloudapi.com"},
      {TencentSite::kInternational, EndpointStyle::kGlobal, "lighthouse.intl.tencentcloudapi.com"},
      {TencentSite::kChina, EndpointStyle::kRegional,
       "lighthouse.ap-guangzhou.tencentcloudapi.com"},
      {TencentSite::kInternational, EndpointStyle::kRegional,
       "lighthouse.ap-guangzhou.tencentcloudapi.com"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.host);
    transport_->Push(Answer(200, kSyncOk));
    auto client = MakeClient(/*with_token=*/false, LighthouseEndpointFor(c.site, c.style));
    ASSERT_TRUE(client->SyncBlueprint(SyncRequest(), {}).ok());  // source ap-guangzhou
    const HttpRequest sent = transport_->requests().back();
    std::map<std::string, std::string> h = HeaderMap(sent);
    EXPECT_EQ(sent.url, "https://" + c.host + "/");
    EXPECT_EQ(h["Host"], c.host);
    SignInput in;
    in.service = "lighthouse";
    in.host = c.host;
    in.content_type = "application/json";
    in.payload = sent.body;
    in.timestamp = 1551113065;
    EXPECT_EQ(h["Authorization"], Tc3Signer::Authorization(kSecretId, kSecretKey, in));
    EXPECT_THAT(h["Authorization"], HasSubstr("/2019-02-25/lighthouse/tc3_request"));
  }
}

TEST_F(HttpClientTest, RegionalEndpointFollowsEachCallsRegion) {
  transport_->Push(
      Answer(200, R"({"Response":{"TotalCount":0,"BlueprintSet":[],"RequestId":"r"}})"));
  auto client = MakeClient(false, "https://lighthouse.{region}.tencentcloudapi.com");
  DescribeBlueprintsRequest request;
  request.region = "eu-frankfurt";
  request.blueprint_ids = {"lhbp-lf3gjs2f"};
  ASSERT_TRUE(client->DescribeBlueprints(request, {}).ok());
  EXPECT_EQ(HeaderMap(transport_->requests().back())["Host"],
            "lighthouse.eu-frankfurt.tencentcloudapi.com");
}

TEST_F(HttpClientTest, RegionalEndpointWithoutAUsableRegionSendsNothing) {
  auto client = MakeClient(false, "https://lighthouse.{region}.tencentcloudapi.com");
  for (const char* region : {"", "evil.example.com/x", "AP-GUANGZHOU"}) {
    absl::StatusOr<DescribeRegionsResponse> r = client->DescribeRegions(region, {});
    ASSERT_FALSE(r.ok()) << region;
    EXPECT_EQ(ErrorOf(r.status()).kind, ErrorKind::kLocal) << region;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("regional endpoint")) << region;
  }
  EXPECT_TRUE(transport_->requests().empty());
}

TEST_F(HttpClientTest, NoTokenLanguageOrRegionHeadersWhenEmpty) {
  transport_->Push(Answer(200, kRegionsOk));
  auto client = MakeClient(/*with_token=*/false);
  absl::StatusOr<DescribeRegionsResponse> r = client->DescribeRegions("", {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->regions.at(0).region, "ap-beijing");
  const HttpRequest sent = transport_->requests().at(0);
  EXPECT_FALSE(sent.fresh_connection);
  EXPECT_EQ(sent.body, "{}");
  EXPECT_THAT(HeaderNames(sent),
              UnorderedElementsAre("Authorization", "Content-Type", "Host", "X-TC-Action",
                                   "X-TC-Version", "X-TC-Timestamp", "X-TC-RequestClient"));
  EXPECT_EQ(HeaderMap(sent)["X-TC-Action"], "DescribeRegions");
}

TEST_F(HttpClientTest, DescribeBlueprintsIsNotFreshAndCarriesRegion) {
  transport_->Push(Answer(200, kDescribeOk));
  auto client = MakeClient();
  absl::StatusOr<DescribeBlueprintsResponse> r = client->DescribeBlueprints(DescribeRequest(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->blueprints.at(0).blueprint_state, "NORMAL");
  const HttpRequest sent = transport_->requests().at(0);
  EXPECT_FALSE(sent.fresh_connection);
  EXPECT_EQ(sent.body, R"({"BlueprintIds":["lhbp-ls883feh"]})");
  std::map<std::string, std::string> h = HeaderMap(sent);
  EXPECT_EQ(h["X-TC-Region"], "ap-singapore");
  EXPECT_EQ(h["X-TC-Action"], "DescribeBlueprints");
}

TEST_F(HttpClientTest, DeleteBlueprintsIsSignedAndCarriesRegionAndIds) {
  transport_->Push(Answer(200, kDeleteOk));
  auto client = MakeClient();
  absl::StatusOr<DeleteBlueprintsResponse> r = client->DeleteBlueprints(DeleteRequest(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "del-1");

  ASSERT_EQ(transport_->requests().size(), 1u);
  const HttpRequest sent = transport_->requests().at(0);
  // Idempotent: a pooled connection is fine, a replay cannot delete more.
  EXPECT_FALSE(sent.fresh_connection);
  EXPECT_EQ(sent.body, R"({"BlueprintIds":["lhbp-lf3gjs2f","lhbp-lfle246l"]})");
  std::map<std::string, std::string> h = HeaderMap(sent);
  EXPECT_EQ(h["X-TC-Action"], "DeleteBlueprints");
  EXPECT_EQ(h["X-TC-Region"], "ap-shanghai");
  EXPECT_EQ(h["X-TC-Version"], "2020-03-24");
  EXPECT_EQ(h["X-TC-Token"], kToken);
  SignInput in;
  in.service = "lighthouse";
  in.host = h["Host"];
  in.content_type = h["Content-Type"];
  in.payload = sent.body;
  in.timestamp = 1551113065;
  EXPECT_EQ(h["Authorization"], Tc3Signer::Authorization(kSecretId, kSecretKey, in));
}

TEST_F(HttpClientTest, DeleteBlueprintsLocalValidationSendsNothing) {
  auto client = MakeClient();
  struct Case {
    const char* name;
    DeleteBlueprintsRequest request;
    const char* field;
  };
  std::vector<Case> cases;
  {
    DeleteBlueprintsRequest r = DeleteRequest();
    r.region.clear();
    cases.push_back({"no region", r, "region"});
  }
  {
    DeleteBlueprintsRequest r = DeleteRequest();
    r.blueprint_ids.clear();
    cases.push_back({"no ids", r, "blueprint_ids: must hold 1 to 100 ids, got 0"});
  }
  {
    DeleteBlueprintsRequest r = DeleteRequest();
    r.blueprint_ids.assign(101, "lhbp-lf3gjs2f");
    cases.push_back({"101 ids", r, "blueprint_ids: must hold 1 to 100 ids, got 101"});
  }
  const std::vector<std::pair<std::string, std::string>> bad_ids = {
      {"", "blueprint_ids[1]"},
      {"lhbp-", "blueprint_ids[1]"},
      {"LHBP-lf3gjs2f", "blueprint_ids[1]"},
      {"lhbp-LF3GJS2F", "blueprint_ids[1]"},
      {"lhbp-lf3g_s2f", "blueprint_ids[1]"},
      {"lhbp-lf3gjs2f ", "blueprint_ids[1]"},
      {"img-lf3gjs2f", "blueprint_ids[1]"},
      {"lhbp-" + std::string(33, 'a'), "blueprint_ids[1]"},
  };
  for (const auto& [id, field] : bad_ids) {
    DeleteBlueprintsRequest r = DeleteRequest();
    r.blueprint_ids[1] = id;
    cases.push_back({"bad id", r, field.c_str()});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.name, ": ", c.field));
    absl::StatusOr<DeleteBlueprintsResponse> r = client->DeleteBlueprints(c.request, {});
    ASSERT_FALSE(r.ok());
    ApiError e = ErrorOf(r.status());
    EXPECT_EQ(e.kind, ErrorKind::kLocal);
    EXPECT_EQ(e.code, "ClientError.InvalidArgument");
    EXPECT_EQ(e.action, "DeleteBlueprints");
    EXPECT_THAT(e.message, HasSubstr(c.field));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(transport_->requests().empty());

  // A huge id is quoted, not echoed whole.
  DeleteBlueprintsRequest huge = DeleteRequest();
  huge.blueprint_ids[0] = std::string(100000, 'x');
  absl::StatusOr<DeleteBlueprintsResponse> r = client->DeleteBlueprints(huge, {});
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 400u);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("(100000 bytes)"));

  // The boundaries themselves are accepted: 100 ids, a 1- and a 32-character suffix.
  transport_->Push(Answer(200, kDeleteOk));
  DeleteBlueprintsRequest edge = DeleteRequest();
  edge.blueprint_ids.assign(100, "lhbp-" + std::string(32, 'z'));
  edge.blueprint_ids[0] = "lhbp-0";
  EXPECT_TRUE(client->DeleteBlueprints(edge, {}).ok());
  EXPECT_EQ(transport_->requests().size(), 1u);
}

TEST_F(HttpClientTest, DeleteBlueprintsErrorsMapThroughTheErrorTable) {
  const std::pair<const char*, absl::StatusCode> cases[] = {
      {"ResourceNotFound.PrivateBlueprintNotFound", absl::StatusCode::kNotFound},
      {"UnsupportedOperation.BlueprintCurStateInvalid", absl::StatusCode::kFailedPrecondition},
      {"UnsupportedOperation.BlueprintOccupied", absl::StatusCode::kFailedPrecondition},
  };
  auto client = MakeClient();
  for (const auto& [code, want] : cases) {
    SCOPED_TRACE(code);
    transport_->Push(Answer(200, ErrorBody(code, "rid-del")));
    absl::StatusOr<DeleteBlueprintsResponse> r = client->DeleteBlueprints(DeleteRequest(), {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), want);
    ApiError e = ErrorOf(r.status());
    EXPECT_EQ(e.kind, ErrorKind::kApi);
    EXPECT_EQ(e.code, code);
    EXPECT_EQ(e.request_id, "rid-del");
    EXPECT_EQ(e.action, "DeleteBlueprints");
    ExpectNoSecrets(r.status());
  }
}

TEST_F(HttpClientTest, TimeoutIsWhatRemainsOfTheDeadline) {
  transport_->Push(Answer(200, kSyncOk));
  auto client = MakeClient();
  CallOptions call;
  call.deadline = clock_.Now() + absl::Milliseconds(2500);
  ASSERT_TRUE(client->SyncBlueprint(SyncRequest(), call).ok());
  EXPECT_EQ(transport_->requests().at(0).timeout, absl::Milliseconds(2500));
}

TEST_F(HttpClientTest, PassedDeadlineSendsNothing) {
  auto client = MakeClient();
  CallOptions call;
  call.deadline = clock_.Now();
  absl::StatusOr<SyncBlueprintResponse> r = client->SyncBlueprint(SyncRequest(), call);
  ASSERT_FALSE(r.ok());
  ApiError e = ErrorOf(r.status());
  EXPECT_EQ(e.kind, ErrorKind::kLocal);
  EXPECT_EQ(e.code, "ClientError.DeadlineExceeded");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(transport_->requests().empty());
}

TEST_F(HttpClientTest, LocalValidationSendsNothing) {
  auto client = MakeClient();
  struct Case {
    const char* name;
    DescribeBlueprintsRequest request;
    const char* field;
  };
  std::vector<Case> cases;
  {
    DescribeBlueprintsRequest r;
    for (int i = 0; i < 101; ++i) r.blueprint_ids.push_back("lhbp-" + std::to_string(i));
    cases.push_back({"101 ids", r, "blueprint_ids"});
  }
  {
    DescribeBlueprintsRequest r = DescribeRequest();
    r.filters = {{"blueprint-state", {"NORMAL"}}};
    cases.push_back({"ids and filters", r, "cannot be combined"});
  }
  {
    DescribeBlueprintsRequest r;
    r.limit = 0;
    cases.push_back({"limit 0", r, "limit"});
    r.limit = 101;
    cases.push_back({"limit 101", r, "limit"});
  }
  {
    DescribeBlueprintsRequest r;
    r.offset = -1;
    cases.push_back({"offset -1", r, "offset"});
  }
  {
    DescribeBlueprintsRequest r;
    for (int i = 0; i < 11; ++i) r.filters.push_back({"blueprint-name", {"x"}});
    cases.push_back({"11 filters", r, "filters"});
  }
  {
    DescribeBlueprintsRequest r;
    r.filters.push_back({"blueprint-id", std::vector<std::string>(101, "lhbp-1")});
    cases.push_back({"101 filter values", r, "filters[0].values"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<DescribeBlueprintsResponse> r = client->DescribeBlueprints(c.request, {});
    ASSERT_FALSE(r.ok());
    ApiError e = ErrorOf(r.status());
    EXPECT_EQ(e.kind, ErrorKind::kLocal);
    EXPECT_EQ(e.code, "ClientError.InvalidArgument");
    EXPECT_EQ(e.action, "DescribeBlueprints");
    EXPECT_THAT(e.message, HasSubstr(c.field));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  }
  // The boundaries themselves are accepted.
  transport_->Push(Answer(200, kDescribeOk));
  DescribeBlueprintsRequest edge;
  for (int i = 0; i < 100; ++i) edge.blueprint_ids.push_back("lhbp-" + std::to_string(i));
  edge.limit = 100;
  edge.offset = 0;
  EXPECT_TRUE(client->DescribeBlueprints(edge, {}).ok());
  EXPECT_EQ(transport_->requests().size(), 1u);
}

TEST_F(HttpClientTest, SyncBlueprintLocalValidation) {
  auto client = MakeClient();
  SyncBlueprintRequest no_destinations = SyncRequest();
  no_destinations.destination_regions.clear();
  SyncBlueprintRequest too_many = SyncRequest();
  too_many.destination_regions.assign(11, "ap-tokyo");
  SyncBlueprintRequest no_id = SyncRequest();
  no_id.blueprint_id.clear();
  SyncBlueprintRequest no_region = SyncRequest();
  no_region.region.clear();
  for (const auto& [request, field] : std::vector<std::pair<SyncBlueprintRequest, std::string>>{
           {no_destinations, "destination_regions"},
           {too_many, "destination_regions"},
           {no_id, "blueprint_id"},
           {no_region, "region"}}) {
    absl::StatusOr<SyncBlueprintResponse> r = client->SyncBlueprint(request, {});
    ASSERT_FALSE(r.ok());
    ApiError e = ErrorOf(r.status());
    EXPECT_EQ(e.kind, ErrorKind::kLocal);
    EXPECT_THAT(e.message, HasSubstr(field));
  }
  EXPECT_TRUE(transport_->requests().empty());
}

TEST_F(HttpClientTest, CredentialFailureIsSurfacedWithoutSecrets) {
  LighthouseClientOptions options;
  auto client = MakeLighthouseHttpClient(
      options,
      std::make_shared<FakeCredentialProvider>(
          absl::FailedPreconditionError("TENCENTCLOUD_SECRET_KEY is set but empty")),
      transport_, &clock_);
  absl::StatusOr<SyncBlueprintResponse> r = client->SyncBlueprint(SyncRequest(), {});
  ASSERT_FALSE(r.ok());
  ApiError e = ErrorOf(r.status());
  EXPECT_EQ(e.kind, ErrorKind::kCredentials);
  EXPECT_EQ(e.code, "ClientError.CredentialError");
  EXPECT_EQ(e.action, "SyncBlueprint");
  EXPECT_THAT(e.message, HasSubstr("TENCENTCLOUD_SECRET_KEY is set but empty"));
  EXPECT_FALSE(e.MayHaveExecuted());
  EXPECT_TRUE(transport_->requests().empty());
}

TEST_F(HttpClientTest, ExpiredOrEmptyCredentialsAreRejected) {
  Credentials expired = TestCredentials(true);
  expired.expiry = clock_.Now() - absl::Seconds(1);
  Credentials empty_key = TestCredentials(false);
  empty_key.secret_key.clear();
  for (const Credentials& c : {expired, empty_key}) {
    auto client = MakeLighthouseHttpClient({}, std::make_shared<FakeCredentialProvider>(c),
                                           transport_, &clock_);
    absl::StatusOr<DescribeRegionsResponse> r = client->DescribeRegions("ap-beijing", {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(ErrorOf(r.status()).kind, ErrorKind::kCredentials);
    ExpectNoSecrets(r.status());
  }
  EXPECT_TRUE(transport_->requests().empty());
}

TEST_F(HttpClientTest, BadEndpointIsLocalError) {
  auto client = MakeClient(true, "lighthouse.tencentcloudapi.com");
  absl::StatusOr<SyncBlueprintResponse> r = client->SyncBlueprint(SyncRequest(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ErrorOf(r.status()).kind, ErrorKind::kLocal);
  EXPECT_TRUE(transport_->requests().empty());
}

// --- LighthouseHttpClient: classification of answers ---

struct Expected {
  ErrorKind kind;
  std::string code;
  long http_status;
  std::string request_id;
};

class ClassificationTest : public HttpClientTest {
 protected:
  ApiError SyncError(absl::StatusOr<HttpResponse> answer) {
    transport_->Push(std::move(answer));
    absl::StatusOr<SyncBlueprintResponse> r = MakeClient()->SyncBlueprint(SyncRequest(), {});
    EXPECT_FALSE(r.ok());
    if (r.ok()) return {};
    ExpectNoSecrets(r.status());
    return ErrorOf(r.status());
  }
  ApiError DescribeError(absl::StatusOr<HttpResponse> answer) {
    transport_->Push(std::move(answer));
    absl::StatusOr<DescribeBlueprintsResponse> r =
        MakeClient()->DescribeBlueprints(DescribeRequest(), {});
    EXPECT_FALSE(r.ok());
    if (r.ok()) return {};
    ExpectNoSecrets(r.status());
    return ErrorOf(r.status());
  }
  static void Check(const ApiError& e, const Expected& want, const std::string& action) {
    EXPECT_EQ(e.kind, want.kind) << ErrorKindName(e.kind);
    EXPECT_EQ(e.code, want.code);
    EXPECT_EQ(e.http_status, want.http_status);
    EXPECT_EQ(e.request_id, want.request_id);
    EXPECT_EQ(e.action, action);
  }
};

TEST_F(ClassificationTest, SyncBlueprint) {
  const std::string kNet = "ClientError.NetworkError";
  const std::string kHttp = "ClientError.HttpStatusCodeError";
  struct Case {
    const char* name;
    absl::StatusOr<HttpResponse> answer;
    Expected want;
  };
  const std::vector<Case> cases = {
      {"nothing sent",
       TransportFailure(ErrorKind::kTransport),
       {ErrorKind::kTransport, kNet, 0, ""}},
      {"timeout after send",
       TransportFailure(ErrorKind::kOutcomeUnknown),
       {ErrorKind::kOutcomeUnknown, kNet, 0, ""}},
      {"200 malformed",
       Answer(200, R"({"Response":{"DestinationRegionBlueprintSet":[)"),
       {ErrorKind::kOutcomeUnknown, "ClientError.ParseJsonError", 200, ""}},
      {"200 html",
       Answer(200, "<html>ok</html>", "text/html"),
       {ErrorKind::kOutcomeUnknown, "ClientError.ParseJsonError", 200, ""}},
      {"200 InternalError",
       Answer(200, ErrorBody("InternalError", "rid-ie")),
       {ErrorKind::kOutcomeUnknown, "InternalError", 200, "rid-ie"}},
      {"502 no envelope",
       Answer(502, "<html>Bad Gateway</html>", "text/html"),
       {ErrorKind::kOutcomeUnknown, kHttp, 502, ""}},
      {"500 empty", Answer(500, ""), {ErrorKind::kOutcomeUnknown, kHttp, 500, ""}},
      {"503 envelope",
       Answer(503, ErrorBody("ServiceUnavailable", "rid-su")),
       {ErrorKind::kOutcomeUnknown, "ServiceUnavailable", 503, "rid-su"}},
      {"200 throttled",
       Answer(200, ErrorBody("RequestLimitExceeded", "rid-rl")),
       {ErrorKind::kApi, "RequestLimitExceeded", 200, "rid-rl"}},
      {"200 business error",
       Answer(200, ErrorBody("InvalidParameterValue.Duplicated", "rid-d")),
       {ErrorKind::kApi, "InvalidParameterValue.Duplicated", 200, "rid-d"}},
      {"403 envelope",
       Answer(403, ErrorBody("AuthFailure.SignatureFailure", "rid-a")),
       {ErrorKind::kApi, "AuthFailure.SignatureFailure", 403, "rid-a"}},
      {"404 no envelope",
       Answer(404, "not found", "text/plain"),
       {ErrorKind::kHttpStatus, kHttp, 404, ""}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Check(SyncError(c.answer), c.want, "SyncBlueprint");
  }
}

TEST_F(ClassificationTest, OutcomeUnknownKeepsTencentMessage) {
  ApiError e = SyncError(Answer(200, ErrorBody("InternalError", "rid-ie")));
  EXPECT_EQ(e.message, "message for InternalError");
  EXPECT_TRUE(e.MayHaveExecuted());
}

TEST_F(ClassificationTest, DescribeBlueprintsKeepsReadClassification) {
  const std::string kHttp = "ClientError.HttpStatusCodeError";
  struct Case {
    const char* name;
    absl::StatusOr<HttpResponse> answer;
    Expected want;
  };
  const std::vector<Case> cases = {
      {"200 malformed",
       Answer(200, "{"),
       {ErrorKind::kMalformedResponse, "ClientError.ParseJsonError", 200, ""}},
      {"200 InternalError",
       Answer(200, ErrorBody("InternalError", "r1")),
       {ErrorKind::kApi, "InternalError", 200, "r1"}},
      {"502 no envelope",
       Answer(502, "bad gateway", "text/plain"),
       {ErrorKind::kHttpStatus, kHttp, 502, ""}},
      {"503 envelope",
       Answer(503, ErrorBody("ServiceUnavailable", "r2")),
       {ErrorKind::kApi, "ServiceUnavailable", 503, "r2"}},
      {"timeout after send",
       TransportFailure(ErrorKind::kOutcomeUnknown),
       {ErrorKind::kOutcomeUnknown, "ClientError.NetworkError", 0, ""}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Check(DescribeError(c.answer), c.want, "DescribeBlueprints");
  }
}

TEST_F(ClassificationTest, StatusWithoutApiErrorIsTreatedAsOutcomeUnknown) {
  ApiError e = SyncError(absl::UnavailableError("plain status"));
  EXPECT_EQ(e.kind, ErrorKind::kOutcomeUnknown);
  EXPECT_EQ(e.action, "SyncBlueprint");
}

// --- RateLimitedLighthouseClient ---

class MockLighthouseClient : public LighthouseClient {
 public:
  MOCK_METHOD(absl::StatusOr<SyncBlueprintResponse>, SyncBlueprint,
              (const SyncBlueprintRequest&, const CallOptions&), (override));
  MOCK_METHOD(absl::StatusOr<DescribeBlueprintsResponse>, DescribeBlueprints,
              (const DescribeBlueprintsRequest&, const CallOptions&), (override));
  MOCK_METHOD(absl::StatusOr<DescribeRegionsResponse>, DescribeRegions,
              (const std::string&, const CallOptions&), (override));
  MOCK_METHOD(absl::StatusOr<DeleteBlueprintsResponse>, DeleteBlueprints,
              (const DeleteBlueprintsRequest&, const CallOptions&), (override));
};

TEST(RateLimitedClientTest, SpacesCallsPerAction) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  auto limiters = std::make_shared<ActionRateLimiters>(RateLimits{}, &clock);
  auto mock = std::make_unique<MockLighthouseClient>();
  std::vector<absl::Time> sync_times;
  std::vector<absl::Time> describe_times;
  EXPECT_CALL(*mock, SyncBlueprint(_, _)).Times(3).WillRepeatedly([&](auto&, auto&) {
    sync_times.push_back(clock.Now());
    return SyncBlueprintResponse{};
  });
  EXPECT_CALL(*mock, DescribeBlueprints(_, _)).Times(2).WillRepeatedly([&](auto&, auto&) {
    describe_times.push_back(clock.Now());
    return DescribeBlueprintsResponse{};
  });
  RateLimitedLighthouseClient client(std::move(mock), limiters);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.SyncBlueprint(SyncRequest(), {}).ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(client.DescribeBlueprints(DescribeRequest(), {}).ok());

  const absl::Duration sync_gap = limiters->For("SyncBlueprint").interval();
  const absl::Duration describe_gap = limiters->For("DescribeBlueprints").interval();
  // 20/s and 10/s with the default guard.
  EXPECT_EQ(sync_gap, (absl::Seconds(1) + kDefaultRateGuard) / 20);
  EXPECT_EQ(describe_gap, (absl::Seconds(1) + kDefaultRateGuard) / 10);
  EXPECT_THAT(sync_times, ElementsAre(start, start + sync_gap, start + 2 * sync_gap));
  // DescribeBlueprints has its own limiter: its first call is not held back
  // by the SyncBlueprint slots.
  const absl::Time describe_start = start + 2 * sync_gap;
  EXPECT_THAT(describe_times, ElementsAre(describe_start, describe_start + describe_gap));
}

TEST(RateLimitedClientTest, DeleteBlueprintsHasItsOwn20PerSecondLimiter) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  auto limiters = std::make_shared<ActionRateLimiters>(RateLimits{}, &clock);
  auto mock = std::make_unique<MockLighthouseClient>();
  std::vector<absl::Time> times;
  EXPECT_CALL(*mock, DeleteBlueprints(_, _)).Times(3).WillRepeatedly([&](auto&, auto&) {
    times.push_back(clock.Now());
    return DeleteBlueprintsResponse{};
  });
  EXPECT_CALL(*mock, DescribeBlueprints(_, _)).WillOnce(Return(DescribeBlueprintsResponse{}));
  RateLimitedLighthouseClient client(std::move(mock), limiters);
  // A describe first: deletes do not queue behind it.
  ASSERT_TRUE(client.DescribeBlueprints(DescribeRequest(), {}).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.DeleteBlueprints(DeleteRequest(), {}).ok());
  const absl::Duration gap = (absl::Seconds(1) + kDefaultRateGuard) / 20;
  EXPECT_EQ(limiters->For("DeleteBlueprints").interval(), gap);
  EXPECT_THAT(times, ElementsAre(start, start + gap, start + 2 * gap));
}

TEST(RateLimitedClientTest, RefusesWhenSlotWouldMissDeadline) {
  FakeClock clock;
  auto limiters = std::make_shared<ActionRateLimiters>(RateLimits{}, &clock);
  auto mock = std::make_unique<MockLighthouseClient>();
  EXPECT_CALL(*mock, SyncBlueprint(_, _)).Times(1).WillOnce(Return(SyncBlueprintResponse{}));
  EXPECT_CALL(*mock, DescribeRegions(_, _)).Times(0);
  RateLimitedLighthouseClient client(std::move(mock), limiters);
  CallOptions call;
  call.deadline = clock.Now() + absl::Milliseconds(10);
  ASSERT_TRUE(client.SyncBlueprint(SyncRequest(), call).ok());
  absl::StatusOr<SyncBlueprintResponse> second = client.SyncBlueprint(SyncRequest(), call);
  ASSERT_FALSE(second.ok());
  ApiError e = ErrorOf(second.status());
  EXPECT_EQ(e.kind, ErrorKind::kLocal);
  EXPECT_EQ(e.code, "ClientError.DeadlineExceeded");
  EXPECT_EQ(e.action, "SyncBlueprint");
  EXPECT_THAT(e.message, HasSubstr("rate-limit capacity for SyncBlueprint"));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded);
  // Nothing was slept for the refused call.
  for (absl::Duration d : clock.sleeps()) EXPECT_LE(d, absl::ZeroDuration());

  CallOptions past;
  past.deadline = clock.Now() - absl::Seconds(1);
  EXPECT_FALSE(client.DescribeRegions("ap-beijing", past).ok());
}

TEST(RateLimitedClientTest, BackgroundCallsWaitUntilNoForegroundCallerIsWaiting) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  auto limiters = std::make_shared<ActionRateLimiters>(RateLimits{}, &clock);
  auto mock = std::make_unique<MockLighthouseClient>();
  std::vector<absl::Time> sent;
  std::vector<CallPriority> priorities;
  EXPECT_CALL(*mock, SyncBlueprint(_, _)).Times(1).WillOnce([&](auto&, const CallOptions& o) {
    sent.push_back(clock.Now());
    priorities.push_back(o.priority);
    return SyncBlueprintResponse{};
  });
  RateLimitedLighthouseClient client(std::move(mock), limiters);
  // Two foreground callers have taken the slots up to +51 ms: the limiter
  // is busy until +102 ms.
  RateLimiter& sync = limiters->For("SyncBlueprint");
  ASSERT_TRUE(sync.Reserve().ok());
  ASSERT_TRUE(sync.Reserve().ok());
  CallOptions background;
  background.priority = CallPriority::kBackground;
  background.deadline = start + absl::Milliseconds(90);
  absl::StatusOr<SyncBlueprintResponse> refused = client.SyncBlueprint(SyncRequest(), background);
  ASSERT_FALSE(refused.ok());
  ApiError e = ErrorOf(refused.status());
  EXPECT_EQ(e.kind, ErrorKind::kLocal);
  EXPECT_EQ(e.code, "ClientError.DeadlineExceeded");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(sent.empty());

  background.deadline = absl::InfiniteFuture();
  ASSERT_TRUE(client.SyncBlueprint(SyncRequest(), background).ok());
  EXPECT_THAT(sent, ElementsAre(start + 2 * sync.interval()));
  EXPECT_THAT(priorities, ElementsAre(CallPriority::kBackground));
}

// --- RetryingLighthouseClient, through the full stack ---

class StackTest : public ::testing::Test {
 protected:
  std::unique_ptr<LighthouseClient> MakeStack(RetryOptions retry = {}) {
    LighthouseClientOptions options;
    options.endpoint = "http://127.0.0.1:18443";
    options.retry = retry;
    return MakeLighthouseClient(options,
                                std::make_shared<FakeCredentialProvider>(TestCredentials(true)),
                                transport_, nullptr, &clock_);
  }
  size_t Sent() const { return transport_->requests().size(); }

  FakeClock clock_;
  std::shared_ptr<FakeHttpTransport> transport_ = std::make_shared<FakeHttpTransport>(&clock_);
};

TEST_F(StackTest, SyncBlueprintResentAfterThrottle) {
  transport_->PushN(2, Answer(200, ErrorBody("RequestLimitExceeded")));
  transport_->Push(Answer(200, kSyncOk));
  absl::StatusOr<SyncBlueprintResponse> r = MakeStack()->SyncBlueprint(SyncRequest(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Sent(), 3u);
  // Every attempt is signed afresh with the same body.
  for (const HttpRequest& sent : transport_->requests()) {
    EXPECT_EQ(sent.body, transport_->requests()[0].body);
    EXPECT_TRUE(sent.fresh_connection);
  }
  // Backoff happened on the clock, not instantly.
  const std::vector<absl::Time> times = transport_->times();
  EXPECT_GT(times[1], times[0]);
  EXPECT_GT(times[2], times[1]);
}

TEST_F(StackTest, SyncBlueprintResentAfterNothingWasSent) {
  transport_->Push(TransportFailure(ErrorKind::kTransport));
  transport_->Push(Answer(200, kSyncOk));
  EXPECT_TRUE(MakeStack()->SyncBlueprint(SyncRequest(), {}).ok());
  EXPECT_EQ(Sent(), 2u);
}

TEST_F(StackTest, ThrottleUntilAttemptsRunOut) {
  RetryOptions retry;
  retry.max_attempts = 4;
  transport_->PushN(4, Answer(200, ErrorBody("RequestLimitExceeded", "last")));
  absl::StatusOr<SyncBlueprintResponse> r = MakeStack(retry)->SyncBlueprint(SyncRequest(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Sent(), 4u);
  ApiError e = ErrorOf(r.status());
  EXPECT_EQ(e.kind, ErrorKind::kApi);
  EXPECT_EQ(e.code, "RequestLimitExceeded");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(StackTest, SyncBlueprintNeverResentWhenItMayHaveRun) {
  const std::vector<std::pair<const char*, absl::StatusOr<HttpResponse>>> answers = {
      {"timeout after send", TransportFailure(ErrorKind::kOutcomeUnknown)},
      {"InternalError", Answer(200, ErrorBody("InternalError"))},
      {"502", Answer(502, "bad gateway", "text/plain")},
      {"503 envelope", Answer(503, ErrorBody("ServiceUnavailable"))},
      {"malformed 200", Answer(200, R"({"Response":{}})")},
  };
  for (const auto& [name, answer] : answers) {
    SCOPED_TRACE(name);
    const size_t before = Sent();
    transport_->Push(answer);
    // A second scripted success must stay unused.
    transport_->Push(Answer(200, kSyncOk));
    absl::StatusOr<SyncBlueprintResponse> r = MakeStack()->SyncBlueprint(SyncRequest(), {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(ErrorOf(r.status()).kind, ErrorKind::kOutcomeUnknown);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnknown);
    EXPECT_EQ(Sent(), before + 1);
    ASSERT_EQ(transport_->remaining(), 1u);
    // Drain the unused success so the next case starts clean.
    ASSERT_TRUE(MakeStack()->SyncBlueprint(SyncRequest(), {}).ok());
  }
}

TEST_F(StackTest, SyncBlueprintBusinessErrorNotRetried) {
  transport_->Push(Answer(200, ErrorBody("InvalidParameterValue.Duplicated")));
  absl::StatusOr<SyncBlueprintResponse> r = MakeStack()->SyncBlueprint(SyncRequest(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Sent(), 1u);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StackTest, ReadsRetriedOnTransientFailures) {
  transport_->Push(TransportFailure(ErrorKind::kTransport));
  transport_->Push(TransportFailure(ErrorKind::kOutcomeUnknown));
  transport_->Push(Answer(200, ErrorBody("InternalError")));
  transport_->Push(Answer(502, "bad gateway", "text/plain"));
  transport_->Push(Answer(200, "{not json"));
  transport_->Push(Answer(200, kDescribeOk));
  absl::StatusOr<DescribeBlueprintsResponse> r =
      MakeStack()->DescribeBlueprints(DescribeRequest(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "d-1");
  EXPECT_EQ(Sent(), 6u);
}

TEST_F(StackTest, DescribeRegionsRetriedToo) {
  transport_->Push(Answer(503, ErrorBody("ServiceUnavailable")));
  transport_->Push(Answer(200, kRegionsOk));
  EXPECT_TRUE(MakeStack()->DescribeRegions("ap-beijing", {}).ok());
  EXPECT_EQ(Sent(), 2u);
}

TEST_F(StackTest, ReadsNotRetriedOnPermanentErrors) {
  transport_->Push(Answer(200, ErrorBody("AuthFailure.SignatureFailure")));
  absl::StatusOr<DescribeBlueprintsResponse> r =
      MakeStack()->DescribeBlueprints(DescribeRequest(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Sent(), 1u);
  EXPECT_EQ(ErrorOf(r.status()).code, "AuthFailure.SignatureFailure");
  ExpectNoSecrets(r.status());
}

TEST_F(StackTest, LocalValidationNeitherSentNorRetried) {
  DescribeBlueprintsRequest bad;
  bad.limit = 0;
  absl::StatusOr<DescribeBlueprintsResponse> r = MakeStack()->DescribeBlueprints(bad, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Sent(), 0u);
  EXPECT_EQ(ErrorOf(r.status()).kind, ErrorKind::kLocal);
}

TEST_F(StackTest, AttemptsArePacedByTheRateLimiter) {
  auto client = MakeStack();
  transport_->PushN(3, Answer(200, kSyncOk));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client->SyncBlueprint(SyncRequest(), {}).ok());
  const std::vector<absl::Time> times = transport_->times();
  ASSERT_EQ(times.size(), 3u);
  const absl::Duration gap = (absl::Seconds(1) + kDefaultRateGuard) / 20;
  EXPECT_EQ(times[1] - times[0], gap);
  EXPECT_EQ(times[2] - times[1], gap);
}

TEST_F(StackTest, DeleteBlueprintsResentAfterThrottle) {
  transport_->PushN(2, Answer(200, ErrorBody("RequestLimitExceeded")));
  transport_->Push(Answer(200, kDeleteOk));
  absl::StatusOr<DeleteBlueprintsResponse> r = MakeStack()->DeleteBlueprints(DeleteRequest(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "del-1");
  ASSERT_EQ(Sent(), 3u);
  for (const HttpRequest& sent : transport_->requests()) {
    EXPECT_EQ(sent.body, R"({"BlueprintIds":["lhbp-lf3gjs2f","lhbp-lfle246l"]})");
    EXPECT_EQ(HeaderMap(sent)["X-TC-Action"], "DeleteBlueprints");
  }
  const std::vector<absl::Time> times = transport_->times();
  EXPECT_GT(times[1], times[0]);
  EXPECT_GT(times[2], times[1]);
}

// Unlike SyncBlueprint, a delete that may have run is sent again: the
// repeat can only answer ResourceNotFound.
TEST_F(StackTest, DeleteBlueprintsResentWhenItMayHaveRun) {
  transport_->Push(TransportFailure(ErrorKind::kTransport));
  transport_->Push(TransportFailure(ErrorKind::kOutcomeUnknown));
  transport_->Push(Answer(200, ErrorBody("InternalError")));
  transport_->Push(Answer(502, "bad gateway", "text/plain"));
  transport_->Push(Answer(200, R"({"Response":{}})"));
  transport_->Push(Answer(200, ErrorBody("ResourceNotFound.PrivateBlueprintNotFound", "rid-nf")));
  absl::StatusOr<DeleteBlueprintsResponse> r = MakeStack()->DeleteBlueprints(DeleteRequest(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Sent(), 6u);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorOf(r.status()).request_id, "rid-nf");
}

TEST_F(StackTest, DeleteBlueprintsBusinessErrorsNotRetried) {
  for (const char* code : {"ResourceNotFound.PrivateBlueprintNotFound",
                           "UnsupportedOperation.BlueprintCurStateInvalid",
                           "UnsupportedOperation.BlueprintOccupied"}) {
    SCOPED_TRACE(code);
    const size_t before = Sent();
    transport_->Push(Answer(200, ErrorBody(code)));
    absl::StatusOr<DeleteBlueprintsResponse> r = MakeStack()->DeleteBlueprints(DeleteRequest(), {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(ErrorOf(r.status()).code, code);
    EXPECT_EQ(Sent(), before + 1);
  }
}

TEST_F(StackTest, DeleteBlueprintsValidationNeitherSentNorRetried) {
  DeleteBlueprintsRequest empty = DeleteRequest();
  empty.blueprint_ids.clear();
  absl::StatusOr<DeleteBlueprintsResponse> r = MakeStack()->DeleteBlueprints(empty, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sent(), 0u);
}

// Records what the client reports, in order.
class RecordingObserver final : public CallObserver {
 public:
  void OnAttempt(std::string_view action, std::string_view code, bool throttled,
                 absl::Duration) override {
    absl::MutexLock lock(&mu_);
    // std::string: Debian's Abseil does not take std::string_view.
    events_.push_back(absl::StrCat("attempt ", std::string(action), " ", std::string(code),
                                   throttled ? " throttled" : ""));
  }
  void OnRetry(std::string_view action) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(absl::StrCat("retry ", std::string(action)));
  }
  std::vector<std::string> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> events_;
};

TEST_F(StackTest, DeleteBlueprintsAttemptsAreObserved) {
  auto observer = std::make_shared<RecordingObserver>();
  LighthouseClientOptions options;
  options.endpoint = "http://127.0.0.1:18443";
  options.observer = observer;
  auto client =
      MakeLighthouseClient(options, std::make_shared<FakeCredentialProvider>(TestCredentials(true)),
                           transport_, nullptr, &clock_);
  transport_->Push(Answer(200, ErrorBody("RequestLimitExceeded")));
  transport_->Push(Answer(200, kDeleteOk));
  ASSERT_TRUE(client->DeleteBlueprints(DeleteRequest(), {}).ok());
  DeleteBlueprintsRequest invalid = DeleteRequest();
  invalid.region.clear();
  ASSERT_FALSE(client->DeleteBlueprints(invalid, {}).ok());
  EXPECT_THAT(observer->events(),
              ElementsAre("attempt DeleteBlueprints RequestLimitExceeded throttled",
                          "retry DeleteBlueprints", "attempt DeleteBlueprints OK",
                          "attempt DeleteBlueprints ClientError.InvalidArgument"));
}

TEST(RetryingClientTest, StopsWhenBackoffWouldPassDeadline) {
  FakeClock clock;
  auto mock = std::make_unique<MockLighthouseClient>();
  ApiError throttled;
  throttled.kind = ErrorKind::kApi;
  throttled.code = "RequestLimitExceeded";
  throttled.action = "SyncBlueprint";
  throttled.request_id = "only-attempt";
  EXPECT_CALL(*mock, SyncBlueprint(_, _)).Times(1).WillOnce(Return(MakeStatus(throttled)));
  RetryOptions options;
  options.initial_backoff = absl::Seconds(1);
  options.min_backoff = absl::Seconds(1);
  RetryingLighthouseClient client(std::move(mock), RetryPolicy(options, [] { return 0.5; }),
                                  &clock);
  CallOptions call;
  call.deadline = clock.Now() + absl::Milliseconds(500);
  absl::StatusOr<SyncBlueprintResponse> r = client.SyncBlueprint(SyncRequest(), call);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ErrorOf(r.status()).request_id, "only-attempt");
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RetryingClientTest, SleepsThePolicyDelayBetweenAttempts) {
  FakeClock clock;
  auto mock = std::make_unique<MockLighthouseClient>();
  ApiError failure;
  failure.kind = ErrorKind::kTransport;
  failure.code = "ClientError.NetworkError";
  EXPECT_CALL(*mock, DescribeRegions(_, _))
      .WillOnce(Return(MakeStatus(failure)))
      .WillOnce(Return(MakeStatus(failure)))
      .WillOnce(Return(DescribeRegionsResponse{}));
  RetryOptions options;
  options.initial_backoff = absl::Milliseconds(200);
  options.min_backoff = absl::Milliseconds(1);
  RetryingLighthouseClient client(std::move(mock), RetryPolicy(options, [] { return 0.5; }),
                                  &clock);
  ASSERT_TRUE(client.DescribeRegions("ap-beijing", {}).ok());
  // Full jitter at u=0.5 of 200 ms, then of 400 ms.
  EXPECT_THAT(clock.sleeps(), ElementsAre(absl::Milliseconds(100), absl::Milliseconds(200)));
}

// Every attempt carries the caller's options: a retried background call
// stays behind foreground callers, and keeps its deadline.
TEST(RetryingClientTest, EveryAttemptCarriesTheCallersPriorityAndDeadline) {
  FakeClock clock;
  auto mock = std::make_unique<MockLighthouseClient>();
  ApiError throttled;
  throttled.kind = ErrorKind::kApi;
  throttled.code = "RequestLimitExceeded";
  throttled.action = "SyncBlueprint";
  std::vector<CallOptions> seen;
  auto record = [&](const CallOptions& o) { seen.push_back(o); };
  EXPECT_CALL(*mock, SyncBlueprint(_, _))
      .WillOnce([&](auto&, const CallOptions& o) {
        record(o);
        return absl::StatusOr<SyncBlueprintResponse>(MakeStatus(throttled));
      })
      .WillOnce([&](auto&, const CallOptions& o) {
        record(o);
        return absl::StatusOr<SyncBlueprintResponse>(MakeStatus(throttled));
      })
      .WillOnce([&](auto&, const CallOptions& o) {
        record(o);
        return absl::StatusOr<SyncBlueprintResponse>(SyncBlueprintResponse{});
      });
  EXPECT_CALL(*mock, DeleteBlueprints(_, _))
      .WillOnce([&](auto&, const CallOptions& o) {
        record(o);
        return absl::StatusOr<DeleteBlueprintsResponse>(MakeStatus(throttled));
      })
      .WillOnce([&](auto&, const CallOptions& o) {
        record(o);
        return absl::StatusOr<DeleteBlueprintsResponse>(DeleteBlueprintsResponse{});
      });
  RetryOptions options;
  options.initial_backoff = absl::Milliseconds(10);
  options.min_backoff = absl::Milliseconds(1);
  RetryingLighthouseClient client(std::move(mock), RetryPolicy(options, [] { return 0.5; }),
                                  &clock);
  CallOptions call;
  call.priority = CallPriority::kBackground;
  call.deadline = clock.Now() + absl::Minutes(1);
  ASSERT_TRUE(client.SyncBlueprint(SyncRequest(), call).ok());
  ASSERT_TRUE(client.DeleteBlueprints(DeleteRequest(), call).ok());
  ASSERT_EQ(seen.size(), 5u);
  for (const CallOptions& o : seen) {
    EXPECT_EQ(o.priority, CallPriority::kBackground);
    EXPECT_EQ(o.deadline, call.deadline);
  }
}

TEST(RetryingClientTest, NonIdempotentOutcomeUnknownNeverRetriedEvenByLaxPolicy) {
  FakeClock clock;
  auto mock = std::make_unique<MockLighthouseClient>();
  ApiError unknown;
  unknown.kind = ErrorKind::kOutcomeUnknown;
  unknown.code = "ClientError.NetworkError";
  EXPECT_CALL(*mock, SyncBlueprint(_, _)).Times(1).WillOnce(Return(MakeStatus(unknown)));
  RetryingLighthouseClient client(std::move(mock), RetryPolicy(), &clock);
  EXPECT_FALSE(client.SyncBlueprint(SyncRequest(), {}).ok());
}

}  // namespace
}  // namespace blueprintsync::tencent
