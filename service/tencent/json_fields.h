// Strict readers of RapidJSON values for the Tencent Cloud API decoders
// (api_envelope.h, lighthouse_json.h). Each check returns a plain
// InvalidArgument status naming the JSON path ("Response.BlueprintSet[2]:
// expected a string, got null"); the decoders turn it into one
// kMalformedResponse ApiError.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_JSON_FIELDS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_JSON_FIELDS_H_

#include <rapidjson/document.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blueprintsync::tencent::json {

// Iterative: nesting depth costs heap, not stack, so a hostile body of
// 100000 '[' cannot overflow the stack. Strings must be valid UTF-8.
inline constexpr unsigned kParseFlags = rapidjson::kParseDefaultFlags |
                                        rapidjson::kParseIterativeFlag |
                                        rapidjson::kParseValidateEncodingFlag;

absl::Status Mismatch(absl::string_view path, absl::string_view expected,
                      const rapidjson::Value& got);
absl::Status Missing(absl::string_view path);
// "parent.key" and "parent[i]", for error messages.
std::string Path(absl::string_view parent, absl::string_view key);
std::string Index(absl::string_view parent, rapidjson::SizeType i);

// Required fields must be present and non-null; nullable ones may be absent
// or null (Tencent sends null for unset optional fields) but, when present,
// must still have the documented type.
enum class Presence { kRequired, kNullable };

// The member `key` of `object`, or nullptr.
const rapidjson::Value* Find(const rapidjson::Value& object, const char* key);

absl::Status GetString(const rapidjson::Value& object, absl::string_view parent, const char* key,
                       Presence presence, std::string* out);
absl::Status GetNonNegativeInt64(const rapidjson::Value& object, absl::string_view parent,
                                 const char* key, Presence presence, int64_t* out);
absl::Status GetBool(const rapidjson::Value& object, absl::string_view parent, const char* key,
                     bool* out);
absl::StatusOr<const rapidjson::Value*> GetArray(const rapidjson::Value& object,
                                                 absl::string_view parent, const char* key);

}  // namespace blueprintsync::tencent::json

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_JSON_FIELDS_H_
