// Access log: one JSON log line per finished RPC with the gRPC method, code
// and duration (field names after go-grpc-middleware's logging interceptor).
// A gRPC server interceptor, so handlers do not log their own calls. Health
// checks (kubelet probes every few seconds), reflection and successful reads
// are logged at debug level; SyncBlueprint and every error at info or above.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_ACCESS_LOG_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_ACCESS_LOG_H_

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

namespace blueprintsync::server {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAccessLogFactory();

// "OK", "INVALID_ARGUMENT", ... (the canonical upper-case spelling).
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_ACCESS_LOG_H_
