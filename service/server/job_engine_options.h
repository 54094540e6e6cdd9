// The job engine's settings from the server's flags. Kept apart from
// main.cc so that what each engine knob is set from is in one place.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_JOB_ENGINE_OPTIONS_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_JOB_ENGINE_OPTIONS_H_

#include "service/jobs/engine_options.h"
#include "service/jobs/leader_elector.h"
#include "service/server/server_config.h"

namespace blueprintsync::server {

// `observer` and `elector` are not owned and may be null (no metrics; a
// single replica).
jobs::JobEngineOptions JobEngineOptionsFrom(const ServerConfig& config, jobs::JobObserver* observer,
                                            jobs::LeaderElector* elector,
                                            const jobs::StoreHealth* store_health = nullptr);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_JOB_ENGINE_OPTIONS_H_
