// The Tencent Cloud side of blueprint-syncd: the default credential chain,
// the libcurl transport with the upstream timeouts and CA settings, and the
// Lighthouse client with its rate limits, retries and metrics observer
// (the decorator stack of service/tencent/lighthouse_client.h).
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_TENCENT_CLIENT_STACK_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_TENCENT_CLIENT_STACK_H_

#include <memory>

#include "absl/status/statusor.h"
#include "service/server/server_config.h"
#include "service/tencent/call_observer.h"
#include "service/tencent/credentials.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::server {

struct TencentClientStack {
  // Shared with the metrics, which report its refresh failures.
  std::shared_ptr<tencent::CredentialProvider> credentials;
  std::unique_ptr<tencent::LighthouseClient> client;
};

// Fails only for a credential profile that was named (--tencent-profile,
// TENCENTCLOUD_PROFILE) and is missing or unusable: the error names the
// profile and its file. Otherwise missing credentials are logged and only
// fail submissions, since they may appear later (a mounted file, a role
// bound after start-up). Where the credentials come from is logged when
// they are first found and whenever that changes (the SecretId masked).
absl::StatusOr<TencentClientStack> MakeTencentClientStack(
    const ServerConfig& config, std::shared_ptr<tencent::CallObserver> observer);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_TENCENT_CLIENT_STACK_H_
