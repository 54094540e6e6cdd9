// ChildProcess: runs a real binary for end-to-end tests (the server, the
// emulator, the CLI) and lets the test read what it prints, wait for a line
// that says it is ready, signal it and collect its exit status.
//
// The child never outlives the test: it leads its own process group, which
// the destructor SIGKILLs (grandchildren included) before reaping it, and
// the child is also asked to die with the thread that started it
// (PR_SET_PDEATHSIG), which covers a test binary that crashes or is killed by
// a ctest timeout. Start children from the test's main thread for that
// reason: the kernel ties the death signal to the creating thread, not to
// the process.
//
// The child starts with every signal unblocked and default dispositions
// (our binaries block SIGTERM before sigwait(), and a blocked mask would be
// inherited across exec), stdin on /dev/null and stdout/stderr on pipes that
// background threads drain into memory (and optionally into files).
#ifndef BLUEPRINTSYNC_TESTS_TESTING_UTIL_PROCESS_H_
#define BLUEPRINTSYNC_TESTS_TESTING_UTIL_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace blueprintsync::testing {

struct ChildProcessOptions {
  // argv[0] is the path of the binary (no PATH search).
  std::vector<std::string> argv;
  // Variables set in the child on top of the parent's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // Variables removed from the child's environment; a trailing '*' removes
  // every variable with that prefix (e.g. "BLUEPRINT_SYNC_*").
  std::vector<std::string> unset_env;
  // Empty: the parent's working directory.
  std::string working_dir;
  // When set, the output is also written to these files as it arrives, so a
  // failing test can point at a complete log.
  std::string stdout_path;
  std::string stderr_path;
};

// How a child ended.
struct ExitStatus {
  bool exited = false;  // true: exit(code); false: killed by `signal`
  int code = -1;
  int signal = 0;
  bool operator==(const ExitStatus& o) const {
    return exited == o.exited && code == o.code && signal == o.signal;
  }
  // "exit 0", "signal 9 (Killed)".
  std::string ToString() const;
};
ExitStatus ExitedWith(int code);
ExitStatus KilledBy(int signal);

class ChildProcess {
 public:
  using LinePredicate = std::function<bool(absl::string_view line)>;

  // Forks and execs. Fails if the binary cannot be executed (the exec error
  // is reported, not a silent exit 127).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(ChildProcessOptions options);

  // SIGKILLs the child if it is still running, reaps it and joins the readers.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  // Returns the first stdout line (without '\n') that satisfies `matches`,
  // looking at lines already printed too. DeadlineExceeded after `timeout`;
  // FailedPrecondition if stdout closed (usually: the child exited) first.
  absl::StatusOr<std::string> WaitForStdoutLine(const LinePredicate& matches,
                                                absl::Duration timeout);

  // kill(pid, sig). FailedPrecondition once the child has been reaped.
  absl::Status Signal(int sig);

  // Waits for the child to end; DeadlineExceeded (child left running) after
  // `timeout`. Once reaped, returns the same status every time.
  absl::StatusOr<ExitStatus> WaitForExit(absl::Duration timeout);
  // Signal(SIGKILL) + WaitForExit.
  absl::StatusOr<ExitStatus> Kill();
  // SIGKILLs whatever is left in the child's process group (processes it
  // started), whether or not the child itself has ended.
  void KillProcessGroup();
  // Non-blocking: the status if the child has ended.
  std::optional<ExitStatus> TryWait();

  // Everything read so far. After WaitForExit() these are complete once the
  // child's pipes have closed (WaitForOutputClosed).
  std::string Stdout() const;
  std::string Stderr() const;
  std::vector<std::string> StdoutLines() const;
  // Waits until both pipes reached EOF (all output captured).
  absl::Status WaitForOutputClosed(absl::Duration timeout);
  // For a child that has ended: waits up to `grace` for EOF, then takes what
  // is buffered in the pipes and stops reading (a grandchild may hold them
  // open). Afterwards Stdout()/Stderr() hold everything the child wrote.
  void FinishOutput(absl::Duration grace);

 private:
  struct Stream {
    std::string data;
    std::vector<std::string> lines;  // complete lines only
    size_t line_start = 0;           // where the unfinished line begins in `data`
    bool closed = false;
  };

  ChildProcess(std::string name, pid_t pid, int stop_read, int stop_write)
      : name_(std::move(name)), pid_(pid), stop_read_(stop_read), stop_write_(stop_write) {}
  void ReadLoop(int fd, Stream* stream, std::string tee_path);
  // Wakes both readers for a final drain and joins them.
  void StopReaders();

  const std::string name_;
  const pid_t pid_;
  // A pipe that, once written to, tells the readers to drain and return.
  const int stop_read_;
  const int stop_write_;
  std::thread out_reader_;
  std::thread err_reader_;

  mutable absl::Mutex mu_;
  Stream out_ ABSL_GUARDED_BY(mu_);
  Stream err_ ABSL_GUARDED_BY(mu_);
  std::optional<ExitStatus> exit_ ABSL_GUARDED_BY(mu_);
};

// Runs a child to completion with a bounded wait (killing it on timeout).
struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
};
absl::StatusOr<RunResult> RunToCompletion(ChildProcessOptions options, absl::Duration timeout);

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_TESTING_UTIL_PROCESS_H_
