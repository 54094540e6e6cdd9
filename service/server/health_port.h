// The plaintext health port (--health-listen): a second gRPC server that
// serves grpc.health.v1.Health and nothing else (no BlueprintSync, no
// reflection), so kubelet gRPC probes — which cannot do TLS or present a
// client certificate — keep working when the main port requires (m)TLS.
//
// Its statuses mirror the main server's: main.cc sets every health name
// through a MirroredHealth that forwards each change to both servers' health
// services, so both report the same names, the same SERVING status and the
// same NOT_SERVING from the moment shutdown starts.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_HEALTH_PORT_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_HEALTH_PORT_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace blueprintsync::server {

class HealthPort {
 public:
  // Binds `address` (host:port, port 0 picks one) without TLS and starts
  // serving. UNAVAILABLE naming the address when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HealthPort>> Start(const std::string& address);
  ~HealthPort();

  int port() const { return port_; }
  grpc::HealthCheckServiceInterface* health() { return server_->GetHealthCheckService(); }
  // Closes the port (probes then fail to connect, as for a stopped server).
  void Shutdown();

 private:
  HealthPort(std::unique_ptr<grpc::Server> server,
             std::unique_ptr<grpc::CallbackGenericService> others, int port)
      : others_(std::move(others)), server_(std::move(server)), port_(port) {}
  // Declared before server_: the server is destroyed first.
  std::unique_ptr<grpc::CallbackGenericService> others_;
  std::unique_ptr<grpc::Server> server_;
  const int port_;
  bool shut_down_ = false;
};

// Forwards every call to each non-null target.
class MirroredHealth final : public grpc::HealthCheckServiceInterface {
 public:
  explicit MirroredHealth(std::vector<grpc::HealthCheckServiceInterface*> targets);
  void SetServingStatus(const std::string& service_name, bool serving) override;
  void SetServingStatus(bool serving) override;
  void Shutdown() override;

 private:
  std::vector<grpc::HealthCheckServiceInterface*> targets_;
};

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_HEALTH_PORT_H_
