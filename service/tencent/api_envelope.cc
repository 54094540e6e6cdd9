#include "service/tencent/api_envelope.h"

#include <rapidjson/error/en.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/tencent/json_fields.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::tencent::json {

using rapidjson::Value;

absl::StatusOr<ApiEnvelope> ReadApiEnvelope(std::string_view action, std::string_view body,
                                            rapidjson::Document& doc) {
  if (body.empty()) return absl::InvalidArgumentError("empty body");
  // The transport caps bodies too; this keeps the parser's promise for any
  // other caller (and the fuzzer).
  if (body.size() > bounds::kMaxResponseBodyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("body of ", body.size(), " bytes, over the ",
                                                   bounds::kMaxResponseBodyBytes, "-byte limit"));
  }
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
    // The code decides what the service does next (and labels a metric):
    // one that is no Tencent code makes the answer malformed. Message and
    // RequestId are only shown, so they are kept, bounded.
    if (api.code.empty()) return absl::InvalidArgumentError("Response.Error.Code: empty");
    if (absl::Status s = bounds::CheckErrorCode("Response.Error.Code", api.code); !s.ok()) {
      return s;
    }
    // ClientError.* codes are the service's own (an abandoned call, a
    // network error...), and the service acts on them: an answer must not
    // be able to pass for one.
    if (absl::StartsWith(api.code, "ClientError.")) {
      return absl::InvalidArgumentError(
          "Response.Error.Code: ClientError.* codes are the client's own, not Tencent Cloud's");
    }
    if (absl::Status s =
            GetString(*error, "Response.Error", "Message", Presence::kNullable, &api.message);
        !s.ok()) {
      return s;
    }
    api.message = bounds::BoundText(api.message, bounds::kMaxMessageBytes);
    if (absl::Status s =
            GetString(*response, "Response", "RequestId", Presence::kNullable, &api.request_id);
        !s.ok()) {
      return s;
    }
    api.request_id = bounds::BoundText(api.request_id, bounds::kMaxRequestIdBytes);
    envelope.api_error = std::move(api);
    return envelope;
  }
  if (absl::Status s =
          GetString(*response, "Response", "RequestId", Presence::kRequired, &envelope.request_id);
      !s.ok()) {
    return s;
  }
  if (envelope.request_id.empty()) return absl::InvalidArgumentError("Response.RequestId: empty");
  envelope.request_id = bounds::BoundText(envelope.request_id, bounds::kMaxRequestIdBytes);
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
