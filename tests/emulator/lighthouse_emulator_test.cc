// End-to-end tests of the emulator over real HTTP on 127.0.0.1:0, with an
// injected fake clock so that signatures, rate windows and sync progress are
// deterministic and nothing sleeps.
#include "tests/emulator/lighthouse_emulator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "service/common/testing/fake_clock.h"
#include "tests/emulator/emulator_server.h"
#include "tests/emulator/emulator_test_client.h"

namespace blueprintsync::emulator {
namespace {

using ::blueprintsync::testing::CallApi;
using ::blueprintsync::testing::Reply;
using ::blueprintsync::testing::SignSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr int64_t kStart = 1700000000;

class EmulatorTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(EmulatorOptions{}); }

  void Start(EmulatorOptions options) {
    if (server_) server_->Stop();
    server_.reset();
    options.clock = &clock_;
    // Time stands still under the fake clock, so the per-second limits would
    // throttle ordinary tests; the rate-limit tests set their own.
    for (auto& [action, limit] : options.config.rate_limits) limit = 0;
    emulator_ = std::make_unique<LighthouseEmulator>(std::move(options));
    server_ = std::make_unique<EmulatorServer>(emulator_.get());
    auto port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  SignSpec Spec(std::string action, std::optional<std::string> region = std::nullopt) {
    SignSpec s;
    s.action = std::move(action);
    s.region = std::move(region);
    s.timestamp = absl::ToUnixSeconds(clock_.Now());
    return s;
  }

  Reply Call(const SignSpec& s, const std::string& body = "{}",
             const httplib::Headers& extra = {}) {
    return CallApi(port_, s, body, extra);
  }
  Reply Sync(const std::string& region, const std::string& body) {
    return Call(Spec(kSyncBlueprint, region), body);
  }
  Reply Describe(const std::string& region, const std::string& body = "{}") {
    return Call(Spec(kDescribeBlueprints, region), body);
  }
  Reply Delete(const std::string& region, const std::vector<std::string>& ids) {
    return Call(Spec(kDeleteBlueprints, region),
                absl::StrCat(R"({"BlueprintIds":[")", absl::StrJoin(ids, R"(",")"), R"("]})"));
  }
  // State of `id` in `region` as DescribeBlueprints reports it ("" if absent).
  std::string StateOf(const std::string& region, const std::string& id) {
    Reply r = Describe(region, absl::StrCat(R"({"BlueprintIds":[")", id, R"("]})"));
    EXPECT_EQ(r.error_code(), "") << r.body;
    if (!r.ok_json() || r.response()["BlueprintSet"].Size() == 0) return "";
    return r.response()["BlueprintSet"][0]["BlueprintState"].GetString();
  }

  std::string Admin(const std::string& method, const std::string& path,
                    const std::string& body = "", int want_status = 200) {
    httplib::Client cli("127.0.0.1", port_);
    auto r = method == "GET"      ? cli.Get(path.c_str())
             : method == "DELETE" ? cli.Delete(path.c_str())
                                  : cli.Post(path.c_str(), body, "application/json");
    EXPECT_TRUE(r) << path;
    if (!r) return "";
    EXPECT_EQ(r->status, want_status) << path << " " << r->body;
    return r->body;
  }
  rapidjson::Document Stats() {
    rapidjson::Document d;
    d.Parse(Admin("GET", "/_emulator/stats").c_str());
    return d;
  }

  testing::FakeClock clock_{absl::FromUnixSeconds(kStart)};
  std::unique_ptr<LighthouseEmulator> emulator_;
  std::unique_ptr<EmulatorServer> server_;
  int port_ = 0;
};

// ---------------------------------------------------------------------------
// Authentication

TEST_F(EmulatorTest, DescribeRegionsSucceedsWithSdkStyleSignature) {
  Reply r = Call(Spec(kDescribeRegions));
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.error_code(), "") << r.body;
  EXPECT_EQ(r.response()["TotalCount"].GetInt(), 15);
  EXPECT_EQ(r.response()["RegionSet"].Size(), 15u);
  std::set<std::string> mainland;
  for (const auto& region : r.response()["RegionSet"].GetArray()) {
    EXPECT_STREQ(region["RegionState"].GetString(), "AVAILABLE");
    EXPECT_TRUE(region["RegionName"].IsString());
    if (region["IsChinaMainland"].GetBool()) mainland.insert(region["Region"].GetString());
  }
  EXPECT_THAT(mainland, UnorderedElementsAre("ap-beijing", "ap-shanghai", "ap-guangzhou",
                                             "ap-chengdu", "ap-nanjing"));
  const std::string request_id = r.response()["RequestId"].GetString();
  EXPECT_EQ(request_id.size(), 36u);
  EXPECT_EQ(request_id[14], '4');
}

TEST_F(EmulatorTest, AcceptsSignedActionHeaderAndHostWithPort) {
  SignSpec s = Spec(kDescribeRegions);
  s.sign_action = true;
  EXPECT_EQ(Call(s).error_code(), "");
  s.host = absl::StrCat("127.0.0.1:", port_);
  EXPECT_EQ(Call(s).error_code(), "");
  s.sign_action = false;
  EXPECT_EQ(Call(s).error_code(), "");
  s.content_type = "application/json; charset=utf-8";
  EXPECT_EQ(Call(s).error_code(), "");
}

TEST_F(EmulatorTest, InvalidAuthorizationCases) {
  SignSpec s = Spec(kDescribeRegions);
  const std::string body = "{}";
  const std::string good = testing::Tc3Authorization(s, body);
  const std::vector<std::string> bad_headers = {
      "",
      "TC3-HMAC-SHA1 " + good.substr(good.find(' ') + 1),
      "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2023-11-14/lighthouse/"
      "tc3_request, SignedHeaders=content-type, Signature=00",
      "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2023-11-14/lighthouse, "
      "SignedHeaders=content-type;host, Signature=00",
      "TC3-HMAC-SHA256 SignedHeaders=content-type;host, Signature=00",
  };
  for (const std::string& h : bad_headers) {
    Reply r = Call(s, body, {{"Authorization", h}});
    EXPECT_EQ(r.error_code(), "AuthFailure.InvalidAuthorization") << h << " -> " << r.body;
  }
  SignSpec wrong_date = s;
  wrong_date.scope_date = "2023-11-15";
  EXPECT_EQ(Call(wrong_date).error_code(), "AuthFailure.InvalidAuthorization");
  SignSpec wrong_service = s;
  wrong_service.service = "cvm";
  EXPECT_EQ(Call(wrong_service).error_code(), "AuthFailure.InvalidAuthorization");

  // Missing Authorization entirely (no header at all).
  httplib::Client cli("127.0.0.1", port_);
  httplib::Headers h = testing::SignedHeaders(s, body);
  h.erase("Authorization");
  EXPECT_EQ(testing::ToReply(cli.Post("/", h, body, "application/json")).error_code(),
            "AuthFailure.InvalidAuthorization");
}

TEST_F(EmulatorTest, TimestampChecks) {
  SignSpec s = Spec(kDescribeRegions);
  EXPECT_EQ(Call(s, "{}", {{"X-TC-Timestamp", "17e8"}}).error_code(), "InvalidParameter");
  {
    httplib::Client cli("127.0.0.1", port_);
    httplib::Headers h = testing::SignedHeaders(s, "{}");
    h.erase("X-TC-Timestamp");
    EXPECT_EQ(testing::ToReply(cli.Post("/", h, "{}", "application/json")).error_code(),
              "MissingParameter");
  }
  for (int64_t skew : {-301, 301, -100000}) {
    SignSpec skewed = s;
    skewed.timestamp = kStart + skew;
    Reply r = Call(skewed);
    EXPECT_EQ(r.error_code(), "AuthFailure.SignatureExpire") << skew;
    EXPECT_THAT(r.error_message(), HasSubstr(std::to_string(kStart))) << skew;
  }
  for (int64_t skew : {-300, 300}) {
    SignSpec skewed = s;
    skewed.timestamp = kStart + skew;
    EXPECT_EQ(Call(skewed).error_code(), "") << skew;
  }
}

