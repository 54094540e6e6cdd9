// The emulator's STS and metadata stand-ins, called directly (no HTTP): the
// checks a real client never trips, the keys they register, the admin input
// validation and the counters. The happy paths over HTTP, with the service's
// own providers, are in service/tencent/cloud_credentials_test.cc.
#include "tests/emulator/sts_emulator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "service/common/testing/fake_clock.h"
#include "tests/emulator/lighthouse_emulator.h"

namespace blueprintsync::emulator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class StsEmulatorTest : public ::testing::Test {
 protected:
  StsEmulatorTest() : emulator_(Options(&clock_)) {}
  static EmulatorOptions Options(Clock* clock) {
    EmulatorOptions o;
    o.clock = clock;
    return o;
  }

  ApiRequest WebIdentity(std::string body, std::string authorization = "SKIP") {
    ApiRequest r;
    r.headers = {{"Authorization", std::move(authorization)},
                 {"Content-Type", "application/json"},
                 {"Host", "127.0.0.1:1"},
                 {"X-TC-Action", "AssumeRoleWithWebIdentity"},
                 {"X-TC-Version", "2018-08-13"},
                 {"X-TC-Timestamp", absl::StrCat(absl::ToUnixSeconds(clock_.Now()))},
                 {"X-TC-Region", "ap-guangzhou"}};
    r.body = std::move(body);
    return r;
  }

  static std::string GoodBody(const std::string& token = "emulator-web-identity-token") {
    return absl::StrCat(R"({"ProviderId":"emulator-oidc-provider","WebIdentityToken":")", token,
                        R"(","RoleArn":"qcs::cam::uin/100000000001:roleName/blueprint-sync",)",
                        R"("RoleSessionName":"s-1","DurationSeconds":900})");
  }

  static std::string ErrorCode(const ApiResponse& r) {
    rapidjson::Document doc;
    doc.Parse(r.body.c_str());
    if (!doc.IsObject() || !doc["Response"].HasMember("Error")) return "";
    return doc["Response"]["Error"]["Code"].GetString();
  }

  int64_t Stat(const char* group, const char* action, const char* field) {
    rapidjson::Document doc;
    const std::string json = emulator_.StatsJson();
    doc.Parse(json.c_str());
    const rapidjson::Value* v = &doc[group];
    if (action != nullptr) v = &(*v)[action];
    return (*v)[field].GetInt64();
  }

  testing::FakeClock clock_{absl::FromUnixSeconds(1790000000)};
  LighthouseEmulator emulator_;
};

TEST_F(StsEmulatorTest, WebIdentityIssuesAKeyTheLighthouseSideKnows) {
  ApiResponse r = emulator_.HandleApi(WebIdentity(GoodBody()));
  ASSERT_EQ(ErrorCode(r), "") << r.body;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  const auto& resp = doc["Response"];
  EXPECT_EQ(resp["ExpiredTime"].GetInt64(), absl::ToUnixSeconds(clock_.Now()) + 900);
  EXPECT_TRUE(resp["Expiration"].IsString());
  std::optional<EmulatorKey> key =
      emulator_.FindKey(resp["Credentials"]["TmpSecretId"].GetString());
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->secret_key, resp["Credentials"]["TmpSecretKey"].GetString());
  EXPECT_EQ(key->token, std::string(resp["Credentials"]["Token"].GetString()));
  EXPECT_EQ(key->expires, clock_.Now() + absl::Seconds(900));
  EXPECT_EQ(Stat("sts", "AssumeRoleWithWebIdentity", "issued"), 1);
  // STS calls are not Lighthouse calls.
  rapidjson::Document stats;
  const std::string json = emulator_.StatsJson();
  stats.Parse(json.c_str());
  EXPECT_EQ(stats["requests_total"].GetInt64(), 0);
}

