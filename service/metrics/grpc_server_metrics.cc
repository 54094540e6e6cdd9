// The gRPC server interceptor behind MakeGrpcServerMetricsFactory()
// (declared in metrics.h): one Interceptor per call, feeding Metrics with the
// go-grpc-prometheus events.
#include <google/protobuf/descriptor.h>

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/metrics/metrics.h"

namespace blueprintsync::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

std::string GoType(grpc::experimental::ServerRpcInfo::Type type) {
  switch (type) {
    case grpc::experimental::ServerRpcInfo::Type::UNARY:
      return "unary";
    case grpc::experimental::ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case grpc::experimental::ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case grpc::experimental::ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unknown";
}

// The go-grpc-prometheus type of a method, from its descriptor.
std::string GoType(const google::protobuf::MethodDescriptor& method) {
  if (method.client_streaming()) return method.server_streaming() ? "bidi_stream" : "client_stream";
  return method.server_streaming() ? "server_stream" : "unary";
}

// Creates the series of every known method at 0, so that rate() and
// absent() work before a method's first call. Methods not in the generated
// descriptor pool are left to their first call.
void InitializeKnownMethods(Metrics* metrics, const std::vector<std::string>& known) {
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& full : known) {
    const size_t slash = full.rfind('/');
    if (full.empty() || full[0] != '/' || slash == std::string::npos || slash <= 1) continue;
    GrpcMethodLabels labels;
    labels.service = full.substr(1, slash - 1);
    labels.method = full.substr(slash + 1);
    const google::protobuf::MethodDescriptor* method =
        pool->FindMethodByName(absl::StrCat(labels.service, ".", labels.method));
    if (method == nullptr) continue;
    labels.type = GoType(*method);
    metrics->InitializeGrpcMethod(labels);
  }
}

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics* metrics, GrpcMethodLabels labels)
      : metrics_(metrics), labels_(std::move(labels)) {}

  // A call that ends without the server sending a status (the client went
  // away first) still counts as handled, as Canceled, so that started and
  // handled add up.
  ~MetricsInterceptor() override {
    if (started_ && !handled_) {
      metrics_->OnRpcHandled(labels_, grpc::StatusCode::CANCELLED, absl::Now() - start_);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      started_ = true;
      start_ = absl::Now();
      metrics_->OnRpcStarted(labels_);
    }
    // A failed read (end of the client's stream) has no message.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      metrics_->OnRpcMessageReceived(labels_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      metrics_->OnRpcMessageSent(labels_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) && !handled_) {
      handled_ = true;
      metrics_->OnRpcHandled(labels_, methods->GetSendStatus().error_code(),
                             started_ ? absl::Now() - start_ : absl::ZeroDuration());
    }
    methods->Proceed();
  }

 private:
  Metrics* const metrics_;
  const GrpcMethodLabels labels_;
  bool started_ = false;
  bool handled_ = false;
  absl::Time start_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  MetricsInterceptorFactory(Metrics* metrics, const std::vector<std::string>& known)
      : metrics_(metrics), known_(known.begin(), known.end()) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    GrpcMethodLabels labels;
    labels.type = GoType(info->type());
    labels.service = "unknown";
    labels.method = "unknown";
    const std::string full = info->method() == nullptr ? "" : info->method();
    const size_t slash = full.rfind('/');
    if (known_.count(full) != 0 && slash != std::string::npos && slash > 1) {
      labels.service = full.substr(1, slash - 1);
      labels.method = full.substr(slash + 1);
    }
    return new MetricsInterceptor(metrics_, std::move(labels));
  }

 private:
  Metrics* const metrics_;
  const std::set<std::string> known_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeGrpcServerMetricsFactory(
    Metrics* metrics, const std::vector<std::string>& known_methods) {
  InitializeKnownMethods(metrics, known_methods);
  return std::make_unique<MetricsInterceptorFactory>(metrics, known_methods);
}

std::vector<std::string> GrpcMethodsOf(const std::vector<std::string>& services) {
  std::vector<std::string> out;
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      out.push_back(absl::StrCat("/", service->full_name(), "/", service->method(i)->name()));
    }
  }
  return out;
}

}  // namespace blueprintsync::metrics
