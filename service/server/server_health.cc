#include "service/server/server_health.h"

#include <utility>

#include "service/common/log.h"
#include "service/server/server_config.h"

namespace blueprintsync::server {

absl::StatusOr<std::unique_ptr<ServerHealth>> ServerHealth::Start(
    const std::string& health_listen, grpc::Server* server, const jobs::LeaderElector* elector,
    const jobs::StoreHealth* store_health) {
  std::unique_ptr<HealthPort> health_port;
  if (!health_listen.empty()) {
    auto started = HealthPort::Start(health_listen);
    if (!started.ok()) return started.status();
    health_port = *std::move(started);
    log::Info("health serving", {{"address", BoundAddress(health_listen, health_port->port())}});
  }
  std::unique_ptr<ServerHealth> health(
      new ServerHealth(server, std::move(health_port), elector, store_health));
  health->SetAllServing();
  if (elector != nullptr || store_health != nullptr)
    health->readiness_ = std::thread([h = health.get()] { h->FollowStore(); });
  return health;
}

// Every status change reaches the health port too (same names, same states).
ServerHealth::ServerHealth(grpc::Server* server, std::unique_ptr<HealthPort> health_port,
                           const jobs::LeaderElector* elector,
                           const jobs::StoreHealth* store_health)
    : health_port_(std::move(health_port)),
      mirrored_health_(
          {server->GetHealthCheckService(), health_port_ ? health_port_->health() : nullptr}),
      elector_(elector),
      store_health_(store_health) {}

ServerHealth::~ServerHealth() { StopFollowing(); }

void ServerHealth::SetAllServing() {
  grpc::HealthCheckServiceInterface* health = &mirrored_health_;
  for (const char* name : {"blueprintsync.v1.BlueprintSync", "liveness", "readiness"}) {
    health->SetServingStatus(name, true);
  }
}

std::string ServerHealth::StoreProblem() const {
  if (store_health_ != nullptr) {
    if (absl::Status s = store_health_->Check(); !s.ok()) return std::string(s.message());
  }
  if (elector_ != nullptr && !elector_->store_reachable()) return "the shared store is unreachable";
  return "";
}

// A process that cannot record jobs must not be sent any: readiness follows
// whether the store can be written and, when shared, reached. Liveness does
// not: a restart does not bring space or permissions back, and after a
// deleted database file it would start on an empty one (see README,
// "Reliability").
void ServerHealth::FollowStore() {
  grpc::HealthCheckServiceInterface* health = &mirrored_health_;
  bool last = true;
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    const std::string problem = StoreProblem();
    const bool ready = problem.empty();
    if (ready != last) {
      for (const char* name : {"", "blueprintsync.v1.BlueprintSync", "readiness"}) {
        health->SetServingStatus(name, ready);
      }
      last = ready;
      if (ready) {
        log::Info("store writable again; readiness SERVING");
      } else {
        log::Error("store unusable; readiness NOT_SERVING", {{"reason", problem}});
      }
    }
    mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(500));
  }
}

void ServerHealth::StopFollowing() {
  if (!readiness_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  readiness_.join();
}

void ServerHealth::BeginShutdown() {
  StopFollowing();
  mirrored_health_.Shutdown();
}

void ServerHealth::ClosePort() {
  if (health_port_) health_port_->Shutdown();
}

}  // namespace blueprintsync::server
