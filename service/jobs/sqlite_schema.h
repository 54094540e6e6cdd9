// The SQLite job store's jobs table: the migrations that build its schema,
// how a record is bound into its columns, and how a row is read back. Used
// only by sqlite_job_store.cc (and, for Binder and CodeFor, by the SQLite
// policy store on the same file); keeping the on-disk format in one place
// makes a schema change one reviewable unit.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_SQLITE_SCHEMA_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_SQLITE_SCHEMA_H_

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/jobs/job_store.h"
#include "service/jobs/store_health.h"

namespace blueprintsync::jobs::sqlite {

// Migration i takes the schema from version i to i + 1; each runs in the
// same transaction as the schema_version update. Append only: a migration
// that has shipped is never edited.
inline constexpr const char* kMigrations[] = {
    // 1: initial schema. The indexed columns duplicate fields of `record` so
    // ListJobs filters without parsing blobs.
    R"sql(
      CREATE TABLE jobs (
        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT UNIQUE NOT NULL,
        request_id TEXT UNIQUE,
        state INTEGER NOT NULL,
        blueprint_id TEXT NOT NULL,
        source_region TEXT NOT NULL,
        create_time_us INTEGER,
        update_time_us INTEGER,
        record BLOB NOT NULL
      );
      CREATE INDEX jobs_by_state ON jobs (state, sequence);
      CREATE INDEX jobs_by_blueprint_id ON jobs (blueprint_id, sequence);
      CREATE INDEX jobs_by_source_region ON jobs (source_region, sequence);
    )sql",
    // 2: jobs with creators, cancellation and copy cleanup.
    //  - request_key (RequestKey(): creator and request_id) takes over the
    //    uniqueness of request_id, which two creators may now share;
    //    request_id stays as a plain column for the request_id filter.
    //    Existing request ids are keys already (no creator then).
    //  - open (IsOpen()) finds the jobs the engine still has work on and
    //    the jobs retention may delete; before this version exactly the
    //    QUEUED and RUNNING ones were open.
    //  - creator and retry_of are filterable.
    //  - cancel_requested (RequestCancel) is kept apart from the record.
    // SQLite cannot drop a column's UNIQUE constraint, so the table is
    // rebuilt; its AUTOINCREMENT high-water mark moves with it, so no
    // sequence is ever handed out twice.
    R"sql(
      CREATE TABLE jobs_v2 (
        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT UNIQUE NOT NULL,
        request_key TEXT UNIQUE,
        request_id TEXT,
        creator TEXT NOT NULL,
        retry_of TEXT NOT NULL,
        state INTEGER NOT NULL,
        open INTEGER NOT NULL,
        blueprint_id TEXT NOT NULL,
        source_region TEXT NOT NULL,
        create_time_us INTEGER,
        update_time_us INTEGER,
        record BLOB NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0
      );
      INSERT INTO jobs_v2 (sequence, name, request_key, request_id, creator, retry_of, state,
                           open, blueprint_id, source_region, create_time_us, update_time_us,
                           record)
        SELECT sequence, name, request_id, request_id, '', '', state, state IN (1, 2),
               blueprint_id, source_region, create_time_us, update_time_us, record
        FROM jobs;
      DELETE FROM sqlite_sequence WHERE name = 'jobs_v2';
      UPDATE sqlite_sequence SET name = 'jobs_v2' WHERE name = 'jobs';
      DROP TABLE jobs;
      ALTER TABLE jobs_v2 RENAME TO jobs;
      CREATE INDEX jobs_by_state ON jobs (state, sequence);
      CREATE INDEX jobs_by_blueprint_id ON jobs (blueprint_id, sequence);
      CREATE INDEX jobs_by_source_region ON jobs (source_region, sequence);
      CREATE INDEX jobs_by_request_id ON jobs (request_id, sequence);
      CREATE INDEX jobs_by_creator ON jobs (creator, sequence);
      CREATE INDEX jobs_by_retry_of ON jobs (retry_of, sequence);
      CREATE INDEX jobs_by_open ON jobs (open, sequence);
      CREATE INDEX jobs_by_open_update_time ON jobs (open, update_time_us);
    )sql",
};
inline constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// The status code for a SQLite result code (extended codes included).
absl::StatusCode CodeFor(int rc);

// The storage problem a failed call shows (kNone for errors that say
// nothing about the file: constraints, a busy peer, misuse). `system_errno`
// is sqlite3_system_errno() of the connection, which tells an I/O error's
// ENOSPC or EROFS apart from others.
StoreProblem ProblemFor(int rc, int system_errno);

// Binds parameters, remembering the first failure so call sites check once.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}

  Binder& Text(int i, absl::string_view v) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    return *this;
  }
  // Empty text is stored as NULL (request_key, request_id: many jobs have
  // none, and the UNIQUE constraint must not apply to them).
  Binder& TextOrNull(int i, absl::string_view v) { return v.empty() ? Null(i) : Text(i, v); }
  Binder& Int64(int i, int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Binder& Int64OrNull(int i, std::optional<int64_t> v) {
    return v.has_value() ? Int64(i, *v) : Null(i);
  }
  Binder& Blob(int i, const std::string& v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Binder& Null(int i) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_null(stmt_, i);
    return *this;
  }
  int rc() const { return rc_; }

 private:
  sqlite3_stmt* stmt_;
  int rc_ = SQLITE_OK;
};

// Binds the columns derived from the record, as parameters first..first+9:
// request_key, request_id, creator, retry_of, state, open, blueprint_id,
// source_region, create_time_us, update_time_us.
Binder& BindDerivedColumns(Binder& b, int first, const v1::SyncJob& job);

// The record of a row whose columns are 0 sequence, 1 name, 2 record.
// DataLoss when the blob does not parse or belongs to another job; `path`
// and `op` name the store and the call in that error.
absl::StatusOr<JobRecord> RowToRecord(sqlite3_stmt* stmt, absl::string_view path,
                                      absl::string_view op);
// The same, parsed into `record` (which may live on an arena).
absl::Status ParseRowInto(sqlite3_stmt* stmt, absl::string_view path, absl::string_view op,
                          JobRecord* record);

}  // namespace blueprintsync::jobs::sqlite

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_SQLITE_SCHEMA_H_