TEST_F(EmulatorTest, SecretIdTokenAndSignatureChecks) {
  SignSpec s = Spec(kDescribeRegions);
  SignSpec unknown = s;
  unknown.secret_id = "AKIDunknown";
  EXPECT_EQ(Call(unknown).error_code(), "AuthFailure.SecretIdNotFound");

  SignSpec tmp = s;
  tmp.secret_id = kDefaultTemporarySecretId;
  tmp.secret_key = kDefaultTemporarySecretKey;
  EXPECT_EQ(Call(tmp).error_code(), "AuthFailure.TokenFailure");
  tmp.token = "wrong-token";
  EXPECT_EQ(Call(tmp).error_code(), "AuthFailure.TokenFailure");
  tmp.token = kDefaultTemporaryToken;
  EXPECT_EQ(Call(tmp).error_code(), "");

  // Permanent keys ignore any token.
  SignSpec perm = s;
  perm.token = "whatever";
  EXPECT_EQ(Call(perm).error_code(), "");

  SignSpec wrong_key = s;
  wrong_key.secret_key = "not-the-key";
  EXPECT_EQ(Call(wrong_key).error_code(), "AuthFailure.SignatureFailure");
  SignSpec tampered = s;
  tampered.signed_body = R"({"x":1})";
  EXPECT_EQ(Call(tampered, "{}").error_code(), "AuthFailure.SignatureFailure");
  SignSpec charset = s;  // signs one content type, sends another
  charset.signed_content_type = "application/json";
  charset.content_type = "application/json; charset=utf-8";
  EXPECT_EQ(Call(charset).error_code(), "AuthFailure.SignatureFailure");
  // A signed x-tc-action that does not match the header actually sent.
  SignSpec action = s;
  action.sign_action = true;
  EXPECT_EQ(Call(action, "{}", {{"X-TC-Action", "DescribeBlueprints"}}).error_code(),
            "AuthFailure.SignatureFailure");
  // Signed for another host.
  SignSpec host = s;
  EXPECT_EQ(Call(host, "{}", {{"Host", "lighthouse.ap-tokyo.tencentcloudapi.com"}}).error_code(),
            "AuthFailure.SignatureFailure");

  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["requests_total"].GetInt(), 10);
  EXPECT_EQ(stats["auth_failures"].GetInt(), 8);
  EXPECT_EQ(stats["signature_failures"].GetInt(), 5);
  EXPECT_EQ(stats["actions"][kDescribeRegions]["received"].GetInt(), 2);
  EXPECT_EQ(stats["actions"][kDescribeRegions]["executed"].GetInt(), 2);
}

TEST_F(EmulatorTest, ExpiredTemporaryKeyAndAddedKeys) {
  Admin("POST", "/_emulator/keys",
        absl::StrCat(R"({"keys":[{"SecretId":"AKIDshort","SecretKey":"k1","Token":"t1",)",
                     R"("ExpiredTime":)", kStart + 60,
                     R"(},{"SecretId":"AKIDperm","SecretKey":"k2"}]})"));
  SignSpec s = Spec(kDescribeRegions);
  s.secret_id = "AKIDshort";
  s.secret_key = "k1";
  s.token = "t1";
  EXPECT_EQ(Call(s).error_code(), "");
  clock_.Advance(absl::Seconds(60));
  s.timestamp += 60;
  EXPECT_EQ(Call(s).error_code(), "AuthFailure.TokenFailure");
  SignSpec p = Spec(kDescribeRegions);
  p.secret_id = "AKIDperm";
  p.secret_key = "k2";
  EXPECT_EQ(Call(p).error_code(), "");
  Admin("POST", "/_emulator/keys", R"({"keys":[{"SecretId":"x"}]})", 400);
}

TEST_F(EmulatorTest, NoDefaultKeys) {
  EmulatorOptions o;
  o.default_keys = false;
  o.keys.push_back({"AKIDmine", "secret", std::nullopt, std::nullopt});
  Start(std::move(o));
  EXPECT_EQ(Call(Spec(kDescribeRegions)).error_code(), "AuthFailure.SecretIdNotFound");
  SignSpec s = Spec(kDescribeRegions);
  s.secret_id = "AKIDmine";
  s.secret_key = "secret";
  EXPECT_EQ(Call(s).error_code(), "");
}

// ---------------------------------------------------------------------------
// Routing, region, parameters

TEST_F(EmulatorTest, VersionActionAndRegionChecks) {
  SignSpec s = Spec(kDescribeRegions);
  s.version = "2017-03-12";
  EXPECT_EQ(Call(s).error_code(), "NoSuchVersion");
  s.version.reset();
  EXPECT_EQ(Call(s).error_code(), "MissingParameter");
  EXPECT_EQ(Call(Spec("ModifyBlueprintAttribute", "ap-guangzhou")).error_code(), "InvalidAction");
  EXPECT_EQ(Call(Spec(kDeleteBlueprints)).error_code(), "MissingParameter");
  EXPECT_EQ(Call(Spec(kDeleteBlueprints, "ap-mars")).error_code(), "UnsupportedRegion");
  EXPECT_EQ(Call(Spec(kSyncBlueprint)).error_code(), "MissingParameter");
  EXPECT_EQ(Call(Spec(kDescribeBlueprints)).error_code(), "MissingParameter");
  EXPECT_EQ(Call(Spec(kDescribeBlueprints, "ap-mumbai")).error_code(), "UnsupportedRegion");
  EXPECT_EQ(Call(Spec(kSyncBlueprint, "ap-mars")).error_code(), "UnsupportedRegion");
  EXPECT_EQ(Call(Spec(kDescribeRegions, "ap-guangzhou")).error_code(), "");
}

TEST_F(EmulatorTest, BodyAndParameterChecks) {
  Reply not_json = Sync("ap-guangzhou", "{not json");
  EXPECT_EQ(not_json.error_code(), "InvalidParameter");
  EXPECT_THAT(not_json.error_message(), HasSubstr("not valid JSON"));
  EXPECT_EQ(Sync("ap-guangzhou", "[1,2]").error_code(), "InvalidParameter");
  EXPECT_EQ(Sync("ap-guangzhou", R"({"BlueprintId":7,"DestinationRegions":["ap-shanghai"]})")
                .error_code(),
            "InvalidParameter");
  EXPECT_EQ(Sync("ap-guangzhou", R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":"x"})")
                .error_code(),
            "InvalidParameter");
  EXPECT_EQ(Sync("ap-guangzhou",
                 R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai"],"X":1})")
                .error_code(),
            "UnknownParameter");
  EXPECT_EQ(Describe("ap-guangzhou", R"({"Limit":"5"})").error_code(), "InvalidParameter");
  EXPECT_EQ(Describe("ap-guangzhou", R"({"Foo":1})").error_code(), "UnknownParameter");
  EXPECT_EQ(Call(Spec(kDescribeRegions), R"({"Foo":1})").error_code(), "UnknownParameter");
}

// ---------------------------------------------------------------------------
// SyncBlueprint rules

struct SyncCase {
  std::string name;
  std::string region;
  std::string body;
  std::string want;
};

