#include "service/server/request_parse_interceptor.h"

#include <google/protobuf/descriptor.h>
#include <grpc/grpc.h>
#include <grpcpp/server_context.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace blueprintsync::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RequestParseInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit RequestParseInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method() == nullptr ? "" : info->method()),
        context_(info->server_context()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    // Only unary and server-streaming calls have their one request parsed
    // before the handler runs; for them a null message here is a failed
    // parse (or no message at all).
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      parse_failed_ = true;
    }
    // A call whose stream was reset before its request arrived (a "rapid
    // reset" flood) reaches this point the same way; gRPC core tells the
    // two apart (the receive failed rather than ending), and that one is
    // left for the client-gone interceptor to record as CANCELLED.
    if (parse_failed_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        methods->GetSendStatus().error_code() == grpc::StatusCode::UNIMPLEMENTED &&
        !ReceiveFailed()) {
      methods->ModifySendStatus(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, UnparsableRequestMessage(method_)));
    }
    methods->Proceed();
  }

 private:
  bool ReceiveFailed() const {
    return context_ != nullptr && context_->c_call() != nullptr &&
           grpc_call_failed_before_recv_message(context_->c_call()) != 0;
  }

  const std::string method_;
  grpc::ServerContextBase* const context_;
  bool parse_failed_ = false;
};

class RequestParseInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RequestParseInterceptor(info);
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRequestParseInterceptorFactory() {
  return std::make_unique<RequestParseInterceptorFactory>();
}

std::string UnparsableRequestMessage(absl::string_view method) {
  // "/pkg.Service/Method" -> "pkg.Service.Method", as the descriptor pool
  // names methods.
  absl::string_view path = method;
  absl::ConsumePrefix(&path, "/");
  const google::protobuf::MethodDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrReplaceAll(path, {{"/", "."}}));
  if (descriptor == nullptr) {
    return "the request message is missing or is not a valid protocol buffer";
  }
  return absl::StrCat("the request message is missing or is not a valid ",
                      descriptor->input_type()->full_name());
}

}  // namespace blueprintsync::server
