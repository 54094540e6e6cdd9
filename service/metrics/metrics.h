// Metrics: the service's Prometheus metrics behind one small facade, so that
// only service/metrics includes prometheus-cpp. It holds every series,
// serves them on a plain-HTTP /metrics endpoint (prometheus-cpp's civetweb
// exposer, separate from the gRPC port) and plugs into the rest of the code
// through interfaces those layers define themselves:
//
//   gRPC server   MakeGrpcServerMetricsFactory() interceptor, names and labels
//                 of grpc-ecosystem/go-grpc-prometheus so existing dashboards
//                 and alerts work: grpc_server_{started,handled,msg_received,
//                 msg_sent}_total, grpc_server_handling_seconds.
//   upstream      tencent::CallObserver: blueprintsync_upstream_* per attempt.
//   jobs          jobs::JobObserver (finished jobs, destination durations) and
//                 a pulled source for the jobs still QUEUED / RUNNING.
//   policies      a pulled source for the replication policies' states and
//                 the policy controller's work.
//   process       process_* series in the standard Prometheus names (CPU,
//                 memory, file descriptors, start time; process_stats.h) and
//                 blueprintsync_build_info.
//
// Every series whose label values are known in advance (gRPC methods and
// codes, upstream actions, job states) exists from the start at 0, so that
// rate() sees the first event and absent() alerts do not fire on a healthy
// replica that has not yet done a thing.
//
// Label values are bounded: action, region, job state, gRPC method and code
// come from small fixed sets, and any label fed from outside (Tencent error
// codes, regions) is capped at kMaxLabelValues distinct values per metric,
// the rest reported as "other". No job names, blueprint ids or secrets.
#ifndef BLUEPRINTSYNC_SERVICE_METRICS_METRICS_H_
#define BLUEPRINTSYNC_SERVICE_METRICS_METRICS_H_

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/jobs/job_engine.h"
#include "service/tencent/call_observer.h"

namespace blueprintsync::metrics {

inline constexpr int kMaxLabelValues = 64;

// The /metrics endpoint's workers (connections served at once) and how long
// it waits for a request to arrive or an answer to be taken.
inline constexpr int kMetricsWorkers = 8;
inline constexpr absl::Duration kMetricsRequestTimeout = absl::Seconds(3);

// grpc_type / grpc_service / grpc_method of one RPC method.
struct GrpcMethodLabels {
  std::string type;     // unary, client_stream, server_stream, bidi_stream
  std::string service;  // blueprintsync.v1.BlueprintSync
  std::string method;   // SyncBlueprint
};

// Jobs the engine holds, by the state callers see.
struct ActiveJobCounts {
  int64_t queued = 0;
  int64_t running = 0;
  int64_t cancelling = 0;
  // Finished jobs with copies still to delete.
  int64_t cleaning_up = 0;
  // Cumulative since the process started.
  int64_t copies_deleted = 0;
  int64_t copy_delete_failures = 0;
  int64_t copy_deletes_abandoned = 0;
  int64_t jobs_cancelled = 0;
  int64_t job_records_deleted = 0;
  // This replica calls Tencent Cloud (the only replica, or the lease holder).
  bool leader = true;
  // Why the job store cannot be written ("no_space", "read_only",
  // "io_error", "file_replaced", "damaged"; see jobs/store_health.h), "" while it can.
  std::string store_problem;
};

// Replication policies, as the policy controller counts them.
// The live region table (service/tencent/region_refresher.h).
struct RegionTableCounts {
  int64_t regions = 0;           // in the table requests are validated with
  int64_t refresh_failures = 0;  // DescribeRegions failed or was not believed
};

struct PolicyCounts {
  // At the controller's last pass; every policy in exactly one of them.
  int64_t in_sync = 0;
  int64_t out_of_sync = 0;
  int64_t paused = 0;
  // Cumulative since the process started.
  int64_t jobs_started = 0;
  int64_t drift_repairs = 0;
  int64_t copies_deleted = 0;
  int64_t copy_delete_failures = 0;
  int64_t describe_calls = 0;
  int64_t passes = 0;
  int64_t pass_failures = 0;
};

// The labels of blueprintsync_build_info (grpc_version and protobuf_version
// are filled in by Metrics).
struct BuildInfo {
  std::string version = "unknown";
  // The source's git commit, baked in at configure time; "unknown" when
  // built outside a git checkout.
  std::string revision = "unknown";
};

// Go's codes.Code.String() spelling ("OK", "InvalidArgument", ...).
std::string GoCodeName(grpc::StatusCode code);

class Metrics final : public tencent::CallObserver, public jobs::JobObserver {
 public:
  explicit Metrics(BuildInfo build = {});
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Starts the /metrics endpoint on `address` (host:port; port 0 picks one)
  // and returns the port it listens on. At most once.
  absl::StatusOr<int> Serve(const std::string& address);

  // The text exposition of every series (what /metrics answers).
  std::string TextExposition() const;

  // gRPC server, called by the interceptor. InitializeGrpcMethod creates a
  // method's series at 0 (handled: one per code), as go-grpc-prometheus's
  // InitializeMetrics does.
  void InitializeGrpcMethod(const GrpcMethodLabels& m);
  void OnRpcStarted(const GrpcMethodLabels& m);
  void OnRpcMessageReceived(const GrpcMethodLabels& m);
  void OnRpcMessageSent(const GrpcMethodLabels& m);
  void OnRpcHandled(const GrpcMethodLabels& m, grpc::StatusCode code, absl::Duration elapsed);

  // tencent::CallObserver
  void OnAttempt(std::string_view action, std::string_view code, bool throttled,
                 absl::Duration duration) override;
  void OnRetry(std::string_view action) override;

  // jobs::JobObserver
  void OnJobFinished(const v1::SyncJob& job) override;

  // Read at each scrape for blueprintsync_jobs{state}. Pass nullptr before
  // whatever the source reads goes away (scrapes run on their own threads).
  void SetActiveJobsSource(std::function<ActiveJobCounts()> source);
  // Read at each scrape for blueprintsync_policies{state} and the
  // blueprintsync_policy_* counters (zero without a source). Pass nullptr
  // before whatever the source reads goes away.
  void SetPolicySource(std::function<PolicyCounts()> source);
  // Read at each scrape and summed for
  // blueprintsync_credential_refresh_failures_total (cumulative counts, e.g.
  // a refreshing credential provider's own failure counter).
  void AddCredentialRefreshFailuresSource(std::function<uint64_t()> source);
  // Read at each scrape for blueprintsync_regions and
  // blueprintsync_region_refresh_failures_total (zero without a source).
  // Pass nullptr before whatever the source reads goes away.
  void SetRegionSource(std::function<RegionTableCounts()> source);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Interceptor factory recording go-grpc-prometheus metrics into `metrics`
// (not owned; must outlive the server). Only the full method names in
// `known_methods` ("/blueprintsync.v1.BlueprintSync/SyncBlueprint") get their
// own labels; anything else a client sends is counted as service and method
// "unknown", so callers cannot create series at will.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeGrpcServerMetricsFactory(
    Metrics* metrics, const std::vector<std::string>& known_methods);

// "/pkg.Service/Method" of every method of the named services, from the
// generated protobuf descriptor pool (services not linked in are skipped).
std::vector<std::string> GrpcMethodsOf(const std::vector<std::string>& services);

}  // namespace blueprintsync::metrics

#endif  // BLUEPRINTSYNC_SERVICE_METRICS_METRICS_H_
