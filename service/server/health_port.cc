#include "service/server/health_port.h"

#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace blueprintsync::server {
namespace {

// gRPC adds registered builder plugins to every ServerBuilder; the
// reflection library registers itself from a static initializer. Drop them,
// so this port serves the health service alone.
class NoPlugins final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->clear();
  }
};

// Every method but the health service's: UNIMPLEMENTED. (A server needs at
// least one service of its own to be started; the default health service
// does not count.)
class HealthOnly final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reject final : public grpc::ServerGenericBidiReactor {
     public:
      Reject() {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            "this port serves grpc.health.v1.Health only"));
      }
      void OnDone() override { delete this; }
    };
    return new Reject;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<HealthPort>> HealthPort::Start(const std::string& address) {
  // The default health service is what this server serves; it is created
  // per server when this (process-wide) switch is on.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Probes send a few bytes; nothing larger is expected here.
  builder.SetMaxReceiveMessageSize(4096);
  builder.SetOption(std::make_unique<NoPlugins>());
  auto generic = std::make_unique<HealthOnly>();
  builder.RegisterCallbackGenericService(generic.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0 || server->GetHealthCheckService() == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " (--health-listen)"));
  }
  return std::unique_ptr<HealthPort>(new HealthPort(std::move(server), std::move(generic), port));
}

HealthPort::~HealthPort() { Shutdown(); }

void HealthPort::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // Health calls are instant; a short deadline only bounds a stuck client.
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

MirroredHealth::MirroredHealth(std::vector<grpc::HealthCheckServiceInterface*> targets) {
  for (auto* t : targets) {
    if (t != nullptr) targets_.push_back(t);
  }
}

void MirroredHealth::SetServingStatus(const std::string& service_name, bool serving) {
  for (auto* t : targets_) t->SetServingStatus(service_name, serving);
}

void MirroredHealth::SetServingStatus(bool serving) {
  for (auto* t : targets_) t->SetServingStatus(serving);
}

void MirroredHealth::Shutdown() {
  for (auto* t : targets_) t->Shutdown();
}

}  // namespace blueprintsync::server
