#include "service/tencent/tc3_signer.h"

#include <time.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "service/tencent/crypto.h"

namespace blueprintsync::tencent {
namespace {

// Debian's Abseil has its own absl::string_view, which std::string_view does
// not convert to implicitly.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

std::string Tc3Signer::UtcDate(int64_t timestamp) {
  // gmtime_r, never localtime: the scope date is the UTC date on both sides,
  // and local time breaks every signature between 00:00 and 08:00 in Beijing.
  const time_t t = static_cast<time_t>(timestamp);
  struct tm tm_utc {};
  if (gmtime_r(&t, &tm_utc) == nullptr) return "0000-00-00";  // out of range for time_t
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", tm_utc.tm_year + 1900, tm_utc.tm_mon + 1,
                tm_utc.tm_mday);
  return buf;
}

std::string_view Tc3Signer::HostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    // Bracketed IPv6 literal: the port, if any, follows the ']'.
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  const size_t colon = host.find(':');
  // More than one ':' without brackets is a bare IPv6 address, which has no port.
  if (colon == std::string_view::npos || host.find(':', colon + 1) != std::string_view::npos) {
    return host;
  }
  return host.substr(0, colon);
}

std::string Tc3Signer::CanonicalRequest(const SignInput& in) {
  // Method, URI, empty query, the two canonical headers (each ending in '\n',
  // hence the blank line), the signed header list and the payload hash.
  return absl::StrCat("POST\n/\n\ncontent-type:", Av(in.content_type),
                      "\nhost:", Av(HostWithoutPort(in.host)), "\n\n", Av(kSignedHeaders), "\n",
                      crypto::Sha256Hex(in.payload));
}

std::string Tc3Signer::StringToSign(const SignInput& in) {
  return absl::StrCat(Av(kAlgorithm), "\n", in.timestamp, "\n", UtcDate(in.timestamp), "/",
                      Av(in.service), "/tc3_request\n", crypto::Sha256Hex(CanonicalRequest(in)));
}

std::string Tc3Signer::Signature(std::string_view secret_key, const SignInput& in) {
  const std::string date = UtcDate(in.timestamp);
  const crypto::Digest secret_date = crypto::HmacSha256(absl::StrCat("TC3", Av(secret_key)), date);
  const crypto::Digest secret_service =
      crypto::HmacSha256(crypto::AsStringView(secret_date), in.service);
  const crypto::Digest secret_signing =
      crypto::HmacSha256(crypto::AsStringView(secret_service), "tc3_request");
  return crypto::HexLower(
      crypto::HmacSha256(crypto::AsStringView(secret_signing), StringToSign(in)));
}

std::string Tc3Signer::Authorization(std::string_view secret_id, std::string_view secret_key,
                                     const SignInput& in) {
  return absl::StrCat(Av(kAlgorithm), " Credential=", Av(secret_id), "/", UtcDate(in.timestamp),
                      "/", Av(in.service), "/tc3_request, SignedHeaders=", Av(kSignedHeaders),
                      ", Signature=", Signature(secret_key, in));
}

}  // namespace blueprintsync::tencent
