// The caching and refreshing half shared by every credential provider whose
// triple expires (STS AssumeRole, TKE OIDC, the CVM role): when to fetch a new
// triple, what concurrent callers get meanwhile, and the refresh-failure count
// the metrics read. The providers themselves only say how to fetch one.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_REFRESHING_CREDENTIAL_PROVIDER_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_REFRESHING_CREDENTIAL_PROVIDER_H_

#include <cstdint>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/tencent/credentials.h"

namespace blueprintsync::tencent {

struct RefreshOptions {
  Clock* clock = nullptr;  // nullptr = SystemClock::Default()
  // A triple is refreshed once less than max(min_margin, lifetime *
  // margin_fraction) of it is left, but never in the first half of its
  // lifetime (so a short-lived triple is not refetched on every call). Five
  // minutes matches the server's 300 s timestamp window and the Go/Python
  // SDKs' CVM rule; 10 % of the lifetime is the SDKs' STS rule.
  absl::Duration min_margin = absl::Minutes(5);
  double margin_fraction = 0.1;
  // After a failed refresh, a still valid triple is served for this long
  // before the next attempt, so a failing STS is not called on every request.
  absl::Duration failure_backoff = absl::Seconds(10);
};

// Base of the providers whose triple expires. Subclasses implement Fetch();
// this class decides when to call it and what callers get meanwhile:
//   - fresh cached triple: returned without I/O;
//   - inside the refresh margin: one caller refreshes, the others keep getting
//     the cached triple; if the refresh fails the cached triple is kept, a
//     warning is logged, refresh_failures() grows and the next attempt comes
//     after failure_backoff (or at expiry, if sooner);
//   - expired or no triple: callers wait for the one refresh in flight and
//     share its outcome.
// The triple is replaced as one value, so no caller ever sees a mix.
class RefreshingCredentialProvider : public CredentialProvider {
 public:
  explicit RefreshingCredentialProvider(RefreshOptions options);

  absl::StatusOr<Credentials> GetCredentials() final;

  // For metrics: failed refreshes so far, and the error of the most recent
  // refresh attempt (OK once a refresh succeeds). Messages carry no secrets.
  int64_t refresh_failures() const;
  absl::Status last_refresh_error() const;

 protected:
  // One attempt to obtain a new triple (with a finite expiry). NotFound means
  // "not configured here" and is passed on untouched before the first success.
  virtual absl::StatusOr<Credentials> Fetch() = 0;
  // Static configuration problems (NotFound: not configured; others: broken
  // configuration). Returned as is, before any refresh logic: they are not
  // refresh failures and are not logged.
  virtual absl::Status Configured() const { return absl::OkStatus(); }
  Clock* clock() const { return clock_; }

 private:
  absl::Time RefreshAt(const Credentials& c, absl::Time fetched) const;

  const RefreshOptions options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  std::optional<Credentials> current_ ABSL_GUARDED_BY(mu_);
  absl::Time refresh_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool refreshing_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t attempts_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_attempt_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  int64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_REFRESHING_CREDENTIAL_PROVIDER_H_
