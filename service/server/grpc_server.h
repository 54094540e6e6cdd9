// The main gRPC port of blueprint-syncd: the given service plus gRPC's
// health service and server reflection, behind (m)TLS when configured, with
// the access log and metrics interceptors and the request size limit.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_GRPC_SERVER_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/statusor.h"
#include "service/metrics/metrics.h"
#include "service/server/server_config.h"

namespace blueprintsync::server {

struct RunningGrpcServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the port bound (--listen may ask for port 0)
};

// Builds and starts the server on config.listen. `service` and `metrics`
// are not owned and must outlive the server. UNAVAILABLE naming the address
// when it cannot be bound.
absl::StatusOr<RunningGrpcServer> StartGrpcServer(const ServerConfig& config,
                                                  grpc::Service* service,
                                                  metrics::Metrics* metrics);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_GRPC_SERVER_H_
