// OpenJobStore: turns the --job-store flag value into a JobStore.
#include "service/jobs/job_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/jobs/postgres_connection.h"

namespace blueprintsync::jobs {
namespace {

bool IsPostgresSpec(absl::string_view spec) {
  return absl::StartsWith(spec, "postgres://") || absl::StartsWith(spec, "postgresql://");
}

}  // namespace

constexpr absl::string_view kSqlite = "sqlite:";

std::string SqlitePathOf(const std::string& spec) {
  if (absl::StartsWith(spec, kSqlite) && spec.size() > kSqlite.size()) {
    return spec.substr(kSqlite.size());
  }
  return "";
}

absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec,
                                                       StoreHealth* health) {
  if (spec == "memory:") return MakeMemoryJobStore();
  if (IsPostgresSpec(spec)) return OpenPostgresJobStore(spec);
  if (const std::string path = SqlitePathOf(spec); !path.empty()) {
    SqliteStoreOptions options;
    options.health = health;
    return OpenSqliteJobStore(path, options);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "store must be sqlite:PATH, postgres://… or memory:, got \"", RedactStoreSpec(spec), "\""));
}

std::string RedactStoreSpec(const std::string& spec) {
  return IsPostgresSpec(spec) ? RedactDsn(spec) : spec;
}

bool IsOpen(const v1::SyncJob& job) {
  if (job.state() != v1::SyncJob::SUCCEEDED && job.state() != v1::SyncJob::FAILED &&
      job.state() != v1::SyncJob::CANCELLED) {
    return true;
  }
  for (const auto& d : job.destinations()) {
    if (d.copy_cleanup() == v1::Destination::DELETE_PENDING) return true;
  }
  return false;
}

bool IsOpen(const JobRecord& record) { return IsOpen(record.job()); }

absl::StatusOr<std::optional<int64_t>> JobStore::ListJobsInto(
    const JobQuery& query, google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs) {
  absl::StatusOr<JobPage> page = ListJobs(query);
  if (!page.ok()) return page.status();
  jobs->Reserve(jobs->size() + static_cast<int>(page->records.size()));
  // A swap, or a copy when `jobs` is on an arena.
  for (JobRecord& record : page->records) *jobs->Add() = std::move(*record.mutable_job());
  return page->next_cursor;
}

std::string RequestKey(const v1::SyncJob& job) {
  if (job.request_id().empty()) return "";
  if (job.creator().empty() || job.creator() == kAnonymousCreator) return job.request_id();
  // A newline cannot occur in a UUID, so no creator can collide with another.
  return absl::StrCat(job.creator(), "\n", job.request_id());
}

}  // namespace blueprintsync::jobs
