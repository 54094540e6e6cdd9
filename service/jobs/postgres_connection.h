// The libpq layer shared by the PostgreSQL job store, the leader lease and
// the PostgreSQL policy store: one connection with bounded waits, a small
// pool of them, typed results, SQLSTATE -> absl code mapping and the schema
// migrations. DSN redaction is in postgres_dsn.h.
//
// Used only by postgres_job_store.cc, postgres_lease.cc,
// service/policies/postgres_policy_store.cc and their tests; the rest of the
// service sees JobStore / PostgresLeaderLease / PolicyStore.
//
// Secrets: a DSN may carry a password (URI userinfo, `password=`). No error
// produced here contains it: store names are shown with RedactDsn(), and
// every libpq message passes through Scrub(), because libpq itself quotes
// the whole URI in some of its errors.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_CONNECTION_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/jobs/postgres_dsn.h"

struct pg_conn;
struct pg_result;

namespace blueprintsync::jobs {

namespace pg {

struct ConnectOptions {
  // libpq connect_timeout (per host); the DSN's own value wins.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Server-side statement_timeout (and lock_timeout) set on every new
  // connection. A call also gives up client-side, dropping the connection,
  // after statement_timeout + client_grace, so a dead server or network
  // never blocks a caller for longer.
  absl::Duration statement_timeout = absl::Seconds(10);
  absl::Duration client_grace = absl::Seconds(5);
};

// One result (owned); column accessors expect the binary result format
// that Connection::Exec asks for.
class Result {
 public:
  explicit Result(pg_result* res);
  ~Result();
  Result(Result&& other) noexcept;
  Result& operator=(Result&&) = delete;

  int rows() const;
  int columns() const;
  bool IsNull(int row, int col) const;
  // int8 / int4 / bool columns (binary format).
  int64_t Int64(int row, int col) const;
  bool Bool(int row, int col) const;
  // text / bytea columns: the raw bytes.
  std::string Bytes(int row, int col) const;
  // The same without a copy, valid while this Result lives.
  absl::string_view View(int row, int col) const;

 private:
  pg_result* res_;
};

// A statement parameter: text (NULL when absent) or binary bytes (bytea).
struct Param {
  static Param Text(std::string v) { return Param{std::move(v), false, false}; }
  static Param Int(int64_t v);
  static Param Null() { return Param{"", true, false}; }
  static Param TextOrNull(const std::string& v) { return v.empty() ? Null() : Text(v); }
  static Param Binary(std::string v) { return Param{std::move(v), false, true}; }
  std::string value;
  bool null = false;
  bool binary = false;
};

// One libpq connection. Not thread-safe: the owner serializes calls.
class Connection {
 public:
  // `secrets` must outlive the connection. `op` names the call that needed
  // the connection, for errors.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& dsn,
                                                          const Secrets& secrets,
                                                          const ConnectOptions& options,
                                                          absl::string_view op);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement with parameters $1..$n; binary results. Errors:
  // the SQLSTATE's code (Exec's `op` and the server's message, scrubbed).
  // After a connection-level failure, broken() is true and the connection
  // must be thrown away.
  absl::StatusOr<Result> Exec(absl::string_view op, const std::string& sql,
                              const std::vector<Param>& params = {});
  // Runs SQL text that may hold several statements (no parameters).
  absl::Status ExecScript(absl::string_view op, const std::string& sql);

  // False once a call failed at the connection level. Also checks, without
  // a round trip, whether the server closed an idle connection (it does on
  // restart or shutdown), so a pooled connection is not handed out dead.
  bool Healthy();
  bool broken() const { return broken_; }
  // The last call got no answer in time (so retrying elsewhere would most
  // likely wait as long again).
  bool timed_out() const { return timed_out_; }
  // SQLSTATE of the last failed statement ("" if none or no server answer).
  const std::string& last_sqlstate() const { return last_sqlstate_; }

  // For a connection that LISTENs and runs nothing else (the change feed):
  // the notifications received so far, else those that arrive within
  // `timeout` (none if none do). Never blocks longer than `timeout`.
  // Unavailable once the connection is lost (broken() is then true).
  struct Notification {
    std::string channel;
    std::string payload;
  };
  absl::StatusOr<std::vector<Notification>> AwaitNotifications(absl::Duration timeout);

