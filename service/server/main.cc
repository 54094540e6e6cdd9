// blueprint-syncd: the blueprint-sync gRPC server. Thin main: flags ->
// store, Tencent client, job engine -> gRPC server -> wait for SIGTERM ->
// drain. See README "Configuration" for every flag and variable.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/common/flags.h"
#include "service/common/log.h"
#include "service/jobs/job_engine.h"
#include "service/jobs/job_store.h"
#include "service/jobs/leader_elector.h"
#include "service/jobs/postgres_lease.h"
#include "service/metrics/metrics.h"
#include "service/server/access_log.h"
#include "service/server/blueprint_sync_service.h"
#include "service/server/health_port.h"
#include "service/server/tls_config.h"
#include "service/tencent/cloud_credentials.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync {
namespace {

constexpr char kVersion[] = "0.1.0";

std::vector<FlagSpec> ServerFlags() {
  return {
      {"listen", "BLUEPRINT_SYNC_LISTEN", "0.0.0.0:50051",
       "gRPC listen address (host:port; port 0 picks one)"},
      {"lighthouse-endpoint", "BLUEPRINT_SYNC_LIGHTHOUSE_ENDPOINT",
       tencent::kDefaultLighthouseEndpoint,
       "Lighthouse API endpoint; http://127.0.0.1:PORT for the bundled emulator"},
      {"store", "BLUEPRINT_SYNC_STORE", "sqlite:./data/blueprint-sync.db",
       "job store: sqlite:PATH, postgres://USER@HOST/DB (shared by several replicas; password "
       "from the URI, PGPASSWORD or PGPASSFILE) or memory: (tests only; jobs are lost on exit)"},
      {"leader-lease", "BLUEPRINT_SYNC_LEADER_LEASE", "15s",
       "postgres store: how long the leader's lease lasts; another replica takes over at most "
       "this long after the leader dies"},
      {"follow-interval", "BLUEPRINT_SYNC_FOLLOW_INTERVAL", "1s",
       "postgres store: how often the leader picks up jobs other replicas recorded and other "
       "replicas re-read jobs their callers follow"},
      {"poll-interval", "BLUEPRINT_SYNC_POLL_INTERVAL", "10s",
       "how often unfinished destination images are checked"},
      {"job-deadline", "BLUEPRINT_SYNC_JOB_DEADLINE", "6h",
       "destinations not NORMAL this long after the job was created fail"},
      {"sync-rate", "BLUEPRINT_SYNC_SYNC_RATE", "20", "SyncBlueprint calls per second at most"},
      {"describe-rate", "BLUEPRINT_SYNC_DESCRIBE_RATE", "10",
       "DescribeBlueprints calls per second at most"},
      {"http-timeout", "BLUEPRINT_SYNC_HTTP_TIMEOUT", "30s", "total time for one upstream call"},
      {"connect-timeout", "BLUEPRINT_SYNC_CONNECT_TIMEOUT", "5s", "time to connect upstream"},
      {"ca-file", "BLUEPRINT_SYNC_CA_FILE", "", "CA bundle for the upstream TLS connection"},
      {"ca-path", "BLUEPRINT_SYNC_CA_PATH", "", "CA directory for the upstream TLS connection"},
      {"workers", "BLUEPRINT_SYNC_WORKERS", "4", "submission worker threads"},
      {"reconcile-grace", "BLUEPRINT_SYNC_RECONCILE_GRACE", "10s",
       "wait before checking upstream after an ambiguous submission"},
      {"drain-timeout", "BLUEPRINT_SYNC_DRAIN_TIMEOUT", "20s",
       "on SIGTERM, how long in-flight calls may take to finish"},
      {"max-message-bytes", "BLUEPRINT_SYNC_MAX_MESSAGE_BYTES", "1048576",
       "largest gRPC request accepted"},
      {"log-level", "BLUEPRINT_SYNC_LOG_LEVEL", "info", "debug, info, warn or error"},
      {"metrics-listen", "BLUEPRINT_SYNC_METRICS_LISTEN", "0.0.0.0:9090",
       "Prometheus /metrics address, plain HTTP (port 0 picks one; empty: no metrics)"},
      {"tls-cert", "BLUEPRINT_SYNC_TLS_CERT", "",
       "PEM certificate chain of the gRPC port; with --tls-key turns TLS on"},
      {"tls-key", "BLUEPRINT_SYNC_TLS_KEY", "", "PEM private key for --tls-cert"},
      {"tls-client-ca", "BLUEPRINT_SYNC_TLS_CLIENT_CA", "",
       "PEM CA bundle; set: mTLS, every caller must present a certificate it signed"},
      {"tls-reload-interval", "BLUEPRINT_SYNC_TLS_RELOAD_INTERVAL", "60s",
       "how often the TLS files are re-read (renewed certificates apply without a restart)"},
      {"authz-policy", "BLUEPRINT_SYNC_AUTHZ_POLICY", "",
       "JSON file of writers/readers client identities (needs --tls-client-ca); empty: no checks"},
      {"health-listen", "BLUEPRINT_SYNC_HEALTH_LISTEN", "",
       "plaintext grpc.health.v1-only address for probes when the gRPC port needs (m)TLS; "
       "empty: none"},
      {"help", "", "", "print this help and exit", true},
      {"version", "", "", "print the version and exit", true},
  };
}

int Fail(const absl::Status& s) {
  log::Error("cannot start", {{"error", s.message()}});
  return 2;
}

int Run(int argc, char** argv) {
  Flags flags(ServerFlags());
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    std::cerr << "blueprint-syncd: " << s.message() << "\n";
    return 2;
  }
  if (*flags.Bool("help")) {
    std::cout
        << "usage: blueprint-syncd [flags]\n\nflags (each also settable by the variable shown):\n"
        << flags.Usage();
    return 0;
  }
  if (*flags.Bool("version")) {
    std::cout << "blueprint-syncd " << kVersion << "\n";
    return 0;
  }
  if (!flags.positional().empty()) {
    std::cerr << "blueprint-syncd: unexpected argument \"" << flags.positional()[0] << "\"\n";
    return 2;
  }
  log::Level level;
  if (!log::ParseLevel(flags.String("log-level"), &level)) {
    std::cerr << "blueprint-syncd: --log-level must be debug, info, warn or error\n";
    return 2;
  }
  log::SetLevel(level);

