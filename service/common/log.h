// Structured logging: one JSON object per line on stdout, e.g.
//   {"time":"2026-11-27T22:01:02.123Z","level":"info","msg":"job
//   submitted","job":"syncJobs/..","region":"ap-singapore"}
// Field values are strings, integers, doubles or booleans chosen by the
// caller; numbers are written as JSON numbers ("grpc.time_ms":12), so log
// queries can compare and sum them without parsing. Never pass a secret,
// token, signature or Authorization header. Thread-safe; lines are never
// interleaved. The message, every key and every string value are cut to
// kMaxValueBytes (at a UTF-8 boundary, marked "…[cut: N bytes]"), and bytes
// that are not well-formed UTF-8 become U+FFFD, so no input makes a line
// unbounded or invalid JSON.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_LOG_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_LOG_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace blueprintsync::log {

inline constexpr size_t kMaxValueBytes = 4096;

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// One field's value. Implicit from strings and numbers so that call sites
// read {{"job", name}, {"count", n}}. A string value views the caller's
// text: it lives as long as the log call's full expression, like the fields.
class Value {
 public:
  enum class Kind { kString, kInt, kUint, kDouble, kBool };

  // const char* has its own overload: otherwise a literal would become a bool.
  Value(absl::string_view s) : kind_(Kind::kString), string_(s) {}
  Value(const std::string& s) : kind_(Kind::kString), string_(s) {}
  Value(const char* s) : kind_(Kind::kString), string_(s == nullptr ? "" : s) {}
  Value(int v) : kind_(Kind::kInt), int_(v) {}
  Value(long v) : kind_(Kind::kInt), int_(v) {}
  Value(long long v) : kind_(Kind::kInt), int_(v) {}
  Value(unsigned v) : kind_(Kind::kUint), uint_(v) {}
  Value(unsigned long v) : kind_(Kind::kUint), uint_(v) {}
  Value(unsigned long long v) : kind_(Kind::kUint), uint_(v) {}
  Value(double v) : kind_(Kind::kDouble), double_(v) {}
  Value(bool v) : kind_(Kind::kBool), bool_(v) {}

  Kind kind() const { return kind_; }
  absl::string_view string() const { return string_; }
  int64_t int_value() const { return int_; }
  uint64_t uint_value() const { return uint_; }
  double double_value() const { return double_; }
  bool bool_value() const { return bool_; }

 private:
  Kind kind_;
  absl::string_view string_;
  int64_t int_ = 0;
  uint64_t uint_ = 0;
  double double_ = 0;
  bool bool_ = false;
};

// An empty string value drops its field (callers pass "" for "not known");
// numbers and booleans are always written. A double that is not finite
// (JSON has no NaN or infinity) is written as a string ("nan", "inf").
using Fields = std::initializer_list<std::pair<absl::string_view, Value>>;

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
