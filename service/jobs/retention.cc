#include "service/jobs/retention.h"

#include <algorithm>
#include <string>
#include <vector>

#include "service/common/log.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::jobs {

int Retention::MaybeRun() {
  const JobEngineOptions& options = steps_->options();
  const absl::Time now = steps_->clock()->Now();
  if (options.job_retention <= absl::ZeroDuration() || now < next_run_) return 0;
  const bool leading = table_->Locked([](TableState& s) { return s.leadership.leading(); });
  if (!leading) return 0;
  // A short retention is honoured promptly: at least ten looks per period.
  next_run_ = now + std::min(options.retention_interval,
                             std::max(absl::Seconds(1), options.job_retention / 10));
  const absl::Time cutoff = now - options.job_retention;
  const absl::StatusOr<int> deleted = store_->DeleteFinishedJobs(cutoff, options.retention_batch);
  if (!deleted.ok()) {
    log::Warn("retention: could not delete old jobs; will try again",
              {{"error", deleted.status().message()}});
    return 0;
  }
  // Forget them here too, so Get does not answer from the cache what the
  // store no longer has.
  table_->Locked([&](TableState& s) {
    s.stats.jobs_deleted += *deleted;
    std::vector<std::string> expired;
    for (const auto& [name, job] : s.finished) {
      if (FromProto(job.update_time()) < cutoff) expired.push_back(name);
    }
    for (const std::string& name : expired) s.finished.erase(name);
  });
  if (*deleted > 0) {
    log::Info("retention: deleted old jobs",
              {{"count", *deleted}, {"changed_before", TimeText(cutoff)}});
    // A full batch: more may be waiting.
    if (*deleted >= options.retention_batch) next_run_ = now;
  }
  return *deleted;
}

}  // namespace blueprintsync::jobs
