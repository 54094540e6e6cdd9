#include "service/tencent/lighthouse_client.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "service/tencent/api_call.h"
#include "service/tencent/api_error.h"
#include "service/tencent/lighthouse_json.h"

namespace blueprintsync::tencent {
namespace {

constexpr char kSyncBlueprint[] = "SyncBlueprint";
constexpr char kDescribeBlueprints[] = "DescribeBlueprints";
constexpr char kDescribeRegions[] = "DescribeRegions";
constexpr char kDeleteBlueprints[] = "DeleteBlueprints";

constexpr int kMaxDescribeFilters = 10;
constexpr int kMaxFilterValues = 100;
constexpr int64_t kMaxDescribeLimit = 100;
constexpr int kMaxSyncDestinations = 10;
// Longest id suffix accepted locally. Tencent's ids have 8 characters today;
// the bound only keeps nonsense from being sent, not future ids out.
constexpr size_t kMaxBlueprintIdSuffix = 32;
// Caller-supplied values quoted in messages are cut here: a megabyte of
// garbage is not worth echoing back.
constexpr size_t kMaxQuotedLength = 64;

absl::Status LocalError(std::string_view action, std::string code, std::string message) {
  ApiError error;
  error.kind = ErrorKind::kLocal;
  error.code = std::move(code);
  error.message = std::move(message);
  error.action = std::string(action);
  return MakeStatus(error);
}

absl::Status InvalidArgument(std::string_view action, std::string message) {
  return LocalError(action, "ClientError.InvalidArgument", std::move(message));
}

std::string Quote(std::string_view value) {
  // Debian's Abseil has its own absl::string_view; convert explicitly.
  const absl::string_view v(value.data(), value.size());
  if (v.size() <= kMaxQuotedLength) return absl::StrCat("\"", absl::CEscape(v), "\"");
  return absl::StrCat("\"", absl::CEscape(v.substr(0, kMaxQuotedLength)), "\"... (", v.size(),
                      " bytes)");
}

// "lhbp-" followed by 1 to kMaxBlueprintIdSuffix of [a-z0-9]: what a
// blueprint id can look like, checked before anything is sent so that a
// typo costs no call (and can never match something unintended).
bool LooksLikeBlueprintId(std::string_view id) {
  constexpr std::string_view kPrefix = "lhbp-";
  if (id.substr(0, kPrefix.size()) != kPrefix) return false;
  const std::string_view suffix = id.substr(kPrefix.size());
  if (suffix.empty() || suffix.size() > kMaxBlueprintIdSuffix) return false;
  for (char c : suffix) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// The single-attempt client: validates, builds the action's JSON, sends it
// through the shared signed-request path and decodes the typed answer.
class LighthouseHttpClient final : public LighthouseClient {
 public:
  LighthouseHttpClient(const LighthouseClientOptions& options,
                       std::shared_ptr<CredentialProvider> credentials,
                       std::shared_ptr<HttpTransport> transport, Clock* clock)
      : caller_(MakeTencentApiCaller({options.endpoint, kLighthouseService, kLighthouseVersion,
                                      options.language, options.request_client},
                                     std::move(transport), clock)),
        credentials_(std::move(credentials)),
        clock_(clock) {}

  absl::StatusOr<SyncBlueprintResponse> SyncBlueprint(const SyncBlueprintRequest& request,
                                                      const CallOptions& options) override {
    if (request.region.empty()) {
      return InvalidArgument(kSyncBlueprint, "region: required (the source region)");
    }
    if (request.blueprint_id.empty()) {
      return InvalidArgument(kSyncBlueprint, "blueprint_id: required");
    }
    if (request.destination_regions.empty() ||
        request.destination_regions.size() > static_cast<size_t>(kMaxSyncDestinations)) {
      return InvalidArgument(
          kSyncBlueprint, absl::StrCat("destination_regions: must hold 1 to ", kMaxSyncDestinations,
                                       " regions, got ", request.destination_regions.size()));
    }
    return Send(kSyncBlueprint, request.region, json::EncodeSyncBlueprint(request),
                Idempotency::kNonIdempotent, options, json::DecodeSyncBlueprint);
  }

  absl::StatusOr<DescribeBlueprintsResponse> DescribeBlueprints(
      const DescribeBlueprintsRequest& request, const CallOptions& options) override {
    if (absl::Status s = Validate(request); !s.ok()) return s;
    return Send(kDescribeBlueprints, request.region, json::EncodeDescribeBlueprints(request),
                Idempotency::kIdempotent, options, json::DecodeDescribeBlueprints);
  }

  absl::StatusOr<DescribeRegionsResponse> DescribeRegions(const std::string& region,
                                                          const CallOptions& options) override {
    return Send(kDescribeRegions, region, json::EncodeDescribeRegions(), Idempotency::kIdempotent,
                options, json::DecodeDescribeRegions);
  }

  // Idempotent on the wire: a repeated delete of the same ids can only
  // answer ResourceNotFound, never remove anything else.
  absl::StatusOr<DeleteBlueprintsResponse> DeleteBlueprints(const DeleteBlueprintsRequest& request,
                                                            const CallOptions& options) override {
    if (absl::Status s = ValidateDeleteBlueprints(request); !s.ok()) return s;
    return Send(kDeleteBlueprints, request.region, json::EncodeDeleteBlueprints(request),
                Idempotency::kIdempotent, options, json::DecodeDeleteBlueprints);
  }

 private:
  static absl::Status Validate(const DescribeBlueprintsRequest& request) {
    if (request.blueprint_ids.size() > static_cast<size_t>(kMaxDescribeIds)) {
      return InvalidArgument(kDescribeBlueprints,
                             absl::StrCat("blueprint_ids: at most ", kMaxDescribeIds,
                                          " ids per call, got ", request.blueprint_ids.size()));
    }
    if (!request.blueprint_ids.empty() && !request.filters.empty()) {
      return InvalidArgument(kDescribeBlueprints,
                             "blueprint_ids and filters: cannot be combined in one call");
    }
    if (request.filters.size() > static_cast<size_t>(kMaxDescribeFilters)) {
      return InvalidArgument(kDescribeBlueprints,
                             absl::StrCat("filters: at most ", kMaxDescribeFilters,
                                          " filters per call, got ", request.filters.size()));
    }
    for (size_t i = 0; i < request.filters.size(); ++i) {
      if (request.filters[i].values.size() > static_cast<size_t>(kMaxFilterValues)) {
        return InvalidArgument(
            kDescribeBlueprints,
            absl::StrCat("filters[", i, "].values: at most ", kMaxFilterValues,
                         " values per filter, got ", request.filters[i].values.size()));
      }
    }
    if (request.limit.has_value() && (*request.limit < 1 || *request.limit > kMaxDescribeLimit)) {
      return InvalidArgument(kDescribeBlueprints,
                             absl::StrCat("limit: must be between 1 and ", kMaxDescribeLimit,
                                          ", got ", *request.limit));
    }
    if (request.offset.has_value() && *request.offset < 0) {
      return InvalidArgument(kDescribeBlueprints,
                             absl::StrCat("offset: must not be negative, got ", *request.offset));
    }
    return absl::OkStatus();
  }

  // Keys that can sign, or the kCredentials error that says why there are none.
  absl::StatusOr<Credentials> UsableCredentials(const char* action) {
    absl::StatusOr<Credentials> credentials = credentials_->GetCredentials();
    if (!credentials.ok()) {
      ApiError error;
      error.kind = ErrorKind::kCredentials;
      error.code = "ClientError.CredentialError";
      error.message = absl::StrCat("credential provider ", credentials_->Name(), ": ",
                                   credentials.status().message());
      error.action = action;
      return MakeStatus(error);
    }
    const absl::Time now = clock_->Now();
    if (credentials->secret_id.empty() || credentials->secret_key.empty() ||
        credentials->expiry <= now) {
      ApiError error;
      error.kind = ErrorKind::kCredentials;
      error.code = "ClientError.CredentialError";
      error.message =
          absl::StrCat("credential provider ", credentials_->Name(),
                       credentials->expiry <= now ? " returned expired credentials"
                                                  : " returned an empty SecretId or SecretKey");
      error.action = action;
      return MakeStatus(error);
    }
    return credentials;
  }

  template <typename Decode>
  auto Send(const char* action, const std::string& region, std::string body,
            Idempotency idempotency, const CallOptions& call, Decode decode)
      -> decltype(decode(std::string_view())) {
    if (!caller_.ok()) return InvalidArgument(action, std::string(caller_.status().message()));
    absl::StatusOr<Credentials> credentials = UsableCredentials(action);
    if (!credentials.ok()) return credentials.status();
    ApiRequest request;
    request.action = action;
    request.region = region;
    request.body = std::move(body);
    request.idempotency = idempotency;
    request.credentials = &*credentials;
    request.deadline = call.deadline;
    return CallAndDecode(**caller_, request, decode);
  }

  const absl::StatusOr<std::unique_ptr<TencentApiCaller>> caller_;
  const std::shared_ptr<CredentialProvider> credentials_;
  Clock* const clock_;
};

}  // namespace

absl::Status ValidateDeleteBlueprints(const DeleteBlueprintsRequest& request) {
  if (request.region.empty()) {
    return InvalidArgument(kDeleteBlueprints, "region: required (the blueprints' region)");
  }
  // An empty list is refused rather than skipped: the caller asked to
  // delete nothing, which is a bug worth seeing, not a call worth paying.
  if (request.blueprint_ids.empty() ||
      request.blueprint_ids.size() > static_cast<size_t>(kMaxDeleteIds)) {
    return InvalidArgument(kDeleteBlueprints,
                           absl::StrCat("blueprint_ids: must hold 1 to ", kMaxDeleteIds,
                                        " ids, got ", request.blueprint_ids.size()));
  }
  for (size_t i = 0; i < request.blueprint_ids.size(); ++i) {
    if (!LooksLikeBlueprintId(request.blueprint_ids[i])) {
      return InvalidArgument(
          kDeleteBlueprints,
          absl::StrCat("blueprint_ids[", i, "]: ", Quote(request.blueprint_ids[i]),
                       " is not a blueprint id (\"lhbp-\" followed by 1 to ", kMaxBlueprintIdSuffix,
                       " of [a-z0-9])"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<LighthouseClient> MakeLighthouseHttpClient(
    const LighthouseClientOptions& options, std::shared_ptr<CredentialProvider> credentials,
    std::shared_ptr<HttpTransport> transport, Clock* clock) {
  if (clock == nullptr) clock = SystemClock::Default();
  return std::make_unique<LighthouseHttpClient>(options, std::move(credentials),
                                                std::move(transport), clock);
}

// --- RateLimitedLighthouseClient ---

namespace {

absl::Status AcquireSlot(RateLimiter& limiter, const char* action, const CallOptions& options,
                         uint64_t* call) {
  // Once shutdown has set the cutoff, a slot after it is not worth waiting
  // for: the call would be given up anyway.
  const absl::Time deadline = std::min(options.deadline, ProcessCallCutoff().at());
  absl::Status s = options.priority == CallPriority::kBackground
                       ? limiter.AcquireBackground(deadline, call)
                       : limiter.Acquire(deadline, call);
  if (s.ok()) return s;
  if (s.code() == absl::StatusCode::kDeadlineExceeded) {
    return LocalError(
        action, "ClientError.DeadlineExceeded",
        absl::StrCat("rate-limit capacity for ", action, " would not come before the deadline"));
  }
  return LocalError(action, "ClientError.RateLimitError",
                    absl::StrCat("rate limiter for ", action, ": ", s.message()));
}

// Sends `send()` in a slot of `action`'s limiter, taken at the call's
// priority, and tells the limiter when its answer came: the call has
// reached Tencent by then at the latest.
template <typename Send>
auto Paced(ActionRateLimiters& limiters, const char* action, const CallOptions& options, Send send)
    -> decltype(send()) {
  RateLimiter& limiter = limiters.For(action);
  uint64_t call = 0;
  if (absl::Status s = AcquireSlot(limiter, action, options, &call); !s.ok()) return s;
  auto result = send();
  limiter.Ended(call);
  return result;
}

}  // namespace

RateLimitedLighthouseClient::RateLimitedLighthouseClient(
    std::unique_ptr<LighthouseClient> next, std::shared_ptr<ActionRateLimiters> limiters)
    : next_(std::move(next)), limiters_(std::move(limiters)) {}

absl::StatusOr<SyncBlueprintResponse> RateLimitedLighthouseClient::SyncBlueprint(
    const SyncBlueprintRequest& request, const CallOptions& options) {
  return Paced(*limiters_, kSyncBlueprint, options,
               [&] { return next_->SyncBlueprint(request, options); });
}

absl::StatusOr<DescribeBlueprintsResponse> RateLimitedLighthouseClient::DescribeBlueprints(
    const DescribeBlueprintsRequest& request, const CallOptions& options) {
  return Paced(*limiters_, kDescribeBlueprints, options,
               [&] { return next_->DescribeBlueprints(request, options); });
}

absl::StatusOr<DescribeRegionsResponse> RateLimitedLighthouseClient::DescribeRegions(
    const std::string& region, const CallOptions& options) {
  return Paced(*limiters_, kDescribeRegions, options,
               [&] { return next_->DescribeRegions(region, options); });
}

absl::StatusOr<DeleteBlueprintsResponse> RateLimitedLighthouseClient::DeleteBlueprints(
    const DeleteBlueprintsRequest& request, const CallOptions& options) {
  return Paced(*limiters_, kDeleteBlueprints, options,
               [&] { return next_->DeleteBlueprints(request, options); });
}

// --- Observed attempts (below the rate limiter, so pacing waits are not timed) ---

namespace {

class ObservedLighthouseClient final : public LighthouseClient {
 public:
  ObservedLighthouseClient(std::unique_ptr<LighthouseClient> next,
                           std::shared_ptr<CallObserver> observer, Clock* clock)
      : next_(std::move(next)), observer_(std::move(observer)), clock_(clock) {}

  absl::StatusOr<SyncBlueprintResponse> SyncBlueprint(const SyncBlueprintRequest& request,
                                                      const CallOptions& options) override {
    return Observe(kSyncBlueprint, [&] { return next_->SyncBlueprint(request, options); });
  }
  absl::StatusOr<DescribeBlueprintsResponse> DescribeBlueprints(
      const DescribeBlueprintsRequest& request, const CallOptions& options) override {
    return Observe(kDescribeBlueprints,
                   [&] { return next_->DescribeBlueprints(request, options); });
  }
  absl::StatusOr<DescribeRegionsResponse> DescribeRegions(const std::string& region,
                                                          const CallOptions& options) override {
    return Observe(kDescribeRegions, [&] { return next_->DescribeRegions(region, options); });
  }
  absl::StatusOr<DeleteBlueprintsResponse> DeleteBlueprints(const DeleteBlueprintsRequest& request,
                                                            const CallOptions& options) override {
    return Observe(kDeleteBlueprints, [&] { return next_->DeleteBlueprints(request, options); });
  }

 private:
  template <typename Attempt>
  auto Observe(const char* action, Attempt attempt) -> decltype(attempt()) {
    const absl::Time start = clock_->Now();
    auto result = attempt();
    const absl::Duration took = clock_->Now() - start;
    if (result.ok()) {
      observer_->OnAttempt(action, "OK", false, took);
    } else {
      const ApiError error = ErrorOf(result.status());
      observer_->OnAttempt(action, error.code, RetryPolicy::IsThrottle(error), took);
    }
    return result;
  }

  std::unique_ptr<LighthouseClient> next_;
  std::shared_ptr<CallObserver> observer_;
  Clock* clock_;
};

}  // namespace

// --- RetryingLighthouseClient ---

namespace {

template <typename Attempt>
auto RunWithRetries(const RetryPolicy& policy, Clock& clock, Idempotency idempotency,
                    const CallOptions& options, CallObserver* observer, const char* action,
                    Attempt attempt) -> decltype(attempt()) {
  for (int n = 1;; ++n) {
    auto result = attempt();
    if (result.ok()) return result;
    std::optional<ApiError> error = GetApiError(result.status());
    if (!error.has_value()) return result;
    // Belt and braces on top of the policy: a non-idempotent call that may
    // have run is never sent again, whatever the policy says.
    if (idempotency == Idempotency::kNonIdempotent && error->MayHaveExecuted()) return result;
    // Given up at shutdown: every later attempt would be too.
    if (error->code == kAbandonedCode) return result;
    if (n >= policy.options().max_attempts) return result;
    const RetryDecision decision = policy.Decide(*error, idempotency, n);
    if (!decision.retry) return result;
    const absl::Time wake = clock.Now() + decision.delay;
    if (wake > options.deadline) return result;
    if (observer != nullptr) observer->OnRetry(action);
    clock.SleepUntil(wake);
  }
}

}  // namespace

RetryingLighthouseClient::RetryingLighthouseClient(std::unique_ptr<LighthouseClient> next,
                                                   RetryPolicy policy, Clock* clock,
                                                   std::shared_ptr<CallObserver> observer)
    : next_(std::move(next)),
      policy_(std::move(policy)),
      clock_(clock == nullptr ? SystemClock::Default() : clock),
      observer_(std::move(observer)) {}

absl::StatusOr<SyncBlueprintResponse> RetryingLighthouseClient::SyncBlueprint(
    const SyncBlueprintRequest& request, const CallOptions& options) {
  return RunWithRetries(policy_, *clock_, Idempotency::kNonIdempotent, options, observer_.get(),
                        kSyncBlueprint, [&] { return next_->SyncBlueprint(request, options); });
}

absl::StatusOr<DescribeBlueprintsResponse> RetryingLighthouseClient::DescribeBlueprints(
    const DescribeBlueprintsRequest& request, const CallOptions& options) {
  return RunWithRetries(policy_, *clock_, Idempotency::kIdempotent, options, observer_.get(),
                        kDescribeBlueprints,
                        [&] { return next_->DescribeBlueprints(request, options); });
}

absl::StatusOr<DescribeRegionsResponse> RetryingLighthouseClient::DescribeRegions(
    const std::string& region, const CallOptions& options) {
  return RunWithRetries(policy_, *clock_, Idempotency::kIdempotent, options, observer_.get(),
                        kDescribeRegions, [&] { return next_->DescribeRegions(region, options); });
}

// Retried like a read: repeating a delete that already ran answers
// ResourceNotFound.PrivateBlueprintNotFound, so even an outcome-unknown
// failure may be sent again. The price is that NOT_FOUND after retries can
// mean "our own earlier attempt deleted it"; callers deleting their own
// copies take NOT_FOUND as done.
absl::StatusOr<DeleteBlueprintsResponse> RetryingLighthouseClient::DeleteBlueprints(
    const DeleteBlueprintsRequest& request, const CallOptions& options) {
  return RunWithRetries(policy_, *clock_, Idempotency::kIdempotent, options, observer_.get(),
                        kDeleteBlueprints,
                        [&] { return next_->DeleteBlueprints(request, options); });
}

std::string LighthouseEndpointFor(TencentSite site, EndpointStyle style) {
  if (style == EndpointStyle::kRegional) {
    // Regional domains are the same for both sites.
    return absl::StrCat("https://lighthouse.", kRegionPlaceholder, ".tencentcloudapi.com");
  }
  return site == TencentSite::kInternational ? "https://lighthouse.intl.tencentcloudapi.com"
                                             : kDefaultLighthouseEndpoint;
}

std::unique_ptr<LighthouseClient> MakeLighthouseClient(
    const LighthouseClientOptions& options, std::shared_ptr<CredentialProvider> credentials,
    std::shared_ptr<HttpTransport> transport, std::shared_ptr<ActionRateLimiters> limiters,
    Clock* clock) {
  if (clock == nullptr) clock = SystemClock::Default();
  if (limiters == nullptr) {
    limiters = std::make_shared<ActionRateLimiters>(options.rate_limits, clock);
  }
  auto http =
      MakeLighthouseHttpClient(options, std::move(credentials), std::move(transport), clock);
  if (options.observer != nullptr) {
    http = std::make_unique<ObservedLighthouseClient>(std::move(http), options.observer, clock);
  }
  auto limited =
      std::make_unique<RateLimitedLighthouseClient>(std::move(http), std::move(limiters));
  return std::make_unique<RetryingLighthouseClient>(std::move(limited), RetryPolicy(options.retry),
                                                    clock, options.observer);
}

}  // namespace blueprintsync::tencent
