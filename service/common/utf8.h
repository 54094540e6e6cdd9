// UTF-8 decoding shared by everything that must keep text valid: the JSON
// log (service/common/log.h) and the bounds on upstream answers
// (service/tencent/upstream_bounds.h). Protobuf string fields and JSON lines
// both break on bytes that are not well-formed UTF-8.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_UTF8_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace blueprintsync::utf8 {

// U+FFFD REPLACEMENT CHARACTER, what an invalid byte becomes.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// The length of the well-formed UTF-8 sequence at the start of `s` (its code
// point in *cp), or 0 if it does not start with one. Overlong forms, UTF-16
// surrogates and values beyond U+10FFFF are not well-formed.
size_t DecodeUtf8(std::string_view s, uint32_t* cp);

// Whether all of `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);

}  // namespace blueprintsync::utf8

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_UTF8_H_
