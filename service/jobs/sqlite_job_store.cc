// SQLite JobStore ("sqlite:PATH"), the embedded default.
//
// Durability: WAL with synchronous=FULL, so a committed write survives a
// crash or power loss once the call returns. The service relies on this when
// it records SUBMITTING before the non-idempotent SyncBlueprint call. The
// one exception, CreateJobSyncLater, commits without the fsync and is made
// durable by the next commit's (JobStore says when that is safe).
//
// Concurrency: one connection, serialized by `mu_`. Every write runs in a
// BEGIN IMMEDIATE transaction, which also serializes writers on other
// connections (another process on the same file) before the request key
// lookup, so the lookup-then-insert of CreateJob cannot race; busy_timeout
// makes such writers wait instead of failing at once.
//
// Health (with a StoreHealth): every storage error is reported into it, and
// every commit is checked to have reached the file the path still names
// (stat(path) against the open file's device and inode): a write to a
// deleted or replaced file "succeeds" but is lost at the next start, so it
// is reported as a failure to the caller, before anything acts on it. A
// probe (every second) notices a vanished file while idle and writes one
// row every 10 s (a full disk shows while idle too), or every second while
// the store is unhealthy, which is how it learns it is writable again.
#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/error_reason.h"
#include "service/jobs/job_store.h"
#include "service/jobs/sqlite_schema.h"
#include "service/jobs/store_health.h"
#include "service/jobs/store_query.h"

namespace blueprintsync::jobs {
namespace {

using sqlite::BindDerivedColumns;
using sqlite::Binder;
using sqlite::CodeFor;
using sqlite::kMigrations;
using sqlite::kSchemaVersion;
using sqlite::ProblemFor;
using sqlite::RowToRecord;

// Long enough to ride out another process's write transaction (each is a
// few fsyncs), short enough that a wedged peer surfaces as an error.
constexpr int kBusyTimeoutMs = 10000;
// SQLite's default automatic checkpoint threshold (pages in the WAL).
constexpr int kWalAutoCheckpointPages = 1000;

// Not in the migrations: a probe row is no part of the job schema, and an
// older build opening the file must not find a schema version it does not
// know.
constexpr char kProbeTable[] =
    "CREATE TABLE IF NOT EXISTS store_probe ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), write_time_us INTEGER NOT NULL)";

class SqliteJobStore final : public JobStore {
 public:
  SqliteJobStore(std::string path, sqlite3* db, const SqliteStoreOptions& options)
      : path_(std::move(path)), health_(options.health), options_(options), db_(db) {}

  ~SqliteJobStore() override {
    if (prober_.joinable()) {
      {
        absl::MutexLock lock(&probe_mu_);
        stop_probing_ = true;
      }
      prober_.join();
    }
    absl::MutexLock lock(&mu_);
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  // Connection settings and schema migration; run once before first use.
  absl::Status Init() {
    absl::MutexLock lock(&mu_);
    // SQLite opens a file it may not write read-only, silently; every job
    // write would then fail. Say so at start instead.
    if (sqlite3_db_readonly(db_, "main") == 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite job store ", path_,
          ": the database file cannot be opened for writing (read-only file, directory or "
          "file system); make it writable"));
    }
    // The first statement that reads the file: a file that is not a
    // database fails here with SQLITE_NOTADB.
    std::string mode;
    if (auto s = QueryText("PRAGMA journal_mode = WAL", "open (journal_mode)", &mode); !s.ok()) {
      return s;
    }
    if (mode != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite job store ", path_, ": cannot enable WAL journal mode (got \"", mode, "\")"));
    }
    if (auto s = Exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", "open (pragmas)");
        !s.ok()) {
      return s;
    }
    // The file every later commit must reach (see AfterCommit).
    struct stat st;
    if (stat(path_.c_str(), &st) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite job store ", path_, ": cannot stat the database file after opening it"));
    }
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
    if (auto s = Migrate(); !s.ok()) return s;
    return Exec(kProbeTable, "open (probe table)");
  }

  // Starts the probe thread (with a StoreHealth only).
  void StartProbing() {
    if (health_ == nullptr || options_.probe_interval <= absl::ZeroDuration()) return;
    prober_ = std::thread([this] { ProbeLoop(); });
  }

  absl::StatusOr<CreateJobResult> CreateJob(const JobRecord& record) override {
    absl::MutexLock lock(&mu_);
    return CreateJobLocked(record);
  }

