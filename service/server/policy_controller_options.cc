#include "service/server/policy_controller_options.h"

#include <algorithm>

namespace blueprintsync::server {

policies::PolicyControllerOptions PolicyControllerOptionsFrom(const ServerConfig& config,
                                                              jobs::LeaderElector* elector) {
  policies::PolicyControllerOptions options;
  options.interval = config.policy_interval;
  // Changes made on other replicas reach the leader as quickly as their
  // jobs do.
  options.change_poll_interval = config.follow_interval;
  // A failed region waits one interval, then twice as long per failure in
  // a row, up to the maximum (which caps the first wait too).
  options.backoff_initial = std::min(config.policy_interval, config.policy_backoff_max);
  options.backoff_max = config.policy_backoff_max;
  options.cleanup_give_up_after = config.cleanup_give_up_after;
  // Policy jobs get the engine's default timeout (--job-deadline).
  options.job_timeout = absl::ZeroDuration();
  options.elector = elector;
  return options;
}

}  // namespace blueprintsync::server
