// Shared pieces of the chaos end-to-end tests (crash_restart, fault_matrix,
// load): an audit that maps the SyncBlueprint calls the emulator executed to
// the jobs the service reports, a background health prober, /proc readings
// and a few formatting helpers. See tests/e2e/README.md.
#ifndef BLUEPRINTSYNC_TESTS_E2E_CHAOS_UTIL_H_
#define BLUEPRINTSYNC_TESTS_E2E_CHAOS_UTIL_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "tests/testing_util/emulator_admin.h"

namespace grpc {
class Channel;
}

namespace blueprintsync::testing {

// An integer from the environment (tests' knobs), or `fallback` when unset
// or not a number.
int64_t EnvInt(const char* name, int64_t fallback);

// A field of /proc/PID/status in kB ("VmRSS", "VmHWM"); -1 if unreadable.
int64_t ProcStatusKb(pid_t pid, const std::string& field);

// Which executed SyncBlueprint calls (the emulator's sync_submissions) belong
// to which job. A submission belongs to the job whose destinations carry the
// blueprint ids it created. A submission no job tracks is an orphan: paid
// copies nobody follows, i.e. a second submission (or a lost job). Orphans
// are attributed, where possible, to the job with the same source, the same
// destination regions and a create..end window around the call, so
// `executed` counts every execution a job caused.
struct ExecutionAudit {
  std::map<std::string, int> executed;  // job name -> executed SyncBlueprint calls
  int max_executed_per_job = 0;
  int orphans = 0;
  // Each a human-readable violation; empty when every execution maps to
  // exactly one job and no job has more than one.
  std::vector<std::string> problems;
};
ExecutionAudit AuditExecutions(const std::vector<v1::SyncJob>& jobs,
                               const std::vector<EmulatorSyncSubmission>& submissions);

// Calls grpc.health.v1.Health/Check("") every `interval` on a background
// thread until Stop(), recording every answer and the slowest one.
class HealthProber {
 public:
  HealthProber(std::shared_ptr<grpc::Channel> channel, absl::Duration interval);
  ~HealthProber();
  HealthProber(const HealthProber&) = delete;
  HealthProber& operator=(const HealthProber&) = delete;

  void Stop();
  int64_t checks() const;
  int64_t serving() const;  // answers SERVING
  absl::Duration max_latency() const;
  // The first few answers that were not SERVING (status or code).
  std::vector<std::string> failures() const;

 private:
  void Loop();

  const std::shared_ptr<grpc::Channel> channel_;
  const absl::Duration interval_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  int64_t checks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t serving_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration max_latency_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Lines of the files `dir`/`prefix`*`suffix` (e.g. every server log of a
// test: "server", ".stdout") that contain `needle`.
int64_t CountLinesInFiles(const std::string& dir, const std::string& prefix,
                          const std::string& suffix, const std::string& needle);

// "name=count" pairs, sorted by name.
std::string FormatCounts(const std::map<std::string, int64_t>& counts);

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_E2E_CHAOS_UTIL_H_
