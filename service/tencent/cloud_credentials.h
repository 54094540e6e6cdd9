// Credential providers for workloads running inside Tencent Cloud, where no
// long-term key should be deployed at all, and the chain that puts them after
// the explicit-key providers of credentials.h. Callers include this header;
// each provider lives in its own unit:
//
//   TkeOidcCredentialProvider      sts_credentials.h: TKE workload identity
//                                  (STS AssumeRoleWithWebIdentity).
//   CvmRoleCredentialProvider      cvm_role_credentials.h: the CAM role bound
//                                  to a CVM/Lighthouse instance.
//   AssumeRoleCredentialProvider   sts_credentials.h: STS AssumeRole signed
//                                  with another provider's key.
//
// All three hand out temporary triples that expire, so they share
// RefreshingCredentialProvider (refreshing_credential_provider.h): it caches
// the triple, refreshes it well before expiry, lets only one caller refresh at
// a time, and keeps serving a still valid triple when a refresh fails
// (counting the failure for metrics). Each provider's header lists the
// environment variables it reads.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "service/common/clock.h"
#include "service/tencent/credentials.h"
#include "service/tencent/cvm_role_credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/refreshing_credential_provider.h"
#include "service/tencent/sts_credentials.h"

namespace blueprintsync::tencent {

struct CloudChainOptions {
  EnvCredentialProvider::Getenv getenv;      // nullptr = ::getenv
  std::shared_ptr<HttpTransport> transport;  // nullptr = MakeCurlTransport()
  std::shared_ptr<HttpGetter> getter;        // nullptr = MakeCurlGetter()
  Clock* clock = nullptr;                    // nullptr = SystemClock::Default()
  // A profile named by the operator (--tencent-profile, TENCENTCLOUD_PROFILE);
  // empty: none (MakeServiceCredentials).
  std::string profile = {};
};

// Sum of refresh_failures() over every refreshing provider inside `provider`
// (itself, a chain's members, an AssumeRole provider's source), for the
// blueprintsync_credential_refresh_failures_total metric. Thread-safe.
int64_t CredentialRefreshFailures(const CredentialProvider& provider);

// The chain behind MakeDefaultCredentialChain() (order documented there),
// with every dependency injectable.
std::shared_ptr<CredentialProvider> MakeCloudCredentialChain(CloudChainOptions options);

// What blueprint-syncd signs with. No profile named: MakeCloudCredentialChain.
// A profile named: that profile alone (MakeNamedProfileProvider), as tccli
// does with --profile, under STS AssumeRole when TENCENTCLOUD_ROLE_ARN is
// set; a profile that is missing or unusable (no keys) is the error, naming
// the profile and its file, so the server does not start on another
// identity than the one asked for. Either way wrapped in
// SourceLoggingCredentialProvider.
absl::StatusOr<std::shared_ptr<CredentialProvider>> MakeServiceCredentials(
    CloudChainOptions options);

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_H_