  auto poll = flags.Duration("poll-interval", absl::Milliseconds(100), absl::Hours(1));
  auto deadline = flags.Duration("job-deadline", absl::Seconds(1), absl::Hours(24 * 30));
  auto sync_rate = flags.Double("sync-rate", 0.1, 1000);
  auto describe_rate = flags.Double("describe-rate", 0.1, 1000);
  auto http_timeout = flags.Duration("http-timeout", absl::Milliseconds(100), absl::Minutes(10));
  auto connect_timeout =
      flags.Duration("connect-timeout", absl::Milliseconds(100), absl::Minutes(5));
  auto workers = flags.Int("workers", 1, 64);
  auto grace = flags.Duration("reconcile-grace", absl::ZeroDuration(), absl::Hours(1));
  auto drain = flags.Duration("drain-timeout", absl::ZeroDuration(), absl::Minutes(10));
  auto max_msg = flags.Int("max-message-bytes", 1024, 64 << 20);
  auto lease = flags.Duration("leader-lease", absl::Seconds(1), absl::Minutes(10));
  auto follow = flags.Duration("follow-interval", absl::Milliseconds(50), absl::Minutes(1));
  for (const absl::Status& s :
       {poll.status(), deadline.status(), sync_rate.status(), describe_rate.status(),
        http_timeout.status(), connect_timeout.status(), workers.status(), grace.status(),
        drain.status(), max_msg.status(), lease.status(), follow.status()}) {
    if (!s.ok()) {
      std::cerr << "blueprint-syncd: " << s.message() << "\n";
      return 2;
    }
  }

  auto tls = server::TlsFilesFromFlags(flags);
  auto authz = tls.ok() ? server::AuthzPolicyFromFlags(flags, tls->mutual()) : tls.status();
  if (!authz.ok()) {
    std::cerr << "blueprint-syncd: " << authz.status().message() << "\n";
    return 2;
  }

