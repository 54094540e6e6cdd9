#include "service/metrics/metrics.h"

#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/jobs/job_state.h"
#include "service/metrics/process_stats.h"

namespace blueprintsync::metrics {
namespace {

constexpr char kOther[] = "other";

// go-grpc-prometheus default buckets stop at 10 s; SyncBlueprint may wait up
// to its deadline for rate-limit capacity, so the upper buckets go further.
const std::vector<double>& GrpcHandlingBuckets() {
  static const auto* b =
      new std::vector<double>{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return *b;
}
const std::vector<double>& UpstreamBuckets() {
  static const auto* b =
      new std::vector<double>{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return *b;
}
// Image copies take minutes to hours (the job deadline defaults to 6 h).
const std::vector<double>& DestinationBuckets() {
  static const auto* b = new std::vector<double>{5,    15,   30,   60,    120,   300,   600,  1200,
                                                 1800, 3600, 7200, 14400, 21600, 43200, 86400};
  return *b;
}

// Caps the distinct values of a label fed from outside the process. Values
// outside [A-Za-z0-9._-] or beyond the cap become "other".
class LabelLimiter {
 public:
  std::string Admit(std::string_view value) {
    if (value.empty() || value.size() > 100 || !std::all_of(value.begin(), value.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                 c == '-';
        })) {
      return kOther;
    }
    absl::MutexLock lock(&mu_);
    std::string v(value);
    if (seen_.count(v) != 0) return v;
    if (seen_.size() >= static_cast<size_t>(kMaxLabelValues)) return kOther;
    seen_.insert(v);
    return v;
  }

 private:
  absl::Mutex mu_;
  std::set<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

double Seconds(absl::Duration d) { return std::max(0.0, absl::ToDoubleSeconds(d)); }

// Series whose values are read from elsewhere at scrape time.
class PulledMetrics final : public prometheus::Collectable {
 public:
  void SetActiveJobsSource(std::function<ActiveJobCounts()> source) {
    absl::MutexLock lock(&mu_);
    active_jobs_ = std::move(source);
  }
  void SetPolicySource(std::function<PolicyCounts()> source) {
    absl::MutexLock lock(&mu_);
    policies_ = std::move(source);
  }
  void SetRegionSource(std::function<RegionTableCounts()> source) {
    absl::MutexLock lock(&mu_);
    regions_ = std::move(source);
  }
  void AddCredentialSource(std::function<uint64_t()> source) {
    absl::MutexLock lock(&mu_);
    credential_failures_.push_back(std::move(source));
  }

  static prometheus::MetricFamily Single(const char* name, const char* help,
                                         prometheus::MetricType type, int64_t value) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    prometheus::ClientMetric m;
    if (type == prometheus::MetricType::Counter) {
      m.counter.value = static_cast<double>(value);
    } else {
      m.gauge.value = static_cast<double>(value);
    }
    f.metric.push_back(std::move(m));
    return f;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    // Sources run under mu_ and take their own locks (the engine's); they
    // must not call back into Metrics.
    absl::MutexLock lock(&mu_);
    std::vector<prometheus::MetricFamily> out;

    prometheus::MetricFamily jobs;
    jobs.name = "blueprintsync_jobs";
    jobs.help = "Unfinished sync jobs by state (finished ones: blueprintsync_jobs_finished_total)";
    jobs.type = prometheus::MetricType::Gauge;
    ActiveJobCounts counts;
    if (active_jobs_) counts = active_jobs_();
    for (const auto& [state, value] :
         {std::pair<const char*, int64_t>{"QUEUED", counts.queued},
          {"RUNNING", counts.running},
          {"CANCELLING", counts.cancelling}}) {
      prometheus::ClientMetric m;
      m.label.push_back({"state", state});
      m.gauge.value = static_cast<double>(value);
      jobs.metric.push_back(std::move(m));
    }
    out.push_back(std::move(jobs));

    prometheus::MetricFamily leader;
    leader.name = "blueprintsync_leader";
    leader.help = "1 if this replica submits and tracks jobs (the only one, or the lease holder)";
    leader.type = prometheus::MetricType::Gauge;
    prometheus::ClientMetric l;
    l.gauge.value = active_jobs_ && !counts.leader ? 0 : 1;
    leader.metric.push_back(std::move(l));
    out.push_back(std::move(leader));

    // One series per reason, always present, so alerts need no absent().
    prometheus::MetricFamily store;
    store.name = "blueprintsync_store_healthy";
    store.help =
        "1 if the job store can be written; 0 (with the reason's series 1) while it cannot: "
        "readiness is then NOT_SERVING and no job is taken or submitted";
    store.type = prometheus::MetricType::Gauge;
    {
      prometheus::ClientMetric all;
      all.gauge.value = counts.store_problem.empty() ? 1 : 0;
      store.metric.push_back(std::move(all));
    }
    prometheus::MetricFamily store_problem;
    store_problem.name = "blueprintsync_store_problem";
    store_problem.help = "1 for the reason the job store cannot be written now, else 0";
    store_problem.type = prometheus::MetricType::Gauge;
    for (const char* reason : {"no_space", "read_only", "io_error", "file_replaced", "damaged"}) {
      prometheus::ClientMetric m;
      m.label.push_back({"reason", reason});
      m.gauge.value = counts.store_problem == reason ? 1 : 0;
      store_problem.metric.push_back(std::move(m));
    }
    out.push_back(std::move(store));
    out.push_back(std::move(store_problem));

    out.push_back(Single("blueprintsync_jobs_cleaning_up",
                         "Finished jobs with unwanted copies still to delete",
                         prometheus::MetricType::Gauge, counts.cleaning_up));
    out.push_back(Single("blueprintsync_copies_deleted_total",
                         "Unwanted copies (failed destinations, cancelled jobs) deleted upstream",
                         prometheus::MetricType::Counter, counts.copies_deleted));
    out.push_back(Single("blueprintsync_copy_delete_failures_total",
                         "DeleteBlueprints attempts for unwanted copies that failed (retried)",
                         prometheus::MetricType::Counter, counts.copy_delete_failures));
    out.push_back(Single("blueprintsync_copy_deletes_abandoned_total",
                         "Unwanted copies given up on (cleanup window passed)",
                         prometheus::MetricType::Counter, counts.copy_deletes_abandoned));
    out.push_back(Single("blueprintsync_jobs_cancelled_total", "Jobs cancelled by callers",
                         prometheus::MetricType::Counter, counts.jobs_cancelled));
    out.push_back(Single("blueprintsync_job_records_deleted_total",
                         "Job records deleted (DeleteSyncJob and retention)",
                         prometheus::MetricType::Counter, counts.job_records_deleted));

    PolicyCounts p;
    if (policies_) p = policies_();
    prometheus::MetricFamily policies;
    policies.name = "blueprintsync_policies";
    policies.help =
        "Replication policies by state at the policy controller's last pass (paused ones "
        "apart)";
    policies.type = prometheus::MetricType::Gauge;
    for (const auto& [state, value] : {std::pair<const char*, int64_t>{"in_sync", p.in_sync},
                                       {"out_of_sync", p.out_of_sync},
                                       {"paused", p.paused}}) {
      prometheus::ClientMetric m;
      m.label.push_back({"state", state});
      m.gauge.value = static_cast<double>(value);
      policies.metric.push_back(std::move(m));
    }
    out.push_back(std::move(policies));
    out.push_back(Single("blueprintsync_policy_jobs_started_total",
                         "Sync jobs the policy controller started", prometheus::MetricType::Counter,
                         p.jobs_started));
    out.push_back(Single("blueprintsync_policy_drift_repairs_total",
                         "Regions re-synced because a policy's copy disappeared or failed",
                         prometheus::MetricType::Counter, p.drift_repairs));
    out.push_back(Single("blueprintsync_policy_copies_deleted_total",
                         "Copies the policy controller deleted (old versions beyond keep_versions, "
                         "copies of policies deleted with delete_copies)",
                         prometheus::MetricType::Counter, p.copies_deleted));
    out.push_back(Single("blueprintsync_policy_copy_delete_failures_total",
                         "DeleteBlueprints attempts of the policy controller that failed (retried)",
                         prometheus::MetricType::Counter, p.copy_delete_failures));
    out.push_back(Single("blueprintsync_policy_describe_calls_total",
                         "DescribeBlueprints calls the policy controller made",
                         prometheus::MetricType::Counter, p.describe_calls));
    out.push_back(Single("blueprintsync_policy_passes_total",
                         "Passes of the policy controller over every policy",
                         prometheus::MetricType::Counter, p.passes));
    out.push_back(Single("blueprintsync_policy_pass_failures_total",
                         "Policy controller passes that could not read the policies",
                         prometheus::MetricType::Counter, p.pass_failures));

    RegionTableCounts r;
    if (regions_) r = regions_();
    out.push_back(Single("blueprintsync_regions",
                         "Regions in the table requests are validated with (compiled, or the "
                         "last believed DescribeRegions answer)",
                         prometheus::MetricType::Gauge, r.regions));
    out.push_back(Single("blueprintsync_region_refresh_failures_total",
                         "Region table refreshes whose DescribeRegions failed or was not believed "
                         "(the table in use was kept)",
                         prometheus::MetricType::Counter, r.refresh_failures));

    prometheus::MetricFamily cred;
    cred.name = "blueprintsync_credential_refresh_failures_total";
    cred.help = "Failed attempts to refresh temporary Tencent Cloud credentials";
    cred.type = prometheus::MetricType::Counter;
    prometheus::ClientMetric m;
    for (const auto& source : credential_failures_)
      m.counter.value += static_cast<double>(source());
    cred.metric.push_back(std::move(m));
    out.push_back(std::move(cred));
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  std::function<ActiveJobCounts()> active_jobs_ ABSL_GUARDED_BY(mu_);
  std::function<PolicyCounts()> policies_ ABSL_GUARDED_BY(mu_);
  std::function<RegionTableCounts()> regions_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<uint64_t()>> credential_failures_ ABSL_GUARDED_BY(mu_);
};

// The standard process_* series (names, types and units of the official
// Go and Python clients), read from /proc at each scrape.
class ProcessMetrics final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    const std::optional<ProcessStats> s = ReadProcessStats();
    if (!s) return out;
    auto add = [&out](const char* name, const char* help, prometheus::MetricType type,
                      double value) {
      prometheus::MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      prometheus::ClientMetric m;
      if (type == prometheus::MetricType::Counter) {
        m.counter.value = value;
      } else {
        m.gauge.value = value;
      }
      f.metric.push_back(std::move(m));
      out.push_back(std::move(f));
    };
    add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
        prometheus::MetricType::Counter, s->cpu_seconds);
    add("process_resident_memory_bytes", "Resident memory size in bytes.",
        prometheus::MetricType::Gauge, s->resident_bytes);
    add("process_virtual_memory_bytes", "Virtual memory size in bytes.",
        prometheus::MetricType::Gauge, s->virtual_bytes);
    add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        prometheus::MetricType::Gauge, s->start_time_seconds);
    if (s->open_fds) {
      add("process_open_fds", "Number of open file descriptors.", prometheus::MetricType::Gauge,
          *s->open_fds);
    }
    if (s->max_fds) {
      add("process_max_fds", "Maximum number of open file descriptors.",
          prometheus::MetricType::Gauge, *s->max_fds);
    }
    return out;
  }
};

