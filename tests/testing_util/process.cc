#include "tests/testing_util/process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace blueprintsync::testing {
namespace {

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Unset(const std::vector<std::string>& unset, absl::string_view name) {
  for (const std::string& u : unset) {
    if (!u.empty() && u.back() == '*') {
      if (absl::StartsWith(name, absl::string_view(u).substr(0, u.size() - 1))) return true;
    } else if (name == u) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> ChildEnvironment(const ChildProcessOptions& o) {
  std::set<std::string> overridden;
  for (const auto& [k, v] : o.env) overridden.insert(k);
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const absl::string_view entry(*e);
    const absl::string_view name = entry.substr(0, entry.find('='));
    if (overridden.count(std::string(name)) > 0 || Unset(o.unset_env, name)) continue;
    out.emplace_back(entry);
  }
  for (const auto& [k, v] : o.env) out.push_back(absl::StrCat(k, "=", v));
  return out;
}

[[noreturn]] void ReportAndExit(int report_fd) {
  const int e = errno;
  (void)!write(report_fd, &e, sizeof(e));
  _exit(127);
}

// Only async-signal-safe calls: the parent has threads (gRPC, readers).
[[noreturn]] void ExecChild(pid_t parent, int stdin_fd, int out_fd, int err_fd, int report_fd,
                            const char* dir, char* const* argv, char* const* envp) {
  auto fail = [report_fd]() { ReportAndExit(report_fd); };
  if (dup2(stdin_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
      dup2(err_fd, STDERR_FILENO) < 0) {
    fail();
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  if (setpgid(0, 0) != 0) fail();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail();
  if (getppid() != parent) _exit(127);  // the test died before prctl took effect
  if (dir != nullptr && chdir(dir) != 0) fail();
  execve(argv[0], argv, envp);
  ReportAndExit(report_fd);
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (exited) return absl::StrCat("exit ", code);
  return absl::StrCat("signal ", signal, " (", strsignal(signal), ")");
}

ExitStatus ExitedWith(int code) { return ExitStatus{true, code, 0}; }
ExitStatus KilledBy(int signal) { return ExitStatus{false, -1, signal}; }

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(ChildProcessOptions options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("argv is empty");
  // Everything the child needs is built before fork().
  std::vector<std::string> env_strings = ChildEnvironment(options);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = options.argv;
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  const char* dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();

  int out_pipe[2], err_pipe[2], report[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::InternalError("pipe failed");
  }
  if (pipe2(report, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    return absl::InternalError("pipe failed");
  }
  int stop[2];
  if (pipe2(stop, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], report[0], report[1]}) {
      close(fd);
    }
    return absl::InternalError("pipe failed");
  }
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = null_fd < 0 ? -1 : fork();
  if (pid == 0) {
    ExecChild(parent, null_fd, out_pipe[1], err_pipe[1], report[1], dir, argv.data(), envp.data());
  }
  const int fork_errno = errno;
  for (int fd : {out_pipe[1], err_pipe[1], report[1], null_fd}) {
    if (fd >= 0) close(fd);
  }
  if (pid < 0) {
    for (int fd : {out_pipe[0], err_pipe[0], report[0], stop[0], stop[1]}) close(fd);
    return absl::InternalError(absl::StrCat("cannot start ", options.argv[0], ": ",
                                            strerror(null_fd < 0 ? ENOENT : fork_errno)));
  }
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(report[0]);

  std::unique_ptr<ChildProcess> child(
      new ChildProcess(Basename(options.argv[0]), pid, stop[0], stop[1]));
  child->out_reader_ = std::thread(&ChildProcess::ReadLoop, child.get(), out_pipe[0], &child->out_,
                                   options.stdout_path);
  child->err_reader_ = std::thread(&ChildProcess::ReadLoop, child.get(), err_pipe[0], &child->err_,
                                   options.stderr_path);
  if (n > 0) {
    (void)child->WaitForExit(absl::Seconds(10));
    return absl::FailedPreconditionError(
        absl::StrCat("cannot execute ", options.argv[0], ": ", strerror(child_errno)));
  }
  return child;
}

ChildProcess::~ChildProcess() {
  bool running;
  {
    absl::MutexLock lock(&mu_);
    running = !exit_.has_value();
  }
  KillProcessGroup();
  if (running) {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  FinishOutput(absl::Milliseconds(200));
  close(stop_read_);
  close(stop_write_);
}

void ChildProcess::KillProcessGroup() {
  // Safe after the leader was reaped too: Linux does not hand out a pid that
  // is still some group's id, so -pid_ is either our group or nobody.
  kill(-pid_, SIGKILL);
}

void ChildProcess::StopReaders() {
  const char byte = 0;
  (void)!write(stop_write_, &byte, 1);
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

void ChildProcess::FinishOutput(absl::Duration grace) {
  (void)WaitForOutputClosed(grace);
  StopReaders();
}

void ChildProcess::ReadLoop(int fd, Stream* stream, std::string tee_path) {
  FILE* tee = tee_path.empty() ? nullptr : std::fopen(tee_path.c_str(), "w");
  char buf[8192];
  bool draining = false;
  for (;;) {
    if (!draining) {
      struct pollfd fds[2] = {{fd, POLLIN, 0}, {stop_read_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents != 0 && fds[0].revents == 0) {
        // Told to stop: take what is buffered without waiting for more.
        draining = true;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      }
    }
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (tee != nullptr) {
      std::fwrite(buf, 1, static_cast<size_t>(n), tee);
      std::fflush(tee);
    }
    absl::MutexLock lock(&mu_);
    stream->data.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = stream->data.find('\n', stream->line_start)) != std::string::npos;) {
      stream->lines.push_back(stream->data.substr(stream->line_start, nl - stream->line_start));
      stream->line_start = nl + 1;
    }
  }
  close(fd);
  if (tee != nullptr) std::fclose(tee);
  absl::MutexLock lock(&mu_);
  if (stream->line_start < stream->data.size()) {
    stream->lines.push_back(stream->data.substr(stream->line_start));
    stream->line_start = stream->data.size();
  }
  stream->closed = true;
}

absl::StatusOr<std::string> ChildProcess::WaitForStdoutLine(const LinePredicate& matches,
                                                            absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  size_t checked = 0;
  absl::MutexLock lock(&mu_);
  for (;;) {
    for (; checked < out_.lines.size(); ++checked) {
      if (matches(out_.lines[checked])) return out_.lines[checked];
    }
    if (out_.closed) {
      return absl::FailedPreconditionError(
          absl::StrCat(name_, " closed its stdout without printing the expected line"));
    }
    const size_t seen = checked;
    auto more = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return out_.lines.size() > seen || out_.closed;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&more), deadline)) {
      return absl::DeadlineExceededError(absl::StrCat(
          name_, " did not print the expected line within ", absl::FormatDuration(timeout)));
    }
  }
}

absl::Status ChildProcess::Signal(int sig) {
  absl::MutexLock lock(&mu_);
  if (exit_.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(name_, " has already ended"));
  }
  if (kill(pid_, sig) != 0) {
    return absl::InternalError(absl::StrCat("kill(", pid_, ", ", sig, "): ", strerror(errno)));
  }
  return absl::OkStatus();
}

