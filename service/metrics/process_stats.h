// ProcessStats: what the Prometheus process_* series report about this
// process (CPU time, memory, file descriptors, start time), read from
// /proc/self the way the official Go and Python clients read it, so that
// dashboards and alerts written for any Prometheus-instrumented process
// (e.g. "open fds near the limit") work here unchanged. Metrics reads it at
// each scrape; the parsers are separate so tests can feed them any text.
#ifndef BLUEPRINTSYNC_SERVICE_METRICS_PROCESS_STATS_H_
#define BLUEPRINTSYNC_SERVICE_METRICS_PROCESS_STATS_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace blueprintsync::metrics {

// The fields of /proc/<pid>/stat the process_* series need, in the
// kernel's units (clock ticks, bytes, pages).
struct ProcStat {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t start_ticks = 0;  // since boot
  uint64_t vsize_bytes = 0;
  int64_t rss_pages = 0;
};

// Parses the one line of /proc/<pid>/stat. The command name (field 2) may
// hold spaces and parentheses, so fields are counted from its last ')'.
std::optional<ProcStat> ParseProcStat(std::string_view text);

// The "btime" (boot time, seconds since the epoch) of /proc/stat.
std::optional<int64_t> ParseBootTime(std::string_view proc_stat);

struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the epoch
  std::optional<double> open_fds;
  std::optional<double> max_fds;
};

// This process's stats now; nullopt where /proc cannot be read (not Linux,
// or /proc not mounted): the series are then left out rather than 0.
std::optional<ProcessStats> ReadProcessStats();

}  // namespace blueprintsync::metrics

#endif  // BLUEPRINTSYNC_SERVICE_METRICS_PROCESS_STATS_H_
