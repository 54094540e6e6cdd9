#include "service/tencent/tc3_signer.h"

#include <stdlib.h>
#include <time.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tencent/crypto.h"

namespace blueprintsync::tencent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Independent vectors below were computed with Python's hashlib/hmac when the
// test was written, via this shell function (arguments: secret_key service
// canonical_host content_type payload timestamp; prints "<utc date> <signature>"):
//
// clang-format off
// tc3() { python3 -c 'import sys,hashlib as H,hmac,datetime as D;k,s,h,ct,p,t=sys.argv[1],sys.argv[2],sys.argv[3],sys.argv[4],sys.argv[5].encode(),int(sys.argv[6]);d=D.datetime.fromtimestamp(t,D.timezone.utc).strftime("%Y-%m-%d");c=f"POST\n/\n\ncontent-type:{ct}\nhost:{h}\n\ncontent-type;host\n"+H.sha256(p).hexdigest();m=lambda a,b:hmac.new(a,b.encode(),H.sha256).digest();print(d,hmac.new(m(m(m(("TC3"+k).encode(),d),s),"tc3_request"),f"TC3-HMAC-SHA256\n{t}\n{d}/{s}/tc3_request\n{H.sha256(c.encode()).hexdigest()}".encode(),H.sha256).hexdigest())' "$@"; }
// clang-format on
//
// The same function reproduces the official 72e494ea... and 17184305... vectors.

constexpr char kExampleId[] = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
constexpr char kExampleKey[] = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
constexpr char kMaskedId[] = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******";
constexpr char kMaskedKey[] = "Gu5t9xGARNpq86cd98joQYCN3*******";

// The payload of Tencent's published signing example: exactly these 86 bytes, with
// literal "\u" escapes.
constexpr char kDocPayload[] =
    R"({"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]})";

SignInput DocInput() {
  SignInput in;
  in.service = "cvm";
  in.host = "cvm.tencentcloudapi.com";
  in.content_type = "application/json; charset=utf-8";
  in.payload = kDocPayload;
  in.timestamp = 1551113065;
  return in;
}

// What the official Node SDK sent for SyncBlueprint (captured on the wire).
constexpr char kSyncBody[] =
    R"({"BlueprintId":"lhbp-abcd1234","DestinationRegions":["ap-beijing","ap-shanghai"]})";

SignInput LighthouseInput(int64_t timestamp) {
  SignInput in;
  in.service = "lighthouse";
  in.host = "lighthouse.tencentcloudapi.com";
  in.content_type = "application/json";
  in.payload = kSyncBody;
  in.timestamp = timestamp;
  return in;
}

