#include "service/server/access_log.h"

#include <grpcpp/server_context.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/common/display.h"
#include "service/common/log.h"
#include "service/server/authz.h"

namespace blueprintsync::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr absl::string_view kBlueprintSync = "/blueprintsync.v1.BlueprintSync/";

// The BlueprintSync methods whose request or answer names a job or a
// policy or carries a request_id, by what they carry.
enum class Method {
  kOther,
  kSync,
  kGet,
  kCancel,
  kRetry,
  kDelete,
  kWatch,
  kCreatePolicy,
  kGetPolicy,
  kUpdatePolicy,
  kDeletePolicy,
};

Method MethodOf(absl::string_view path) {
  if (!absl::ConsumePrefix(&path, kBlueprintSync)) return Method::kOther;
  if (path == "SyncBlueprint") return Method::kSync;
  if (path == "GetSyncJob") return Method::kGet;
  if (path == "CancelSyncJob") return Method::kCancel;
  if (path == "RetrySyncJob") return Method::kRetry;
  if (path == "DeleteSyncJob") return Method::kDelete;
  if (path == "WatchSyncJob") return Method::kWatch;
  if (path == "CreateSyncPolicy") return Method::kCreatePolicy;
  if (path == "GetSyncPolicy") return Method::kGetPolicy;
  if (path == "UpdateSyncPolicy") return Method::kUpdatePolicy;
  if (path == "DeleteSyncPolicy") return Method::kDeletePolicy;
  return Method::kOther;
}

// The ErrorInfo metadata `job` of a rich error (ToGrpcStatus), or "".
std::string JobOfError(const grpc::Status& status) {
  if (status.ok() || status.error_details().empty()) return "";
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return "";
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    if (!any.Is<google::rpc::ErrorInfo>() || !any.UnpackTo(&info)) continue;
    auto it = info.metadata().find("job");
    if (it != info.metadata().end()) return it->second;
  }
  return "";
}

// Who the caller is, as its jobs record it (CallerIdentity), or its address
// when it has no verified identity.
std::string CallerOf(grpc::ServerContextBase* context) {
  if (context == nullptr) return "";
  const std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  std::string identity = CallerIdentity(PeerFromAuthContext(auth.get()));
  return identity.empty() ? context->peer() : identity;
}

bool ClientWentAway(grpc::StatusCode code) {
  return code == grpc::StatusCode::CANCELLED || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// Lines for calls whose client went away (CANCELLED, DEADLINE_EXCEEDED):
// the first few of each second one by one, the rest counted and written as
// one summary line when the second is over (at the next call that ends), so
// that a flood of reset streams cannot write log lines as fast as it
// resets them.
class ClientGoneLines {
 public:
  static constexpr int kLinesPerSecond = 10;

  // Whether the line of a call that ended with `code` may be written now;
  // counts it for the summary otherwise.
  bool Admit(grpc::StatusCode code, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    RollLocked(now);
    if (written_ < kLinesPerSecond) {
      ++written_;
      return true;
    }
    ++(code == grpc::StatusCode::CANCELLED ? held_cancelled_ : held_deadline_);
    return false;
  }

  // Writes the summary of a second that is over, if it held lines back.
  void FlushDue(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_) {
    Summary due;
    {
      absl::MutexLock lock(&mu_);
      due = RollLocked(now);
    }
    if (due.cancelled + due.deadline == 0) return;
    // Written outside mu_: no I/O under the lock every call takes.
    log::Info("rpcs ended by their clients, not logged one by one",
              {{"grpc.code.CANCELLED", due.cancelled},
               {"grpc.code.DEADLINE_EXCEEDED", due.deadline},
               {"since", absl::FormatTime(absl::RFC3339_sec, due.since, absl::UTCTimeZone())},
               {"lines_per_second", kLinesPerSecond}});
  }

 private:
  struct Summary {
    int64_t cancelled = 0;
    int64_t deadline = 0;
    absl::Time since;
  };

  // Starts a new second when the current one is over; returns what the
  // one that ended held back.
  Summary RollLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Summary ended;
    if (now - window_start_ < absl::Seconds(1)) return ended;
    ended = {held_cancelled_, held_deadline_, window_start_};
    window_start_ = now;
    written_ = 0;
    held_cancelled_ = 0;
    held_deadline_ = 0;
    return ended;
  }

  absl::Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int written_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t held_cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t held_deadline_ ABSL_GUARDED_BY(mu_) = 0;
};

