#include "service/server/tencent_client_stack.h"

#include <utility>

#include "service/common/log.h"
#include "service/tencent/cloud_credentials.h"
#include "service/tencent/http_transport.h"

namespace blueprintsync::server {

absl::StatusOr<TencentClientStack> MakeTencentClientStack(
    const ServerConfig& config, std::shared_ptr<tencent::CallObserver> observer) {
  TencentClientStack stack;
  tencent::CloudChainOptions chain;
  chain.profile = config.tencent_profile;
  absl::StatusOr<std::shared_ptr<tencent::CredentialProvider>> credentials =
      tencent::MakeServiceCredentials(std::move(chain));
  if (!credentials.ok()) return credentials.status();
  stack.credentials = *std::move(credentials);
  // Found: the provider logs the source itself ("Tencent Cloud credential source").
  if (auto c = stack.credentials->GetCredentials(); !c.ok()) {
    log::Warn("no usable Tencent Cloud credentials yet; submissions will fail until there are",
              {{"error", c.status().message()}});
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
