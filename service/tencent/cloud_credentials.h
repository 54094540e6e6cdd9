// Credential providers for workloads running inside Tencent Cloud, where no
// long-term key should be deployed at all:
//
//   TkeOidcCredentialProvider      TKE workload identity: the pod's projected
//                                  service-account token is exchanged with STS
//                                  AssumeRoleWithWebIdentity (unsigned call).
//   CvmRoleCredentialProvider      the CAM role bound to a CVM/Lighthouse
//                                  instance, read from the metadata service.
//   AssumeRoleCredentialProvider   STS AssumeRole signed with another
//                                  provider's key (TENCENTCLOUD_ROLE_ARN).
//
// All three hand out temporary triples that expire, so they share
// RefreshingCredentialProvider: it caches the triple, refreshes it well before
// expiry, lets only one caller refresh at a time, and keeps serving a still
// valid triple when a refresh fails (counting the failure for metrics).
//
// Configuration comes from the environment (read once, at construction,
// through an injectable getenv so tests never mutate the real environment):
//   TKE_REGION, TKE_PROVIDER_ID, TKE_ROLE_ARN, TKE_WEB_IDENTITY_TOKEN_FILE
//       TKE OIDC; injected by TKE's pod-identity-webhook. All four or none.
//   TENCENTCLOUD_ROLE_ARN, TENCENTCLOUD_ROLE_SESSION_NAME, TENCENTCLOUD_REGION
//       STS AssumeRole (region default ap-guangzhou).
//   TENCENTCLOUD_STS_ENDPOINT
//       STS base URL, default https://sts.tencentcloudapi.com ("http://127.0.0.1:PORT"
//       for the emulator; the signing service name stays "sts").
//   TENCENTCLOUD_CVM_ROLE
//       CAM role name; when unset it is discovered from the metadata service.
//   TENCENTCLOUD_METADATA_ENDPOINT
//       Base URL of the role credentials directory, default
//       http://metadata.tencentyun.com/latest/meta-data/cam/security-credentials/
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"

namespace blueprintsync::tencent {

class TencentApiCaller;  // api_call.h

inline constexpr char kStsService[] = "sts";
inline constexpr char kStsVersion[] = "2018-08-13";
inline constexpr char kDefaultStsEndpoint[] = "https://sts.tencentcloudapi.com";
inline constexpr char kDefaultStsRegion[] = "ap-guangzhou";
inline constexpr char kDefaultMetadataEndpoint[] =
    "http://metadata.tencentyun.com/latest/meta-data/cam/security-credentials/";

inline constexpr char kEnvTkeRegion[] = "TKE_REGION";
inline constexpr char kEnvTkeProviderId[] = "TKE_PROVIDER_ID";
inline constexpr char kEnvTkeRoleArn[] = "TKE_ROLE_ARN";
inline constexpr char kEnvTkeTokenFile[] = "TKE_WEB_IDENTITY_TOKEN_FILE";
inline constexpr char kEnvRoleArn[] = "TENCENTCLOUD_ROLE_ARN";
inline constexpr char kEnvRoleSessionName[] = "TENCENTCLOUD_ROLE_SESSION_NAME";
inline constexpr char kEnvRegion[] = "TENCENTCLOUD_REGION";
inline constexpr char kEnvStsEndpoint[] = "TENCENTCLOUD_STS_ENDPOINT";
inline constexpr char kEnvCvmRole[] = "TENCENTCLOUD_CVM_ROLE";
inline constexpr char kEnvMetadataEndpoint[] = "TENCENTCLOUD_METADATA_ENDPOINT";

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

// Shared by the STS-based providers.
struct StsOptions {
  std::shared_ptr<HttpTransport> transport;  // nullptr = MakeCurlTransport()
  EnvCredentialProvider::Getenv getenv;      // nullptr = ::getenv
  RefreshOptions refresh;
  // DurationSeconds asked for; STS accepts 1 s .. 12 h.
  absl::Duration duration = absl::Hours(2);
  absl::Duration timeout = absl::Seconds(10);  // per STS call
};

// TKE workload identity. Not configured (none of the four TKE_* variables
// set): NotFound. Some but not all set: FailedPrecondition naming the missing
// ones. The token file is re-read on every refresh: the kubelet rotates it.
class TkeOidcCredentialProvider final : public RefreshingCredentialProvider {
 public:
  explicit TkeOidcCredentialProvider(StsOptions options = {});
  std::string Name() const override { return "TKE OIDC"; }

