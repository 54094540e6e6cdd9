// Fuzz target: the Lighthouse emulator's TC3-HMAC-SHA256 check
// (tests/emulator/tc3_verifier.h), whose input is whatever a client sends.
// Verify() below is the signature half of LighthouseEmulator::Authenticate
// (which is private and needs the HTTP server), built from the same public
// functions in the same order: parse Authorization, check the timestamp's
// digits and the scope date, canonicalize the signed headers, hash the body,
// compare signatures.
//
// Each input is used twice:
//  1. Hostile request: a fuzz Authorization header, Content-Type, Host,
//     X-TC-Timestamp and body. Never crashes; a parse failure's message is a
//     short fixed sentence (never an echo of the header, which carries the
//     signature); a parsed header has non-empty scope parts, lower-case
//     SignedHeaders names including content-type and host.
//  2. Differential: the service's signer (service/tencent/tc3_signer.h) signs
//     a request with a fuzz-chosen SecretId, SecretKey, timestamp (years
//     1970..9999), body, and a host and Content-Type as clients send them.
//     The verifier must accept it, and must reject it after any single-byte
//     change of the body, or with a different key.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_check.h"
#include "service/tencent/crypto.h"
#include "service/tencent/tc3_signer.h"
#include "tests/emulator/tc3_verifier.h"

