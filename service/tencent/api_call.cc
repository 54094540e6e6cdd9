#include "service/tencent/api_call.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "service/tencent/api_envelope.h"
#include "service/tencent/tc3_signer.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::tencent {
namespace {

// One constant for both the signature and the header: TC3 fails with
// AuthFailure.SignatureFailure if the two differ by a single byte.
constexpr char kContentType[] = "application/json";

bool IsInternalError(const ApiError& error) {
  return error.code == "InternalError" || absl::StartsWith(error.code, "InternalError.");
}

// A byte that must never be part of the host we sign and send: URL
// delimiters (a path, query, fragment or user info would make the URL libcurl
// connects to differ from the Host we sign), whitespace and control bytes.
bool IsForbiddenHostByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u == 0x7f) return true;
  return c == '/' || c == '?' || c == '#' || c == '@' || c == '\\';
}

absl::Status NotSent(const std::string& action, std::string code, std::string message) {
  ApiError error;
  error.kind = ErrorKind::kLocal;
  error.code = std::move(code);
  error.message = std::move(message);
  error.action = action;
  return MakeStatus(error);
}

// A non-200 answer: the Tencent envelope when there is one, else a plain
// HTTP status error.
ApiError NonSuccess(const std::string& action, const HttpResponse& response) {
  ApiError error;
  error.kind = ErrorKind::kHttpStatus;
  error.code = "ClientError.HttpStatusCodeError";
  // The Content-Type header is the upstream's text too: bounded.
  const std::string content_type = bounds::BoundText(response.content_type, 128);
  error.message = absl::StrCat("HTTP status ", response.status, " without a Tencent error body",
                               content_type.empty() ? "" : " (Content-Type ", content_type,
                               content_type.empty() ? "" : ")");
  error.action = action;
  error.http_status = response.status;
  return error;
}

class HttpApiCaller final : public TencentApiCaller {
 public:
  HttpApiCaller(ApiService service, ApiEndpoint endpoint, std::shared_ptr<HttpTransport> transport,
                Clock* clock)
      : service_(std::move(service)),
        endpoint_(std::move(endpoint)),
        transport_(std::move(transport)),
        clock_(clock) {}

  absl::StatusOr<std::string> Call(const ApiRequest& call) override {
    const absl::Time now = clock_->Now();
    if (now >= call.deadline) {
      return NotSent(call.action, "ClientError.DeadlineExceeded",
                     absl::StrCat("deadline passed before ", call.action, " was sent"));
    }
    const int64_t timestamp = absl::ToUnixSeconds(now);
    absl::StatusOr<ApiEndpoint> resolved = ForRegion(call);
    if (!resolved.ok()) return resolved.status();
    const ApiEndpoint& endpoint = *resolved;

    HttpRequest request;
    request.url = endpoint.url;
    request.fresh_connection = call.idempotency == Idempotency::kNonIdempotent;
    request.timeout = call.timeout;
    if (call.deadline != absl::InfiniteFuture()) {
      const absl::Duration left = call.deadline - now;
      if (request.timeout == absl::ZeroDuration() || left < request.timeout) request.timeout = left;
    }
    auto& h = request.headers;
    h.reserve(10);
    if (call.credentials != nullptr) {
      SignInput sign;
      sign.service = service_.service;
      sign.host = endpoint.host;
      sign.content_type = kContentType;
      sign.payload = call.body;
      sign.timestamp = timestamp;
      h.emplace_back("Authorization", Tc3Signer::Authorization(call.credentials->secret_id,
                                                               call.credentials->secret_key, sign));
    } else {
      h.emplace_back("Authorization", "SKIP");
    }
    h.emplace_back("Content-Type", kContentType);
    h.emplace_back("Host", endpoint.host);
    h.emplace_back("X-TC-Action", call.action);
    h.emplace_back("X-TC-Version", service_.version);
    h.emplace_back("X-TC-Timestamp", absl::StrCat(timestamp));
    if (!call.region.empty()) h.emplace_back("X-TC-Region", call.region);
    if (call.credentials != nullptr && !call.credentials->token.empty()) {
      h.emplace_back("X-TC-Token", call.credentials->token);
    }
    if (!service_.language.empty()) h.emplace_back("X-TC-Language", service_.language);
    if (!service_.request_client.empty()) {
      h.emplace_back("X-TC-RequestClient", service_.request_client);
    }
    request.body = call.body;

    absl::StatusOr<HttpResponse> response = transport_->Post(request);
    if (!response.ok()) {
      // The transport already tells "nothing sent" from "maybe sent".
      ApiError error = ErrorOf(response.status());
      error.action = call.action;
      return MakeStatus(error);
    }
    // Tencent answers most errors with HTTP 200 and gateways sometimes send
    // the envelope with another status, so it is looked for in every answer.
    if (std::optional<ApiError> envelope = json::DecodeErrorEnvelope(call.action, response->body);
        envelope.has_value()) {
      envelope->http_status = response->status;
      return ApiFailure(call.idempotency, *std::move(envelope));
    }
    if (response->status != 200) {
      return ApiFailure(call.idempotency, NonSuccess(call.action, *response));
    }
    return std::move(response->body);
  }

