// Structured logging: one JSON object per line on stdout, e.g.
//   {"time":"2026-11-27T22:01:02.123Z","level":"info","msg":"job
//   submitted","job":"syncJobs/..","region":"ap-singapore"}
// Fields are plain strings chosen by the caller; never pass a secret, token,
// signature or Authorization header. Thread-safe; lines are never interleaved.
// The message and every key and value are cut to kMaxValueBytes (at a UTF-8
// boundary, marked "…[cut: N bytes]"), and bytes that are not well-formed
// UTF-8 become U+FFFD, so no input makes a line unbounded or invalid JSON.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_LOG_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_LOG_H_

#include <cstddef>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace blueprintsync::log {

inline constexpr size_t kMaxValueBytes = 4096;

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using Fields = std::initializer_list<std::pair<absl::string_view, absl::string_view>>;

// Lines below `level` are dropped. Default kInfo.
void SetLevel(Level level);
// "debug", "info", "warn", "error"; false for anything else.
bool ParseLevel(absl::string_view text, Level* level);
// Where lines go (default stdout). The stream is not owned.
void SetOutput(std::FILE* out);

// Whether a line at `level` would be written: lets callers skip building
// fields for lines that would be dropped.
bool Enabled(Level level);
void Write(Level level, absl::string_view msg, Fields fields = {});
inline void Debug(absl::string_view msg, Fields f = {}) { Write(Level::kDebug, msg, f); }
inline void Info(absl::string_view msg, Fields f = {}) { Write(Level::kInfo, msg, f); }
inline void Warn(absl::string_view msg, Fields f = {}) { Write(Level::kWarn, msg, f); }
inline void Error(absl::string_view msg, Fields f = {}) { Write(Level::kError, msg, f); }

}  // namespace blueprintsync::log

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_LOG_H_
