// In-memory JobStore ("memory:"): the same semantics as the SQLite store
// without durability, for tests and throwaway runs.
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/jobs/job_store.h"
#include "service/jobs/store_query.h"

namespace blueprintsync::jobs {
namespace {

class MemoryJobStore final : public JobStore {
 public:
  absl::StatusOr<CreateJobResult> CreateJob(const JobRecord& record) override {
    const std::string& name = record.job().name();
    const std::string request_key = RequestKey(record.job());
    if (name.empty()) return absl::InvalidArgumentError("CreateJob: job.name is required");
    absl::MutexLock lock(&mu_);
    if (!request_key.empty()) {
      auto it = by_request_key_.find(request_key);
      if (it != by_request_key_.end()) return CreateJobResult{records_.at(it->second), false};
    }
    if (by_name_.count(name) != 0) {
      return absl::AlreadyExistsError(absl::StrCat("CreateJob: job ", name, " already exists"));
    }
    const int64_t sequence = ++last_sequence_;
    JobRecord stored = record;
    stored.set_sequence(sequence);
    stored.set_cancel_requested(false);  // only RequestCancel sets it
    records_[sequence] = stored;
    by_name_[name] = sequence;
    if (!request_key.empty()) by_request_key_[request_key] = sequence;
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
    const std::string request_key = RequestKey(record.job());
    absl::MutexLock lock(&mu_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return NotFound("UpdateJob", name);
    const int64_t sequence = it->second;
    JobRecord& stored = records_.at(sequence);
    const std::string old_request_key = RequestKey(stored.job());
    if (request_key != old_request_key && !request_key.empty()) {
      // Mirrors the UNIQUE constraint on jobs.request_key in the SQL stores.
      if (by_request_key_.count(request_key) != 0) {
        return absl::AlreadyExistsError(
            absl::StrCat("UpdateJob: another job already has the request_id of ", name));
      }
    }
    if (request_key != old_request_key) {
      if (!old_request_key.empty()) by_request_key_.erase(old_request_key);
      if (!request_key.empty()) by_request_key_[request_key] = sequence;
    }
    const bool cancel_requested = stored.cancel_requested();  // not UpdateJob's to change
    stored = record;
    stored.set_sequence(sequence);
    stored.set_cancel_requested(cancel_requested);
    return absl::OkStatus();
  }

  absl::Status RequestCancel(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return NotFound("RequestCancel", name);
    records_.at(it->second).set_cancel_requested(true);
    return absl::OkStatus();
  }

  absl::StatusOr<JobPage> ListJobs(const JobQuery& query) override {
    if (auto s = store::ValidateQuery(query); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    store::PageScan scan(query);
    // The column filters skip rows without counting them, as an index does
    // in the SQL stores.
    auto offer = [&](const JobRecord& record) {
      return !store::MatchesColumnFilters(query, record.job()) || scan.Offer(record);
    };
    if (query.newest_first) {
      auto end = query.cursor == 0 ? records_.end() : records_.lower_bound(query.cursor);
      for (auto it = std::make_reverse_iterator(end); it != records_.rend(); ++it) {
        if (!offer(it->second)) break;
      }
    } else {
      for (auto it = records_.upper_bound(query.cursor); it != records_.end(); ++it) {
        if (!offer(it->second)) break;
      }
    }
    return scan.TakePage();
  }

  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override {
    absl::MutexLock lock(&mu_);
    std::vector<JobRecord> out;
    for (const auto& [sequence, record] : records_) {
      if (IsOpen(record)) out.push_back(record);
    }
    return out;
  }

  absl::Status DeleteJob(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return NotFound("DeleteJob", name);
    const JobRecord& record = records_.at(it->second);
    if (IsOpen(record)) return store::OpenJobError(record.job());
    EraseLocked(it->second);
    return absl::OkStatus();
  }

  absl::StatusOr<int> DeleteFinishedJobs(absl::Time before, int limit) override {
    if (limit <= 0) {
      return absl::InvalidArgumentError("DeleteFinishedJobs: limit must be positive");
    }
    const int64_t before_us = absl::ToUnixMicros(before);
    absl::MutexLock lock(&mu_);
    // (update_time_us, sequence): the order the SQL stores delete in.
    std::vector<std::pair<int64_t, int64_t>> candidates;
    for (const auto& [sequence, record] : records_) {
      auto updated = store::Micros(record.job().has_update_time(), record.job().update_time());
      if (!IsOpen(record) && updated.has_value() && *updated < before_us) {
        candidates.emplace_back(*updated, sequence);
      }
    }
    std::sort(candidates.begin(), candidates.end());
    if (candidates.size() > static_cast<size_t>(limit)) candidates.resize(limit);
    for (const auto& [updated, sequence] : candidates) EraseLocked(sequence);
    return static_cast<int>(candidates.size());
  }

 private:
  static absl::Status NotFound(absl::string_view op, const std::string& name) {
    return absl::NotFoundError(absl::StrCat(op, ": job ", name, " not found"));
  }

  void EraseLocked(int64_t sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = records_.find(sequence);
    const std::string request_key = RequestKey(it->second.job());
    if (!request_key.empty()) by_request_key_.erase(request_key);
    by_name_.erase(it->second.job().name());
    records_.erase(it);
  }

  absl::Mutex mu_;
  int64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int64_t, JobRecord> records_ ABSL_GUARDED_BY(mu_);  // by sequence
  std::map<std::string, int64_t> by_name_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> by_request_key_ ABSL_GUARDED_BY(mu_);  // RequestKey()
};

}  // namespace

std::unique_ptr<JobStore> MakeMemoryJobStore() { return std::make_unique<MemoryJobStore>(); }

}  // namespace blueprintsync::jobs
