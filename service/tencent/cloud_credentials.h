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
