#include "service/server/blueprint_sync_service.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/duration.pb.h"
#include "service/common/display.h"
#include "service/common/error_reason.h"
#include "service/jobs/job_state.h"
#include "service/jobs/job_store.h"
#include "service/server/field_rules.h"
#include "service/server/grpc_errors.h"
#include "service/server/list_query.h"
#include "service/server/policy_validation.h"
#include "service/tencent/regions.h"

namespace blueprintsync::server {
namespace {

constexpr size_t kMaxRequestIdBytes = 64;
constexpr absl::Duration kMinJobTimeout = absl::Minutes(1);

std::optional<tencent::FieldViolation> ValidateRequestId(const std::string& request_id) {
  if (request_id.empty() || (request_id.size() <= kMaxRequestIdBytes && jobs::IsUuid(request_id))) {
    return std::nullopt;
  }
  return tencent::FieldViolation{
      "request_id", "REQUEST_ID_MALFORMED",
      absl::StrCat("request_id \"", Shown(request_id),
                   "\" is not a UUID such as \"3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c\"")};
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// google.protobuf.Duration's own rules: nanos within a second and of the
// sign of seconds, at most 10000 years.
bool IsValidDuration(const google::protobuf::Duration& d) {
  constexpr int64_t kMaxSeconds = 315576000000;
  if (d.seconds() > kMaxSeconds || d.seconds() < -kMaxSeconds) return false;
  if (d.nanos() > 999999999 || d.nanos() < -999999999) return false;
  return !((d.seconds() > 0 && d.nanos() < 0) || (d.seconds() < 0 && d.nanos() > 0));
}

void ValidateTimeout(const v1::SyncBlueprintRequest& r, const ServiceOptions& options,
                     std::vector<tencent::FieldViolation>& violations) {
  if (!r.has_timeout()) return;
  if (!IsValidDuration(r.timeout())) {
    violations.push_back(
        {"timeout", "TIMEOUT_MALFORMED",
         absl::StrCat("timeout (", r.timeout().seconds(), "s, ", r.timeout().nanos(),
                      "ns) is not a valid google.protobuf.Duration.")});
    return;
  }
  const absl::Duration timeout = FromProto(r.timeout());
  if (timeout == absl::ZeroDuration()) return;  // the server's default
  if (timeout < kMinJobTimeout || timeout > options.max_job_timeout) {
    violations.push_back({"timeout", "TIMEOUT_OUT_OF_RANGE",
                          absl::StrCat("timeout ", absl::FormatDuration(timeout), " is not from ",
                                       absl::FormatDuration(kMinJobTimeout), " to ",
                                       absl::FormatDuration(options.max_job_timeout),
                                       "; leave it unset for the server's default (",
                                       absl::FormatDuration(options.default_job_timeout), ").")});
  }
}

// The timeout of a validated request: its own, or the server's default.
absl::Duration JobTimeout(const v1::SyncBlueprintRequest& r, const ServiceOptions& options) {
  const absl::Duration asked = r.has_timeout() ? FromProto(r.timeout()) : absl::ZeroDuration();
  return asked > absl::ZeroDuration() ? asked : options.default_job_timeout;
}

// Whether every violation comes from the region table (which DescribeRegions
// refreshes, per replica) rather than from the request alone.
bool OnlyRegionTableRules(const std::vector<tencent::FieldViolation>& violations) {
  return std::all_of(violations.begin(), violations.end(), [](const tencent::FieldViolation& v) {
    return v.rule == "SOURCE_REGION_UNSUPPORTED" || v.rule == "DESTINATION_REGION_UNSUPPORTED" ||
           v.rule == "CROSS_BORDER_SYNC";
  });
}

std::vector<tencent::FieldViolation> Validate(const v1::SyncBlueprintRequest& r,
                                              const ServiceOptions& options) {
  auto violations =
      ValidateSyncFields(r.source_region(), r.blueprint_id(), r.destination_regions());
  if (auto v = ValidateRequestId(r.request_id())) violations.push_back(*std::move(v));
  ValidateLabels(r.labels(), violations);
  ValidateTimeout(r, options, violations);
  return violations;
}

// What a job records as its creator: the caller's verified identity, or
// "anonymous" for a caller without one (no mTLS).
std::string CreatorOf(const Peer& peer) {
  std::string identity = CallerIdentity(peer);
  return identity.empty() ? jobs::kAnonymousCreator : identity;
}

Peer PeerOf(grpc::CallbackServerContext* context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  return PeerFromAuthContext(auth.get());
}

absl::Time ReplyBy(const grpc::CallbackServerContext* context, absl::Duration margin) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline) - margin;
}

// Answers a unary call with the job, or with the error mapped to gRPC. The
// callback may run after the handler has returned, on another thread: it
// holds only what gRPC keeps valid until Finish.
jobs::JobService::JobCallback FinishWithJob(grpc::ServerUnaryReactor* reactor,
                                            v1::SyncJob* response) {
  return [reactor, response](absl::StatusOr<v1::SyncJob> job) {
    if (!job.ok()) {
      reactor->Finish(ToGrpcStatus(job.status()));
      return;
    }
    *response = *std::move(job);
    reactor->Finish(grpc::Status::OK);
  };
}

grpc::Status PoliciesDisabled() {
  return ToGrpcStatus(absl::UnimplementedError("replication policies are not enabled"));
}

// As FinishWithJob, for a policy.
policies::PolicyService::PolicyCallback FinishWithPolicy(grpc::ServerUnaryReactor* reactor,
                                                         v1::SyncPolicy* response) {
  return [reactor, response](absl::StatusOr<v1::SyncPolicy> policy) {
    if (!policy.ok()) {
      reactor->Finish(ToGrpcStatus(policy.status()));
      return;
    }
    *response = *std::move(policy);
    reactor->Finish(grpc::Status::OK);
  };
}

// Answers a list call. Its answer is up to megabytes and gRPC keeps it until
// the client has read it, so it is counted against the delivery budget from
// Finish to OnDone, and the call is cancelled if the client does not read it
// within the delivery timeout (ResponseDelivery).
class ListReactor final : public grpc::ServerUnaryReactor {
 public:
  ListReactor(grpc::CallbackServerContext* context, google::protobuf::Message* response,
              ResponseDelivery* delivery)
      : context_(context), response_(response), delivery_(delivery) {}

