// RetryPolicy: decides, for one failed attempt, whether to try again and
// after how long. Kept apart from the client so that the decision table can
// be unit-tested on its own:
//
//   RequestLimitExceeded*            retry, every action (throttled calls are
//                                    not executed)
//   kTransport (nothing sent)        retry, every action
//   InternalError, HTTP 5xx,
//   ServiceUnavailable, malformed,
//   kOutcomeUnknown                  retry only idempotent actions (the
//                                    reads, and DeleteBlueprints)
//   anything else                    no retry
//
// Backoff is exponential with full jitter: uniform in
// [0, min(max_backoff, initial_backoff * 2^(attempt-1))], never below
// min_backoff.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_RETRY_POLICY_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_RETRY_POLICY_H_

#include <functional>

#include "absl/time/time.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::tencent {

enum class Idempotency { kIdempotent, kNonIdempotent };

struct RetryDecision {
  bool retry = false;
  absl::Duration delay = absl::ZeroDuration();
};

struct RetryOptions {
  int max_attempts = 6;  // including the first
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration min_backoff = absl::Milliseconds(20);
};

class RetryPolicy {
 public:
  // `uniform01` returns a value in [0,1); injectable for deterministic tests.
  explicit RetryPolicy(RetryOptions options = {}, std::function<double()> uniform01 = nullptr);

  // Whether an error of this kind/code is worth retrying at all.
  static bool IsRetryable(const ApiError& error, Idempotency idempotency);
  static bool IsThrottle(const ApiError& error);

  // `attempt` is the 1-based number of the attempt that just failed.
  RetryDecision Decide(const ApiError& error, Idempotency idempotency, int attempt) const;

  const RetryOptions& options() const { return options_; }

 private:
  RetryOptions options_;
  std::function<double()> uniform01_;
};

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_RETRY_POLICY_H_