TEST_F(EmulatorTest, SyncBlueprintValidationCodes) {
  const std::string eleven =
      R"(["ap-shanghai","ap-beijing","ap-chengdu","ap-nanjing","ap-bangkok","ap-tokyo",)"
      R"("ap-seoul","ap-jakarta","eu-frankfurt","na-ashburn","sa-saopaulo"])";
  const std::vector<SyncCase> cases = {
      {"no id", "ap-guangzhou", R"({"DestinationRegions":["ap-shanghai"]})", "MissingParameter"},
      {"no destinations", "ap-guangzhou", R"({"BlueprintId":"lhbp-gzbase01"})", "MissingParameter"},
      {"malformed", "ap-guangzhou",
       R"({"BlueprintId":"lhbp-GZ","DestinationRegions":["ap-shanghai"]})",
       "InvalidParameterValue.BlueprintIdMalformed"},
      {"empty", "ap-guangzhou", R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":[]})",
       "MissingParameter"},
      {"eleven", "ap-guangzhou",
       absl::StrCat(R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":)", eleven, "}"),
       "InvalidParameterValue.LimitExceeded"},
      {"dup", "ap-guangzhou",
       R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai","ap-shanghai"]})",
       "InvalidParameterValue.Duplicated"},
      {"unavailable", "ap-guangzhou",
       R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-mumbai"]})",
       "InvalidParameterValue.UnavailableRegion"},
      {"same", "ap-guangzhou",
       R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai","ap-guangzhou"]})",
       "InvalidParameterValue.DestinationRegionSameAsSourceRegion"},
      {"cross border", "ap-guangzhou",
       R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai","ap-singapore"]})",
       "InvalidParameterValue.NotSupportCrossBorderSyncBlueprint"},
      {"cross border out", "ap-tokyo",
       R"({"BlueprintId":"lhbp-ls883feh","DestinationRegions":["ap-beijing"]})",
       "InvalidParameterValue.NotSupportCrossBorderSyncBlueprint"},
      {"not found", "ap-guangzhou",
       R"({"BlueprintId":"lhbp-zzzzzzzz","DestinationRegions":["ap-shanghai"]})",
       "ResourceNotFound.PrivateBlueprintNotFound"},
      {"wrong region", "ap-shanghai",
       R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-beijing"]})",
       "ResourceNotFound.PrivateBlueprintNotFound"},
      {"public", "ap-guangzhou",
       R"({"BlueprintId":"lhbp-pubos001","DestinationRegions":["ap-shanghai"]})",
       "ResourceNotFound.PrivateBlueprintNotFound"},
      {"createfailed", "ap-guangzhou",
       R"({"BlueprintId":"lhbp-gzfail01","DestinationRegions":["ap-shanghai"]})",
       "UnsupportedOperation.BlueprintCurStateInvalid"},
      {"offline", "ap-singapore",
       R"({"BlueprintId":"lhbp-sgoffl01","DestinationRegions":["ap-tokyo"]})",
       "UnsupportedOperation.BlueprintCurStateInvalid"},
  };
  for (const SyncCase& c : cases) {
    Reply r = Sync(c.region, c.body);
    EXPECT_EQ(r.error_code(), c.want) << c.name << ": " << r.body;
    EXPECT_TRUE(r.response().HasMember("RequestId")) << c.name;
  }
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["received"].GetInt(), static_cast<int>(cases.size()));
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["errors"].GetInt(), static_cast<int>(cases.size()));
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["executed"].GetInt(), 0);
  EXPECT_EQ(stats["sync_submissions"].Size(), 0u);
}

TEST_F(EmulatorTest, SeedFlagsAndAccountConditions) {
  Admin("POST", "/_emulator/blueprints", R"({"blueprints":[
      {"Region":"ap-guangzhou","BlueprintId":"lhbp-nosync01","Syncable":false},
      {"Region":"ap-guangzhou","BlueprintId":"lhbp-unfini01","LatestOperationUnfinished":true},
      {"Region":"ap-guangzhou","BlueprintId":"lhbp-seedsy01","BlueprintState":"SYNCING"}]})");
  auto body = [](const std::string& id, const std::string& dest = "ap-shanghai") {
    return absl::StrCat(R"({"BlueprintId":")", id, R"(","DestinationRegions":[")", dest, R"("]})");
  };
  EXPECT_EQ(Sync("ap-guangzhou", body("lhbp-nosync01")).error_code(),
            "FailedOperation.UnableToSyncBlueprint");
  EXPECT_EQ(Sync("ap-guangzhou", body("lhbp-unfini01")).error_code(),
            "UnsupportedOperation.BlueprintLatestOperationUnfinished");
  EXPECT_EQ(Sync("ap-guangzhou", body("lhbp-seedsy01")).error_code(),
            "OperationDenied.BlueprintOperationInProgress");

  // ap-shanghai already holds lhbp-shbase01: a quota of 1 leaves no room there.
  Admin("POST", "/_emulator/config", R"({"quota_per_region":1})");
  EXPECT_EQ(Sync("ap-guangzhou", body("lhbp-gzbase01")).error_code(),
            "LimitExceeded.SyncBlueprintQuotaLimitExceeded");
  Admin("POST", "/_emulator/config", R"({"quota_per_region":0,"balance_insufficient":true})");
  EXPECT_EQ(Sync("ap-guangzhou", body("lhbp-gzbase01")).error_code(),
            "FailedOperation.BalanceInsufficient");
  Admin("POST", "/_emulator/config", R"({"balance_insufficient":false,"certification":"none"})");
  EXPECT_EQ(Sync("ap-guangzhou", body("lhbp-gzbase01")).error_code(),
            "UnauthorizedOperation.NotCertification");
  Admin("POST", "/_emulator/config", R"({"certification":"needs_upgrade"})");
  EXPECT_EQ(Sync("ap-guangzhou", body("lhbp-gzbase01")).error_code(),
            "UnauthorizedOperation.CertificationNeedUpgrade");
  Admin("POST", "/_emulator/config",
        absl::StrCat(R"({"certification":"ok","no_permission_secret_ids":[")", kDefaultSecretId,
                     R"("]})"));
  EXPECT_EQ(Sync("ap-guangzhou", body("lhbp-gzbase01")).error_code(),
            "UnauthorizedOperation.NoPermission");
  // Another key of the same account still may.
  SignSpec tmp = Spec(kSyncBlueprint, "ap-guangzhou");
  tmp.secret_id = kDefaultTemporarySecretId;
  tmp.secret_key = kDefaultTemporarySecretKey;
  tmp.token = kDefaultTemporaryToken;
  EXPECT_EQ(Call(tmp, body("lhbp-gzbase01")).error_code(), "");
}