 private:
  Connection(pg_conn* conn, const Secrets& secrets, absl::Duration call_timeout);
  absl::StatusOr<Result> Run(absl::string_view op, const std::string& sql,
                             const std::vector<Param>* params);

  pg_conn* conn_;
  const Secrets& secrets_;
  const absl::Duration call_timeout_;
  bool broken_ = false;
  bool timed_out_ = false;
  std::string last_sqlstate_;
};

// The connections one store holds to one server, shared by its threads. A
// connection that failed at the connection level is dropped together with
// the idle ones (after a server restart they are all dead), and the next
// call connects again, so calls fail with Unavailable while the server is
// unreachable and work as soon as it is back. Thread-safe.
class ConnectionPool {
 public:
  // At most `max_connections` at a time; a call waits up to `wait` for a
  // free one (about as long as one call may take) before Unavailable.
  explicit ConnectionPool(const std::string& dsn, int max_connections = 4,
                          absl::Duration wait = absl::Seconds(15));
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection on loan: back to the pool when the loan ends, or closed
  // (with every idle one) if it broke.
  class Loan {
   public:
    Loan(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Loan(Loan&& other) noexcept : pool_(other.pool_), conn_(std::move(other.conn_)) {}
    Loan& operator=(Loan&&) = delete;
    ~Loan() {
      if (conn_ != nullptr) pool_->Return(std::move(conn_));
    }
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // `op` names the call, for errors.
  absl::StatusOr<Loan> Acquire(absl::string_view op);

  // Runs a read, once more on a new connection if the first one turned out
  // dead (not if it timed out: that would only double the wait). Writes
  // must not come here: the first attempt may have committed.
  template <typename T, typename F>
  absl::StatusOr<T> Read(absl::string_view op, F f) {
    for (int attempt = 0;; ++attempt) {
      auto conn = Acquire(op);
      if (!conn.ok()) return conn.status();
      absl::StatusOr<T> result = f(**conn);
      if (result.ok() || !(*conn)->broken() || (*conn)->timed_out() || attempt > 0) {
        return result;
      }
    }
  }

  // Outlives every connection (they refer to it).
  const Secrets& secrets() const { return secrets_; }

 private:
  bool CanAcquire() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || open_ < max_connections_;
  }
  void Return(std::unique_ptr<Connection> conn);

  const std::string dsn_;
  const Secrets secrets_;
  const int max_connections_;
  const absl::Duration wait_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + on loan + being opened
};

// Fencing a write by the leader lease (JobStore::SetWriteFence): the
// condition to AND to the write's WHERE clause, `$epoch_param` being the
// fence epoch. It holds only while the lease has that epoch and has not
// expired by the database clock, checked in the write's own statement.
std::string LeaseFenceCondition(int epoch_param);
// Why a fenced write wrote nothing although its row exists, for its
// FailedPrecondition: "nobody holds the lease" or "the lease is at epoch 3,
// held by \"replica-b\" (valid)".
absl::StatusOr<std::string> DescribeLease(Connection& conn, absl::string_view op);

// Runs `ddl` (CREATE … IF NOT EXISTS statements) in one transaction under
// the advisory lock that EnsureSchema takes, for tables a store keeps
// outside the versioned migrations. The lock matters: two sessions running
// CREATE TABLE IF NOT EXISTS at once can both pass the check and one then
// fails on the catalog's unique index.
absl::Status EnsureTables(Connection& conn, absl::string_view op, const std::string& ddl);

// Creates or upgrades the schema (jobs, leader_lease, schema_version) in one
// transaction under a transaction-scoped advisory lock, so replicas starting
// together apply each migration exactly once. FailedPrecondition if the
// database has a newer schema than this build knows.
absl::Status EnsureSchema(Connection& conn, const Secrets& secrets);

// The newest schema version this build creates.
int SchemaVersion();

// Error for a SQLSTATE ("" -> the connection failed).
absl::StatusCode CodeForSqlState(absl::string_view sqlstate);

}  // namespace pg
}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_CONNECTION_H_
