#include "tests/testing_util/postgres_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

extern char** environ;

namespace blueprintsync::testing {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kStopTimeout = absl::Seconds(60);

bool IsExecutable(const fs::path& p) { return access(p.c_str(), X_OK) == 0; }

bool HasServerBinaries(const fs::path& dir) {
  return IsExecutable(dir / "initdb") && IsExecutable(dir / "postgres");
}

absl::StatusOr<std::string> FindBindir() {
  std::vector<std::string> looked;
  if (const char* env = std::getenv("BPS_POSTGRES_BINDIR"); env != nullptr && *env != '\0') {
    if (HasServerBinaries(env)) return std::string(env);
    looked.push_back(absl::StrCat("$BPS_POSTGRES_BINDIR (", env, ")"));
  }
  // Debian installs each major version under /usr/lib/postgresql/N/bin.
  int best = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int version;
    if (absl::SimpleAtoi(entry.path().filename().string(), &version) && version > best &&
        HasServerBinaries(entry.path() / "bin")) {
      best = version;
    }
  }
  if (best >= 0) return absl::StrCat("/usr/lib/postgresql/", best, "/bin");
  looked.push_back("/usr/lib/postgresql/*/bin");
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (!dir.empty() && HasServerBinaries(dir)) return dir;
    }
  }
  looked.push_back("PATH");
  return absl::FailedPreconditionError(absl::StrCat(
      "PostgreSQL server binaries (initdb, postgres) not found in ", absl::StrJoin(looked, ", "),
      "; install the Debian package postgresql (scripts/install-deps does)"));
}

absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", std::strerror(err)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string RandomPassword() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 24; ++i) out.push_back("0123456789abcdefghijklmnopqrstuv"[rd() % 32]);
  return out;
}

struct SpawnSpec {
  std::vector<std::string> argv;
  std::string log_path;
  int death_signal;
  bool drop_privileges;
  uid_t uid;
  gid_t gid;
};

// fork + exec with stdout/stderr appended to the log. Only async-signal-
// safe calls in the child: the test process has threads.
absl::StatusOr<pid_t> Spawn(const SpawnSpec& spec) {
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int log_fd = open(spec.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", spec.log_path, ": ", std::strerror(errno)));
  }
  if (spec.drop_privileges && fchown(log_fd, spec.uid, spec.gid) != 0) {
    const int err = errno;
    close(log_fd);
    return absl::InternalError(absl::StrCat("chown ", spec.log_path, ": ", std::strerror(err)));
  }
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0) {
      _exit(126);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (spec.drop_privileges) {
      const gid_t groups[] = {spec.gid};
      if (setgroups(1, groups) != 0 || setgid(spec.gid) != 0 || setuid(spec.uid) != 0) {
        _exit(126);
      }
    }
    // After setuid: changing credentials clears the death signal.
    if (prctl(PR_SET_PDEATHSIG, spec.death_signal) != 0) _exit(126);
    if (getppid() != parent) _exit(126);
    execve(argv[0], argv.data(), environ);
    _exit(127);
  }
  const int fork_errno = errno;
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(fork_errno)));
  }
  return pid;
}

// Waits for `pid` to exit; false if it is still running at the deadline.
bool WaitExit(pid_t pid, absl::Duration timeout, int* status) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  return "?";
}

// The children of `parent` (from /proc).
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    int pid;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) state ppid …"; comm may contain spaces and parentheses.
    const size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(close_paren + 1));
    std::string state;
    int ppid = 0;
    if (rest >> state >> ppid && ppid == parent) out.push_back(pid);
  }
  return out;
}

}  // namespace

absl::Status PostgresServer::Freeze() {
  if (pid_ <= 0) return absl::FailedPreconditionError("postgres is not running");
  // The postmaster first, so it forks nothing new meanwhile.
  kill(pid_, SIGSTOP);
  for (pid_t child : ChildrenOf(pid_)) kill(child, SIGSTOP);
  frozen_ = true;
  return absl::OkStatus();
}

absl::Status PostgresServer::Thaw() {
  if (pid_ <= 0) return absl::FailedPreconditionError("postgres is not running");
  for (pid_t child : ChildrenOf(pid_)) kill(child, SIGCONT);
  kill(pid_, SIGCONT);
  frozen_ = false;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Create() {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  if (auto s = server->Init(); !s.ok()) return s;
  // The free port may be taken by someone else before postgres binds it.
  absl::Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto port = FreePort();
    if (!port.ok()) return port.status();
    server->port_ = *port;
    last = server->StartOnce();
    if (last.ok()) return server;
    const std::string log = server->LogTail();
    if (!absl::StrContains(log, "could not bind") &&
        !absl::StrContains(log, "could not create any TCP/IP sockets")) {
      break;
    }
  }
  return last;
}

absl::StatusOr<PostgresServer*> PostgresServer::Shared() {
  static absl::Mutex mu(absl::kConstInit);
  static std::unique_ptr<PostgresServer>* server = nullptr;
  static absl::Status* failed = nullptr;
  absl::MutexLock lock(&mu);
  if (failed != nullptr) return *failed;
  if (server == nullptr) {
    auto created = Create();
    if (!created.ok()) {
      failed = new absl::Status(created.status());
      return *failed;
    }
    // Destroyed at exit, which stops the server and deletes its files.
    static std::unique_ptr<PostgresServer> holder = *std::move(created);
    server = &holder;
  }
  return server->get();
}