TEST_F(EmulatorTest, SyncLifecycle) {
  Admin("POST", "/_emulator/config", R"({"sync_duration_ms":3000,"fail_regions":["ap-beijing"]})");
  Reply r =
      Sync("ap-guangzhou",
           R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai","ap-beijing"]})");
  ASSERT_EQ(r.error_code(), "") << r.body;
  const auto& set = r.response()["DestinationRegionBlueprintSet"];
  ASSERT_EQ(set.Size(), 2u);
  EXPECT_STREQ(set[0]["Region"].GetString(), "ap-shanghai");
  EXPECT_STREQ(set[1]["Region"].GetString(), "ap-beijing");
  const std::string sh_id = set[0]["BlueprintId"].GetString();
  const std::string bj_id = set[1]["BlueprintId"].GetString();
  EXPECT_TRUE(IsWellFormedBlueprintId(sh_id)) << sh_id;
  EXPECT_TRUE(IsWellFormedBlueprintId(bj_id)) << bj_id;
  EXPECT_NE(sh_id, bj_id);
  EXPECT_NE(sh_id, "lhbp-gzbase01");

  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "SYNCING");
  EXPECT_EQ(StateOf("ap-shanghai", sh_id), "SYNCING");
  EXPECT_EQ(StateOf("ap-beijing", bj_id), "SYNCING");
  EXPECT_EQ(StateOf("ap-guangzhou", sh_id), "");  // only in its own region
  {
    Reply d = Describe("ap-shanghai", absl::StrCat(R"({"BlueprintIds":[")", sh_id, R"("]})"));
    const auto& bp = d.response()["BlueprintSet"][0];
    EXPECT_STREQ(bp["BlueprintName"].GetString(), "web-base");
    EXPECT_STREQ(bp["BlueprintType"].GetString(), "PRIVATE");
    EXPECT_STREQ(bp["OsName"].GetString(), "TencentOS Server 3.1 (TK4)");
    EXPECT_STREQ(bp["CreatedTime"].GetString(), "2023-11-14T22:13:20Z");
  }
  EXPECT_EQ(
      Sync("ap-guangzhou", R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-chengdu"]})")
          .error_code(),
      "OperationDenied.BlueprintOperationInProgress");

  clock_.Advance(absl::Milliseconds(2999));
  EXPECT_EQ(StateOf("ap-shanghai", sh_id), "SYNCING");
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(StateOf("ap-shanghai", sh_id), "NORMAL");
  EXPECT_EQ(StateOf("ap-beijing", bj_id), "SYNCING_FAILED");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "NORMAL");

  // A synced copy is itself a custom image that can be synced further.
  Reply again = Sync("ap-shanghai", absl::StrCat(R"({"BlueprintId":")", sh_id,
                                                 R"(","DestinationRegions":["ap-chengdu"]})"));
  EXPECT_EQ(again.error_code(), "") << again.body;

  rapidjson::Document stats = Stats();
  ASSERT_EQ(stats["sync_submissions"].Size(), 2u);
  const auto& sub = stats["sync_submissions"][0];
  EXPECT_STREQ(sub["Region"].GetString(), "ap-guangzhou");
  EXPECT_STREQ(sub["BlueprintId"].GetString(), "lhbp-gzbase01");
  EXPECT_STREQ(sub["DestinationRegions"][1].GetString(), "ap-beijing");
  EXPECT_EQ(sub["DestinationBlueprintIds"][0].GetString(), sh_id);
  EXPECT_EQ(sub["Time"].GetInt64(), kStart * 1000);
  EXPECT_EQ(sub["RequestId"].GetString(), std::string(r.response()["RequestId"].GetString()));
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["executed"].GetInt(), 2);
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["errors"].GetInt(), 1);

  // The admin listing shows every blueprint with region and live state.
  rapidjson::Document list;
  list.Parse(Admin("GET", "/_emulator/blueprints?region=ap-beijing").c_str());
  ASSERT_EQ(list["blueprints"].Size(), 1u);
  EXPECT_EQ(list["blueprints"][0]["BlueprintId"].GetString(), bj_id);
  EXPECT_STREQ(list["blueprints"][0]["Region"].GetString(), "ap-beijing");
  EXPECT_STREQ(list["blueprints"][0]["BlueprintState"].GetString(), "SYNCING_FAILED");
  EXPECT_STREQ(list["blueprints"][0]["SyncedFrom"].GetString(), "ap-guangzhou/lhbp-gzbase01");
}

TEST_F(EmulatorTest, VisibilityDelayHidesNewCopies) {
  Admin("POST", "/_emulator/config", R"({"visibility_delay_ms":500,"sync_duration_ms":100})");
  Reply r = Sync("ap-hongkong",
                 R"({"BlueprintId":"lhbp-hkbase01","DestinationRegions":["ap-singapore"]})");
  ASSERT_EQ(r.error_code(), "") << r.body;
  const std::string id =
      r.response()["DestinationRegionBlueprintSet"][0]["BlueprintId"].GetString();
  EXPECT_EQ(StateOf("ap-singapore", id), "");
  clock_.Advance(absl::Milliseconds(499));
  EXPECT_EQ(StateOf("ap-singapore", id), "");
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(StateOf("ap-singapore", id), "NORMAL");
}

TEST_F(EmulatorTest, SeedReplacesDefault) {
  EmulatorOptions o;
  o.seed = std::vector<Blueprint>{};
  Blueprint bp;
  bp.region = "ap-seoul";
  bp.id = "lhbp-seoul001";
  bp.blueprint_name = "only";
  o.seed->push_back(bp);
  Start(std::move(o));
  Reply r = Describe("ap-guangzhou");
  EXPECT_EQ(r.response()["TotalCount"].GetInt(), 0);
  EXPECT_EQ(StateOf("ap-seoul", "lhbp-seoul001"), "NORMAL");
}

// ---------------------------------------------------------------------------
// DescribeBlueprints

std::vector<std::string> Ids(const Reply& r) {
  std::vector<std::string> out;
  for (const auto& bp : r.response()["BlueprintSet"].GetArray())
    out.push_back(bp["BlueprintId"].GetString());
  return out;
}

TEST_F(EmulatorTest, DescribeBlueprintsScopePagingAndShape) {
  Reply all = Describe("ap-guangzhou");
  ASSERT_EQ(all.error_code(), "") << all.body;
  EXPECT_EQ(all.response()["TotalCount"].GetInt(), 4);
  // Stable order: creation time, then id (the public image is the oldest).
  EXPECT_THAT(Ids(all),
              ElementsAre("lhbp-pubos001", "lhbp-gzbase01", "lhbp-gzbase02", "lhbp-gzfail01"));
  const auto& bp = all.response()["BlueprintSet"][1];
  for (const char* field : {"BlueprintId",
                            "DisplayTitle",
                            "DisplayVersion",
                            "Description",
                            "OsName",
                            "Platform",
                            "PlatformType",
                            "BlueprintType",
                            "ImageUrl",
                            "RequiredSystemDiskSize",
                            "BlueprintState",
                            "CreatedTime",
                            "BlueprintName",
                            "SupportAutomationTools",
                            "RequiredMemorySize",
                            "ImageId",
                            "CommunityUrl",
                            "GuideUrl",
                            "SceneIdSet",
                            "DockerVersion",
                            "BlueprintShared",
                            "Tags"}) {
    EXPECT_TRUE(bp.HasMember(field)) << field;
  }
  EXPECT_EQ(bp.MemberCount(), 22u);
  // Only Description, CreatedTime and DockerVersion may be null (the SDK's
  // model); unset strings are "".
  EXPECT_TRUE(bp["DisplayVersion"].IsString());
  EXPECT_STREQ(bp["DisplayVersion"].GetString(), "");
  EXPECT_TRUE(bp["ImageId"].IsString());
  EXPECT_TRUE(bp["DockerVersion"].IsNull());
  EXPECT_TRUE(bp["Tags"].IsArray());

  Reply page = Describe("ap-guangzhou", R"({"Offset":1,"Limit":2})");
  EXPECT_EQ(page.response()["TotalCount"].GetInt(), 4);
  EXPECT_THAT(Ids(page), ElementsAre("lhbp-gzbase01", "lhbp-gzbase02"));
  Reply past_end = Describe("ap-guangzhou", R"({"Offset":10})");
  EXPECT_EQ(past_end.response()["TotalCount"].GetInt(), 4);
  EXPECT_THAT(Ids(past_end), ElementsAre());

  Reply by_id = Describe("ap-guangzhou",
                         R"({"BlueprintIds":["lhbp-gzbase02","lhbp-zzzzzzzz","lhbp-shbase01"]})");
  EXPECT_EQ(by_id.response()["TotalCount"].GetInt(), 1);
  EXPECT_THAT(Ids(by_id), ElementsAre("lhbp-gzbase02"));
}