TEST_F(StsEmulatorTest, WebIdentityChecks) {
  EXPECT_EQ(ErrorCode(emulator_.HandleApi(WebIdentity(GoodBody(), "TC3-HMAC-SHA256 x"))),
            "AuthFailure.InvalidAuthorization");
  ApiResponse wrong = emulator_.HandleApi(WebIdentity(GoodBody("not-the-token-123")));
  EXPECT_EQ(ErrorCode(wrong), "InvalidParameter.WebIdentityTokenError");
  EXPECT_THAT(wrong.body, Not(HasSubstr("not-the-token-123")));
  EXPECT_EQ(ErrorCode(emulator_.HandleApi(WebIdentity(R"({"Foo":1})"))), "UnknownParameter");
  EXPECT_EQ(
      ErrorCode(emulator_.HandleApi(WebIdentity(R"({"ProviderId":"emulator-oidc-provider"})"))),
      "MissingParameter");
  ApiRequest no_region = WebIdentity(GoodBody());
  no_region.headers.pop_back();
  EXPECT_EQ(ErrorCode(emulator_.HandleApi(no_region)), "MissingParameter");
  ApiRequest old = WebIdentity(GoodBody());
  old.headers[5].second = absl::StrCat(absl::ToUnixSeconds(clock_.Now()) - 301);
  EXPECT_EQ(ErrorCode(emulator_.HandleApi(old)), "AuthFailure.SignatureExpire");
  // Host sts.* routes here whatever the version says.
  ApiRequest by_host = WebIdentity(GoodBody());
  by_host.headers[2].second = "sts.tencentcloudapi.com";
  by_host.headers[4].second = "2020-03-24";
  EXPECT_EQ(ErrorCode(emulator_.HandleApi(by_host)), "NoSuchVersion");
  EXPECT_EQ(Stat("sts", nullptr, "errors"), 7);
  EXPECT_EQ(Stat("sts", "AssumeRoleWithWebIdentity", "issued"), 0);
}

TEST_F(StsEmulatorTest, AssumeRoleMustBeSigned) {
  ApiRequest r = WebIdentity(R"({"RoleArn":"x","RoleSessionName":"s-1"})");
  r.headers[3].second = "AssumeRole";
  EXPECT_EQ(ErrorCode(emulator_.HandleApi(r)), "AuthFailure.InvalidAuthorization");
}

TEST_F(StsEmulatorTest, FailNextAndAdminValidation) {
  ASSERT_TRUE(emulator_.sts().ConfigureSts(R"({"fail_next":1})").ok());
  EXPECT_EQ(ErrorCode(emulator_.HandleApi(WebIdentity(GoodBody()))), "InternalError");
  EXPECT_EQ(ErrorCode(emulator_.HandleApi(WebIdentity(GoodBody()))), "");

  EXPECT_FALSE(emulator_.sts().ConfigureSts(R"({"role_arn":"a","fail_next":-1})").ok());
  EXPECT_FALSE(emulator_.sts().ConfigureSts(R"({"nope":1})").ok());
  EXPECT_FALSE(emulator_.sts().ConfigureMetadata(R"({"role":"a/b"})").ok());
  EXPECT_FALSE(emulator_.sts().ConfigureMetadata("[]").ok());
  EXPECT_THAT(emulator_.sts().StsConfigJson(),
              HasSubstr(R"("role_arn":"qcs::cam::uin/100000000001:roleName/blueprint-sync")"));
  EXPECT_THAT(emulator_.sts().StsConfigJson(), Not(HasSubstr("emulator-web-identity-token")));
}

TEST_F(StsEmulatorTest, Metadata) {
  EXPECT_EQ(emulator_.sts().HandleMetadata("").http_status, 404);
  ASSERT_TRUE(emulator_.sts().ConfigureMetadata(R"({"role":"r1","duration_seconds":60})").ok());
  ApiResponse dir = emulator_.sts().HandleMetadata("");
  EXPECT_EQ(dir.http_status, 200);
  EXPECT_EQ(dir.body, "r1");
  EXPECT_EQ(emulator_.sts().HandleMetadata("r2").http_status, 404);
  ApiResponse creds = emulator_.sts().HandleMetadata("r1");
  ASSERT_EQ(creds.http_status, 200);
  rapidjson::Document doc;
  doc.Parse(creds.body.c_str());
  EXPECT_STREQ(doc["Code"].GetString(), "Success");
  EXPECT_EQ(doc["ExpiredTime"].GetInt64(), absl::ToUnixSeconds(clock_.Now()) + 60);
  EXPECT_TRUE(emulator_.FindKey(doc["TmpSecretId"].GetString()).has_value());
  ASSERT_TRUE(emulator_.sts().ConfigureMetadata(R"({"fail_next":1})").ok());
  EXPECT_EQ(emulator_.sts().HandleMetadata("r1").http_status, 500);
  EXPECT_EQ(Stat("metadata", nullptr, "requests"), 5);
  EXPECT_EQ(Stat("metadata", nullptr, "issued"), 1);
  EXPECT_EQ(Stat("metadata", nullptr, "errors"), 3);
  emulator_.ResetStats();
  EXPECT_EQ(Stat("metadata", nullptr, "requests"), 0);
}

}  // namespace
}  // namespace blueprintsync::emulator