TEST(Tc3SignerTest, OfficialExamplePayloadIsTheDocumentedBytes) {
  EXPECT_EQ(std::string_view(kDocPayload).size(), 86u);
  EXPECT_EQ(crypto::Sha256Hex(kDocPayload),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
}

TEST(Tc3SignerTest, OfficialExampleCanonicalRequest) {
  const std::string expected =
      "POST\n"
      "/\n"
      "\n"
      "content-type:application/json; charset=utf-8\n"
      "host:cvm.tencentcloudapi.com\n"
      "\n"
      "content-type;host\n"
      "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064";
  EXPECT_EQ(Tc3Signer::CanonicalRequest(DocInput()), expected);
  EXPECT_EQ(crypto::Sha256Hex(Tc3Signer::CanonicalRequest(DocInput())),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
}

TEST(Tc3SignerTest, OfficialExampleStringToSign) {
  EXPECT_EQ(Tc3Signer::StringToSign(DocInput()),
            "TC3-HMAC-SHA256\n"
            "1551113065\n"
            "2019-02-25/cvm/tc3_request\n"
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
}

TEST(Tc3SignerTest, OfficialExampleSignatureWithExampleKey) {
  EXPECT_EQ(Tc3Signer::Signature(kExampleKey, DocInput()),
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
}

TEST(Tc3SignerTest, OfficialExampleSignatureWithMaskedKey) {
  EXPECT_EQ(Tc3Signer::Signature(kMaskedKey, DocInput()),
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
}

TEST(Tc3SignerTest, OfficialExampleAuthorizationHeader) {
  EXPECT_EQ(Tc3Signer::Authorization(kExampleId, kExampleKey, DocInput()),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
            "tc3_request, SignedHeaders=content-type;host, "
            "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
  EXPECT_EQ(Tc3Signer::Authorization(kMaskedId, kMaskedKey, DocInput()),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/"
            "tc3_request, SignedHeaders=content-type;host, "
            "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
}

// The derived keys of Tencent's published example, and the final signature as an HMAC of the
// signer's StringToSign with the derived signing key: pins the derivation
// chain, not just its end result.
struct KeyChain {
  const char* secret_key;
  const char* secret_date;
  const char* secret_service;
  const char* secret_signing;
  const char* signature;
};

TEST(Tc3SignerTest, OfficialExampleIntermediateKeys) {
  const KeyChain chains[] = {
      {kExampleKey, "d1308c81fe71cfd4e06437bbc067b2b8a3d2d8c0e375d547f15c41d5214b395a",
       "3c7cb7c7795393edc14fd2e0e6434a518564b4504b88e94f5d11bf59ba3e7050",
       "ac658d5dde49e9bfdd14e04e062f66b05d9f637d44b8a8d845327d4a77f666b1",
       "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"},
      {kMaskedKey, "f1cb4d518a0eda9d5cbbfdb7850983f1e603eeae484edea76e4dd8d8deb5556e",
       "e7c609ce81bea53546bed2cc904778bef9ca14082e48e67883443ed64e227cd7",
       "8aa8ab5755582f576e94bcfe383b8e29325b0ca90c3590d569221c6a63a091ed",
       "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"},
  };
  for (const KeyChain& chain : chains) {
    SCOPED_TRACE(chain.secret_date);
    const SignInput in = DocInput();
    const crypto::Digest date =
        crypto::HmacSha256(absl::StrCat("TC3", chain.secret_key), Tc3Signer::UtcDate(in.timestamp));
    EXPECT_EQ(crypto::HexLower(date), chain.secret_date);
    const crypto::Digest service = crypto::HmacSha256(crypto::AsStringView(date), in.service);
    EXPECT_EQ(crypto::HexLower(service), chain.secret_service);
    const crypto::Digest signing = crypto::HmacSha256(crypto::AsStringView(service), "tc3_request");
    EXPECT_EQ(crypto::HexLower(signing), chain.secret_signing);
    const std::string signature = crypto::HexLower(
        crypto::HmacSha256(crypto::AsStringView(signing), Tc3Signer::StringToSign(in)));
    EXPECT_EQ(signature, chain.signature);
    EXPECT_EQ(Tc3Signer::Signature(chain.secret_key, in), chain.signature);
  }
}

TEST(Tc3SignerTest, LighthouseNodeSdkVector) {
  const SignInput in = LighthouseInput(1700000000);
  EXPECT_EQ(Tc3Signer::CanonicalRequest(in),
            "POST\n/\n\ncontent-type:application/json\nhost:lighthouse.tencentcloudapi.com\n\n"
            "content-type;host\n"
            "4f34452881d0ba7f97cdb807ddc3c48b0f6ef0e9971b8656301f9ad94a4bbf72");
  EXPECT_EQ(Tc3Signer::UtcDate(in.timestamp), "2023-11-14");
  EXPECT_EQ(Tc3Signer::Authorization(kExampleId, kExampleKey, in),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2023-11-14/"
            "lighthouse/tc3_request, SignedHeaders=content-type;host, "
            "Signature=17184305ffee4dde19bc51c5a945717cf3054ef2483299bb9fb8fb67cc84d2d6");
}

TEST(Tc3SignerTest, UtcDateEdges) {
  EXPECT_EQ(Tc3Signer::UtcDate(0), "1970-01-01");
  EXPECT_EQ(Tc3Signer::UtcDate(1551113065), "2019-02-25");  // Beijing: already 02-26
  EXPECT_EQ(Tc3Signer::UtcDate(1700006399), "2023-11-14");  // 23:59:59 UTC
  EXPECT_EQ(Tc3Signer::UtcDate(1700006400), "2023-11-15");  // 00:00:00 UTC
  EXPECT_EQ(Tc3Signer::UtcDate(1699979400), "2023-11-14");  // 2023-11-15 00:30 Beijing
  EXPECT_EQ(Tc3Signer::UtcDate(1709164800), "2024-02-29");  // leap day
  EXPECT_EQ(Tc3Signer::UtcDate(1735689599), "2024-12-31");
  EXPECT_EQ(Tc3Signer::UtcDate(1735689600), "2025-01-01");
}

// Whatever the process time zone, the date is the UTC one. "CST-8" is the
// POSIX spelling of Beijing time and needs no tzdata.
TEST(Tc3SignerTest, IndependentOfLocalTimeZone) {
  const char* old = std::getenv("TZ");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("TZ", "CST-8", 1);
  ::tzset();
  const std::string beijing_0030 = Tc3Signer::UtcDate(1699979400);
  const std::string doc_example = Tc3Signer::UtcDate(1551113065);
  const std::string signature = Tc3Signer::Signature(kExampleKey, DocInput());
  if (old != nullptr) {
    ::setenv("TZ", saved.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
  EXPECT_EQ(beijing_0030, "2023-11-14");
  EXPECT_EQ(doc_example, "2019-02-25");
  EXPECT_EQ(signature, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
}

// Signatures across the UTC day boundary: the credential scope date, and so
// the signing key, changes at 00:00 UTC, not at local midnight.
TEST(Tc3SignerTest, DayBoundarySignatures) {
  struct Case {
    int64_t ts;
    const char* date;
    const char* signature;
  };
  const Case cases[] = {
      // tc3 Gu5t9xGARNpq86cd98joQYCN3EXAMPLE lighthouse lighthouse.tencentcloudapi.com
      //     application/json "$SYNC_BODY" 1700006399
      {1700006399, "2023-11-14",
       "ff283d38edfac797fcb91eea0b0532f70709c595605bf4f00b0c750bc13e2c69"},
      // tc3 Gu5t9xGARNpq86cd98joQYCN3EXAMPLE lighthouse lighthouse.tencentcloudapi.com
      //     application/json "$SYNC_BODY" 1700006400
      {1700006400, "2023-11-15",
       "04b26bf863c6ae8472e6e6b62e8a1c08f3ca0243a41574a60e4f85f67e85dc96"},
      // 00:30 Beijing time on 2023-11-15 is 16:30 UTC on 2023-11-14:
      // tc3 Gu5t9xGARNpq86cd98joQYCN3EXAMPLE lighthouse lighthouse.tencentcloudapi.com
      //     application/json "$SYNC_BODY" 1699979400
      {1699979400, "2023-11-14",
       "083ca995a497ee68b781e8fc15354153fd2497c2fab5f09f753f9d093d61b797"},
  };
  // SYNC_BODY='{"BlueprintId":"lhbp-abcd1234","DestinationRegions":["ap-beijing","ap-shanghai"]}'
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ts);
    const SignInput in = LighthouseInput(c.ts);
    EXPECT_THAT(Tc3Signer::StringToSign(in),
                HasSubstr(absl::StrCat("\n", c.ts, "\n", c.date, "/lighthouse/tc3_request\n")));
    EXPECT_EQ(Tc3Signer::Signature(kExampleKey, in), c.signature);
  }
}

TEST(Tc3SignerTest, HostWithoutPort) {
  EXPECT_EQ(Tc3Signer::HostWithoutPort("example.com:8080"), "example.com");
  EXPECT_EQ(Tc3Signer::HostWithoutPort("example.com"), "example.com");
  EXPECT_EQ(Tc3Signer::HostWithoutPort("127.0.0.1:18080"), "127.0.0.1");
  EXPECT_EQ(Tc3Signer::HostWithoutPort("[::1]:80"), "[::1]");
  EXPECT_EQ(Tc3Signer::HostWithoutPort("[::1]"), "[::1]");
  EXPECT_EQ(Tc3Signer::HostWithoutPort("[2001:db8::7]:443"), "[2001:db8::7]");
  EXPECT_EQ(Tc3Signer::HostWithoutPort("2001:db8::7"), "2001:db8::7");
  EXPECT_EQ(Tc3Signer::HostWithoutPort(""), "");
}

TEST(Tc3SignerTest, PortIsDroppedFromSignedHost) {
  SignInput with_port = LighthouseInput(1700000000);
  with_port.host = "lighthouse.tencentcloudapi.com:18080";
  EXPECT_THAT(Tc3Signer::CanonicalRequest(with_port),
              HasSubstr("\nhost:lighthouse.tencentcloudapi.com\n\n"));
  EXPECT_EQ(Tc3Signer::Signature(kExampleKey, with_port),
            "17184305ffee4dde19bc51c5a945717cf3054ef2483299bb9fb8fb67cc84d2d6");
}

TEST(Tc3SignerTest, Ipv6Host) {
  // tc3 emptybody lighthouse '[::1]' application/json '' 0
  SignInput in;
  in.service = "lighthouse";
  in.host = "[::1]:8443";
  in.content_type = "application/json";
  in.payload = "";
  in.timestamp = 0;
  EXPECT_EQ(Tc3Signer::CanonicalRequest(in),
            "POST\n/\n\ncontent-type:application/json\nhost:[::1]\n\ncontent-type;host\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Tc3Signer::Signature("emptybody", in),
            "00f499b57e7634090a004adbac02bb46c64568cef06d05375bec98b1ae7be677");
  in.host = "[::1]";
  EXPECT_EQ(Tc3Signer::Signature("emptybody", in),
            "00f499b57e7634090a004adbac02bb46c64568cef06d05375bec98b1ae7be677");
}

TEST(Tc3SignerTest, ContentTypeIsSignedByteForByte) {
  SignInput in = LighthouseInput(1700000000);
  in.content_type = "application/json; charset=utf-8";
  EXPECT_THAT(Tc3Signer::CanonicalRequest(in),
              HasSubstr("\ncontent-type:application/json; charset=utf-8\n"));
  // tc3 Gu5t9xGARNpq86cd98joQYCN3EXAMPLE lighthouse lighthouse.tencentcloudapi.com
  //     "application/json; charset=utf-8" "$SYNC_BODY" 1700000000
  EXPECT_EQ(Tc3Signer::Signature(kExampleKey, in),
            "eeff02461d4a5c08a007fed26e776ddd7e652c657708e58f4918adf033089862");
  EXPECT_NE(Tc3Signer::Signature(kExampleKey, in),
            Tc3Signer::Signature(kExampleKey, LighthouseInput(1700000000)));
  // Not normalised either: case and spacing are part of what is signed.
  SignInput upper = LighthouseInput(1700000000);
  upper.content_type = "Application/JSON";
  EXPECT_THAT(Tc3Signer::CanonicalRequest(upper), HasSubstr("\ncontent-type:Application/JSON\n"));
  EXPECT_NE(Tc3Signer::Signature(kExampleKey, upper),
            Tc3Signer::Signature(kExampleKey, LighthouseInput(1700000000)));
}

TEST(Tc3SignerTest, EveryInputChangesTheSignature) {
  const SignInput base = LighthouseInput(1700000000);
  const std::string base_sig = Tc3Signer::Signature(kExampleKey, base);
  SignInput in = base;
  in.payload =
      R"({"BlueprintId":"lhbp-abcd1235","DestinationRegions":["ap-beijing","ap-shanghai"]})";
  EXPECT_NE(Tc3Signer::Signature(kExampleKey, in), base_sig);
  in = base;
  in.service = "cvm";
  EXPECT_NE(Tc3Signer::Signature(kExampleKey, in), base_sig);
  in = base;
  in.host = "lighthouse.ap-singapore.tencentcloudapi.com";
  EXPECT_NE(Tc3Signer::Signature(kExampleKey, in), base_sig);
  in = base;
  in.timestamp = base.timestamp + 1;
  EXPECT_NE(Tc3Signer::Signature(kExampleKey, in), base_sig);
  EXPECT_NE(Tc3Signer::Signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLF", base), base_sig);
}

struct OwnVector {
  const char* secret_key;
  const char* service;
  const char* host;
  const char* content_type;
  const char* payload;
  int64_t timestamp;
  const char* date;
  const char* signature;
};

TEST(Tc3SignerTest, IndependentPythonVectors) {
  const OwnVector vectors[] = {
      // tc3 'my-test-secret-key/with+symbols=' lighthouse
      //     lighthouse.ap-singapore.tencentcloudapi.com application/json '{}' 1717171717
      {"my-test-secret-key/with+symbols=", "lighthouse",
       "lighthouse.ap-singapore.tencentcloudapi.com", "application/json", "{}", 1717171717,
       "2024-05-31", "997e5891ddae0888b1b6f013921296baf6c73b85957e119fa088c96c32441309"},
      // tc3 'K3y-ünïcode-αβγ' lighthouse 127.0.0.1 application/json
      //     '{"BlueprintIds":["lhbp-12345678"],"Limit":100}' 1709164800
      // (host sent as "127.0.0.1:18080"; the port is not signed)
      {"K3y-\xc3\xbcn\xc3\xaf"
       "code-\xce\xb1\xce\xb2\xce\xb3",
       "lighthouse", "127.0.0.1:18080", "application/json",
       R"({"BlueprintIds":["lhbp-12345678"],"Limit":100})", 1709164800, "2024-02-29",
       "0a79951cc1660c60ae246ff001f980affafd6aceebc325e10e8cb3570b0a7096"},
      // tc3 'abc' lighthouse lighthouse.tencentcloudapi.com application/json
      //     '{"Name":"镜像-テスト"}' 1735689599      (UTF-8 payload bytes)
      {"abc", "lighthouse", "lighthouse.tencentcloudapi.com", "application/json",
       "{\"Name\":\"\xe9\x95\x9c\xe5\x83\x8f-\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88\"}", 1735689599,
       "2024-12-31", "e697fb7a992ca9d933cb79708a08e12c2b717bfff1fb5f1933654f3652a0b421"},
  };
  for (const OwnVector& v : vectors) {
    SCOPED_TRACE(v.signature);
    SignInput in;
    in.service = v.service;
    in.host = v.host;
    in.content_type = v.content_type;
    in.payload = v.payload;
    in.timestamp = v.timestamp;
    EXPECT_EQ(Tc3Signer::UtcDate(v.timestamp), v.date);
    EXPECT_EQ(Tc3Signer::Signature(v.secret_key, in), v.signature);
    const std::string auth = Tc3Signer::Authorization("AKIDtest", v.secret_key, in);
    EXPECT_EQ(auth, absl::StrCat(
                        "TC3-HMAC-SHA256 Credential=AKIDtest/", v.date, "/", v.service,
                        "/tc3_request, SignedHeaders=content-type;host, Signature=", v.signature));
    EXPECT_THAT(auth, Not(HasSubstr(v.secret_key)));
  }
}

}  // namespace
}  // namespace blueprintsync::tencent
