// JobStore: durable storage of sync jobs (JobRecord, see
// proto/blueprintsync/internal/job_record.proto). The job engine writes a job
// before any upstream call and after every state change, so after a crash
// the store alone says what was submitted and what still needs tracking.
//
// Implementations: SQLite (the embedded default, "sqlite:PATH") and memory
// ("memory:", for tests). Every implementation passes the shared suite in
// job_store_conformance_test.cc. All methods are thread-safe.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "blueprintsync/internal/job_record.pb.h"

namespace blueprintsync::jobs {

using internal::JobRecord;

struct CreateJobResult {
  JobRecord record;  // the stored record (with its sequence)
  // False when a job with the same non-empty request_id already existed; then
  // `record` is that existing job and nothing was written.
  bool created = false;
};

struct JobQuery {
  // Each set field must match exactly.
  std::optional<v1::SyncJob::State> state;
  std::optional<std::string> blueprint_id;
  std::optional<std::string> source_region;
  // Only jobs with sequence < before_sequence (0 = no bound), newest first.
  int64_t before_sequence = 0;
  int page_size = 50;  // > 0
};

struct JobPage {
  std::vector<JobRecord> records;  // newest (highest sequence) first
  // Set when more records may match: pass as the next before_sequence.
  std::optional<int64_t> next_before_sequence;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Inserts `record` (its job.name must be set and unique) and assigns
  // record.sequence. If job.request_id is non-empty and a job with that
  // request_id exists, returns it with created=false instead. The write is
  // durable when this returns.
  virtual absl::StatusOr<CreateJobResult> CreateJob(const JobRecord& record) = 0;

  // NotFound if there is no job with this name ("syncJobs/{id}").
  virtual absl::StatusOr<JobRecord> GetJob(const std::string& name) = 0;

  // Replaces the stored record with the same job.name (sequence is kept).
  // NotFound if it does not exist. Durable when this returns.
  virtual absl::Status UpdateJob(const JobRecord& record) = 0;

  virtual absl::StatusOr<JobPage> ListJobs(const JobQuery& query) = 0;

  // Every job whose state is QUEUED or RUNNING, oldest first.
  virtual absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() = 0;
};

// "sqlite:PATH" (parent directories are created) or "memory:".
// InvalidArgument naming the accepted forms for anything else.
absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec);

std::unique_ptr<JobStore> MakeMemoryJobStore();
absl::StatusOr<std::unique_ptr<JobStore>> OpenSqliteJobStore(const std::string& path);

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_H_
