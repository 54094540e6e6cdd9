// SQLite PolicyStore ("sqlite:PATH"): table sync_policies in the jobs' file,
// on a connection of its own (the job store keeps its connection to
// itself), with the job store's settings: WAL, synchronous=FULL (a write is
// durable when the call returns) and the same busy timeout.
//
// Every write runs in one BEGIN IMMEDIATE transaction, which serializes it
// against writers on other connections (another process on the same file)
// before anything is read, so the revision, uid and count checks and the
// write they guard cannot interleave with another write. The change mark is
// the one row of sync_policy_changes, bumped in the transaction of every
// spec write; status writes leave it alone.
//
// The service runs a single process on a SQLite file (no leader election),
// so, as for the job store, the write fence does not apply.
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/common/error_reason.h"
#include "service/jobs/sqlite_schema.h"
#include "service/policies/policy_store.h"
#include "service/policies/policy_store_internal.h"

namespace blueprintsync::policies {
namespace {

using jobs::sqlite::Binder;
using jobs::sqlite::CodeFor;

// As the job store's: long enough to ride out another connection's write
// transaction, short enough that a wedged peer surfaces as an error.
constexpr int kBusyTimeoutMs = 10000;

// Created if missing, like the rest of the file's schema when the job store
// opens it; a later change of these tables needs a migration of its own.
constexpr char kSchema[] = R"sql(
  CREATE TABLE IF NOT EXISTS sync_policies (
    name TEXT PRIMARY KEY NOT NULL,
    uid TEXT NOT NULL,
    revision INTEGER NOT NULL,
    delete_requested INTEGER NOT NULL DEFAULT 0,
    spec BLOB NOT NULL,
    status BLOB NOT NULL DEFAULT x''
  );
  CREATE TABLE IF NOT EXISTS sync_policy_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    mark INTEGER NOT NULL
  );
  INSERT OR IGNORE INTO sync_policy_changes (id, mark) VALUES (1, 0);
)sql";

constexpr char kColumns[] = "name, uid, revision, delete_requested, spec, status";

std::string Text(sqlite3_stmt* stmt, int col) {
  const unsigned char* text = sqlite3_column_text(stmt, col);
  return text == nullptr ? "" : reinterpret_cast<const char*>(text);
}

std::string Blob(sqlite3_stmt* stmt, int col) {
  const void* blob = sqlite3_column_blob(stmt, col);
  const int size = sqlite3_column_bytes(stmt, col);
  return blob == nullptr ? "" : std::string(static_cast<const char*>(blob), size);
}

class SqlitePolicyStore final : public PolicyStore {
 public:
  SqlitePolicyStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  ~SqlitePolicyStore() override {
    absl::MutexLock lock(&mu_);
    sqlite3_close_v2(db_);
  }

