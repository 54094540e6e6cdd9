// How blueprint-syncd's Prometheus metrics are fed and served: the engine's
// job counts, the policy controller's counts and the credential refresh
// failures read at each scrape, and the /metrics endpoint on
// --metrics-listen.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_SERVER_METRICS_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_SERVER_METRICS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "service/jobs/job_engine.h"
#include "service/metrics/metrics.h"
#include "service/policies/policy_controller.h"
#include "service/tencent/credentials.h"
#include "service/tencent/region_refresher.h"

namespace blueprintsync::server {

// While it lives, scrapes read the engine's job counts. Scrapes run on the
// exposer's own threads, so it must be destroyed before the engine: declare
// it after the engine.
class EngineMetricsSources {
 public:
  EngineMetricsSources(metrics::Metrics* metrics, const jobs::JobEngine* engine,
                       std::shared_ptr<tencent::CredentialProvider> credentials);
  ~EngineMetricsSources();
  EngineMetricsSources(const EngineMetricsSources&) = delete;
  EngineMetricsSources& operator=(const EngineMetricsSources&) = delete;

 private:
  metrics::Metrics* const metrics_;
};

// While it lives, scrapes read the policy controller's counts through
// `stats` (the controller's stats(); a function rather than the controller,
// so that only what a scrape reads is shared). Like EngineMetricsSources,
// destroy it before whatever `stats` reads: declare it after the controller.
class PolicyMetricsSource {
 public:
  PolicyMetricsSource(metrics::Metrics* metrics,
                      std::function<policies::PolicyControllerStats()> stats);
  ~PolicyMetricsSource();
  PolicyMetricsSource(const PolicyMetricsSource&) = delete;
  PolicyMetricsSource& operator=(const PolicyMetricsSource&) = delete;

 private:
  metrics::Metrics* const metrics_;
};

// While it lives, scrapes read the region refresher's counts. Declare it
// after the refresher.
class RegionMetricsSource {
 public:
  RegionMetricsSource(metrics::Metrics* metrics, const tencent::RegionRefresher* refresher);
  ~RegionMetricsSource();
  RegionMetricsSource(const RegionMetricsSource&) = delete;
  RegionMetricsSource& operator=(const RegionMetricsSource&) = delete;

 private:
  metrics::Metrics* const metrics_;
};

// The policy series of one scrape: every policy in one state, paused first
// (policies_in_sync counts unpaused policies), out_of_sync the rest.
metrics::PolicyCounts PolicyCountsOf(const policies::PolicyControllerStats& stats);

// Serves /metrics on `listen` and logs the bound address; nothing (OK) when
// `listen` is empty.
absl::Status ServeMetrics(const std::string& listen, metrics::Metrics* metrics);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_SERVER_METRICS_H_
