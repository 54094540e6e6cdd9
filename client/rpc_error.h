// Errors from the blueprint-sync service, as the CLI keeps and prints them.
// The server puts a serialized google.rpc.Status in the gRPC status details
// (one ErrorInfo with domain "blueprintsync.v1" and metadata tencent_code,
// tencent_request_id, action, field; a BadRequest for INVALID_ARGUMENT).
// FromGrpcStatus() keeps those bytes as an absl::Status payload so the rest
// of the CLI can stay on absl::Status; FormatRpcError() turns them into the
// lines users see on stderr.
#ifndef BLUEPRINTSYNC_CLIENT_RPC_ERROR_H_
#define BLUEPRINTSYNC_CLIENT_RPC_ERROR_H_

#include <grpcpp/support/status.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"

namespace blueprintsync::cli {

// Payload URL under which the serialized google.rpc.Status is kept.
inline constexpr char kRpcStatusPayloadUrl[] = "type.googleapis.com/google.rpc.Status";

absl::Status FromGrpcStatus(const grpc::Status& status);

// What the details say, for whoever needs more than the printed text.
struct RpcErrorDetails {
  std::string reason;
  std::string domain;
  std::string tencent_code;
  std::string tencent_request_id;
  std::string action;
  std::string field;                                                  // ErrorInfo metadata "field"
  std::vector<std::pair<std::string, std::string>> field_violations;  // field, description
};
// Empty details when there is no payload or it does not parse.
RpcErrorDetails GetRpcErrorDetails(const absl::Status& status);

// "INVALID_ARGUMENT (3)"; "CODE 42 (42)" for codes gRPC does not define.
std::string CodeLabel(int code);

// "error: INVALID_ARGUMENT (3): message\n" followed, when present, by
// "  tencent code: ...", "  tencent action: ...", "  tencent request id: ...",
// "  field <f>: <description>" lines. Every line ends with '\n'. `server` is
// named in a hint for errors that mean the service was not reached.
std::string FormatRpcError(const absl::Status& status, const std::string& server = "");

// One line (no '\n') for an error kept on a job or destination:
// "FAILED_PRECONDITION (9): message (tencent code X, request id Y)".
std::string FormatSyncError(const blueprintsync::v1::SyncError& error);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_RPC_ERROR_H_
