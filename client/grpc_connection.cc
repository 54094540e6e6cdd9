#include "client/grpc_connection.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "client/rpc_error.h"
#include "google/protobuf/empty.pb.h"

namespace blueprintsync::cli {
namespace {

namespace v1 = ::blueprintsync::v1;

// Owns the context the reader was started with; gRPC requires the context to
// outlive the call.
class GrpcSyncJobStream final : public SyncJobStream {
 public:
  GrpcSyncJobStream(std::unique_ptr<grpc::ClientContext> context,
                    std::unique_ptr<grpc::ClientReader<v1::SyncJob>> reader)
      : context_(std::move(context)), reader_(std::move(reader)) {}

  bool Read(v1::SyncJob* job) override { return reader_->Read(job); }
  absl::Status Finish() override { return FromGrpcStatus(reader_->Finish()); }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<v1::SyncJob>> reader_;
};

class GrpcConnection final : public BlueprintSyncConnection {
 public:
  explicit GrpcConnection(const ConnectionOptions& options) : options_(options) {
    grpc::ChannelArguments args;
    // A watch reconnects after a server restart; keep the channel's own
    // reconnect backoff shorter than the CLI's reconnect budget.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
    args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, "blueprint-sync-cli");
    // The certificate names a service (e.g. its cluster DNS name) while
    // --server may be an IP or a port-forward to localhost.
    if (options_.tls.enabled && !options_.tls.server_name.empty()) {
      args.SetSslTargetNameOverride(options_.tls.server_name);
    }
    channel_ = grpc::CreateCustomChannel(options_.server, MakeChannelCredentials(options_), args);
    stub_ = v1::BlueprintSync::NewStub(channel_);
  }

  absl::StatusOr<v1::SyncJob> SyncBlueprint(const v1::SyncBlueprintRequest& request) override {
    grpc::ClientContext context;
    SetDeadline(&context);
    v1::SyncJob job;
    grpc::Status status = stub_->SyncBlueprint(&context, request, &job);
    if (!status.ok()) return FromGrpcStatus(status);
    return job;
  }

  absl::StatusOr<v1::SyncJob> GetSyncJob(const v1::GetSyncJobRequest& request) override {
    grpc::ClientContext context;
    SetDeadline(&context);
    v1::SyncJob job;
    grpc::Status status = stub_->GetSyncJob(&context, request, &job);
    if (!status.ok()) return FromGrpcStatus(status);
    return job;
  }

