// Test-only: a tiny TC3 request signer and HTTP caller for the emulator's own
// unit tests. The signature is built here from scratch (not through
// tc3_verifier.h) so that the verifier is checked against a second
// construction, not against itself.
#ifndef BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_TEST_CLIENT_H_
#define BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_TEST_CLIENT_H_

#include <httplib.h>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

#include "rapidjson/document.h"
#include "service/tencent/crypto.h"

namespace blueprintsync::testing {

struct SignSpec {
  std::string secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
  std::string secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
  std::optional<std::string> token;
  std::string action = "DescribeRegions";
  std::optional<std::string> region;
  std::optional<std::string> version = std::string("2020-03-24");
  int64_t timestamp = 1700000000;
  std::string service = "lighthouse";
  std::optional<std::string> scope_date;                // default: UTC date of timestamp
  std::string host = "lighthouse.tencentcloudapi.com";  // sent; signed without :port
  std::string content_type = "application/json";
  std::optional<std::string> signed_content_type;  // default: content_type
  bool sign_action = false;                        // also sign x-tc-action (value lower-cased)
  std::optional<std::string> signed_body;          // default: the body sent
};

inline std::string Hex(const tencent::crypto::Digest& d) { return tencent::crypto::HexLower(d); }

inline std::string DateOf(int64_t ts) {
  const std::time_t t = static_cast<std::time_t>(ts);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

inline std::string LowerAscii(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// Returns the Authorization header value.
inline std::string Tc3Authorization(const SignSpec& s, const std::string& body) {
  using tencent::crypto::AsStringView;
  using tencent::crypto::HmacSha256;
  using tencent::crypto::Sha256Hex;
  std::string host = s.host;
  if (size_t colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
  const std::string date = s.scope_date.value_or(DateOf(s.timestamp));
  std::string canonical =
      "POST\n/\n\ncontent-type:" + s.signed_content_type.value_or(s.content_type) +
      "\nhost:" + host + "\n";
  std::string signed_headers = "content-type;host";
  if (s.sign_action) {
    canonical += "x-tc-action:" + LowerAscii(s.action) + "\n";
    signed_headers += ";x-tc-action";
  }
  canonical += "\n" + signed_headers + "\n" + Sha256Hex(s.signed_body.value_or(body));
  const std::string scope = date + "/" + s.service + "/tc3_request";
  const std::string to_sign = "TC3-HMAC-SHA256\n" + std::to_string(s.timestamp) + "\n" + scope +
                              "\n" + Sha256Hex(canonical);
  auto k = HmacSha256("TC3" + s.secret_key, date);
  k = HmacSha256(AsStringView(k), s.service);
  k = HmacSha256(AsStringView(k), "tc3_request");
  return "TC3-HMAC-SHA256 Credential=" + s.secret_id + "/" + scope +
         ", SignedHeaders=" + signed_headers +
         ", Signature=" + Hex(HmacSha256(AsStringView(k), to_sign));
}

inline httplib::Headers SignedHeaders(const SignSpec& s, const std::string& body) {
  httplib::Headers h;
  h.emplace("Host", s.host);
  h.emplace("X-TC-Action", s.action);
  h.emplace("X-TC-Timestamp", std::to_string(s.timestamp));
  if (s.version.has_value()) h.emplace("X-TC-Version", *s.version);
  if (s.region.has_value()) h.emplace("X-TC-Region", *s.region);
  if (s.token.has_value()) h.emplace("X-TC-Token", *s.token);
  h.emplace("Authorization", Tc3Authorization(s, body));
  return h;
}

struct Reply {
  int status = 0;  // 0: no HTTP response at all
  std::string body;
  rapidjson::Document doc;  // parsed body (may have a parse error)

  bool ok_json() const { return !doc.HasParseError() && doc.IsObject(); }
  const rapidjson::Value& response() const { return doc["Response"]; }
  // "" on success.
  std::string error_code() const {
    if (!ok_json() || !doc.HasMember("Response") || !response().HasMember("Error")) return "";
    return response()["Error"]["Code"].GetString();
  }
  std::string error_message() const {
    if (error_code().empty()) return "";
    return response()["Error"]["Message"].GetString();
  }
};

inline Reply ToReply(const httplib::Result& r) {
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.doc.Parse(out.body.c_str());
  return out;
}

inline Reply CallApi(int port, const SignSpec& s, const std::string& body,
                     const httplib::Headers& extra = {}) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(10, 0);
  httplib::Headers h = SignedHeaders(s, body);
  for (const auto& kv : extra) {
    h.erase(kv.first);
    h.insert(kv);
  }
  return ToReply(cli.Post("/", h, body, s.content_type.c_str()));
}

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_TEST_CLIENT_H_
