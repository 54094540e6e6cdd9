#include "tests/emulator/tc3_verifier.h"

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "service/tencent/crypto.h"

namespace blueprintsync::emulator {
namespace {

namespace crypto = ::blueprintsync::tencent::crypto;

constexpr absl::string_view kAlgorithm = "TC3-HMAC-SHA256";

// Debian's Abseil has its own string_view; the crypto helpers take std's.
std::string_view Std(absl::string_view v) { return {v.data(), v.size()}; }

absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("Authorization header is invalid: ", why, "."));
}

}  // namespace

absl::StatusOr<Tc3Authorization> ParseTc3Authorization(absl::string_view header) {
  header = absl::StripAsciiWhitespace(header);
  if (header.empty()) return Invalid("it is missing");
  const size_t space = header.find(' ');
  if (space == absl::string_view::npos || header.substr(0, space) != kAlgorithm) {
    return Invalid("the algorithm must be TC3-HMAC-SHA256");
  }
  absl::string_view credential, signed_headers, signature;
  bool have_credential = false, have_signed_headers = false, have_signature = false;
  for (absl::string_view part : absl::StrSplit(header.substr(space + 1), ',')) {
    part = absl::StripAsciiWhitespace(part);
    const size_t eq = part.find('=');
    if (eq == absl::string_view::npos) return Invalid("a component is not key=value");
    const absl::string_view key = part.substr(0, eq);
    const absl::string_view value = part.substr(eq + 1);
    if (key == "Credential") {
      credential = value;
      have_credential = true;
    } else if (key == "SignedHeaders") {
      signed_headers = value;
      have_signed_headers = true;
    } else if (key == "Signature") {
      signature = value;
      have_signature = true;
    } else {
      return Invalid("unknown component");
    }
  }
  if (!have_credential || credential.empty()) return Invalid("Credential is missing");
  if (!have_signed_headers || signed_headers.empty()) return Invalid("SignedHeaders is missing");
  if (!have_signature || signature.empty()) return Invalid("Signature is missing");

  const std::vector<absl::string_view> scope = absl::StrSplit(credential, '/');
  if (scope.size() != 4 || scope[0].empty() || scope[1].empty() || scope[2].empty() ||
      scope[3] != "tc3_request") {
    return Invalid("Credential must be <SecretId>/<date>/<service>/tc3_request");
  }
  Tc3Authorization auth;
  auth.secret_id = std::string(scope[0]);
  auth.date = std::string(scope[1]);
  auth.service = std::string(scope[2]);
  auth.signed_headers = std::string(signed_headers);
  auth.signature = std::string(signature);
  bool has_content_type = false, has_host = false;
  for (absl::string_view name : absl::StrSplit(signed_headers, ';')) {
    if (name.empty()) return Invalid("SignedHeaders has an empty name");
    std::string lower = absl::AsciiStrToLower(name);
    has_content_type = has_content_type || lower == "content-type";
    has_host = has_host || lower == "host";
    auth.signed_header_names.push_back(std::move(lower));
  }
  if (!has_content_type || !has_host) {
    return Invalid("SignedHeaders must include content-type and host");
  }
  return auth;
}

std::string CanonicalHeaderValue(absl::string_view lower_name, absl::string_view raw_value) {
  std::string value = absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw_value));
  if (lower_name == "host") {
    // "[::1]:8080" keeps its brackets; "example.com:8080" loses ":8080".
    const size_t colon = value.rfind(':');
    const size_t bracket = value.rfind(']');
    if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
      value.resize(colon);
    }
  }
  return value;
}

std::string BuildCanonicalRequest(absl::string_view method, absl::string_view uri,
                                  absl::string_view query,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  absl::string_view signed_headers,
                                  absl::string_view hashed_payload) {
  std::string out = absl::StrCat(method, "\n", uri, "\n", query, "\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&out, name, ":", value, "\n");
  absl::StrAppend(&out, "\n", signed_headers, "\n", hashed_payload);
  return out;
}

std::string ExpectedTc3Signature(absl::string_view secret_key, absl::string_view date,
                                 absl::string_view service, absl::string_view timestamp,
                                 absl::string_view canonical_request) {
  const std::string string_to_sign =
      absl::StrCat(kAlgorithm, "\n", timestamp, "\n", date, "/", service, "/tc3_request\n",
                   crypto::Sha256Hex(Std(canonical_request)));
  const std::string k_secret = absl::StrCat("TC3", secret_key);
  const crypto::Digest k_date = crypto::HmacSha256(k_secret, Std(date));
  const crypto::Digest k_service = crypto::HmacSha256(crypto::AsStringView(k_date), Std(service));
  const crypto::Digest k_signing =
      crypto::HmacSha256(crypto::AsStringView(k_service), "tc3_request");
  return crypto::HexLower(crypto::HmacSha256(crypto::AsStringView(k_signing), string_to_sign));
}

std::string UtcDateOf(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(unix_seconds), absl::UTCTimeZone());
}

}  // namespace blueprintsync::emulator
