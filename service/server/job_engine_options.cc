#include "service/server/job_engine_options.h"

namespace blueprintsync::server {

jobs::JobEngineOptions JobEngineOptionsFrom(const ServerConfig& config, jobs::JobObserver* observer,
                                            jobs::LeaderElector* elector,
                                            const jobs::StoreHealth* store_health) {
  jobs::JobEngineOptions options;
  options.poll_interval = config.poll_interval;
  options.min_poll_interval = config.min_poll_interval;
  options.poll_budget_share = config.poll_budget_share;
  options.describe_per_second = config.describe_rate;
  options.job_deadline = config.job_deadline;
  options.workers = config.workers;
  options.reconcile_grace = config.reconcile_grace;
  options.observer = observer;
  options.elector = elector;
  options.store_health = store_health;
  options.follow_interval = config.follow_interval;
  options.follow_change_feed = config.follow_change_feed;
  options.follow_resync_interval = config.follow_resync_interval;
  options.job_retention = config.job_retention;
  options.cleanup_give_up_after = config.cleanup_give_up_after;
  return options;
}

}  // namespace blueprintsync::server
