#include "service/server/access_log.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/common/display.h"
#include "service/common/log.h"

namespace blueprintsync::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class AccessLogInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit AccessLogInterceptor(std::string method)
      : method_(std::move(method)),
        // Probes and successful reads are frequent and change nothing: debug
        // level, so they cost nothing unless asked for. Writes and every
        // error are logged at info or above.
        quiet_when_ok_(absl::StartsWith(method_, "/grpc.health.v1.Health/") ||
                       absl::StartsWith(method_, "/grpc.reflection.") ||
                       method_ == "/blueprintsync.v1.BlueprintSync/GetSyncJob" ||
                       method_ == "/blueprintsync.v1.BlueprintSync/ListSyncJobs" ||
                       method_ == "/blueprintsync.v1.BlueprintSync/WatchSyncJob") {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      start_ = absl::Now();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const log::Level level = quiet_when_ok_ && status.ok() ? log::Level::kDebug
                               : status.error_code() == grpc::StatusCode::INTERNAL
                                   ? log::Level::kWarn
                                   : log::Level::kInfo;
      if (log::Enabled(level)) Log(level, status);
    }
    methods->Proceed();
  }

 private:
  void Log(log::Level level, const grpc::Status& status) const {
    const size_t slash = method_.rfind('/');
    const std::string service = slash == std::string::npos ? "" : method_.substr(1, slash - 1);
    const std::string name = slash == std::string::npos ? method_ : method_.substr(slash + 1);
    // The message is the server's own text, already bounded; shown anyway
    // through Shown() so no caller-supplied value can make a huge line.
    log::Write(level, "rpc finished",
               {{"grpc.service", service},
                {"grpc.method", name},
                {"grpc.code", StatusCodeName(status.error_code())},
                {"grpc.time_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start_))},
                {"error", status.ok() ? "" : Shown(status.error_message())}});
  }

  const std::string method_;
  const bool quiet_when_ok_;
  absl::Time start_ = absl::Now();
};

class AccessLogFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new AccessLogInterceptor(info->method() == nullptr ? "" : info->method());
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAccessLogFactory() {
  return std::make_unique<AccessLogFactory>();
}

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

}  // namespace blueprintsync::server
