#include "service/metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace blueprintsync::metrics {
namespace {

// Field numbers of proc(5) /proc/<pid>/stat, counted from 1.
constexpr int kStateField = 3;  // the first field after the command name
constexpr int kUtimeField = 14;
constexpr int kStimeField = 15;
constexpr int kStartTimeField = 22;
constexpr int kVsizeField = 23;
constexpr int kRssField = 24;

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Entries of /proc/self/fd, the descriptor reading it included (as the Go
// client counts them).
std::optional<double> OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

std::optional<double> MaxFds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::nullopt;
  return static_cast<double>(limit.rlim_cur);
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  const absl::string_view after(text.data() + close + 1, text.size() - close - 1);
  const std::vector<absl::string_view> fields = absl::StrSplit(after, ' ', absl::SkipWhitespace());
  auto field = [&](int number) -> absl::string_view {
    const size_t i = static_cast<size_t>(number - kStateField);
    return i < fields.size() ? fields[i] : absl::string_view();
  };
  ProcStat s;
  if (!absl::SimpleAtoi(field(kUtimeField), &s.utime_ticks) ||
      !absl::SimpleAtoi(field(kStimeField), &s.stime_ticks) ||
      !absl::SimpleAtoi(field(kStartTimeField), &s.start_ticks) ||
      !absl::SimpleAtoi(field(kVsizeField), &s.vsize_bytes) ||
      !absl::SimpleAtoi(field(kRssField), &s.rss_pages)) {
    return std::nullopt;
  }
  return s;
}

std::optional<int64_t> ParseBootTime(std::string_view proc_stat) {
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(proc_stat.data(), proc_stat.size()), '\n')) {
    if (line.substr(0, 6) != "btime ") continue;
    int64_t seconds = 0;
    if (absl::SimpleAtoi(line.substr(6), &seconds)) return seconds;
  }
  return std::nullopt;
}

std::optional<ProcessStats> ReadProcessStats() {
  const std::optional<std::string> stat_text = ReadFile("/proc/self/stat");
  const std::optional<std::string> system_text = ReadFile("/proc/stat");
  if (!stat_text || !system_text) return std::nullopt;
  const std::optional<ProcStat> stat = ParseProcStat(*stat_text);
  const std::optional<int64_t> boot = ParseBootTime(*system_text);
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  if (!stat || !boot || ticks <= 0 || page <= 0) return std::nullopt;
  ProcessStats out;
  out.cpu_seconds = static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks;
  out.resident_bytes = static_cast<double>(stat->rss_pages) * page;
  out.virtual_bytes = static_cast<double>(stat->vsize_bytes);
  out.start_time_seconds =
      static_cast<double>(*boot) + static_cast<double>(stat->start_ticks) / ticks;
  out.open_fds = OpenFds();
  out.max_fds = MaxFds();
  return out;
}

}  // namespace blueprintsync::metrics
