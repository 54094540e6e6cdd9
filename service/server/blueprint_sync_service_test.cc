// BlueprintSyncService against a fake JobService and a fake PolicyService,
// served by a real in-process gRPC server (callback handlers only run
// inside one): request validation, what the handlers resolve for the
// engine and the policy API (creator, timeout, keep_failed_copies, names,
// masks, etags), error mapping, paging, authorization, the access log, and
// the watch stream's order and endings when answers arrive inline or from
// other threads.
#include "service/server/blueprint_sync_service.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "service/common/display.h"
#include "service/common/error_reason.h"
#include "service/common/log.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_state.h"
#include "service/policies/policy_service.h"
#include "service/policies/policy_store.h"
#include "service/server/access_log.h"
#include "service/server/authz.h"
#include "service/server/grpc_errors.h"
#include "service/server/list_query.h"
#include "service/tencent/api_error.h"
#include "service/tencent/regions.h"

namespace blueprintsync::server {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

// Long enough never to fire on a loaded machine; only a hang reaches it.
constexpr absl::Duration kWait = absl::Seconds(30);

constexpr char kJobName[] = "syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
constexpr char kRetryJobName[] = "syncJobs/0b1e2f3a-4b5c-4c1b-9a57-3f1c0a5e8f1e";
constexpr char kPolicyName[] = "syncPolicies/web-golden";

// A JobService whose answers the test chooses. Like the engine, it runs
// every callback under its own lock, so a handler that called back into the
// service from a callback would deadlock here, and Unwatch waits for a
// running watch callback.
class FakeJobService final : public jobs::JobService {
 public:
  struct SubmitCall {
    jobs::NewJob job;
    absl::Time reply_by;
  };
  struct RetryCall {
    std::string name;
    jobs::NewJob job;
    absl::Time reply_by;
  };

  // Submit, Cancel, Retry and GetJob answer inline with this; unset: they
  // hold the callback until AnswerHeldJob.
  void set_job_answer(std::optional<absl::StatusOr<v1::SyncJob>> answer) {
    absl::MutexLock lock(&mu_);
    job_answer_ = std::move(answer);
  }
  void set_preview_answer(absl::StatusOr<jobs::Preview> answer) {
    absl::MutexLock lock(&mu_);
    preview_answer_ = std::move(answer);
  }
  void set_delete_answer(absl::Status answer) {
    absl::MutexLock lock(&mu_);
    delete_answer_ = std::move(answer);
  }
  void set_page_answer(absl::StatusOr<jobs::JobPage> answer) {
    absl::MutexLock lock(&mu_);
    page_answer_ = std::move(answer);
  }
  // What WatchJob delivers before it returns; a watch whose last delivery
  // is an error or a terminal version is not kept for Push.
  void set_watch_start(std::vector<absl::StatusOr<v1::SyncJob>> start) {
    absl::MutexLock lock(&mu_);
    watch_start_ = std::move(start);
  }

  void Submit(jobs::NewJob job, absl::Time reply_by, JobCallback done) override {
    absl::MutexLock lock(&mu_);
    submits_.push_back({std::move(job), reply_by});
    AnswerOrHoldLocked(std::move(done));
  }

  void PreviewSubmit(jobs::NewJob job, PreviewCallback done) override {
    absl::MutexLock lock(&mu_);
    previews_.push_back(std::move(job));
    done(preview_answer_);
  }

  void Cancel(const std::string& name, JobCallback done) override {
    absl::MutexLock lock(&mu_);
    cancels_.push_back(name);
    AnswerOrHoldLocked(std::move(done));
  }

  void Retry(const std::string& name, jobs::NewJob retry, absl::Time reply_by,
             JobCallback done) override {
    absl::MutexLock lock(&mu_);
    retries_.push_back({name, std::move(retry), reply_by});
    AnswerOrHoldLocked(std::move(done));
  }

  void Delete(const std::string& name, StatusCallback done) override {
    absl::MutexLock lock(&mu_);
    deletes_.push_back(name);
    done(delete_answer_);
  }

  void GetJob(const std::string& name, JobCallback done) override {
    absl::MutexLock lock(&mu_);
    gets_.push_back(name);
    AnswerOrHoldLocked(std::move(done));
  }

  void ListJobs(const jobs::JobQuery& query, PageCallback done) override {
    absl::MutexLock lock(&mu_);
    lists_.push_back(query);
    done(page_answer_);
  }

  uint64_t WatchJob(const std::string& name, WatchCallback callback) override {
    absl::MutexLock lock(&mu_);
    const uint64_t id = next_watch_id_++;
    watched_names_.push_back(name);
    bool ended = false;
    for (const auto& version : watch_start_) {
      callback(Shared(version));
      ended = !version.ok() || jobs::IsTerminal(version->state());
    }
    if (!ended) watchers_[id] = std::move(callback);
    started_watches_.push_back(id);
    return id;
  }

  void Unwatch(uint64_t watch_id) override {
    absl::MutexLock lock(&mu_);
    watchers_.erase(watch_id);
    unwatched_.insert(watch_id);
  }

  // Delivers `version` to watch `id` from the calling thread; false if that
  // watch is no longer kept (ended or unwatched).
  bool Push(uint64_t id, absl::StatusOr<v1::SyncJob> version) {
    absl::MutexLock lock(&mu_);
    auto it = watchers_.find(id);
    if (it == watchers_.end()) return false;
    const bool ends = !version.ok() || jobs::IsTerminal(version->state());
    it->second(Shared(version));
    if (ends) watchers_.erase(it);
    return true;
  }

  // As the engine passes versions on: one shared copy.
  static absl::StatusOr<jobs::JobVersion> Shared(const absl::StatusOr<v1::SyncJob>& version) {
    if (!version.ok()) return version.status();
    return std::make_shared<const v1::SyncJob>(*version);
  }

  // The id of the n-th (0-based) WatchJob call, once it has been made.
  std::optional<uint64_t> WaitForWatch(size_t n = 0) {
    absl::MutexLock lock(&mu_);
    auto made = [this, n]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return started_watches_.size() > n; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&made), kWait)) return std::nullopt;
    return started_watches_[n];
  }

  bool WaitForUnwatch(uint64_t id) {
    absl::MutexLock lock(&mu_);
    auto done = [this, id]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return unwatched_.count(id) > 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), kWait);
  }

  bool Unwatched(uint64_t id) {
    absl::MutexLock lock(&mu_);
    return unwatched_.count(id) > 0;
  }

  // Waits for a held Submit/GetJob callback and answers it from the calling
  // thread; false if none came.
  bool AnswerHeldJob(absl::StatusOr<v1::SyncJob> answer) {
    absl::MutexLock lock(&mu_);
    auto held = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !held_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&held), kWait)) return false;
    JobCallback done = std::move(held_.front());
    held_.pop_front();
    done(std::move(answer));
    return true;
  }

  std::vector<SubmitCall> submits() {
    absl::MutexLock lock(&mu_);
    return submits_;
  }
  std::vector<jobs::NewJob> previews() {
    absl::MutexLock lock(&mu_);
    return previews_;
  }
  std::vector<std::string> cancels() {
    absl::MutexLock lock(&mu_);
    return cancels_;
  }
  std::vector<RetryCall> retries() {
    absl::MutexLock lock(&mu_);
    return retries_;
  }
  std::vector<std::string> deletes() {
    absl::MutexLock lock(&mu_);
    return deletes_;
  }
  std::vector<std::string> gets() {
    absl::MutexLock lock(&mu_);
    return gets_;
  }
  std::vector<jobs::JobQuery> lists() {
    absl::MutexLock lock(&mu_);
    return lists_;
  }
  std::vector<std::string> watched_names() {
    absl::MutexLock lock(&mu_);
    return watched_names_;
  }

 private:
  void AnswerOrHoldLocked(JobCallback done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (job_answer_.has_value()) {
      done(*job_answer_);
    } else {
      held_.push_back(std::move(done));
    }
  }

  absl::Mutex mu_;
  std::optional<absl::StatusOr<v1::SyncJob>> job_answer_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<jobs::Preview> preview_answer_ ABSL_GUARDED_BY(mu_) = jobs::Preview{};
  absl::Status delete_answer_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<jobs::JobPage> page_answer_ ABSL_GUARDED_BY(mu_) = jobs::JobPage{};
  std::vector<absl::StatusOr<v1::SyncJob>> watch_start_ ABSL_GUARDED_BY(mu_);
  std::deque<JobCallback> held_ ABSL_GUARDED_BY(mu_);
  std::vector<SubmitCall> submits_ ABSL_GUARDED_BY(mu_);
  std::vector<jobs::NewJob> previews_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancels_ ABSL_GUARDED_BY(mu_);
  std::vector<RetryCall> retries_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> deletes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> gets_ ABSL_GUARDED_BY(mu_);
  std::vector<jobs::JobQuery> lists_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> watched_names_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, WatchCallback> watchers_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> started_watches_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> unwatched_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watch_id_ ABSL_GUARDED_BY(mu_) = 1;
};

v1::SyncPolicy Policy(const std::string& name = kPolicyName) {
  v1::SyncPolicy p;
  p.set_name(name);
  p.set_source_region("ap-guangzhou");
  p.set_blueprint_name("web-golden");
  p.add_destination_regions("ap-shanghai");
  p.add_destination_regions("ap-beijing");
  p.set_keep_versions(2);
  return p;
}

// A PolicyService whose answers the test chooses; like the JobService fake
// it answers under its own lock.
class FakePolicyService final : public policies::PolicyService {
 public:
  struct CreateCall {
    v1::SyncPolicy policy;
    std::string creator;
  };
  struct UpdateCall {
    v1::SyncPolicy policy;
    std::vector<std::string> paths;
    std::optional<int64_t> expected_revision;
  };
  struct DeleteCall {
    std::string name;
    std::optional<int64_t> expected_revision;
    bool delete_copies = false;
  };

  // Create, Get and Update answer inline with this; unset: they hold the
  // callback until AnswerHeldPolicy.
  void set_policy_answer(std::optional<absl::StatusOr<v1::SyncPolicy>> answer) {
    absl::MutexLock lock(&mu_);
    policy_answer_ = std::move(answer);
  }
  void set_page_answer(absl::StatusOr<policies::PolicyListPage> answer) {
    absl::MutexLock lock(&mu_);
    page_answer_ = std::move(answer);
  }
  void set_delete_answer(absl::Status answer) {
    absl::MutexLock lock(&mu_);
    delete_answer_ = std::move(answer);
  }

  void Create(v1::SyncPolicy policy, std::string creator, PolicyCallback done) override {
    absl::MutexLock lock(&mu_);
    creates_.push_back({std::move(policy), std::move(creator)});
    AnswerOrHoldLocked(std::move(done));
  }
  void Get(const std::string& name, PolicyCallback done) override {
    absl::MutexLock lock(&mu_);
    gets_.push_back(name);
    AnswerOrHoldLocked(std::move(done));
  }
  void List(const policies::PolicyQuery& query, PageCallback done) override {
    absl::MutexLock lock(&mu_);
    lists_.push_back(query);
    done(page_answer_);
  }
  void Update(v1::SyncPolicy policy, std::vector<std::string> paths,
              std::optional<int64_t> expected_revision, PolicyCallback done) override {
    absl::MutexLock lock(&mu_);
    updates_.push_back({std::move(policy), std::move(paths), expected_revision});
    AnswerOrHoldLocked(std::move(done));
  }
  void Delete(const std::string& name, std::optional<int64_t> expected_revision, bool delete_copies,
              StatusCallback done) override {
    absl::MutexLock lock(&mu_);
    deletes_.push_back({name, expected_revision, delete_copies});
    done(delete_answer_);
  }

  // Waits for a held Create/Get/Update callback and answers it from the
  // calling thread; false if none came.
  bool AnswerHeldPolicy(absl::StatusOr<v1::SyncPolicy> answer) {
    absl::MutexLock lock(&mu_);
    auto held = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !held_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&held), kWait)) return false;
    PolicyCallback done = std::move(held_.front());
    held_.pop_front();
    done(std::move(answer));
    return true;
  }

  std::vector<CreateCall> creates() {
    absl::MutexLock lock(&mu_);
    return creates_;
  }
  std::vector<std::string> gets() {
    absl::MutexLock lock(&mu_);
    return gets_;
  }
  std::vector<policies::PolicyQuery> lists() {
    absl::MutexLock lock(&mu_);
    return lists_;
  }
  std::vector<UpdateCall> updates() {
    absl::MutexLock lock(&mu_);
    return updates_;
  }
  std::vector<DeleteCall> deletes() {
    absl::MutexLock lock(&mu_);
    return deletes_;
  }
  // Every call of any method.
  size_t calls() {
    absl::MutexLock lock(&mu_);
    return creates_.size() + gets_.size() + lists_.size() + updates_.size() + deletes_.size();
  }

 private:
  void AnswerOrHoldLocked(PolicyCallback done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (policy_answer_.has_value()) {
      done(*policy_answer_);
    } else {
      held_.push_back(std::move(done));
    }
  }

  absl::Mutex mu_;
  std::optional<absl::StatusOr<v1::SyncPolicy>> policy_answer_ ABSL_GUARDED_BY(mu_) = Policy();
  absl::StatusOr<policies::PolicyListPage> page_answer_ ABSL_GUARDED_BY(mu_) =
      policies::PolicyListPage{};
  absl::Status delete_answer_ ABSL_GUARDED_BY(mu_);
  std::deque<PolicyCallback> held_ ABSL_GUARDED_BY(mu_);
  std::vector<CreateCall> creates_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> gets_ ABSL_GUARDED_BY(mu_);
  std::vector<policies::PolicyQuery> lists_ ABSL_GUARDED_BY(mu_);
  std::vector<UpdateCall> updates_ ABSL_GUARDED_BY(mu_);
  std::vector<DeleteCall> deletes_ ABSL_GUARDED_BY(mu_);
};

