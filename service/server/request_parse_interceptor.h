// A request the server cannot parse is the caller's mistake, and the caller
// should be told which message it got wrong. gRPC 1.51's callback handlers
// answer a request that fails to deserialize with UNIMPLEMENTED and an empty
// message (server_callback_handlers.h), which reads as "this server has no
// such method" and sends callers and operators the wrong way. This
// interceptor notices the failed parse (the received message is null after
// POST_RECV_MESSAGE) and rewrites that status to INVALID_ARGUMENT naming the
// request type. A call reset before its request arrived (a "rapid reset"
// flood) looks the same at that point except to gRPC core, which says its
// receive failed: those are left UNIMPLEMENTED for the client-gone
// interceptor (client_gone.h), which comes next, to record as CANCELLED.
// Register it first, so that the access log and the metrics see the
// corrected status.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_REQUEST_PARSE_INTERCEPTOR_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_REQUEST_PARSE_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace blueprintsync::server {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRequestParseInterceptorFactory();

// What a caller is told for an unparsable request to `method` (a gRPC path,
// "/pkg.Service/Method"): names the request type when the method is known.
std::string UnparsableRequestMessage(absl::string_view method);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_REQUEST_PARSE_INTERCEPTOR_H_