  absl::StatusOr<CreateJobResult> CreateJobSyncLater(const JobRecord& record) override {
    absl::MutexLock lock(&mu_);
    // This commit only: its frames are written to the WAL without an fsync.
    // They survive a crash of the process (the kernel has them), and the
    // next commit with synchronous=FULL, or Sync(), flushes the whole WAL
    // file, these frames included; a checkpoint syncs the WAL before it
    // copies any frame (https://sqlite.org/pragma.html#pragma_synchronous).
    // (Exec, not a cached statement: a PRAGMA acts when it is prepared.)
    if (absl::Status s = Exec("PRAGMA synchronous = NORMAL", "CreateJob"); !s.ok()) return s;
    // Nor may this commit checkpoint: a checkpoint's flush of the WAL that
    // fails is not reported (SQLite's automatic checkpoint ignores it), and
    // the error would then be lost for the flush that counts (the next
    // FULL commit's, or Sync's).
    sqlite3_wal_autocheckpoint(db_, 0);
    const int64_t changes_before = sqlite3_total_changes64(db_);
    absl::StatusOr<CreateJobResult> created = CreateJobLocked(record);
    sqlite3_wal_autocheckpoint(db_, kWalAutoCheckpointPages);
    // Committed (even if a check after the commit failed): not yet flushed.
    if (sqlite3_total_changes64(db_) != changes_before) unsynced_ = true;
    // The job is recorded either way; if FULL cannot be set back, every
    // later transaction tries again first and fails without it (Transaction).
    restore_full_sync_ = !Exec("PRAGMA synchronous = FULL", "CreateJob").ok();
    return created;
  }

