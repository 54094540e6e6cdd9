// The libpq layer shared by the PostgreSQL job store and the leader lease:
// one connection with bounded waits, typed results, SQLSTATE -> absl code
// mapping and the schema migrations. DSN redaction is in postgres_dsn.h.
//
// Used only by postgres_job_store.cc, postgres_lease.cc and their tests; the
// rest of the service sees JobStore / PostgresLeaderLease.
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
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