  const std::string store_spec = flags.String("store");
  auto store = jobs::OpenJobStore(store_spec);
  if (!store.ok()) return Fail(store.status());
  // Several replicas share a PostgreSQL store: one leads (see README, "High
  // availability"). Declared before the engine, which uses it.
  std::unique_ptr<jobs::LeaseBackend> lease_backend;
  std::unique_ptr<jobs::LeaderElector> elector;
  if (absl::StartsWith(store_spec, "postgres://") ||
      absl::StartsWith(store_spec, "postgresql://")) {
    jobs::PostgresLeaseOptions lease_options;
    // A hung renewal must not outlast the renew interval by much.
    lease_options.call_timeout = std::clamp(*lease / 5, absl::Seconds(1), absl::Seconds(5));
    auto backend = jobs::OpenPostgresLeaderLease(store_spec, lease_options);
    if (!backend.ok()) return Fail(backend.status());
    lease_backend = *std::move(backend);
    jobs::LeaderElectorOptions elector_options;
    elector_options.holder = jobs::DefaultHolderId();
    elector_options.lease = *lease;
    elector_options.renew_interval = *lease / 5;
    elector_options.margin = *lease / 5;
    elector = std::make_unique<jobs::LeaderElector>(elector_options, lease_backend.get());
    if (absl::Status s = elector->Validate(); !s.ok()) return Fail(s);
    elector->Start();
  }

  // Declared before everything it observes, so it outlives them.
  auto service_metrics = std::make_shared<metrics::Metrics>();

  auto credentials = tencent::MakeDefaultCredentialChain();
  if (auto c = credentials->GetCredentials(); !c.ok()) {
    log::Warn("no usable Tencent Cloud credentials yet; submissions will fail until there are",
              {{"error", c.status().message()}});
  } else {
    log::Info("Tencent Cloud credentials found",
              {{"secret_id", tencent::MaskSecretId(c->secret_id)}});
  }
  tencent::CurlTransportOptions http;
  http.total_timeout = *http_timeout;
  http.connect_timeout = *connect_timeout;
  http.ca_file = flags.String("ca-file");
  http.ca_path = flags.String("ca-path");
  tencent::LighthouseClientOptions client_options;
  client_options.endpoint = flags.String("lighthouse-endpoint");
  client_options.rate_limits.sync_blueprint_per_second = *sync_rate;
  client_options.rate_limits.describe_blueprints_per_second = *describe_rate;
  client_options.observer = service_metrics;
  auto client =
      tencent::MakeLighthouseClient(client_options, credentials, tencent::MakeCurlTransport(http));

  jobs::JobEngineOptions engine_options;
  engine_options.poll_interval = *poll;
  engine_options.job_deadline = *deadline;
  engine_options.workers = static_cast<int>(*workers);
  engine_options.reconcile_grace = *grace;
  engine_options.observer = service_metrics.get();
  engine_options.elector = elector.get();
  engine_options.follow_interval = *follow;
  jobs::JobEngine engine(engine_options, store->get(), client.get());
  service_metrics->SetActiveJobsSource([&engine] {
    const jobs::JobEngineStats stats = engine.stats();
    return metrics::ActiveJobCounts{stats.queued_jobs, stats.running_jobs, stats.leader_term != 0};
  });
  // Scrapes run on the exposer's threads: stop reading the engine before it goes.
  absl::Cleanup forget_engine = [&] { service_metrics->SetActiveJobsSource(nullptr); };
  service_metrics->AddCredentialRefreshFailuresSource([credentials] {
    return static_cast<uint64_t>(tencent::CredentialRefreshFailures(*credentials));
  });
  if (absl::Status s = engine.Start(); !s.ok()) return Fail(s);

  if (const std::string metrics_listen = flags.String("metrics-listen"); !metrics_listen.empty()) {
    absl::StatusOr<int> metrics_port = service_metrics->Serve(metrics_listen);
    if (!metrics_port.ok()) {
      engine.Shutdown(absl::Now());
      return Fail(metrics_port.status());
    }
    log::Info("metrics serving",
              {{"address", absl::StrCat(metrics_listen.substr(0, metrics_listen.rfind(':')), ":",
                                        *metrics_port)},
               {"path", "/metrics"}});
  }