TEST_F(EmulatorTest, DescribeBlueprintsFilters) {
  auto filter = [this](const std::string& filters) {
    return Ids(Describe("ap-guangzhou", absl::StrCat(R"({"Filters":)", filters, "}")));
  };
  EXPECT_THAT(filter(R"([{"Name":"blueprint-type","Values":["PRIVATE"]}])"),
              ElementsAre("lhbp-gzbase01", "lhbp-gzbase02", "lhbp-gzfail01"));
  EXPECT_THAT(filter(R"([{"Name":"blueprint-type","Values":["APP_OS"]}])"),
              ElementsAre("lhbp-pubos001"));
  EXPECT_THAT(filter(R"([{"Name":"blueprint-state","Values":["CREATEFAILED","OFFLINE"]}])"),
              ElementsAre("lhbp-gzfail01"));
  EXPECT_THAT(filter(R"([{"Name":"blueprint-name","Values":["db-base"]}])"),
              ElementsAre("lhbp-gzbase02"));
  EXPECT_THAT(filter(R"([{"Name":"blueprint-id","Values":["lhbp-gzbase01","lhbp-pubos001"]},
                         {"Name":"blueprint-type","Values":["PRIVATE"]}])"),
              ElementsAre("lhbp-gzbase01"));
  EXPECT_THAT(filter(R"([{"Name":"platform-type","Values":["WINDOWS"]}])"), ElementsAre());
  EXPECT_THAT(filter(R"([{"Name":"scene-id","Values":["lhsc-00000001"]}])"),
              ElementsAre("lhbp-pubos001"));
}

TEST_F(EmulatorTest, DescribeBlueprintsParameterErrors) {
  std::vector<std::string> many_ids, many_values, many_filters;
  for (int i = 0; i < 101; ++i) {
    many_ids.push_back(absl::StrFormat("\"lhbp-%08d\"", i));
    many_values.push_back(absl::StrFormat("\"v%d\"", i));
  }
  for (int i = 0; i < 11; ++i) many_filters.push_back(R"({"Name":"blueprint-id","Values":["x"]})");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"BlueprintIds":["lhbp-gzbase01"],"Filters":[{"Name":"blueprint-id","Values":["x"]}]})",
       "InvalidParameter.ParameterConflict"},
      {absl::StrCat(R"({"BlueprintIds":[)", absl::StrJoin(many_ids, ","), "]}"),
       "InvalidParameterValue.LimitExceeded"},
      {R"({"BlueprintIds":["lhbp-bad"]})", "InvalidParameterValue.BlueprintIdMalformed"},
      {absl::StrCat(R"({"Filters":[)", absl::StrJoin(many_filters, ","), "]}"),
       "InvalidParameter.FilterValueLimitExceeded"},
      {absl::StrCat(R"({"Filters":[{"Name":"blueprint-name","Values":[)",
                    absl::StrJoin(many_values, ","), "]}]}"),
       "InvalidParameter.FilterValueLimitExceeded"},
      {R"({"Filters":[{"Name":"tag-color","Values":["x"]}]})",
       "InvalidParameter.InvalidFilterNotSupportedName"},
      {R"({"Filters":[{"Name":"blueprint-id"}]})", "InvalidParameter"},
      {R"({"Offset":-1})", "InvalidParameterValue.Negative"},
      {R"({"Limit":0})", "InvalidParameterValue.OutOfRange"},
      {R"({"Limit":101})", "InvalidParameterValue.OutOfRange"},
  };
  for (const auto& [body, want] : cases) {
    EXPECT_EQ(Describe("ap-guangzhou", body).error_code(), want) << body.substr(0, 120);
  }
  EXPECT_EQ(Describe("ap-guangzhou", R"({"Limit":100,"Offset":0})").error_code(), "");
  EXPECT_EQ(Describe("ap-guangzhou", R"({"BlueprintIds":[],"Filters":[]})").error_code(), "");
}

// ---------------------------------------------------------------------------
// DeleteBlueprints

TEST_F(EmulatorTest, DeleteBlueprintsRemovesEachDeletableState) {
  Admin("POST", "/_emulator/blueprints", R"({"blueprints":[
      {"Region":"ap-guangzhou","BlueprintId":"lhbp-isolat01","BlueprintState":"ISOLATED"},
      {"Region":"ap-guangzhou","BlueprintId":"lhbp-syfail01","BlueprintState":"SYNCING_FAILED"}]})");
  for (const char* id : {"lhbp-gzbase01", "lhbp-gzfail01", "lhbp-isolat01", "lhbp-syfail01"}) {
    ASSERT_NE(StateOf("ap-guangzhou", id), "") << id;
    Reply r = Delete("ap-guangzhou", {id});
    EXPECT_EQ(r.error_code(), "") << id << ": " << r.body;
    // The answer is the RequestId alone.
    EXPECT_EQ(r.response().MemberCount(), 1u) << r.body;
    EXPECT_EQ(StateOf("ap-guangzhou", id), "") << id;
  }
  // Gone from every view of the region, and from the admin listing.
  Reply all = Describe("ap-guangzhou", R"({"Limit":100})");
  EXPECT_THAT(Ids(all), ElementsAre("lhbp-pubos001", "lhbp-gzbase02"));
  EXPECT_EQ(all.response()["TotalCount"].GetInt(), 2);
  const std::string listing = Admin("GET", "/_emulator/blueprints");
  EXPECT_THAT(listing, Not(HasSubstr("lhbp-gzbase01")));
  EXPECT_THAT(listing, Not(HasSubstr("lhbp-isolat01")));
  EXPECT_THAT(listing, HasSubstr("lhbp-gzbase02"));

  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["received"].GetInt(), 4);
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["executed"].GetInt(), 4);
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["errors"].GetInt(), 0);
  EXPECT_EQ(stats["deleted_blueprints_total"].GetInt(), 4);
  ASSERT_EQ(stats["deleted_blueprints"].Size(), 4u);
  EXPECT_STREQ(stats["deleted_blueprints"][0]["Region"].GetString(), "ap-guangzhou");
  EXPECT_STREQ(stats["deleted_blueprints"][0]["BlueprintId"].GetString(), "lhbp-gzbase01");
  EXPECT_EQ(stats["deleted_blueprints"][0]["Time"].GetInt64(), kStart * 1000);
  EXPECT_STREQ(stats["deleted_blueprints"][3]["BlueprintId"].GetString(), "lhbp-syfail01");
}

TEST_F(EmulatorTest, DeleteBlueprintsRefusesOtherStates) {
  Admin("POST", "/_emulator/blueprints", R"({"blueprints":[
      {"Region":"ap-singapore","BlueprintId":"lhbp-seedsy01","BlueprintState":"SYNCING"},
      {"Region":"ap-singapore","BlueprintId":"lhbp-isoing01","BlueprintState":"ISOLATING"},
      {"Region":"ap-singapore","BlueprintId":"lhbp-delete01","BlueprintState":"DELETING"}]})");
  for (const char* id : {"lhbp-sgoffl01", "lhbp-seedsy01", "lhbp-isoing01", "lhbp-delete01"}) {
    const std::string before = StateOf("ap-singapore", id);
    Reply r = Delete("ap-singapore", {id});
    EXPECT_EQ(r.error_code(), "UnsupportedOperation.BlueprintCurStateInvalid") << id;
    EXPECT_THAT(r.error_message(), HasSubstr(before)) << id;
    EXPECT_EQ(StateOf("ap-singapore", id), before) << id;
  }
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["errors"].GetInt(), 4);
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["executed"].GetInt(), 0);
  EXPECT_EQ(stats["deleted_blueprints_total"].GetInt(), 0);
}

TEST_F(EmulatorTest, DeleteBlueprintsUnknownPublicOrForeignIdIsNotFound) {
  // Unknown; a public image; a custom image of another region.
  for (const char* id : {"lhbp-zzzzzzzz", "lhbp-pubos001", "lhbp-shbase01"}) {
    EXPECT_EQ(Delete("ap-guangzhou", {id}).error_code(),
              "ResourceNotFound.PrivateBlueprintNotFound")
        << id;
  }
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-pubos001"), "NORMAL");
  EXPECT_EQ(StateOf("ap-shanghai", "lhbp-shbase01"), "NORMAL");
  // Deleting twice: the second call finds nothing.
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(), "");
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(),
            "ResourceNotFound.PrivateBlueprintNotFound");
}

