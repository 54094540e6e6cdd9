#include "service/server/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "service/server/access_log.h"
#include "service/server/request_parse_interceptor.h"
#include "service/server/tls_config.h"

namespace blueprintsync::server {

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
  builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  // First: the statuses it corrects are what the log and metrics record.
  interceptors.push_back(MakeRequestParseInterceptorFactory());
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
