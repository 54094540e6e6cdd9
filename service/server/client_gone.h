// Calls whose client went away before the handler could answer: a gRPC
// server interceptor that makes the status every later interceptor (access
// log, metrics) sees say so.
//
// Why: when a unary or server-streaming call is reset (RST_STREAM) or hits
// its deadline before its request message arrived, gRPC 1.51's callback
// server cannot deserialize a request and answers the call itself with a
// bare UNIMPLEMENTED; a "rapid reset" flood would then be counted and
// logged as thousands of UNIMPLEMENTED calls. Such a call, and any call the
// server context reports cancelled when its status is sent, is recorded as
// DEADLINE_EXCEEDED when its deadline has passed, else CANCELLED. (The
// missing request is the only sign: for such calls IsCancelled() and
// grpc_call_failed_before_recv_message() were measured false when their
// status is sent.) A request that arrived but does not parse looks exactly
// the same here, so it is answered CANCELLED too, with a message that names
// the request type it should have been: counting a flood of resets as
// client errors would be the worse lie, and a client that sends unparsable
// bytes is rare and still told what went wrong. Must come before the access
// log and the metrics interceptors.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_CLIENT_GONE_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_CLIENT_GONE_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

namespace blueprintsync::server {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeClientGoneFactory();

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_CLIENT_GONE_H_
