#include "service/server/server_metrics.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "service/common/log.h"
#include "service/server/server_config.h"
#include "service/tencent/cloud_credentials.h"

namespace blueprintsync::server {

EngineMetricsSources::EngineMetricsSources(metrics::Metrics* metrics, const jobs::JobEngine* engine,
                                           std::shared_ptr<tencent::CredentialProvider> credentials)
    : metrics_(metrics) {
  metrics_->SetActiveJobsSource([engine] {
    const jobs::JobEngineStats stats = engine->stats();
    metrics::ActiveJobCounts counts;
    counts.queued = stats.queued_jobs;
    counts.running = stats.running_jobs;
    counts.cancelling = stats.cancelling_jobs;
    counts.cleaning_up = stats.cleanup_jobs;
    counts.copies_deleted = stats.copies_deleted;
    counts.copy_delete_failures = stats.copy_delete_failures;
    counts.copy_deletes_abandoned = stats.copy_deletes_abandoned;
    counts.jobs_cancelled = stats.jobs_cancelled;
    counts.job_records_deleted = stats.jobs_deleted;
    counts.leader = stats.leader_term != 0;
    counts.store_problem = stats.store_problem;
    return counts;
  });
  metrics_->AddCredentialRefreshFailuresSource([credentials = std::move(credentials)] {
    return static_cast<uint64_t>(tencent::CredentialRefreshFailures(*credentials));
  });
}

EngineMetricsSources::~EngineMetricsSources() { metrics_->SetActiveJobsSource(nullptr); }

RegionMetricsSource::RegionMetricsSource(metrics::Metrics* metrics,
                                         const tencent::RegionRefresher* refresher)
    : metrics_(metrics) {
  metrics_->SetRegionSource([refresher] {
    metrics::RegionTableCounts counts;
    counts.regions = refresher->region_count();
    counts.refresh_failures = refresher->failures();
    return counts;
  });
}

RegionMetricsSource::~RegionMetricsSource() { metrics_->SetRegionSource(nullptr); }

metrics::PolicyCounts PolicyCountsOf(const policies::PolicyControllerStats& stats) {
  metrics::PolicyCounts counts;
  counts.paused = stats.policies_paused;
  counts.in_sync = stats.policies_in_sync;
  // Never negative, should the counts of one pass ever disagree.
  counts.out_of_sync =
      std::max<int64_t>(0, stats.policies - stats.policies_in_sync - stats.policies_paused);
  counts.jobs_started = stats.jobs_started;
  counts.drift_repairs = stats.drift_repairs;
  counts.copies_deleted = stats.copies_deleted;
  counts.copy_delete_failures = stats.copy_delete_failures;
  counts.describe_calls = stats.describe_calls;
  counts.passes = stats.passes;
  counts.pass_failures = stats.pass_failures;
  return counts;
}

PolicyMetricsSource::PolicyMetricsSource(metrics::Metrics* metrics,
                                         std::function<policies::PolicyControllerStats()> stats)
    : metrics_(metrics) {
  metrics_->SetPolicySource([stats = std::move(stats)] { return PolicyCountsOf(stats()); });
}

PolicyMetricsSource::~PolicyMetricsSource() { metrics_->SetPolicySource(nullptr); }

absl::Status ServeMetrics(const std::string& listen, metrics::Metrics* metrics) {
  if (listen.empty()) return absl::OkStatus();
  absl::StatusOr<int> port = metrics->Serve(listen);
  if (!port.ok()) return port.status();
  log::Info("metrics serving", {{"address", BoundAddress(listen, *port)}, {"path", "/metrics"}});
  return absl::OkStatus();
}

}  // namespace blueprintsync::server