  absl::Status Sync() override {
    constexpr absl::string_view kOp = "Sync";
    absl::MutexLock lock(&mu_);
    if (!unsynced_) return absl::OkStatus();  // every commit since was flushed
    // The WAL file, as SQLite's own commit with synchronous=FULL syncs it.
    sqlite3_file* wal = nullptr;
    if (int rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
        rc != SQLITE_OK) {
      return Error(rc, kOp);
    }
    if (wal == nullptr || wal->pMethods == nullptr) {
      return FlushFailed(SQLITE_IOERR, 0, kOp);  // committed frames, yet no WAL open
    }
    if (int rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL); rc != SQLITE_OK) {
      int err = 0;
      wal->pMethods->xFileControl(wal, SQLITE_FCNTL_LAST_ERRNO, &err);
      return FlushFailed(rc, err, kOp);
    }
    unsynced_ = false;
    return absl::OkStatus();
  }

  // A flush failed while commits made without one (CreateJobSyncLater) were
  // pending: after a failed fsync the kernel may drop those pages, and a
  // later flush that succeeds does not bring them back, so a machine crash
  // could lose them, and the WAL after them (a SUBMITTING mark whose call
  // was sent). The store is reported damaged, which only a restart clears
  // (and stops every submission meanwhile: the Submitter checks health).
  absl::Status FlushFailed(int rc, int err, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status s = StoreError(absl::Status(
        CodeFor(rc), absl::StrCat("sqlite job store ", path_, ": ", op,
                                  ": flushing the write-ahead log failed (sqlite code ", rc,
                                  ", errno ", err,
                                  ") with writes not yet on disk; restart needed")));
    if (health_ != nullptr) {
      health_->ReportFailure(StoreProblem::kDamaged, std::string(s.message()));
    }
    return s;
  }

  absl::StatusOr<CreateJobResult> CreateJobLocked(const JobRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    constexpr absl::string_view kOp = "CreateJob";
    const v1::SyncJob& job = record.job();
    if (job.name().empty()) return absl::InvalidArgumentError("CreateJob: job.name is required");
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();

    if (const std::string key = RequestKey(job); !key.empty()) {
      auto stmt = Prepare("SELECT sequence, name, record, cancel_requested FROM jobs WHERE request_key = ?1", kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, key).rc(); rc != SQLITE_OK) {
        return Error(rc, kOp);
      }
      int rc = sqlite3_step(stmt->get());
      if (rc == SQLITE_ROW) {
        auto existing = RowToRecord(stmt->get(), path_, kOp);
        if (!existing.ok()) return existing.status();
        return CreateJobResult{*std::move(existing), false};
      }
      if (rc != SQLITE_DONE) return Error(rc, kOp);
    }

    // The blob must carry the sequence, which is only known after the
    // insert; both statements commit together.
    {
      auto stmt = Prepare(
          "INSERT INTO jobs (name, request_key, request_id, creator, retry_of, state, open, "
          "blueprint_id, source_region, create_time_us, update_time_us, record) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, x'')",
          kOp);
      if (!stmt.ok()) return stmt.status();
      Binder b(stmt->get());
      if (int rc = BindDerivedColumns(b.Text(1, job.name()), 2, job).rc(); rc != SQLITE_OK) {
        return Error(rc, kOp);
      }
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
    }
    JobRecord stored = record;
    stored.set_sequence(sqlite3_last_insert_rowid(db_));
    if (auto s = WriteBlob(stored, kOp); !s.ok()) return s;
    if (auto s = tx.Commit(); !s.ok()) return s;
    return CreateJobResult{std::move(stored), true};
  }

  absl::StatusOr<JobRecord> GetJob(const std::string& name) override {
    constexpr absl::string_view kOp = "GetJob";
    absl::MutexLock lock(&mu_);
    auto stmt = Prepare("SELECT sequence, name, record, cancel_requested FROM jobs WHERE name = ?1", kOp);
    if (!stmt.ok()) return stmt.status();
    if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, kOp);
    int rc = sqlite3_step(stmt->get());
    if (rc == SQLITE_ROW) return RowToRecord(stmt->get(), path_, kOp);
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(absl::StrCat("GetJob: job ", name, " not found"));
    }
    return Error(rc, kOp);
  }

  absl::Status UpdateJob(const JobRecord& record) override {
    constexpr absl::string_view kOp = "UpdateJob";
    const v1::SyncJob& job = record.job();
    absl::MutexLock lock(&mu_);
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();

    JobRecord stored = record;
    {
      auto stmt = Prepare("SELECT sequence FROM jobs WHERE name = ?1", kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, job.name()).rc(); rc != SQLITE_OK) {
        return Error(rc, kOp);
      }
      int rc = sqlite3_step(stmt->get());
      if (rc == SQLITE_DONE) {
        return absl::NotFoundError(absl::StrCat("UpdateJob: job ", job.name(), " not found"));
      }
      if (rc != SQLITE_ROW) return Error(rc, kOp);
      stored.set_sequence(sqlite3_column_int64(stmt->get(), 0));
    }
    // SQLite rewrites the entry of every index on a column the SET names,
    // changed or not, and each is a page of the WAL to write. Once recorded,
    // a job changes only its state, open and update time: those are set,
    // provided every other column still holds what the record says (the
    // same bound values); when one does not, all of them are.
    for (const char* sql :
         {"UPDATE jobs SET state = ?5, open = ?6, update_time_us = ?10 WHERE sequence = ?11 "
          "AND request_key IS ?1 AND request_id IS ?2 AND creator IS ?3 AND retry_of IS ?4 "
          "AND blueprint_id IS ?7 AND source_region IS ?8 AND create_time_us IS ?9",
          "UPDATE jobs SET request_key = ?1, request_id = ?2, creator = ?3, retry_of = ?4, "
          "state = ?5, open = ?6, blueprint_id = ?7, source_region = ?8, create_time_us = ?9, "
          "update_time_us = ?10 WHERE sequence = ?11"}) {
      auto stmt = Prepare(sql, kOp);
      if (!stmt.ok()) return stmt.status();
      Binder b(stmt->get());
      if (int rc = BindDerivedColumns(b, 1, job).Int64(11, stored.sequence()).rc();
          rc != SQLITE_OK) {
        return Error(rc, kOp);
      }
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
      if (sqlite3_changes(db_) == 1) break;
    }
    if (auto s = WriteBlob(stored, kOp); !s.ok()) return s;
    return tx.Commit();
  }

  absl::StatusOr<JobPage> ListJobs(const JobQuery& query) override {
    constexpr absl::string_view kOp = "ListJobs";
    if (auto s = store::ValidateQuery(query); !s.ok()) return s;
    store::PageScan scan(query);
    absl::Status s = ForEachListedRow(
        query, scan.row_limit(), kOp, [&](sqlite3_stmt* stmt) -> absl::StatusOr<bool> {
          return scan.OfferRow(sqlite3_column_int64(stmt, 0), [&](JobRecord* record) {
            return sqlite::ParseRowInto(stmt, path_, kOp, record);
          });
        });
    if (!s.ok()) return s;
    return scan.TakePage();
  }

  absl::StatusOr<std::optional<int64_t>> ListJobsInto(
      const JobQuery& query, google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs) override {
    constexpr absl::string_view kOp = "ListJobs";
    if (auto s = store::ValidateQuery(query); !s.ok()) return s;
    store::PageScan scan(query);
    absl::Status s = ForEachListedRow(
        query, scan.row_limit(), kOp, [&](sqlite3_stmt* stmt) -> absl::StatusOr<bool> {
          return scan.OfferInto(
              sqlite3_column_int64(stmt, 0),
              [&](JobRecord* record) { return sqlite::ParseRowInto(stmt, path_, kOp, record); },
              jobs);
        });
    if (!s.ok()) return s;
    return scan.next_cursor();
  }

  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override {
    constexpr absl::string_view kOp = "ListUnfinishedJobs";
    absl::MutexLock lock(&mu_);
    auto stmt =
        Prepare("SELECT sequence, name, record, cancel_requested FROM jobs WHERE open = 1 ORDER BY sequence", kOp);
    if (!stmt.ok()) return stmt.status();
    std::vector<JobRecord> out;
    for (;;) {
      int rc = sqlite3_step(stmt->get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(rc, kOp);
      auto record = RowToRecord(stmt->get(), path_, kOp);
      if (!record.ok()) return record.status();
      out.push_back(*std::move(record));
    }
    return out;
  }

  absl::Status RequestCancel(const std::string& name) override {
    constexpr absl::string_view kOp = "RequestCancel";
    absl::MutexLock lock(&mu_);
    if (absl::Status s = EnsureFullSync(kOp); !s.ok()) return s;
    auto stmt = Prepare("UPDATE jobs SET cancel_requested = 1 WHERE name = ?1", kOp);
    if (!stmt.ok()) return stmt.status();
    if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, kOp);
    if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) {
      absl::Status s = Error(rc, kOp);
      AfterFailedCommit(kOp);
      return s;
    }
    if (sqlite3_changes(db_) == 0) {
      return absl::NotFoundError(absl::StrCat("RequestCancel: job ", name, " not found"));
    }
    unsynced_ = false;  // it changed a row: committed with synchronous=FULL, flushed
    return AfterCommit(kOp);
  }

  absl::Status DeleteJob(const std::string& name) override {
    constexpr absl::string_view kOp = "DeleteJob";
    absl::MutexLock lock(&mu_);
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();
    {
      auto stmt = Prepare("DELETE FROM jobs WHERE name = ?1 AND open = 0", kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, kOp);
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
    }
    if (sqlite3_changes(db_) == 1) return tx.Commit();
    // Nothing deleted: say why, from the same transaction.
    auto stmt = Prepare("SELECT sequence, name, record, cancel_requested FROM jobs WHERE name = ?1", kOp);
    if (!stmt.ok()) return stmt.status();
    if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, kOp);
    int rc = sqlite3_step(stmt->get());
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(absl::StrCat("DeleteJob: job ", name, " not found"));
    }
    if (rc != SQLITE_ROW) return Error(rc, kOp);
    auto record = RowToRecord(stmt->get(), path_, kOp);
    if (!record.ok()) return record.status();
    return store::OpenJobError(record->job());
  }

  absl::StatusOr<int> DeleteFinishedJobs(absl::Time before, int limit) override {
    constexpr absl::string_view kOp = "DeleteFinishedJobs";
    if (limit <= 0) {
      return absl::InvalidArgumentError("DeleteFinishedJobs: limit must be positive");
    }
    absl::MutexLock lock(&mu_);
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();
    auto stmt = Prepare(
        "DELETE FROM jobs WHERE sequence IN (SELECT sequence FROM jobs WHERE open = 0 AND "
        "update_time_us < ?1 ORDER BY update_time_us, sequence LIMIT ?2)",
        kOp);
    if (!stmt.ok()) return stmt.status();
    if (int rc = Binder(stmt->get()).Int64(1, absl::ToUnixMicros(before)).Int64(2, limit).rc();
        rc != SQLITE_OK) {
      return Error(rc, kOp);
    }
    if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
    const int deleted = sqlite3_changes(db_);
    if (auto s = tx.Commit(); !s.ok()) return s;
    return deleted;
  }

 private:
  // A cached statement on loan; reset (and unbound) when the loan ends so
  // the next user starts clean and read transactions are not held open.
  class ScopedStmt {
   public:
    explicit ScopedStmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
    ScopedStmt(ScopedStmt&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
    ScopedStmt& operator=(ScopedStmt&&) = delete;
    ~ScopedStmt() {
      if (stmt_ != nullptr) {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
      }
    }
    sqlite3_stmt* get() const { return stmt_; }

   private:
    sqlite3_stmt* stmt_;
  };

  // BEGIN IMMEDIATE on construction; rolls back unless Commit() succeeded.
  class Transaction {
   public:
    Transaction(SqliteJobStore* store, absl::string_view op)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->mu_)
        : store_(store), op_(op), changes_before_(sqlite3_total_changes64(store->db_)) {
      status_ = store_->EnsureFullSync(op_);
      if (status_.ok()) status_ = store_->Step("BEGIN IMMEDIATE", op_);
      open_ = status_.ok();
    }
    ~Transaction() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      // Rollback errors are not actionable here; the statement that failed
      // already produced the status the caller sees.
      if (open_) store_->Step("ROLLBACK", op_).IgnoreError();
    }
    const absl::Status& status() const { return status_; }
    absl::Status Commit() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      absl::Status s = store_->Step("COMMIT", op_);
      if (!s.ok()) {
        store_->AfterFailedCommit(op_);
        return s;
      }
      open_ = false;
      // A commit that changed rows wrote WAL frames and, with
      // synchronous=FULL, flushed the WAL, and with it every commit before
      // it (CreateJobSyncLater sets unsynced_ again after its own). One
      // that changed nothing wrote and flushed nothing.
      if (sqlite3_total_changes64(store_->db_) != changes_before_) store_->unsynced_ = false;
      return store_->AfterCommit(op_);
    }

   private:
    SqliteJobStore* store_;
    absl::string_view op_;
    const int64_t changes_before_;
    absl::Status status_;
    bool open_ = false;
  };

  // Runs ListJobs' query (at most `row_limit` rows) and hands each row to
  // `row` (the statement, on that row) until it returns false or an error.
  // One SQL text per combination of column filters and order (128 at most),
  // each cached, so every filter can use its (column, sequence) index. The
  // other filters are checked by the caller's scan.
  template <typename Row>
  absl::Status ForEachListedRow(const JobQuery& query, int64_t row_limit, absl::string_view op,
                                Row row) {
    std::string sql = absl::StrCat("SELECT sequence, name, record, cancel_requested FROM jobs WHERE sequence ",
                                   query.newest_first ? "<" : ">", " ?1");
    if (query.state.has_value()) sql += " AND state = ?2";
    if (query.blueprint_id.has_value()) sql += " AND blueprint_id = ?3";
    if (query.source_region.has_value()) sql += " AND source_region = ?4";
    // A job without a request_id has NULL there, and request_id "" means
    // those jobs.
    if (query.request_id.has_value()) {
      sql += query.request_id->empty() ? " AND request_id IS NULL" : " AND request_id = ?5";
    }
    if (query.creator.has_value()) sql += " AND creator = ?6";
    if (query.retry_of.has_value()) sql += " AND retry_of = ?7";
    absl::StrAppend(&sql, " ORDER BY sequence ", query.newest_first ? "DESC" : "ASC", " LIMIT ?8");

    absl::MutexLock lock(&mu_);
    auto stmt = Prepare(sql, op);
    if (!stmt.ok()) return stmt.status();
    Binder b(stmt->get());
    b.Int64(1, query.cursor != 0 ? query.cursor : query.newest_first ? INT64_MAX : 0);
    if (query.state.has_value()) b.Int64(2, *query.state);
    if (query.blueprint_id.has_value()) b.Text(3, *query.blueprint_id);
    if (query.source_region.has_value()) b.Text(4, *query.source_region);
    if (query.request_id.has_value() && !query.request_id->empty()) {
      b.Text(5, *query.request_id);
    }
    if (query.creator.has_value()) b.Text(6, *query.creator);
    if (query.retry_of.has_value()) b.Text(7, *query.retry_of);
    b.Int64(8, row_limit);
    if (b.rc() != SQLITE_OK) return Error(b.rc(), op);

    for (;;) {
      int rc = sqlite3_step(stmt->get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(rc, op);
      absl::StatusOr<bool> more = row(stmt->get());
      if (!more.ok()) return more.status();
      if (!*more) break;
    }
    return absl::OkStatus();
  }

  absl::Status Error(int rc, absl::string_view op) const {
    absl::Status s = StoreError(
        absl::Status(CodeFor(rc), absl::StrCat("sqlite job store ", path_, ": ", op, ": ",
                                               sqlite3_errmsg(db_), " (sqlite code ", rc, ")")));
    if (health_ != nullptr) {
      health_->ReportFailure(ProblemFor(rc, sqlite3_system_errno(db_)), std::string(s.message()));
    }
    return s;
  }

  // A commit returned: did it reach the file the path names? A deleted or
  // replaced file takes writes into an inode no restart will open, so the
  // write is reported failed (the caller must not act on it) and the store
  // stays unhealthy until a restart.
  absl::Status AfterCommit(absl::string_view op) const {
    absl::Status s = VerifyFile(op);
    if (health_ != nullptr) {
      if (s.ok()) {
        health_->ReportWritten();
      } else {
        health_->ReportFailure(StoreProblem::kFileReplaced, std::string(s.message()));
      }
    }
    return s;
  }

  absl::Status VerifyFile(absl::string_view op) const {
    struct stat st;
    const bool same =
        stat(path_.c_str(), &st) == 0 && st.st_dev == file_dev_ && st.st_ino == file_ino_;
    if (same) return absl::OkStatus();
    return StoreError(absl::UnavailableError(absl::StrCat(
        "sqlite job store ", path_, ": ", op,
        ": the database file was deleted or replaced while the server ran (writes would be "
        "lost at the next start); restart needed")));
  }

  void ProbeLoop() {
    absl::MutexLock lock(&probe_mu_);
    int64_t tick = 0;
    while (!probe_mu_.AwaitWithTimeout(absl::Condition(&stop_probing_),
                                       options_.probe_interval)) {
      probe_mu_.Unlock();
      Probe(++tick);
      probe_mu_.Lock();
    }
  }

  // Healthy: checks the file is still the one open (a stat), and every
  // tenth tick writes, so a full disk shows while idle too. Unhealthy:
  // writes every tick, which is how the store learns it is writable again.
  // A file that was replaced stays so: nothing to probe.
  void Probe(int64_t tick) {
    const StoreCondition condition = health_->Get();
    if (IsStickyProblem(condition.problem)) return;
    absl::MutexLock lock(&mu_);
    if (condition.healthy() && tick % 10 != 0) {
      if (absl::Status s = VerifyFile("probe"); !s.ok()) {
        health_->ReportFailure(StoreProblem::kFileReplaced, std::string(s.message()));
      }
      return;
    }
    constexpr absl::string_view kOp = "probe write";
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return;  // reported by Error()
    auto stmt = Prepare(
        "INSERT OR REPLACE INTO store_probe (id, write_time_us) VALUES (1, ?1)", kOp);
    if (!stmt.ok()) return;
    if (int rc = Binder(stmt->get()).Int64(1, absl::ToUnixMicros(absl::Now())).rc();
        rc != SQLITE_OK) {
      return;
    }
    if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) {
      Error(rc, kOp).IgnoreError();  // reports it
      return;
    }
    tx.Commit().IgnoreError();  // reports either way
  }

  absl::StatusOr<ScopedStmt> Prepare(const std::string& sql, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return ScopedStmt(it->second);
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()) + 1,
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Error(rc, op);
    }
    stmts_.emplace(sql, stmt);
    return ScopedStmt(stmt);
  }

  // A commit failed: if it was its flush, with unflushed commits pending,
  // those may be lost (FlushFailed). Any other failure (a full disk on
  // write, busy) leaves the pages written before as they were.
  void AfterFailedCommit(absl::string_view op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int rc = sqlite3_extended_errcode(db_);
    if (unsynced_ && rc == SQLITE_IOERR_FSYNC) {
      FlushFailed(rc, sqlite3_system_errno(db_), op).IgnoreError();
    }
  }

  // After CreateJobSyncLater failed to set synchronous back to FULL, every
  // write tries again first and fails without it.
  absl::Status EnsureFullSync(absl::string_view op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!restore_full_sync_) return absl::OkStatus();
    if (absl::Status s = Exec("PRAGMA synchronous = FULL", op); !s.ok()) return s;
    restore_full_sync_ = false;
    return absl::OkStatus();
  }

  // Runs a statement that returns no rows (or whose rows are ignored).
  absl::Status Step(const std::string& sql, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto stmt = Prepare(sql, op);
    if (!stmt.ok()) return stmt.status();
    int rc = sqlite3_step(stmt->get());
    while (rc == SQLITE_ROW) rc = sqlite3_step(stmt->get());
    return rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, op);
  }

  // Uncached, for statements run once per open (and multi-statement text).
  absl::Status Exec(const char* sql, absl::string_view op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, op);
  }

  absl::Status QueryText(const char* sql, absl::string_view op, std::string* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(stmt, 0);
        *out = text == nullptr ? "" : reinterpret_cast<const char*>(text);
        rc = SQLITE_OK;
      }
    }
    absl::Status s = rc == SQLITE_OK || rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, op);
    sqlite3_finalize(stmt);
    return s;
  }

  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    constexpr absl::string_view kOp = "open (schema migration)";
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();
    if (auto s = Exec("CREATE TABLE IF NOT EXISTS schema_version ("
                      "  version INTEGER PRIMARY KEY, applied_time_us INTEGER NOT NULL)",
                      kOp);
        !s.ok()) {
      return s;
    }
    std::string text;
    if (auto s = QueryText("SELECT COALESCE(MAX(version), 0) FROM schema_version", kOp, &text);
        !s.ok()) {
      return s;
    }
    const int64_t current = std::strtoll(text.c_str(), nullptr, 10);
    if (current > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("sqlite job store ", path_, " has schema version ", current,
                       ", newer than the newest this build knows (", kSchemaVersion,
                       "); refusing to open it (was it written by a newer blueprint-sync?)"));
    }
    for (int64_t v = current; v < kSchemaVersion; ++v) {
      const std::string op = absl::StrCat("open (schema migration to version ", v + 1, ")");
      if (auto s = Exec(kMigrations[v], op); !s.ok()) return s;
      auto stmt = Prepare(
          "INSERT INTO schema_version (version, applied_time_us) "
          "VALUES (?1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))",
          op);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Int64(1, v + 1).rc(); rc != SQLITE_OK) return Error(rc, op);
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, op);
    }
    return tx.Commit();
  }

  absl::Status WriteBlob(const JobRecord& record, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string blob;
    if (!record.SerializeToString(&blob)) {
      return absl::InternalError(
          absl::StrCat(op, ": cannot serialize the record of job ", record.job().name()));
    }
    auto stmt = Prepare("UPDATE jobs SET record = ?1 WHERE sequence = ?2", op);
    if (!stmt.ok()) return stmt.status();
    if (int rc = Binder(stmt->get()).Blob(1, blob).Int64(2, record.sequence()).rc();
        rc != SQLITE_OK) {
      return Error(rc, op);
    }
    if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, op);
    return absl::OkStatus();
  }

  const std::string path_;
  StoreHealth* const health_;  // null: nothing reports
  const SqliteStoreOptions options_;
  // The open file's identity, set once by Init.
  dev_t file_dev_ = 0;
  ino_t file_ino_ = 0;
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, sqlite3_stmt*> stmts_ ABSL_GUARDED_BY(mu_);
  // CreateJobSyncLater could not set synchronous back to FULL.
  bool restore_full_sync_ ABSL_GUARDED_BY(mu_) = false;
  // A CreateJobSyncLater commit is not yet flushed to disk.
  bool unsynced_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex probe_mu_;
  bool stop_probing_ ABSL_GUARDED_BY(probe_mu_) = false;
  std::thread prober_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> OpenSqliteJobStore(const std::string& path) {
  return OpenSqliteJobStore(path, SqliteStoreOptions{});
}

absl::StatusOr<std::unique_ptr<JobStore>> OpenSqliteJobStore(const std::string& path,
                                                            const SqliteStoreOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("sqlite job store: empty path");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat("sqlite job store ", path,
                                                        ": cannot create directory ",
                                                        parent.string(), ": ", ec.message()));
    }
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s(CodeFor(rc),
                   absl::StrCat("sqlite job store ", path,
                                ": open: ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                                " (sqlite code ", rc, ")"));
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  auto store = std::make_unique<SqliteJobStore>(path, db, options);
  if (auto s = store->Init(); !s.ok()) return s;
  store->StartProbing();
  return store;
}

}  // namespace blueprintsync::jobs
