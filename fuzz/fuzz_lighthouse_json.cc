// Fuzz target: the decoders of Tencent Cloud answers
// (service/tencent/lighthouse_json.h and api_envelope.h), whose input is
// whatever the network returned. Every input goes through every Decode*
// function and DecodeErrorEnvelope. Besides "no crash, leak or UB", it
// checks the contract the callers rely on:
//   - a success has a non-empty RequestId and only non-empty ids/regions;
//   - a failure always carries an ApiError (GetApiError), of kind kApi (a
//     Tencent error envelope) or kMalformedResponse, with the action, a
//     non-empty code and http_status 200, and a status code equal to
//     CanonicalCode of that error;
//   - Decode* reports kApi exactly when DecodeErrorEnvelope finds an envelope,
//     with the same code, message and RequestId;
//   - whatever is kept is bounded and valid UTF-8 (upstream_bounds.h):
//     RequestIds, error messages, ids that pass their format check.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fuzz/fuzz_check.h"
#include "service/tencent/api_envelope.h"
#include "service/tencent/api_error.h"
#include "service/tencent/lighthouse_json.h"
#include "service/tencent/upstream_bounds.h"

namespace {

using blueprintsync::tencent::ApiError;
using blueprintsync::tencent::CanonicalCode;
using blueprintsync::tencent::ErrorKind;
using blueprintsync::tencent::GetApiError;
namespace json = blueprintsync::tencent::json;
namespace bounds = blueprintsync::tencent::bounds;

// Checks the failure half of the contract; returns the error for the caller.
ApiError CheckFailure(const absl::Status& status, std::string_view action,
                      const std::optional<ApiError>& envelope) {
  FUZZ_CHECK(!status.ok(), "failure status is not OK");
  std::optional<ApiError> error = GetApiError(status);
  FUZZ_CHECK(error.has_value(), "a decode failure carries an ApiError payload");
  FUZZ_CHECK(error->kind == ErrorKind::kApi || error->kind == ErrorKind::kMalformedResponse,
             "a decode failure is kApi or kMalformedResponse");
  FUZZ_CHECK(error->action == action, "the ApiError names the action");
  FUZZ_CHECK(!error->code.empty(), "the ApiError has a code");
  FUZZ_CHECK(error->http_status == 200, "Decode* is only for HTTP 200 bodies");
  FUZZ_CHECK(status.code() == CanonicalCode(*error), "status code is CanonicalCode(error)");
  FUZZ_CHECK(!error->MayHaveExecuted(), "a decoded answer never means outcome unknown");
  FUZZ_CHECK(error->message.size() <= 2 * bounds::kMaxMessageBytes &&
                 bounds::IsValidUtf8(error->message),
             "an error message is bounded and valid UTF-8");
  FUZZ_CHECK(error->request_id.size() <= bounds::kMaxRequestIdBytes &&
                 bounds::IsValidUtf8(error->request_id),
             "an error RequestId is bounded and valid UTF-8");
  if (error->kind == ErrorKind::kApi) {
    FUZZ_CHECK(envelope.has_value(), "kApi only when DecodeErrorEnvelope sees an envelope");
    FUZZ_CHECK(envelope->kind == ErrorKind::kApi, "the envelope's kind is kApi");
    FUZZ_CHECK(envelope->code == error->code, "same code from both functions");
    FUZZ_CHECK(envelope->message == error->message, "same message from both functions");
    FUZZ_CHECK(envelope->request_id == error->request_id, "same RequestId from both functions");
    FUZZ_CHECK(envelope->action == action, "the envelope names the action");
  } else {
    FUZZ_CHECK(error->code == "ClientError.ParseJsonError", "malformed -> ParseJsonError");
    FUZZ_CHECK(!envelope.has_value(), "an error envelope is never reported as malformed");
  }
  return *error;
}

void CheckSuccessRequestId(const std::string& request_id, const std::optional<ApiError>& envelope) {
  FUZZ_CHECK(!request_id.empty(), "a success has a RequestId");
  FUZZ_CHECK(request_id.size() <= bounds::kMaxRequestIdBytes && bounds::IsValidUtf8(request_id),
             "a RequestId is bounded and valid UTF-8");
  FUZZ_CHECK(!envelope.has_value(), "a success body is not an error envelope");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  {
    const std::optional<ApiError> envelope = json::DecodeErrorEnvelope("SyncBlueprint", body);
    auto r = json::DecodeSyncBlueprint(body);
    if (r.ok()) {
      CheckSuccessRequestId(r->request_id, envelope);
      for (const auto& d : r->destinations) {
        FUZZ_CHECK(!d.region.empty() && !d.blueprint_id.empty(),
                   "destinations have a region and a blueprint id");
        FUZZ_CHECK(bounds::CheckBlueprintId("id", d.blueprint_id).ok() &&
                       bounds::CheckRegion("region", d.region).ok(),
                   "destination ids and regions are well-formed");
      }
    } else {
      CheckFailure(r.status(), "SyncBlueprint", envelope);
    }
  }
  {
    const std::optional<ApiError> envelope = json::DecodeErrorEnvelope("DescribeBlueprints", body);
    auto r = json::DecodeDescribeBlueprints(body);
    if (r.ok()) {
      CheckSuccessRequestId(r->request_id, envelope);
      FUZZ_CHECK(r->total_count >= 0, "TotalCount is not negative");
      for (const auto& b : r->blueprints) {
        FUZZ_CHECK(!b.blueprint_id.empty(), "blueprints have an id");
        FUZZ_CHECK(bounds::CheckBlueprintId("id", b.blueprint_id).ok() &&
                       bounds::CheckEnumWord("state", b.blueprint_state).ok() &&
                       b.description.size() <= bounds::kMaxFreeTextBytes,
                   "blueprint fields are well-formed and bounded");
        FUZZ_CHECK(b.required_system_disk_size >= 0, "disk size is not negative");
      }
    } else {
      CheckFailure(r.status(), "DescribeBlueprints", envelope);
    }
  }
  {
    const std::optional<ApiError> envelope = json::DecodeErrorEnvelope("DescribeRegions", body);
    auto r = json::DecodeDescribeRegions(body);
    if (r.ok()) {
      CheckSuccessRequestId(r->request_id, envelope);
      FUZZ_CHECK(r->total_count >= 0, "TotalCount is not negative");
      for (const auto& region : r->regions) {
        FUZZ_CHECK(!region.region.empty(), "regions have an id");
      }
    } else {
      CheckFailure(r.status(), "DescribeRegions", envelope);
    }
  }
  {
    const std::optional<ApiError> envelope = json::DecodeErrorEnvelope("DeleteBlueprints", body);
    auto r = json::DecodeDeleteBlueprints(body);
    if (r.ok()) {
      CheckSuccessRequestId(r->request_id, envelope);
    } else {
      CheckFailure(r.status(), "DeleteBlueprints", envelope);
    }
  }
  return 0;
}
