// How untrusted values appear in error messages: at most 64 bytes, so a
// 1 MiB field cannot turn into a 1 MiB error (or log line), and with control
// characters (newlines, escape sequences) written as \xNN, so a value can
// neither break a one-line message or log line nor drive a terminal.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_DISPLAY_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_DISPLAY_H_

#include <string>

#include "absl/strings/string_view.h"

namespace blueprintsync {

inline constexpr size_t kMaxShownBytes = 64;

inline std::string Shown(absl::string_view v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : v.substr(0, kMaxShownBytes)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (v.size() > kMaxShownBytes) out += "...";
  return out;
}

}  // namespace blueprintsync

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_DISPLAY_H_
