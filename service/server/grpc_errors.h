// Turns the service's absl::Status values into gRPC statuses with rich
// details (google.rpc.Status in grpc-status-details-bin): one ErrorInfo
// (reason, domain "blueprintsync.v1", metadata with tencent_code,
// tencent_request_id, job, field), and a BadRequest listing field violations
// for INVALID_ARGUMENT. The status code is the one chosen upstream of here:
// the Tencent-code mapping in service/tencent/api_error.cc. The reason is the
// field rule, the upstream kind, or the one attached where the error was made
// (service/common/error_reason.h); only without any of these the code's name.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_GRPC_ERRORS_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_GRPC_ERRORS_H_

#include <grpcpp/support/status.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "service/tencent/regions.h"

namespace blueprintsync::server {

inline constexpr char kErrorDomain[] = "blueprintsync.v1";

grpc::Status ToGrpcStatus(const absl::Status& status);

// INVALID_ARGUMENT listing every violation, in the message and as BadRequest.
grpc::Status ValidationError(const std::vector<tencent::FieldViolation>& violations);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_GRPC_ERRORS_H_
