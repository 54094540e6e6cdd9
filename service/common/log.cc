#include "service/common/log.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "service/common/utf8.h"

namespace blueprintsync::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<std::FILE*> g_out{nullptr};
absl::Mutex g_mu(absl::kConstInit);

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

// Where a value of `size` bytes may be cut to at most `max` bytes without
// splitting a UTF-8 sequence.
size_t CutPoint(absl::string_view text, size_t max) {
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

// `text` with every byte that is not part of well-formed UTF-8 replaced by
// U+FFFD, so that the line stays valid JSON whatever the value held.
std::string ValidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t code_point = 0;
    const size_t n =
        utf8::DecodeUtf8(std::string_view(text.data() + i, text.size() - i), &code_point);
    if (n == 0) {
      out.append(utf8::kReplacement);
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

// Appends `text` to the line, cut to kMaxValueBytes and marked when longer.
// Values come from callers, gRPC and upstream answers: none of them may make
// a line unbounded.
template <typename W>
void WriteBounded(W& w, absl::string_view text, bool key) {
  std::string cut_text;
  if (text.size() > kMaxValueBytes) {
    cut_text = absl::StrCat(text.substr(0, CutPoint(text, kMaxValueBytes)), "…[cut: ",
                            text.size(), " bytes]");
    text = cut_text;
  }
  std::string valid_text;
  if (!utf8::IsValidUtf8(std::string_view(text.data(), text.size()))) {
    valid_text = ValidUtf8(text);
    text = valid_text;
  }
  const auto size = static_cast<rapidjson::SizeType>(text.size());
  if (key) {
    w.Key(text.data(), size);
  } else {
    w.String(text.data(), size);
  }
}

template <typename W>
void WriteValue(W& w, const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kString:
      WriteBounded(w, value.string(), /*key=*/false);
      return;
    case Value::Kind::kInt:
      w.Int64(value.int_value());
      return;
    case Value::Kind::kUint:
      w.Uint64(value.uint_value());
      return;
    case Value::Kind::kDouble:
      if (std::isfinite(value.double_value())) {
        w.Double(value.double_value());
      } else {
        const std::string text = std::isnan(value.double_value()) ? "nan"
                                 : value.double_value() > 0       ? "inf"
                                                                  : "-inf";
        w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
      }
      return;
    case Value::Kind::kBool:
      w.Bool(value.bool_value());
      return;
  }
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }

bool ParseLevel(absl::string_view text, Level* level) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == LevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

void SetOutput(std::FILE* out) { g_out.store(out); }

bool Enabled(Level level) { return static_cast<int>(level) >= g_level.load(); }

void Write(Level level, absl::string_view msg, Fields fields) {
  if (!Enabled(level)) return;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("time");
  const std::string now =
      absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  w.String(now.data(), static_cast<rapidjson::SizeType>(now.size()));
  w.Key("level");
  const absl::string_view name = LevelName(level);
  w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.Key("msg");
  WriteBounded(w, msg, /*key=*/false);
  for (const auto& [key, value] : fields) {
    if (value.kind() == Value::Kind::kString && value.string().empty()) continue;
    WriteBounded(w, key, /*key=*/true);
    WriteValue(w, value);
  }
  w.EndObject();
  std::FILE* out = g_out.load();
  if (out == nullptr) out = stdout;
  absl::MutexLock lock(&g_mu);
  std::fwrite(buf.GetString(), 1, buf.GetSize(), out);
  std::fputc('\n', out);
  std::fflush(out);
}

}  // namespace blueprintsync::log
