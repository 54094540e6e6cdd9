#include "service/tencent/retry_policy.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"

namespace blueprintsync::tencent {
namespace {

double DefaultUniform01() {
  // One generator per thread: no lock on the retry path, and absl::BitGen is
  // not thread-safe to share.
  thread_local absl::BitGen gen;
  return absl::Uniform(gen, 0.0, 1.0);
}

bool IsTransientApiCode(std::string_view code) {
  return code == "InternalError" || code == "ServiceUnavailable" || code == "ResourceUnavailable";
}

}  // namespace

RetryPolicy::RetryPolicy(RetryOptions options, std::function<double()> uniform01)
    : options_(std::move(options)),
      uniform01_(uniform01 ? std::move(uniform01) : std::function<double()>(DefaultUniform01)) {}

bool RetryPolicy::IsThrottle(const ApiError& error) {
  return error.code == "RequestLimitExceeded" ||
         absl::StartsWith(error.code, "RequestLimitExceeded.");
}

bool RetryPolicy::IsRetryable(const ApiError& error, Idempotency idempotency) {
  const bool idempotent = idempotency == Idempotency::kIdempotent;
  switch (error.kind) {
    case ErrorKind::kLocal:
    case ErrorKind::kCredentials:
      // Neither goes away by trying again within one call.
      return false;
    case ErrorKind::kTransport:
      // Nothing was sent, so nothing can have been executed.
      return true;
    case ErrorKind::kApi:
      // Throttled calls are rejected before execution, so even SyncBlueprint
      // can be re-sent.
      if (IsThrottle(error)) return true;
      return idempotent && IsTransientApiCode(error.code);
    case ErrorKind::kHttpStatus:
      return idempotent && error.http_status >= 500;
    case ErrorKind::kMalformedResponse:
    case ErrorKind::kOutcomeUnknown:
      // The call may have been executed; only a read may be repeated blindly.
      return idempotent;
  }
  return false;
}

RetryDecision RetryPolicy::Decide(const ApiError& error, Idempotency idempotency,
                                  int attempt) const {
  if (!IsRetryable(error, idempotency)) return {};
  attempt = std::max(attempt, 1);
  if (attempt >= options_.max_attempts) return {};

  // cap = min(max_backoff, initial * 2^(attempt-1)), doubling step by step so
  // that a large attempt number cannot overflow.
  absl::Duration cap = options_.initial_backoff;
  for (int i = 1; i < attempt && cap < options_.max_backoff; ++i) cap *= 2;
  cap = std::min(cap, options_.max_backoff);

  double u = uniform01_();
  if (!(u >= 0.0)) u = 0.0;  // also catches NaN
  if (u > 1.0) u = 1.0;      // the header's interval is closed: [0, cap]
  const absl::Duration delay = std::max(cap * u, options_.min_backoff);
  return {true, delay};
}

}  // namespace blueprintsync::tencent
