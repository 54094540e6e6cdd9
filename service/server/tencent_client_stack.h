// The Tencent Cloud side of blueprint-syncd: the default credential chain,
// the libcurl transport with the upstream timeouts and CA settings, and the
// Lighthouse client with its rate limits, retries and metrics observer
// (the decorator stack of service/tencent/lighthouse_client.h).
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_TENCENT_CLIENT_STACK_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_TENCENT_CLIENT_STACK_H_

#include <memory>

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

// Never fails: missing credentials are logged (the secret id masked) and
// only fail submissions, since they may appear later (a mounted file, a
// role bound after start-up).
TencentClientStack MakeTencentClientStack(const ServerConfig& config,
                                          std::shared_ptr<tencent::CallObserver> observer);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_TENCENT_CLIENT_STACK_H_
