#include "service/jobs/store_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace blueprintsync::jobs {
namespace {

// What a holder writes; bounded when read back (the file may hold anything).
constexpr size_t kMaxHolderText = 256;

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "unknown host";
  return host;
}

std::string ReadHolder(int fd) {
  char buf[kMaxHolderText + 1] = {};
  const ssize_t n = pread(fd, buf, kMaxHolderText, 0);
  if (n <= 0) return "";
  std::string text(buf, static_cast<size_t>(n));
  // One line of printable text: the file is not ours to trust.
  for (char& c : text) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) c = ' ';
  }
  return std::string(absl::StripAsciiWhitespace(text));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StoreLock>> StoreLock::Acquire(const std::string& db_path) {
  // One lock per file, however it is named: a path through a symlink or
  // with ".." must find the same lock file.
  std::error_code canonical_error;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(db_path, canonical_error);
  if (canonical_error) canonical = db_path;
  const std::string path = canonical.string() + ".lock";
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);  // an error shows in open() below
  }
  int fd = -1;
  // A lock on a file that was unlinked (or replaced) between open() and
  // flock() locks nothing anyone else will find: take it again on the file
  // the path names now.
  for (int attempt = 0; attempt < 5; ++attempt) {
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite store ", db_path, ": cannot open lock file ", path, ": ", ErrnoText(err)));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      std::string holder = err == EWOULDBLOCK ? ReadHolder(fd) : "";
      close(fd);
      if (err != EWOULDBLOCK) {
        return absl::FailedPreconditionError(
            absl::StrCat("sqlite store ", db_path, ": cannot lock ", path, ": ", ErrnoText(err)));
      }
      if (holder.empty()) holder = "a process that has not written its name yet";
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite store ", db_path, " is in use by another blueprint-syncd (", holder,
          "; lock file ", path,
          "): one server per SQLite file, since two would both submit its queued jobs; stop "
          "that one first, or use a PostgreSQL store for several replicas (do not delete the "
          "lock file: the lock goes with the process that holds it)"));
    }
    struct stat locked {}, named {};
    if (fstat(fd, &locked) == 0 && stat(path.c_str(), &named) == 0 &&
        locked.st_dev == named.st_dev && locked.st_ino == named.st_ino) {
      break;
    }
    close(fd);
    fd = -1;
  }
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite store ", db_path, ": lock file ", path, " keeps being replaced; not starting"));
  }
  // Ours: say who holds it, for the next process that is refused.
  const std::string holder =
      absl::StrCat("pid ", getpid(), " on host ", HostName(), ", since ",
                   absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()), "\n");
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, holder.data(), holder.size(), 0) != static_cast<ssize_t>(holder.size())) {
    // The lock is held all the same; only the refusal message is poorer.
  }
  return std::unique_ptr<StoreLock>(new StoreLock(path, fd));
}

StoreLock::~StoreLock() { close(fd_); }

}  // namespace blueprintsync::jobs
