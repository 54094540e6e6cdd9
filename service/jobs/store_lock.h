// StoreLock: one writer per SQLite file. blueprint-syncd takes an exclusive
// flock(2) on "<db>.lock" before it opens the database and holds it for its
// lifetime; a second process on the same file is refused at start with the
// holder's pid, host and start time, which the holder writes into the lock
// file. Two engines on one SQLite file would each resume the other's queued
// jobs (a double submission); several replicas need PostgreSQL.
//
// A separate file, not the database: SQLite's own locking uses POSIX fcntl
// locks on the database, which any close() of that file by the process
// drops; a flock on another file is independent of them. The kernel
// releases it when the process dies (SIGKILL too), so a restart never waits.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_STORE_LOCK_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_STORE_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace blueprintsync::jobs {

class StoreLock {
 public:
  // Locks `db_path` + ".lock" (created if missing, with missing parent
  // directories). FailedPrecondition naming the holder when another process
  // holds it.
  static absl::StatusOr<std::unique_ptr<StoreLock>> Acquire(const std::string& db_path);
  ~StoreLock();  // releases the lock (the file stays: removing it would race)
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  StoreLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  const std::string path_;
  const int fd_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_STORE_LOCK_H_