  absl::StatusOr<v1::ListSyncJobsResponse> ListSyncJobs(
      const v1::ListSyncJobsRequest& request) override {
    grpc::ClientContext context;
    SetDeadline(&context);
    v1::ListSyncJobsResponse response;
    grpc::Status status = stub_->ListSyncJobs(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  absl::StatusOr<v1::SyncJob> CancelSyncJob(const v1::CancelSyncJobRequest& request) override {
    grpc::ClientContext context;
    SetDeadline(&context);
    v1::SyncJob job;
    grpc::Status status = stub_->CancelSyncJob(&context, request, &job);
    if (!status.ok()) return FromGrpcStatus(status);
    return job;
  }

  absl::StatusOr<v1::SyncJob> RetrySyncJob(const v1::RetrySyncJobRequest& request) override {
    grpc::ClientContext context;
    SetDeadline(&context);
    v1::SyncJob job;
    grpc::Status status = stub_->RetrySyncJob(&context, request, &job);
    if (!status.ok()) return FromGrpcStatus(status);
    return job;
  }

  absl::Status DeleteSyncJob(const v1::DeleteSyncJobRequest& request) override {
    grpc::ClientContext context;
    SetDeadline(&context);
    google::protobuf::Empty empty;
    return FromGrpcStatus(stub_->DeleteSyncJob(&context, request, &empty));
  }

  absl::StatusOr<v1::SyncPolicy> CreateSyncPolicy(
      const v1::CreateSyncPolicyRequest& request) override {
    return Unary(&v1::BlueprintSync::Stub::CreateSyncPolicy, request);
  }

  absl::StatusOr<v1::SyncPolicy> GetSyncPolicy(const v1::GetSyncPolicyRequest& request) override {
    return Unary(&v1::BlueprintSync::Stub::GetSyncPolicy, request);
  }

  absl::StatusOr<v1::ListSyncPoliciesResponse> ListSyncPolicies(
      const v1::ListSyncPoliciesRequest& request) override {
    return Unary(&v1::BlueprintSync::Stub::ListSyncPolicies, request);
  }

  absl::StatusOr<v1::SyncPolicy> UpdateSyncPolicy(
      const v1::UpdateSyncPolicyRequest& request) override {
    return Unary(&v1::BlueprintSync::Stub::UpdateSyncPolicy, request);
  }

  absl::Status DeleteSyncPolicy(const v1::DeleteSyncPolicyRequest& request) override {
    return Unary(&v1::BlueprintSync::Stub::DeleteSyncPolicy, request).status();
  }

  absl::StatusOr<std::unique_ptr<SyncJobStream>> WatchSyncJob(
      const v1::WatchSyncJobRequest& request) override {
    // The stream has no deadline (a copy can take an hour), so the timeout
    // is spent here, on getting connected.
    if (absl::Status s = WaitUntilConnected(); !s.ok()) return s;
    auto context = std::make_unique<grpc::ClientContext>();
    auto reader = stub_->WatchSyncJob(context.get(), request);
    return std::unique_ptr<SyncJobStream>(
        new GrpcSyncJobStream(std::move(context), std::move(reader)));
  }

 private:
  // Like Channel::WaitForConnected, but a connection attempt made by this
  // call that fails ends it at once, as a unary call would fail: `watch`
  // against a server that is down fails fast, a connection that hangs is
  // bounded by the timeout. A failure left over from before (the channel
  // backing off after a server restart) is not final: the backoff is reset
  // and the next attempt's outcome awaited.
  absl::Status WaitUntilConnected() {
    const auto deadline = absl::ToChronoTime(absl::Now() + options_.timeout);
    grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
    }
    bool attempted = false;
    while (state != GRPC_CHANNEL_READY) {
      if (state == GRPC_CHANNEL_SHUTDOWN ||
          (state == GRPC_CHANNEL_TRANSIENT_FAILURE && attempted)) {
        return absl::UnavailableError(
            absl::StrCat("could not connect to ", options_.server, " (connection failed)"));
      }
      if (state == GRPC_CHANNEL_IDLE || state == GRPC_CHANNEL_CONNECTING) attempted = true;
      if (!channel_->WaitForStateChange(state, deadline)) {
        return absl::UnavailableError(absl::StrCat("could not connect to ", options_.server,
                                                   " within ",
                                                   absl::FormatDuration(options_.timeout)));
      }
      state = channel_->GetState(/*try_to_connect=*/true);
    }
    return absl::OkStatus();
  }

  // One unary call with the per-call deadline: the stub method, e.g.
  // &Stub::GetSyncPolicy, and its request; the answer or the error with its
  // details.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Unary(grpc::Status (v1::BlueprintSync::Stub::*method)(
                                     grpc::ClientContext*, const Request&, Response*),
                                 const Request& request) {
    grpc::ClientContext context;
    SetDeadline(&context);
    Response response;
    grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  void SetDeadline(grpc::ClientContext* context) const {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  }

  ConnectionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::BlueprintSync::Stub> stub_;
};

}  // namespace

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const ConnectionOptions& options) {
  if (!options.tls.enabled) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.tls.root_pem;
  ssl.pem_cert_chain = options.tls.cert_pem;
  ssl.pem_private_key = options.tls.key_pem;
  return grpc::SslCredentials(ssl);
}

std::unique_ptr<BlueprintSyncConnection> MakeGrpcConnection(const ConnectionOptions& options) {
  return std::make_unique<GrpcConnection>(options);
}

}  // namespace blueprintsync::cli
