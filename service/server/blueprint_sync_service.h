// BlueprintSyncService: the gRPC surface (callback API). Handlers authorize
// and validate, then hand work to the JobService (jobs) or the
// PolicyService (replication policies) and finish from their callbacks,
// which may come later on another thread; none of them waits for the store
// or an upstream call.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_BLUEPRINT_SYNC_SERVICE_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_BLUEPRINT_SYNC_SERVICE_H_

#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/message_allocator.h>

#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "google/protobuf/empty.pb.h"
#include "service/jobs/job_service.h"
#include "service/policies/policy_service.h"
#include "service/server/authz.h"
#include "service/server/response_delivery.h"
#include "service/tencent/regions.h"

namespace blueprintsync::server {

struct ServiceOptions {
  // SyncBlueprint answers with the QUEUED job this long before the caller's
  // deadline when the submission has not been answered by then.
  absl::Duration reply_margin = absl::Milliseconds(300);
  // Who may call what (--authz-policy); null: every caller may call every
  // method. Not owned; must outlive the service.
  const AuthzPolicy* authz = nullptr;
  // The timeout of a job whose request sets none (--job-deadline).
  absl::Duration default_job_timeout = absl::Hours(6);
  // The longest timeout a request may ask for (--max-job-timeout).
  absl::Duration max_job_timeout = absl::Hours(24);
  // For requests that do not set keep_failed_copies (--keep-failed-copies).
  bool keep_failed_copies = false;
  // Bounds the list answers clients have not read yet (--response-budget,
  // --delivery-timeout); null: unbounded. Not owned; must outlive the
  // server.
  ResponseDelivery* delivery = nullptr;
};

class BlueprintSyncService final : public v1::BlueprintSync::CallbackService {
 public:
  // `jobs` and `policies` are not owned and must outlive the server that
  // serves this. Without `policies` the policy methods answer
  // UNIMPLEMENTED.
  BlueprintSyncService(ServiceOptions options, jobs::JobService* jobs,
                       policies::PolicyService* policies = nullptr);

  grpc::ServerUnaryReactor* SyncBlueprint(grpc::CallbackServerContext* context,
                                          const v1::SyncBlueprintRequest* request,
                                          v1::SyncJob* response) override;
  grpc::ServerUnaryReactor* GetSyncJob(grpc::CallbackServerContext* context,
                                       const v1::GetSyncJobRequest* request,
                                       v1::SyncJob* response) override;
  grpc::ServerUnaryReactor* ListSyncJobs(grpc::CallbackServerContext* context,
                                         const v1::ListSyncJobsRequest* request,
                                         v1::ListSyncJobsResponse* response) override;
  grpc::ServerWriteReactor<v1::SyncJob>* WatchSyncJob(
      grpc::CallbackServerContext* context, const v1::WatchSyncJobRequest* request) override;
  grpc::ServerUnaryReactor* CancelSyncJob(grpc::CallbackServerContext* context,
                                          const v1::CancelSyncJobRequest* request,
                                          v1::SyncJob* response) override;
  grpc::ServerUnaryReactor* RetrySyncJob(grpc::CallbackServerContext* context,
                                         const v1::RetrySyncJobRequest* request,
                                         v1::SyncJob* response) override;
  grpc::ServerUnaryReactor* DeleteSyncJob(grpc::CallbackServerContext* context,
                                          const v1::DeleteSyncJobRequest* request,
                                          google::protobuf::Empty* response) override;

  grpc::ServerUnaryReactor* CreateSyncPolicy(grpc::CallbackServerContext* context,
                                             const v1::CreateSyncPolicyRequest* request,
                                             v1::SyncPolicy* response) override;
  grpc::ServerUnaryReactor* GetSyncPolicy(grpc::CallbackServerContext* context,
                                          const v1::GetSyncPolicyRequest* request,
                                          v1::SyncPolicy* response) override;
  grpc::ServerUnaryReactor* ListSyncPolicies(grpc::CallbackServerContext* context,
                                             const v1::ListSyncPoliciesRequest* request,
                                             v1::ListSyncPoliciesResponse* response) override;
  grpc::ServerUnaryReactor* UpdateSyncPolicy(grpc::CallbackServerContext* context,
                                             const v1::UpdateSyncPolicyRequest* request,
                                             v1::SyncPolicy* response) override;
  grpc::ServerUnaryReactor* DeleteSyncPolicy(grpc::CallbackServerContext* context,
                                             const v1::DeleteSyncPolicyRequest* request,
                                             google::protobuf::Empty* response) override;

 private:
  // OK when no policy is set or `peer` is allowed; otherwise the status to
  // finish the call with.
  grpc::Status Authorize(const Peer& peer, absl::string_view method, Access access) const;
  grpc::Status Authorize(grpc::CallbackServerContext* context, absl::string_view method,
                         Access access) const;
  // Authorize, then whether policies are enabled: OK, or the status to
  // finish a policy call with.
  grpc::Status AdmitPolicyCall(const Peer& peer, absl::string_view method, Access access) const;
  grpc::Status AdmitPolicyCall(grpc::CallbackServerContext* context, absl::string_view method,
                               Access access) const;
  // A SyncBlueprint with a request_id that only this replica's region table
  // refuses: answered as a repeat if a job has that request_id, else with
  // the violations.
  void AnswerRepeatOrRefuse(jobs::NewJob job, std::vector<tencent::FieldViolation> violations,
                            absl::Time reply_by, grpc::ServerUnaryReactor* reactor,
                            v1::SyncJob* response);

  // Puts each ListSyncJobs call's request and response on a protobuf arena
  // of its own, so the page's jobs are parsed straight into the response and
  // freed at once (see the .cc).
  class ListMessages final
      : public grpc::MessageAllocator<v1::ListSyncJobsRequest, v1::ListSyncJobsResponse> {
   public:
    grpc::MessageHolder<v1::ListSyncJobsRequest, v1::ListSyncJobsResponse>* AllocateMessages()
        override;
  };

  ServiceOptions options_;
  jobs::JobService* const jobs_;
  policies::PolicyService* const policies_;  // null: policies are not enabled
  ListMessages list_messages_;
};

// Checks a job name ("syncJobs/<uuid>"); INVALID_ARGUMENT naming `name`.
absl::Status ValidateJobName(const std::string& name);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_BLUEPRINT_SYNC_SERVICE_H_