  // Sends the response the handler has filled in, or RESOURCE_EXHAUSTED
  // when the budget cannot hold it.
  void FinishWithResponse() {
    if (delivery_ != nullptr) {
      absl::StatusOr<uint64_t> ticket =
          delivery_->Reserve(context_, static_cast<int64_t>(response_->ByteSizeLong()));
      if (!ticket.ok()) {
        response_->Clear();
        Finish(ToGrpcStatus(ticket.status()));
        return;
      }
      ticket_ = *ticket;  // written before Finish; OnDone comes after it
    }
    Finish(grpc::Status::OK);
  }

  void OnDone() override {
    if (ticket_ != 0) delivery_->Release(ticket_);
    delete this;
  }

 private:
  grpc::CallbackServerContext* const context_;
  google::protobuf::Message* const response_;
  ResponseDelivery* const delivery_;
  uint64_t ticket_ = 0;
};

// Streams a job: its current state, then its changes, then OK after the
// terminal state; a status that ends the watch (the job does not exist, the
// server is shutting down) ends the stream once the latest version before it
// is written. It holds at most the version being written and the latest one
// not yet written (shared with every other watcher of the job): a newer
// version replaces one still waiting, so a client that reads slowly skips
// intermediate versions instead of making the server queue them, and always
// gets the latest, so the terminal one. Watch callbacks may run inside
// WatchJob (from the constructor), or on the engine's fan-out thread
// concurrently with OnWriteDone and OnCancel, so they only keep the version
// and start writes. gRPC runs the reactions on its own threads, never inside
// StartWrite or Finish, so starting those under mu_ cannot re-enter it.
class WatchReactor final : public grpc::ServerWriteReactor<v1::SyncJob> {
 public:
  WatchReactor(jobs::JobService* jobs, const std::string& name) : jobs_(jobs) {
    const uint64_t id = jobs_->WatchJob(name, [this](absl::StatusOr<jobs::JobVersion> job) {
      absl::MutexLock lock(&mu_);
      if (job.ok()) {
        // The engine passes versions on oldest first: this one is newer than
        // any waiting, which it replaces.
        next_ = *std::move(job);
      } else if (!end_.has_value()) {
        // An error before any version says why the watch could not start;
        // one after versions ends the stream (the server is going away,
        // SHUTTING_DOWN). Either carries the rich details of any other
        // failed call, so a watcher can branch on the reason too.
        end_ = ToGrpcStatus(job.status());
      }
      MaybeWriteLocked();
    });
    absl::MutexLock lock(&mu_);
    watch_id_ = id;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was closed"));
      return;
    }
    if (jobs::IsTerminal(current_->state())) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!writing_) FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }

  void OnDone() override {
    uint64_t id = 0;
    {
      absl::MutexLock lock(&mu_);
      id = watch_id_;
    }
    // Not under mu_: Unwatch waits for a running callback, which takes mu_.
    // Once it returns no callback can touch this reactor any more.
    jobs_->Unwatch(id);
    delete this;
  }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (cancelled_) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
    if (next_ != nullptr) {
      // Kept alive by current_ until OnWriteDone: gRPC reads it until then.
      current_ = std::move(next_);
      next_ = nullptr;
      writing_ = true;
      StartWrite(current_.get());
      return;
    }
    if (end_.has_value()) FinishLocked(*end_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  jobs::JobService* const jobs_;
  absl::Mutex mu_;
  uint64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;
  jobs::JobVersion next_ ABSL_GUARDED_BY(mu_);     // the latest version not yet written
  jobs::JobVersion current_ ABSL_GUARDED_BY(mu_);  // the version being (or last) written
  // The status the service ended the watch with; sent after next_.
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::Status ValidateJobName(const std::string& name) {
  if (name.empty()) return jobs::InvalidField("name", "NAME_REQUIRED", "name is required");
  constexpr absl::string_view kPrefix = "syncJobs/";
  if (!absl::StartsWith(name, kPrefix) ||
      !jobs::IsUuid(absl::string_view(name).substr(kPrefix.size()))) {
    return jobs::InvalidField(
        "name", "NAME_MALFORMED",
        absl::StrCat("name \"", Shown(name), "\" is not of the form syncJobs/{uuid}"));
  }
  return absl::OkStatus();
}

BlueprintSyncService::BlueprintSyncService(ServiceOptions options, jobs::JobService* jobs,
                                           policies::PolicyService* policies)
    : options_(options), jobs_(jobs), policies_(policies) {
  SetMessageAllocatorFor_ListSyncJobs(&list_messages_);
}

namespace {

// A page of ListSyncJobs is up to 1,000 jobs of a few dozen fields each:
// parsed onto the heap, that was thousands of allocations per call and as
// many frees when the response was destroyed (a third of the call's CPU in
// the profile, BENCHMARKS.md). On an arena they are carved from a few
// blocks and freed together when gRPC releases the messages, after the
// response is sent.
class ArenaListMessages final
    : public grpc::MessageHolder<v1::ListSyncJobsRequest, v1::ListSyncJobsResponse> {
 public:
  ArenaListMessages() : arena_(Options()) {
    set_request(google::protobuf::Arena::CreateMessage<v1::ListSyncJobsRequest>(&arena_));
    set_response(google::protobuf::Arena::CreateMessage<v1::ListSyncJobsResponse>(&arena_));
  }
  void Release() override { delete this; }

 private:
  static google::protobuf::ArenaOptions Options() {
    google::protobuf::ArenaOptions options;
    // A default page (50 jobs) takes a few tens of KiB: a few blocks.
    options.start_block_size = 8 << 10;
    options.max_block_size = 64 << 10;
    return options;
  }
  google::protobuf::Arena arena_;
};

}  // namespace

grpc::MessageHolder<v1::ListSyncJobsRequest, v1::ListSyncJobsResponse>*
BlueprintSyncService::ListMessages::AllocateMessages() {
  return new ArenaListMessages();
}

grpc::Status BlueprintSyncService::Authorize(const Peer& peer, absl::string_view method,
                                             Access access) const {
  if (options_.authz == nullptr) return grpc::Status::OK;
  return ToGrpcStatus(options_.authz->Check(method, access, peer));
}

grpc::Status BlueprintSyncService::Authorize(grpc::CallbackServerContext* context,
                                             absl::string_view method, Access access) const {
  if (options_.authz == nullptr) return grpc::Status::OK;
  return Authorize(PeerOf(context), method, access);
}

grpc::ServerUnaryReactor* BlueprintSyncService::SyncBlueprint(
    grpc::CallbackServerContext* context, const v1::SyncBlueprintRequest* request,
    v1::SyncJob* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const Peer peer = PeerOf(context);
  if (grpc::Status s = Authorize(peer, "SyncBlueprint", Access::kWrite); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  auto violations = Validate(*request, options_);
  jobs::NewJob job;
  job.request = *request;
  job.request.set_request_id(absl::AsciiStrToLower(request->request_id()));
  job.creator = CreatorOf(peer);
  job.timeout = JobTimeout(*request, options_);
  job.keep_failed_copies = request->has_keep_failed_copies() ? request->keep_failed_copies()
                                                             : options_.keep_failed_copies;
  if (!violations.empty()) {
    if (!request->validate_only() && !job.request.request_id().empty() &&
        OnlyRegionTableRules(violations)) {
      AnswerRepeatOrRefuse(std::move(job), std::move(violations),
                           ReplyBy(context, options_.reply_margin), reactor, response);
      return reactor;
    }
    reactor->Finish(ValidationError(violations));
    return reactor;
  }
  if (request->validate_only()) {
    // The engine checks the source upstream and says what the job would
    // be; nothing is recorded or sent.
    jobs_->PreviewSubmit(std::move(job),
                         [reactor, response](absl::StatusOr<jobs::Preview> preview) {
                           if (!preview.ok()) {
                             reactor->Finish(ToGrpcStatus(preview.status()));
                             return;
                           }
                           *response = std::move(preview->job);
                           reactor->Finish(grpc::Status::OK);
                         });
    return reactor;
  }
  jobs_->Submit(std::move(job), ReplyBy(context, options_.reply_margin),
                FinishWithJob(reactor, response));
  return reactor;
}

void BlueprintSyncService::AnswerRepeatOrRefuse(jobs::NewJob job,
                                                std::vector<tencent::FieldViolation> violations,
                                                absl::Time reply_by,
                                                grpc::ServerUnaryReactor* reactor,
                                                v1::SyncJob* response) {
  // The region table is this replica's, refreshed on its own: a request that
  // some replica (or this one, before a refresh) accepted may fail the rules
  // now. Its repeat must still get its job, never a final INVALID_ARGUMENT
  // about a job that exists and may be paid for.
  job.only_if_repeat = true;
  jobs::JobService::JobCallback finish = FinishWithJob(reactor, response);
  jobs_->Submit(std::move(job), reply_by,
                [reactor, finish = std::move(finish), violations = std::move(violations)](
                    absl::StatusOr<v1::SyncJob> answer) {
                  if (!answer.ok() && jobs::IsNoRepeatFound(answer.status())) {
                    reactor->Finish(ValidationError(violations));
                    return;
                  }
                  finish(std::move(answer));
                });
}

grpc::ServerUnaryReactor* BlueprintSyncService::GetSyncJob(grpc::CallbackServerContext* context,
                                                           const v1::GetSyncJobRequest* request,
                                                           v1::SyncJob* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = Authorize(context, "GetSyncJob", Access::kRead); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  if (absl::Status s = ValidateJobName(request->name()); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  jobs_->GetJob(request->name(), FinishWithJob(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::ListSyncJobs(grpc::CallbackServerContext* context,
                                                             const v1::ListSyncJobsRequest* request,
                                                             v1::ListSyncJobsResponse* response) {
  auto* reactor = new ListReactor(context, response, options_.delivery);
  if (grpc::Status s = Authorize(context, "ListSyncJobs", Access::kRead); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  auto query = ParseListRequest(*request);
  if (!query.ok()) {
    reactor->Finish(ToGrpcStatus(query.status()));
    return reactor;
  }
  // The request is copied: the page may arrive after this handler returned.
  // The jobs go straight into the response (on its arena, ListMessages).
  jobs_->ListJobsInto(
      *query, response->mutable_sync_jobs(),
      [reactor, response, list_request = *request](absl::StatusOr<std::optional<int64_t>> cursor) {
        if (!cursor.ok()) {
          response->Clear();
          reactor->Finish(
              ToGrpcStatus(WithReason(absl::UnavailableError(absl::StrCat(
                                          "could not read jobs: ", cursor.status().message())),
                                      reason::kStoreUnavailable)));
          return;
        }
        if (cursor->has_value()) {
          response->set_next_page_token(MakePageToken(**cursor, list_request));
        }
        reactor->FinishWithResponse();
      });
  return reactor;
}

grpc::ServerWriteReactor<v1::SyncJob>* BlueprintSyncService::WatchSyncJob(
    grpc::CallbackServerContext* context, const v1::WatchSyncJobRequest* request) {
  class Rejected final : public grpc::ServerWriteReactor<v1::SyncJob> {
   public:
    explicit Rejected(const grpc::Status& s) { Finish(s); }
    void OnDone() override { delete this; }
  };
  if (grpc::Status s = Authorize(context, "WatchSyncJob", Access::kRead); !s.ok()) {
    return new Rejected(s);
  }
  if (absl::Status s = ValidateJobName(request->name()); !s.ok()) {
    return new Rejected(ToGrpcStatus(s));
  }
  return new WatchReactor(jobs_, request->name());
}

grpc::ServerUnaryReactor* BlueprintSyncService::CancelSyncJob(
    grpc::CallbackServerContext* context, const v1::CancelSyncJobRequest* request,
    v1::SyncJob* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = Authorize(context, "CancelSyncJob", Access::kWrite); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  if (absl::Status s = ValidateJobName(request->name()); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  jobs_->Cancel(request->name(), FinishWithJob(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::RetrySyncJob(grpc::CallbackServerContext* context,
                                                             const v1::RetrySyncJobRequest* request,
                                                             v1::SyncJob* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const Peer peer = PeerOf(context);
  if (grpc::Status s = Authorize(peer, "RetrySyncJob", Access::kWrite); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  std::vector<tencent::FieldViolation> violations;
  if (absl::Status s = ValidateJobName(request->name()); !s.ok()) {
    const auto rule = jobs::GetFieldRule(s);
    violations.push_back({rule->field, rule->rule, std::string(s.message())});
  }
  if (auto v = ValidateRequestId(request->request_id())) violations.push_back(*std::move(v));
  if (!violations.empty()) {
    reactor->Finish(ValidationError(violations));
    return reactor;
  }
  // The engine takes the source, the destinations still to do, the labels
  // and keep_failed_copies from the retried job; the caller decides only
  // who asks and the idempotency key.
  jobs::NewJob retry;
  retry.request.set_request_id(absl::AsciiStrToLower(request->request_id()));
  retry.creator = CreatorOf(peer);
  retry.retry_of = request->name();
  retry.timeout = options_.default_job_timeout;
  jobs_->Retry(request->name(), std::move(retry), ReplyBy(context, options_.reply_margin),
               FinishWithJob(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::DeleteSyncJob(
    grpc::CallbackServerContext* context, const v1::DeleteSyncJobRequest* request,
    google::protobuf::Empty* /*response*/) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = Authorize(context, "DeleteSyncJob", Access::kWrite); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  if (absl::Status s = ValidateJobName(request->name()); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  jobs_->Delete(request->name(),
                [reactor](absl::Status status) { reactor->Finish(ToGrpcStatus(status)); });
  return reactor;
}

// Authorization first, as for every method: a caller that may not call the
// method learns nothing, not even whether policies are enabled.
grpc::Status BlueprintSyncService::AdmitPolicyCall(const Peer& peer, absl::string_view method,
                                                   Access access) const {
  if (grpc::Status s = Authorize(peer, method, access); !s.ok()) return s;
  return policies_ == nullptr ? PoliciesDisabled() : grpc::Status::OK;
}

grpc::Status BlueprintSyncService::AdmitPolicyCall(grpc::CallbackServerContext* context,
                                                   absl::string_view method, Access access) const {
  if (grpc::Status s = Authorize(context, method, access); !s.ok()) return s;
  return policies_ == nullptr ? PoliciesDisabled() : grpc::Status::OK;
}

grpc::ServerUnaryReactor* BlueprintSyncService::CreateSyncPolicy(
    grpc::CallbackServerContext* context, const v1::CreateSyncPolicyRequest* request,
    v1::SyncPolicy* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const Peer peer = PeerOf(context);
  if (grpc::Status s = AdmitPolicyCall(peer, "CreateSyncPolicy", Access::kWrite); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  const auto violations = ValidateCreatePolicy(*request);
  if (!violations.empty()) {
    reactor->Finish(ValidationError(violations));
    return reactor;
  }
  v1::SyncPolicy policy = NewPolicySpec(*request);
  std::string creator = CreatorOf(peer);
  if (request->validate_only()) {
    // Everything a policy is checked for before it is recorded has been
    // checked; whether the id is free is only known when it is recorded.
    policy.set_creator(std::move(creator));
    *response = std::move(policy);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  policies_->Create(std::move(policy), std::move(creator), FinishWithPolicy(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::GetSyncPolicy(
    grpc::CallbackServerContext* context, const v1::GetSyncPolicyRequest* request,
    v1::SyncPolicy* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = AdmitPolicyCall(context, "GetSyncPolicy", Access::kRead); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  if (absl::Status s = ValidatePolicyName(request->name()); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  policies_->Get(request->name(), FinishWithPolicy(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::ListSyncPolicies(
    grpc::CallbackServerContext* context, const v1::ListSyncPoliciesRequest* request,
    v1::ListSyncPoliciesResponse* response) {
  auto* reactor = new ListReactor(context, response, options_.delivery);
  if (grpc::Status s = AdmitPolicyCall(context, "ListSyncPolicies", Access::kRead); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  auto query = ParsePolicyListRequest(*request);
  if (!query.ok()) {
    reactor->Finish(ToGrpcStatus(query.status()));
    return reactor;
  }
  // The request is copied: the page may arrive after this handler returned.
  policies_->List(*query, [reactor, response,
                           list_request = *request](absl::StatusOr<policies::PolicyListPage> page) {
    if (!page.ok()) {
      reactor->Finish(
          ToGrpcStatus(WithReason(absl::UnavailableError(absl::StrCat("could not read policies: ",
                                                                      page.status().message())),
                                  reason::kStoreUnavailable)));
      return;
    }
    for (auto& policy : page->policies) *response->add_sync_policies() = std::move(policy);
    if (page->next_after) {
      response->set_next_page_token(MakePolicyPageToken(*page->next_after, list_request));
    }
    reactor->FinishWithResponse();
  });
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::UpdateSyncPolicy(
    grpc::CallbackServerContext* context, const v1::UpdateSyncPolicyRequest* request,
    v1::SyncPolicy* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = AdmitPolicyCall(context, "UpdateSyncPolicy", Access::kWrite); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  PolicyUpdate update;
  const auto violations = ValidateUpdatePolicy(*request, &update);
  if (!violations.empty()) {
    reactor->Finish(ValidationError(violations));
    return reactor;
  }
  policies_->Update(std::move(update.policy), std::move(update.paths), update.expected_revision,
                    FinishWithPolicy(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::DeleteSyncPolicy(
    grpc::CallbackServerContext* context, const v1::DeleteSyncPolicyRequest* request,
    google::protobuf::Empty* /*response*/) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = AdmitPolicyCall(context, "DeleteSyncPolicy", Access::kWrite); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  std::optional<int64_t> expected_revision;
  const auto violations = ValidateDeletePolicy(*request, &expected_revision);
  if (!violations.empty()) {
    reactor->Finish(ValidationError(violations));
    return reactor;
  }
  policies_->Delete(request->name(), expected_revision, request->delete_copies(),
                    [reactor](absl::Status status) { reactor->Finish(ToGrpcStatus(status)); });
  return reactor;
}

}  // namespace blueprintsync::server