  absl::Status Init() {
    constexpr absl::string_view kOp = "open";
    absl::MutexLock lock(&mu_);
    // The first statement that reads the file: a file that is not a
    // database fails here.
    auto mode = Prepare("PRAGMA journal_mode = WAL", kOp);
    if (!mode.ok()) return mode.status();
    if (int rc = sqlite3_step(mode->get()); rc != SQLITE_ROW) return Error(rc, kOp);
    if (const std::string m = Text(mode->get(), 0); m != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite policy store ", path_, ": cannot enable WAL journal mode (got \"", m, "\")"));
    }
    mode->Finalize();
    if (auto s = Exec("PRAGMA synchronous = FULL", kOp); !s.ok()) return s;
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();
    if (auto s = Exec(kSchema, kOp); !s.ok()) return s;
    return tx.Commit();
  }

  absl::StatusOr<PolicyRecord> Create(const PolicyRecord& record) override {
    constexpr absl::string_view kOp = "Create";
    absl::StatusOr<store::NewRow> row = store::PrepareCreate(record);
    if (!row.ok()) return row.status();
    const std::string& name = record.spec().name();
    PolicyRecord& stored = row->stored;
    std::string& spec = row->spec;
    std::string& status = row->status;

    absl::MutexLock lock(&mu_);
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();
    {
      auto stmt = Prepare(
          "SELECT (SELECT count(*) FROM sync_policies), "
          "EXISTS (SELECT 1 FROM sync_policies WHERE name = ?1)",
          kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, kOp);
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_ROW) return Error(rc, kOp);
      if (sqlite3_column_int64(stmt->get(), 1) != 0) return store::AlreadyExists(name);
      if (sqlite3_column_int64(stmt->get(), 0) >= kMaxPolicies) return store::TooMany(name);
    }
    {
      auto stmt = Prepare(
          "INSERT INTO sync_policies (name, uid, revision, delete_requested, spec, status) "
          "VALUES (?1, ?2, 1, ?3, ?4, ?5)",
          kOp);
      if (!stmt.ok()) return stmt.status();
      Binder b(stmt->get());
      b.Text(1, name)
          .Text(2, stored.uid())
          .Int64(3, stored.delete_requested() ? 1 : 0)
          .Blob(4, spec)
          .Blob(5, status);
      if (b.rc() != SQLITE_OK) return Error(b.rc(), kOp);
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
    }
    if (auto s = BumpMark(kOp); !s.ok()) return s;
    if (auto s = tx.Commit(); !s.ok()) return s;
    return stored;
  }

  absl::StatusOr<PolicyRecord> Get(const std::string& name) override {
    constexpr absl::string_view kOp = "Get";
    absl::MutexLock lock(&mu_);
    auto found = Find(name, kOp);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return store::NotFound(kOp, name);
    return **std::move(found);
  }

  absl::StatusOr<PolicyRecord> UpdateSpec(const v1::SyncPolicy& spec,
                                          std::optional<int64_t> expected_revision) override {
    constexpr absl::string_view kOp = "UpdateSpec";
    if (auto s = store::CheckSpec(kOp, spec); !s.ok()) return s;
    std::string blob;
    if (!spec.SerializeToString(&blob)) {
      return absl::InternalError(absl::StrCat("UpdateSpec: cannot serialize policy ", spec.name()));
    }
    absl::MutexLock lock(&mu_);
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();
    // Checked and written in one transaction that no other writer can
    // enter (BEGIN IMMEDIATE).
    auto found = Find(spec.name(), kOp);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return store::NotFound(kOp, spec.name());
    PolicyRecord record = **std::move(found);
    if (record.delete_requested()) return store::Deleting(kOp, spec.name());
    if (expected_revision.has_value() && *expected_revision != record.revision()) {
      return store::RevisionMismatch(kOp, spec.name(), *expected_revision, record.revision());
    }
    {
      // Only the spec's columns: the status is the controller's.
      auto stmt = Prepare(
          "UPDATE sync_policies SET spec = ?2, revision = revision + 1 WHERE name = ?1", kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, spec.name()).Blob(2, blob).rc(); rc != SQLITE_OK) {
        return Error(rc, kOp);
      }
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
    }
    if (auto s = BumpMark(kOp); !s.ok()) return s;
    if (auto s = tx.Commit(); !s.ok()) return s;
    *record.mutable_spec() = spec;
    record.set_revision(record.revision() + 1);
    return record;
  }

  absl::StatusOr<PolicyRecord> RequestDelete(const std::string& name,
                                             std::optional<int64_t> expected_revision) override {
    constexpr absl::string_view kOp = "RequestDelete";
    absl::MutexLock lock(&mu_);
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();
    auto found = Find(name, kOp);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return store::NotFound(kOp, name);
    PolicyRecord record = **std::move(found);
    // Asked already: see MemoryPolicyStore::RequestDelete.
    if (record.delete_requested()) return record;
    if (expected_revision.has_value() && *expected_revision != record.revision()) {
      return store::RevisionMismatch(kOp, name, *expected_revision, record.revision());
    }
    {
      auto stmt = Prepare(
          "UPDATE sync_policies SET delete_requested = 1, revision = revision + 1 WHERE name = ?1",
          kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, kOp);
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
    }
    if (auto s = BumpMark(kOp); !s.ok()) return s;
    if (auto s = tx.Commit(); !s.ok()) return s;
    record.set_delete_requested(true);
    record.set_revision(record.revision() + 1);
    return record;
  }

  absl::Status Delete(const std::string& name, std::optional<int64_t> expected_revision,
                      const std::string& expected_uid) override {
    constexpr absl::string_view kOp = "Delete";
    absl::MutexLock lock(&mu_);
    Transaction tx(this, kOp);
    if (!tx.status().ok()) return tx.status();
    {
      auto stmt = Prepare("SELECT uid, revision FROM sync_policies WHERE name = ?1", kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, kOp);
      const int rc = sqlite3_step(stmt->get());
      if (rc == SQLITE_DONE) return store::NotFound(kOp, name);
      if (rc != SQLITE_ROW) return Error(rc, kOp);
      if (!expected_uid.empty() && Text(stmt->get(), 0) != expected_uid) {
        return store::UidMismatch(kOp, name);
      }
      const int64_t revision = sqlite3_column_int64(stmt->get(), 1);
      if (expected_revision.has_value() && *expected_revision != revision) {
        return store::RevisionMismatch(kOp, name, *expected_revision, revision);
      }
    }
    {
      auto stmt = Prepare("DELETE FROM sync_policies WHERE name = ?1", kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, kOp);
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
    }
    if (auto s = BumpMark(kOp); !s.ok()) return s;
    return tx.Commit();
  }

  absl::Status WriteStatus(const std::string& name, const std::string& uid,
                           const PolicyStatus& status) override {
    constexpr absl::string_view kOp = "WriteStatus";
    if (auto s = store::CheckStatus(kOp, name, status); !s.ok()) return s;
    std::string blob;
    if (!status.SerializeToString(&blob)) {
      return absl::InternalError(
          absl::StrCat("WriteStatus: cannot serialize the status of ", name));
    }
    absl::MutexLock lock(&mu_);
    // One statement: the uid is checked by the write itself. Only the
    // status column: the spec is the API's.
    {
      auto stmt = Prepare("UPDATE sync_policies SET status = ?3 WHERE name = ?1 AND uid = ?2", kOp);
      if (!stmt.ok()) return stmt.status();
      if (int rc = Binder(stmt->get()).Text(1, name).Text(2, uid).Blob(3, blob).rc();
          rc != SQLITE_OK) {
        return Error(rc, kOp);
      }
      if (int rc = sqlite3_step(stmt->get()); rc != SQLITE_DONE) return Error(rc, kOp);
    }
    if (sqlite3_changes(db_) == 1) return absl::OkStatus();
    // Nothing written: say why (a read after the fact; either way the
    // answer is NotFound).
    auto found = Find(name, kOp);
    if (!found.ok()) return found.status();
    if (found->has_value()) return store::UidMismatch(kOp, name);
    return store::NotFound(kOp, name);
  }

  absl::StatusOr<PolicyPage> List(const PolicyQuery& query) override {
    constexpr absl::string_view kOp = "List";
    if (auto s = store::ValidateQuery(query); !s.ok()) return s;
    store::PageScan scan(query);
    absl::MutexLock lock(&mu_);
    auto stmt = Prepare(absl::StrCat("SELECT ", kColumns,
                                     " FROM sync_policies WHERE name > ?1 ORDER BY name LIMIT ?2"),
                        kOp);
    if (!stmt.ok()) return stmt.status();
    if (int rc = Binder(stmt->get()).Text(1, query.after_name).Int64(2, scan.row_limit()).rc();
        rc != SQLITE_OK) {
      return Error(rc, kOp);
    }
    // Rows are read one at a time, so only the page is held.
    for (;;) {
      const int rc = sqlite3_step(stmt->get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(rc, kOp);
      auto record = RowToRecord(stmt->get(), kOp);
      if (!record.ok()) return record.status();
      if (!scan.Offer(*std::move(record))) break;
    }
    return scan.TakePage();
  }

  absl::StatusOr<std::vector<PolicyRecord>> ListAll() override {
    constexpr absl::string_view kOp = "ListAll";
    absl::MutexLock lock(&mu_);
    auto stmt = Prepare(
        absl::StrCat("SELECT ", kColumns, " FROM sync_policies ORDER BY name LIMIT ?1"), kOp);
    if (!stmt.ok()) return stmt.status();
    if (int rc = Binder(stmt->get()).Int64(1, kMaxPolicies).rc(); rc != SQLITE_OK) {
      return Error(rc, kOp);
    }
    std::vector<PolicyRecord> out;
    for (;;) {
      const int rc = sqlite3_step(stmt->get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(rc, kOp);
      auto record = RowToRecord(stmt->get(), kOp);
      if (!record.ok()) return record.status();
      out.push_back(*std::move(record));
    }
    return out;
  }

  absl::StatusOr<int64_t> ChangeMark() override {
    constexpr absl::string_view kOp = "ChangeMark";
    absl::MutexLock lock(&mu_);
    auto stmt = Prepare("SELECT mark FROM sync_policy_changes WHERE id = 1", kOp);
    if (!stmt.ok()) return stmt.status();
    const int rc = sqlite3_step(stmt->get());
    if (rc == SQLITE_ROW) return sqlite3_column_int64(stmt->get(), 0);
    if (rc == SQLITE_DONE) {
      return absl::DataLossError(absl::StrCat("sqlite policy store ", path_,
                                              ": ChangeMark: table sync_policy_changes is empty"));
    }
    return Error(rc, kOp);
  }

 private:
  // A prepared statement, finalized when it goes out of scope (which also
  // ends any read it holds open). Policies are few and their calls rare,
  // so statements are not cached.
  class Stmt {
   public:
    explicit Stmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
    Stmt(Stmt&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
    Stmt& operator=(Stmt&&) = delete;
    ~Stmt() { Finalize(); }
    sqlite3_stmt* get() const { return stmt_; }
    void Finalize() {
      if (stmt_ != nullptr) sqlite3_finalize(std::exchange(stmt_, nullptr));
    }

   private:
    sqlite3_stmt* stmt_;
  };

  // BEGIN IMMEDIATE on construction; rolls back unless Commit() succeeded.
  class Transaction {
   public:
    Transaction(SqlitePolicyStore* store, absl::string_view op)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->mu_)
        : store_(store), op_(op) {
      status_ = store_->Exec("BEGIN IMMEDIATE", op_);
      open_ = status_.ok();
    }
    ~Transaction() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      // The statement that failed already produced the status the caller
      // sees; a failed rollback adds nothing actionable.
      if (open_) store_->Exec("ROLLBACK", op_).IgnoreError();
    }
    const absl::Status& status() const { return status_; }
    absl::Status Commit() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      absl::Status s = store_->Exec("COMMIT", op_);
      if (s.ok()) open_ = false;
      return s;
    }

   private:
    SqlitePolicyStore* store_;
    absl::string_view op_;
    absl::Status status_;
    bool open_ = false;
  };

  absl::Status Error(int rc, absl::string_view op) const {
    return StoreError(
        absl::Status(CodeFor(rc), absl::StrCat("sqlite policy store ", path_, ": ", op, ": ",
                                               sqlite3_errmsg(db_), " (sqlite code ", rc, ")")));
  }

  absl::StatusOr<Stmt> Prepare(const std::string& sql, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    sqlite3_stmt* stmt = nullptr;
    const int rc =
        sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()) + 1, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Error(rc, op);
    }
    return Stmt(stmt);
  }

  // SQL text without parameters, possibly several statements.
  absl::Status Exec(const char* sql, absl::string_view op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, op);
  }

  absl::Status BumpMark(absl::string_view op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Exec("UPDATE sync_policy_changes SET mark = mark + 1 WHERE id = 1", op);
  }

  // The record named `name`, or nullopt.
  absl::StatusOr<std::optional<PolicyRecord>> Find(const std::string& name, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto stmt =
        Prepare(absl::StrCat("SELECT ", kColumns, " FROM sync_policies WHERE name = ?1"), op);
    if (!stmt.ok()) return stmt.status();
    if (int rc = Binder(stmt->get()).Text(1, name).rc(); rc != SQLITE_OK) return Error(rc, op);
    const int rc = sqlite3_step(stmt->get());
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) return Error(rc, op);
    auto record = RowToRecord(stmt->get(), op);
    if (!record.ok()) return record.status();
    return std::optional<PolicyRecord>(*std::move(record));
  }

  // Columns as kColumns.
  absl::StatusOr<PolicyRecord> RowToRecord(sqlite3_stmt* stmt, absl::string_view op) const {
    return store::RecordFromRow(absl::StrCat("sqlite policy store ", path_), op, Text(stmt, 0),
                                Text(stmt, 1), sqlite3_column_int64(stmt, 2),
                                sqlite3_column_int(stmt, 3) != 0, Blob(stmt, 4), Blob(stmt, 5));
  }

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<PolicyStore>> OpenSqlitePolicyStore(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("sqlite policy store: empty path");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat("sqlite policy store ", path,
                                                        ": cannot create directory ",
                                                        parent.string(), ": ", ec.message()));
    }
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s(CodeFor(rc),
                   absl::StrCat("sqlite policy store ", path,
                                ": open: ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                                " (sqlite code ", rc, ")"));
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  auto store = std::make_unique<SqlitePolicyStore>(path, db);
  if (auto s = store->Init(); !s.ok()) return s;
  return store;
}

}  // namespace blueprintsync::policies