 private:
  absl::StatusOr<Credentials> Fetch() override;
  absl::Status Configured() const override { return config_; }

  const StsOptions options_;
  absl::Status config_;  // NotFound / FailedPrecondition when unusable
  std::string region_;
  std::string provider_id_;
  std::string role_arn_;
  std::string token_file_;
  std::shared_ptr<TencentApiCaller> caller_;  // set when config_ is OK
};

// STS AssumeRole signed with `source`'s triple (a long-term key, or a
// temporary one whose token is sent along). Role ARN and session name come
// from the arguments, else from TENCENTCLOUD_ROLE_ARN /
// TENCENTCLOUD_ROLE_SESSION_NAME; no role ARN at all is NotFound.
class AssumeRoleCredentialProvider final : public RefreshingCredentialProvider {
 public:
  AssumeRoleCredentialProvider(std::shared_ptr<CredentialProvider> source, StsOptions options = {},
                               std::string role_arn = "", std::string session_name = "");
  std::string Name() const override;
  const std::shared_ptr<CredentialProvider>& source() const { return source_; }

 private:
  absl::StatusOr<Credentials> Fetch() override;
  absl::Status Configured() const override;

  const std::shared_ptr<CredentialProvider> source_;
  const StsOptions options_;
  std::string role_arn_;
  std::string session_name_;  // empty = "blueprint-sync-<micros>" per call
  std::string region_;
  std::string endpoint_;
  std::shared_ptr<TencentApiCaller> caller_;  // null when endpoint_ is unusable
};

struct CvmRoleOptions {
  std::shared_ptr<HttpGetter> getter;    // nullptr = MakeCurlGetter()
  EnvCredentialProvider::Getenv getenv;  // nullptr = ::getenv
  RefreshOptions refresh;
  // Short: off Tencent Cloud the metadata host does not answer at all, and
  // every chain lookup that reaches this provider pays these.
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(2);
};

// CAM role of this CVM/Lighthouse instance. Role discovery that finds no
// metadata service (connection refused, DNS failure, timeout) or no role
// (HTTP 404) is NotFound so the chain moves on; with TENCENTCLOUD_CVM_ROLE set
// every failure is an error.
class CvmRoleCredentialProvider final : public RefreshingCredentialProvider {
 public:
  explicit CvmRoleCredentialProvider(CvmRoleOptions options = {});
  std::string Name() const override { return "CVM role"; }

 private:
  absl::StatusOr<Credentials> Fetch() override;
  absl::StatusOr<std::string> DiscoverRole();

  const CvmRoleOptions options_;
  const std::shared_ptr<HttpGetter> getter_;
  std::string base_;  // ends with '/'
  const bool role_from_env_;
  absl::Mutex role_mu_;
  std::string role_ ABSL_GUARDED_BY(role_mu_);
};

struct CloudChainOptions {
  EnvCredentialProvider::Getenv getenv;      // nullptr = ::getenv
  std::shared_ptr<HttpTransport> transport;  // nullptr = MakeCurlTransport()
  std::shared_ptr<HttpGetter> getter;        // nullptr = MakeCurlGetter()
  Clock* clock = nullptr;                    // nullptr = SystemClock::Default()
};

// Sum of refresh_failures() over every refreshing provider inside `provider`
// (itself, a chain's members, an AssumeRole provider's source), for the
// blueprintsync_credential_refresh_failures_total metric. Thread-safe.
int64_t CredentialRefreshFailures(const CredentialProvider& provider);

// The chain behind MakeDefaultCredentialChain() (order documented there),
// with every dependency injectable.
std::shared_ptr<CredentialProvider> MakeCloudCredentialChain(CloudChainOptions options);

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_H_
