#include "client/rpc_error.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "client/printable.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace blueprintsync::cli {
namespace {

constexpr char kDomain[] = "blueprintsync.v1";

bool MeansNotReached(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // gRPC and absl share the google.rpc.Code numbering.
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (!status.error_details().empty()) {
    out.SetPayload(kRpcStatusPayloadUrl, absl::Cord(status.error_details()));
  }
  return out;
}

RpcErrorDetails GetRpcErrorDetails(const absl::Status& status) {
  RpcErrorDetails details;
  auto payload = status.GetPayload(kRpcStatusPayloadUrl);
  if (!payload.has_value()) return details;
  google::rpc::Status rich;
  if (!rich.ParseFromString(std::string(*payload))) return details;
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&info)) {
      // Metadata keys mean what we think only in our own domain.
      if (info.domain() != kDomain) continue;
      details.reason = info.reason();
      details.domain = info.domain();
      const auto& md = info.metadata();
      if (auto it = md.find("tencent_code"); it != md.end()) details.tencent_code = it->second;
      if (auto it = md.find("tencent_request_id"); it != md.end()) {
        details.tencent_request_id = it->second;
      }
      if (auto it = md.find("action"); it != md.end()) details.action = it->second;
      if (auto it = md.find("field"); it != md.end()) details.field = it->second;
    } else if (any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) {
        details.field_violations.emplace_back(v.field(), v.description());
      }
    }
  }
  return details;
}

std::string CodeLabel(int code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  if (name.empty()) name = absl::StrCat("CODE ", code);
  return absl::StrCat(name, " (", code, ")");
}

std::string FormatRpcError(const absl::Status& status, const std::string& server) {
  std::string out = absl::StrCat("error: ", CodeLabel(static_cast<int>(status.code())), ": ",
                                 Printable(status.message()), "\n");
  const RpcErrorDetails d = GetRpcErrorDetails(status);
  if (!d.tencent_code.empty())
    absl::StrAppend(&out, "  tencent code: ", Printable(d.tencent_code), "\n");
  if (!d.action.empty()) absl::StrAppend(&out, "  tencent action: ", Printable(d.action), "\n");
  if (!d.tencent_request_id.empty()) {
    absl::StrAppend(&out, "  tencent request id: ", Printable(d.tencent_request_id), "\n");
  }
  bool field_listed = false;
  for (const auto& [field, description] : d.field_violations) {
    absl::StrAppend(&out, "  field ", Printable(field), ": ", Printable(description), "\n");
    if (field == d.field) field_listed = true;
  }
  if (!d.field.empty() && !field_listed)
    absl::StrAppend(&out, "  field ", Printable(d.field), "\n");
  if (!server.empty() && MeansNotReached(status.code()) && d.domain.empty()) {
    absl::StrAppend(&out, "  server: ", Printable(server, 256),
                    " (set with --server or BLUEPRINT_SYNC_SERVER)\n");
  }
  return out;
}

std::string FormatSyncError(const blueprintsync::v1::SyncError& error) {
  std::string out = absl::StrCat(CodeLabel(error.code()), ": ", Printable(error.message()));
  if (!error.tencent_code().empty() || !error.tencent_request_id().empty()) {
    out += " (";
    if (!error.tencent_code().empty()) {
      absl::StrAppend(&out, "tencent code ", Printable(error.tencent_code()));
    }
    if (!error.tencent_request_id().empty()) {
      absl::StrAppend(&out, error.tencent_code().empty() ? "" : ", ", "request id ",
                      Printable(error.tencent_request_id()));
    }
    out += ")";
  }
  return out;
}

}  // namespace blueprintsync::cli
