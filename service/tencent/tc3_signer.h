// Tc3Signer: TC3-HMAC-SHA256 request signing for Tencent Cloud API 3.0
// (Tencent's "Signature v3" algorithm). Pure functions of their inputs; the
// timestamp is an input so that the X-TC-Timestamp header, the credential
// scope date and the signature always come from the same integer.
//
// The signer signs exactly `content-type;host` (what every official SDK
// signs). The canonical host is the host name without any ":port", which is
// what Tencent (and our emulator) verify against.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_TC3_SIGNER_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_TC3_SIGNER_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace blueprintsync::tencent {

struct SignInput {
  std::string_view service;       // "lighthouse", also for endpoint overrides
  std::string_view host;          // as sent in Host; any ":port" is dropped when signing
  std::string_view content_type;  // byte-identical to the Content-Type header sent
  std::string_view payload;       // the exact body bytes sent
  int64_t timestamp = 0;          // Unix seconds, the X-TC-Timestamp value
};

class Tc3Signer {
 public:
  static constexpr std::string_view kAlgorithm = "TC3-HMAC-SHA256";
  static constexpr std::string_view kSignedHeaders = "content-type;host";

  // "YYYY-MM-DD" of `timestamp` in UTC.
  static std::string UtcDate(int64_t timestamp);
  // "example.com:8080" -> "example.com"; "[::1]:80" -> "[::1]".
  static std::string_view HostWithoutPort(std::string_view host);
  static std::string CanonicalRequest(const SignInput& in);
  static std::string StringToSign(const SignInput& in);
  // Lower-case hex signature.
  static std::string Signature(std::string_view secret_key, const SignInput& in);
  // The full Authorization header value:
  // "TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=content-type;host,
  // Signature=<hex>"
  static std::string Authorization(std::string_view secret_id, std::string_view secret_key,
                                   const SignInput& in);
};

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_TC3_SIGNER_H_