// Stands in for mTLS, which would need certificates: the kIdentityHeader
// metadata ("dns:NAME", "uri:URI" or "cn:NAME") of the first call on a
// connection becomes the verified peer identity of the connection's
// AuthContext (gRPC shares it between the connection's calls), where a
// client certificate's SAN or CN would be. (Local credentials count every
// connection as authenticated: one without the header is like a
// certificate with neither SAN nor CN.)
constexpr char kIdentityHeader[] = "x-test-identity";

class TestIdentityProcessor final : public grpc::AuthMetadataProcessor {
 public:
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata* /*response*/) override {
    const auto it = metadata.find(kIdentityHeader);
    // Marked, so the connection's later calls keep the first identity.
    if (it == metadata.end() || !context->FindPropertyValues(kIdentityHeader).empty()) {
      return grpc::Status::OK;
    }
    const std::string identity(it->second.data(), it->second.size());
    const size_t colon = identity.find(':');
    const std::string kind = identity.substr(0, colon);
    const char* property = kind == "dns"   ? GRPC_PEER_DNS_PROPERTY_NAME
                           : kind == "uri" ? GRPC_PEER_URI_PROPERTY_NAME
                                           : GRPC_X509_CN_PROPERTY_NAME;
    context->AddProperty(kIdentityHeader, identity);
    context->AddProperty(property, identity.substr(colon + 1));
    context->SetPeerIdentityPropertyName(property);
    consumed->insert({kIdentityHeader, identity});
    return grpc::Status::OK;
  }
};

// The rich error a client decodes from grpc-status-details-bin.
struct Details {
  std::string reason;
  std::string domain;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> fields;  // BadRequest field violations, in order
};

Details Decode(const grpc::Status& s) {
  Details d;
  google::rpc::Status rich;
  EXPECT_TRUE(rich.ParseFromString(s.error_details())) << "details do not parse";
  EXPECT_EQ(rich.code(), static_cast<int>(s.error_code()));
  EXPECT_EQ(rich.message(), s.error_message());
  for (const auto& any : rich.details()) {
    if (google::rpc::ErrorInfo info; any.Is<google::rpc::ErrorInfo>() && any.UnpackTo(&info)) {
      d.reason = info.reason();
      d.domain = info.domain();
      d.metadata = {info.metadata().begin(), info.metadata().end()};
    } else if (google::rpc::BadRequest bad;
               any.Is<google::rpc::BadRequest>() && any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) d.fields.push_back(v.field());
    }
  }
  return d;
}

v1::SyncJob Job(v1::SyncJob::State state, const std::string& marker = "") {
  v1::SyncJob job;
  job.set_name(kJobName);
  job.set_state(state);
  job.set_source_region("ap-guangzhou");
  job.set_blueprint_id("lhbp-ls883feh");
  job.set_upstream_request_id(marker);
  return job;
}

v1::SyncBlueprintRequest ValidSync() {
  v1::SyncBlueprintRequest r;
  r.set_source_region("ap-guangzhou");
  r.set_blueprint_id("lhbp-ls883feh");
  r.add_destination_regions("ap-shanghai");
  r.add_destination_regions("ap-beijing");
  return r;
}

jobs::JobRecord Record(const std::string& marker, int64_t sequence) {
  jobs::JobRecord rec;
  *rec.mutable_job() = Job(v1::SyncJob::RUNNING, marker);
  rec.set_sequence(sequence);
  return rec;
}

class BlueprintSyncServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(ServiceOptions{}); }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }

  // Replaces a running server, so a test can choose its own options.
  // `identities`: callers are identified as ConnectAs says (see
  // TestIdentityProcessor); otherwise nobody is authenticated, as without
  // mTLS.
  void Start(ServiceOptions options, bool identities = false, bool access_log = false) {
    stub_.reset();
    if (server_ != nullptr) {
      server_->Shutdown();
      server_.reset();
    }
    service_ = std::make_unique<BlueprintSyncService>(options, &jobs_,
                                                      policies_enabled_ ? &policies_ : nullptr);
    std::shared_ptr<grpc::ServerCredentials> server_credentials = grpc::InsecureServerCredentials();
    channel_credentials_ = grpc::InsecureChannelCredentials();
    if (identities) {
      server_credentials = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
      server_credentials->SetAuthMetadataProcessor(std::make_shared<TestIdentityProcessor>());
      channel_credentials_ = grpc::experimental::LocalCredentials(LOCAL_TCP);
    }
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", server_credentials, &port_);
    builder.RegisterService(service_.get());
    if (access_log) {
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
      factories.push_back(MakeAccessLogFactory());
      builder.experimental().SetInterceptorCreators(std::move(factories));
    }
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    ConnectAs("");
  }

  // The following calls go over a new connection, as `identity` ("" for
  // none) on a server started with identities.
  void ConnectAs(const std::string& identity) {
    identity_ = identity;
    grpc::ChannelArguments args;
    // Otherwise channels to the same address share their connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = v1::BlueprintSync::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), channel_credentials_, args));
  }

  // Every call gets a deadline so a handler that never finishes fails the
  // test instead of hanging it, and the caller's identity_ if it has one.
  void Prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
    if (!identity_.empty()) ctx.AddMetadata(kIdentityHeader, identity_);
  }

  grpc::Status Sync(const v1::SyncBlueprintRequest& request, v1::SyncJob* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    return stub_->SyncBlueprint(&ctx, request, response);
  }

  grpc::Status Get(const std::string& name, v1::SyncJob* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::GetSyncJobRequest request;
    request.set_name(name);
    return stub_->GetSyncJob(&ctx, request, response);
  }

  grpc::Status List(const v1::ListSyncJobsRequest& request, v1::ListSyncJobsResponse* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    return stub_->ListSyncJobs(&ctx, request, response);
  }

  grpc::Status Cancel(const std::string& name, v1::SyncJob* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::CancelSyncJobRequest request;
    request.set_name(name);
    return stub_->CancelSyncJob(&ctx, request, response);
  }

  grpc::Status Retry(const std::string& name, const std::string& request_id,
                     v1::SyncJob* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::RetrySyncJobRequest request;
    request.set_name(name);
    request.set_request_id(request_id);
    return stub_->RetrySyncJob(&ctx, request, response);
  }

  grpc::Status Delete(const std::string& name) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::DeleteSyncJobRequest request;
    request.set_name(name);
    google::protobuf::Empty response;
    return stub_->DeleteSyncJob(&ctx, request, &response);
  }

  grpc::Status CreatePolicy(const v1::CreateSyncPolicyRequest& request, v1::SyncPolicy* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    return stub_->CreateSyncPolicy(&ctx, request, response);
  }

  grpc::Status GetPolicy(const std::string& name, v1::SyncPolicy* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::GetSyncPolicyRequest request;
    request.set_name(name);
    return stub_->GetSyncPolicy(&ctx, request, response);
  }

  grpc::Status ListPolicies(const v1::ListSyncPoliciesRequest& request,
                            v1::ListSyncPoliciesResponse* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    return stub_->ListSyncPolicies(&ctx, request, response);
  }

  grpc::Status UpdatePolicy(const v1::UpdateSyncPolicyRequest& request, v1::SyncPolicy* response) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    return stub_->UpdateSyncPolicy(&ctx, request, response);
  }

  grpc::Status DeletePolicy(const v1::DeleteSyncPolicyRequest& request) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    google::protobuf::Empty response;
    return stub_->DeleteSyncPolicy(&ctx, request, &response);
  }

  // Reads the whole stream: the versions' markers (upstream_request_id) and
  // the final status.
  grpc::Status WatchAll(const std::string& name, std::vector<std::string>* markers) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::WatchSyncJobRequest request;
    request.set_name(name);
    auto reader = stub_->WatchSyncJob(&ctx, request);
    v1::SyncJob job;
    while (reader->Read(&job)) markers->push_back(job.upstream_request_id());
    return reader->Finish();
  }

  FakeJobService jobs_;
  FakePolicyService policies_;
  bool policies_enabled_ = true;  // read by Start
  int port_ = 0;
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials_;
  std::string identity_;  // see ConnectAs
  std::unique_ptr<BlueprintSyncService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::BlueprintSync::Stub> stub_;
};

// ---- SyncBlueprint ----

TEST_F(BlueprintSyncServiceTest, SyncBlueprintRejectsEveryBadFieldBeforeTheService) {
  v1::SyncBlueprintRequest r;
  r.set_source_region("mars-north-1");
  r.set_blueprint_id("lhbp-BAD");
  r.add_destination_regions("ap-shanghai");
  r.add_destination_regions("ap-shanghai");
  r.set_request_id("not-a-uuid");
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("mars-north-1"));
  const Details d = Decode(s);
  EXPECT_EQ(d.reason, "INVALID_REQUEST");
  EXPECT_EQ(d.domain, kErrorDomain);
  EXPECT_THAT(d.fields,
              ElementsAre("source_region", "blueprint_id", "destination_regions[1]", "request_id"));
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

// The region table is this replica's and changes with DescribeRegions: a
// request it refuses now may be one another replica (or this one, before a
// refresh) accepted. With a request_id, the recorded jobs are asked first: a
// repeat gets its job, a new request the rule's error. Other violations are
// the request's own and refused at once.
TEST_F(BlueprintSyncServiceTest, RegionRefusalWithARequestIdAsksForTheRecordedJobFirst) {
  v1::SyncBlueprintRequest r = ValidSync();
  r.clear_destination_regions();
  r.add_destination_regions("ap-newcity");  // not in the compiled table
  r.set_request_id("3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C");
  v1::SyncJob response;

  jobs_.set_job_answer(
      absl::StatusOr<v1::SyncJob>(jobs::NoRepeatFound("3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c")));
  grpc::Status s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  Details d = Decode(s);
  EXPECT_EQ(d.reason, "DESTINATION_REGION_UNSUPPORTED");
  EXPECT_THAT(d.fields, ElementsAre("destination_regions[0]"));
  ASSERT_EQ(jobs_.submits().size(), 1u);
  EXPECT_TRUE(jobs_.submits()[0].job.only_if_repeat);

  jobs_.set_job_answer(Job(v1::SyncJob::RUNNING, "recorded"));
  s = Sync(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.state(), v1::SyncJob::RUNNING);
  ASSERT_EQ(jobs_.submits().size(), 2u);
  EXPECT_TRUE(jobs_.submits()[1].job.only_if_repeat);

  // Without a request_id there is nothing to repeat.
  r.clear_request_id();
  s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A violation of the request's own (not the region table's) is final.
  r.set_request_id("3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C");
  r.set_blueprint_id("lhbp-BAD");
  s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(jobs_.submits().size(), 2u);
  // Ordinary submissions are not marked.
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  ASSERT_TRUE(Sync(ValidSync(), &response).ok());
  ASSERT_EQ(jobs_.submits().size(), 3u);
  EXPECT_FALSE(jobs_.submits()[2].job.only_if_repeat);
}