  server::ServiceOptions service_options;
  service_options.authz = authz->get();
  server::BlueprintSyncService service(service_options, &engine);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string listen = flags.String("listen");
  builder.AddListeningPort(listen, server::MakeServerCredentials(*tls), &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(*max_msg));
  // gRPC sets SO_REUSEPORT by default, which would let a second server (and
  // a second writer of the same job store) silently share the port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(server::MakeAccessLogFactory());
  interceptors.push_back(metrics::MakeGrpcServerMetricsFactory(
      service_metrics.get(),
      metrics::GrpcMethodsOf({"blueprintsync.v1.BlueprintSync", "grpc.health.v1.Health",
                              "grpc.reflection.v1alpha.ServerReflection"})));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || port == 0) {
    engine.Shutdown(absl::Now());
    return Fail(absl::UnavailableError(absl::StrCat("cannot listen on ", listen)));
  }
  std::unique_ptr<server::HealthPort> health_port;
  if (const std::string health_listen = flags.String("health-listen"); !health_listen.empty()) {
    auto started = server::HealthPort::Start(health_listen);
    if (!started.ok()) {
      grpc_server->Shutdown(absl::ToChronoTime(absl::Now()));
      engine.Shutdown(absl::Now());
      return Fail(started.status());
    }
    health_port = *std::move(started);
    log::Info("health serving",
              {{"address", absl::StrCat(health_listen.substr(0, health_listen.rfind(':')), ":",
                                        health_port->port())}});
  }
  // Every status change reaches the health port too (same names, same states).
  server::MirroredHealth mirrored_health(
      {grpc_server->GetHealthCheckService(), health_port ? health_port->health() : nullptr});
  grpc::HealthCheckServiceInterface* health = &mirrored_health;
  for (const char* name : {"blueprintsync.v1.BlueprintSync", "liveness", "readiness"}) {
    health->SetServingStatus(name, true);
  }
  // With a shared store, a replica that cannot reach it cannot record jobs:
  // readiness follows the store (liveness does not: restarting would not help).
  absl::Mutex ready_mu;
  bool ready_stop = false;
  std::thread readiness;
  if (elector) {
    readiness = std::thread([&] {
      bool last = true;
      absl::MutexLock lock(&ready_mu);
      while (!ready_stop) {
        const bool reachable = elector->store_reachable();
        if (reachable != last) {
          for (const char* name : {"", "blueprintsync.v1.BlueprintSync", "readiness"}) {
            health->SetServingStatus(name, reachable);
          }
          last = reachable;
        }
        ready_mu.AwaitWithTimeout(absl::Condition(&ready_stop), absl::Milliseconds(500));
      }
    });
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  log::Info("serving", {{"address", absl::StrCat(host, ":", port)},
                        {"endpoint", client_options.endpoint},
                        {"store", jobs::RedactStoreSpec(store_spec)},
                        {"replicas", elector ? "several (leader lease)" : "one"},
                        {"tls", tls->Mode()},
                        {"authz", *authz ? "policy" : "off"},
                        {"version", kVersion}});

  // SIGTERM/SIGINT were blocked in main() before any thread started; wait
  // for them here, in an ordinary thread (gRPC must not be shut down from a
  // signal handler).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                              {"drain_timeout", absl::FormatDuration(*drain)}});
  if (readiness.joinable()) {
    {
      absl::MutexLock lock(&ready_mu);
      ready_stop = true;
    }
    readiness.join();
  }
  health->Shutdown();  // every name NOT_SERVING, so probes and balancers move away
  const absl::Time drain_deadline = absl::Now() + *drain;
  engine.Shutdown(drain_deadline);
  // Gives the lease up, so another replica leads at once (rolling updates).
  if (elector) elector->Stop();
  grpc_server->Shutdown(
      absl::ToChronoTime(std::max(drain_deadline, absl::Now() + absl::Seconds(1))));
  if (health_port) health_port->Shutdown();
  log::Info("stopped");
  return 0;
}

}  // namespace
}  // namespace blueprintsync

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return blueprintsync::Run(argc, argv);
}
