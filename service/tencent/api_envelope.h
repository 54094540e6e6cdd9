// The Tencent Cloud API 3.0 response envelope, shared by every action of
// every service: {"Response":{...,"RequestId":"..."}} on success,
// {"Response":{"Error":{"Code":..,"Message":..},"RequestId":..}} on failure.
// The signed-request path (api_call.h) looks for the error form in every
// answer; the per-service decoders (lighthouse_json.h) read the success form
// and then their own fields.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_API_ENVELOPE_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_API_ENVELOPE_H_

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::tencent::json {

// The outcome of reading the common envelope.
struct ApiEnvelope {
  // Set when the body is a well-formed Tencent error envelope.
  std::optional<ApiError> api_error;
  // The success "Response" object (valid while the document lives).
  const rapidjson::Value* response = nullptr;
  std::string request_id;
};

// Parses `body` into `doc` and checks the parts every answer shares. A non-OK
// status is a plain InvalidArgument describing what is malformed.
absl::StatusOr<ApiEnvelope> ReadApiEnvelope(std::string_view action, std::string_view body,
                                            rapidjson::Document& doc);

// If `body` is a Tencent error envelope, its error (kind kApi, `action` set).
// Used for non-200 answers too, since gateways sometimes send the envelope.
std::optional<ApiError> DecodeErrorEnvelope(std::string_view action, std::string_view body);

}  // namespace blueprintsync::tencent::json

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_API_ENVELOPE_H_
