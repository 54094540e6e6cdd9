// StoreHealth: whether the job store can be written right now, and if not,
// why. The SQLite store reports into it (every failed write, every commit
// and a periodic probe write); readiness, metrics and the engine read it.
// A process that cannot make a job durable must neither take new jobs nor
// submit queued ones: a paid copy made by a job whose record is lost is
// neither tracked nor cleaned up.
//
// Plain state behind its own small lock: reading it never does I/O, so the
// engine may consult it anywhere (the I/O happens in the store).
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_STORE_HEALTH_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_STORE_HEALTH_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace blueprintsync::jobs {

// Why a store cannot be written. The names are the `reason` label of the
// blueprintsync_store_healthy metric.
enum class StoreProblem {
  kNone,
  kNoSpace,   // "no_space": ENOSPC / SQLITE_FULL; clears when space returns
  kReadOnly,  // "read_only": EROFS, EACCES / SQLITE_READONLY; clears when writable
  kIoError,   // "io_error": any other I/O error; clears when a write succeeds
  // "file_replaced": the path no longer names the file this process has
  // open (deleted, renamed away or replaced). Writes would go to a file no
  // restart will see, so this stays until the process restarts.
  kFileReplaced,
  // "damaged": the file is corrupt (SQLITE_CORRUPT / SQLITE_NOTADB), or a
  // flush to disk failed while writes committed without one were pending
  // (they may never reach the disk). Stays: a probe write does not prove
  // the damaged pages can be read again, nor that those writes are on disk.
  kDamaged,
};

const char* StoreProblemName(StoreProblem problem);
// Problems only a restart (after the operator's repair) clears.
bool IsStickyProblem(StoreProblem problem);

struct StoreCondition {
  StoreProblem problem = StoreProblem::kNone;
  std::string detail;  // the store's error, for logs and the UNAVAILABLE message
  absl::Time since = absl::InfinitePast();
  uint64_t changes = 0;  // times the condition changed (healthy <-> unhealthy)
  bool healthy() const { return problem == StoreProblem::kNone; }
};

class StoreHealth {
 public:
  // The store could not be written (or read) because of `problem`. kNone
  // is ignored. A sticky problem is never replaced by a lesser one.
  void ReportFailure(StoreProblem problem, std::string detail);
  // A write was committed to the file the path names: clears every problem
  // that is not sticky.
  void ReportWritten();

  StoreCondition Get() const;
  bool healthy() const;
  // OK while healthy, else UNAVAILABLE naming the problem, e.g. "the job
  // store cannot be written (no_space): …; not accepting or submitting jobs".
  absl::Status Check() const;

 private:
  mutable absl::Mutex mu_;
  StoreCondition condition_ ABSL_GUARDED_BY(mu_);
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_STORE_HEALTH_H_
