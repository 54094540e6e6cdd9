// How untrusted values appear in error messages: at most 64 bytes, so a
// 1 MiB field cannot turn into a 1 MiB error (or log line).
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_DISPLAY_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_DISPLAY_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace blueprintsync {

inline constexpr size_t kMaxShownBytes = 64;

inline std::string Shown(absl::string_view v) {
  return v.size() <= kMaxShownBytes ? std::string(v)
                                    : absl::StrCat(v.substr(0, kMaxShownBytes), "...");
}

}  // namespace blueprintsync

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_DISPLAY_H_
