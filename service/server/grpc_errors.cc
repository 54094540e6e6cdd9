#include "service/server/grpc_errors.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/common/error_reason.h"
#include "service/jobs/job_state.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::server {
namespace {

// Which request field a Tencent parameter error is about.
std::string FieldForTencentCode(const std::string& code) {
  if (code == "InvalidParameterValue.BlueprintIdMalformed" ||
      code == "ResourceNotFound.PrivateBlueprintNotFound") {
    return "blueprint_id";
  }
  if (code == "UnsupportedRegion") return "source_region";
  if (code.rfind("InvalidParameterValue.", 0) == 0) return "destination_regions";
  return "";
}

// The reason of an error made without a specific one (WithReason): the
// code's name, so INTERNAL means an internal error and nothing else. An
// UNKNOWN the service makes is an ambiguous submission it could not settle.
std::string ReasonForCode(absl::StatusCode code) {
  if (code == absl::StatusCode::kUnknown) return "NEEDS_ATTENTION";
  return absl::StatusCodeToString(code);
}

// ErrorInfo metadata `field`: the violated fields as BadRequest names them
// ("destination_regions[2]"), each once, in order, comma-separated. Bounded:
// validation stops at a few dozen short names, and the trailer has 8 KiB.
std::string FieldList(const std::vector<tencent::FieldViolation>& violations) {
  constexpr size_t kMaxBytes = 256;
  std::vector<absl::string_view> fields;
  size_t bytes = 0;
  for (const auto& v : violations) {
    if (std::find(fields.begin(), fields.end(), v.field) != fields.end()) continue;
    if (bytes + v.field.size() + 1 > kMaxBytes) break;
    bytes += v.field.size() + 1;
    fields.push_back(v.field);
  }
  return absl::StrJoin(fields, ",");
}

grpc::Status Build(grpc::StatusCode code, const std::string& message, const std::string& reason,
                   const std::map<std::string, std::string>& metadata,
                   const std::vector<std::pair<std::string, std::string>>& violations) {
  google::rpc::Status rich;
  rich.set_code(code);
  rich.set_message(message);
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  info.set_domain(kErrorDomain);
  for (const auto& [k, v] : metadata) {
    if (!v.empty()) (*info.mutable_metadata())[k] = v;
  }
  rich.add_details()->PackFrom(info);
  if (!violations.empty()) {
    google::rpc::BadRequest bad;
    for (const auto& [field, description] : violations) {
      auto* v = bad.add_field_violations();
      v->set_field(field);
      v->set_description(description);
    }
    rich.add_details()->PackFrom(bad);
  }
  return grpc::Status(code, message, rich.SerializeAsString());
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string message(status.message());
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, std::string>> violations;
  std::string reason;
  if (auto rule = jobs::GetFieldRule(status)) {
    reason = rule->rule;
    metadata["field"] = rule->field;
    violations.emplace_back(rule->field, message);
  } else if (auto api = tencent::GetApiError(status)) {
    reason = api->kind == tencent::ErrorKind::kApi ? "UPSTREAM_ERROR" : "UPSTREAM_UNAVAILABLE";
    if (api->kind == tencent::ErrorKind::kOutcomeUnknown) reason = "UPSTREAM_OUTCOME_UNKNOWN";
    if (api->kind == tencent::ErrorKind::kCredentials) reason = "SERVICE_CREDENTIALS";
    metadata["tencent_code"] = api->code;
    metadata["tencent_request_id"] = api->request_id;
    metadata["action"] = api->action;
    if (code == grpc::StatusCode::INVALID_ARGUMENT) {
      const std::string field = FieldForTencentCode(api->code);
      if (!field.empty()) {
        metadata["field"] = field;
        violations.emplace_back(field, message);
      }
    }
  } else {
    reason = GetReason(status);
    if (reason.empty()) reason = ReasonForCode(status.code());
  }
  // Any error about a recorded job (a replayed submission error, a cancel
  // of a finished job, ...) names it, so a caller can look the job up.
  if (std::string job = jobs::GetJobName(status); !job.empty()) metadata["job"] = std::move(job);
  return Build(code, message, reason, metadata, violations);
}

grpc::Status ValidationError(const std::vector<tencent::FieldViolation>& violations) {
  // The whole error travels in the response trailers, the message twice
  // (grpc-message and inside grpc-status-details-bin, base64), and gRPC
  // clients refuse more than 8 KiB of metadata ("received initial metadata
  // size exceeds limit"). So: every violated field is listed, but the
  // message keeps whole descriptions only up to kMaxMessageBytes (the first
  // always), and BadRequest descriptions past kMaxDetailBytes in total are
  // shortened.
  constexpr size_t kMaxMessageBytes = 1024;
  constexpr size_t kMaxDetailBytes = 1536;
  constexpr size_t kShortDescriptionBytes = 48;
  std::string message;
  size_t in_message = 0;
  for (const auto& v : violations) {
    // Each description already names its field.
    if (in_message > 0 && message.size() + 1 + v.description.size() > kMaxMessageBytes) break;
    absl::StrAppend(&message, in_message > 0 ? " " : "", v.description);
    ++in_message;
  }
  if (message.size() > kMaxMessageBytes) message = message.substr(0, kMaxMessageBytes) + "...";
  if (in_message < violations.size()) {
    absl::StrAppend(&message, " (", violations.size() - in_message,
                    " more in the BadRequest details)");
  }
  std::vector<std::pair<std::string, std::string>> details;
  size_t detail_bytes = 0;
  for (const auto& v : violations) {
    std::string description = v.description;
    if (detail_bytes + description.size() > kMaxDetailBytes &&
        description.size() > kShortDescriptionBytes) {
      description = description.substr(0, kShortDescriptionBytes) + "...";
    }
    detail_bytes += description.size();
    details.emplace_back(v.field, std::move(description));
  }
  const std::string reason = violations.size() == 1 ? violations[0].rule : "INVALID_REQUEST";
  return Build(grpc::StatusCode::INVALID_ARGUMENT, message, reason,
               {{"field", FieldList(violations)}}, details);
}

}  // namespace blueprintsync::server