namespace {

namespace emulator = blueprintsync::emulator;
namespace crypto = blueprintsync::tencent::crypto;
using blueprintsync::tencent::SignInput;
using blueprintsync::tencent::Tc3Signer;

constexpr size_t kMaxParseMessage = 128;
constexpr int64_t kMaxTimestamp = 253402300799;  // 9999-12-31T23:59:59Z

struct Request {
  std::map<std::string, std::string> headers;  // lower-case name -> raw value
  std::string body;
};

std::string Header(const Request& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

bool AllDigits(absl::string_view s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// True when `r` carries a valid signature by `secret_id` / `secret_key`.
bool Verify(const Request& r, const std::string& secret_id, const std::string& secret_key) {
  absl::StatusOr<emulator::Tc3Authorization> auth =
      emulator::ParseTc3Authorization(Header(r, "authorization"));
  if (!auth.ok()) return false;
  const std::string ts_header = Header(r, "x-tc-timestamp");
  const absl::string_view ts_text = absl::StripAsciiWhitespace(ts_header);
  if (!AllDigits(ts_text)) return false;
  const int64_t ts = std::stoll(std::string(ts_text));
  if (auth->date != emulator::UtcDateOf(ts)) return false;
  if (auth->service != "lighthouse" || auth->secret_id != secret_id) return false;
  std::vector<std::pair<std::string, std::string>> canonical_headers;
  for (const std::string& name : auth->signed_header_names) {
    canonical_headers.emplace_back(name, emulator::CanonicalHeaderValue(name, Header(r, name)));
  }
  const std::string canonical_request = emulator::BuildCanonicalRequest(
      "POST", "/", "", canonical_headers, auth->signed_headers, crypto::Sha256Hex(r.body));
  const std::string expected = emulator::ExpectedTc3Signature(
      secret_key, auth->date, auth->service, ts_text, canonical_request);
  return crypto::ConstantTimeEquals(expected, auth->signature);
}

void CheckParse(const std::string& header) {
  absl::StatusOr<emulator::Tc3Authorization> auth = emulator::ParseTc3Authorization(header);
  if (!auth.ok()) {
    FUZZ_CHECK(auth.status().code() == absl::StatusCode::kInvalidArgument,
               "parse errors are InvalidArgument");
    FUZZ_CHECK_SHOW(auth.status().message().size() <= kMaxParseMessage,
                    "parse errors are short and never echo the header", auth.status().message());
    FUZZ_CHECK(absl::StartsWith(auth.status().message(), "Authorization header is invalid"),
               "parse errors say what is invalid");
    return;
  }
  FUZZ_CHECK(!auth->secret_id.empty() && !auth->date.empty() && !auth->service.empty(),
             "the credential scope parts are non-empty");
  FUZZ_CHECK(!auth->signature.empty(), "a parsed header has a signature");
  FUZZ_CHECK(absl::StrContains(header, auth->signature), "the signature comes from the header");
  bool content_type = false, host = false;
  for (const std::string& name : auth->signed_header_names) {
    FUZZ_CHECK(!name.empty(), "signed header names are non-empty");
    FUZZ_CHECK(absl::AsciiStrToLower(name) == name, "signed header names are lower-case");
    content_type = content_type || name == "content-type";
    host = host || name == "host";
  }
  FUZZ_CHECK(content_type && host, "content-type and host are always signed");
}

// A host as HTTP clients send it: a DNS name, IPv4 or bracketed IPv6
// literal, lower-case, optionally with a port.
std::string Host(FuzzedDataProvider& fdp) {
  static const char* const kHosts[] = {
      "lighthouse.tencentcloudapi.com",
      "lighthouse.intl.tencentcloudapi.com",
      "lighthouse.ap-singapore.tencentcloudapi.com:443",
      "127.0.0.1:8080",
      "[::1]:9000",
      "[::1]",
      "localhost",
  };
  if (fdp.ConsumeBool()) {
    return kHosts[fdp.ConsumeIntegralInRange<size_t>(0, std::size(kHosts) - 1)];
  }
  std::string host;
  for (char c : fdp.ConsumeRandomLengthString(64)) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isdigit(u) || absl::ascii_islower(u) || c == '.' || c == '-') host += c;
  }
  if (host.empty()) host = "h";
  if (fdp.ConsumeBool()) absl::StrAppend(&host, ":", fdp.ConsumeIntegralInRange(1, 65535));
  return host;
}

void CheckDifferential(FuzzedDataProvider& fdp) {
  std::string secret_id = "AKID";
  for (char c : fdp.ConsumeRandomLengthString(40)) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) secret_id += c;
  }
  const std::string secret_key = fdp.ConsumeRandomLengthString(64);
  const int64_t timestamp = fdp.ConsumeIntegralInRange<int64_t>(0, kMaxTimestamp);
  const std::string host = Host(fdp);
  const std::string content_type =
      fdp.ConsumeBool() ? "application/json" : "application/json; charset=utf-8";
  const size_t flip_at = fdp.ConsumeIntegral<size_t>();
  const uint8_t flip_xor = fdp.ConsumeIntegralInRange<uint8_t>(1, 255);
  Request request;
  request.body = fdp.ConsumeRemainingBytesAsString();

  SignInput in;
  in.service = "lighthouse";
  in.host = host;
  in.content_type = content_type;
  in.payload = request.body;
  in.timestamp = timestamp;
  request.headers["authorization"] = Tc3Signer::Authorization(secret_id, secret_key, in);
  request.headers["content-type"] = content_type;
  request.headers["host"] = host;
  request.headers["x-tc-timestamp"] = absl::StrCat(timestamp);

  FUZZ_CHECK(Tc3Signer::UtcDate(timestamp) == emulator::UtcDateOf(timestamp),
             "signer and verifier agree on the UTC date");
  FUZZ_CHECK(Verify(request, secret_id, secret_key), "a correctly signed request verifies");
  FUZZ_CHECK(!Verify(request, secret_id, secret_key + "x"), "another key does not verify");

  Request tampered = request;
  if (tampered.body.empty()) {
    tampered.body.push_back(static_cast<char>(flip_xor));
  } else {
    tampered.body[flip_at % tampered.body.size()] ^= static_cast<char>(flip_xor);
  }
  FUZZ_CHECK(!Verify(tampered, secret_id, secret_key), "a changed body does not verify");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    FuzzedDataProvider fdp(data, size);
    Request request;
    request.headers["authorization"] = fdp.ConsumeRandomLengthString(1024);
    request.headers["content-type"] = fdp.ConsumeRandomLengthString(128);
    request.headers["host"] = fdp.ConsumeRandomLengthString(128);
    request.headers["x-tc-timestamp"] = fdp.ConsumeRandomLengthString(24);
    request.headers[fdp.ConsumeRandomLengthString(32)] = fdp.ConsumeRandomLengthString(64);
    request.body = fdp.ConsumeRemainingBytesAsString();
    CheckParse(request.headers["authorization"]);
    for (const auto& [name, value] : request.headers) {
      const std::string canonical = emulator::CanonicalHeaderValue(name, value);
      FUZZ_CHECK(canonical.size() <= value.size(), "canonical values never grow");
      FUZZ_CHECK(absl::AsciiStrToLower(canonical) == canonical, "canonical values are lower-case");
    }
    (void)Verify(request, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
  }
  {
    FuzzedDataProvider fdp(data, size);
    CheckDifferential(fdp);
  }
  return 0;
}
