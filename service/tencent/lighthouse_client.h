// LighthouseClient: typed calls to the Lighthouse API (version 2020-03-24).
// One virtual per action, each returning absl::StatusOr; failures carry an
// ApiError (see api_error.h). The production client is a stack:
//
//   RetryingLighthouseClient      retry policy + backoff (retry_policy.h)
//     RateLimitedLighthouseClient per-action pacing (rate_limiter.h), at the
//                                 call's priority (CallOptions::priority)
//       (observer, optional)      reports each attempt (call_observer.h)
//         LighthouseHttpClient    typed JSON over the shared signed-request path
//                                 (api_call.h: TC3 signing, headers, HttpTransport,
//                                 error envelope)
//
// so every attempt, retries included, is paced, and each layer can be tested
// with a fake of the one below. Build it with MakeLighthouseClient().
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_CLIENT_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/tencent/call_observer.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/lighthouse_types.h"
#include "service/tencent/rate_limiter.h"
#include "service/tencent/retry_policy.h"

namespace blueprintsync::tencent {

inline constexpr char kLighthouseService[] = "lighthouse";
inline constexpr char kLighthouseVersion[] = "2020-03-24";
inline constexpr char kDefaultLighthouseEndpoint[] = "https://lighthouse.tencentcloudapi.com";

// Tencent Cloud's two sites. Their API domains differ
// (lighthouse.tencentcloudapi.com vs lighthouse.intl.tencentcloudapi.com);
// the signing service name is "lighthouse" on both.
enum class TencentSite { kChina, kInternational };
// kGlobal: the site's domain, which routes to the nearest access point.
// kRegional: lighthouse.<region>.tencentcloudapi.com, the region of each
// call (X-TC-Region), as Tencent recommends for latency-sensitive use.
enum class EndpointStyle { kGlobal, kRegional };
// The endpoint for LighthouseClientOptions::endpoint; the regional one holds
// kRegionPlaceholder.
std::string LighthouseEndpointFor(TencentSite site, EndpointStyle style);
inline constexpr int kMaxDescribeIds = 100;

// Who waits for rate-limit capacity first. Background calls (the policy
// controller's work) take a slot only when no foreground call (a caller's
// job) is waiting for one, so they never delay callers by more than the
// background calls already granted.
enum class CallPriority { kForeground, kBackground };

struct CallOptions {
  // No attempt starts after this; waits for rate-limit capacity or backoff
  // that would end after it fail at once with kLocal / DeadlineExceeded.
  absl::Time deadline = absl::InfiniteFuture();
  CallPriority priority = CallPriority::kForeground;
};

class LighthouseClient {
 public:
  virtual ~LighthouseClient() = default;
  // Non-idempotent: every accepted call creates paid images. Never resent
  // after a failure where it may have executed; that failure is kOutcomeUnknown.
  virtual absl::StatusOr<SyncBlueprintResponse> SyncBlueprint(const SyncBlueprintRequest& request,
                                                              const CallOptions& options = {}) = 0;
  virtual absl::StatusOr<DescribeBlueprintsResponse> DescribeBlueprints(
      const DescribeBlueprintsRequest& request, const CallOptions& options = {}) = 0;
  virtual absl::StatusOr<DescribeRegionsResponse> DescribeRegions(
      const std::string& region, const CallOptions& options = {}) = 0;
  // Safe to repeat: deleting a blueprint that is already gone answers
  // ResourceNotFound.PrivateBlueprintNotFound (NOT_FOUND), so the retrying
  // layer resends it like a read. All or nothing upstream: one id that cannot
  // be deleted fails the whole call. Validated locally first (region, 1 to
  // kMaxDeleteIds ids, each "lhbp-" + [a-z0-9]{1,32}): InvalidArgument
  // naming the field, nothing sent.
  virtual absl::StatusOr<DeleteBlueprintsResponse> DeleteBlueprints(
      const DeleteBlueprintsRequest& request, const CallOptions& options = {}) = 0;
};

struct LighthouseClientOptions {
  // Scheme + host[:port], no path. "http://127.0.0.1:PORT" for the emulator.
  // The signing service name stays "lighthouse" whatever the host is. A
  // "{region}" in the host is replaced by each call's region (api_call.h).
  std::string endpoint = kDefaultLighthouseEndpoint;
  std::string language;                           // X-TC-Language when non-empty ("en-US", "zh-CN")
  std::string request_client = "blueprint-sync";  // X-TC-RequestClient
  RateLimits rate_limits;
  RetryOptions retry;
  // Told about every attempt and retry (metrics); none when null.
  std::shared_ptr<CallObserver> observer;
};

// The local checks DeleteBlueprints makes before anything is sent: OK, or
// the kLocal ClientError.InvalidArgument status (INVALID_ARGUMENT) naming
// the field. Exposed so that fakes standing in for the stack refuse what it
// would refuse.
absl::Status ValidateDeleteBlueprints(const DeleteBlueprintsRequest& request);

// The single-attempt client: signs, sends, decodes. Exposed for tests.
std::unique_ptr<LighthouseClient> MakeLighthouseHttpClient(
    const LighthouseClientOptions& options, std::shared_ptr<CredentialProvider> credentials,
    std::shared_ptr<HttpTransport> transport, Clock* clock);

class RateLimitedLighthouseClient final : public LighthouseClient {
 public:
  RateLimitedLighthouseClient(std::unique_ptr<LighthouseClient> next,
                              std::shared_ptr<ActionRateLimiters> limiters);
  absl::StatusOr<SyncBlueprintResponse> SyncBlueprint(const SyncBlueprintRequest& request,
                                                      const CallOptions& options) override;
  absl::StatusOr<DescribeBlueprintsResponse> DescribeBlueprints(
      const DescribeBlueprintsRequest& request, const CallOptions& options) override;
  absl::StatusOr<DescribeRegionsResponse> DescribeRegions(const std::string& region,
                                                          const CallOptions& options) override;
  absl::StatusOr<DeleteBlueprintsResponse> DeleteBlueprints(const DeleteBlueprintsRequest& request,
                                                            const CallOptions& options) override;

