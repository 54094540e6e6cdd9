#include "service/jobs/sqlite_schema.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "service/jobs/store_query.h"

namespace blueprintsync::jobs::sqlite {

using store::Micros;

absl::StatusCode CodeFor(int rc) {
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return absl::StatusCode::kAlreadyExists;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

StoreProblem ProblemFor(int rc, int system_errno) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return StoreProblem::kNoSpace;
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return StoreProblem::kReadOnly;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StoreProblem::kDamaged;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      if (system_errno == ENOSPC || system_errno == EDQUOT) return StoreProblem::kNoSpace;
      if (system_errno == EROFS || system_errno == EACCES || system_errno == EPERM) {
        return StoreProblem::kReadOnly;
      }
      return StoreProblem::kIoError;
    default:
      return StoreProblem::kNone;
  }
}

Binder& BindDerivedColumns(Binder& b, int first, const v1::SyncJob& job) {
  return b.TextOrNull(first, RequestKey(job))
      .TextOrNull(first + 1, job.request_id())
      .Text(first + 2, job.creator())
      .Text(first + 3, job.retry_of())
      .Int64(first + 4, job.state())
      .Int64(first + 5, IsOpen(job) ? 1 : 0)
      .Text(first + 6, job.blueprint_id())
      .Text(first + 7, job.source_region())
      .Int64OrNull(first + 8, Micros(job.has_create_time(), job.create_time()))
      .Int64OrNull(first + 9, Micros(job.has_update_time(), job.update_time()));
}

absl::Status ParseRowInto(sqlite3_stmt* stmt, absl::string_view path, absl::string_view op,
                          JobRecord* record) {
  const int64_t sequence = sqlite3_column_int64(stmt, 0);
  const unsigned char* name_text = sqlite3_column_text(stmt, 1);
  const absl::string_view name =
      name_text == nullptr ? "" : reinterpret_cast<const char*>(name_text);
  const void* blob = sqlite3_column_blob(stmt, 2);
  const int size = sqlite3_column_bytes(stmt, 2);
  if (!record->ParseFromArray(blob, size)) {
    return absl::DataLossError(absl::StrCat("sqlite job store ", path, ": ", op,
                                            ": the stored record of job ", name,
                                            " does not parse"));
  }
  if (record->job().name() != name) {
    return absl::DataLossError(absl::StrCat("sqlite job store ", path, ": ", op,
                                            ": the stored record of job ", name, " is for job \"",
                                            record->job().name(), "\""));
  }
  record->set_sequence(sequence);
  // Kept apart from the record (RequestCancel); absent from queries that
  // do not ask for it.
  record->set_cancel_requested(sqlite3_column_count(stmt) > 3 &&
                               sqlite3_column_int(stmt, 3) != 0);
  return absl::OkStatus();
}

absl::StatusOr<JobRecord> RowToRecord(sqlite3_stmt* stmt, absl::string_view path,
                                      absl::string_view op) {
  JobRecord record;
  if (absl::Status s = ParseRowInto(stmt, path, op, &record); !s.ok()) return s;
  return record;
}

}  // namespace blueprintsync::jobs::sqlite
