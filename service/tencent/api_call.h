// TencentApiCaller: the one signed-request path of every Tencent Cloud API 3.0
// call this service makes (Lighthouse, STS). It owns what the envelope shares
// across products, so each typed client only builds its action's JSON and
// decodes its answer:
//
//   - the endpoint rules (ParseEndpoint),
//   - TC3-HMAC-SHA256 signing (tc3_signer.h) or an unsigned call,
//   - the Host, Content-Type and X-TC-* headers,
//   - sending through HttpTransport,
//   - reading the error envelope (Response.Error.Code/Message, RequestId)
//     into an ApiError, and
//   - the outcome-unknown rule of non-idempotent actions.
//
// Users: LighthouseHttpClient (lighthouse_client.cc) and the STS providers
// (sts_credentials.cc). Their tests fake what lies below it, the
// HttpTransport (testing/fake_http_transport.h).
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_API_CALL_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_API_CALL_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/tencent/api_error.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/retry_policy.h"

namespace blueprintsync::tencent {

struct ApiEndpoint {
  std::string url;   // "https://host[:port]/"
  std::string host;  // "host[:port]", the Host header
};

// "scheme://host[:port]" with scheme http or https, trailing slashes allowed,
// no path, query, fragment, user info, whitespace or control characters: the
// host is signed as given, so anything that a URL parser could read another
// way is refused. InvalidArgument naming the rule otherwise.
absl::StatusOr<ApiEndpoint> ParseEndpoint(absl::string_view endpoint);

// In an ApiService endpoint's host, stands for the region of each call:
// "https://lighthouse.{region}.tencentcloudapi.com" sends a call about
// ap-guangzhou to lighthouse.ap-guangzhou.tencentcloudapi.com, and signs
// that Host. A call without a region, or with one that is not a region id
// (upstream_bounds.h CheckRegion), is not sent (kLocal).
inline constexpr char kRegionPlaceholder[] = "{region}";

// The product a caller talks to.
struct ApiService {
  std::string endpoint;  // see ParseEndpoint; may hold kRegionPlaceholder
  std::string service;   // signing service name ("lighthouse", "sts"), whatever the host
  std::string version;   // X-TC-Version
  std::string language;  // X-TC-Language when non-empty ("en-US", "zh-CN")
  std::string request_client = "blueprint-sync";  // X-TC-RequestClient when non-empty
};

struct ApiRequest {
  std::string action;  // X-TC-Action
  std::string region;  // X-TC-Region; omitted when empty
  std::string body;    // the action's JSON parameters, sent and signed byte for byte
  // A non-idempotent action goes on a fresh connection, so the HTTP library
  // can never replay it, and any failure that does not prove the call was
  // rejected (HTTP 5xx, InternalError, an unreadable answer) is reported as
  // kOutcomeUnknown: resending it could create a second paid result.
  Idempotency idempotency = Idempotency::kIdempotent;
  // The keys to sign with; nullptr sends "Authorization: SKIP", which only
  // STS AssumeRoleWithWebIdentity accepts (the web identity token is the proof).
  const Credentials* credentials = nullptr;
  // Not sent at or after this (kLocal, ClientError.DeadlineExceeded); the
  // HTTP timeout is what remains of it when it is finite.
  absl::Time deadline = absl::InfiniteFuture();
  // Per-request HTTP timeout; zero leaves the transport's own (the smaller wins).
  absl::Duration timeout = absl::ZeroDuration();
};

class TencentApiCaller {
 public:
  virtual ~TencentApiCaller() = default;
  // Sends `request` once. On success, the body of an HTTP 200 answer that is
  // not an error envelope, for the action's decoder. Otherwise a Status built
  // by MakeStatus(ApiError) with `action` set: kApi for a Tencent error
  // envelope (any HTTP status), kHttpStatus for a non-200 without one,
  // kTransport / kOutcomeUnknown from the transport, kLocal when it was not
  // sent; for non-idempotent actions the outcome-unknown rule applied.
  virtual absl::StatusOr<std::string> Call(const ApiRequest& request) = 0;
};

// InvalidArgument (ParseEndpoint's) when `service.endpoint` is unusable, so a
// typed client decides how to report a bad configuration. `clock` nullptr =
// SystemClock::Default(); it stamps X-TC-Timestamp and checks deadlines.
absl::StatusOr<std::unique_ptr<TencentApiCaller>> MakeTencentApiCaller(
    ApiService service, std::shared_ptr<HttpTransport> transport, Clock* clock = nullptr);

// The ApiError of `status`; a status without one (a transport that broke its
// contract) is treated as "may have executed", the only safe reading.
ApiError ErrorOf(const absl::Status& status);

// The Status a failure of `idempotency`'s action gets: for non-idempotent
// actions a failure that does not prove the call was rejected becomes
// kOutcomeUnknown, with code, message, RequestId and HTTP status as received.
absl::Status ApiFailure(Idempotency idempotency, ApiError error);

// Call, then `decode(body)` (a StatusOr<T> of the answer); a decode failure
// is a failure of the call, so the outcome-unknown rule applies to it too.
template <typename Decode>
auto CallAndDecode(TencentApiCaller& caller, const ApiRequest& request, Decode decode)
    -> decltype(decode(std::string_view())) {
  absl::StatusOr<std::string> body = caller.Call(request);
  if (!body.ok()) return body.status();
  auto decoded = decode(std::string_view(*body));
  if (decoded.ok() || request.idempotency == Idempotency::kIdempotent) return decoded;
  return ApiFailure(request.idempotency, ErrorOf(decoded.status()));
}

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_API_CALL_H_
