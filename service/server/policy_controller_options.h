// The policy controller's settings from the server's flags, kept apart
// from main.cc (as the engine's are) so that what each knob is set from is
// in one place.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_POLICY_CONTROLLER_OPTIONS_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_POLICY_CONTROLLER_OPTIONS_H_

#include "service/jobs/leader_elector.h"
#include "service/policies/policy_controller.h"
#include "service/server/server_config.h"

namespace blueprintsync::server {

// `elector` is not owned and may be null (a single replica always leads).
policies::PolicyControllerOptions PolicyControllerOptionsFrom(const ServerConfig& config,
                                                              jobs::LeaderElector* elector);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_POLICY_CONTROLLER_OPTIONS_H_
