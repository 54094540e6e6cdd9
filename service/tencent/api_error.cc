#include "service/tencent/api_error.h"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace blueprintsync::tencent {
namespace {

// A char array rather than std::string_view: Debian's Abseil has its own
// absl::string_view, which std::string_view does not convert to.
constexpr char kPayloadTypeUrl[] = "type.googleapis.com/blueprintsync.tencent.ApiError";

constexpr ErrorKind kAllKinds[] = {
    ErrorKind::kApi,
    ErrorKind::kHttpStatus,
    ErrorKind::kTransport,
    ErrorKind::kOutcomeUnknown,
    ErrorKind::kMalformedResponse,
    ErrorKind::kCredentials,
    ErrorKind::kLocal,
};

// "Foo" matches "Foo" and "Foo.Bar", never "FooBar": Tencent codes are dotted
// hierarchies, and a plain prefix test would let "InvalidParameter" swallow
// "InvalidParameterValue" (harmless today, wrong in general).
bool CodeMatches(std::string_view code, std::string_view pattern) {
  if (code.substr(0, pattern.size()) != pattern) return false;
  return code.size() == pattern.size() || code[pattern.size()] == '.';
}

struct CodeRule {
  std::string_view pattern;
  absl::StatusCode status;
};

// The README "Errors" table. Lookup picks the longest matching pattern, so
// specific entries ("FailedOperation.NumLimitError") win over their family
// ("FailedOperation") regardless of their position here.
constexpr CodeRule kApiRules[] = {
    // Our own configuration or credentials are wrong: nothing the caller can fix.
    {"AuthFailure", absl::StatusCode::kInternal},
    {"UnauthorizedOperation.NoPermission", absl::StatusCode::kInternal},
    {"InvalidAction", absl::StatusCode::kInternal},
    {"NoSuchVersion", absl::StatusCode::kInternal},
    {"ActionOffline", absl::StatusCode::kInternal},
    {"NoSuchProduct", absl::StatusCode::kInternal},
    {"UnsupportedProtocol", absl::StatusCode::kInternal},
    {"UnauthorizedOperation", absl::StatusCode::kInternal},
    // The account must be fixed first.
    {"UnauthorizedOperation.CertificationNeedUpgrade", absl::StatusCode::kFailedPrecondition},
    {"UnauthorizedOperation.NotCertification", absl::StatusCode::kFailedPrecondition},
    // Concurrent operation on the same blueprint: retry at a higher level.
    {"OperationDenied.BlueprintOperationInProgress", absl::StatusCode::kAborted},
    {"UnsupportedOperation.BlueprintLatestOperationUnfinished", absl::StatusCode::kAborted},
    {"ResourceInUse", absl::StatusCode::kAborted},
    // The caller's request is wrong.
    {"InvalidParameter", absl::StatusCode::kInvalidArgument},
    {"InvalidParameterValue", absl::StatusCode::kInvalidArgument},
    {"MissingParameter", absl::StatusCode::kInvalidArgument},
    {"UnknownParameter", absl::StatusCode::kInvalidArgument},
    {"UnsupportedRegion", absl::StatusCode::kInvalidArgument},
    {"ResourceNotFound", absl::StatusCode::kNotFound},
    // Quotas.
    {"LimitExceeded", absl::StatusCode::kResourceExhausted},
    {"FailedOperation.NumLimitError", absl::StatusCode::kResourceExhausted},
    {"RequestSizeLimitExceeded", absl::StatusCode::kResourceExhausted},
    // Transient on Tencent's side (throttling only reaches here after retries).
    {"RequestLimitExceeded", absl::StatusCode::kUnavailable},
    {"InternalError", absl::StatusCode::kUnavailable},
    {"ServiceUnavailable", absl::StatusCode::kUnavailable},
    {"ResourceUnavailable", absl::StatusCode::kUnavailable},
    {"FailedOperation.DescribeBlueprintQuotaFailed", absl::StatusCode::kUnavailable},
    {"FailedOperation.RequestError", absl::StatusCode::kUnavailable},
    // The resource or account is not in a state that allows the operation.
    {"FailedOperation", absl::StatusCode::kFailedPrecondition},
    {"UnsupportedOperation", absl::StatusCode::kFailedPrecondition},
    {"ResourceInsufficient", absl::StatusCode::kFailedPrecondition},
    {"OperationDenied", absl::StatusCode::kFailedPrecondition},
    // DeleteBlueprints on a blueprint still in use (a sync from it, an
    // instance): the use has to end first. Spelled out although the family
    // entry covers it, so that it cannot drift to ABORTED with ResourceInUse.
    {"UnsupportedOperation.BlueprintOccupied", absl::StatusCode::kFailedPrecondition},
};

absl::StatusCode ApiCodeToStatus(std::string_view code) {
  const CodeRule* best = nullptr;
  for (const CodeRule& rule : kApiRules) {
    if (CodeMatches(code, rule.pattern) &&
        (best == nullptr || rule.pattern.size() > best->pattern.size())) {
      best = &rule;
    }
  }
  return best == nullptr ? absl::StatusCode::kUnknown : best->status;
}

std::optional<ErrorKind> ErrorKindFromName(std::string_view name) {
  for (ErrorKind kind : kAllKinds) {
    if (ErrorKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string EncodePayload(const ApiError& error) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  auto write_string = [&writer](const char* key, std::string_view value) {
    writer.Key(key);
    writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  writer.StartObject();
  write_string("kind", ErrorKindName(error.kind));
  write_string("code", error.code);
  write_string("message", error.message);
  write_string("request_id", error.request_id);
  write_string("action", error.action);
  writer.Key("http_status");
  writer.Int64(static_cast<int64_t>(error.http_status));
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

bool ReadString(const rapidjson::Value& object, const char* key, std::string& out) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsString()) return false;
  out.assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

std::optional<ApiError> DecodePayload(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  ApiError error;
  std::string kind_name;
  if (!ReadString(doc, "kind", kind_name)) return std::nullopt;
  std::optional<ErrorKind> kind = ErrorKindFromName(kind_name);
  if (!kind.has_value()) return std::nullopt;
  error.kind = *kind;
  if (!ReadString(doc, "code", error.code) || !ReadString(doc, "message", error.message) ||
      !ReadString(doc, "request_id", error.request_id) ||
      !ReadString(doc, "action", error.action)) {
    return std::nullopt;
  }
  auto status = doc.FindMember("http_status");
  if (status == doc.MemberEnd() || !status->value.IsInt64()) return std::nullopt;
  error.http_status = static_cast<long>(status->value.GetInt64());
  return error;
}

}  // namespace

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kApi:
      return "API";
    case ErrorKind::kHttpStatus:
      return "HTTP_STATUS";
    case ErrorKind::kTransport:
      return "TRANSPORT";
    case ErrorKind::kOutcomeUnknown:
      return "OUTCOME_UNKNOWN";
    case ErrorKind::kMalformedResponse:
      return "MALFORMED_RESPONSE";
    case ErrorKind::kCredentials:
      return "CREDENTIALS";
    case ErrorKind::kLocal:
      return "LOCAL";
  }
  return "UNKNOWN_KIND";
}

absl::StatusCode CanonicalCode(const ApiError& error) {
  switch (error.kind) {
    case ErrorKind::kApi:
      return ApiCodeToStatus(error.code);
    case ErrorKind::kOutcomeUnknown:
      return absl::StatusCode::kUnknown;
    case ErrorKind::kTransport:
    case ErrorKind::kHttpStatus:
    case ErrorKind::kMalformedResponse:
      return absl::StatusCode::kUnavailable;
    case ErrorKind::kCredentials:
      // Credentials are the service's own configuration; kUnauthenticated
      // would tell the gRPC caller to fix *its* credentials.
      return absl::StatusCode::kInternal;
    case ErrorKind::kLocal:
      if (error.code == "ClientError.DeadlineExceeded") return absl::StatusCode::kDeadlineExceeded;
      if (absl::StartsWith(error.code, "ClientError.InvalidArgument")) {
        return absl::StatusCode::kInvalidArgument;
      }
      return absl::StatusCode::kInternal;
  }
  return absl::StatusCode::kUnknown;
}

absl::Status MakeStatus(const ApiError& error) {
  std::string message;
  for (const std::string* part : {&error.action, &error.code, &error.message}) {
    if (part->empty()) continue;
    if (!message.empty()) message += ": ";
    message += *part;
  }
  if (!error.request_id.empty()) {
    if (!message.empty()) message.push_back(' ');
    absl::StrAppend(&message, "(RequestId ", error.request_id, ")");
  }
  absl::Status status(CanonicalCode(error), message);
  status.SetPayload(kPayloadTypeUrl, absl::Cord(EncodePayload(error)));
  return status;
}

std::optional<ApiError> GetApiError(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  // absl::optional, which Debian's Abseil does not alias to std::optional.
  absl::optional<absl::Cord> payload = status.GetPayload(kPayloadTypeUrl);
  if (!payload.has_value()) return std::nullopt;
  return DecodePayload(std::string(*payload));
}

}  // namespace blueprintsync::tencent