TEST_F(EmulatorTest, DeleteBlueprintsIsAllOrNothing) {
  // One unknown id, one undeletable state: each fails the whole call.
  EXPECT_EQ(
      Delete("ap-guangzhou", {"lhbp-gzbase01", "lhbp-gzbase02", "lhbp-zzzzzzzz"}).error_code(),
      "ResourceNotFound.PrivateBlueprintNotFound");
  Admin("POST", "/_emulator/blueprints",
        R"({"blueprints":[{"Region":"ap-guangzhou","BlueprintId":"lhbp-offl0001",)"
        R"("BlueprintState":"OFFLINE"}]})");
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01", "lhbp-offl0001"}).error_code(),
            "UnsupportedOperation.BlueprintCurStateInvalid");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "NORMAL");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase02"), "NORMAL");
  EXPECT_EQ(Stats()["deleted_blueprints_total"].GetInt(), 0);

  // All deletable: all go, a repeated id once.
  Reply r = Delete("ap-guangzhou", {"lhbp-gzbase01", "lhbp-gzbase02", "lhbp-gzbase01"});
  ASSERT_EQ(r.error_code(), "") << r.body;
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase02"), "");
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["deleted_blueprints_total"].GetInt(), 2);
  ASSERT_EQ(stats["deleted_blueprints"].Size(), 2u);
  for (const auto& d : stats["deleted_blueprints"].GetArray()) {
    EXPECT_EQ(d["RequestId"].GetString(), std::string(r.response()["RequestId"].GetString()));
  }
}

TEST_F(EmulatorTest, DeleteBlueprintsSourceOfARunningSyncIsOccupied) {
  Admin("POST", "/_emulator/config", R"({"sync_duration_ms":3000,"fail_regions":["ap-beijing"]})");
  Reply sync =
      Sync("ap-guangzhou",
           R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai","ap-beijing"]})");
  ASSERT_EQ(sync.error_code(), "") << sync.body;
  const std::string sh_id =
      sync.response()["DestinationRegionBlueprintSet"][0]["BlueprintId"].GetString();
  const std::string bj_id =
      sync.response()["DestinationRegionBlueprintSet"][1]["BlueprintId"].GetString();

  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(),
            "UnsupportedOperation.BlueprintOccupied");
  // The copies themselves are SYNCING: not deletable yet either.
  EXPECT_EQ(Delete("ap-shanghai", {sh_id}).error_code(),
            "UnsupportedOperation.BlueprintCurStateInvalid");
  // Another source in the same region is not occupied by this sync.
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase02"}).error_code(), "");

  // The state is advanced from the clock before the rules apply.
  clock_.Advance(absl::Milliseconds(3000));
  EXPECT_EQ(Delete("ap-beijing", {bj_id}).error_code(), "");   // SYNCING_FAILED
  EXPECT_EQ(Delete("ap-shanghai", {sh_id}).error_code(), "");  // NORMAL
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(), "");
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["deleted_blueprints_total"].GetInt(), 4);
  EXPECT_EQ(stats["deleted_blueprints"][1]["BlueprintId"].GetString(), bj_id);
  EXPECT_STREQ(stats["deleted_blueprints"][1]["Region"].GetString(), "ap-beijing");
}

TEST_F(EmulatorTest, DeleteBlueprintsFreesQuota) {
  Admin("POST", "/_emulator/config", R"({"quota_per_region":1,"sync_duration_ms":0})");
  const std::string body =
      R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai"]})";
  EXPECT_EQ(Sync("ap-guangzhou", body).error_code(),
            "LimitExceeded.SyncBlueprintQuotaLimitExceeded");
  ASSERT_EQ(Delete("ap-shanghai", {"lhbp-shbase01"}).error_code(), "");
  EXPECT_EQ(Sync("ap-guangzhou", body).error_code(), "");
}

TEST_F(EmulatorTest, DeleteBlueprintsParameterErrors) {
  std::vector<std::string> many;
  for (int i = 0; i < 101; ++i) many.push_back(absl::StrFormat("\"lhbp-%08d\"", i));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{}", "MissingParameter"},
      {R"({"BlueprintIds":[]})", "MissingParameter"},
      {R"({"BlueprintIds":"lhbp-gzbase01"})", "InvalidParameter"},
      {R"({"BlueprintIds":[7]})", "InvalidParameter"},
      {R"({"BlueprintIds":null})", "InvalidParameter"},
      {absl::StrCat(R"({"BlueprintIds":[)", absl::StrJoin(many, ","), "]}"),
       "InvalidParameterValue.LimitExceeded"},
      {R"({"BlueprintIds":["lhbp-gzbase01","lhbp-GZ"]})",
       "InvalidParameterValue.BlueprintIdMalformed"},
      {R"({"BlueprintIds":["lhbp-gzbase01"],"Force":true})", "UnknownParameter"},
  };
  for (const auto& [body, want] : cases) {
    EXPECT_EQ(Call(Spec(kDeleteBlueprints, "ap-guangzhou"), body).error_code(), want)
        << body.substr(0, 120);
  }
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "NORMAL");
  EXPECT_EQ(Stats()["actions"][kDeleteBlueprints]["errors"].GetInt(),
            static_cast<int>(cases.size()));
}

TEST_F(EmulatorTest, DeleteBlueprintsRateLimitedAt20PerSecondByDefault) {
  // The fixture lifts every limit; put the shipped default back.
  Admin("POST", "/_emulator/config", R"({"rate_limits":{"DeleteBlueprints":20}})");
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-zzzzzzzz"}).error_code(),
              "ResourceNotFound.PrivateBlueprintNotFound")
        << i;
  }
  // Throttled before execution: the blueprint stays.
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(), "RequestLimitExceeded");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "NORMAL");
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(), "");
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["throttled"].GetInt(), 1);
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["executed"].GetInt(), 1);
  EXPECT_EQ(stats["max_accepted_per_second"][kDeleteBlueprints].GetInt(), 20);
}

TEST_F(EmulatorTest, DeleteBlueprintsFaults) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"DeleteBlueprints","fault":"internal_error","count":1},
                     {"action":"DeleteBlueprints","fault":"error","phase":"after","count":1,
                      "code":"FailedOperation.RequestError"}]})");
  // Before: refused, nothing deleted.
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(), "InternalError");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "NORMAL");
  // After: deleted, but the answer is lost.
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(), "FailedOperation.RequestError");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "");
  // The caller's retry finds it gone.
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(),
            "ResourceNotFound.PrivateBlueprintNotFound");
  // "*" rules cover the action too.
  Admin("POST", "/_emulator/faults", R"({"rules":[{"action":"*","fault":"http_5xx"}]})");
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase02"}).status, 503);
  Admin("POST", "/_emulator/faults", R"({"rules":[]})");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase02"), "NORMAL");
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["deleted_blueprints_total"].GetInt(), 1);
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["executed"].GetInt(), 1);
}

