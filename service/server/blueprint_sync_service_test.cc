// BlueprintSyncService against a fake JobService, served by a real
// in-process gRPC server (callback handlers only run inside one): request
// validation, error mapping, paging, authorization, and the watch stream's
// order and endings when answers arrive inline or from other threads.
#include "service/server/blueprint_sync_service.h"

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
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
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_state.h"
#include "service/server/authz.h"
#include "service/server/grpc_errors.h"
#include "service/tencent/api_error.h"
#include "service/tencent/regions.h"

namespace blueprintsync::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

// Long enough never to fire on a loaded machine; only a hang reaches it.
constexpr absl::Duration kWait = absl::Seconds(30);

constexpr char kJobName[] = "syncJobs/3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";

// A JobService whose answers the test chooses. Like the engine, it runs
// every callback under its own lock, so a handler that called back into the
// service from a callback would deadlock here, and Unwatch waits for a
// running watch callback.
class FakeJobService final : public jobs::JobService {
 public:
  struct SubmitCall {
    v1::SyncBlueprintRequest request;
    absl::Time reply_by;
  };

  // Submit and GetJob answer inline with this; unset: they hold the callback
  // until AnswerHeldJob.
  void set_job_answer(std::optional<absl::StatusOr<v1::SyncJob>> answer) {
    absl::MutexLock lock(&mu_);
    job_answer_ = std::move(answer);
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

  void Submit(const v1::SyncBlueprintRequest& request, absl::Time reply_by,
              JobCallback done) override {
    absl::MutexLock lock(&mu_);
    submits_.push_back({request, reply_by});
    AnswerOrHoldLocked(std::move(done));
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
      callback(version);
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
    it->second(std::move(version));
    if (ends) watchers_.erase(it);
    return true;
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
  absl::StatusOr<jobs::JobPage> page_answer_ ABSL_GUARDED_BY(mu_) = jobs::JobPage{};
  std::vector<absl::StatusOr<v1::SyncJob>> watch_start_ ABSL_GUARDED_BY(mu_);
  std::deque<JobCallback> held_ ABSL_GUARDED_BY(mu_);
  std::vector<SubmitCall> submits_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> gets_ ABSL_GUARDED_BY(mu_);
  std::vector<jobs::JobQuery> lists_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> watched_names_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, WatchCallback> watchers_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> started_watches_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> unwatched_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watch_id_ ABSL_GUARDED_BY(mu_) = 1;
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
  void Start(ServiceOptions options) {
    stub_.reset();
    if (server_ != nullptr) {
      server_->Shutdown();
      server_.reset();
    }
    service_ = std::make_unique<BlueprintSyncService>(options, &jobs_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    stub_ = v1::BlueprintSync::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  // Every call gets a deadline so a handler that never finishes fails the
  // test instead of hanging it.
  static void WithDeadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
  }

  grpc::Status Sync(const v1::SyncBlueprintRequest& request, v1::SyncJob* response) {
    grpc::ClientContext ctx;
    WithDeadline(ctx);
    return stub_->SyncBlueprint(&ctx, request, response);
  }

  grpc::Status Get(const std::string& name, v1::SyncJob* response) {
    grpc::ClientContext ctx;
    WithDeadline(ctx);
    v1::GetSyncJobRequest request;
    request.set_name(name);
    return stub_->GetSyncJob(&ctx, request, response);
  }

  grpc::Status List(const v1::ListSyncJobsRequest& request, v1::ListSyncJobsResponse* response) {
    grpc::ClientContext ctx;
    WithDeadline(ctx);
    return stub_->ListSyncJobs(&ctx, request, response);
  }

  // Reads the whole stream: the versions' markers (upstream_request_id) and
  // the final status.
  grpc::Status WatchAll(const std::string& name, std::vector<std::string>* markers) {
    grpc::ClientContext ctx;
    WithDeadline(ctx);
    v1::WatchSyncJobRequest request;
    request.set_name(name);
    auto reader = stub_->WatchSyncJob(&ctx, request);
    v1::SyncJob job;
    while (reader->Read(&job)) markers->push_back(job.upstream_request_id());
    return reader->Finish();
  }

  FakeJobService jobs_;
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

TEST_F(BlueprintSyncServiceTest, ValidateOnlyAnswersTheJobItWouldBeAndRecordsNothing) {
  v1::SyncBlueprintRequest r = ValidSync();
  r.set_request_id("3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C");
  r.set_validate_only(true);
  v1::SyncJob response;
  const grpc::Status s = Sync(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.state(), v1::SyncJob::STATE_UNSPECIFIED);
  EXPECT_EQ(response.name(), "");
  EXPECT_EQ(response.source_region(), "ap-guangzhou");
  EXPECT_EQ(response.blueprint_id(), "lhbp-ls883feh");
  EXPECT_EQ(response.request_id(), "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  ASSERT_EQ(response.destinations_size(), 2);
  EXPECT_EQ(response.destinations(0).region(), "ap-shanghai");
  EXPECT_EQ(response.destinations(0).state(), v1::Destination::PENDING);
  EXPECT_EQ(response.destinations(1).region(), "ap-beijing");
  EXPECT_THAT(jobs_.submits(), IsEmpty());
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
  EXPECT_EQ(submits[0].request.request_id(), "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_EQ(submits[0].request.source_region(), "ap-guangzhou");
  EXPECT_THAT(submits[0].request.destination_regions(), ElementsAre("ap-shanghai", "ap-beijing"));
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
  WithDeadline(ctx);
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
  EXPECT_EQ(Decode(s).reason, "UNAVAILABLE");
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
  }
  EXPECT_THAT(jobs_.submits(), IsEmpty());
  EXPECT_THAT(jobs_.gets(), IsEmpty());
  EXPECT_THAT(jobs_.lists(), IsEmpty());
  EXPECT_THAT(jobs_.watched_names(), IsEmpty());
}

// ---- WatchSyncJob ----

TEST_F(BlueprintSyncServiceTest, WatchRejectsABadNameBeforeTheService) {
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll("syncJobs/x", &markers);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Decode(s).reason, "NAME_MALFORMED");
  EXPECT_THAT(markers, IsEmpty());
  EXPECT_THAT(jobs_.watched_names(), IsEmpty());
}

TEST_F(BlueprintSyncServiceTest, WatchStreamsVersionsInOrderThenOkAfterTheTerminalOne) {
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
  EXPECT_THAT(markers, ElementsAre("v0", "v1", "v2", "v3"));
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

TEST_F(BlueprintSyncServiceTest, WatchEndedByTheServiceEndsWithItsStatusAfterQueuedVersions) {
  jobs_.set_watch_start({Job(v1::SyncJob::QUEUED, "v0")});
  std::thread pusher([this] {
    const std::optional<uint64_t> id = jobs_.WaitForWatch();
    ASSERT_TRUE(id.has_value());
    // Back to back, so the end arrives while versions still wait to be written.
    EXPECT_TRUE(jobs_.Push(*id, Job(v1::SyncJob::RUNNING, "v1")));
    EXPECT_TRUE(jobs_.Push(*id, Job(v1::SyncJob::RUNNING, "v2")));
    EXPECT_TRUE(jobs_.Push(
        *id, absl::UnavailableError("the server is shutting down; watch again to continue")));
  });
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll(kJobName, &markers);
  pusher.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "the server is shutting down; watch again to continue");
  // Ending a stream that has sent versions has always been code and message only.
  EXPECT_EQ(s.error_details(), "");
  EXPECT_THAT(markers, ElementsAre("v0", "v1", "v2"));
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

TEST_F(BlueprintSyncServiceTest, WatchEndedInsideWatchJobStillSendsTheVersionsBeforeTheEnd) {
  // All of it before the first write can complete, so the end always finds
  // versions waiting.
  jobs_.set_watch_start(
      {Job(v1::SyncJob::QUEUED, "v0"), Job(v1::SyncJob::RUNNING, "v1"),
       Job(v1::SyncJob::RUNNING, "v2"),
       absl::UnavailableError("the server is shutting down; watch again to continue")});
  std::vector<std::string> markers;
  const grpc::Status s = WatchAll(kJobName, &markers);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "the server is shutting down; watch again to continue");
  EXPECT_THAT(markers, ElementsAre("v0", "v1", "v2"));
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

TEST_F(BlueprintSyncServiceTest, WatchCancelledByTheClientUnwatchesWhileVersionsKeepComing) {
  jobs_.set_watch_start({Job(v1::SyncJob::QUEUED, "v0")});
  grpc::ClientContext ctx;
  WithDeadline(ctx);
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

TEST_F(BlueprintSyncServiceTest, WatchKeepsOrderWhenVersionsOutpaceASlowReader) {
  constexpr int kVersions = 2000;
  jobs_.set_watch_start({Job(v1::SyncJob::QUEUED, "0")});
  grpc::ClientContext ctx;
  WithDeadline(ctx);
  v1::WatchSyncJobRequest request;
  request.set_name(kJobName);
  auto reader = stub_->WatchSyncJob(&ctx, request);
  const std::optional<uint64_t> id = jobs_.WaitForWatch();
  ASSERT_TRUE(id.has_value());

  absl::Notification all_pushed;
  std::thread pusher([&, watch = *id] {
    for (int i = 1; i < kVersions; ++i) {
      EXPECT_TRUE(jobs_.Push(watch, Job(v1::SyncJob::RUNNING, absl::StrCat(i))));
    }
    EXPECT_TRUE(jobs_.Push(watch, Job(v1::SyncJob::SUCCEEDED, absl::StrCat(kVersions))));
    all_pushed.Notify();
  });
  // A few reads while versions are still arriving, then none until every
  // version is queued behind the stream.
  std::vector<std::string> markers;
  v1::SyncJob job;
  for (int i = 0; i < 10 && reader->Read(&job); ++i) markers.push_back(job.upstream_request_id());
  ASSERT_TRUE(all_pushed.WaitForNotificationWithTimeout(kWait));
  while (reader->Read(&job)) markers.push_back(job.upstream_request_id());
  pusher.join();
  const grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(markers.size(), static_cast<size_t>(kVersions + 1));
  for (int i = 0; i <= kVersions; ++i) EXPECT_EQ(markers[i], absl::StrCat(i)) << i;
  EXPECT_TRUE(jobs_.WaitForUnwatch(*id));
}

}  // namespace
}  // namespace blueprintsync::server
