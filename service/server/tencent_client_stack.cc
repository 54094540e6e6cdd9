#include "service/server/tencent_client_stack.h"

#include <utility>

#include "service/common/log.h"
#include "service/tencent/http_transport.h"

namespace blueprintsync::server {

TencentClientStack MakeTencentClientStack(const ServerConfig& config,
                                          std::shared_ptr<tencent::CallObserver> observer) {
  TencentClientStack stack;
  stack.credentials = tencent::MakeDefaultCredentialChain();
  if (auto c = stack.credentials->GetCredentials(); !c.ok()) {
    log::Warn("no usable Tencent Cloud credentials yet; submissions will fail until there are",
              {{"error", c.status().message()}});
  } else {
    log::Info("Tencent Cloud credentials found",
              {{"secret_id", tencent::MaskSecretId(c->secret_id)}});
  }
  tencent::CurlTransportOptions http;
  http.total_timeout = config.http_timeout;
  http.connect_timeout = config.connect_timeout;
  http.ca_file = config.ca_file;
  http.ca_path = config.ca_path;
  tencent::LighthouseClientOptions client_options;
  client_options.endpoint = config.lighthouse_endpoint;
  client_options.rate_limits.sync_blueprint_per_second = config.sync_rate;
  client_options.rate_limits.describe_blueprints_per_second = config.describe_rate;
  client_options.observer = std::move(observer);
  stack.client = tencent::MakeLighthouseClient(client_options, stack.credentials,
                                               tencent::MakeCurlTransport(http));
  return stack;
}

}  // namespace blueprintsync::server