class AccessLogInterceptor final : public grpc::experimental::Interceptor {
 public:
  AccessLogInterceptor(grpc::experimental::ServerRpcInfo* info, ClientGoneLines* client_gone)
      : info_(info),
        client_gone_(client_gone),
        method_(info->method() == nullptr ? "" : info->method()),
        kind_(MethodOf(method_)),
        // Probes and successful reads are frequent and change nothing: debug
        // level, so they cost nothing unless asked for. Writes and every
        // error are logged at info or above.
        quiet_when_ok_(absl::StartsWith(method_, "/grpc.health.v1.Health/") ||
                       absl::StartsWith(method_, "/grpc.reflection.") ||
                       method_ == "/blueprintsync.v1.BlueprintSync/GetSyncJob" ||
                       method_ == "/blueprintsync.v1.BlueprintSync/ListSyncJobs" ||
                       method_ == "/blueprintsync.v1.BlueprintSync/WatchSyncJob" ||
                       method_ == "/blueprintsync.v1.BlueprintSync/GetSyncPolicy" ||
                       method_ == "/blueprintsync.v1.BlueprintSync/ListSyncPolicies") {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      start_ = absl::Now();
      // Here, before the handler runs: the server context creates its
      // AuthContext on first use, unsynchronized, and the handler reads it
      // too.
      caller_ = Shown(CallerOf(info_->server_context()));
      if (info_->server_context() != nullptr) peer_ = Shown(info_->server_context()->peer());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      if (const void* request = methods->GetRecvMessage()) NoteRequest(request);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      if (const void* answer = methods->GetSendMessage()) NoteAnswer(answer);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const absl::Time now = absl::Now();
      client_gone_->FlushDue(now);
      const log::Level level = quiet_when_ok_ && status.ok() ? log::Level::kDebug
                               : status.error_code() == grpc::StatusCode::INTERNAL
                                   ? log::Level::kWarn
                                   : log::Level::kInfo;
      if (log::Enabled(level) &&
          (!ClientWentAway(status.error_code()) || client_gone_->Admit(status.error_code(), now))) {
        if (answer_job_.empty()) answer_job_ = Shown(JobOfError(status));
        Log(level, status);
      }
    }
    methods->Proceed();
  }

 private:
  // `request` is the deserialized request of kind_'s type. Values are
  // caller-supplied, so only a bounded, escaped copy is kept.
  void NoteRequest(const void* request) {
    switch (kind_) {
      case Method::kSync:
        request_id_ = Shown(static_cast<const v1::SyncBlueprintRequest*>(request)->request_id());
        break;
      case Method::kRetry: {
        const auto* retry = static_cast<const v1::RetrySyncJobRequest*>(request);
        request_job_ = Shown(retry->name());
        request_id_ = Shown(retry->request_id());
        break;
      }
      case Method::kGet:
        request_job_ = Shown(static_cast<const v1::GetSyncJobRequest*>(request)->name());
        break;
      case Method::kCancel:
        request_job_ = Shown(static_cast<const v1::CancelSyncJobRequest*>(request)->name());
        break;
      case Method::kDelete:
        request_job_ = Shown(static_cast<const v1::DeleteSyncJobRequest*>(request)->name());
        break;
      case Method::kWatch:
        request_job_ = Shown(static_cast<const v1::WatchSyncJobRequest*>(request)->name());
        break;
      case Method::kCreatePolicy:
        // The name it asks for; the answer has the same one.
        policy_ = absl::StrCat(
            "syncPolicies/",
            Shown(static_cast<const v1::CreateSyncPolicyRequest*>(request)->sync_policy_id()));
        break;
      case Method::kGetPolicy:
        policy_ = Shown(static_cast<const v1::GetSyncPolicyRequest*>(request)->name());
        break;
      case Method::kUpdatePolicy:
        policy_ =
            Shown(static_cast<const v1::UpdateSyncPolicyRequest*>(request)->sync_policy().name());
        break;
      case Method::kDeletePolicy:
        policy_ = Shown(static_cast<const v1::DeleteSyncPolicyRequest*>(request)->name());
        break;
      case Method::kOther:
        break;
    }
  }

  // The job methods above but DeleteSyncJob answer with a SyncJob; the
  // policy methods name their policy in the request already.
  void NoteAnswer(const void* answer) {
    switch (kind_) {
      case Method::kSync:
      case Method::kGet:
      case Method::kCancel:
      case Method::kRetry:
      case Method::kWatch:
        if (answer_job_.empty())
          answer_job_ = Shown(static_cast<const v1::SyncJob*>(answer)->name());
        break;
      default:
        break;
    }
  }

  void Log(log::Level level, const grpc::Status& status) const {
    const size_t slash = method_.rfind('/');
    const std::string service = slash == std::string::npos ? "" : method_.substr(1, slash - 1);
    const std::string name = slash == std::string::npos ? method_ : method_.substr(slash + 1);
    // The message is the server's own text, already bounded; shown anyway
    // through Shown() so no caller-supplied value can make a huge line.
    // The job is the one answered (a new job for SyncBlueprint and
    // RetrySyncJob), else the one asked about; a retry also names the job
    // it retries.
    const std::string& job = answer_job_.empty() ? request_job_ : answer_job_;
    const bool retried = kind_ == Method::kRetry && !answer_job_.empty();
    log::Write(level, "rpc finished",
               {{"grpc.service", service},
                {"grpc.method", name},
                {"grpc.code", StatusCodeName(status.error_code())},
                {"grpc.time_ms", absl::ToInt64Milliseconds(absl::Now() - start_)},
                {"caller", caller_},
                {"peer.address", peer_},
                {"request_id", request_id_},
                {"job", job},
                {"retry_of", retried ? request_job_ : ""},
                {"policy", policy_},
                {"error", status.ok() ? "" : Shown(status.error_message())}});
  }

  grpc::experimental::ServerRpcInfo* const info_;
  ClientGoneLines* const client_gone_;
  const std::string method_;
  const Method kind_;
  const bool quiet_when_ok_;
  absl::Time start_ = absl::Now();
  std::string caller_;
  // The transport address ("ipv4:10.0.0.7:51234"), also when caller_ is a
  // certificate identity: which pod or node a verified caller came from.
  std::string peer_;
  std::string request_id_;
  std::string request_job_;
  std::string answer_job_;
  std::string policy_;
};

class AccessLogFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new AccessLogInterceptor(info, &client_gone_);
  }

 private:
  ClientGoneLines client_gone_;
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
