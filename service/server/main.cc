// blueprint-syncd: the blueprint-sync gRPC server. Thin main: flags ->
// stores, Tencent client, job engine, policy controller and API -> gRPC
// server -> wait for SIGTERM -> drain. Each step is built by a unit of its own in service/server;
// this file only orders them. See README "Configuration" for every flag.
#include <algorithm>
#include <iostream>
#include <memory>

#include "absl/time/clock.h"
#include "service/common/log.h"
#include "service/jobs/job_engine.h"
#include "service/metrics/metrics.h"
#include "service/policies/policy_api.h"
#include "service/policies/policy_controller.h"
#include "service/server/blueprint_sync_service.h"
#include "service/server/grpc_core_log.h"
#include "service/server/grpc_server.h"
#include "service/server/job_engine_options.h"
#include "service/server/job_storage.h"
#include "service/server/policy_controller_options.h"
#include "service/server/server_config.h"
#include "service/server/server_health.h"
#include "service/server/server_metrics.h"
#include "service/server/tencent_client_stack.h"
#include "service/server/termination_signals.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/region_refresher.h"

// Set by service/server/CMakeLists.txt (the git commit at configure time).
#ifndef BPS_REVISION
#define BPS_REVISION "unknown"
#endif

namespace blueprintsync::server {
namespace {

int Fail(const absl::Status& s) {
  log::Error("cannot start", {{"error", s.message()}});
  return 2;
}

int Run(int argc, char** argv) {
  absl::StatusOr<ServerConfig> config = LoadServerConfig(argc, argv);
  if (!config.ok()) {
    std::cerr << "blueprint-syncd: " << config.status().message() << "\n";
    return 2;
  }
  if (config->action == ServerAction::kPrintHelp) {
    std::cout << ServerHelpText();
    return 0;
  }
  if (config->action == ServerAction::kPrintVersion) {
    std::cout << "blueprint-syncd " << kServerVersion << "\n";
    return 0;
  }
  log::SetLevel(config->log_level);
  RouteGrpcCoreLogs();

  absl::StatusOr<JobStorage> storage = OpenJobStorage(*config);
  if (!storage.ok()) return Fail(storage.status());
  // Declared before everything it observes, so it outlives them.
  auto service_metrics =
      std::make_shared<metrics::Metrics>(metrics::BuildInfo{kServerVersion, BPS_REVISION});
  absl::StatusOr<TencentClientStack> tencent_stack =
      MakeTencentClientStack(*config, service_metrics);
  if (!tencent_stack.ok()) return Fail(tencent_stack.status());
  TencentClientStack& tencent = *tencent_stack;
  // Requests are validated against the live region table; this keeps it in
  // step with DescribeRegions (the compiled table until an answer is believed).
  // A refresh under way when SIGTERM comes is waited for: bounded by the
  // drain timeout, so it never holds the process past drain + 1 s.
  tencent::RegionRefresherOptions region_options;
  region_options.interval = config->region_refresh_interval;
  region_options.call_timeout =
      std::clamp(config->drain_timeout, absl::Seconds(1), absl::Seconds(10));
  tencent::RegionRefresher regions(region_options, tencent.client.get(),
                                   &tencent::ProcessRegions());
  jobs::JobEngine engine(
      JobEngineOptionsFrom(*config, service_metrics.get(), storage->elector.get(),
                           storage->health.get()),
      storage->store.get(), tencent.client.get());
  EngineMetricsSources metrics_sources(service_metrics.get(), &engine, tencent.credentials);
  RegionMetricsSource region_metrics(service_metrics.get(), &regions);
  // Policies create jobs through the engine and are acted on by the
  // controller, on the leader only; the API wakes it on every change made
  // here.
  policies::PolicyController controller(
      PolicyControllerOptionsFrom(*config, storage->elector.get()), storage->policy_store.get(),
      &engine, tencent.client.get());
  policies::PolicyApi policy_api(storage->policy_store.get(), [&controller] { controller.Wake(); });
  PolicyMetricsSource policy_metrics(service_metrics.get(),
                                     [&controller] { return controller.stats(); });
  // The policy side first: the controller submits to the engine, so it
  // stops before the engine does. The region refresher is only told to stop
  // at first and joined last: a DescribeRegions under way (up to its call
  // timeout) must not keep the engine taking and sending work meanwhile.
  auto stop = [&](absl::Time engine_deadline) {
    regions.RequestStop();
    policy_api.Shutdown();
    controller.Shutdown();
    engine.Shutdown(engine_deadline);
    regions.Stop();
  };
  if (absl::Status s = engine.Start(); !s.ok()) return Fail(s);
  controller.Start();
  if (config->region_refresh_interval > absl::ZeroDuration()) regions.Start();
  if (absl::Status s = ServeMetrics(config->metrics_listen, service_metrics.get()); !s.ok()) {
    stop(absl::Now());
    return Fail(s);
  }

  // Before the service and the server, which use it: destroyed after them.
  ResponseDelivery delivery({config->grpc_limits.response_budget_bytes,
                             config->grpc_limits.delivery_timeout});
  ServiceOptions service_options;
  service_options.authz = config->authz.get();
  service_options.default_job_timeout = config->job_deadline;
  service_options.max_job_timeout = config->max_job_timeout;
  service_options.keep_failed_copies = config->keep_failed_copies;
  service_options.delivery = &delivery;
  BlueprintSyncService service(service_options, &engine, &policy_api);
  absl::StatusOr<RunningGrpcServer> grpc =
      StartGrpcServer(*config, &service, service_metrics.get());
  if (!grpc.ok()) {
    stop(absl::Now());
    return Fail(grpc.status());
  }
  auto health = ServerHealth::Start(config->health_listen, grpc->server.get(),
                                    storage->elector.get(), storage->health.get());
  if (!health.ok()) {
    grpc->server->Shutdown(absl::ToChronoTime(absl::Now()));
    stop(absl::Now());
    return Fail(health.status());
  }
  log::Info("serving", {{"address", BoundAddress(config->listen, grpc->port)},
                        {"endpoint", config->lighthouse_endpoint},
                        {"store", jobs::RedactStoreSpec(config->store)},
                        {"replicas", storage->replicas()},
                        {"tls", config->tls.Mode()},
                        {"authz", config->authz ? "policy" : "off"},
                        {"version", kServerVersion},
                        {"revision", BPS_REVISION}});

  const char* signal = WaitForTerminationSignal();
  // Counted from the signal, not from the end of the steps below.
  const absl::Time drain_deadline = absl::Now() + config->drain_timeout;
  log::Info("shutting down", {{"signal", signal},
                              {"drain_timeout_s", absl::ToDoubleSeconds(config->drain_timeout)}});
  (*health)->BeginShutdown();  // NOT_SERVING first, so probes and balancers move away
  // The drain deadline is a promise (the pod's grace period is derived from
  // it): upstream calls still under way then are given up. A SyncBlueprint
  // given up stays SUBMITTING in the store, so the next start (or leader)
  // reconciles it like any other unknown outcome.
  tencent::ProcessCallCutoff().AbandonAt(drain_deadline);
  stop(drain_deadline);
  // Gives the lease up, so another replica leads at once (rolling updates).
  if (storage->elector) storage->elector->Stop();
  // The answers shutdown has just given pending callers still need a moment
  // to go out.
  grpc->server->Shutdown(
      absl::ToChronoTime(std::max(drain_deadline, absl::Now() + absl::Milliseconds(250))));
  (*health)->ClosePort();
  log::Info("stopped");
  return 0;
}

}  // namespace
}  // namespace blueprintsync::server

int main(int argc, char** argv) {
  // Before any thread starts, so that every thread inherits the mask.
  blueprintsync::server::BlockTerminationSignals();
  return blueprintsync::server::Run(argc, argv);
}
