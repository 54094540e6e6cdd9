#include "service/server/client_gone.h"

#include <grpcpp/server_context.h>

#include <google/protobuf/descriptor.h>

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace blueprintsync::server {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

// A call that ended without a request message was, in gRPC 1.51, either
// reset by its client before the message arrived or sent bytes that do not
// parse: the server cannot tell them apart (see client_gone.h). For the
// rare live client the answer still names what it should have sent.
std::string NoRequestMessage(const char* method) {
  absl::string_view path = method == nullptr ? "" : method;
  absl::ConsumePrefix(&path, "/");
  const google::protobuf::MethodDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrReplaceAll(path, {{"/", "."}}));
  return absl::StrCat(
      "the call ended before a request message could be read: the client cancelled it, or "
      "sent bytes that are not a valid ",
      descriptor != nullptr ? descriptor->input_type()->full_name() : "request message");
}

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
        methods->ModifySendStatus(
            DeadlinePassed()
                ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the call's deadline passed")
                : grpc::Status(grpc::StatusCode::CANCELLED,
                               got_request_ ? "the client cancelled the call"
                                            : NoRequestMessage(info_->method())));
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