constexpr grpc::StatusCode kAllGrpcCodes[] = {
    grpc::StatusCode::OK,
    grpc::StatusCode::CANCELLED,
    grpc::StatusCode::UNKNOWN,
    grpc::StatusCode::INVALID_ARGUMENT,
    grpc::StatusCode::DEADLINE_EXCEEDED,
    grpc::StatusCode::NOT_FOUND,
    grpc::StatusCode::ALREADY_EXISTS,
    grpc::StatusCode::PERMISSION_DENIED,
    grpc::StatusCode::RESOURCE_EXHAUSTED,
    grpc::StatusCode::FAILED_PRECONDITION,
    grpc::StatusCode::ABORTED,
    grpc::StatusCode::OUT_OF_RANGE,
    grpc::StatusCode::UNIMPLEMENTED,
    grpc::StatusCode::INTERNAL,
    grpc::StatusCode::UNAVAILABLE,
    grpc::StatusCode::DATA_LOSS,
    grpc::StatusCode::UNAUTHENTICATED,
};

}  // namespace

std::string GoCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      break;
  }
  // Go prints unknown values as Code(N).
  return absl::StrCat("Code(", static_cast<int>(code), ")");
}

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<PulledMetrics> pulled = std::make_shared<PulledMetrics>();
  std::shared_ptr<ProcessMetrics> process = std::make_shared<ProcessMetrics>();

  prometheus::Family<prometheus::Gauge>& build_info =
      prometheus::BuildGauge()
          .Name("blueprintsync_build_info")
          .Help(
              "Always 1; the labels say which build of blueprint-syncd runs (version, git "
              "revision, gRPC and protobuf library versions).")
          .Register(*registry);

  prometheus::Family<prometheus::Counter>& grpc_started =
      prometheus::BuildCounter()
          .Name("grpc_server_started_total")
          .Help("Total number of RPCs started on the server.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& grpc_handled =
      prometheus::BuildCounter()
          .Name("grpc_server_handled_total")
          .Help("Total number of RPCs completed on the server, regardless of success or failure.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& grpc_received =
      prometheus::BuildCounter()
          .Name("grpc_server_msg_received_total")
          .Help("Total number of RPC stream messages received on the server.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& grpc_sent =
      prometheus::BuildCounter()
          .Name("grpc_server_msg_sent_total")
          .Help("Total number of gRPC stream messages sent by the server.")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& grpc_seconds =
      prometheus::BuildHistogram()
          .Name("grpc_server_handling_seconds")
          .Help(
              "Histogram of response latency (seconds) of gRPC that had been application-level "
              "handled by the server.")
          .Register(*registry);

  prometheus::Family<prometheus::Counter>& upstream_requests =
      prometheus::BuildCounter()
          .Name("blueprintsync_upstream_requests_total")
          .Help(
              "Lighthouse API attempts (retries included) by action and result code "
              "(OK, or the Tencent Cloud / ClientError code).")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& upstream_seconds =
      prometheus::BuildHistogram()
          .Name("blueprintsync_upstream_request_duration_seconds")
          .Help("Duration of one Lighthouse API attempt, without rate-limit waits.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& upstream_throttled =
      prometheus::BuildCounter()
          .Name("blueprintsync_upstream_throttled_total")
          .Help("Lighthouse API attempts Tencent Cloud answered with RequestLimitExceeded*.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& upstream_retries =
      prometheus::BuildCounter()
          .Name("blueprintsync_upstream_retries_total")
          .Help("Lighthouse API attempts sent again by the retry policy.")
          .Register(*registry);

  prometheus::Family<prometheus::Counter>& jobs_finished =
      prometheus::BuildCounter()
          .Name("blueprintsync_jobs_finished_total")
          .Help("Sync jobs that reached a terminal state, by state.")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& destination_seconds =
      prometheus::BuildHistogram()
          .Name("blueprintsync_destination_sync_duration_seconds")
          .Help("From submission accepted upstream to the destination image NORMAL or failed.")
          .Register(*registry);

  LabelLimiter upstream_codes;
  LabelLimiter regions;

  absl::Mutex serve_mu;
  std::unique_ptr<prometheus::Exposer> exposer ABSL_GUARDED_BY(serve_mu);

  static prometheus::Labels GrpcLabels(const GrpcMethodLabels& m) {
    return {{"grpc_type", m.type}, {"grpc_service", m.service}, {"grpc_method", m.method}};
  }
};

Metrics::Metrics(BuildInfo build) : impl_(std::make_unique<Impl>()) {
  impl_->build_info
      .Add({{"version", build.version},
            {"revision", build.revision},
            {"grpc_version", grpc::Version()},
            {"protobuf_version",
             google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION)}})
      .Set(1);
  // Known finite label sets start at zero so rate() and absent() work from
  // the first scrape. Upstream codes other than OK come from Tencent's
  // answers and cannot be known in advance.
  for (const char* state : {"SUCCEEDED", "FAILED", "CANCELLED"}) {
    impl_->jobs_finished.Add({{"state", state}});
  }
  // "OK" holds one of the code label's slots from the start, as it would
  // from the first successful call.
  impl_->upstream_codes.Admit("OK");
  for (std::string_view action : tencent::kObservedActions) {
    const std::string a(action);
    impl_->upstream_requests.Add({{"action", a}, {"code", "OK"}});
    impl_->upstream_seconds.Add({{"action", a}}, UpstreamBuckets());
    impl_->upstream_throttled.Add({{"action", a}});
    impl_->upstream_retries.Add({{"action", a}});
  }
}

Metrics::~Metrics() {
  // The exposer's threads scrape the registry: stop them first.
  absl::MutexLock lock(&impl_->serve_mu);
  impl_->exposer.reset();
}

absl::StatusOr<int> Metrics::Serve(const std::string& address) {
  absl::MutexLock lock(&impl_->serve_mu);
  if (impl_->exposer != nullptr) return absl::FailedPreconditionError("metrics already served");
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // civetweb reports a bind failure by failing construction.
    // civetweb gives each connection a worker until the request is read
    // and answered, waiting request_timeout_ms (30 s by default) for a
    // client that sends half a request: with its default 2 workers, two
    // such clients blinded every scrape for half a minute. More workers and
    // a short timeout (a scrape is a few KB each way) keep a few slow or
    // idle clients from blinding Prometheus.
    exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", address, "num_threads", std::to_string(kMetricsWorkers),
        "request_timeout_ms", std::to_string(absl::ToInt64Milliseconds(kMetricsRequestTimeout)),
        "enable_keep_alive", "no"});
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address));
  }
  exposer->RegisterCollectable(impl_->registry);
  exposer->RegisterCollectable(impl_->pulled);
  exposer->RegisterCollectable(impl_->process);
  impl_->exposer = std::move(exposer);
  return ports.front();
}