TEST_F(EmulatorTest, DeletedBlueprintsListKeepsTheLatestThousand) {
  std::vector<std::string> seed;
  for (int i = 0; i < 1001; ++i) {
    seed.push_back(absl::StrFormat(R"({"Region":"ap-seoul","BlueprintId":"lhbp-d%07d"})", i));
  }
  Admin("POST", "/_emulator/blueprints",
        absl::StrCat(R"({"blueprints":[)", absl::StrJoin(seed, ","), "]}"));
  for (int first = 0; first < 1001; first += 100) {
    std::vector<std::string> ids;
    for (int i = first; i < std::min(first + 100, 1001); ++i) {
      ids.push_back(absl::StrFormat("lhbp-d%07d", i));
    }
    ASSERT_EQ(Delete("ap-seoul", ids).error_code(), "") << first;
  }
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["deleted_blueprints_total"].GetInt(), 1001);
  ASSERT_EQ(stats["deleted_blueprints"].Size(), kMaxRecordedDeletions);
  EXPECT_STREQ(stats["deleted_blueprints"][0]["BlueprintId"].GetString(), "lhbp-d0000001");
  EXPECT_STREQ(stats["deleted_blueprints"][999]["BlueprintId"].GetString(), "lhbp-d0001000");

  Admin("POST", "/_emulator/reset-stats");
  stats = Stats();
  EXPECT_EQ(stats["deleted_blueprints_total"].GetInt(), 0);
  EXPECT_EQ(stats["deleted_blueprints"].Size(), 0u);
  EXPECT_EQ(stats["actions"][kDeleteBlueprints]["received"].GetInt(), 0);
}

TEST_F(EmulatorTest, AdminDeleteRemovesBehindTheApisBack) {
  Admin("DELETE", "/_emulator/blueprints/ap-guangzhou/lhbp-gzbase01");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "");
  EXPECT_THAT(Admin("GET", "/_emulator/blueprints"), Not(HasSubstr("lhbp-gzbase01")));
  Admin("DELETE", "/_emulator/blueprints/ap-guangzhou/lhbp-gzbase01", "", 404);
  Admin("DELETE", "/_emulator/blueprints/ap-shanghai/lhbp-gzbase02", "", 404);
  // Not a deletion the API executed.
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["deleted_blueprints_total"].GetInt(), 0);
  EXPECT_EQ(stats["requests_total"].GetInt(), 1);  // StateOf's DescribeBlueprints
  EXPECT_EQ(Delete("ap-guangzhou", {"lhbp-gzbase01"}).error_code(),
            "ResourceNotFound.PrivateBlueprintNotFound");
}

// ---------------------------------------------------------------------------
// Rate limiting

TEST_F(EmulatorTest, RateLimitPerActionSlidingWindow) {
  Admin("POST", "/_emulator/config", R"({"rate_limits":{"DescribeRegions":3}})");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Call(Spec(kDescribeRegions)).error_code(), "") << i;
  EXPECT_EQ(Call(Spec(kDescribeRegions)).error_code(), "RequestLimitExceeded");
  // Other actions have their own budget.
  EXPECT_EQ(Describe("ap-guangzhou").error_code(), "");
  clock_.Advance(absl::Milliseconds(999));
  EXPECT_EQ(Call(Spec(kDescribeRegions)).error_code(), "RequestLimitExceeded");
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Call(Spec(kDescribeRegions)).error_code(), "");

  rapidjson::Document stats = Stats();
  const auto& s = stats["actions"][kDescribeRegions];
  EXPECT_EQ(s["received"].GetInt(), 6);
  EXPECT_EQ(s["throttled"].GetInt(), 2);
  EXPECT_EQ(s["executed"].GetInt(), 4);
  EXPECT_EQ(s["errors"].GetInt(), 0);
  EXPECT_EQ(stats["max_accepted_per_second"][kDescribeRegions].GetInt(), 3);
  EXPECT_EQ(stats["max_accepted_per_second"][kDescribeBlueprints].GetInt(), 1);

  Admin("POST", "/_emulator/reset-stats");
  stats = Stats();
  EXPECT_EQ(stats["requests_total"].GetInt(), 0);
  EXPECT_EQ(stats["actions"][kDescribeRegions]["received"].GetInt(), 0);
  EXPECT_EQ(stats["max_accepted_per_second"][kDescribeRegions].GetInt(), 0);
}

TEST_F(EmulatorTest, ThrottledSyncIsNotExecuted) {
  Admin("POST", "/_emulator/config", R"({"rate_limits":{"SyncBlueprint":1},"sync_duration_ms":0})");
  const std::string body =
      R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai"]})";
  EXPECT_EQ(Sync("ap-guangzhou", body).error_code(), "");
  EXPECT_EQ(Sync("ap-guangzhou", body).error_code(), "RequestLimitExceeded");
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["sync_submissions"].Size(), 1u);
}

// ---------------------------------------------------------------------------
// Faults

TEST_F(EmulatorTest, FaultBeforeIsNotExecuted) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"SyncBlueprint","fault":"internal_error","count":1}]})");
  const std::string body =
      R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai"]})";
  Reply r = Sync("ap-guangzhou", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.error_code(), "InternalError");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "NORMAL");
  EXPECT_EQ(Stats()["sync_submissions"].Size(), 0u);
  // count=1: the next call goes through.
  EXPECT_EQ(Sync("ap-guangzhou", body).error_code(), "");
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["faults"]["internal_error"].GetInt(), 1);
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["executed"].GetInt(), 1);
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["errors"].GetInt(), 1);
  rapidjson::Document faults;
  faults.Parse(Admin("GET", "/_emulator/faults").c_str());
  EXPECT_EQ(faults["rules"][0]["fired"].GetInt(), 1);
}

TEST_F(EmulatorTest, FaultAfterIsExecutedButAnswerReplaced) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"SyncBlueprint","fault":"error","phase":"after",
                      "code":"FailedOperation.RequestError","message":"boom"}]})");
  Reply r = Sync("ap-guangzhou",
                 R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai"]})");
  EXPECT_EQ(r.error_code(), "FailedOperation.RequestError");
  EXPECT_EQ(r.error_message(), "boom");
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "SYNCING");
  rapidjson::Document stats = Stats();
  ASSERT_EQ(stats["sync_submissions"].Size(), 1u);
  EXPECT_EQ(stats["sync_submissions"][0]["RequestId"].GetString(),
            std::string(r.response()["RequestId"].GetString()));
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["executed"].GetInt(), 1);
  EXPECT_EQ(stats["actions"][kSyncBlueprint]["errors"].GetInt(), 1);
  EXPECT_EQ(stats["faults"]["error"].GetInt(), 1);
  // Other actions are unaffected by an action-specific rule.
  EXPECT_EQ(Call(Spec(kDescribeRegions)).error_code(), "");
}

TEST_F(EmulatorTest, Http5xxFault) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"*","fault":"http_5xx","status":502}]})");
  Reply r = Call(Spec(kDescribeRegions));
  EXPECT_EQ(r.status, 502);
  EXPECT_FALSE(r.ok_json());
  EXPECT_EQ(Stats()["faults"]["http_5xx"].GetInt(), 1);
  Admin("POST", "/_emulator/faults", R"({"rules":[]})");
  EXPECT_EQ(Call(Spec(kDescribeRegions)).error_code(), "");
}

TEST_F(EmulatorTest, MalformedFault) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"DescribeBlueprints","fault":"malformed","phase":"after"}]})");
  Reply r = Describe("ap-guangzhou");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.body.empty());
  EXPECT_FALSE(r.ok_json()) << r.body;
  EXPECT_EQ(Stats()["faults"]["malformed"].GetInt(), 1);
}

