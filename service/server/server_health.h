// ServerHealth: what blueprint-syncd reports through grpc.health.v1 and to
// whom. It sets the health names probes use (liveness, readiness, the
// service) on the main gRPC port and, mirrored, on the plaintext health port
// (--health-listen); it keeps readiness following whether the store can be
// written (StoreHealth: a full disk, a read-only, deleted or damaged SQLite
// file) and, with a shared store, whether it is reachable; on shutdown it turns every name
// NOT_SERVING first, so probes and balancers move away before the drain.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_SERVER_HEALTH_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_SERVER_HEALTH_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "service/jobs/leader_elector.h"
#include "service/jobs/store_health.h"
#include "service/server/health_port.h"

namespace blueprintsync::server {

class ServerHealth {
 public:
  // Opens the health port when `health_listen` is set, sets every name
  // SERVING and, with an elector or a store health, starts following the
  // store. `server` (with gRPC's default health service), `elector` (null:
  // one replica) and `store_health` (null: not followed) are not owned and
  // must outlive this.
  static absl::StatusOr<std::unique_ptr<ServerHealth>> Start(
      const std::string& health_listen, grpc::Server* server, const jobs::LeaderElector* elector,
      const jobs::StoreHealth* store_health = nullptr);
  ~ServerHealth();
  ServerHealth(const ServerHealth&) = delete;
  ServerHealth& operator=(const ServerHealth&) = delete;

  // Stops following the store and turns every name NOT_SERVING on both
  // ports; they stay so.
  void BeginShutdown();
  // Closes the health port (probes then fail to connect, as for a stopped
  // server). Call after the main port has drained.
  void ClosePort();

 private:
  ServerHealth(grpc::Server* server, std::unique_ptr<HealthPort> health_port,
               const jobs::LeaderElector* elector, const jobs::StoreHealth* store_health);
  // Why readiness is NOT_SERVING now ("" when it may serve).
  std::string StoreProblem() const;
  void SetAllServing();
  // Body of the readiness thread.
  void FollowStore();
  void StopFollowing();

  // Declared before mirrored_health_, which forwards to it.
  std::unique_ptr<HealthPort> health_port_;  // null without --health-listen
  MirroredHealth mirrored_health_;
  const jobs::LeaderElector* const elector_;
  const jobs::StoreHealth* const store_health_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread readiness_;
};

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_SERVER_HEALTH_H_
