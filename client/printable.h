// Printable(): makes a string that came from the network safe to write to a
// terminal. Server messages, Tencent error text and ids are untrusted: a
// control character or escape sequence in them could move the cursor, hide
// text or retitle the window, so they are replaced, and the length is capped.
#ifndef BLUEPRINTSYNC_CLIENT_PRINTABLE_H_
#define BLUEPRINTSYNC_CLIENT_PRINTABLE_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace blueprintsync::cli {

inline constexpr size_t kMaxPrintedBytes = 1024;

// C0 controls, DEL and UTF-8-encoded C1 controls become '?'; text longer than
// `max_bytes` is cut and ends with "...".
std::string Printable(absl::string_view text, size_t max_bytes = kMaxPrintedBytes);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_PRINTABLE_H_
