#include "service/server/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "service/server/access_log.h"
#include "service/server/client_gone.h"
#include "service/server/tls_config.h"

namespace blueprintsync::server {
namespace {

int Millis(absl::Duration d) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d), INT32_MAX));
}

// What one client may hold and what all of them may together
// (GrpcLimits; README "Abuse limits").
void ApplyLimits(const GrpcLimits& limits, grpc::ServerBuilder& builder) {
  // Without it gRPC advertises no limit: one connection could open as many
  // calls as it likes, each with its buffers.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams);
  if (limits.max_connection_idle > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, Millis(limits.max_connection_idle));
  }
  // An old connection gets GOAWAY and reconnects; a watch on it ends with
  // UNAVAILABLE after the grace, which the CLI's watch resumes from.
  if (limits.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Millis(limits.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               Millis(limits.max_connection_age_grace));
  }
  // Pings from the server find dead peers (a watch's client that vanished);
  // clients may ping at most every 30 s, twice too often and they are
  // disconnected (ping floods cost the server a frame each).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 30 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  grpc::ResourceQuota quota("blueprint-syncd");
  quota.Resize(static_cast<size_t>(limits.grpc_memory_bytes));
  builder.SetResourceQuota(quota);
}

}  // namespace

absl::StatusOr<RunningGrpcServer> StartGrpcServer(const ServerConfig& config,
                                                  grpc::Service* service,
                                                  metrics::Metrics* metrics) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  RunningGrpcServer running;
  builder.AddListeningPort(config.listen, MakeServerCredentials(config.tls), &running.port);
  builder.SetMaxReceiveMessageSize(config.max_message_bytes);
  // gRPC sets SO_REUSEPORT by default, which would let a second server (and
  // a second writer of the same job store) silently share the port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  ApplyLimits(config.grpc_limits, builder);
  builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  // First: the ones after it see the status it corrects.
  interceptors.push_back(MakeClientGoneFactory());
  interceptors.push_back(MakeAccessLogFactory());
  interceptors.push_back(metrics::MakeGrpcServerMetricsFactory(
      metrics, metrics::GrpcMethodsOf({"blueprintsync.v1.BlueprintSync", "grpc.health.v1.Health",
                                       "grpc.reflection.v1alpha.ServerReflection"})));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  running.server = builder.BuildAndStart();
  if (running.server == nullptr || running.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen));
  }
  return running;
}

}  // namespace blueprintsync::server