TEST_F(BlueprintSyncServiceTest, SyncBlueprintOneViolationIsItsRule) {
  v1::SyncBlueprintRequest r = ValidSync();
  r.set_blueprint_id("");
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const Details d = Decode(s);
  EXPECT_EQ(d.reason, "BLUEPRINT_ID_REQUIRED");
  EXPECT_THAT(d.fields, ElementsAre("blueprint_id"));
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, SyncBlueprintTooManyDestinationsIsOneViolationFirst) {
  v1::SyncBlueprintRequest r = ValidSync();
  r.clear_destination_regions();
  for (int i = 0; i < 200; ++i) r.add_destination_regions(absl::StrCat("nowhere-", i));
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("destination_regions lists 200 regions"));
  const Details d = Decode(s);
  ASSERT_FALSE(d.fields.empty());
  EXPECT_EQ(d.fields[0], "destination_regions");
  // Only the first kMaxDestinationRegions entries are checked one by one.
  EXPECT_EQ(d.fields.size(), 1u + tencent::kMaxDestinationRegions);
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, ValidateOnlyAnswersTheEnginesPreviewAndNeverSubmits) {
  jobs::Preview preview;
  preview.job = Job(v1::SyncJob::QUEUED, "preview");
  preview.job.clear_name();
  preview.job.set_jobs_ahead(2);
  jobs_.set_preview_answer(preview);
  jobs_.set_job_answer(Job(v1::SyncJob::RUNNING, "submitted"));
  v1::SyncBlueprintRequest r = ValidSync();
  r.set_request_id("3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C");
  r.set_validate_only(true);
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.name(), "");
  EXPECT_EQ(response.upstream_request_id(), "preview");
  EXPECT_EQ(response.jobs_ahead(), 2);
  const auto previews = jobs_.previews();
  ASSERT_EQ(previews.size(), 1u);
  // Resolved as for a submission.
  EXPECT_EQ(previews[0].request.request_id(), "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_EQ(previews[0].creator, jobs::kAnonymousCreator);
  EXPECT_EQ(previews[0].timeout, ServiceOptions{}.default_job_timeout);
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, ValidateOnlyPassesTheEnginesRefusalOn) {
  jobs_.set_preview_answer(jobs::InvalidField("blueprint_id", "BLUEPRINT_NOT_NORMAL",
                                              "blueprint lhbp-ls883feh is SYNCING, not NORMAL"));
  v1::SyncBlueprintRequest r = ValidSync();
  r.set_validate_only(true);
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const Details d = Decode(s);
  EXPECT_EQ(d.reason, "BLUEPRINT_NOT_NORMAL");
  EXPECT_THAT(d.fields, ElementsAre("blueprint_id"));
  EXPECT_EQ(jobs_.previews().size(), 1u);
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, ValidateOnlyValidatesBeforeThePreview) {
  v1::SyncBlueprintRequest r = ValidSync();
  r.set_validate_only(true);
  (*r.mutable_labels())["-team"] = "web";
  v1::SyncJob response;
  EXPECT_EQ(Sync(r, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(jobs_.previews(), IsEmpty());
}

// ---- What SyncBlueprint resolves for the engine ----

TEST_F(BlueprintSyncServiceTest, CreatorIsAnonymousWithoutMutualTls) {
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  v1::SyncJob response;
  ASSERT_TRUE(Sync(ValidSync(), &response).ok());
  const auto submits = jobs_.submits();
  ASSERT_EQ(submits.size(), 1u);
  EXPECT_EQ(submits[0].job.creator, "anonymous");
  EXPECT_EQ(submits[0].job.retry_of, "");
}

TEST_F(BlueprintSyncServiceTest, KeepFailedCopiesIsTheRequestsElseTheServersDefault) {
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  for (const bool server_default : {false, true}) {
    ServiceOptions options;
    options.keep_failed_copies = server_default;
    Start(options);
    for (const std::optional<bool> asked :
         {std::optional<bool>(), std::optional<bool>(false), std::optional<bool>(true)}) {
      v1::SyncBlueprintRequest r = ValidSync();
      if (asked.has_value()) r.set_keep_failed_copies(*asked);
      v1::SyncJob response;
      ASSERT_TRUE(Sync(r, &response).ok());
      const auto submits = jobs_.submits();
      ASSERT_FALSE(submits.empty());
      EXPECT_EQ(submits.back().job.keep_failed_copies, asked.value_or(server_default))
          << "server default " << server_default << ", asked "
          << (asked.has_value() ? (*asked ? "true" : "false") : "nothing");
      // The request goes to the engine as it was asked.
      EXPECT_EQ(submits.back().job.request.has_keep_failed_copies(), asked.has_value());
    }
  }
}

google::protobuf::Duration ProtoDuration(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  d.set_nanos(nanos);
  return d;
}

TEST_F(BlueprintSyncServiceTest, TimeoutIsTheRequestsWithinBoundsElseTheServersDefault) {
  ServiceOptions options;
  options.default_job_timeout = absl::Hours(2);
  options.max_job_timeout = absl::Hours(12);
  Start(options);
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  const std::vector<std::pair<std::optional<google::protobuf::Duration>, absl::Duration>> cases = {
      {std::nullopt, absl::Hours(2)},
      {ProtoDuration(0), absl::Hours(2)},
      {ProtoDuration(60), absl::Minutes(1)},
      {ProtoDuration(90 * 60, 500), absl::Minutes(90) + absl::Nanoseconds(500)},
      {ProtoDuration(12 * 3600), absl::Hours(12)},
  };
  for (const auto& [asked, want] : cases) {
    v1::SyncBlueprintRequest r = ValidSync();
    if (asked.has_value()) *r.mutable_timeout() = *asked;
    v1::SyncJob response;
    const grpc::Status s = Sync(r, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    const auto submits = jobs_.submits();
    ASSERT_FALSE(submits.empty());
    EXPECT_EQ(submits.back().job.timeout, want) << absl::FormatDuration(want);
  }
}

TEST_F(BlueprintSyncServiceTest, TimeoutOutOfBoundsIsRefusedNamingTimeout) {
  ServiceOptions options;
  options.max_job_timeout = absl::Hours(12);
  Start(options);
  const std::vector<std::pair<google::protobuf::Duration, std::string>> cases = {
      {ProtoDuration(-60), "TIMEOUT_OUT_OF_RANGE"},
      {ProtoDuration(0, -1), "TIMEOUT_OUT_OF_RANGE"},
      {ProtoDuration(59, 999999999), "TIMEOUT_OUT_OF_RANGE"},
      {ProtoDuration(12 * 3600, 1), "TIMEOUT_OUT_OF_RANGE"},
      {ProtoDuration(400000000000), "TIMEOUT_MALFORMED"},
      {ProtoDuration(3600, -5), "TIMEOUT_MALFORMED"},
      {ProtoDuration(60, 1000000000), "TIMEOUT_MALFORMED"},
  };
  for (const auto& [timeout, reason] : cases) {
    SCOPED_TRACE(timeout.DebugString());
    v1::SyncBlueprintRequest r = ValidSync();
    *r.mutable_timeout() = timeout;
    v1::SyncJob response;
    const grpc::Status s = Sync(r, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("timeout"));
    const Details d = Decode(s);
    EXPECT_EQ(d.reason, reason);
    EXPECT_THAT(d.fields, ElementsAre("timeout"));
  }
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, GoodLabelsReachTheEngine) {
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  v1::SyncBlueprintRequest r = ValidSync();
  auto& labels = *r.mutable_labels();
  labels["team"] = "web";
  labels["example.com/tier"] = "front-end";
  labels["a.b-c.example/Name_1.x-y"] = "V_1.x-Y";
  labels["empty"] = "";
  labels["x"] = "y";
  labels[std::string(63, 'k')] = std::string(63, 'v');
  labels[std::string(253 - 4, 'p') + ".com/n"] = "1";
  for (int i = 0; static_cast<int>(labels.size()) < 32; ++i) labels[absl::StrCat("l", i)] = "v";
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto submits = jobs_.submits();
  ASSERT_EQ(submits.size(), 1u);
  EXPECT_EQ(submits[0].job.request.labels().size(), 32u);
  EXPECT_EQ(submits[0].job.request.labels().at("example.com/tier"), "front-end");
}

TEST_F(BlueprintSyncServiceTest, EachBadLabelKeyIsOneViolationNamingIt) {
  for (const std::string& key : std::vector<std::string>{
           "",
           "-team",
           "team-",
           "_team",
           "te am",
           "t\u00e9am",
           "Example.com/team",
           "/team",
           "example.com/",
           "a/b/c",
           "-example.com/team",
           "example..com/team",
           "example_com/team",
           std::string(64, 'k'),
           std::string(254, 'p') + "/n",
       }) {
    SCOPED_TRACE(key);
    v1::SyncBlueprintRequest r = ValidSync();
    (*r.mutable_labels())[key] = "web";
    v1::SyncJob response;
    const grpc::Status s = Sync(r, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    const Details d = Decode(s);
    EXPECT_EQ(d.reason, "LABEL_KEY_MALFORMED");
    ASSERT_EQ(d.fields.size(), 1u);
    EXPECT_EQ(d.fields[0], absl::StrCat("labels[\"", Shown(key), "\"]"));
  }
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, EachBadLabelValueIsOneViolationNamingItsKey) {
  for (const std::string& value : std::vector<std::string>{"-web", "web-", ".web", "w eb", "w/eb",
                                                           "w\nb", std::string(64, 'v')}) {
    SCOPED_TRACE(value);
    v1::SyncBlueprintRequest r = ValidSync();
    (*r.mutable_labels())["team"] = value;
    v1::SyncJob response;
    const grpc::Status s = Sync(r, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    const Details d = Decode(s);
    EXPECT_EQ(d.reason, "LABEL_VALUE_MALFORMED");
    EXPECT_THAT(d.fields, ElementsAre("labels[\"team\"]"));
  }
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, TooManyLabelsIsOneViolationThenTheFirstKeysChecked) {
  v1::SyncBlueprintRequest r = ValidSync();
  for (int i = 0; i < 5000; ++i) (*r.mutable_labels())[absl::StrCat("k", 10000 + i)] = "v";
  (*r.mutable_labels())["-bad"] = "v";  // first in key order
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("labels has 5001 entries; at most 32"));
  const Details d = Decode(s);
  EXPECT_EQ(d.reason, "INVALID_REQUEST");
  EXPECT_THAT(d.fields, ElementsAre("labels", "labels[\"-bad\"]"));
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, AHostileLabelKeyIsShownBoundedOnOneLine) {
  v1::SyncBlueprintRequest r = ValidSync();
  const std::string key = "a\"\nb" + std::string(100000, 'x');
  (*r.mutable_labels())[key] = "v";
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(s.error_message().size(), 1000u);
  const Details d = Decode(s);
  ASSERT_EQ(d.fields.size(), 1u);
  EXPECT_LT(d.fields[0].size(), 100u);
  EXPECT_EQ(d.fields[0].find('\n'), std::string::npos);
  EXPECT_THAT(d.fields[0], HasSubstr("a\\x22\\x0ab"));
}

TEST_F(BlueprintSyncServiceTest, LabelTimeoutAndFieldViolationsAreListedTogether) {
  v1::SyncBlueprintRequest r = ValidSync();
  r.set_blueprint_id("");
  (*r.mutable_labels())["team"] = "-web";
  *r.mutable_timeout() = ProtoDuration(1);
  v1::SyncJob response;
  const Details d = Decode(Sync(r, &response));
  EXPECT_EQ(d.reason, "INVALID_REQUEST");
  EXPECT_THAT(d.fields, ElementsAre("blueprint_id", "labels[\"team\"]", "timeout"));
}

TEST_F(BlueprintSyncServiceTest, SubmitGetsTheLowerCasedRequestAndAnswersTheJob) {
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED, "queued"));
  v1::SyncBlueprintRequest r = ValidSync();
  r.set_request_id("3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C");
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.name(), kJobName);
  EXPECT_EQ(response.upstream_request_id(), "queued");
  const auto submits = jobs_.submits();
  ASSERT_EQ(submits.size(), 1u);
  EXPECT_EQ(submits[0].job.request.request_id(), "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_EQ(submits[0].job.request.source_region(), "ap-guangzhou");
  EXPECT_THAT(submits[0].job.request.destination_regions(),
              ElementsAre("ap-shanghai", "ap-beijing"));
}

TEST_F(BlueprintSyncServiceTest, ReplyByIsTheCallersDeadlineLessTheMargin) {
  ServiceOptions options;
  options.reply_margin = absl::Seconds(7);
  Start(options);
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));

  grpc::ClientContext ctx;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  ctx.set_deadline(absl::ToChronoTime(deadline));
  v1::SyncJob response;
  ASSERT_TRUE(stub_->SyncBlueprint(&ctx, ValidSync(), &response).ok());

  const auto submits = jobs_.submits();
  ASSERT_EQ(submits.size(), 1u);
  // The deadline travels as a timeout, so the server's copy is only close.
  EXPECT_GE(submits[0].reply_by, deadline - absl::Seconds(7) - absl::Seconds(2));
  EXPECT_LE(submits[0].reply_by, deadline - absl::Seconds(7) + absl::Seconds(2));
}

TEST_F(BlueprintSyncServiceTest, NoCallerDeadlineMeansNoReplyBy) {
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  grpc::ClientContext ctx;
  v1::SyncJob response;
  // Answered inline by the fake, so no deadline is needed to bound the test.
  ASSERT_TRUE(stub_->SyncBlueprint(&ctx, ValidSync(), &response).ok());
  const auto submits = jobs_.submits();
  ASSERT_EQ(submits.size(), 1u);
  EXPECT_EQ(submits[0].reply_by, absl::InfiniteFuture());
}

