#include "tests/emulator/tc3_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "service/tencent/crypto.h"

namespace blueprintsync::emulator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Tencent's published signing example (the CVM DescribeInstances request).
TEST(Tc3VerifierTest, ReproducesOfficialDocVector) {
  const std::string payload =
      R"({"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]})";
  const std::string hashed = tencent::crypto::Sha256Hex(payload);
  EXPECT_EQ(hashed, "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
  const std::string canonical = BuildCanonicalRequest(
      "POST", "/", "",
      {{"content-type", CanonicalHeaderValue("content-type", "application/json; charset=utf-8")},
       {"host", CanonicalHeaderValue("host", "cvm.tencentcloudapi.com")}},
      "content-type;host", hashed);
  EXPECT_EQ(canonical,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\n"
            "host:cvm.tencentcloudapi.com\n\ncontent-type;host\n"
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
  EXPECT_EQ(tencent::crypto::Sha256Hex(canonical),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
  EXPECT_EQ(UtcDateOf(1551113065), "2019-02-25");
  EXPECT_EQ(ExpectedTc3Signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "2019-02-25", "cvm",
                                 "1551113065", canonical),
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
  EXPECT_EQ(ExpectedTc3Signature("Gu5t9xGARNpq86cd98joQYCN3*******", "2019-02-25", "cvm",
                                 "1551113065", canonical),
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
}

// Captured from the official Node SDK: Host sent with a port, signed without.
TEST(Tc3VerifierTest, ReproducesNodeSdkLighthouseVector) {
  const std::string body =
      R"({"BlueprintId":"lhbp-abcd1234","DestinationRegions":["ap-beijing","ap-shanghai"]})";
  const std::string canonical = BuildCanonicalRequest(
      "POST", "/", "",
      {{"content-type", CanonicalHeaderValue("content-type", "application/json")},
       {"host", CanonicalHeaderValue("host", "lighthouse.tencentcloudapi.com:18080")}},
      "content-type;host", tencent::crypto::Sha256Hex(body));
  EXPECT_EQ(canonical,
            "POST\n/\n\ncontent-type:application/json\nhost:lighthouse.tencentcloudapi.com\n\n"
            "content-type;host\n4f34452881d0ba7f97cdb807ddc3c48b0f6ef0e9971b8656301f9ad94a4bbf72");
  EXPECT_EQ(UtcDateOf(1700000000), "2023-11-14");
  EXPECT_EQ(ExpectedTc3Signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "2023-11-14", "lighthouse",
                                 "1700000000", canonical),
            "17184305ffee4dde19bc51c5a945717cf3054ef2483299bb9fb8fb67cc84d2d6");
}

TEST(Tc3VerifierTest, ParsesSdkStyleHeader) {
  auto auth = ParseTc3Authorization(
      "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
      "SignedHeaders=content-type;host;x-tc-action, Signature=abc123");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(auth->secret_id, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE");
  EXPECT_EQ(auth->date, "2019-02-25");
  EXPECT_EQ(auth->service, "cvm");
  EXPECT_EQ(auth->signed_headers, "content-type;host;x-tc-action");
  EXPECT_THAT(auth->signed_header_names, ElementsAre("content-type", "host", "x-tc-action"));
  EXPECT_EQ(auth->signature, "abc123");
}

TEST(Tc3VerifierTest, ToleratesMissingSpaceAfterComma) {
  auto auth = ParseTc3Authorization(
      "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request,SignedHeaders=content-type;host,"
      "Signature=ff");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(auth->signature, "ff");
}

TEST(Tc3VerifierTest, RejectsMalformedHeaders) {
  const char* const bad[] = {
      "",
      "HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, "
      "Signature=ff",
      "TC3-HMAC-SHA256 SignedHeaders=content-type;host, Signature=ff",
      "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, Signature=ff",
      "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host",
      "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=f",
      "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type, "
      "Signature=f",
      "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc4_request, "
      "SignedHeaders=content-type;host, "
      "Signature=f",
      "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/tc3_request, SignedHeaders=content-type;host, "
      "Signature=f",
      "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, "
      "SignedHeaders=content-type;host, "
      "Signature",
  };
  for (const char* header : bad) {
    auto auth = ParseTc3Authorization(header);
    EXPECT_FALSE(auth.ok()) << header;
    if (!auth.ok()) {
      EXPECT_THAT(std::string(auth.status().message()), HasSubstr("Authorization"));
    }
  }
}

TEST(Tc3VerifierTest, CanonicalHeaderValues) {
  EXPECT_EQ(CanonicalHeaderValue("host", "Lighthouse.TencentCloudAPI.com:443"),
            "lighthouse.tencentcloudapi.com");
  EXPECT_EQ(CanonicalHeaderValue("host", "127.0.0.1:8080"), "127.0.0.1");
  EXPECT_EQ(CanonicalHeaderValue("host", "[::1]:8080"), "[::1]");
  EXPECT_EQ(CanonicalHeaderValue("host", "[::1]"), "[::1]");
  EXPECT_EQ(CanonicalHeaderValue("x-tc-action", "  SyncBlueprint "), "syncblueprint");
  EXPECT_EQ(CanonicalHeaderValue("content-type", "application/json:x"), "application/json:x");
}

}  // namespace
}  // namespace blueprintsync::emulator
