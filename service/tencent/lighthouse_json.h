// JSON encoding of Lighthouse requests and decoding of responses with
// RapidJSON. Decoding never trusts the input: any shape that differs from the
// documentation (wrong types, missing Response, truncated text, huge numbers)
// becomes an error, never a crash.
//
// Decode* functions take the HTTP body of a 200 answer and return either the
// typed response or a Status built by MakeStatus(ApiError):
//   - {"Response":{"Error":{...},"RequestId":..}} -> kApi with code/message/request id
//     (the envelope every Tencent Cloud API shares is read by api_envelope.h)
//   - anything not matching the documented shape -> kMalformedResponse
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_JSON_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_JSON_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "service/tencent/api_error.h"
#include "service/tencent/lighthouse_types.h"

namespace blueprintsync::tencent::json {

std::string EncodeSyncBlueprint(const SyncBlueprintRequest& request);
std::string EncodeDescribeBlueprints(const DescribeBlueprintsRequest& request);
std::string EncodeDescribeRegions();
std::string EncodeDeleteBlueprints(const DeleteBlueprintsRequest& request);

absl::StatusOr<SyncBlueprintResponse> DecodeSyncBlueprint(std::string_view body);
absl::StatusOr<DescribeBlueprintsResponse> DecodeDescribeBlueprints(std::string_view body);
absl::StatusOr<DescribeRegionsResponse> DecodeDescribeRegions(std::string_view body);
// DeleteBlueprints answers nothing but its RequestId.
absl::StatusOr<DeleteBlueprintsResponse> DecodeDeleteBlueprints(std::string_view body);

}  // namespace blueprintsync::tencent::json

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_LIGHTHOUSE_JSON_H_