TEST_F(EmulatorTest, HostileErrorFaultPadsCodeMessageAndRequestId) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"SyncBlueprint","fault":"hostile_error","count":1,)"
        R"("code":"FailedOperation","message_bytes":300000,"code_bytes":5000,)"
        R"("request_id_bytes":4000}]})");
  Reply r = Sync("ap-guangzhou",
                 R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai"]})");
  EXPECT_EQ(r.status, 200);
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.body.size());
  ASSERT_FALSE(doc.HasParseError());
  const auto& error = doc["Response"]["Error"];
  EXPECT_EQ(error["Code"].GetStringLength(), 5000u);
  EXPECT_EQ(error["Message"].GetStringLength(), 300000u);
  EXPECT_EQ(std::string(error["Message"].GetString(), 20).find('\0'), 15u);  // after the message
  EXPECT_EQ(doc["Response"]["RequestId"].GetStringLength(), 4000u);
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["faults"]["hostile_error"].GetInt(), 1);
  EXPECT_EQ(stats["sync_submissions"].Size(), 0u);  // phase before: not executed
}

TEST_F(EmulatorTest, HostileFieldsFaultGarblesTheRealAnswer) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"SyncBlueprint","fault":"hostile_fields","phase":"after"}]})");
  Reply r = Sync("ap-guangzhou",
                 R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai"]})");
  EXPECT_EQ(r.status, 200);
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.body.size());
  ASSERT_FALSE(doc.HasParseError());
  const auto& id = doc["Response"]["DestinationRegionBlueprintSet"][0]["BlueprintId"];
  EXPECT_EQ(id.GetStringLength(), 5u * 1024);
  EXPECT_EQ(std::string(id.GetString(), id.GetStringLength()).find('\0'), 5u);
  EXPECT_EQ(Stats()["sync_submissions"].Size(), 1u);  // executed, answer replaced
  // It garbles a real answer: "before" has none.
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"fault":"hostile_fields","phase":"before"}]})", 400);
  Admin("POST", "/_emulator/faults", R"({"rules":[{"fault":"huge_body","body_bytes":70000000}]})",
        400);
}

TEST_F(EmulatorTest, HugeBodyFaultPadsWithWhitespace) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"DescribeBlueprints","fault":"huge_body","phase":"after",)"
        R"("body_bytes":1000000}]})");
  Reply r = Describe("ap-guangzhou");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 1000000u);
  EXPECT_TRUE(r.ok_json());
}

TEST_F(EmulatorTest, DropFaultClosesConnectionMidResponse) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"SyncBlueprint","fault":"drop","phase":"after","count":1}]})");
  Reply r = Sync("ap-guangzhou",
                 R"({"BlueprintId":"lhbp-gzbase01","DestinationRegions":["ap-shanghai"]})");
  EXPECT_EQ(r.status, 0) << "client should see no complete response, got: " << r.body;
  // Ambiguous outcome: the sync did happen.
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["sync_submissions"].Size(), 1u);
  EXPECT_EQ(stats["faults"]["drop"].GetInt(), 1);
  EXPECT_EQ(StateOf("ap-guangzhou", "lhbp-gzbase01"), "SYNCING");
}

TEST_F(EmulatorTest, LatencyFaultSleepsOnTheClock) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"DescribeRegions","fault":"latency","latency_ms":1500}]})");
  const absl::Time before = clock_.Now();
  Reply r = Call(Spec(kDescribeRegions));
  EXPECT_EQ(r.error_code(), "") << r.body;
  EXPECT_EQ(r.response()["TotalCount"].GetInt(), 15);
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Milliseconds(1500)));
  EXPECT_EQ(clock_.Now() - before, absl::Milliseconds(1500));
  rapidjson::Document stats = Stats();
  EXPECT_EQ(stats["faults"]["latency"].GetInt(), 1);
  EXPECT_EQ(stats["actions"][kDescribeRegions]["executed"].GetInt(), 1);
}

TEST_F(EmulatorTest, FaultProbabilityIsSeededAndBounded) {
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"DescribeRegions","fault":"internal_error","probability":0.0}]})");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Call(Spec(kDescribeRegions)).error_code(), "");
  Admin("POST", "/_emulator/config", R"({"rate_limits":{"DescribeRegions":0}})");
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"DescribeRegions","fault":"internal_error","probability":0.5}]})");
  std::string pattern;
  for (int i = 0; i < 40; ++i) {
    pattern += Call(Spec(kDescribeRegions)).error_code() == "InternalError" ? 'F' : '.';
  }
  EXPECT_NE(pattern.find('F'), std::string::npos) << pattern;
  EXPECT_NE(pattern.find('.'), std::string::npos) << pattern;
  // Same seed, same sequence.
  Start(EmulatorOptions{});
  Admin("POST", "/_emulator/config", R"({"rate_limits":{"DescribeRegions":0}})");
  Admin("POST", "/_emulator/faults",
        R"({"rules":[{"action":"DescribeRegions","fault":"internal_error","probability":0.5}]})");
  std::string again;
  for (int i = 0; i < 40; ++i) {
    again += Call(Spec(kDescribeRegions)).error_code() == "InternalError" ? 'F' : '.';
  }
  EXPECT_EQ(pattern, again);
}

TEST_F(EmulatorTest, FaultsSkipUnauthenticatedCalls) {
  Admin("POST", "/_emulator/faults", R"({"rules":[{"action":"*","fault":"http_5xx"}]})");
  SignSpec bad = Spec(kDescribeRegions);
  bad.secret_key = "wrong";
  Reply r = Call(bad);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.error_code(), "AuthFailure.SignatureFailure");
  EXPECT_EQ(Stats()["faults"]["http_5xx"].GetInt(), 0);
}

// ---------------------------------------------------------------------------
// Admin surface

TEST_F(EmulatorTest, AdminConfigValidation) {
  rapidjson::Document cfg;
  cfg.Parse(Admin("POST", "/_emulator/config",
                  R"({"sync_duration_ms":10,"rate_limits":{"SyncBlueprint":5}})")
                .c_str());
  EXPECT_EQ(cfg["sync_duration_ms"].GetInt(), 10);
  EXPECT_EQ(cfg["rate_limits"]["SyncBlueprint"].GetInt(), 5);
  EXPECT_STREQ(cfg["certification"].GetString(), "ok");
  Admin("POST", "/_emulator/config", R"({"sync_duration_ms":-1})", 400);
  Admin("POST", "/_emulator/config", R"({"fail_regions":["ap-mars"]})", 400);
  Admin("POST", "/_emulator/config", R"({"certification":"maybe"})", 400);
  Admin("POST", "/_emulator/config", R"({"bogus":1})", 400);
  Admin("POST", "/_emulator/config", R"({"rate_limits":{"Nope":1}})", 400);
  Admin("POST", "/_emulator/faults", R"({"rules":[{"fault":"explode"}]})", 400);
  Admin("POST", "/_emulator/faults", R"({"rules":[{"fault":"drop","phase":"during"}]})", 400);
  Admin("POST", "/_emulator/faults", R"({"rules":[{"fault":"drop","probability":2}]})", 400);
  Admin("POST", "/_emulator/blueprints", R"({"blueprints":[{"Region":"x"}]})", 400);
  // Nothing above changed the config.
  cfg.Parse(Admin("GET", "/_emulator/config").c_str());
  EXPECT_EQ(cfg["sync_duration_ms"].GetInt(), 10);
  EXPECT_EQ(cfg["fail_regions"].Size(), 0u);

  LighthouseEmulator fresh{EmulatorOptions{}};
  cfg.Parse(fresh.ConfigJson().c_str());
  EXPECT_EQ(cfg["sync_duration_ms"].GetInt(), 3000);
  EXPECT_EQ(cfg["rate_limits"]["SyncBlueprint"].GetInt(), 20);
  EXPECT_EQ(cfg["rate_limits"]["DescribeBlueprints"].GetInt(), 10);
  EXPECT_EQ(cfg["rate_limits"]["DescribeRegions"].GetInt(), 10);
  EXPECT_EQ(cfg["rate_limits"]["DeleteBlueprints"].GetInt(), 20);
  EXPECT_EQ(cfg["quota_per_region"].GetInt(), 0);
}

}  // namespace
}  // namespace blueprintsync::emulator
