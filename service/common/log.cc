#include "service/common/log.h"

#include <atomic>
#include <ctime>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

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
  w.String(msg.data(), static_cast<rapidjson::SizeType>(msg.size()));
  for (const auto& [key, value] : fields) {
    if (value.empty()) continue;
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
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
