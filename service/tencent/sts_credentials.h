// Credential providers that get a temporary triple from Tencent Cloud STS
// over the shared signed-request path (api_call.h):
//
//   TkeOidcCredentialProvider      TKE workload identity: the pod's projected
//                                  service-account token is exchanged with STS
//                                  AssumeRoleWithWebIdentity (unsigned call).
//   AssumeRoleCredentialProvider   STS AssumeRole signed with another
//                                  provider's key (TENCENTCLOUD_ROLE_ARN).
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
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_STS_CREDENTIALS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_STS_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/refreshing_credential_provider.h"

namespace blueprintsync::tencent {

class TencentApiCaller;  // api_call.h

inline constexpr char kStsService[] = "sts";
inline constexpr char kStsVersion[] = "2018-08-13";
inline constexpr char kDefaultStsEndpoint[] = "https://sts.tencentcloudapi.com";
inline constexpr char kDefaultStsRegion[] = "ap-guangzhou";

inline constexpr char kEnvTkeRegion[] = "TKE_REGION";
inline constexpr char kEnvTkeProviderId[] = "TKE_PROVIDER_ID";
inline constexpr char kEnvTkeRoleArn[] = "TKE_ROLE_ARN";
inline constexpr char kEnvTkeTokenFile[] = "TKE_WEB_IDENTITY_TOKEN_FILE";
inline constexpr char kEnvRoleArn[] = "TENCENTCLOUD_ROLE_ARN";
inline constexpr char kEnvRoleSessionName[] = "TENCENTCLOUD_ROLE_SESSION_NAME";
inline constexpr char kEnvRegion[] = "TENCENTCLOUD_REGION";
inline constexpr char kEnvStsEndpoint[] = "TENCENTCLOUD_STS_ENDPOINT";

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
  // The role ARN is not a secret (it names the role, not a key).
  std::string Source() const override { return "TKE OIDC role " + role_arn_; }

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
  std::string Source() const override;
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

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_STS_CREDENTIALS_H_
