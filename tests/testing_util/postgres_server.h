// PostgresServer: a throwaway PostgreSQL server for tests of the PostgreSQL
// job store and leader lease.
//
// Create() runs initdb into a new temp directory and starts `postgres` on
// 127.0.0.1 at a free port (Unix socket in the temp dir, fsync off). TCP
// logins need the password of the superuser "postgres" (scram-sha-256), so
// the DSNs it hands out carry one, as production DSNs do. Stop() and Start()
// shut the server down and bring it back on the same data and port (a
// "PostgreSQL restarted" test); the destructor stops it and deletes the
// directory.
//
// Running as root, initdb and postgres run as the `postgres` user (they
// refuse root); otherwise as the current user. The server binaries come
// from $BPS_POSTGRES_BINDIR, else the newest /usr/lib/postgresql/*/bin, else
// PATH; without them Create() fails (scripts/install-deps installs them), so
// tests fail rather than skip.
//
// The server dies with the thread that started it (PR_SET_PDEATHSIG, then an
// immediate shutdown), so a crashed test leaves no server behind: create
// it from the test's main thread.
#ifndef BLUEPRINTSYNC_TESTS_TESTING_UTIL_POSTGRES_SERVER_H_
#define BLUEPRINTSYNC_TESTS_TESTING_UTIL_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace blueprintsync::testing {

class PostgresServer {
 public:
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Create();
  // One server per test process, created on first use and stopped at exit.
  static absl::StatusOr<PostgresServer*> Shared();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // postgresql://postgres:PASSWORD@127.0.0.1:PORT/DBNAME
  std::string Dsn(const std::string& dbname = "postgres") const;
  // A new, empty database (t1, t2, …); returns its DSN.
  absl::StatusOr<std::string> CreateDatabase();
  // Runs SQL as the superuser over the Unix socket; rows joined by '\n',
  // columns by '|', NULL as "NULL" (text format).
  absl::StatusOr<std::string> Query(const std::string& dbname, const std::string& sql);

  // Fast shutdown (clients are disconnected); waits until it has exited.
  absl::Status Stop();
  // Starts it again on the same data directory and port.
  absl::Status Start();
  bool running() const { return pid_ > 0; }
  // SIGSTOP / SIGCONT the server and all its processes: it keeps its
  // sockets (connects and queries hang rather than fail), as a hung host or
  // a network black hole would.
  absl::Status Freeze();
  absl::Status Thaw();

  int port() const { return port_; }
  const std::string& password() const { return password_; }
  const std::string& dir() const { return dir_; }
  // The end of the server log, for failure messages.
  std::string LogTail() const;

 private:
  PostgresServer() = default;
  absl::Status Init();
  absl::Status StartOnce();
  absl::Status WaitReady();

  std::string bindir_;
  std::string dir_;  // temp dir: data/, socket, log
  std::string data_dir_;
  std::string log_path_;
  std::string password_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool frozen_ = false;
  // Running as root: the postgres user's ids.
  bool drop_privileges_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  absl::Mutex mu_;
  int next_database_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_TESTING_UTIL_POSTGRES_SERVER_H_
