// Server-side TC3-HMAC-SHA256 verification, written from the point of view of
// Tencent's API gateway: it parses the Authorization header a client sent and
// rebuilds the canonical request from the headers as received. It is an
// independent check of the service's signer (service/tencent/tc3_signer.h),
// so it must never call into it; only the SHA-256/HMAC primitives are shared.
#ifndef BLUEPRINTSYNC_TESTS_EMULATOR_TC3_VERIFIER_H_
#define BLUEPRINTSYNC_TESTS_EMULATOR_TC3_VERIFIER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blueprintsync::emulator {

struct Tc3Authorization {
  std::string secret_id;
  std::string date;                              // credential scope date, "YYYY-MM-DD"
  std::string service;                           // credential scope service, e.g. "lighthouse"
  std::string signed_headers;                    // exactly as sent
  std::vector<std::string> signed_header_names;  // split on ';'
  std::string signature;
};

// Accepts "TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request,
// SignedHeaders=<a;b>, Signature=<hex>" (any whitespace after the commas).
// Fails with InvalidArgument (mapped by the caller to
// AuthFailure.InvalidAuthorization) when the algorithm, one of the three
// parts or the scope terminator is wrong, or when SignedHeaders lacks
// content-type or host. The message never contains the signature.
absl::StatusOr<Tc3Authorization> ParseTc3Authorization(absl::string_view header);

// The canonical form of one received header value: surrounding whitespace
// trimmed and lower-cased (the documented rule, which is why the doc example
// reads "x-tc-action:describeinstances"); for "host" the ":port" suffix is
// dropped, since SDKs sign the bare hostname while sending host:port.
std::string CanonicalHeaderValue(absl::string_view lower_name, absl::string_view raw_value);

// `headers` are (lower-case name, canonical value) pairs in SignedHeaders
// order. `hashed_payload` is the lower-case hex SHA-256 of the raw body.
std::string BuildCanonicalRequest(absl::string_view method, absl::string_view uri,
                                  absl::string_view query,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  absl::string_view signed_headers,
                                  absl::string_view hashed_payload);

// Lower-case hex signature a holder of `secret_key` would produce.
std::string ExpectedTc3Signature(absl::string_view secret_key, absl::string_view date,
                                 absl::string_view service, absl::string_view timestamp,
                                 absl::string_view canonical_request);

// "YYYY-MM-DD" of a Unix time, in UTC.
std::string UtcDateOf(int64_t unix_seconds);

}  // namespace blueprintsync::emulator

#endif  // BLUEPRINTSYNC_TESTS_EMULATOR_TC3_VERIFIER_H_
