#include "service/tencent/api_envelope.h"

#include <rapidjson/error/en.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "service/tencent/json_fields.h"

namespace blueprintsync::tencent::json {

using rapidjson::Value;

absl::StatusOr<ApiEnvelope> ReadApiEnvelope(std::string_view action, std::string_view body,
                                            rapidjson::Document& doc) {
  if (body.empty()) return absl::InvalidArgumentError("empty body");
  // RapidJSON's memory stream treats NUL as end of input, which would hide
  // whatever follows it; raw NUL is never valid JSON anyway.
  if (body.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("body contains a NUL byte");
  }
  doc.Parse<kParseFlags>(body.data(), body.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at offset ", doc.GetErrorOffset(), ": ",
                     rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) return Mismatch("(top level)", "an object", doc);
  const Value* response = Find(doc, "Response");
  if (response == nullptr) return Missing("Response");
  if (!response->IsObject()) return Mismatch("Response", "an object", *response);

  ApiEnvelope envelope;
  if (const Value* error = Find(*response, "Error"); error != nullptr) {
    if (!error->IsObject()) return Mismatch("Response.Error", "an object", *error);
    ApiError api;
    api.kind = ErrorKind::kApi;
    api.action = std::string(action);
    if (absl::Status s =
            GetString(*error, "Response.Error", "Code", Presence::kRequired, &api.code);
        !s.ok()) {
      return s;
    }
    if (api.code.empty()) return absl::InvalidArgumentError("Response.Error.Code: empty");
    if (absl::Status s =
            GetString(*error, "Response.Error", "Message", Presence::kNullable, &api.message);
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            GetString(*response, "Response", "RequestId", Presence::kNullable, &api.request_id);
        !s.ok()) {
      return s;
    }
    envelope.api_error = std::move(api);
    return envelope;
  }
  if (absl::Status s =
          GetString(*response, "Response", "RequestId", Presence::kRequired, &envelope.request_id);
      !s.ok()) {
    return s;
  }
  if (envelope.request_id.empty()) return absl::InvalidArgumentError("Response.RequestId: empty");
  envelope.response = response;
  return envelope;
}

std::optional<ApiError> DecodeErrorEnvelope(std::string_view action, std::string_view body) {
  rapidjson::Document doc;
  absl::StatusOr<ApiEnvelope> envelope = ReadApiEnvelope(action, body, doc);
  if (!envelope.ok()) return std::nullopt;
  return envelope->api_error;
}

}  // namespace blueprintsync::tencent::json