absl::Status PostgresServer::Init() {
  auto bindir = FindBindir();
  if (!bindir.ok()) return bindir.status();
  bindir_ = *bindir;
  if (geteuid() == 0) {
    // initdb and postgres refuse to run as root.
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "running as root, but there is no postgres user to run PostgreSQL as (the Debian "
          "package postgresql creates it; scripts/install-deps installs it)");
    }
    drop_privileges_ = true;
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
  }
  // Short: the Unix socket path (dir + "/.s.PGSQL.NNNNN") must fit 107 bytes.
  std::string base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR");
      tmp != nullptr && *tmp != '\0' && std::strlen(tmp) < 60 && !drop_privileges_) {
    base = tmp;
  }
  std::string templ = base + "/bps-pg-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", templ, ": ", std::strerror(errno)));
  }
  dir_ = templ;
  data_dir_ = dir_ + "/data";
  log_path_ = dir_ + "/log";
  password_ = RandomPassword();
  const std::string pwfile = dir_ + "/pwfile";
  {
    std::ofstream out(pwfile);
    out << password_ << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", pwfile));
  }
  if (drop_privileges_ &&
      (chown(dir_.c_str(), uid_, gid_) != 0 || chown(pwfile.c_str(), uid_, gid_) != 0)) {
    return absl::InternalError(absl::StrCat("chown ", dir_, ": ", std::strerror(errno)));
  }
  auto pid =
      Spawn({{bindir_ + "/initdb", "-D", data_dir_, "-U", "postgres", "-E", "UTF8", "--locale=C",
              "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + pwfile},
             log_path_,
             SIGKILL,
             drop_privileges_,
             uid_,
             gid_});
  if (!pid.ok()) return pid.status();
  int status = 0;
  if (!WaitExit(*pid, absl::Seconds(120), &status)) {
    kill(*pid, SIGKILL);
    waitpid(*pid, &status, 0);
    return absl::DeadlineExceededError(absl::StrCat("initdb did not finish: ", LogTail()));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat("initdb failed (", DescribeExit(status), "): ", LogTail()));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::StartOnce() {
  auto pid =
      Spawn({{bindir_ + "/postgres", "-D", data_dir_, "-p", absl::StrCat(port_), "-k", dir_, "-c",
              "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c",
              "shared_buffers=16MB", "-c", "max_connections=60"},
             log_path_,
             // Immediate shutdown: postgres takes its backends along.
             SIGQUIT,
             drop_privileges_,
             uid_,
             gid_});
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  return WaitReady();
}

absl::Status PostgresServer::WaitReady() {
  const std::string conninfo = absl::StrCat("host=127.0.0.1 port=", port_,
                                            " dbname=postgres user=postgres connect_timeout=2");
  const absl::Time deadline = absl::Now() + kStartTimeout;
  for (;;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("postgres exited at start (", DescribeExit(status), "): ", LogTail()));
    }
    if (PQping(conninfo.c_str()) == PQPING_OK) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return absl::DeadlineExceededError(absl::StrCat("postgres did not accept connections within ",
                                                      absl::FormatDuration(kStartTimeout), ": ",
                                                      LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status PostgresServer::Stop() {
  if (pid_ <= 0) return absl::FailedPreconditionError("postgres is not running");
  if (frozen_) Thaw().IgnoreError();
  kill(pid_, SIGINT);  // fast shutdown
  int status = 0;
  if (!WaitExit(pid_, kStopTimeout, &status)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return absl::DeadlineExceededError("postgres did not stop; killed");
  }
  pid_ = -1;
  return absl::OkStatus();
}

absl::Status PostgresServer::Start() {
  if (pid_ > 0) return absl::FailedPreconditionError("postgres is already running");
  return StartOnce();
}

PostgresServer::~PostgresServer() {
  if (pid_ > 0) Stop().IgnoreError();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string PostgresServer::Dsn(const std::string& dbname) const {
  return absl::StrCat("postgresql://postgres:", password_, "@127.0.0.1:", port_, "/", dbname);
}

absl::StatusOr<std::string> PostgresServer::Query(const std::string& dbname,
                                                  const std::string& sql) {
  const std::string conninfo =
      absl::StrCat("host=", dir_, " port=", port_, " dbname=", dbname, " user=postgres");
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status s =
        absl::UnavailableError(absl::StrCat("connect to test postgres: ", PQerrorMessage(conn)));
    PQfinish(conn);
    return s;
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  PGresult* res = PQexec(conn, sql.c_str());
  const ExecStatusType st = PQresultStatus(res);
  absl::StatusOr<std::string> out;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    std::vector<std::string> rows;
    for (int r = 0; r < PQntuples(res); ++r) {
      std::vector<std::string> cols;
      for (int c = 0; c < PQnfields(res); ++c) {
        cols.push_back(PQgetisnull(res, r, c) ? "NULL" : PQgetvalue(res, r, c));
      }
      rows.push_back(absl::StrJoin(cols, "|"));
    }
    out = absl::StrJoin(rows, "\n");
  } else {
    out = absl::InternalError(absl::StrCat("query \"", sql, "\": ", PQresultErrorMessage(res)));
  }
  PQclear(res);
  PQfinish(conn);
  return out;
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase() {
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    name = absl::StrCat("t", ++next_database_);
  }
  auto created = Query("postgres", absl::StrCat("CREATE DATABASE ", name));
  if (!created.ok()) return created.status();
  return Dsn(name);
}

std::string PostgresServer::LogTail() const {
  std::ifstream in(log_path_);
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  constexpr size_t kTail = 3000;
  if (text.size() > kTail) text = "…" + text.substr(text.size() - kTail);
  return text.empty() ? "(empty log " + log_path_ + ")" : text;
}

}  // namespace blueprintsync::testing