std::optional<ExitStatus> ChildProcess::TryWait() {
  absl::MutexLock lock(&mu_);
  if (exit_.has_value()) return exit_;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return std::nullopt;
  if (WIFEXITED(status)) {
    exit_ = ExitedWith(WEXITSTATUS(status));
  } else {
    exit_ = KilledBy(WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  return exit_;
}

absl::StatusOr<ExitStatus> ChildProcess::WaitForExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (std::optional<ExitStatus> s = TryWait(); s.has_value()) return *s;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(name_, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::StatusOr<ExitStatus> ChildProcess::Kill() {
  absl::Status s = Signal(SIGKILL);
  if (!s.ok() && !absl::IsFailedPrecondition(s)) return s;
  return WaitForExit(absl::Seconds(30));
}

absl::Status ChildProcess::WaitForOutputClosed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return out_.closed && err_.closed; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&closed), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(name_, "'s output is still open"));
  }
  return absl::OkStatus();
}

std::string ChildProcess::Stdout() const {
  absl::MutexLock lock(&mu_);
  return out_.data;
}

std::string ChildProcess::Stderr() const {
  absl::MutexLock lock(&mu_);
  return err_.data;
}

std::vector<std::string> ChildProcess::StdoutLines() const {
  absl::MutexLock lock(&mu_);
  return out_.lines;
}

absl::StatusOr<RunResult> RunToCompletion(ChildProcessOptions options, absl::Duration timeout) {
  auto child = ChildProcess::Start(std::move(options));
  if (!child.ok()) return child.status();
  absl::StatusOr<ExitStatus> status = (*child)->WaitForExit(timeout);
  if (!status.ok()) {
    const std::string out = (*child)->Stdout();
    const std::string err = (*child)->Stderr();
    (void)(*child)->Kill();
    return absl::DeadlineExceededError(
        absl::StrCat(status.status().message(), "; stdout: ", out, "; stderr: ", err));
  }
  (*child)->KillProcessGroup();
  (*child)->FinishOutput(absl::Seconds(2));
  return RunResult{*status, (*child)->Stdout(), (*child)->Stderr()};
}

}  // namespace blueprintsync::testing