 private:
  // The endpoint with kRegionPlaceholder replaced by the call's region. The
  // region becomes part of the Host that is signed and connected to, so it
  // must be a region id and nothing else.
  absl::StatusOr<ApiEndpoint> ForRegion(const ApiRequest& call) const {
    if (!absl::StrContains(endpoint_.host, kRegionPlaceholder)) return endpoint_;
    if (absl::Status s = bounds::CheckRegion("region", call.region); !s.ok()) {
      return NotSent(call.action, "ClientError.InvalidRegion",
                     absl::StrCat("a regional endpoint needs the call's region: ", s.message()));
    }
    return ApiEndpoint{absl::StrReplaceAll(endpoint_.url, {{kRegionPlaceholder, call.region}}),
                       absl::StrReplaceAll(endpoint_.host, {{kRegionPlaceholder, call.region}})};
  }

  const ApiService service_;
  const ApiEndpoint endpoint_;
  const std::shared_ptr<HttpTransport> transport_;
  Clock* const clock_;
};

}  // namespace

absl::StatusOr<ApiEndpoint> ParseEndpoint(absl::string_view endpoint) {
  absl::string_view scheme;
  for (absl::string_view candidate : {"https://", "http://"}) {
    if (absl::StartsWith(endpoint, candidate)) scheme = candidate;
  }
  if (scheme.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint '", endpoint, "' must start with https:// or http://"));
  }
  absl::string_view host = endpoint.substr(scheme.size());
  while (absl::EndsWith(host, "/")) host.remove_suffix(1);
  bool forbidden = host.empty() || host.front() == ':';
  for (char c : host) forbidden = forbidden || IsForbiddenHostByte(c);
  if (forbidden) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint '", endpoint, "' must be scheme://host[:port] without a path"));
  }
  return ApiEndpoint{absl::StrCat(scheme, host, "/"), std::string(host)};
}

ApiError ErrorOf(const absl::Status& status) {
  if (std::optional<ApiError> error = GetApiError(status); error.has_value()) return *error;
  ApiError error;
  error.kind = ErrorKind::kOutcomeUnknown;
  error.code = "ClientError.NetworkError";
  error.message = std::string(status.message());
  return error;
}

absl::Status ApiFailure(Idempotency idempotency, ApiError error) {
  if (idempotency == Idempotency::kNonIdempotent) {
    const bool server_side_failure = error.http_status >= 500 || IsInternalError(error) ||
                                     error.kind == ErrorKind::kMalformedResponse;
    if (server_side_failure) error.kind = ErrorKind::kOutcomeUnknown;
  }
  return MakeStatus(error);
}

absl::StatusOr<std::unique_ptr<TencentApiCaller>> MakeTencentApiCaller(
    ApiService service, std::shared_ptr<HttpTransport> transport, Clock* clock) {
  absl::StatusOr<ApiEndpoint> endpoint = ParseEndpoint(service.endpoint);
  if (!endpoint.ok()) return endpoint.status();
  if (clock == nullptr) clock = SystemClock::Default();
  return std::make_unique<HttpApiCaller>(std::move(service), *std::move(endpoint),
                                         std::move(transport), clock);
}

}  // namespace blueprintsync::tencent
