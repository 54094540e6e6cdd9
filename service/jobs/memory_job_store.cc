// In-memory JobStore ("memory:"): the same semantics as the SQLite store
// without durability, for tests and throwaway runs.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/jobs/job_store.h"

namespace blueprintsync::jobs {
namespace {

bool Matches(const JobQuery& query, const JobRecord& record) {
  const auto& job = record.job();
  if (query.state.has_value() && job.state() != *query.state) return false;
  if (query.blueprint_id.has_value() && job.blueprint_id() != *query.blueprint_id) {
    return false;
  }
  if (query.source_region.has_value() && job.source_region() != *query.source_region) {
    return false;
  }
  return true;
}

bool IsUnfinished(const JobRecord& record) {
  return record.job().state() == v1::SyncJob::QUEUED ||
         record.job().state() == v1::SyncJob::RUNNING;
}

class MemoryJobStore final : public JobStore {
 public:
  absl::StatusOr<CreateJobResult> CreateJob(const JobRecord& record) override {
    const std::string& name = record.job().name();
    const std::string& request_id = record.job().request_id();
    if (name.empty()) return absl::InvalidArgumentError("CreateJob: job.name is required");
    absl::MutexLock lock(&mu_);
    if (!request_id.empty()) {
      auto it = by_request_id_.find(request_id);
      if (it != by_request_id_.end()) return CreateJobResult{records_.at(it->second), false};
    }
    if (by_name_.count(name) != 0) {
      return absl::AlreadyExistsError(absl::StrCat("CreateJob: job ", name, " already exists"));
    }
    const int64_t sequence = ++last_sequence_;
    JobRecord stored = record;
    stored.set_sequence(sequence);
    records_[sequence] = stored;
    by_name_[name] = sequence;
    if (!request_id.empty()) by_request_id_[request_id] = sequence;
    return CreateJobResult{std::move(stored), true};
  }

  absl::StatusOr<JobRecord> GetJob(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return NotFound("GetJob", name);
    return records_.at(it->second);
  }

  absl::Status UpdateJob(const JobRecord& record) override {
    const std::string& name = record.job().name();
    const std::string& request_id = record.job().request_id();
    absl::MutexLock lock(&mu_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return NotFound("UpdateJob", name);
    const int64_t sequence = it->second;
    JobRecord& stored = records_.at(sequence);
    const std::string old_request_id = stored.job().request_id();
    if (request_id != old_request_id && !request_id.empty()) {
      // Mirrors the UNIQUE constraint on jobs.request_id in the SQL stores.
      if (by_request_id_.count(request_id) != 0) {
        return absl::AlreadyExistsError(
            absl::StrCat("UpdateJob: another job already has the request_id of ", name));
      }
    }
    if (request_id != old_request_id) {
      if (!old_request_id.empty()) by_request_id_.erase(old_request_id);
      if (!request_id.empty()) by_request_id_[request_id] = sequence;
    }
    stored = record;
    stored.set_sequence(sequence);
    return absl::OkStatus();
  }

  absl::StatusOr<JobPage> ListJobs(const JobQuery& query) override {
    if (query.page_size <= 0) {
      return absl::InvalidArgumentError("ListJobs: page_size must be positive");
    }
    if (query.before_sequence < 0) {
      return absl::InvalidArgumentError("ListJobs: before_sequence must not be negative");
    }
    absl::MutexLock lock(&mu_);
    JobPage page;
    auto it =
        query.before_sequence == 0 ? records_.end() : records_.lower_bound(query.before_sequence);
    while (it != records_.begin()) {
      --it;
      if (!Matches(query, it->second)) continue;
      if (static_cast<int>(page.records.size()) == query.page_size) {
        page.next_before_sequence = page.records.back().sequence();
        break;
      }
      page.records.push_back(it->second);
    }
    return page;
  }

  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override {
    absl::MutexLock lock(&mu_);
    std::vector<JobRecord> out;
    for (const auto& [sequence, record] : records_) {
      if (IsUnfinished(record)) out.push_back(record);
    }
    return out;
  }

 private:
  static absl::Status NotFound(absl::string_view op, const std::string& name) {
    return absl::NotFoundError(absl::StrCat(op, ": job ", name, " not found"));
  }

  absl::Mutex mu_;
  int64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int64_t, JobRecord> records_ ABSL_GUARDED_BY(mu_);  // by sequence
  std::map<std::string, int64_t> by_name_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> by_request_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<JobStore> MakeMemoryJobStore() { return std::make_unique<MemoryJobStore>(); }

}  // namespace blueprintsync::jobs
