#include "service/tencent/retry_policy.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blueprintsync::tencent {
namespace {

constexpr Idempotency kRead = Idempotency::kIdempotent;
constexpr Idempotency kWrite = Idempotency::kNonIdempotent;

ApiError Err(ErrorKind kind, std::string code = "", long http_status = 0) {
  ApiError e;
  e.kind = kind;
  e.code = std::move(code);
  e.http_status = http_status;
  e.action = "SyncBlueprint";
  return e;
}

struct Row {
  const char* name;
  ApiError error;
  bool retry_read;
  bool retry_write;
};

// The decision table of retry_policy.h, row by row.
std::vector<Row> Table() {
  return {
      // Throttling: never executed, so every action.
      {"throttle", Err(ErrorKind::kApi, "RequestLimitExceeded"), true, true},
      {"throttle uin", Err(ErrorKind::kApi, "RequestLimitExceeded.UinLimitExceeded"), true, true},
      {"throttle global", Err(ErrorKind::kApi, "RequestLimitExceeded.GlobalRegionUinLimitExceeded"),
       true, true},
      {"throttle-like but not", Err(ErrorKind::kApi, "RequestLimitExceededX"), false, false},
      {"request size", Err(ErrorKind::kApi, "RequestSizeLimitExceeded"), false, false},
      // Nothing sent.
      {"transport", Err(ErrorKind::kTransport, "ClientError.NetworkError"), true, true},
      // Transient but possibly executed: reads only.
      {"InternalError", Err(ErrorKind::kApi, "InternalError", 200), true, false},
      {"ServiceUnavailable", Err(ErrorKind::kApi, "ServiceUnavailable"), true, false},
      {"ResourceUnavailable", Err(ErrorKind::kApi, "ResourceUnavailable"), true, false},
      {"InternalError sub-code", Err(ErrorKind::kApi, "InternalError.InvalidCommandNotFound"),
       false, false},
      {"http 500", Err(ErrorKind::kHttpStatus, "ClientError.HttpStatusCodeError", 500), true,
       false},
      {"http 502", Err(ErrorKind::kHttpStatus, "ClientError.HttpStatusCodeError", 502), true,
       false},
      {"http 503", Err(ErrorKind::kHttpStatus, "ClientError.HttpStatusCodeError", 503), true,
       false},
      {"http 499", Err(ErrorKind::kHttpStatus, "ClientError.HttpStatusCodeError", 499), false,
       false},
      {"http 404", Err(ErrorKind::kHttpStatus, "ClientError.HttpStatusCodeError", 404), false,
       false},
      {"http 429", Err(ErrorKind::kHttpStatus, "ClientError.HttpStatusCodeError", 429), false,
       false},
      {"malformed", Err(ErrorKind::kMalformedResponse, "ClientError.ParseJsonError", 200), true,
       false},
      {"outcome unknown", Err(ErrorKind::kOutcomeUnknown, "ClientError.OutcomeUnknown"), true,
       false},
      // Never.
      {"local deadline", Err(ErrorKind::kLocal, "ClientError.DeadlineExceeded"), false, false},
      {"local throttle code", Err(ErrorKind::kLocal, "RequestLimitExceeded"), false, false},
      {"credentials", Err(ErrorKind::kCredentials, "ClientError.CredentialError"), false, false},
      {"credentials throttle code", Err(ErrorKind::kCredentials, "RequestLimitExceeded"), false,
       false},
      {"auth", Err(ErrorKind::kApi, "AuthFailure.SignatureFailure"), false, false},
      {"invalid", Err(ErrorKind::kApi, "InvalidParameterValue.Duplicated"), false, false},
      {"not found", Err(ErrorKind::kApi, "ResourceNotFound.PrivateBlueprintNotFound"), false,
       false},
      {"in progress", Err(ErrorKind::kApi, "OperationDenied.BlueprintOperationInProgress"), false,
       false},
      {"quota", Err(ErrorKind::kApi, "LimitExceeded.SyncBlueprintQuotaLimitExceeded"), false,
       false},
      {"failed op", Err(ErrorKind::kApi, "FailedOperation.RequestError"), false, false},
      {"unknown code", Err(ErrorKind::kApi, "SomethingNew"), false, false},
  };
}

TEST(RetryPolicyTest, IsThrottle) {
  EXPECT_TRUE(RetryPolicy::IsThrottle(Err(ErrorKind::kApi, "RequestLimitExceeded")));
  EXPECT_TRUE(
      RetryPolicy::IsThrottle(Err(ErrorKind::kApi, "RequestLimitExceeded.UinLimitExceeded")));
  EXPECT_FALSE(RetryPolicy::IsThrottle(Err(ErrorKind::kApi, "RequestLimitExceededX")));
  EXPECT_FALSE(RetryPolicy::IsThrottle(Err(ErrorKind::kApi, "LimitExceeded")));
  EXPECT_FALSE(RetryPolicy::IsThrottle(Err(ErrorKind::kApi, "requestlimitexceeded")));
  EXPECT_FALSE(RetryPolicy::IsThrottle(Err(ErrorKind::kApi, "")));
}

TEST(RetryPolicyTest, IsRetryableDecisionTable) {
  for (const Row& row : Table()) {
    EXPECT_EQ(RetryPolicy::IsRetryable(row.error, kRead), row.retry_read) << row.name;
    EXPECT_EQ(RetryPolicy::IsRetryable(row.error, kWrite), row.retry_write) << row.name;
  }
}

TEST(RetryPolicyTest, DecideFollowsTheTable) {
  RetryPolicy policy({}, [] { return 0.5; });
  for (const Row& row : Table()) {
    const RetryDecision read = policy.Decide(row.error, kRead, 1);
    const RetryDecision write = policy.Decide(row.error, kWrite, 1);
    EXPECT_EQ(read.retry, row.retry_read) << row.name;
    EXPECT_EQ(write.retry, row.retry_write) << row.name;
    if (read.retry) {
      EXPECT_GT(read.delay, absl::ZeroDuration()) << row.name;
    } else {
      EXPECT_EQ(read.delay, absl::ZeroDuration()) << row.name;
    }
  }
}

TEST(RetryPolicyTest, MaxAttemptsCountsTheFirstAttempt) {
  RetryOptions options;
  options.max_attempts = 3;
  RetryPolicy policy(options, [] { return 0.5; });
  const ApiError throttle = Err(ErrorKind::kApi, "RequestLimitExceeded");
  EXPECT_TRUE(policy.Decide(throttle, kWrite, 1).retry);
  EXPECT_TRUE(policy.Decide(throttle, kWrite, 2).retry);
  EXPECT_FALSE(policy.Decide(throttle, kWrite, 3).retry);
  EXPECT_FALSE(policy.Decide(throttle, kWrite, 4).retry);
  EXPECT_EQ(policy.Decide(throttle, kWrite, 3).delay, absl::ZeroDuration());
}

TEST(RetryPolicyTest, DefaultMaxAttemptsIsSix) {
  RetryPolicy policy;
  EXPECT_EQ(policy.options().max_attempts, 6);
  const ApiError transport = Err(ErrorKind::kTransport, "ClientError.NetworkError");
  for (int attempt = 1; attempt <= 5; ++attempt) {
    EXPECT_TRUE(policy.Decide(transport, kWrite, attempt).retry) << attempt;
  }
  EXPECT_FALSE(policy.Decide(transport, kWrite, 6).retry);
}

TEST(RetryPolicyTest, SingleAttemptNeverRetries) {
  RetryOptions options;
  options.max_attempts = 1;
  RetryPolicy policy(options, [] { return 0.5; });
  EXPECT_FALSE(policy.Decide(Err(ErrorKind::kTransport), kRead, 1).retry);
}

// Options that make the arithmetic easy to read: 100ms, 200ms, 400ms, 800ms,
// capped at 1s; floor 10ms.
RetryOptions Simple() {
  RetryOptions o;
  o.max_attempts = 100;
  o.initial_backoff = absl::Milliseconds(100);
  o.max_backoff = absl::Seconds(1);
  o.min_backoff = absl::Milliseconds(10);
  return o;
}

TEST(RetryPolicyTest, BackoffWithUniformZeroIsTheFloor) {
  RetryPolicy policy(Simple(), [] { return 0.0; });
  const ApiError e = Err(ErrorKind::kTransport);
  for (int attempt : {1, 2, 3, 10, 50}) {
    EXPECT_EQ(policy.Decide(e, kRead, attempt).delay, absl::Milliseconds(10)) << attempt;
  }
}

TEST(RetryPolicyTest, BackoffWithUniformHalf) {
  RetryPolicy policy(Simple(), [] { return 0.5; });
  const ApiError e = Err(ErrorKind::kTransport);
  EXPECT_EQ(policy.Decide(e, kRead, 1).delay, absl::Milliseconds(50));
  EXPECT_EQ(policy.Decide(e, kRead, 2).delay, absl::Milliseconds(100));
  EXPECT_EQ(policy.Decide(e, kRead, 3).delay, absl::Milliseconds(200));
  EXPECT_EQ(policy.Decide(e, kRead, 4).delay, absl::Milliseconds(400));
  EXPECT_EQ(policy.Decide(e, kRead, 5).delay, absl::Milliseconds(500));   // cap 1s
  EXPECT_EQ(policy.Decide(e, kRead, 60).delay, absl::Milliseconds(500));  // no overflow
}

TEST(RetryPolicyTest, BackoffWithUniformNearOneStaysBelowTheCap) {
  RetryPolicy policy(Simple(), [] { return 0.999; });
  const ApiError e = Err(ErrorKind::kTransport);
  const absl::Duration caps[] = {absl::Milliseconds(100), absl::Milliseconds(200),
                                 absl::Milliseconds(400), absl::Milliseconds(800),
                                 absl::Seconds(1),        absl::Seconds(1)};
  for (int attempt = 1; attempt <= 6; ++attempt) {
    const absl::Duration cap = caps[attempt - 1];
    const absl::Duration delay = policy.Decide(e, kRead, attempt).delay;
    EXPECT_EQ(delay, cap * 0.999) << attempt;
    EXPECT_LT(delay, cap) << attempt;
  }
}

TEST(RetryPolicyTest, DefaultOptionsBounds) {
  // 200ms initial, 5s max, 20ms floor.
  RetryPolicy zero({}, [] { return 0.0; });
  RetryPolicy high({}, [] { return 0.999; });
  const ApiError e = Err(ErrorKind::kApi, "RequestLimitExceeded");
  EXPECT_EQ(zero.Decide(e, kWrite, 1).delay, absl::Milliseconds(20));
  EXPECT_EQ(high.Decide(e, kWrite, 1).delay, absl::Milliseconds(200) * 0.999);
  EXPECT_EQ(high.Decide(e, kWrite, 5).delay, absl::Milliseconds(3200) * 0.999);
}

TEST(RetryPolicyTest, OutOfRangeUniformIsClamped) {
  const ApiError e = Err(ErrorKind::kTransport);
  RetryPolicy negative(Simple(), [] { return -3.0; });
  EXPECT_EQ(negative.Decide(e, kRead, 3).delay, absl::Milliseconds(10));
  RetryPolicy big(Simple(), [] { return 7.0; });
  EXPECT_EQ(big.Decide(e, kRead, 3).delay, absl::Milliseconds(400));
  RetryPolicy nan(Simple(), [] { return std::nan(""); });
  EXPECT_EQ(nan.Decide(e, kRead, 3).delay, absl::Milliseconds(10));
}

TEST(RetryPolicyTest, DefaultRandomSourceStaysInBounds) {
  RetryPolicy policy(Simple());
  const ApiError e = Err(ErrorKind::kTransport);
  bool varied = false;
  absl::Duration first = policy.Decide(e, kRead, 4).delay;
  for (int i = 0; i < 200; ++i) {
    const absl::Duration d = policy.Decide(e, kRead, 4).delay;
    EXPECT_GE(d, absl::Milliseconds(10));
    EXPECT_LT(d, absl::Milliseconds(800));
    if (d != first) varied = true;
  }
  EXPECT_TRUE(varied) << "full jitter should not return a constant";
}

}  // namespace
}  // namespace blueprintsync::tencent
