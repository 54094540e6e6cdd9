// Shared plumbing of the benchmark programs in bench/ (never used by the
// service or the tests): running the real binaries (lighthouse-emulator,
// blueprint-syncd) as child processes, the emulator's admin API, filling a
// job store with realistic finished jobs, reading a process's RSS, latency
// percentiles, and the one output format every program prints (one "ROW"
// line per figure, which scripts/bench collects into a single table).
#ifndef BLUEPRINTSYNC_BENCH_BENCH_UTIL_H_
#define BLUEPRINTSYNC_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/jobs/job_store.h"

namespace blueprintsync::bench {

// The emulator's built-in permanent key (see tests/emulator/README.md).
inline constexpr char kSecretId[] = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
inline constexpr char kSecretKey[] = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

// A child process whose stdout and stderr go to files (so a chatty server can
// never block on a full pipe). Killed (SIGKILL, whole process group) and
// reaped by the destructor unless it already ended.
class Child {
 public:
  static absl::StatusOr<std::unique_ptr<Child>> Spawn(
      const std::vector<std::string>& argv,
      const std::vector<std::pair<std::string, std::string>>& env, const std::string& stdout_path,
      const std::string& stderr_path);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  absl::Time spawn_time() const { return spawn_time_; }
  const std::string& stdout_path() const { return stdout_path_; }
  // First stdout line containing `needle`, polling the file until `timeout`.
  absl::StatusOr<std::string> WaitForLine(const std::string& needle, absl::Duration timeout);
  // SIGTERM, then wait up to `timeout` for the exit (SIGKILL after that).
  // Returns the wait status.
  int Stop(absl::Duration timeout);
  bool Running();

 private:
  Child(pid_t pid, std::string stdout_path)
      : pid_(pid), stdout_path_(std::move(stdout_path)), spawn_time_(absl::Now()) {}
  pid_t pid_;
  std::string stdout_path_;
  absl::Time spawn_time_;
  bool reaped_ = false;
};

// Paths of the binaries under test, from the build (compile definitions).
std::string EmulatorBinary();
std::string ServerBinary();

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  // Under /dev/shm: for data whose fsyncs must not be part of a measurement.
  static TempDir InMemory(const std::string& prefix);
  ~TempDir();
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  TempDir() = default;
  std::string path_;
};

// lighthouse-emulator on 127.0.0.1:0.
struct Emulator {
  std::unique_ptr<Child> child;
  std::string url;  // "http://127.0.0.1:PORT"
};
absl::StatusOr<Emulator> StartEmulator(const std::vector<std::string>& extra_args,
                                       const std::string& log_dir);

// blueprint-syncd on 127.0.0.1:0 (or `listen`), credentials = the emulator's key.
struct Server {
  std::unique_ptr<Child> child;
  std::string address;     // "127.0.0.1:PORT"
  absl::Duration startup;  // spawn -> "serving" log line
};
absl::StatusOr<Server> StartServer(
    const std::string& emulator_url, const std::string& store_spec,
    const std::vector<std::string>& extra_args, const std::string& log_dir,
    const std::vector<std::pair<std::string, std::string>>& extra_env = {});

// Plain HTTP to the emulator's admin API; the body of a 200 answer.
absl::StatusOr<std::string> HttpGet(const std::string& url);
absl::StatusOr<std::string> HttpPost(const std::string& url, const std::string& body);

// Inserts `count` finished (SUCCEEDED, 2 destinations) jobs shaped like the
// ones the service writes, through the JobStore interface.
absl::Status FillFinishedJobs(jobs::JobStore* store, int count, uint64_t seed);
// Fills a new SQLite store at `path` with `count` jobs. The inserts run on
// tmpfs (each CreateJob is an fsynced transaction, and fsync speed is not what
// is measured) and the closed database is then copied to `path`.
absl::Status BuildSqliteStore(const std::string& path, int count);

// VmRSS / VmHWM of a process, in KiB (from /proc/PID/status).
absl::StatusOr<int64_t> ReadStatusKb(pid_t pid, const std::string& field);
// User + system CPU seconds a process has used so far (/proc/PID/stat).
double ProcessCpuSeconds(pid_t pid);
// Size of a file in bytes (0 if missing).
int64_t FileSize(const std::string& path);

// Sorted-copy percentile (p in [0, 100]) of durations in microseconds.
double Percentile(std::vector<double> values, double p);
double Median(std::vector<double> values);

// One table row on stdout: ROW\tfigure\tvalue\treference\tratio\ttarget\tmet.
// Empty reference/ratio/target print as "-"; `met` is "yes", "NO" or "-".
struct Row {
  std::string figure;
  std::string value;
  std::string reference;
  std::string ratio;
  std::string target;
  std::string met;
};
void PrintRow(const Row& row);
std::string Fixed(double v, int decimals);
std::string MetText(bool met);

}  // namespace blueprintsync::bench

#endif  // BLUEPRINTSYNC_BENCH_BENCH_UTIL_H_