std::string Metrics::TextExposition() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry->Collect();
  for (const prometheus::Collectable* c :
       {static_cast<const prometheus::Collectable*>(impl_->pulled.get()),
        static_cast<const prometheus::Collectable*>(impl_->process.get())}) {
    std::vector<prometheus::MetricFamily> more = c->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::InitializeGrpcMethod(const GrpcMethodLabels& m) {
  const prometheus::Labels labels = Impl::GrpcLabels(m);
  impl_->grpc_started.Add(labels);
  impl_->grpc_received.Add(labels);
  impl_->grpc_sent.Add(labels);
  impl_->grpc_seconds.Add(labels, GrpcHandlingBuckets());
  for (grpc::StatusCode code : kAllGrpcCodes) {
    prometheus::Labels with_code = labels;
    with_code["grpc_code"] = GoCodeName(code);
    impl_->grpc_handled.Add(with_code);
  }
}

void Metrics::OnRpcStarted(const GrpcMethodLabels& m) {
  impl_->grpc_started.Add(Impl::GrpcLabels(m)).Increment();
}

void Metrics::OnRpcMessageReceived(const GrpcMethodLabels& m) {
  impl_->grpc_received.Add(Impl::GrpcLabels(m)).Increment();
}

void Metrics::OnRpcMessageSent(const GrpcMethodLabels& m) {
  impl_->grpc_sent.Add(Impl::GrpcLabels(m)).Increment();
}

void Metrics::OnRpcHandled(const GrpcMethodLabels& m, grpc::StatusCode code,
                           absl::Duration elapsed) {
  prometheus::Labels labels = Impl::GrpcLabels(m);
  labels["grpc_code"] = GoCodeName(code);
  impl_->grpc_handled.Add(labels).Increment();
  // go-grpc-prometheus labels the histogram without the code.
  impl_->grpc_seconds.Add(Impl::GrpcLabels(m), GrpcHandlingBuckets()).Observe(Seconds(elapsed));
}

void Metrics::OnAttempt(std::string_view action, std::string_view code, bool throttled,
                        absl::Duration duration) {
  const std::string a(action);
  impl_->upstream_requests.Add({{"action", a}, {"code", impl_->upstream_codes.Admit(code)}})
      .Increment();
  impl_->upstream_seconds.Add({{"action", a}}, UpstreamBuckets()).Observe(Seconds(duration));
  if (throttled) impl_->upstream_throttled.Add({{"action", a}}).Increment();
}

void Metrics::OnRetry(std::string_view action) {
  impl_->upstream_retries.Add({{"action", std::string(action)}}).Increment();
}

void Metrics::OnJobFinished(const v1::SyncJob& job) {
  impl_->jobs_finished.Add({{"state", v1::SyncJob::State_Name(job.state())}}).Increment();
  // Destinations of a job that never reached Tencent Cloud had no copy to time.
  if (!job.has_submit_time()) return;
  const absl::Time submitted = jobs::FromProto(job.submit_time());
  for (const v1::Destination& d : job.destinations()) {
    // A cancelled destination did not end by itself: not a sync duration.
    if (!jobs::IsTerminal(d.state()) || d.state() == v1::Destination::CANCELLED) continue;
    impl_->destination_seconds
        .Add({{"region", impl_->regions.Admit(d.region())}}, DestinationBuckets())
        .Observe(Seconds(jobs::FromProto(d.update_time()) - submitted));
  }
}

void Metrics::SetActiveJobsSource(std::function<ActiveJobCounts()> source) {
  impl_->pulled->SetActiveJobsSource(std::move(source));
}

void Metrics::SetPolicySource(std::function<PolicyCounts()> source) {
  impl_->pulled->SetPolicySource(std::move(source));
}

void Metrics::SetRegionSource(std::function<RegionTableCounts()> source) {
  impl_->pulled->SetRegionSource(std::move(source));
}

void Metrics::AddCredentialRefreshFailuresSource(std::function<uint64_t()> source) {
  impl_->pulled->AddCredentialSource(std::move(source));
}

}  // namespace blueprintsync::metrics
