// Access log: one JSON log line per finished RPC with the gRPC method, code
// and duration (field names after go-grpc-middleware's logging interceptor),
// the caller (its verified identity as jobs record it, else its address),
// the peer's address (peer.address, also with a verified identity),
// and for BlueprintSync the request_id and the job the call is about (the
// answered job, else the one its error names, else the requested one; a
// retry adds retry_of), or the policy (the one the request names). A gRPC
// server interceptor, so handlers do not log their own calls. Health checks
// (kubelet probes every few seconds), reflection and successful reads are
// logged at debug level; changes (SyncBlueprint, CancelSyncJob,
// RetrySyncJob, DeleteSyncJob, Create/Update/DeleteSyncPolicy) and every
// error at info or above. Calls whose client went away (CANCELLED,
// DEADLINE_EXCEEDED) are logged one by one up to 10 a second; beyond that
// they are counted into one summary line per second, so a flood of reset
// streams cannot flood the log.
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
