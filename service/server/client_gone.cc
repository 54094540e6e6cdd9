#include "service/server/client_gone.h"

#include <grpcpp/server_context.h>

#include <chrono>

namespace blueprintsync::server {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

class ClientGoneInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ClientGoneInterceptor(ServerRpcInfo* info)
      : info_(info),
        expects_request_(info->type() == ServerRpcInfo::Type::UNARY ||
                         info->type() == ServerRpcInfo::Type::SERVER_STREAMING) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      got_request_ = true;
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (!status.ok() && status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
          ClientIsGone(status)) {
        methods->ModifySendStatus(DeadlinePassed()
                                      ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                                     "the call's deadline passed")
                                      : grpc::Status(grpc::StatusCode::CANCELLED,
                                                     "the client cancelled the call"));
      }
    }
    methods->Proceed();
  }

 private:
  // gRPC answers a registered unary or server-streaming call whose request
  // never arrived whole with UNIMPLEMENTED and no message; the server
  // context tells of any other cancellation.
  bool ClientIsGone(const grpc::Status& status) const {
    if (expects_request_ && !got_request_ && status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
        status.error_message().empty()) {
      return true;
    }
    const grpc::ServerContextBase* context = info_->server_context();
    return context != nullptr && context->IsCancelled();
  }

  // The client's own timer usually fires first and resets the stream a
  // moment before the server's would: a cancellation this close to the
  // deadline is the deadline's.
  static constexpr std::chrono::milliseconds kDeadlineSlack{500};

  bool DeadlinePassed() const {
    const grpc::ServerContextBase* context = info_->server_context();
    if (context == nullptr) return false;
    const auto deadline = context->deadline();
    return deadline != std::chrono::system_clock::time_point::max() &&
           deadline <= std::chrono::system_clock::now() + kDeadlineSlack;
  }

  ServerRpcInfo* const info_;
  const bool expects_request_;
  bool got_request_ = false;
};

class ClientGoneFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new ClientGoneInterceptor(info);
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeClientGoneFactory() {
  return std::make_unique<ClientGoneFactory>();
}

}  // namespace blueprintsync::server