 private:
  std::unique_ptr<LighthouseClient> next_;
  std::shared_ptr<ActionRateLimiters> limiters_;
};

class RetryingLighthouseClient final : public LighthouseClient {
 public:
  RetryingLighthouseClient(std::unique_ptr<LighthouseClient> next, RetryPolicy policy, Clock* clock,
                           std::shared_ptr<CallObserver> observer = nullptr);
  absl::StatusOr<SyncBlueprintResponse> SyncBlueprint(const SyncBlueprintRequest& request,
                                                      const CallOptions& options) override;
  absl::StatusOr<DescribeBlueprintsResponse> DescribeBlueprints(
      const DescribeBlueprintsRequest& request, const CallOptions& options) override;
  absl::StatusOr<DescribeRegionsResponse> DescribeRegions(const std::string& region,
                                                          const CallOptions& options) override;
  absl::StatusOr<DeleteBlueprintsResponse> DeleteBlueprints(const DeleteBlueprintsRequest& request,
                                                            const CallOptions& options) override;

 private:
  std::unique_ptr<LighthouseClient> next_;
  RetryPolicy policy_;
  Clock* clock_;
  std::shared_ptr<CallObserver> observer_;
};

// The full production stack. `limiters` may be shared between clients so a
// process-wide limit holds; pass nullptr to build one from options.rate_limits.
std::unique_ptr<LighthouseClient> MakeLighthouseClient(
    const LighthouseClientOptions& options, std::shared_ptr<CredentialProvider> credentials,
    std::shared_ptr<HttpTransport> transport,
    std::shared_ptr<ActionRateLimiters> limiters = nullptr, Clock* clock = nullptr);

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_CLIENT_H_
