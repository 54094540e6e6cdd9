// Limits on what the service keeps of an upstream answer. Tencent Cloud's
// answers are not trusted: every string read from one passes through here
// before it can reach a job record, a gRPC answer, a log line or a metric
// label. Two treatments:
//   - Free text (error messages, RequestIds, descriptions) is kept but made
//     safe with BoundText: cut to a byte limit with a visible marker, valid
//     UTF-8 (protobuf string fields must be, or serialization fails), no
//     control characters.
//   - Values the service acts on (error codes, blueprint ids, regions,
//     states, names, times) are checked with the Check* functions; one that
//     fails makes the whole answer malformed (ErrorKind::kMalformedResponse),
//     which for SyncBlueprint means "outcome unknown, reconcile".
// Check* errors are plain InvalidArgument statuses naming the JSON path and
// the rule, quoting at most a short escaped prefix of the value.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_UPSTREAM_BOUNDS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_UPSTREAM_BOUNDS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "service/common/utf8.h"

namespace blueprintsync::tencent::bounds {

// Tencent's codes are dotted names of a few dozen characters
// ("UnsupportedOperation.BlueprintLatestOperationUnfinished" is 55).
inline constexpr size_t kMaxCodeBytes = 128;
// Tencent's messages are a sentence or two; Chinese ones are 3 bytes a
// character.
inline constexpr size_t kMaxMessageBytes = 1024;
// RequestIds are UUIDs (36 characters).
inline constexpr size_t kMaxRequestIdBytes = 128;
// Region ids are short ("na-siliconvalley" is 16).
inline constexpr size_t kMaxRegionBytes = 32;
// BlueprintName: Tencent allows 60 characters (up to 240 bytes of UTF-8).
inline constexpr size_t kMaxBlueprintNameBytes = 256;
// BlueprintState, BlueprintType, PlatformType, RegionState: UPPER_SNAKE words.
inline constexpr size_t kMaxEnumBytes = 64;
// CreatedTime: "2024-01-15T08:00:00Z"; room for fractions and offsets.
inline constexpr size_t kMaxTimeBytes = 40;
// Description, OsName, RegionName: shown, never acted on.
inline constexpr size_t kMaxFreeTextBytes = 512;
// A whole HTTP answer. Lighthouse answers are a few KiB (100 blueprints of
// DescribeBlueprints are about 100 KiB); more is not an answer to keep.
inline constexpr size_t kMaxResponseBodyBytes = 4 * 1024 * 1024;

// `text` as valid UTF-8 without control characters (each invalid sequence
// and each C0/DEL/C1 control character becomes U+FFFD) and at most
// `max_bytes` bytes. Longer text is cut at a character boundary and ends
// with "…[cut: N bytes]", N being the length of the original. `max_bytes`
// should leave room for the marker (at least 32).
std::string BoundText(std::string_view text, size_t max_bytes);

// Whether `text` is valid UTF-8 (no overlong forms, no surrogates).
using ::blueprintsync::utf8::IsValidUtf8;

// A Tencent error code: 1..kMaxCodeBytes of dot-separated words of ASCII
// letters, digits and '_', the first starting with a letter.
absl::Status CheckErrorCode(std::string_view path, std::string_view code);
// A blueprint id: "lhbp-" followed by 8 of [a-z0-9] (regions.h).
absl::Status CheckBlueprintId(std::string_view path, std::string_view id);
// A region id: 1..kMaxRegionBytes of [a-z0-9-], starting with a letter, e.g.
// "ap-guangzhou"; regions Lighthouse adds later pass too.
absl::Status CheckRegion(std::string_view path, std::string_view region);
// An UPPER_SNAKE word (states, types) of 1..kMaxEnumBytes of [A-Z0-9_].
absl::Status CheckEnumWord(std::string_view path, std::string_view value);
// A name: valid UTF-8, no control characters, at most `max_bytes`.
absl::Status CheckName(std::string_view path, std::string_view name, size_t max_bytes);
// An ISO-8601 time such as "2024-01-15T08:00:00Z": 1..kMaxTimeBytes of
// digits and "-:.+TZ" (the reconciler parses it; anything else is not a
// time Tencent sends).
absl::Status CheckTime(std::string_view path, std::string_view time);

}  // namespace blueprintsync::tencent::bounds

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_UPSTREAM_BOUNDS_H_