TEST_F(BlueprintSyncServiceTest, SubmitErrorsKeepTheirCodeAndDetails) {
  tencent::ApiError api;
  api.kind = tencent::ErrorKind::kApi;
  api.code = "ResourceNotFound.PrivateBlueprintNotFound";
  api.message = "no such blueprint";
  api.request_id = "req-42";
  api.action = "SyncBlueprint";
  const absl::Status upstream = tencent::MakeStatus(api);
  jobs_.set_job_answer(upstream);
  v1::SyncJob response;
  grpc::Status s = Sync(ValidSync(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), std::string(upstream.message()));
  Details d = Decode(s);
  EXPECT_EQ(d.reason, "UPSTREAM_ERROR");
  EXPECT_EQ(d.metadata["tencent_code"], "ResourceNotFound.PrivateBlueprintNotFound");
  EXPECT_EQ(d.metadata["tencent_request_id"], "req-42");

  jobs_.set_job_answer(
      jobs::InvalidField("request_id", "REQUEST_ID_REUSED", "request_id was already used"));
  s = Sync(ValidSync(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "request_id was already used");
  d = Decode(s);
  EXPECT_EQ(d.reason, "REQUEST_ID_REUSED");
  EXPECT_THAT(d.metadata, ElementsAre(Pair("field", "request_id")));
  EXPECT_THAT(d.fields, ElementsAre("request_id"));
}

TEST_F(BlueprintSyncServiceTest, SubmitAnsweredLaterFromAnotherThread) {
  jobs_.set_job_answer(std::nullopt);
  v1::SyncJob response;
  std::thread answerer(
      [this] { EXPECT_TRUE(jobs_.AnswerHeldJob(Job(v1::SyncJob::RUNNING, "r"))); });
  const grpc::Status s = Sync(ValidSync(), &response);
  answerer.join();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(response.upstream_request_id(), "r");
}

// ---- GetSyncJob ----

TEST_F(BlueprintSyncServiceTest, GetSyncJobValidatesTheName) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "NAME_REQUIRED"},
      {"jobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c", "NAME_MALFORMED"},
      {"syncJobs/not-a-uuid", "NAME_MALFORMED"}};
  for (const auto& [name, reason] : cases) {
    v1::SyncJob response;
    const grpc::Status s = Get(name, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name;
    const Details d = Decode(s);
    EXPECT_EQ(d.reason, reason) << name;
    EXPECT_THAT(d.fields, ElementsAre("name")) << name;
  }
  EXPECT_THAT(jobs_.gets(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, GetSyncJobNotFound) {
  jobs_.set_job_answer(absl::NotFoundError(absl::StrCat("job ", kJobName, " not found")));
  v1::SyncJob response;
  const grpc::Status s = Get(kJobName, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), absl::StrCat("job ", kJobName, " not found"));
  EXPECT_EQ(Decode(s).reason, "NOT_FOUND");
  EXPECT_THAT(jobs_.gets(), ElementsAre(kJobName));
}

TEST_F(BlueprintSyncServiceTest, GetSyncJobAnsweredLaterFromAnotherThread) {
  jobs_.set_job_answer(std::nullopt);
  grpc::ClientContext ctx;
  Prepare(ctx);
  v1::GetSyncJobRequest request;
  request.set_name(kJobName);
  v1::SyncJob response;
  grpc::Status status;
  absl::Notification done;
  stub_->async()->GetSyncJob(&ctx, &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  // The handler has returned by now; its reactor is finished from here.
  std::thread answerer(
      [this] { EXPECT_TRUE(jobs_.AnswerHeldJob(Job(v1::SyncJob::SUCCEEDED, "late"))); });
  answerer.join();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.state(), v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(response.upstream_request_id(), "late");
}

// ---- ListSyncJobs ----

TEST_F(BlueprintSyncServiceTest, ListSyncJobsRejectsBadFiltersAndTokensBeforeTheService) {
  v1::ListSyncJobsRequest r;
  r.set_filter("colour = blue");
  v1::ListSyncJobsResponse response;
  grpc::Status s = List(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("colour"));
  Details d = Decode(s);
  EXPECT_EQ(d.reason, "INVALID_FILTER");
  EXPECT_THAT(d.fields, ElementsAre("filter"));

  r.set_filter("");
  r.set_page_token("garbage!");
  s = List(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Decode(s).reason, "INVALID_PAGE_TOKEN");
  EXPECT_THAT(jobs_.lists(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, ListSyncJobsPagesWithTokensTiedToTheFilter) {
  jobs::JobPage first;
  first.records = {Record("newest", 20), Record("older", 18)};
  first.next_cursor = 18;
  jobs_.set_page_answer(first);

  v1::ListSyncJobsRequest r;
  r.set_filter("state = RUNNING");
  r.set_page_size(2);
  v1::ListSyncJobsResponse response;
  grpc::Status s = List(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.sync_jobs_size(), 2);
  EXPECT_EQ(response.sync_jobs(0).upstream_request_id(), "newest");
  EXPECT_EQ(response.sync_jobs(1).upstream_request_id(), "older");
  ASSERT_FALSE(response.next_page_token().empty());

  jobs::JobPage last;
  last.records = {Record("oldest", 3)};
  jobs_.set_page_answer(last);
  r.set_page_token(response.next_page_token());
  v1::ListSyncJobsResponse second;
  s = List(r, &second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(second.sync_jobs_size(), 1);
  EXPECT_EQ(second.sync_jobs(0).upstream_request_id(), "oldest");
  EXPECT_EQ(second.next_page_token(), "");

  const auto queries = jobs_.lists();
  ASSERT_EQ(queries.size(), 2u);
  EXPECT_EQ(queries[0].cursor, 0);
  EXPECT_EQ(queries[0].page_size, 2);
  EXPECT_EQ(queries[0].state, v1::SyncJob::RUNNING);
  EXPECT_EQ(queries[1].cursor, 18);
  EXPECT_EQ(queries[1].state, v1::SyncJob::RUNNING);

  // The same token with another filter is refused before the service.
  r.set_filter("state = FAILED");
  s = List(r, &second);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Decode(s).reason, "PAGE_TOKEN_FILTER_MISMATCH");
  EXPECT_EQ(jobs_.lists().size(), 2u);
}

TEST_F(BlueprintSyncServiceTest, ListSyncJobsStoreFailureIsUnavailable) {
  jobs_.set_page_answer(absl::InternalError("disk I/O error"));
  v1::ListSyncJobsResponse response;
  const grpc::Status s = List(v1::ListSyncJobsRequest(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "could not read jobs: disk I/O error");
  EXPECT_EQ(Decode(s).reason, "STORE_UNAVAILABLE");
}

// ---- CancelSyncJob, RetrySyncJob, DeleteSyncJob ----

TEST_F(BlueprintSyncServiceTest, CancelReachesTheServiceAndAnswersTheJob) {
  jobs_.set_job_answer(Job(v1::SyncJob::CANCELLING, "cancelling"));
  v1::SyncJob response;
  const grpc::Status s = Cancel(kJobName, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.name(), kJobName);
  EXPECT_EQ(response.state(), v1::SyncJob::CANCELLING);
  EXPECT_THAT(jobs_.cancels(), ElementsAre(kJobName));
}

TEST_F(BlueprintSyncServiceTest, CancelAnsweredLaterFromAnotherThread) {
  jobs_.set_job_answer(std::nullopt);
  std::thread answerer(
      [this] { EXPECT_TRUE(jobs_.AnswerHeldJob(Job(v1::SyncJob::CANCELLED, "late"))); });
  v1::SyncJob response;
  const grpc::Status s = Cancel(kJobName, &response);
  answerer.join();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.state(), v1::SyncJob::CANCELLED);
}

TEST_F(BlueprintSyncServiceTest, CancelOfAFinishedJobIsFailedPreconditionNamingTheJob) {
  jobs_.set_job_answer(jobs::WithJobName(
      absl::FailedPreconditionError("job has SUCCEEDED; there is nothing to cancel"), kJobName));
  v1::SyncJob response;
  const grpc::Status s = Cancel(kJobName, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "job has SUCCEEDED; there is nothing to cancel");
  EXPECT_THAT(Decode(s).metadata, ElementsAre(Pair("job", kJobName)));
}

TEST_F(BlueprintSyncServiceTest, RetryReachesTheServiceWithWhatTheHandlerResolved) {
  ServiceOptions options;
  options.default_job_timeout = absl::Hours(3);
  options.reply_margin = absl::Seconds(7);
  Start(options);
  v1::SyncJob retried = Job(v1::SyncJob::RUNNING, "retry");
  retried.set_name(kRetryJobName);
  retried.set_retry_of(kJobName);
  jobs_.set_job_answer(retried);
  v1::SyncJob response;
  const absl::Time before = absl::Now();
  const grpc::Status s = Retry(kJobName, "3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C", &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.name(), kRetryJobName);
  EXPECT_EQ(response.retry_of(), kJobName);
  const auto retries = jobs_.retries();
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].name, kJobName);
  EXPECT_EQ(retries[0].job.request.request_id(), "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_EQ(retries[0].job.creator, "anonymous");
  EXPECT_EQ(retries[0].job.retry_of, kJobName);
  EXPECT_EQ(retries[0].job.timeout, absl::Hours(3));
  // The call's deadline (kWait from the call) less the margin.
  EXPECT_GE(retries[0].reply_by, before + kWait - absl::Seconds(7) - absl::Seconds(2));
  EXPECT_LE(retries[0].reply_by, absl::Now() + kWait - absl::Seconds(7) + absl::Seconds(2));
  EXPECT_THAT(jobs_.submits(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, RetryOfAnUnfinishedJobIsFailedPreconditionNamingTheJob) {
  jobs_.set_job_answer(jobs::WithJobName(
      absl::FailedPreconditionError("job is RUNNING; only a finished job can be retried"),
      kJobName));
  v1::SyncJob response;
  const grpc::Status s = Retry(kJobName, "", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Decode(s).metadata["job"], kJobName);
  EXPECT_EQ(jobs_.retries().size(), 1u);
}

TEST_F(BlueprintSyncServiceTest, DeleteReachesTheServiceAndAnswersEmpty) {
  const grpc::Status s = Delete(kJobName);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(jobs_.deletes(), ElementsAre(kJobName));
}

TEST_F(BlueprintSyncServiceTest, DeleteErrorsKeepTheirCodeAndJob) {
  jobs_.set_delete_answer(jobs::WithJobName(
      absl::FailedPreconditionError("job is RUNNING; cancel it first"), kJobName));
  grpc::Status s = Delete(kJobName);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "job is RUNNING; cancel it first");
  EXPECT_THAT(Decode(s).metadata, ElementsAre(Pair("job", kJobName)));

  jobs_.set_delete_answer(absl::NotFoundError(absl::StrCat("job ", kJobName, " not found")));
  s = Delete(kJobName);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Decode(s).reason, "NOT_FOUND");
  EXPECT_EQ(jobs_.deletes().size(), 2u);
}

TEST_F(BlueprintSyncServiceTest, CancelRetryAndDeleteValidateTheNameBeforeTheService) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "NAME_REQUIRED"},
      {"jobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c", "NAME_MALFORMED"},
      {"syncJobs/not-a-uuid", "NAME_MALFORMED"}};
  for (const auto& [name, reason] : cases) {
    SCOPED_TRACE(name);
    v1::SyncJob response;
    for (const grpc::Status& s :
         {Cancel(name, &response), Retry(name, "", &response), Delete(name)}) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      const Details d = Decode(s);
      EXPECT_EQ(d.reason, reason);
      EXPECT_THAT(d.fields, ElementsAre("name"));
    }
  }
  EXPECT_THAT(jobs_.cancels(), IsEmpty());
  EXPECT_THAT(jobs_.retries(), IsEmpty());
  EXPECT_THAT(jobs_.deletes(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, RetryValidatesTheRequestIdAsSyncBlueprintDoes) {
  v1::SyncJob response;
  grpc::Status s = Retry(kJobName, "not-a-uuid", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  Details d = Decode(s);
  EXPECT_EQ(d.reason, "REQUEST_ID_MALFORMED");
  EXPECT_THAT(d.fields, ElementsAre("request_id"));

  s = Retry("syncJobs/x", std::string(5000, 'r'), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(s.error_message().size(), 1000u);
  d = Decode(s);
  EXPECT_EQ(d.reason, "INVALID_REQUEST");
  EXPECT_THAT(d.fields, ElementsAre("name", "request_id"));
  EXPECT_THAT(jobs_.retries(), IsEmpty());
}

// ---- Authorization ----

class AuthorizedServiceTest : public BlueprintSyncServiceTest {
 protected:
  void SetUp() override {
    auto policy = AuthzPolicy::Parse(R"({"writers": ["*"], "readers": ["*"]})", "policy.json");
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_ = *std::move(policy);
    ServiceOptions options;
    options.authz = &policy_;
    Start(options);
  }

  AuthzPolicy policy_;
};

TEST_F(AuthorizedServiceTest, EveryMethodIsUnauthenticatedWithoutAClientCertificate) {
  // Valid and invalid requests alike: authorization comes before validation.
  for (const bool valid : {true, false}) {
    SCOPED_TRACE(valid ? "valid requests" : "invalid requests");
    v1::SyncBlueprintRequest sync = ValidSync();
    if (!valid) sync.set_blueprint_id("");
    v1::SyncJob job;
    EXPECT_EQ(Sync(sync, &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    sync.set_validate_only(true);
    EXPECT_EQ(Sync(sync, &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);

    EXPECT_EQ(Get(valid ? kJobName : "nope", &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);

    v1::ListSyncJobsRequest list;
    if (!valid) list.set_filter("colour = blue");
    v1::ListSyncJobsResponse page;
    EXPECT_EQ(List(list, &page).error_code(), grpc::StatusCode::UNAUTHENTICATED);

    std::vector<std::string> markers;
    const grpc::Status watch = WatchAll(valid ? kJobName : "nope", &markers);
    EXPECT_EQ(watch.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Decode(watch).reason, "UNAUTHENTICATED");
    EXPECT_THAT(markers, IsEmpty());

    const std::string name = valid ? kJobName : "nope";
    EXPECT_EQ(Cancel(name, &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Retry(name, valid ? "" : "not-a-uuid", &job).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Delete(name).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_THAT(jobs_.submits(), IsEmpty());
  EXPECT_THAT(jobs_.previews(), IsEmpty());
  EXPECT_THAT(jobs_.cancels(), IsEmpty());
  EXPECT_THAT(jobs_.retries(), IsEmpty());
  EXPECT_THAT(jobs_.deletes(), IsEmpty());
  EXPECT_THAT(jobs_.gets(), IsEmpty());
  EXPECT_THAT(jobs_.lists(), IsEmpty());
  EXPECT_THAT(jobs_.watched_names(), IsEmpty());
}

// Callers identified as mTLS would identify them (TestIdentityProcessor),
// against a policy with one writer and one reader.
class IdentifiedServiceTest : public BlueprintSyncServiceTest {
 protected:
  void SetUp() override {
    auto policy = AuthzPolicy::Parse(
        R"({"writers": ["dns:writer.test"], "readers": ["uri:spiffe://test/ns/ops/sa/reader"]})",
        "policy.json");
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_ = *std::move(policy);
    ServiceOptions options;
    options.authz = &policy_;
    Start(options, /*identities=*/true);
  }

  AuthzPolicy policy_;
};

TEST_F(IdentifiedServiceTest, AWriterMayChangeJobsAndIsRecordedAsTheirCreator) {
  ConnectAs("dns:Writer.TEST");  // matched, and recorded, case-insensitively
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  v1::SyncJob job;
  grpc::Status s = Sync(ValidSync(), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::SyncBlueprintRequest preview = ValidSync();
  preview.set_validate_only(true);
  s = Sync(preview, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = Retry(kJobName, "", &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = Cancel(kJobName, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = Delete(kJobName);
  ASSERT_TRUE(s.ok()) << s.error_message();

  const auto submits = jobs_.submits();
  ASSERT_EQ(submits.size(), 1u);
  EXPECT_EQ(submits[0].job.creator, "dns:writer.test");
  const auto previews = jobs_.previews();
  ASSERT_EQ(previews.size(), 1u);
  EXPECT_EQ(previews[0].creator, "dns:writer.test");
  const auto retries = jobs_.retries();
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].job.creator, "dns:writer.test");
  EXPECT_THAT(jobs_.cancels(), ElementsAre(kJobName));
  EXPECT_THAT(jobs_.deletes(), ElementsAre(kJobName));
}

TEST_F(IdentifiedServiceTest, AReaderMayReadButNotChangeJobs) {
  ConnectAs("uri:spiffe://test/ns/ops/sa/reader");
  jobs_.set_job_answer(Job(v1::SyncJob::RUNNING));
  v1::SyncJob job;
  const grpc::Status get = Get(kJobName, &job);
  ASSERT_TRUE(get.ok()) << get.error_message();

  v1::SyncBlueprintRequest preview = ValidSync();
  preview.set_validate_only(true);
  const std::vector<std::pair<std::string, grpc::Status>> calls = {
      {"SyncBlueprint", Sync(ValidSync(), &job)}, {"SyncBlueprint", Sync(preview, &job)},
      {"CancelSyncJob", Cancel(kJobName, &job)},  {"RetrySyncJob", Retry(kJobName, "", &job)},
      {"DeleteSyncJob", Delete(kJobName)},
  };
  for (const auto& [method, s] : calls) {
    SCOPED_TRACE(method);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(),
                AllOf(HasSubstr("caller uri:spiffe://test/ns/ops/sa/reader may not call " + method),
                      HasSubstr("it is a reader")));
    EXPECT_EQ(Decode(s).reason, "PERMISSION_DENIED");
  }
  EXPECT_THAT(jobs_.submits(), IsEmpty());
  EXPECT_THAT(jobs_.previews(), IsEmpty());
  EXPECT_THAT(jobs_.cancels(), IsEmpty());
  EXPECT_THAT(jobs_.retries(), IsEmpty());
  EXPECT_THAT(jobs_.deletes(), IsEmpty());
}

TEST_F(IdentifiedServiceTest, AStrangerMayNotEvenRead) {
  ConnectAs("cn:stranger");
  v1::SyncJob job;
  const grpc::Status s = Get(kJobName, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("caller cn:stranger may not call GetSyncJob"));
  ConnectAs("");  // a certificate with neither SAN nor CN
  EXPECT_EQ(Get(kJobName, &job).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(jobs_.gets(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, CreatorIsTheVerifiedIdentityWithoutAPolicyToo) {
  Start(ServiceOptions{}, /*identities=*/true);
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  v1::SyncJob job;
  ConnectAs("uri:spiffe://cluster/ns/web/sa/deployer");
  ASSERT_TRUE(Sync(ValidSync(), &job).ok());
  ConnectAs("");  // verified, but names nobody
  ASSERT_TRUE(Sync(ValidSync(), &job).ok());
  const auto submits = jobs_.submits();
  ASSERT_EQ(submits.size(), 2u);
  EXPECT_EQ(submits[0].job.creator, "uri:spiffe://cluster/ns/web/sa/deployer");
  EXPECT_EQ(submits[1].job.creator, "anonymous");
}

// ---- Access log ----

// The server with the access log interceptor, its lines captured.
class AccessLogTest : public BlueprintSyncServiceTest {
 protected:
  void SetUp() override {
    log_ = std::tmpfile();
    ASSERT_NE(log_, nullptr);
    log::SetOutput(log_);
    Start(ServiceOptions{}, /*identities=*/true, /*access_log=*/true);
  }

  void TearDown() override {
    BlueprintSyncServiceTest::TearDown();
    log::SetOutput(nullptr);
    std::fclose(log_);
  }

  // The lines written so far. A call's line is written before its status
  // is sent, so it is there once the call has returned.
  std::vector<std::string> Lines() {
    std::fflush(log_);
    std::rewind(log_);
    std::string text;
    char buffer[4096];
    for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), log_)) > 0;) text.append(buffer, n);
    std::fseek(log_, 0, SEEK_END);
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }

  std::string LastLine() {
    const std::vector<std::string> lines = Lines();
    return lines.empty() ? "" : lines.back();
  }

  std::FILE* log_ = nullptr;
};

TEST_F(AccessLogTest, SyncBlueprintNamesTheCallerTheRequestIdAndTheJob) {
  ConnectAs("dns:writer.test");
  jobs_.set_job_answer(Job(v1::SyncJob::QUEUED));
  v1::SyncBlueprintRequest r = ValidSync();
  r.set_request_id("3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C");
  v1::SyncJob response;
  ASSERT_TRUE(Sync(r, &response).ok());
  EXPECT_THAT(LastLine(),
              AllOf(HasSubstr(R"("grpc.method":"SyncBlueprint")"), HasSubstr(R"("grpc.code":"OK")"),
                    HasSubstr(R"("caller":"dns:writer.test")"),
                    // The certificate's identity and where the call came from.
                    HasSubstr(R"("peer.address":"ipv4:127.0.0.1:)"),
                    // A JSON number, not "0".
                    ContainsRegex(R"("grpc\.time_ms":[0-9]+[,}])"),
                    HasSubstr(R"("request_id":"3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C")"),
                    HasSubstr(absl::StrCat(R"("job":")", kJobName, R"(")"))));
}

TEST_F(AccessLogTest, ACallerWithoutIdentityIsItsAddressAndARetryNamesBothJobs) {
  ConnectAs("");
  v1::SyncJob retried = Job(v1::SyncJob::QUEUED);
  retried.set_name(kRetryJobName);
  jobs_.set_job_answer(retried);
  v1::SyncJob response;
  ASSERT_TRUE(Retry(kJobName, "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c", &response).ok());
  EXPECT_THAT(LastLine(), AllOf(HasSubstr(R"("grpc.method":"RetrySyncJob")"),
                                HasSubstr(R"("caller":"ipv4:127.0.0.1:)"),
                                HasSubstr(R"("request_id":"3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c")"),
                                HasSubstr(absl::StrCat(R"("job":")", kRetryJobName, R"(")")),
                                HasSubstr(absl::StrCat(R"("retry_of":")", kJobName, R"(")"))));
}

TEST_F(AccessLogTest, CancelAndDeleteNameTheirJobAlsoWhenTheyFail) {
  ConnectAs("uri:spiffe://test/ns/ops/sa/admin");
  jobs_.set_job_answer(
      jobs::WithJobName(absl::FailedPreconditionError("job has SUCCEEDED"), kJobName));
  v1::SyncJob response;
  EXPECT_EQ(Cancel(kJobName, &response).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(LastLine(), AllOf(HasSubstr(R"("grpc.method":"CancelSyncJob")"),
                                HasSubstr(R"("grpc.code":"FAILED_PRECONDITION")"),
                                HasSubstr(R"("caller":"uri:spiffe://test/ns/ops/sa/admin")"),
                                HasSubstr(absl::StrCat(R"("job":")", kJobName, R"(")"))));
  ASSERT_TRUE(Delete(kJobName).ok());
  EXPECT_THAT(LastLine(), AllOf(HasSubstr(R"("grpc.method":"DeleteSyncJob")"),
                                HasSubstr(absl::StrCat(R"("job":")", kJobName, R"(")"))));
}

TEST_F(AccessLogTest, HostileValuesStayBoundedOnOneLine) {
  ConnectAs("cn:" + std::string(5000, 'c'));
  v1::SyncJob response;
  const std::string name = "syncJobs/\n{\"x\":1}" + std::string(100000, 'n');
  EXPECT_EQ(Cancel(name, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Retry(name, "\r" + std::string(100000, 'r'), &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  for (const std::string& line : lines) {
    EXPECT_LT(line.size(), 1500u);
    EXPECT_THAT(line, AllOf(HasSubstr(R"("job":"syncJobs/\\x0a{\"x\":1}nnn)"),
                            HasSubstr(R"("caller":"cn:ccc)")));
  }
  EXPECT_THAT(lines[1], HasSubstr(R"("request_id":"\\x0drrr)"));
}

// ---- WatchSyncJob ----

// A watch sends the latest version each time: `markers` must be a part of
// `all`, in its order, starting with its first and ending with its last.
void ExpectLatestVersionsInOrder(const std::vector<std::string>& markers,
                                 const std::vector<std::string>& all) {
  ASSERT_FALSE(markers.empty());
  EXPECT_EQ(markers.front(), all.front());
  EXPECT_EQ(markers.back(), all.back());
  size_t at = 0;
  for (const std::string& m : markers) {
    while (at < all.size() && all[at] != m) ++at;
    ASSERT_LT(at, all.size()) << "\"" << m << "\" out of order or repeated";
    ++at;
  }
}

TEST_F(BlueprintSyncServiceTest, WatchRejectsABadNameBeforeTheService) {
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll("syncJobs/x", &markers);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Decode(s).reason, "NAME_MALFORMED");
  EXPECT_THAT(markers, IsEmpty());
  EXPECT_THAT(jobs_.watched_names(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, WatchStreamsNewerVersionsThenOkAfterTheTerminalOne) {
  jobs_.set_watch_start({Job(v1::SyncJob::QUEUED, "v0")});
  std::thread pusher([this] {
    const std::optional<uint64_t> id = jobs_.WaitForWatch();
    ASSERT_TRUE(id.has_value());
    EXPECT_TRUE(jobs_.Push(*id, Job(v1::SyncJob::RUNNING, "v1")));
    EXPECT_TRUE(jobs_.Push(*id, Job(v1::SyncJob::RUNNING, "v2")));
    EXPECT_TRUE(jobs_.Push(*id, Job(v1::SyncJob::SUCCEEDED, "v3")));
  });
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll(kJobName, &markers);
  pusher.join();
  EXPECT_TRUE(s.ok()) << s.error_message();
  // v1 and v2 may be replaced by a newer one before they are written.
  ExpectLatestVersionsInOrder(markers, {"v0", "v1", "v2", "v3"});
  EXPECT_THAT(jobs_.watched_names(), ElementsAre(kJobName));
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

TEST_F(BlueprintSyncServiceTest, WatchOfAFinishedJobIsOneVersionThenOk) {
  // Everything arrives inside WatchJob, from the reactor's constructor.
  jobs_.set_watch_start({Job(v1::SyncJob::FAILED, "final")});
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll(kJobName, &markers);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(markers, ElementsAre("final"));
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

TEST_F(BlueprintSyncServiceTest, WatchOfAMissingJobIsNotFoundAtOnce) {
  jobs_.set_watch_start({absl::NotFoundError(absl::StrCat("job ", kJobName, " not found"))});
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll(kJobName, &markers);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), absl::StrCat("job ", kJobName, " not found"));
  EXPECT_EQ(Decode(s).reason, "NOT_FOUND");
  EXPECT_THAT(markers, IsEmpty());
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

TEST_F(BlueprintSyncServiceTest, WatchEndedByTheServiceEndsWithItsStatusAfterTheLatestVersion) {
  jobs_.set_watch_start({Job(v1::SyncJob::QUEUED, "v0")});
  std::thread pusher([this] {
    const std::optional<uint64_t> id = jobs_.WaitForWatch();
    ASSERT_TRUE(id.has_value());
    // Back to back, so the end arrives while versions still wait to be written.
    EXPECT_TRUE(jobs_.Push(*id, Job(v1::SyncJob::RUNNING, "v1")));
    EXPECT_TRUE(jobs_.Push(*id, Job(v1::SyncJob::RUNNING, "v2")));
    EXPECT_TRUE(jobs_.Push(
        *id,
        WithReason(absl::UnavailableError("the server is shutting down; watch again to continue"),
                   reason::kShuttingDown)));
  });
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll(kJobName, &markers);
  pusher.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "the server is shutting down; watch again to continue");
  // Like any other failed call, with the reason a watcher can branch on.
  EXPECT_EQ(Decode(s).reason, "SHUTTING_DOWN");
  ExpectLatestVersionsInOrder(markers, {"v0", "v1", "v2"});
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

TEST_F(BlueprintSyncServiceTest, WatchEndedInsideWatchJobStillSendsTheLatestVersionBeforeTheEnd) {
  // All of it before the first write can complete (gRPC completes none
  // before the handler returns), so v1 is replaced by v2 while v0 is being
  // written, and the end finds v2 waiting.
  jobs_.set_watch_start(
      {Job(v1::SyncJob::QUEUED, "v0"), Job(v1::SyncJob::RUNNING, "v1"),
       Job(v1::SyncJob::RUNNING, "v2"),
       absl::UnavailableError("the server is shutting down; watch again to continue")});
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll(kJobName, &markers);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "the server is shutting down; watch again to continue");
  EXPECT_THAT(markers, ElementsAre("v0", "v2"));
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

TEST_F(BlueprintSyncServiceTest, WatchCancelledByTheClientUnwatchesWhileVersionsKeepComing) {
  jobs_.set_watch_start({Job(v1::SyncJob::QUEUED, "v0")});
  grpc::ClientContext ctx;
  Prepare(ctx);
  v1::WatchSyncJobRequest request;
  request.set_name(kJobName);
  auto reader = stub_->WatchSyncJob(&ctx, request);
  v1::SyncJob job;
  ASSERT_TRUE(reader->Read(&job));
  EXPECT_EQ(job.upstream_request_id(), "v0");
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());

  // Versions race with the cancellation on another thread until the
  // reactor unwatches; bounded so a missing Unwatch fails instead of hanging.
  std::thread pusher([this, watch = *id] {
    for (int i = 0; i < 100000 && jobs_.Push(watch, Job(v1::SyncJob::RUNNING, "more")); ++i) {
    }
  });
  ctx.TryCancel();
  while (reader->Read(&job)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
  pusher.join();
  EXPECT_FALSE(jobs_.Push(*id, Job(v1::SyncJob::RUNNING, "after")));
}

TEST_F(BlueprintSyncServiceTest, ASlowReaderGetsTheLatestVersionsNotAQueueOfEveryOne) {
  // Versions of 16 KiB, far more than HTTP/2 flow control lets through to a
  // reader that stopped: the server would have to hold them all to send
  // every one (2,000 x 16 KiB). It holds one, replaced by each newer one.
  constexpr int kVersions = 2000;
  const std::string padding(16 << 10, 'x');
  auto version = [&](v1::SyncJob::State state, int i) {
    v1::SyncJob job = Job(state, absl::StrCat(i));
    job.set_state_reason(padding);
    return job;
  };
  jobs_.set_watch_start({version(v1::SyncJob::QUEUED, 0)});
  grpc::ClientContext ctx;
  Prepare(ctx);
  v1::WatchSyncJobRequest request;
  request.set_name(kJobName);
  auto reader = stub_->WatchSyncJob(&ctx, request);
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());

  absl::Notification all_pushed;
  std::thread pusher([&, watch = *id] {
    for (int i = 1; i < kVersions; ++i) {
      EXPECT_TRUE(jobs_.Push(watch, version(v1::SyncJob::RUNNING, i)));
    }
    EXPECT_TRUE(jobs_.Push(watch, version(v1::SyncJob::SUCCEEDED, kVersions)));
    all_pushed.Notify();
  });
  // A few reads while versions are still arriving, then none until every
  // version has been handed to the stream.
  std::vector<int> markers;
  v1::SyncJob job;
  for (int i = 0; i < 10 && reader->Read(&job); ++i) {
    markers.push_back(std::stoi(job.upstream_request_id()));
  }
  ASSERT_TRUE(all_pushed.WaitForNotificationWithTimeout(kWait));
  while (reader->Read(&job)) markers.push_back(std::stoi(job.upstream_request_id()));
  pusher.join();
  const grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(markers.empty());
  EXPECT_EQ(markers.front(), 0);
  EXPECT_EQ(markers.back(), kVersions) << "the terminal version must arrive";
  for (size_t i = 1; i < markers.size(); ++i) {
    ASSERT_LT(markers[i - 1], markers[i]) << "went back or repeated at " << i;
  }
  // What flow control let through while the reader stopped, plus the
  // latest: far from all of them.
  EXPECT_LT(markers.size(), static_cast<size_t>(kVersions / 2))
      << "intermediate versions were queued for a reader that fell behind";
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

// ---- Replication policies ----

v1::CreateSyncPolicyRequest ValidCreate(const std::string& id = "web-golden") {
  v1::CreateSyncPolicyRequest r;
  r.set_sync_policy_id(id);
  v1::SyncPolicy* p = r.mutable_sync_policy();
  p->set_source_region("ap-guangzhou");
  p->set_blueprint_name("web-golden");
  p->add_destination_regions("ap-shanghai");
  p->add_destination_regions("ap-beijing");
  p->set_keep_versions(2);
  (*p->mutable_labels())["team"] = "web";
  return r;
}

v1::UpdateSyncPolicyRequest ValidUpdate(std::vector<std::string> paths) {
  v1::UpdateSyncPolicyRequest r;
  *r.mutable_sync_policy() = Policy();
  for (std::string& path : paths) r.mutable_update_mask()->add_paths(std::move(path));
  return r;
}

v1::DeleteSyncPolicyRequest DeleteRequest(const std::string& name, const std::string& etag = "",
                                          bool delete_copies = false) {
  v1::DeleteSyncPolicyRequest r;
  r.set_name(name);
  r.set_etag(etag);
  r.set_delete_copies(delete_copies);
  return r;
}

// Expects INVALID_ARGUMENT whose BadRequest lists exactly `fields`, and
// with one violation, `rule` as the reason.
void ExpectViolations(const grpc::Status& s, const std::string& rule,
                      const std::vector<std::string>& fields) {
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  const Details d = Decode(s);
  EXPECT_EQ(d.reason, rule);
  EXPECT_EQ(d.fields, fields);
}

TEST_F(BlueprintSyncServiceTest, PolicyMethodsAreUnimplementedWithoutAPolicyService) {
  policies_enabled_ = false;
  Start(ServiceOptions{});
  v1::SyncPolicy policy;
  v1::ListSyncPoliciesResponse page;
  for (const grpc::Status& s :
       {CreatePolicy(ValidCreate(), &policy), GetPolicy(kPolicyName, &policy),
        ListPolicies(v1::ListSyncPoliciesRequest(), &page),
        UpdatePolicy(ValidUpdate({"paused"}), &policy), DeletePolicy(DeleteRequest(kPolicyName))}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(s.error_message(), "replication policies are not enabled");
    EXPECT_EQ(Decode(s).reason, "UNIMPLEMENTED");
  }
  // The job methods are unaffected.
  jobs_.set_job_answer(Job(v1::SyncJob::RUNNING));
  v1::SyncJob job;
  EXPECT_TRUE(Get(kJobName, &job).ok());
  EXPECT_EQ(policies_.calls(), 0u);
}

// -- CreateSyncPolicy --

TEST_F(BlueprintSyncServiceTest, CreatePolicyReachesTheServiceNamedAndWithoutOutputOnlyFields) {
  v1::SyncPolicy answered = Policy();
  answered.set_etag("\"r1\"");
  policies_.set_policy_answer(answered);
  v1::CreateSyncPolicyRequest r = ValidCreate();
  v1::SyncPolicy* p = r.mutable_sync_policy();
  // Output-only values, e.g. copied from another policy: ignored.
  p->set_name("syncPolicies/something-else");
  p->set_etag("\"r9\"");
  p->set_creator("uri:spiffe://someone/else");
  p->mutable_create_time()->set_seconds(12345);
  p->set_source_blueprint_id("lhbp-aaaaaaaa");
  p->set_in_sync(true);
  p->add_regions()->set_region("ap-beijing");
  p->set_deleting(true);
  p->set_paused(true);
  v1::SyncPolicy response;
  const grpc::Status s = CreatePolicy(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.name(), kPolicyName);
  EXPECT_EQ(response.etag(), "\"r1\"");
  const auto creates = policies_.creates();
  ASSERT_EQ(creates.size(), 1u);
  EXPECT_EQ(creates[0].creator, "anonymous");
  const v1::SyncPolicy& sent = creates[0].policy;
  EXPECT_EQ(sent.name(), kPolicyName);
  EXPECT_EQ(sent.source_region(), "ap-guangzhou");
  EXPECT_EQ(sent.blueprint_name(), "web-golden");
  EXPECT_THAT(sent.destination_regions(), ElementsAre("ap-shanghai", "ap-beijing"));
  EXPECT_EQ(sent.keep_versions(), 2);
  EXPECT_TRUE(sent.paused());
  EXPECT_THAT(sent.labels(), ElementsAre(Pair("team", "web")));
  EXPECT_EQ(sent.etag(), "");
  EXPECT_EQ(sent.creator(), "");
  EXPECT_FALSE(sent.has_create_time());
  EXPECT_EQ(sent.source_blueprint_id(), "");
  EXPECT_FALSE(sent.in_sync());
  EXPECT_EQ(sent.regions_size(), 0);
  EXPECT_FALSE(sent.deleting());
}

TEST_F(BlueprintSyncServiceTest, CreatePolicyIdFollowsAip122) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "SYNC_POLICY_ID_REQUIRED"},
      {"abc", "SYNC_POLICY_ID_MALFORMED"},
      {std::string(64, 'a'), "SYNC_POLICY_ID_MALFORMED"},
      {"1abc", "SYNC_POLICY_ID_MALFORMED"},
      {"-abc", "SYNC_POLICY_ID_MALFORMED"},
      {"abcd-", "SYNC_POLICY_ID_MALFORMED"},
      {"Abcd", "SYNC_POLICY_ID_MALFORMED"},
      {"ab_cd", "SYNC_POLICY_ID_MALFORMED"},
      {"ab.cd", "SYNC_POLICY_ID_MALFORMED"},
      {"ab/cd", "SYNC_POLICY_ID_MALFORMED"},
      {"web\ngolden", "SYNC_POLICY_ID_MALFORMED"},
  };
  for (const auto& [id, rule] : bad) {
    SCOPED_TRACE(id);
    v1::SyncPolicy response;
    const grpc::Status s = CreatePolicy(ValidCreate(id), &response);
    ExpectViolations(s, rule, {"sync_policy_id"});
    EXPECT_THAT(s.error_message(), HasSubstr("sync_policy_id"));
    EXPECT_EQ(s.error_message().find('\n'), std::string::npos);
  }
  EXPECT_THAT(policies_.creates(), IsEmpty());
  for (const std::string& id : {std::string("abcd"), std::string("a-b-c-1"), std::string("web2"),
                                "a" + std::string(62, '0')}) {
    SCOPED_TRACE(id);
    v1::SyncPolicy response;
    const grpc::Status s = CreatePolicy(ValidCreate(id), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(policies_.creates().back().policy.name(), "syncPolicies/" + id);
  }
}

TEST_F(BlueprintSyncServiceTest, CreatePolicyRegionsFollowSyncBlueprintsRules) {
  struct Case {
    std::string source;
    std::vector<std::string> destinations;
    std::string rule;
    std::vector<std::string> fields;
  };
  for (const Case& c : std::vector<Case>{
           {"", {"ap-shanghai"}, "SOURCE_REGION_REQUIRED", {"source_region"}},
           {"mars-north-1", {"ap-shanghai"}, "SOURCE_REGION_UNSUPPORTED", {"source_region"}},
           {"ap-guangzhou", {}, "DESTINATIONS_REQUIRED", {"destination_regions"}},
           {"ap-guangzhou",
            {"ap-shanghai", "ap-guangzhou"},
            "DESTINATION_SAME_AS_SOURCE",
            {"destination_regions[1]"}},
           {"ap-guangzhou", {"ap-singapore"}, "CROSS_BORDER_SYNC", {"destination_regions[0]"}},
           {"ap-guangzhou",
            {"ap-shanghai", "ap-shanghai"},
            "DESTINATION_DUPLICATED",
            {"destination_regions[1]"}},
           {"ap-guangzhou",
            {"mars-north-1"},
            "DESTINATION_REGION_UNSUPPORTED",
            {"destination_regions[0]"}},
       }) {
    SCOPED_TRACE(c.rule);
    v1::CreateSyncPolicyRequest r = ValidCreate();
    r.mutable_sync_policy()->set_source_region(c.source);
    r.mutable_sync_policy()->clear_destination_regions();
    for (const std::string& d : c.destinations) r.mutable_sync_policy()->add_destination_regions(d);
    v1::SyncPolicy response;
    ExpectViolations(CreatePolicy(r, &response), c.rule, c.fields);
  }
  // More than SyncBlueprint takes: one violation first, then only the first
  // kMaxDestinationRegions entries are checked.
  v1::CreateSyncPolicyRequest r = ValidCreate();
  r.mutable_sync_policy()->clear_destination_regions();
  for (int i = 0; i < 200; ++i) r.mutable_sync_policy()->add_destination_regions("nowhere");
  v1::SyncPolicy response;
  const grpc::Status s = CreatePolicy(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("destination_regions lists 200 regions"));
  const Details d = Decode(s);
  ASSERT_FALSE(d.fields.empty());
  EXPECT_EQ(d.fields[0], "destination_regions");
  EXPECT_EQ(d.fields.size(), 1u + tencent::kMaxDestinationRegions);
  EXPECT_THAT(policies_.creates(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, CreatePolicyNeedsASourceAndChecksTheOneGiven) {
  auto with = [](std::function<void(v1::SyncPolicy&)> change) {
    v1::CreateSyncPolicyRequest r = ValidCreate();
    change(*r.mutable_sync_policy());
    return r;
  };
  struct Case {
    std::string what;
    v1::CreateSyncPolicyRequest request;
    std::string rule;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{
           {"none", with([](v1::SyncPolicy& p) { p.clear_source(); }), "SOURCE_REQUIRED", "source"},
           {"empty id", with([](v1::SyncPolicy& p) { p.set_blueprint_id(""); }),
            "BLUEPRINT_ID_REQUIRED", "blueprint_id"},
           {"bad id", with([](v1::SyncPolicy& p) { p.set_blueprint_id("lhbp-BAD"); }),
            "BLUEPRINT_ID_MALFORMED", "blueprint_id"},
           {"empty name", with([](v1::SyncPolicy& p) { p.set_blueprint_name(""); }),
            "BLUEPRINT_NAME_REQUIRED", "blueprint_name"},
           {"long name",
            with([](v1::SyncPolicy& p) { p.set_blueprint_name(std::string(61, 'n')); }),
            "BLUEPRINT_NAME_TOO_LONG", "blueprint_name"},
           {"newline", with([](v1::SyncPolicy& p) { p.set_blueprint_name("web\ngolden"); }),
            "BLUEPRINT_NAME_MALFORMED", "blueprint_name"},
           {"DEL", with([](v1::SyncPolicy& p) { p.set_blueprint_name("web\x7f"); }),
            "BLUEPRINT_NAME_MALFORMED", "blueprint_name"},
           {"C1 control", with([](v1::SyncPolicy& p) { p.set_blueprint_name("web\u0085golden"); }),
            "BLUEPRINT_NAME_MALFORMED", "blueprint_name"},
       }) {
    SCOPED_TRACE(c.what);
    v1::SyncPolicy response;
    ExpectViolations(CreatePolicy(c.request, &response), c.rule, {c.field});
  }
  EXPECT_THAT(policies_.creates(), IsEmpty());

  // A family name is any printable text of 1-60 characters (not bytes);
  // a fixed source is a custom blueprint id.
  for (const Case& c : std::vector<Case>{
           {"60 characters", with([](v1::SyncPolicy& p) {
              std::string name;
              for (int i = 0; i < 60; ++i) name += "\u955c";  // 3 bytes each
              p.set_blueprint_name(name);
            }),
            "", ""},
           {"spaces and punctuation",
            with([](v1::SyncPolicy& p) { p.set_blueprint_name("Web Golden (v2) - prod"); }), "",
            ""},
           {"fixed", with([](v1::SyncPolicy& p) { p.set_blueprint_id("lhbp-ls883feh"); }), "", ""},
       }) {
    SCOPED_TRACE(c.what);
    v1::SyncPolicy response;
    const grpc::Status s = CreatePolicy(c.request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_EQ(policies_.creates().size(), 3u);
  EXPECT_EQ(policies_.creates()[2].policy.blueprint_id(), "lhbp-ls883feh");
}

TEST_F(BlueprintSyncServiceTest, CreatePolicyKeepVersionsAndLabels) {
  for (const int keep : {-1, 101, 1 << 30}) {
    SCOPED_TRACE(keep);
    v1::CreateSyncPolicyRequest r = ValidCreate();
    r.mutable_sync_policy()->set_keep_versions(keep);
    v1::SyncPolicy response;
    const grpc::Status s = CreatePolicy(r, &response);
    ExpectViolations(s, "KEEP_VERSIONS_OUT_OF_RANGE", {"keep_versions"});
    EXPECT_THAT(s.error_message(), HasSubstr("keep_versions"));
  }
  // Labels follow SyncJob labels' rules (the same code).
  v1::CreateSyncPolicyRequest r = ValidCreate();
  (*r.mutable_sync_policy()->mutable_labels())["-team"] = "web";
  v1::SyncPolicy response;
  ExpectViolations(CreatePolicy(r, &response), "LABEL_KEY_MALFORMED", {"labels[\"-team\"]"});
  r = ValidCreate();
  (*r.mutable_sync_policy()->mutable_labels())["team"] = "web-";
  ExpectViolations(CreatePolicy(r, &response), "LABEL_VALUE_MALFORMED", {"labels[\"team\"]"});
  r = ValidCreate();
  for (int i = 0; i < 40; ++i)
    (*r.mutable_sync_policy()->mutable_labels())[absl::StrCat("k", i)] = "v";
  ExpectViolations(CreatePolicy(r, &response), "TOO_MANY_LABELS", {"labels"});
  EXPECT_THAT(policies_.creates(), IsEmpty());

  for (const int keep : {0, 100}) {
    r = ValidCreate();
    r.mutable_sync_policy()->set_keep_versions(keep);
    EXPECT_TRUE(CreatePolicy(r, &response).ok()) << keep;
  }
}

TEST_F(BlueprintSyncServiceTest, CreatePolicyListsEveryViolationTogether) {
  v1::CreateSyncPolicyRequest r = ValidCreate("No");
  r.mutable_sync_policy()->set_source_region("mars-north-1");
  r.mutable_sync_policy()->clear_source();
  r.mutable_sync_policy()->set_keep_versions(-3);
  (*r.mutable_sync_policy()->mutable_labels())["team"] = "-web";
  v1::SyncPolicy response;
  ExpectViolations(
      CreatePolicy(r, &response), "INVALID_REQUEST",
      {"sync_policy_id", "source_region", "source", "keep_versions", "labels[\"team\"]"});
}

TEST_F(BlueprintSyncServiceTest, CreatePolicyValidateOnlyAnswersWithoutRecording) {
  v1::CreateSyncPolicyRequest r = ValidCreate();
  r.set_validate_only(true);
  r.mutable_sync_policy()->set_in_sync(true);
  v1::SyncPolicy response;
  const grpc::Status s = CreatePolicy(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.name(), kPolicyName);
  EXPECT_EQ(response.creator(), "anonymous");
  EXPECT_EQ(response.blueprint_name(), "web-golden");
  EXPECT_FALSE(response.in_sync());
  EXPECT_EQ(response.etag(), "");
  EXPECT_EQ(policies_.calls(), 0u);

  r.mutable_sync_policy()->set_keep_versions(500);
  ExpectViolations(CreatePolicy(r, &response), "KEEP_VERSIONS_OUT_OF_RANGE", {"keep_versions"});
  EXPECT_EQ(policies_.calls(), 0u);
}

TEST_F(BlueprintSyncServiceTest, CreatePolicyOfATakenIdIsAlreadyExists) {
  policies_.set_policy_answer(
      absl::AlreadyExistsError("policy syncPolicies/web-golden already exists"));
  v1::SyncPolicy response;
  const grpc::Status s = CreatePolicy(ValidCreate(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(s.error_message(), "policy syncPolicies/web-golden already exists");
  EXPECT_EQ(Decode(s).reason, "ALREADY_EXISTS");
}

TEST_F(BlueprintSyncServiceTest, CreatePolicyAnsweredLaterFromAnotherThread) {
  policies_.set_policy_answer(std::nullopt);
  v1::SyncPolicy later = Policy();
  later.set_etag("\"r1\"");
  std::thread answerer([this, later] { EXPECT_TRUE(policies_.AnswerHeldPolicy(later)); });
  v1::SyncPolicy response;
  const grpc::Status s = CreatePolicy(ValidCreate(), &response);
  answerer.join();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.etag(), "\"r1\"");
}

// -- Names, GetSyncPolicy --

TEST_F(BlueprintSyncServiceTest, PolicyNamesAreCheckedInGetUpdateAndDelete) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "NAME_REQUIRED"},
      {"web-golden", "NAME_MALFORMED"},
      {"syncJobs/web-golden", "NAME_MALFORMED"},
      {"syncPolicies/", "NAME_MALFORMED"},
      {"syncPolicies/web", "NAME_MALFORMED"},
      {"syncPolicies/Web-golden", "NAME_MALFORMED"},
      {"syncPolicies/web-golden-", "NAME_MALFORMED"},
      {"syncPolicies/web/golden", "NAME_MALFORMED"},
      {"syncPolicies/" + std::string(64, 'w'), "NAME_MALFORMED"},
  };
  for (const auto& [name, rule] : cases) {
    SCOPED_TRACE(name);
    v1::SyncPolicy response;
    v1::UpdateSyncPolicyRequest update = ValidUpdate({"paused"});
    update.mutable_sync_policy()->set_name(name);
    for (const grpc::Status& s : {GetPolicy(name, &response), UpdatePolicy(update, &response),
                                  DeletePolicy(DeleteRequest(name))}) {
      ExpectViolations(s, rule, {"name"});
    }
  }
  EXPECT_EQ(policies_.calls(), 0u);
}

TEST_F(BlueprintSyncServiceTest, GetPolicyAnswersThePolicyOrNotFound) {
  v1::SyncPolicy stored = Policy();
  stored.set_in_sync(true);
  policies_.set_policy_answer(stored);
  v1::SyncPolicy response;
  grpc::Status s = GetPolicy(kPolicyName, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(response.in_sync());

  policies_.set_policy_answer(absl::NotFoundError("policy syncPolicies/web-golden not found"));
  s = GetPolicy(kPolicyName, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Decode(s).reason, "NOT_FOUND");
  EXPECT_THAT(policies_.gets(), ElementsAre(kPolicyName, kPolicyName));
}

// -- UpdateSyncPolicy --

TEST_F(BlueprintSyncServiceTest, UpdatePolicyNeedsAMaskOfUpdatableFields) {
  v1::SyncPolicy response;
  v1::UpdateSyncPolicyRequest r = ValidUpdate({});
  ExpectViolations(UpdatePolicy(r, &response), "UPDATE_MASK_REQUIRED", {"update_mask"});
  r.mutable_update_mask();  // present, but no paths
  ExpectViolations(UpdatePolicy(r, &response), "UPDATE_MASK_REQUIRED", {"update_mask"});

  for (const char* source : {"source_region", "blueprint_id", "blueprint_name"}) {
    SCOPED_TRACE(source);
    const grpc::Status s = UpdatePolicy(ValidUpdate({"paused", source}), &response);
    ExpectViolations(s, "SOURCE_IMMUTABLE", {"update_mask.paths[1]"});
    EXPECT_THAT(s.error_message(), AllOf(HasSubstr(source), HasSubstr("cannot change")));
  }
  for (const char* unknown : {"name", "etag", "in_sync", "labels.team", "", "Paused"}) {
    SCOPED_TRACE(unknown);
    ExpectViolations(UpdatePolicy(ValidUpdate({unknown}), &response), "UPDATE_MASK_PATH_UNKNOWN",
                     {"update_mask.paths[0]"});
  }
  const grpc::Status s = UpdatePolicy(ValidUpdate(std::vector<std::string>(500, "x")), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const Details d = Decode(s);
  ASSERT_FALSE(d.fields.empty());
  EXPECT_EQ(d.fields[0], "update_mask");
  EXPECT_EQ(d.fields.size(), 17u);  // the count, then the first 16 paths
  EXPECT_THAT(policies_.updates(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, UpdatePolicyPassesTheMaskedFieldsAndTheEtag) {
  v1::SyncPolicy response;
  v1::UpdateSyncPolicyRequest r = ValidUpdate({"labels", "keep_versions", "labels"});
  ASSERT_TRUE(UpdatePolicy(r, &response).ok());
  r = ValidUpdate({"*"});
  r.mutable_sync_policy()->set_etag(policies::PolicyEtag(7));
  ASSERT_TRUE(UpdatePolicy(r, &response).ok());
  r = ValidUpdate({"paused", "*"});
  ASSERT_TRUE(UpdatePolicy(r, &response).ok());

  const auto updates = policies_.updates();
  ASSERT_EQ(updates.size(), 3u);
  EXPECT_EQ(updates[0].policy.name(), kPolicyName);
  // Each field once, in the order of kUpdatablePolicyFields.
  EXPECT_THAT(updates[0].paths, ElementsAre("keep_versions", "labels"));
  EXPECT_EQ(updates[0].expected_revision, std::nullopt);
  EXPECT_THAT(updates[1].paths,
              ElementsAre("destination_regions", "keep_versions", "paused", "labels"));
  EXPECT_EQ(updates[1].expected_revision, 7);
  EXPECT_THAT(updates[2].paths,
              ElementsAre("destination_regions", "keep_versions", "paused", "labels"));
}

TEST_F(BlueprintSyncServiceTest, UpdatePolicyChecksOnlyTheFieldsItChanges) {
  v1::SyncPolicy response;
  // Not in the mask: not applied, so not checked.
  v1::UpdateSyncPolicyRequest r = ValidUpdate({"paused"});
  r.mutable_sync_policy()->set_keep_versions(500);
  r.mutable_sync_policy()->add_destination_regions("mars-north-1");
  (*r.mutable_sync_policy()->mutable_labels())["-bad"] = "v";
  ASSERT_TRUE(UpdatePolicy(r, &response).ok());

  r.mutable_update_mask()->add_paths("keep_versions");
  ExpectViolations(UpdatePolicy(r, &response), "KEEP_VERSIONS_OUT_OF_RANGE", {"keep_versions"});
  r = ValidUpdate({"*"});
  r.mutable_sync_policy()->add_destination_regions("ap-shanghai");
  r.mutable_sync_policy()->add_destination_regions("mars-north-1");
  (*r.mutable_sync_policy()->mutable_labels())["-bad"] = "v";
  ExpectViolations(UpdatePolicy(r, &response), "INVALID_REQUEST",
                   {"destination_regions[2]", "destination_regions[3]", "labels[\"-bad\"]"});
  r = ValidUpdate({"destination_regions"});
  r.mutable_sync_policy()->clear_destination_regions();
  ExpectViolations(UpdatePolicy(r, &response), "DESTINATIONS_REQUIRED", {"destination_regions"});
  EXPECT_EQ(policies_.updates().size(), 1u);
}

TEST_F(BlueprintSyncServiceTest, UpdatePolicyDestinationsAreCheckedAgainstTheStoredSourceByTheApi) {
  // The request's source_region is not the policy's (it may be anything,
  // or nothing): the handler leaves "not the source, same side of the
  // border" to the API, which knows the stored source.
  policies_.set_policy_answer(
      jobs::InvalidField("destination_regions", "DESTINATION_SAME_AS_SOURCE",
                         "destination_regions[0] \"ap-guangzhou\" is the source region"));
  v1::UpdateSyncPolicyRequest r = ValidUpdate({"destination_regions"});
  r.mutable_sync_policy()->clear_source_region();
  r.mutable_sync_policy()->clear_destination_regions();
  r.mutable_sync_policy()->add_destination_regions("ap-guangzhou");
  v1::SyncPolicy response;
  const grpc::Status s = UpdatePolicy(r, &response);
  ExpectViolations(s, "DESTINATION_SAME_AS_SOURCE", {"destination_regions"});
  ASSERT_EQ(policies_.updates().size(), 1u);
  EXPECT_THAT(policies_.updates()[0].policy.destination_regions(), ElementsAre("ap-guangzhou"));
}

TEST_F(BlueprintSyncServiceTest, PolicyEtagsAreParsedAndAStaleOneIsAborted) {
  v1::SyncPolicy response;
  v1::UpdateSyncPolicyRequest r = ValidUpdate({"paused"});
  r.mutable_sync_policy()->set_etag("not an etag");
  for (const grpc::Status& s :
       {UpdatePolicy(r, &response), DeletePolicy(DeleteRequest(kPolicyName, "not an etag"))}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(Decode(s).fields, ElementsAre("etag"));
  }
  EXPECT_EQ(policies_.calls(), 0u);

  policies_.set_policy_answer(absl::AbortedError("policy syncPolicies/web-golden changed"));
  policies_.set_delete_answer(absl::AbortedError("policy syncPolicies/web-golden changed"));
  r.mutable_sync_policy()->set_etag(policies::PolicyEtag(3));
  grpc::Status s = UpdatePolicy(r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Decode(s).reason, "ABORTED");
  s = DeletePolicy(DeleteRequest(kPolicyName, policies::PolicyEtag(3)));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Decode(s).reason, "ABORTED");
  ASSERT_EQ(policies_.updates().size(), 1u);
  EXPECT_EQ(policies_.updates()[0].expected_revision, 3);
}

// -- DeleteSyncPolicy --

TEST_F(BlueprintSyncServiceTest, DeletePolicyPassesTheEtagAndDeleteCopies) {
  ASSERT_TRUE(DeletePolicy(DeleteRequest(kPolicyName)).ok());
  ASSERT_TRUE(DeletePolicy(DeleteRequest(kPolicyName, policies::PolicyEtag(4), true)).ok());
  const auto deletes = policies_.deletes();
  ASSERT_EQ(deletes.size(), 2u);
  EXPECT_EQ(deletes[0].name, kPolicyName);
  EXPECT_EQ(deletes[0].expected_revision, std::nullopt);
  EXPECT_FALSE(deletes[0].delete_copies);
  EXPECT_EQ(deletes[1].expected_revision, 4);
  EXPECT_TRUE(deletes[1].delete_copies);

  policies_.set_delete_answer(absl::NotFoundError("policy syncPolicies/web-golden not found"));
  const grpc::Status s = DeletePolicy(DeleteRequest(kPolicyName));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

// -- ListSyncPolicies --

TEST_F(BlueprintSyncServiceTest, ListPoliciesPageSizeAsListSyncJobs) {
  v1::ListSyncPoliciesResponse response;
  v1::ListSyncPoliciesRequest r;
  r.set_page_size(-1);
  ExpectViolations(ListPolicies(r, &response), "NEGATIVE_PAGE_SIZE", {"page_size"});
  for (const auto& [asked, used] :
       std::vector<std::pair<int, int>>{{0, 50}, {7, 7}, {5000, 1000}}) {
    r.set_page_size(asked);
    ASSERT_TRUE(ListPolicies(r, &response).ok());
    EXPECT_EQ(policies_.lists().back().page_size, used) << asked;
  }
}

TEST_F(BlueprintSyncServiceTest, ListPoliciesFilterReachesTheQuery) {
  v1::ListSyncPoliciesRequest r;
  r.set_filter(
      "in_sync = false AND paused = TRUE and source_region = \"ap-guangzhou\" AND labels.team = "
      "web AND labels.example.com/tier = front");
  v1::ListSyncPoliciesResponse response;
  const grpc::Status s = ListPolicies(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto lists = policies_.lists();
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].in_sync, false);
  EXPECT_EQ(lists[0].paused, true);
  EXPECT_EQ(lists[0].source_region, "ap-guangzhou");
  EXPECT_THAT(lists[0].labels, ElementsAre(Pair("example.com/tier", "front"), Pair("team", "web")));
  EXPECT_EQ(lists[0].after_name, "");

  r.set_filter("");
  ASSERT_TRUE(ListPolicies(r, &response).ok());
  const policies::PolicyQuery all = policies_.lists().back();
  EXPECT_EQ(all.in_sync, std::nullopt);
  EXPECT_EQ(all.paused, std::nullopt);
  EXPECT_EQ(all.source_region, std::nullopt);
  EXPECT_THAT(all.labels, IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, ListPoliciesRejectsBadFiltersNamingTheRule) {
  for (const std::string& filter : {
           std::string("state = RUNNING"),  // a job field
           std::string("in_sync = maybe"),
           std::string("paused != true"),
           std::string("in_sync = true AND in_sync = false"),
           std::string("labels.-team = web"),
           std::string("in_sync = true OR paused = true"),
           std::string("in_sync"),
           std::string("source_region = \"ap-guangzhou"),
           std::string(2000, 'x'),
       }) {
    SCOPED_TRACE(filter);
    v1::ListSyncPoliciesRequest r;
    r.set_filter(filter);
    v1::ListSyncPoliciesResponse response;
    const grpc::Status s = ListPolicies(r, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    const Details d = Decode(s);
    EXPECT_THAT(d.reason, AnyOf("INVALID_FILTER", "FILTER_TOO_LONG"));
    EXPECT_THAT(d.fields, ElementsAre("filter"));
    EXPECT_LT(s.error_message().size(), 600u);
  }
  v1::ListSyncPoliciesRequest r;
  r.set_filter("colour = blue");
  v1::ListSyncPoliciesResponse response;
  // The reminder names the policy fields, not the job ones.
  EXPECT_THAT(ListPolicies(r, &response).error_message(),
              AllOf(HasSubstr("colour"), HasSubstr("in_sync"), Not(HasSubstr("blueprint_id"))));
  EXPECT_THAT(policies_.lists(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, ListPoliciesPagesWithTokensTiedToTheFilter) {
  policies::PolicyListPage first;
  first.policies = {Policy("syncPolicies/alpha"), Policy("syncPolicies/bravo")};
  first.next_after = "syncPolicies/bravo";
  policies_.set_page_answer(first);
  v1::ListSyncPoliciesRequest r;
  r.set_filter("labels.team = web");
  r.set_page_size(2);
  v1::ListSyncPoliciesResponse response;
  grpc::Status s = ListPolicies(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.sync_policies_size(), 2);
  EXPECT_EQ(response.sync_policies(1).name(), "syncPolicies/bravo");
  ASSERT_FALSE(response.next_page_token().empty());

  policies::PolicyListPage last;
  last.policies = {Policy("syncPolicies/charlie")};
  policies_.set_page_answer(last);
  r.set_page_token(response.next_page_token());
  v1::ListSyncPoliciesResponse second;
  s = ListPolicies(r, &second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(second.sync_policies_size(), 1);
  EXPECT_EQ(second.next_page_token(), "");
  const auto lists = policies_.lists();
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[1].after_name, "syncPolicies/bravo");
  EXPECT_THAT(lists[1].labels, ElementsAre(Pair("team", "web")));

  // The same token with another filter, a job page token, or garbage:
  // refused before the service.
  r.set_filter("labels.team = ops");
  ExpectViolations(ListPolicies(r, &second), "PAGE_TOKEN_FILTER_MISMATCH", {"page_token"});
  r.set_filter("labels.team = web");
  r.set_page_token("garbage!");
  ExpectViolations(ListPolicies(r, &second), "INVALID_PAGE_TOKEN", {"page_token"});
  v1::ListSyncJobsRequest jobs_request;
  r.set_page_token(MakePageToken(18, jobs_request));
  r.set_filter("");
  ExpectViolations(ListPolicies(r, &second), "INVALID_PAGE_TOKEN", {"page_token"});
  EXPECT_EQ(policies_.lists().size(), 2u);
}

TEST_F(BlueprintSyncServiceTest, ListPoliciesStoreFailureIsUnavailable) {
  policies_.set_page_answer(absl::InternalError("disk I/O error"));
  v1::ListSyncPoliciesResponse response;
  const grpc::Status s = ListPolicies(v1::ListSyncPoliciesRequest(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "could not read policies: disk I/O error");
}

// -- Authorization and the access log --

TEST_F(AuthorizedServiceTest, PolicyMethodsAreUnauthenticatedWithoutAClientCertificate) {
  for (const bool enabled : {true, false}) {
    policies_enabled_ = enabled;
    ServiceOptions options;
    options.authz = &policy_;
    Start(options);
    for (const bool valid : {true, false}) {
      SCOPED_TRACE(absl::StrCat(enabled ? "enabled" : "disabled", valid ? ", valid" : ", invalid"));
      v1::SyncPolicy policy;
      v1::ListSyncPoliciesResponse page;
      v1::ListSyncPoliciesRequest list;
      if (!valid) list.set_filter("colour = blue");
      const std::string name = valid ? kPolicyName : "nope";
      v1::UpdateSyncPolicyRequest update = ValidUpdate({valid ? "paused" : "source_region"});
      for (const grpc::Status& s :
           {CreatePolicy(ValidCreate(valid ? "web-golden" : "x"), &policy),
            GetPolicy(name, &policy), ListPolicies(list, &page), UpdatePolicy(update, &policy),
            DeletePolicy(DeleteRequest(name))}) {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
      }
    }
  }
  EXPECT_EQ(policies_.calls(), 0u);
}

TEST_F(IdentifiedServiceTest, AWriterMayChangePoliciesAndIsRecordedAsTheirCreator) {
  ConnectAs("dns:writer.test");
  v1::SyncPolicy policy;
  v1::ListSyncPoliciesResponse page;
  for (const grpc::Status& s :
       {CreatePolicy(ValidCreate(), &policy), GetPolicy(kPolicyName, &policy),
        ListPolicies(v1::ListSyncPoliciesRequest(), &page),
        UpdatePolicy(ValidUpdate({"paused"}), &policy), DeletePolicy(DeleteRequest(kPolicyName))}) {
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_EQ(policies_.creates().size(), 1u);
  EXPECT_EQ(policies_.creates()[0].creator, "dns:writer.test");
  EXPECT_EQ(policies_.calls(), 5u);
}

TEST_F(IdentifiedServiceTest, AReaderMayReadPoliciesButNotChangeThem) {
  ConnectAs("uri:spiffe://test/ns/ops/sa/reader");
  v1::SyncPolicy policy;
  v1::ListSyncPoliciesResponse page;
  ASSERT_TRUE(GetPolicy(kPolicyName, &policy).ok());
  ASSERT_TRUE(ListPolicies(v1::ListSyncPoliciesRequest(), &page).ok());
  v1::CreateSyncPolicyRequest preview = ValidCreate();
  preview.set_validate_only(true);
  const std::vector<std::pair<std::string, grpc::Status>> calls = {
      {"CreateSyncPolicy", CreatePolicy(ValidCreate(), &policy)},
      {"CreateSyncPolicy", CreatePolicy(preview, &policy)},
      {"UpdateSyncPolicy", UpdatePolicy(ValidUpdate({"paused"}), &policy)},
      {"DeleteSyncPolicy", DeletePolicy(DeleteRequest(kPolicyName))},
  };
  for (const auto& [method, s] : calls) {
    SCOPED_TRACE(method);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(),
                AllOf(HasSubstr("caller uri:spiffe://test/ns/ops/sa/reader may not call " + method),
                      HasSubstr("it is a reader")));
  }
  EXPECT_THAT(policies_.creates(), IsEmpty());
  EXPECT_THAT(policies_.updates(), IsEmpty());
  EXPECT_THAT(policies_.deletes(), IsEmpty());
}

TEST_F(AccessLogTest, PolicyChangesNameThePolicyAlsoWhenTheyFail) {
  ConnectAs("dns:writer.test");
  v1::SyncPolicy policy;
  ASSERT_TRUE(CreatePolicy(ValidCreate(), &policy).ok());
  EXPECT_THAT(
      LastLine(),
      AllOf(HasSubstr(R"("grpc.method":"CreateSyncPolicy")"), HasSubstr(R"("grpc.code":"OK")"),
            HasSubstr(R"("caller":"dns:writer.test")"),
            HasSubstr(R"("policy":"syncPolicies/web-golden")"), Not(HasSubstr(R"("job")"))));
  policies_.set_delete_answer(absl::AbortedError("changed"));
  EXPECT_EQ(DeletePolicy(DeleteRequest(kPolicyName, policies::PolicyEtag(2))).error_code(),
            grpc::StatusCode::ABORTED);
  EXPECT_THAT(LastLine(), AllOf(HasSubstr(R"("grpc.method":"DeleteSyncPolicy")"),
                                HasSubstr(R"("grpc.code":"ABORTED")"),
                                HasSubstr(R"("policy":"syncPolicies/web-golden")")));
  v1::UpdateSyncPolicyRequest update = ValidUpdate({"paused"});
  ASSERT_TRUE(UpdatePolicy(update, &policy).ok());
  EXPECT_THAT(LastLine(), AllOf(HasSubstr(R"("grpc.method":"UpdateSyncPolicy")"),
                                HasSubstr(R"("policy":"syncPolicies/web-golden")")));
  // A successful read is quiet (debug), like GetSyncJob's.
  const size_t lines = Lines().size();
  ASSERT_TRUE(GetPolicy(kPolicyName, &policy).ok());
  EXPECT_EQ(Lines().size(), lines);
}

}  // namespace
}  // namespace blueprintsync::server
