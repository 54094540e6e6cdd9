// Tests of JobEngine against a scriptable in-memory Lighthouse fake and the
// memory job store. The engine's executor runs on real time, so the options
// use millisecond retry/grace intervals and an hour-long poll interval: the
// tests drive tracker cycles themselves with PollOnceForTest() and wait for
// asynchronous effects with bounded polling (WaitFor).
#include "service/jobs/job_engine.h"
#include "service/jobs/submitter.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/log.h"
#include "service/common/testing/fake_clock.h"
#include "service/common/testing/store_test_util.h"
#include "service/jobs/job_state.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_table.h"
#include "service/jobs/sqlite_sync_counter_test_util.h"
#include "service/jobs/tracking_pace.h"
#include "service/tencent/api_error.h"
#include "service/tencent/testing/fake_lighthouse_client.h"

namespace blueprintsync::jobs {
namespace {

using tencent::ApiError;
using tencent::Blueprint;
using tencent::CallOptions;
using tencent::DescribeBlueprintsRequest;
using tencent::DescribeBlueprintsResponse;
using tencent::ErrorKind;
using tencent::SyncBlueprintRequest;
using tencent::SyncBlueprintResponse;
using FakeLighthouse = ::blueprintsync::testing::FakeLighthouseClient;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr char kSrc[] = "ap-guangzhou";
constexpr char kBp[] = "lhbp-src00001";
constexpr char kBp2[] = "lhbp-src00002";
constexpr char kImageName[] = "golden-image";

absl::Status Upstream(ErrorKind kind, const std::string& code,
                      const std::string& request_id = "req-scripted") {
  ApiError e;
  e.kind = kind;
  e.code = code;
  e.message = "scripted failure";
  e.request_id = request_id;
  e.action = "SyncBlueprint";
  return tencent::MakeStatus(e);
}

std::string TencentTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time end = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > end) return pred();
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

Blueprint MakeBlueprint(const std::string& id, const std::string& name, const std::string& state,
                        absl::Time created) {
  Blueprint b;
  b.blueprint_id = id;
  b.blueprint_name = name;
  b.blueprint_state = state;
  b.blueprint_type = "PRIVATE";
  b.created_time = TencentTime(created);
  return b;
}

// A change feed the test drives: it reports only what the test tells it,
// until destroyed (`unregister`).
class ScriptedFeed final : public JobChangeFeed {
 public:
  explicit ScriptedFeed(std::function<void()> unregister) : unregister_(std::move(unregister)) {}
  ~ScriptedFeed() override { unregister_(); }
  absl::Status status() const override { return absl::OkStatus(); }

 private:
  std::function<void()> unregister_;
};

// Delegates to a memory store; UpdateJob can be made to fail. With
// `with_feed` set (before engines start), OpenChangeFeed gives each reader a
// scripted feed: it reports `resync` at once, as a feed does once it
// listens, and then only what Notify says.
class FlakyStore final : public JobStore {
 public:
  FlakyStore() : next_(MakeMemoryJobStore()) {}
  explicit FlakyStore(std::unique_ptr<JobStore> next) : next_(std::move(next)) {}
  std::atomic<bool> fail_updates{false};
  std::atomic<int> failed_updates{0};
  // Runs before each update reaches the store (set before the engine starts).
  std::function<void(const JobRecord&)> before_update;
  bool with_feed = false;
  std::atomic<int> full_reads{0};  // ListUnfinishedJobs calls that returned
  std::atomic<int> job_reads{0};   // GetJob calls

  std::unique_ptr<JobChangeFeed> OpenChangeFeed(
      std::function<void(JobChanges)> on_changes) override {
    if (!with_feed) return nullptr;
    on_changes(JobChanges{{}, /*resync=*/true});
    absl::MutexLock lock(&feed_mu_);
    const int id = next_reader_++;
    readers_[id] = std::move(on_changes);
    return std::make_unique<ScriptedFeed>([this, id] {
      absl::MutexLock unregister(&feed_mu_);
      readers_.erase(id);
    });
  }
  // Hands `changes` to every reader's feed.
  void Notify(const JobChanges& changes) {
    absl::MutexLock lock(&feed_mu_);
    for (const auto& [id, reader] : readers_) reader(changes);
  }
  int feed_readers() {
    absl::MutexLock lock(&feed_mu_);
    return static_cast<int>(readers_.size());
  }

  absl::StatusOr<CreateJobResult> CreateJob(const JobRecord& r) override {
    return next_->CreateJob(r);
  }
  absl::StatusOr<CreateJobResult> CreateJobSyncLater(const JobRecord& r) override {
    return next_->CreateJobSyncLater(r);
  }
  absl::Status Sync() override { return next_->Sync(); }
  absl::StatusOr<JobRecord> GetJob(const std::string& name) override {
    ++job_reads;
    return next_->GetJob(name);
  }
  absl::Status UpdateJob(const JobRecord& r) override {
    if (before_update) before_update(r);
    if (fail_updates) {
      ++failed_updates;
      return absl::UnavailableError("disk full (scripted)");
    }
    return next_->UpdateJob(r);
  }
  absl::StatusOr<JobPage> ListJobs(const JobQuery& q) override { return next_->ListJobs(q); }
  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override {
    auto all = next_->ListUnfinishedJobs();
    ++full_reads;
    return all;
  }
  absl::Status DeleteJob(const std::string& name) override { return next_->DeleteJob(name); }
  absl::Status RequestCancel(const std::string& name) override {
    return next_->RequestCancel(name);
  }
  absl::StatusOr<int> DeleteFinishedJobs(absl::Time before, int limit) override {
    return next_->DeleteFinishedJobs(before, limit);
  }

 private:
  std::unique_ptr<JobStore> next_;
  absl::Mutex feed_mu_;
  int next_reader_ ABSL_GUARDED_BY(feed_mu_) = 0;
  std::map<int, std::function<void(JobChanges)>> readers_ ABSL_GUARDED_BY(feed_mu_);
};

// The engine's rule: no store or upstream call while the job table's lock is
// held (callers, watchers and metrics would wait on it). Every engine in
// these tests reaches the store and the fake upstream through these.
void ExpectTableUnlocked(const char* call) {
  EXPECT_FALSE(JobTableLockHeld()) << call << " called with the job table's lock held";
}

class LockCheckingStore final : public JobStore {
 public:
  explicit LockCheckingStore(JobStore* next) : next_(next) {}
  std::unique_ptr<JobChangeFeed> OpenChangeFeed(
      std::function<void(JobChanges)> on_changes) override {
    return next_->OpenChangeFeed(std::move(on_changes));
  }
  absl::StatusOr<CreateJobResult> CreateJob(const JobRecord& record) override {
    ExpectTableUnlocked("JobStore::CreateJob");
    return next_->CreateJob(record);
  }
  absl::StatusOr<CreateJobResult> CreateJobSyncLater(const JobRecord& record) override {
    ExpectTableUnlocked("JobStore::CreateJobSyncLater");
    return next_->CreateJobSyncLater(record);
  }
  absl::Status Sync() override {
    ExpectTableUnlocked("JobStore::Sync");
    return next_->Sync();
  }
  absl::StatusOr<JobRecord> GetJob(const std::string& name) override {
    ExpectTableUnlocked("JobStore::GetJob");
    return next_->GetJob(name);
  }
  absl::Status UpdateJob(const JobRecord& record) override {
    ExpectTableUnlocked("JobStore::UpdateJob");
    return next_->UpdateJob(record);
  }
  absl::StatusOr<JobPage> ListJobs(const JobQuery& query) override {
    ExpectTableUnlocked("JobStore::ListJobs");
    return next_->ListJobs(query);
  }
  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override {
    ExpectTableUnlocked("JobStore::ListUnfinishedJobs");
    return next_->ListUnfinishedJobs();
  }
  absl::Status DeleteJob(const std::string& name) override {
    ExpectTableUnlocked("JobStore::DeleteJob");
    return next_->DeleteJob(name);
  }
  absl::Status RequestCancel(const std::string& name) override {
    ExpectTableUnlocked("JobStore::RequestCancel");
    return next_->RequestCancel(name);
  }
  absl::StatusOr<int> DeleteFinishedJobs(absl::Time before, int limit) override {
    ExpectTableUnlocked("JobStore::DeleteFinishedJobs");
    return next_->DeleteFinishedJobs(before, limit);
  }
  void SetWriteFence(std::optional<int64_t> epoch) override { next_->SetWriteFence(epoch); }

 private:
  JobStore* const next_;
};

class LockCheckingClient final : public tencent::LighthouseClient {
 public:
  explicit LockCheckingClient(tencent::LighthouseClient* next) : next_(next) {}
  absl::StatusOr<tencent::SyncBlueprintResponse> SyncBlueprint(
      const tencent::SyncBlueprintRequest& request, const tencent::CallOptions& options) override {
    ExpectTableUnlocked("SyncBlueprint");
    return next_->SyncBlueprint(request, options);
  }
  absl::StatusOr<tencent::DescribeBlueprintsResponse> DescribeBlueprints(
      const tencent::DescribeBlueprintsRequest& request,
      const tencent::CallOptions& options) override {
    ExpectTableUnlocked("DescribeBlueprints");
    return next_->DescribeBlueprints(request, options);
  }
  absl::StatusOr<tencent::DescribeRegionsResponse> DescribeRegions(
      const std::string& region, const tencent::CallOptions& options) override {
    ExpectTableUnlocked("DescribeRegions");
    return next_->DescribeRegions(region, options);
  }
  absl::StatusOr<tencent::DeleteBlueprintsResponse> DeleteBlueprints(
      const tencent::DeleteBlueprintsRequest& request,
      const tencent::CallOptions& options) override {
    ExpectTableUnlocked("DeleteBlueprints");
    return next_->DeleteBlueprints(request, options);
  }

 private:
  tencent::LighthouseClient* const next_;
};

TEST(LockCheckingTest, SeesTheTableLock) {
  JobEngineOptions options;
  JobTable table(options);
  EXPECT_FALSE(JobTableLockHeld());
  table.Locked([](TableState&) { EXPECT_TRUE(JobTableLockHeld()); });
  EXPECT_FALSE(JobTableLockHeld());
}

// Collects the answers a SubmitCallback receives.
class Replies {
 public:
  JobService::JobCallback Callback() {
    return [this](absl::StatusOr<v1::SyncJob> r) {
      absl::MutexLock lock(&mu_);
      got_.push_back(std::move(r));
    };
  }
  // Callback() that also notes what `probe` says when the first answer
  // comes (noted()).
  JobService::JobCallback CallbackNoting(std::function<int()> probe) {
    return [this, probe = std::move(probe)](absl::StatusOr<v1::SyncJob> r) {
      int unset = -1;
      noted_.compare_exchange_strong(unset, probe());
      absl::MutexLock lock(&mu_);
      got_.push_back(std::move(r));
    };
  }
  int noted() const { return noted_.load(); }
  size_t count() const {
    absl::MutexLock lock(&mu_);
    return got_.size();
  }
  // The first answer; waits for it (fails the test on timeout).
  absl::StatusOr<v1::SyncJob> First(absl::Duration timeout = absl::Seconds(5)) const {
    EXPECT_TRUE(WaitFor([this] { return count() >= 1; }, timeout)) << "no answer from Submit";
    absl::MutexLock lock(&mu_);
    if (got_.empty()) return absl::DeadlineExceededError("no answer");
    return got_.front();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<absl::StatusOr<v1::SyncJob>> got_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> noted_{-1};
};

// Collects what a watcher sees (nullopt for the end of the watch at
// shutdown, Unavailable; any other error is kept apart).
class Seen {
 public:
  JobService::WatchCallback Callback() {
    return [this](absl::StatusOr<JobVersion> job) {
      absl::MutexLock lock(&mu_);
      if (job.ok()) {
        got_.push_back(**job);
      } else if (job.status().code() == absl::StatusCode::kUnavailable) {
        got_.push_back(std::nullopt);
      } else {
        error_ = job.status();
      }
    };
  }
  std::vector<std::optional<v1::SyncJob>> all() const {
    absl::MutexLock lock(&mu_);
    return got_;
  }
  size_t count() const {
    absl::MutexLock lock(&mu_);
    return got_.size();
  }
  absl::Status error() const {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::optional<v1::SyncJob>> got_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// JobService::GetJob, waited for.
absl::StatusOr<v1::SyncJob> Get(JobService& service, const std::string& name) {
  absl::Notification done;
  absl::StatusOr<v1::SyncJob> out;
  service.GetJob(name, [&](absl::StatusOr<v1::SyncJob> job) {
    out = std::move(job);
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(10))) {
    return absl::DeadlineExceededError("GetJob never answered");
  }
  return out;
}

// JobService::WatchJob, waiting for its first delivery (which may follow a
// store read): the error that ended the watch at once (then *id is 0, there
// is nothing left to unwatch), else OK.
absl::Status Watch(JobService& service, const std::string& name, uint64_t* id, Seen& seen) {
  *id = service.WatchJob(name, seen.Callback());
  const bool first = WaitFor([&] { return seen.count() > 0 || !seen.error().ok(); });
  if (!seen.error().ok()) {
    *id = 0;
    return seen.error();
  }
  return first ? absl::OkStatus() : absl::DeadlineExceededError("no first delivery");
}

NewJob Request(const std::string& src, const std::string& bp,
               const std::vector<std::string>& dests, const std::string& request_id = "") {
  NewJob job;
  v1::SyncBlueprintRequest& r = job.request;
  r.set_source_region(src);
  r.set_blueprint_id(bp);
  for (const auto& d : dests) r.add_destination_regions(d);
  r.set_request_id(request_id);
  job.creator = kAnonymousCreator;
  return job;
}

JobRecord MakeRecord(const std::string& src, const std::string& bp,
                     const std::vector<std::pair<std::string, std::string>>& dests,
                     JobRecord::SubmitPhase phase, v1::SyncJob::State state) {
  const absl::Time now = absl::Now();
  JobRecord rec;
  v1::SyncJob* job = rec.mutable_job();
  job->set_name(NewJobName());
  job->set_state(state);
  job->set_source_region(src);
  job->set_blueprint_id(bp);
  for (const auto& [region, id] : dests) {
    v1::Destination* d = job->add_destinations();
    d->set_region(region);
    d->set_blueprint_id(id);
    d->set_state(id.empty() ? v1::Destination::PENDING : v1::Destination::SYNCING);
  }
  *job->mutable_create_time() = ToProto(now - absl::Minutes(1));
  *job->mutable_update_time() = ToProto(now - absl::Minutes(1));
  *job->mutable_deadline() = ToProto(now + absl::Hours(6));
  rec.set_phase(phase);
  if (phase != JobRecord::NOT_SUBMITTED) {
    *rec.mutable_submit_attempt_time() = ToProto(now - absl::Seconds(2));
    rec.set_submit_attempts(1);
  }
  return rec;
}

JobEngineOptions FastOptions() {
  JobEngineOptions o;
  // Cycles are driven by PollOnceForTest: the tracker thread runs only its
  // first, since no amount of pending copies or wakes brings one sooner.
  o.poll_interval = absl::Hours(1);
  o.min_poll_interval = absl::Hours(1);
  o.workers = 4;
  o.retry_initial = absl::Milliseconds(5);
  o.retry_max = absl::Milliseconds(40);
  o.busy_retry_interval = absl::Milliseconds(5);
  o.reconcile_grace = absl::Milliseconds(5);
  o.reconcile_attempts = 3;
  return o;
}

class JobEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { log::SetLevel(log::Level::kError); }
  static void TearDownTestSuite() { log::SetLevel(log::Level::kInfo); }

  JobEngineTest() : store_(MakeMemoryJobStore()) {}
  ~JobEngineTest() override {
    fake_.ReleaseSync();
    engine_.reset();
  }

  void StartEngine(JobEngineOptions options = FastOptions(), Clock* clock = SystemClock::Default(),
                   JobStore* store = nullptr) {
    checked_store_ = std::make_unique<LockCheckingStore>(store ? store : store_.get());
    engine_ = std::make_unique<JobEngine>(options, checked_store_.get(), &checked_fake_, clock);
    ASSERT_TRUE(engine_->Start().ok());
    // The tracker runs one cycle as soon as it starts; let it finish so that
    // call counts taken afterwards belong to the test's own cycles.
    ASSERT_TRUE(WaitFor([this] { return engine_->stats().poll_cycles >= 1; }));
  }

  v1::SyncJob Job(const std::string& name) {
    auto job = Get(*engine_, name);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::SyncJob();
  }
  JobRecord Stored(const std::string& name, JobStore* store = nullptr) {
    auto rec = (store ? store : store_.get())->GetJob(name);
    EXPECT_TRUE(rec.ok()) << rec.status();
    return rec.ok() ? *rec : JobRecord();
  }
  bool WaitForState(const std::string& name, v1::SyncJob::State state) {
    const bool ok = WaitFor([&] {
      auto job = Get(*engine_, name);
      return job.ok() && job->state() == state;
    });
    if (!ok) {
      ADD_FAILURE() << name << " never reached " << v1::SyncJob::State_Name(state)
                    << "; now: " << Job(name).DebugString();
    }
    return ok;
  }
  bool WaitForIds(const std::string& name) {
    return WaitFor([&] {
      auto job = Get(*engine_, name);
      if (!job.ok() || job->destinations().empty()) return false;
      for (const auto& d : job->destinations()) {
        if (d.blueprint_id().empty()) return false;
      }
      return true;
    });
  }

  std::unique_ptr<JobStore> store_;
  FlakyStore flaky_;
  FakeLighthouse fake_;
  LockCheckingClient checked_fake_{&fake_};
  std::unique_ptr<LockCheckingStore> checked_store_;
  std::unique_ptr<JobEngine> engine_;
};

// ---------------------------------------------------------------------------
// Submission

TEST_F(JobEngineTest, SubmitSuccessAnswersRunningWithIdsAfterRecordingSubmitting) {
  StartEngine();
  std::vector<JobRecord> seen_during_call;
  fake_.ScriptSync([&](const SyncBlueprintRequest& req, const CallOptions&) {
    // The durable SUBMITTING record must exist before the call goes out.
    auto unfinished = store_->ListUnfinishedJobs();
    if (unfinished.ok()) seen_during_call = *unfinished;
    SyncBlueprintResponse r;
    r.destinations = {{"ap-singapore", "lhbp-sg000001"}, {"ap-tokyo", "lhbp-tk000001"}};
    r.request_id = "req-sync-1";
    return r;
  });
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::RUNNING);
  EXPECT_TRUE(absl::StartsWith(job->name(), "syncJobs/"));
  EXPECT_EQ(job->source_region(), kSrc);
  EXPECT_EQ(job->blueprint_id(), kBp);
  EXPECT_EQ(job->upstream_request_id(), "req-sync-1");
  ASSERT_EQ(job->destinations_size(), 2);
  EXPECT_EQ(job->destinations(0).region(), "ap-singapore");
  EXPECT_EQ(job->destinations(0).blueprint_id(), "lhbp-sg000001");
  EXPECT_EQ(job->destinations(0).state(), v1::Destination::SYNCING);
  EXPECT_EQ(job->destinations(1).region(), "ap-tokyo");
  EXPECT_EQ(job->destinations(1).blueprint_id(), "lhbp-tk000001");
  EXPECT_EQ(job->destinations(1).state(), v1::Destination::SYNCING);
  EXPECT_TRUE(job->has_submit_time());
  EXPECT_TRUE(job->has_create_time());
  EXPECT_TRUE(job->has_deadline());

  ASSERT_EQ(seen_during_call.size(), 1u);
  EXPECT_EQ(seen_during_call[0].job().name(), job->name());
  EXPECT_EQ(seen_during_call[0].phase(), JobRecord::SUBMITTING);
  EXPECT_EQ(seen_during_call[0].submit_attempts(), 1);
  EXPECT_TRUE(seen_during_call[0].has_submit_attempt_time());

  const JobRecord stored = Stored(job->name());
  EXPECT_EQ(stored.phase(), JobRecord::SUBMITTED);
  EXPECT_EQ(stored.job().state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(stored.job().destinations(1).blueprint_id(), "lhbp-tk000001");

  const auto calls = fake_.sync_calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].request.region, kSrc);
  EXPECT_EQ(calls[0].request.blueprint_id, kBp);
  EXPECT_THAT(calls[0].request.destination_regions, ElementsAre("ap-singapore", "ap-tokyo"));
  EXPECT_EQ(engine_->stats().sync_calls, 1);
  EXPECT_EQ(engine_->stats().active_jobs, 1);
  EXPECT_EQ(replies.count(), 1u);
}

// The call executed, but the answer does not say where the second copy is:
// failing that destination would leave a paid copy untracked. The job is
// reconciled (the reconciler finds the copies upstream), like any unknown
// outcome, and nothing is recorded from the answer.
TEST_F(JobEngineTest, RegionMissingFromSyncAnswerIsReconciled) {
  StartEngine();
  SyncBlueprintResponse r;
  r.destinations = {{"ap-singapore", "lhbp-sg000001"}};
  fake_.ScriptSyncResult(r);
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(job->state_reason(), kReconcilingReason);
  for (const auto& d : job->destinations()) {
    EXPECT_EQ(d.state(), v1::Destination::PENDING) << d.region();
    EXPECT_TRUE(d.blueprint_id().empty()) << d.region();
  }
  EXPECT_EQ(Stored(job->name()).phase(), JobRecord::OUTCOME_UNKNOWN);
  EXPECT_EQ(fake_.sync_calls().size(), 1u);
}

TEST_F(JobEngineTest, RequestIdDeduplicatesSamePayloadAndRejectsDifferentOne) {
  StartEngine();
  const std::string rid = "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
  Replies first;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, rid), absl::InfiniteFuture(),
                  first.Callback());
  auto job = first.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->state(), v1::SyncJob::RUNNING);

  Replies again;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, rid), absl::InfiniteFuture(),
                  again.Callback());
  auto same = again.First();
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->name(), job->name());
  EXPECT_EQ(same->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(same->destinations(0).blueprint_id(), job->destinations(0).blueprint_id());

  Replies different;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}, rid), absl::InfiniteFuture(),
                  different.Callback());
  auto err = different.First();
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), absl::StatusCode::kInvalidArgument);
  auto rule = GetFieldRule(err.status());
  ASSERT_TRUE(rule.has_value());
  EXPECT_EQ(rule->field, "request_id");
  EXPECT_EQ(rule->rule, "REQUEST_ID_REUSED");
  EXPECT_THAT(std::string(err.status().message()), HasSubstr(job->name()));

  EXPECT_EQ(fake_.sync_count(), 1);
  EXPECT_EQ(engine_->stats().sync_calls, 1);
  EXPECT_EQ(engine_->stats().active_jobs, 1);
}

// An only_if_repeat submission (the handler's region table refused it)
// records nothing: without a job of that request_id it gets NoRepeatFound,
// with one it is answered as any repeat (same job, or REQUEST_ID_REUSED).
TEST_F(JobEngineTest, OnlyIfRepeatRecordsNothingAndAnswersARecordedJob) {
  StartEngine();
  const std::string rid = "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5d";
  jobs::NewJob probe = Request(kSrc, kBp, {"ap-singapore"}, rid);
  probe.only_if_repeat = true;
  Replies none;
  engine_->Submit(probe, absl::InfiniteFuture(), none.Callback());
  auto missing = none.First();
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(jobs::IsNoRepeatFound(missing.status())) << missing.status();
  EXPECT_EQ(fake_.sync_count(), 0);
  EXPECT_EQ(engine_->stats().active_jobs, 0);

  Replies first;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, rid), absl::InfiniteFuture(),
                  first.Callback());
  auto job = first.First();
  ASSERT_TRUE(job.ok()) << job.status();

  Replies repeat;
  engine_->Submit(probe, absl::InfiniteFuture(), repeat.Callback());
  auto same = repeat.First();
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->name(), job->name());

  jobs::NewJob other = Request(kSrc, kBp, {"ap-tokyo"}, rid);
  other.only_if_repeat = true;
  Replies different;
  engine_->Submit(other, absl::InfiniteFuture(), different.Callback());
  auto err = different.First();
  ASSERT_FALSE(err.ok());
  EXPECT_FALSE(jobs::IsNoRepeatFound(err.status()));
  EXPECT_EQ(err.status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(fake_.sync_count(), 1);
  EXPECT_EQ(engine_->stats().active_jobs, 1);
}

TEST_F(JobEngineTest, RequestIdOfRejectedJobGetsTheSameErrorAgain) {
  StartEngine();
  fake_.ScriptSyncError(
      Upstream(ErrorKind::kApi, "ResourceNotFound.PrivateBlueprintNotFound", "req-rejected"));
  const std::string rid = "0b1e2f3a-4b5c-4c1b-9a57-3f1c0a5e8f1e";
  Replies first;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, rid), absl::InfiniteFuture(),
                  first.Callback());
  auto err1 = first.First();
  ASSERT_FALSE(err1.ok());
  EXPECT_EQ(err1.status().code(), absl::StatusCode::kNotFound);

  Replies second;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, rid), absl::InfiniteFuture(),
                  second.Callback());
  auto err2 = second.First();
  ASSERT_FALSE(err2.ok());
  EXPECT_EQ(err2.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(err2.status().message(), err1.status().message());
  auto api = tencent::GetApiError(err2.status());
  ASSERT_TRUE(api.has_value());
  EXPECT_EQ(api->code, "ResourceNotFound.PrivateBlueprintNotFound");
  EXPECT_EQ(api->request_id, "req-rejected");
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(JobEngineTest, RejectedSubmissionFailsJobWithNotFound) {
  StartEngine();
  fake_.ScriptSyncError(
      Upstream(ErrorKind::kApi, "ResourceNotFound.PrivateBlueprintNotFound", "req-nf"));
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto err = replies.First();
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(tencent::GetApiError(err.status()).has_value());

  // The job was recorded before the call; find it in the store.
  auto page = store_->ListJobs(JobQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 1u);
  const JobRecord rec = page->records[0];
  EXPECT_EQ(rec.phase(), JobRecord::REJECTED);
  EXPECT_EQ(rec.job().state(), v1::SyncJob::FAILED);
  EXPECT_TRUE(rec.job().has_end_time());
  EXPECT_EQ(rec.job().error().code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(rec.job().error().tencent_code(), "ResourceNotFound.PrivateBlueprintNotFound");
  EXPECT_EQ(rec.job().error().tencent_request_id(), "req-nf");
  for (const auto& d : rec.job().destinations()) {
    EXPECT_EQ(d.state(), v1::Destination::FAILED) << d.region();
    EXPECT_EQ(d.error().tencent_code(), "ResourceNotFound.PrivateBlueprintNotFound");
  }
  EXPECT_EQ(Job(rec.job().name()).state(), v1::SyncJob::FAILED);
  EXPECT_EQ(engine_->stats().active_jobs, 0);
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(JobEngineTest, LocalErrorOtherThanDeadlineIsRejected) {
  StartEngine();
  ApiError e;
  e.kind = ErrorKind::kLocal;
  e.code = "ClientError.RequestTooLarge";
  e.message = "too large";
  fake_.ScriptSyncError(tencent::MakeStatus(e));
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  auto err = replies.First();
  ASSERT_FALSE(err.ok());
  absl::SleepFor(absl::Milliseconds(50));  // a wrong retry would have happened by now
  EXPECT_EQ(fake_.sync_count(), 1);
}

struct TransientCase {
  std::string label;
  ErrorKind kind;
  std::string code;
};

class TransientSubmitTest : public JobEngineTest,
                            public ::testing::WithParamInterface<TransientCase> {};

TEST_P(TransientSubmitTest, NotExecutedFailureIsResubmittedAndCallerGetsQueuedFirst) {
  StartEngine();
  fake_.ScriptSyncError(Upstream(GetParam().kind, GetParam().code));
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  // The first attempt failed without executing: the caller is answered with
  // the job as it stands (QUEUED) rather than kept waiting for the retry.
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  EXPECT_TRUE(job->destinations(0).blueprint_id().empty());

  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::RUNNING));
  EXPECT_FALSE(Job(job->name()).destinations(0).blueprint_id().empty());
  EXPECT_EQ(Stored(job->name()).phase(), JobRecord::SUBMITTED);
  EXPECT_EQ(Stored(job->name()).submit_attempts(), 2);
  absl::SleepFor(absl::Milliseconds(50));  // no further attempt may follow
  EXPECT_EQ(fake_.sync_count(), 2);
  EXPECT_EQ(engine_->stats().sync_calls, 2);
  EXPECT_EQ(replies.count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, TransientSubmitTest,
    ::testing::Values(
        TransientCase{"Transport", ErrorKind::kTransport, "ClientError.NetworkError"},
        TransientCase{"Throttle", ErrorKind::kApi, "RequestLimitExceeded"},
        TransientCase{"ThrottleSubcode", ErrorKind::kApi, "RequestLimitExceeded.UinLimitExceeded"},
        TransientCase{"CallerDeadline", ErrorKind::kLocal, "ClientError.DeadlineExceeded"}),
    [](const ::testing::TestParamInfo<TransientCase>& p) { return p.param.label; });

TEST_F(JobEngineTest, CallDeadlineIsTheReplyByTimeWhileACallerWaits) {
  StartEngine();
  const absl::Time reply_by = absl::Now() + absl::Hours(1);
  // As the real client does when rate-limit capacity would come too late.
  fake_.ScriptSync([](const SyncBlueprintRequest&, const CallOptions& options) {
    ApiError e;
    e.kind = ErrorKind::kLocal;
    e.code = "ClientError.DeadlineExceeded";
    e.message = "caller deadline";
    return absl::StatusOr<SyncBlueprintResponse>(tencent::MakeStatus(e));
  });
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), reply_by, replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::RUNNING));
  const auto calls = fake_.sync_calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].options.deadline, reply_by);
  // Nobody waits any more: the retry is not bound by the caller's deadline.
  EXPECT_EQ(calls[1].options.deadline, absl::InfiniteFuture());
}

TEST_F(JobEngineTest, SubmittingIsNotSentWhenItCannotBeRecorded) {
  FlakyStore& flaky = flaky_;
  StartEngine(FastOptions(), SystemClock::Default(), &flaky);
  flaky.fail_updates = true;
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  // Several attempts to record SUBMITTING fail; none may be followed by a call.
  ASSERT_TRUE(WaitFor([&] { return flaky.failed_updates >= 3; }));
  EXPECT_EQ(fake_.sync_count(), 0);

  std::optional<JobRecord::SubmitPhase> phase_during_call;
  fake_.ScriptSync([&](const SyncBlueprintRequest&, const CallOptions&) {
    auto rec = flaky.GetJob(job->name());
    if (rec.ok()) phase_during_call = rec->phase();
    SyncBlueprintResponse r;
    r.destinations = {{"ap-singapore", "lhbp-sg000009"}};
    return absl::StatusOr<SyncBlueprintResponse>(r);
  });
  flaky.fail_updates = false;
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::RUNNING));
  EXPECT_EQ(fake_.sync_count(), 1);
  ASSERT_TRUE(phase_during_call.has_value());
  EXPECT_EQ(*phase_during_call, JobRecord::SUBMITTING);
  EXPECT_EQ(Stored(job->name(), &flaky).submit_attempts(), 1);
}

// ---------------------------------------------------------------------------
// Source busy

TEST_F(JobEngineTest, BusySourceIsRetriedUntilItIsFree) {
  StartEngine();
  fake_.ScriptSyncError(Upstream(ErrorKind::kApi, "OperationDenied.BlueprintOperationInProgress"));
  fake_.ScriptSyncError(
      Upstream(ErrorKind::kApi, "UnsupportedOperation.BlueprintLatestOperationUnfinished"));
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::RUNNING));
  EXPECT_EQ(fake_.sync_count(), 3);
  EXPECT_EQ(replies.count(), 1u);
}

TEST_F(JobEngineTest, BusySourceFailsAbortedAfterBusyWindow) {
  JobEngineOptions o = FastOptions();
  o.busy_retry_interval = absl::Milliseconds(10);
  o.busy_window = absl::Milliseconds(150);
  StartEngine(o);
  for (int i = 0; i < 1000; ++i) {
    fake_.ScriptSyncError(
        Upstream(ErrorKind::kApi, "OperationDenied.BlueprintOperationInProgress", "req-busy"));
  }
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::FAILED));
  const v1::SyncJob failed = Job(job->name());
  EXPECT_EQ(failed.error().code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(failed.error().message(), HasSubstr("ABORTED"));
  EXPECT_EQ(failed.error().tencent_code(), "OperationDenied.BlueprintOperationInProgress");
  for (const auto& d : failed.destinations()) {
    EXPECT_EQ(d.state(), v1::Destination::FAILED);
    // Failed for good: a code a caller would not retry with the same request id.
    EXPECT_EQ(d.error().code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  }
  EXPECT_GE(fake_.sync_count(), 2);
  const int calls = fake_.sync_count();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(fake_.sync_count(), calls) << "kept retrying after the job failed";
  EXPECT_EQ(replies.count(), 1u);
}

// ---------------------------------------------------------------------------
// Ambiguous submissions and reconciliation

class ReconcileTest : public JobEngineTest {
 protected:
  void SetUp() override {
    fake_.Put(kSrc, MakeBlueprint(kBp, kImageName, "NORMAL", absl::Now() - absl::Hours(48)));
  }
  // A SyncBlueprint answer whose outcome is unknown; `create` runs first (the
  // call "executed" as far as the world is concerned).
  void ScriptUnknownOutcome(std::function<void()> create = nullptr) {
    fake_.ScriptSync([create](const SyncBlueprintRequest&, const CallOptions&) {
      if (create) create();
      return absl::StatusOr<SyncBlueprintResponse>(
          Upstream(ErrorKind::kOutcomeUnknown, "ClientError.OutcomeUnknown", "req-lost"));
    });
  }
};

TEST_F(ReconcileTest, CopiesInEveryDestinationAreAdopted) {
  StartEngine();
  // Copies that must not be adopted: made long before the attempt, or with
  // another name.
  fake_.Put("ap-singapore",
            MakeBlueprint("lhbp-old00001", kImageName, "NORMAL", absl::Now() - absl::Hours(24)));
  fake_.Put("ap-tokyo", MakeBlueprint("lhbp-oth00001", "other-image", "SYNCING", absl::Now()));
  ScriptUnknownOutcome([this] {
    fake_.Put("ap-singapore", MakeBlueprint("lhbp-new00001", kImageName, "SYNCING", absl::Now()));
    fake_.Put("ap-tokyo", MakeBlueprint("lhbp-new00002", kImageName, "SYNCING", absl::Now()));
    fake_.SetState(kSrc, kBp, "SYNCING");
  });
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  // Answered at once: the job is running as far as anyone can tell.
  EXPECT_EQ(job->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(job->upstream_request_id(), "req-lost");

  ASSERT_TRUE(WaitForIds(job->name())) << Job(job->name()).DebugString();
  const v1::SyncJob adopted = Job(job->name());
  EXPECT_EQ(adopted.state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(adopted.destinations(0).blueprint_id(), "lhbp-new00001");
  EXPECT_EQ(adopted.destinations(0).state(), v1::Destination::SYNCING);
  EXPECT_EQ(adopted.destinations(0).blueprint_state(), "SYNCING");
  EXPECT_EQ(adopted.destinations(1).blueprint_id(), "lhbp-new00002");
  EXPECT_TRUE(adopted.has_submit_time());
  EXPECT_EQ(Stored(job->name()).phase(), JobRecord::SUBMITTED);

  // The destination lists looked for the source's name among private images.
  bool listed = false;
  for (const auto& d : fake_.describe_calls()) {
    if (d.filters.empty()) continue;
    listed = true;
    std::map<std::string, std::vector<std::string>> f;
    for (const auto& filter : d.filters) f[filter.name] = filter.values;
    EXPECT_THAT(f["blueprint-name"], ElementsAre(kImageName));
    EXPECT_THAT(f["blueprint-type"], ElementsAre("PRIVATE"));
    EXPECT_TRUE(d.blueprint_ids.empty());
  }
  EXPECT_TRUE(listed);

  // Tracked as usual from here on.
  fake_.SetState("ap-singapore", "lhbp-new00001", "NORMAL");
  fake_.SetState("ap-tokyo", "lhbp-new00002", "NORMAL");
  engine_->PollOnceForTest();
  EXPECT_EQ(Job(job->name()).state(), v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(fake_.sync_count(), 1);
  EXPECT_EQ(engine_->stats().sync_calls, 1);
}

TEST_F(ReconcileTest, NoCopiesAndIdleSourceMeansResubmitOnce) {
  StartEngine();
  ScriptUnknownOutcome();  // nothing created; the source stays NORMAL
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForIds(job->name())) << Job(job->name()).DebugString();
  EXPECT_EQ(Job(job->name()).state(), v1::SyncJob::RUNNING);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(fake_.sync_count(), 2);
  EXPECT_EQ(Stored(job->name()).submit_attempts(), 2);

  // The second call came only after the reconciler had looked.
  const auto events = fake_.events();
  std::vector<std::string> relevant;
  for (const auto& e : events) {
    if (!absl::StartsWith(e, "poll:")) relevant.push_back(e);
  }
  EXPECT_THAT(relevant,
              ElementsAre(absl::StrCat("sync:", kBp), absl::StrCat("source:", kSrc, "/", kBp),
                          "list:ap-singapore", "list:ap-tokyo", absl::StrCat("sync:", kBp)));
}

TEST_F(ReconcileTest, AmbiguousEvidenceFailsNeedsAttentionAfterAllLooks) {
  JobEngineOptions o = FastOptions();
  o.reconcile_attempts = 4;
  StartEngine(o);
  ScriptUnknownOutcome([this] {
    // A copy in one region only, source still busy.
    fake_.Put("ap-singapore", MakeBlueprint("lhbp-new00001", kImageName, "SYNCING", absl::Now()));
    fake_.SetState(kSrc, kBp, "SYNCING");
  });
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::FAILED));
  const v1::SyncJob failed = Job(job->name());
  EXPECT_EQ(failed.error().code(), static_cast<int>(absl::StatusCode::kUnknown));
  EXPECT_THAT(failed.error().message(), StartsWith("needs attention"));
  EXPECT_THAT(failed.error().message(), HasSubstr("ap-singapore"));
  EXPECT_THAT(failed.error().message(), HasSubstr("ap-tokyo"));
  EXPECT_THAT(failed.error().message(), HasSubstr(kBp));
  for (const auto& d : failed.destinations()) {
    EXPECT_EQ(d.state(), v1::Destination::FAILED);
    EXPECT_TRUE(d.blueprint_id().empty());
  }
  EXPECT_EQ(fake_.source_looks(kSrc, kBp), 4);
  EXPECT_EQ(fake_.sync_count(), 1);
  EXPECT_EQ(engine_->stats().active_jobs, 0);
}

TEST_F(ReconcileTest, TwoCandidateCopiesInARegionAreAmbiguous) {
  StartEngine();
  ScriptUnknownOutcome([this] {
    fake_.Put("ap-singapore", MakeBlueprint("lhbp-new00001", kImageName, "SYNCING", absl::Now()));
    fake_.Put("ap-singapore", MakeBlueprint("lhbp-new00002", kImageName, "SYNCING", absl::Now()));
  });
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::FAILED));
  EXPECT_THAT(Job(job->name()).error().message(), StartsWith("needs attention"));
  EXPECT_EQ(fake_.source_looks(kSrc, kBp), 3);
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(ReconcileTest, SourceThatCannotBeReadIsInconclusive) {
  StartEngine();
  fake_.SetDescribeHook([](const DescribeBlueprintsRequest& r) -> std::optional<absl::Status> {
    if (r.region == kSrc) return Upstream(ErrorKind::kTransport, "ClientError.NetworkError");
    return std::nullopt;
  });
  ScriptUnknownOutcome();
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::FAILED));
  EXPECT_THAT(Job(job->name()).error().message(), StartsWith("needs attention"));
  EXPECT_THAT(Job(job->name()).error().message(), HasSubstr("source blueprint"));
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(ReconcileTest, CopiesOwnedByAnotherJobAreNotAdopted) {
  StartEngine();
  // Another source image with the same name, in another region, synced by a
  // job that is still running and owns lhbp-own00001 in ap-singapore.
  const std::string other_src = "ap-shanghai";
  fake_.Put(other_src, MakeBlueprint(kBp2, kImageName, "NORMAL", absl::Now() - absl::Hours(1)));
  fake_.ScriptSync([this](const SyncBlueprintRequest&, const CallOptions&) {
    fake_.Put("ap-singapore", MakeBlueprint("lhbp-own00001", kImageName, "SYNCING", absl::Now()));
    SyncBlueprintResponse r;
    r.destinations = {{"ap-singapore", "lhbp-own00001"}};
    return absl::StatusOr<SyncBlueprintResponse>(r);
  });
  Replies owner;
  engine_->Submit(Request(other_src, kBp2, {"ap-singapore"}), absl::InfiniteFuture(),
                  owner.Callback());
  ASSERT_TRUE(owner.First().ok());
  ASSERT_EQ(owner.First()->state(), v1::SyncJob::RUNNING);

  ScriptUnknownOutcome([this] {
    fake_.Put("ap-singapore", MakeBlueprint("lhbp-new00001", kImageName, "SYNCING", absl::Now()));
  });
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForIds(job->name())) << Job(job->name()).DebugString();
  EXPECT_EQ(Job(job->name()).destinations(0).blueprint_id(), "lhbp-new00001");
  EXPECT_EQ(fake_.sync_count(), 2);
}

// ---------------------------------------------------------------------------
// Restart recovery

TEST_F(ReconcileTest, RestartReconcilesInterruptedSubmissionInsteadOfResending) {
  JobRecord rec = MakeRecord(kSrc, kBp, {{"ap-singapore", ""}, {"ap-tokyo", ""}},
                             JobRecord::SUBMITTING, v1::SyncJob::QUEUED);
  const std::string name = rec.job().name();
  ASSERT_TRUE(store_->CreateJob(rec).ok());
  // The interrupted call did execute.
  fake_.Put("ap-singapore", MakeBlueprint("lhbp-new00001", kImageName, "SYNCING", absl::Now()));
  fake_.Put("ap-tokyo", MakeBlueprint("lhbp-new00002", kImageName, "NORMAL", absl::Now()));
  std::optional<JobRecord::SubmitPhase> phase_at_first_look;
  fake_.SetDescribeHook([&](const DescribeBlueprintsRequest& r) -> std::optional<absl::Status> {
    if (!phase_at_first_look && r.region == kSrc) {
      auto stored = store_->GetJob(name);
      if (stored.ok()) phase_at_first_look = stored->phase();
    }
    return std::nullopt;
  });

  StartEngine();
  ASSERT_TRUE(WaitForIds(name)) << Job(name).DebugString();
  const v1::SyncJob job = Job(name);
  EXPECT_EQ(job.state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(job.destinations(0).blueprint_id(), "lhbp-new00001");
  EXPECT_EQ(job.destinations(0).state(), v1::Destination::SYNCING);
  EXPECT_EQ(job.destinations(1).blueprint_id(), "lhbp-new00002");
  EXPECT_EQ(job.destinations(1).state(), v1::Destination::SUCCEEDED);
  ASSERT_TRUE(phase_at_first_look.has_value());
  EXPECT_EQ(*phase_at_first_look, JobRecord::OUTCOME_UNKNOWN);
  EXPECT_EQ(Stored(name).phase(), JobRecord::SUBMITTED);
  EXPECT_EQ(fake_.sync_count(), 0);
  EXPECT_EQ(engine_->stats().sync_calls, 0);
}

TEST_F(ReconcileTest, RestartResubmitsOnlyAfterReconcilingShowsNothingRan) {
  JobRecord rec =
      MakeRecord(kSrc, kBp, {{"ap-singapore", ""}}, JobRecord::SUBMITTING, v1::SyncJob::QUEUED);
  const std::string name = rec.job().name();
  ASSERT_TRUE(store_->CreateJob(rec).ok());
  StartEngine();
  ASSERT_TRUE(WaitForIds(name)) << Job(name).DebugString();
  EXPECT_EQ(fake_.sync_count(), 1);
  std::vector<std::string> relevant;
  for (const auto& e : fake_.events()) {
    if (!absl::StartsWith(e, "poll:")) relevant.push_back(e);
  }
  EXPECT_THAT(relevant, ElementsAre(absl::StrCat("source:", kSrc, "/", kBp), "list:ap-singapore",
                                    absl::StrCat("sync:", kBp)));
  EXPECT_EQ(Stored(name).submit_attempts(), 2);
}

TEST_F(JobEngineTest, RestartTracksSubmittedJobs) {
  JobRecord rec = MakeRecord(kSrc, kBp, {{"ap-singapore", "lhbp-run00001"}}, JobRecord::SUBMITTED,
                             v1::SyncJob::RUNNING);
  const std::string name = rec.job().name();
  ASSERT_TRUE(store_->CreateJob(rec).ok());
  StartEngine();
  EXPECT_EQ(engine_->stats().active_jobs, 1);
  fake_.SetState("ap-singapore", "lhbp-run00001", "NORMAL");
  fake_.ClearDescribeCalls();
  engine_->PollOnceForTest();
  const auto calls = fake_.describe_calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].region, "ap-singapore");
  EXPECT_THAT(calls[0].blueprint_ids, ElementsAre("lhbp-run00001"));
  EXPECT_EQ(Job(name).state(), v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(Stored(name).job().state(), v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(fake_.sync_count(), 0);
  EXPECT_EQ(engine_->stats().active_jobs, 0);
}

TEST_F(JobEngineTest, RestartSubmitsQueuedJobsInOrderOnePerSource) {
  JobRecord a1 =
      MakeRecord(kSrc, kBp, {{"ap-singapore", ""}}, JobRecord::NOT_SUBMITTED, v1::SyncJob::QUEUED);
  JobRecord a2 =
      MakeRecord(kSrc, kBp, {{"ap-tokyo", ""}}, JobRecord::NOT_SUBMITTED, v1::SyncJob::QUEUED);
  JobRecord b1 =
      MakeRecord(kSrc, kBp2, {{"ap-seoul", ""}}, JobRecord::NOT_SUBMITTED, v1::SyncJob::QUEUED);
  for (const JobRecord* r : {&a1, &a2, &b1}) ASSERT_TRUE(store_->CreateJob(*r).ok());
  JobEngineOptions o = FastOptions();
  o.workers = 1;  // so that the order of submission is observable
  StartEngine(o);
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() >= 2; }));
  ASSERT_TRUE(WaitForState(b1.job().name(), v1::SyncJob::RUNNING));
  ASSERT_TRUE(WaitForState(a1.job().name(), v1::SyncJob::RUNNING));
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(fake_.sync_count(), 2) << "the second job on a source went out early";
  EXPECT_EQ(Job(a2.job().name()).state(), v1::SyncJob::QUEUED);

  fake_.SetState("ap-singapore", Job(a1.job().name()).destinations(0).blueprint_id(), "NORMAL");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(a2.job().name(), v1::SyncJob::RUNNING));
  const auto calls = fake_.sync_calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_THAT(calls[0].request.destination_regions, ElementsAre("ap-singapore"));
  EXPECT_THAT(calls[1].request.destination_regions, ElementsAre("ap-seoul"));
  EXPECT_THAT(calls[2].request.destination_regions, ElementsAre("ap-tokyo"));
}

// ---------------------------------------------------------------------------
// Per-source serialization

TEST_F(JobEngineTest, SecondJobOnASourceWaitsForTheFirstToFinish) {
  StartEngine();
  Replies first;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), first.Callback());
  auto job1 = first.First();
  ASSERT_TRUE(job1.ok()) << job1.status();
  ASSERT_EQ(job1->state(), v1::SyncJob::RUNNING);
  const std::string id1 = job1->destinations(0).blueprint_id();

  std::optional<v1::SyncJob::State> first_state_at_second_call;
  fake_.ScriptSync([&](const SyncBlueprintRequest& req, const CallOptions&) {
    auto rec = store_->GetJob(job1->name());
    if (rec.ok()) first_state_at_second_call = rec->job().state();
    SyncBlueprintResponse r;
    r.destinations = {{"ap-tokyo", "lhbp-tk000002"}};
    return absl::StatusOr<SyncBlueprintResponse>(r);
  });
  Replies second;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), second.Callback());
  auto job2 = second.First();
  ASSERT_TRUE(job2.ok()) << job2.status();
  EXPECT_EQ(job2->state(), v1::SyncJob::QUEUED);

  // Still queued while the first is running, however often the tracker runs.
  fake_.SetState("ap-singapore", id1, "SYNCING");
  engine_->PollOnceForTest();
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(fake_.sync_count(), 1);
  EXPECT_EQ(Job(job2->name()).state(), v1::SyncJob::QUEUED);

  fake_.SetState("ap-singapore", id1, "NORMAL");
  engine_->PollOnceForTest();
  EXPECT_EQ(Job(job1->name()).state(), v1::SyncJob::SUCCEEDED);
  ASSERT_TRUE(WaitForState(job2->name(), v1::SyncJob::RUNNING));
  EXPECT_EQ(Job(job2->name()).destinations(0).blueprint_id(), "lhbp-tk000002");
  ASSERT_TRUE(first_state_at_second_call.has_value());
  EXPECT_EQ(*first_state_at_second_call, v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(fake_.sync_count(), 2);
  EXPECT_EQ(second.count(), 1u);
}

TEST_F(JobEngineTest, JobsOnDifferentSourcesRunSideBySide) {
  StartEngine();
  Replies a, b;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), a.Callback());
  engine_->Submit(Request(kSrc, kBp2, {"ap-singapore"}), absl::InfiniteFuture(), b.Callback());
  ASSERT_TRUE(a.First().ok());
  ASSERT_TRUE(b.First().ok());
  EXPECT_EQ(a.First()->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(b.First()->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(fake_.sync_count(), 2);
}

TEST_F(JobEngineTest, RejectionOfTheFirstJobStartsTheNextOnTheSource) {
  StartEngine();
  fake_.HoldSync();
  fake_.ScriptSyncError(Upstream(ErrorKind::kApi, "ResourceNotFound.PrivateBlueprintNotFound"));
  Replies first, second;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), first.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), second.Callback());
  auto job2 = second.First();
  ASSERT_TRUE(job2.ok());
  EXPECT_EQ(job2->state(), v1::SyncJob::QUEUED);
  fake_.ReleaseSync();
  EXPECT_FALSE(first.First().ok());
  ASSERT_TRUE(WaitForState(job2->name(), v1::SyncJob::RUNNING));
  EXPECT_EQ(fake_.sync_count(), 2);
}

// Steps that wait for a flush to disk, on a loaded machine under ASan.
constexpr absl::Duration kFsyncBound = absl::Seconds(30);

// A SQLite store in a directory of its own, removed with it.
struct TempSqlite {
  TempSqlite() {
    auto opened = OpenSqliteJobStore(dir.path() + "/jobs.db");
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (opened.ok()) store = *std::move(opened);
  }
  ::blueprintsync::testing::ScratchDir dir{"job_engine_sqlite_"};  // outlives the store
  std::unique_ptr<JobStore> store;
};

// On SQLite, the job's record and its SUBMITTING mark share one flush to
// disk before the call goes out (CreateJobSyncLater); the outcome has its
// own before the caller is answered. A job queued behind another on its
// source is not about to be marked: its record is flushed before its
// caller is answered. Counted through SQLite's VFS.
TEST_F(JobEngineTest, OnSqliteOneFlushPrecedesTheCallAndEveryAnswerFollowsOne) {
  ::blueprintsync::testing::SqliteSyncCounter counter;
  TempSqlite sqlite;
  absl::Cleanup stop_first = [&] {
    fake_.ReleaseSync();
    engine_.reset();
  };
  ASSERT_NE(sqlite.store, nullptr);
  StartEngine(FastOptions(), SystemClock::Default(), sqlite.store.get());

  fake_.ScriptSync([&](const SyncBlueprintRequest&, const CallOptions&) {
    SyncBlueprintResponse r;
    r.destinations = {{"ap-singapore", "lhbp-sg000001"}};
    r.request_id = "req-sync-1";
    return r;
  });
  fake_.HoldSync();
  const int before = counter.syncs();
  const auto flushes = [&] { return counter.syncs(); };
  Replies first;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(),
                  first.CallbackNoting(flushes));
  // The call is out (held in the fake): nothing else writes meanwhile.
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }, kFsyncBound));
  EXPECT_EQ(counter.syncs() - before, 1);
  auto unfinished = sqlite.store->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ(unfinished->front().phase(), JobRecord::SUBMITTING);

  // Behind the first on its source: answered QUEUED at once, flushed first.
  const int before_second = counter.syncs();
  Replies second;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(),
                  second.CallbackNoting(flushes));
  auto job2 = second.First(kFsyncBound);
  ASSERT_TRUE(job2.ok()) << job2.status();
  EXPECT_EQ(job2->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(second.noted() - before_second, 1);

  const int before_outcome = counter.syncs();
  fake_.ReleaseSync();
  auto job1 = first.First(kFsyncBound);
  ASSERT_TRUE(job1.ok()) << job1.status();
  EXPECT_EQ(job1->state(), v1::SyncJob::RUNNING);
  EXPECT_GE(first.noted() - before_outcome, 1);
}

// The SUBMITTING mark cannot be written (the store fails): nothing is sent
// and the caller is answered QUEUED, but only after the record, committed
// without a flush, is flushed on its own.
TEST_F(JobEngineTest, OnSqliteACallerAnsweredAfterAFailedMarkIsAnsweredAfterAFlush) {
  ::blueprintsync::testing::SqliteSyncCounter counter;
  TempSqlite sqlite;
  ASSERT_NE(sqlite.store, nullptr);
  FlakyStore flaky(std::move(sqlite.store));
  flaky.fail_updates = true;
  absl::Cleanup stop_first = [&] { engine_.reset(); };
  StartEngine(FastOptions(), SystemClock::Default(), &flaky);

  const int before = counter.wal_syncs();
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(),
                  replies.CallbackNoting([&] { return counter.wal_syncs(); }));
  auto job = replies.First(kFsyncBound);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(replies.noted() - before, 1);
  EXPECT_EQ(fake_.sync_count(), 0);
  EXPECT_GE(flaky.failed_updates.load(), 1);
}

// A repeat of a request (same request_id) that arrives while the first is
// recorded but not flushed yet (its SUBMITTING write is held up) flushes the
// record before the repeat is answered or joins the first caller.
TEST_F(JobEngineTest, OnSqliteARepeatOfAJobNotYetFlushedFlushesIt) {
  ::blueprintsync::testing::SqliteSyncCounter counter;
  TempSqlite sqlite;
  ASSERT_NE(sqlite.store, nullptr);
  FlakyStore gated(std::move(sqlite.store));
  absl::Notification entered, release;
  std::atomic<bool> gate_once{true};
  gated.before_update = [&](const JobRecord& r) {
    if (r.phase() == JobRecord::SUBMITTING && gate_once.exchange(false)) {
      entered.Notify();
      release.WaitForNotification();
    }
  };
  absl::Cleanup stop_first = [&] {
    if (!release.HasBeenNotified()) release.Notify();
    engine_.reset();
  };
  StartEngine(FastOptions(), SystemClock::Default(), &gated);

  const int before = counter.wal_syncs();
  Replies first, repeat;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, "2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"),
                  absl::InfiniteFuture(), first.Callback());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(counter.wal_syncs(), before);  // recorded, not flushed
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, "2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"),
                  absl::InfiniteFuture(), repeat.Callback());
  EXPECT_TRUE(WaitFor([&] { return counter.wal_syncs() == before + 1; }, kFsyncBound))
      << "the repeat did not flush the record: " << counter.wal_syncs() - before;
  release.Notify();
  auto a = first.First(kFsyncBound);
  auto b = repeat.First(kFsyncBound);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->name(), b->name());
  EXPECT_EQ(fake_.sync_count(), 1);
}

// ---------------------------------------------------------------------------
// Tracker

TEST_F(JobEngineTest, TrackerBatchesDescribeCallsPerRegionAcrossJobs) {
  std::set<std::string> sg_ids, tk_ids;
  for (int i = 0; i < 250; ++i) {
    std::vector<std::pair<std::string, std::string>> dests;
    const std::string sg = absl::StrFormat("lhbp-a%07d", i);
    dests.push_back({"ap-singapore", sg});
    sg_ids.insert(sg);
    if (i < 30) {
      const std::string tk = absl::StrFormat("lhbp-b%07d", i);
      dests.push_back({"ap-tokyo", tk});
      tk_ids.insert(tk);
    }
    JobRecord rec = MakeRecord(kSrc, absl::StrFormat("lhbp-src%05d", i), dests,
                               JobRecord::SUBMITTED, v1::SyncJob::RUNNING);
    ASSERT_TRUE(store_->CreateJob(rec).ok());
  }
  StartEngine();
  EXPECT_EQ(engine_->stats().active_jobs, 250);
  fake_.ClearDescribeCalls();
  engine_->PollOnceForTest();

  const auto calls = fake_.describe_calls();
  std::map<std::string, int> calls_per_region;
  std::map<std::string, std::multiset<std::string>> asked;
  for (const auto& c : calls) {
    ++calls_per_region[c.region];
    EXPECT_LE(c.blueprint_ids.size(), 100u);
    EXPECT_FALSE(c.blueprint_ids.empty());
    EXPECT_THAT(c.filters, IsEmpty());
    ASSERT_TRUE(c.limit.has_value());
    EXPECT_EQ(*c.limit, 100);
    asked[c.region].insert(c.blueprint_ids.begin(), c.blueprint_ids.end());
  }
  EXPECT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls_per_region["ap-singapore"], 3);
  EXPECT_EQ(calls_per_region["ap-tokyo"], 1);
  EXPECT_EQ(asked["ap-singapore"], std::multiset<std::string>(sg_ids.begin(), sg_ids.end()));
  EXPECT_EQ(asked["ap-tokyo"], std::multiset<std::string>(tk_ids.begin(), tk_ids.end()));
  EXPECT_EQ(engine_->stats().last_cycle_describe_calls, 4);
}

TEST_F(JobEngineTest, TrackerMapsUpstreamStates) {
  JobRecord rec = MakeRecord(kSrc, kBp,
                             {{"ap-singapore", "lhbp-d0000001"},
                              {"ap-tokyo", "lhbp-d0000002"},
                              {"ap-seoul", "lhbp-d0000003"},
                              {"ap-bangkok", "lhbp-d0000004"}},
                             JobRecord::SUBMITTED, v1::SyncJob::RUNNING);
  const std::string name = rec.job().name();
  ASSERT_TRUE(store_->CreateJob(rec).ok());
  fake_.SetState("ap-singapore", "lhbp-d0000001", "NORMAL");
  fake_.SetState("ap-tokyo", "lhbp-d0000002", "SYNCING_FAILED");
  fake_.SetState("ap-seoul", "lhbp-d0000003", "SOME_NEW_STATE");
  // lhbp-d0000004 is not visible upstream yet.
  StartEngine();
  engine_->PollOnceForTest();

  v1::SyncJob job = Job(name);
  EXPECT_EQ(job.state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(job.destinations(0).state(), v1::Destination::SUCCEEDED);
  EXPECT_EQ(job.destinations(0).blueprint_state(), "NORMAL");
  EXPECT_EQ(job.destinations(1).state(), v1::Destination::FAILED);
  EXPECT_EQ(job.destinations(1).blueprint_state(), "SYNCING_FAILED");
  EXPECT_NE(job.destinations(1).error().code(), 0);
  EXPECT_THAT(job.destinations(1).error().message(), HasSubstr("lhbp-d0000002"));
  EXPECT_THAT(job.destinations(1).error().message(), HasSubstr("SYNCING_FAILED"));
  EXPECT_EQ(job.destinations(2).state(), v1::Destination::SYNCING);
  EXPECT_EQ(job.destinations(2).blueprint_state(), "SOME_NEW_STATE");
  EXPECT_EQ(job.destinations(3).state(), v1::Destination::SYNCING);
  EXPECT_EQ(job.destinations(3).blueprint_state(), "");
  EXPECT_EQ(Stored(name).job().destinations(1).state(), v1::Destination::FAILED);

  // Finished destinations are not asked about again.
  fake_.ClearDescribeCalls();
  fake_.SetState("ap-seoul", "lhbp-d0000003", "NORMAL");
  fake_.SetState("ap-bangkok", "lhbp-d0000004", "NORMAL");
  engine_->PollOnceForTest();
  std::set<std::string> regions;
  for (const auto& c : fake_.describe_calls()) regions.insert(c.region);
  EXPECT_THAT(regions, ::testing::UnorderedElementsAre("ap-seoul", "ap-bangkok"));
  job = Job(name);
  EXPECT_EQ(job.state(), v1::SyncJob::FAILED);
  EXPECT_TRUE(job.has_end_time());
  EXPECT_EQ(Stored(name).job().state(), v1::SyncJob::FAILED);
  EXPECT_EQ(engine_->stats().active_jobs, 0);
}

TEST_F(JobEngineTest, TrackerSurvivesAFailedDescribeInOneRegion) {
  JobRecord rec =
      MakeRecord(kSrc, kBp, {{"ap-singapore", "lhbp-d0000001"}, {"ap-tokyo", "lhbp-d0000002"}},
                 JobRecord::SUBMITTED, v1::SyncJob::RUNNING);
  const std::string name = rec.job().name();
  ASSERT_TRUE(store_->CreateJob(rec).ok());
  fake_.SetState("ap-singapore", "lhbp-d0000001", "NORMAL");
  fake_.SetState("ap-tokyo", "lhbp-d0000002", "NORMAL");
  fake_.SetDescribeHook([](const DescribeBlueprintsRequest& r) -> std::optional<absl::Status> {
    if (r.region == "ap-tokyo") return Upstream(ErrorKind::kTransport, "ClientError.NetworkError");
    return std::nullopt;
  });
  StartEngine();
  engine_->PollOnceForTest();
  v1::SyncJob job = Job(name);
  EXPECT_EQ(job.destinations(0).state(), v1::Destination::SUCCEEDED);
  EXPECT_EQ(job.destinations(1).state(), v1::Destination::SYNCING);
  EXPECT_EQ(job.state(), v1::SyncJob::RUNNING);
  fake_.SetDescribeHook(nullptr);
  engine_->PollOnceForTest();
  EXPECT_EQ(Job(name).state(), v1::SyncJob::SUCCEEDED);
}

TEST_F(JobEngineTest, DeadlineOfAJobThatCouldNotBeTrackedNamesTheUpstreamError) {
  testing::FakeClock clock(absl::Now());
  JobEngineOptions o = FastOptions();
  o.job_deadline = absl::Minutes(10);
  StartEngine(o, &clock);
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  fake_.SetDescribeHook([](const DescribeBlueprintsRequest&) -> std::optional<absl::Status> {
    return Upstream(ErrorKind::kApi, "AuthFailure.SecretIdNotFound");
  });
  engine_->PollOnceForTest();
  clock.Advance(absl::Minutes(11));
  engine_->PollOnceForTest();
  const v1::SyncJob failed = Job(job->name());
  ASSERT_EQ(failed.state(), v1::SyncJob::FAILED);
  EXPECT_THAT(failed.error().message(), HasSubstr("still not NORMAL at the job deadline"));
  EXPECT_THAT(failed.error().message(),
              HasSubstr("DescribeBlueprints in ap-tokyo answered AuthFailure.SecretIdNotFound"));
}

// ---------------------------------------------------------------------------
// Deadlines

TEST_F(JobEngineTest, DeadlineFailsUnfinishedDestinations) {
  testing::FakeClock clock(absl::Now());
  JobEngineOptions o = FastOptions();
  o.job_deadline = absl::Minutes(10);
  StartEngine(o, &clock);
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->state(), v1::SyncJob::RUNNING);
  fake_.SetState("ap-singapore", job->destinations(0).blueprint_id(), "NORMAL");
  fake_.SetState("ap-tokyo", job->destinations(1).blueprint_id(), "SYNCING");
  engine_->PollOnceForTest();
  ASSERT_EQ(Job(job->name()).destinations(0).state(), v1::Destination::SUCCEEDED);

  clock.Advance(absl::Minutes(9));
  engine_->PollOnceForTest();
  EXPECT_EQ(Job(job->name()).state(), v1::SyncJob::RUNNING);

  clock.Advance(absl::Minutes(2));
  engine_->PollOnceForTest();
  const v1::SyncJob failed = Job(job->name());
  EXPECT_EQ(failed.state(), v1::SyncJob::FAILED);
  EXPECT_EQ(failed.error().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(failed.destinations(0).state(), v1::Destination::SUCCEEDED);
  EXPECT_EQ(failed.destinations(1).state(), v1::Destination::FAILED);
  EXPECT_EQ(failed.destinations(1).error().code(),
            static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(Stored(job->name()).job().state(), v1::SyncJob::FAILED);
  EXPECT_EQ(engine_->stats().active_jobs, 0);
}

TEST_F(JobEngineTest, QueuedJobPastItsDeadlineFailsWithoutBeingSent) {
  testing::FakeClock clock(absl::Now());
  JobEngineOptions o = FastOptions();
  o.job_deadline = absl::Minutes(10);
  StartEngine(o, &clock);
  Replies first, second;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), first.Callback());
  ASSERT_TRUE(first.First().ok());
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), second.Callback());
  auto job2 = second.First();
  ASSERT_TRUE(job2.ok());
  ASSERT_EQ(job2->state(), v1::SyncJob::QUEUED);
  clock.Advance(absl::Minutes(11));
  engine_->PollOnceForTest();
  const v1::SyncJob failed = Job(job2->name());
  EXPECT_EQ(failed.state(), v1::SyncJob::FAILED);
  EXPECT_EQ(failed.error().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(failed.destinations(0).state(), v1::Destination::FAILED);
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(fake_.sync_count(), 1);
}

// ---------------------------------------------------------------------------
// Watchers

TEST_F(JobEngineTest, WatchSeesCurrentThenChangesAndUnwatchStops) {
  StartEngine();
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  const std::string id = job->destinations(0).blueprint_id();

  Seen w1, w2;
  uint64_t id1 = 0, id2 = 0;
  ASSERT_TRUE(Watch(*engine_, job->name(), &id1, w1).ok());
  ASSERT_EQ(w1.count(), 1u) << "the current job must be delivered before Watch returns";
  ASSERT_TRUE(Watch(*engine_, job->name(), &id2, w2).ok());
  EXPECT_NE(id1, 0u);
  EXPECT_NE(id2, 0u);
  EXPECT_NE(id1, id2);

  fake_.SetState("ap-singapore", id, "SYNCING");
  engine_->PollOnceForTest();
  // Passed on by the fan-out thread, off the engine's lock.
  EXPECT_TRUE(WaitFor([&] { return w1.count() == 2u && w2.count() == 2u; }));

  engine_->Unwatch(id2);
  fake_.SetState("ap-singapore", id, "NORMAL");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitFor([&] { return w1.count() == 3u; }));

  const auto seen1 = w1.all();
  ASSERT_EQ(seen1.size(), 3u);
  ASSERT_TRUE(seen1[0] && seen1[1] && seen1[2]);
  EXPECT_EQ(seen1[0]->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(seen1[0]->destinations(0).blueprint_state(), "");
  EXPECT_EQ(seen1[1]->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(seen1[1]->destinations(0).blueprint_state(), "SYNCING");
  EXPECT_EQ(seen1[2]->state(), v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(w2.count(), 2u) << "callbacks after Unwatch";

  // A finished job: one call, nothing registered.
  Seen w3;
  uint64_t id3 = 99;
  ASSERT_TRUE(Watch(*engine_, job->name(), &id3, w3).ok());
  EXPECT_EQ(id3, 0u);
  ASSERT_EQ(w3.count(), 1u);
  EXPECT_EQ(w3.all()[0]->state(), v1::SyncJob::SUCCEEDED);

  // Shutdown closes the watch that is still registered (w1: never
  // unwatched, even though its job finished) and no other.
  engine_->Shutdown(absl::Now() + absl::Seconds(5));
  ASSERT_EQ(w1.count(), 4u);
  EXPECT_FALSE(w1.all()[3].has_value());
  EXPECT_EQ(w2.count(), 2u);
  EXPECT_EQ(w3.count(), 1u);
  engine_->Unwatch(id1);  // harmless after Shutdown
  EXPECT_EQ(w1.count(), 4u);
}

TEST_F(JobEngineTest, AWatcherStuckInItsCallbackHoldsUpNeitherTheEngineNorOtherJobs) {
  // Callbacks used to run under the engine's lock: one stuck watcher (or
  // 10,000 quick ones) held up every call. They now run on the fan-out
  // thread, off the lock.
  StartEngine();
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  const std::string id = job->destinations(0).blueprint_id();

  absl::Notification stuck, release;
  std::atomic<int> calls{0};
  const uint64_t watch = engine_->WatchJob(job->name(), [&](absl::StatusOr<JobVersion> v) {
    if (v.ok() && calls++ == 1) {  // the second version: the change below
      stuck.Notify();
      release.WaitForNotification();
    }
  });
  ASSERT_EQ(calls.load(), 1) << "the current job must be delivered before WatchJob returns";
  fake_.SetState("ap-singapore", id, "SYNCING");
  std::thread poller([&] { engine_->PollOnceForTest(); });
  ASSERT_TRUE(stuck.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // The engine answers while the watcher is stuck (asked from a thread of
  // its own: before, the call itself waited for the lock).
  absl::Notification answered;
  std::thread getter([&] {
    engine_->GetJob(job->name(), [&](absl::StatusOr<v1::SyncJob>) { answered.Notify(); });
  });
  EXPECT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)))
      << "GetJob waited for a watcher's callback";
  release.Notify();
  getter.join();
  poller.join();
  engine_->Unwatch(watch);
}

TEST_F(JobEngineTest, WatchOfUnknownJobIsNotFound) {
  StartEngine();
  Seen w;
  uint64_t id = 7;
  const absl::Status s = Watch(*engine_, NewJobName(), &id, w);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(w.count(), 0u);
  EXPECT_EQ(id, 0u);
}

TEST_F(JobEngineTest, WatchOfQueuedJobSeesItStartAndShutdownClosesWithNull) {
  StartEngine();
  Replies first, second;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), first.Callback());
  auto job1 = first.First();
  ASSERT_TRUE(job1.ok());
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), second.Callback());
  auto job2 = second.First();
  ASSERT_TRUE(job2.ok());

  Seen w;
  uint64_t id = 0;
  ASSERT_TRUE(Watch(*engine_, job2->name(), &id, w).ok());
  fake_.SetState("ap-singapore", job1->destinations(0).blueprint_id(), "NORMAL");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job2->name(), v1::SyncJob::RUNNING));
  ASSERT_TRUE(WaitFor([&] {
    auto all = w.all();
    return !all.empty() && all.back() && all.back()->state() == v1::SyncJob::RUNNING;
  }));

  engine_->Shutdown(absl::Now() + absl::Seconds(5));
  const auto all = w.all();
  ASSERT_GE(all.size(), 3u);
  EXPECT_EQ(all.front()->state(), v1::SyncJob::QUEUED);
  EXPECT_FALSE(all.back().has_value()) << "Shutdown must close watches with nullptr";
  const size_t n = all.size();
  engine_->Unwatch(id);
  engine_->Shutdown(absl::Now() + absl::Seconds(5));  // idempotent
  EXPECT_EQ(w.count(), n);
}

// ---------------------------------------------------------------------------
// reply_by and shutdown

TEST_F(JobEngineTest, ReplyByAnswersQueuedWhileTheCallIsStillRunning) {
  StartEngine();
  fake_.HoldSync();
  const absl::Time reply_by = absl::Now() + absl::Milliseconds(50);
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), reply_by, replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(fake_.sync_completed(), 0) << "answered only after the call completed";
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  EXPECT_EQ(fake_.sync_calls()[0].options.deadline, reply_by);

  fake_.ReleaseSync();
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::RUNNING));
  EXPECT_EQ(replies.count(), 1u);
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(JobEngineTest, SameRequestIdWhileTheCallIsInFlightGetsTheSameError) {
  StartEngine();
  fake_.HoldSync();
  fake_.ScriptSyncError(Upstream(ErrorKind::kApi, "ResourceNotFound.PrivateBlueprintNotFound"));
  Replies first, retry;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, "rid-join-1"), absl::InfiniteFuture(),
                  first.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, "rid-join-1"), absl::InfiniteFuture(),
                  retry.Callback());
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(retry.count(), 0u) << "answered before the submission had an outcome: "
                               << retry.First().status();
  fake_.ReleaseSync();
  const auto a = first.First();
  const auto b = retry.First();
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(b.status(), a.status());
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(JobEngineTest, SameRequestIdJoinsUntilItsOwnReplyBy) {
  StartEngine();
  fake_.HoldSync();
  Replies first, retry;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, "rid-join-2"), absl::InfiniteFuture(),
                  first.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, "rid-join-2"),
                  absl::Now() + absl::Milliseconds(50), retry.Callback());
  // The retry's own deadline: the job as it stands; the first still waits.
  auto queued = retry.First();
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(first.count(), 0u);
  fake_.ReleaseSync();
  auto running = first.First();
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(running->name(), queued->name());
  EXPECT_EQ(retry.count(), 1u);
}

// A client repeating one request_id in a loop while the call is in flight
// cannot grow the job's list of waiting callers without bound: past the
// cap a repeat is answered at once with the job as it stands.
TEST_F(JobEngineTest, JoinedRetriesAreCappedPerJob) {
  StartEngine();
  fake_.HoldSync();
  Replies first;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, "rid-join-cap"), absl::InfiniteFuture(),
                  first.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  constexpr int kRepeats = 100;
  std::vector<std::unique_ptr<Replies>> repeats;
  for (int i = 0; i < kRepeats; ++i) {
    repeats.push_back(std::make_unique<Replies>());
    engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, "rid-join-cap"),
                    absl::InfiniteFuture(), repeats.back()->Callback());
  }
  // The first caller and 63 repeats wait (whichever joined first); the
  // other 37 are answered at once, with the job QUEUED.
  constexpr int kWaiting = static_cast<int>(JobEntry::kMaxWaiters) - 1;
  std::vector<bool> answered_early(kRepeats, false);
  ASSERT_TRUE(WaitFor([&] {
    int answered = 0;
    for (int i = 0; i < kRepeats; ++i) {
      answered_early[i] = repeats[i]->count() > 0;
      answered += answered_early[i] ? 1 : 0;
    }
    return answered == kRepeats - kWaiting;
  }));
  absl::SleepFor(absl::Milliseconds(50));
  int early = 0;
  for (int i = 0; i < kRepeats; ++i) early += repeats[i]->count() > 0 ? 1 : 0;
  EXPECT_EQ(early, kRepeats - kWaiting) << "more repeats were answered than the cap allows";
  fake_.ReleaseSync();
  auto running = first.First();
  ASSERT_TRUE(running.ok()) << running.status();
  for (int i = 0; i < kRepeats; ++i) {
    auto job = repeats[i]->First();
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->state(), answered_early[i] ? v1::SyncJob::QUEUED : v1::SyncJob::RUNNING) << i;
  }
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(JobEngineTest, AnAbandonedCallLeavesTheJobSubmittingForTheNextStart) {
  StartEngine();
  ApiError cut;
  cut.kind = ErrorKind::kOutcomeUnknown;
  cut.code = tencent::kAbandonedCode;
  cut.message = "abandoned at shutdown";
  cut.action = "SyncBlueprint";
  fake_.ScriptSyncError(tencent::MakeStatus(cut));
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(),
                  replies.Callback());
  // Answered (shutdown waits for callers such as the policy controller),
  // with the job as last written, not as failed.
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(Stored(job->name()).phase(), JobRecord::SUBMITTING);
  EXPECT_EQ(Stored(job->name()).job().state(), v1::SyncJob::QUEUED);
}

TEST_F(JobEngineTest, AnUnknownOutcomeSaysItIsBeingReconciled) {
  JobEngineOptions options = FastOptions();
  options.reconcile_grace = absl::Hours(1);  // still reconciling while the test looks
  StartEngine(options);
  fake_.ScriptSyncError(Upstream(ErrorKind::kOutcomeUnknown, "ClientError.OutcomeUnknown"));
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(job->state_reason(), kReconcilingReason);
  ASSERT_EQ(job->destinations_size(), 1);
  EXPECT_EQ(job->destinations(0).state(), v1::Destination::PENDING);
  EXPECT_EQ(Stored(job->name()).job().state_reason(), kReconcilingReason);
  EXPECT_EQ(Job(job->name()).state_reason(), kReconcilingReason);
}

TEST_F(JobEngineTest, ReplyByInThePastAnswersQueuedAtOnce) {
  StartEngine();
  fake_.HoldSync();
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::Now() - absl::Seconds(1),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(fake_.sync_completed(), 0);
  fake_.ReleaseSync();
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::RUNNING));
  EXPECT_EQ(replies.count(), 1u);
}

TEST_F(JobEngineTest, WithoutReplyByTheCallerWaitsForTheCall) {
  StartEngine();
  fake_.HoldSync();
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(replies.count(), 0u);
  fake_.ReleaseSync();
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::RUNNING);
}

TEST_F(JobEngineTest, ShutdownAnswersPendingCallerAndLetsTheCallFinish) {
  StartEngine();
  fake_.HoldSync();
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  std::thread stopper([this] { engine_->Shutdown(absl::Now() + absl::Milliseconds(50)); });
  // After the drain deadline the caller gets the job as it stands.
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(fake_.sync_completed(), 0);
  fake_.ReleaseSync();
  stopper.join();
  // The call's outcome was still recorded.
  EXPECT_EQ(Stored(job->name()).phase(), JobRecord::SUBMITTED);
  EXPECT_EQ(Stored(job->name()).job().state(), v1::SyncJob::RUNNING);
  EXPECT_EQ(replies.count(), 1u);
  EXPECT_FALSE(engine_->serving());

  Replies late;
  engine_->Submit(Request(kSrc, kBp2, {"ap-singapore"}), absl::InfiniteFuture(), late.Callback());
  ASSERT_EQ(late.count(), 1u) << "Submit after Shutdown must answer at once";
  EXPECT_EQ(late.First().status().code(), absl::StatusCode::kUnavailable);
}

// "Called exactly once per Submit" must hold for a Submit accepted just
// before Shutdown whose job is recorded while the engine is stopping.
TEST_F(JobEngineTest, SubmitAcceptedBeforeShutdownIsAnswered) {
  JobEngineOptions o = FastOptions();
  o.workers = 1;
  StartEngine(o);
  fake_.HoldSync();
  Replies in_flight, accepted;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(),
                  in_flight.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  // Accepted (serving() is true) but its recording waits for the only worker.
  ASSERT_TRUE(engine_->serving());
  engine_->Submit(Request(kSrc, kBp2, {"ap-singapore"}), absl::InfiniteFuture(),
                  accepted.Callback());
  std::thread stopper([this] { engine_->Shutdown(absl::Now() + absl::Milliseconds(50)); });
  ASSERT_TRUE(in_flight.First().ok());  // answered by Shutdown after the drain deadline
  fake_.ReleaseSync();
  stopper.join();
  EXPECT_TRUE(WaitFor([&] { return accepted.count() == 1; }, absl::Seconds(2)))
      << "a Submit accepted before Shutdown was never answered";
}

TEST_F(JobEngineTest, GetOfUnknownJobIsNotFound) {
  StartEngine();
  EXPECT_EQ(Get(*engine_, NewJobName()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(engine_->serving());
}

// --- Several replicas on one store (an elector per engine). ---

// An in-process lease: one holder at a time until released or revoked.
class FakeLease final : public LeaseBackend {
 public:
  absl::StatusOr<State> TryAcquireOrRenew(const std::string& holder, absl::Duration) override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("store down (scripted)");
    if (holder_.empty()) {
      holder_ = holder;
      ++epoch_;
    }
    return State{holder_ == holder, epoch_};
  }
  absl::Status Release(const std::string& holder) override {
    absl::MutexLock lock(&mu_);
    if (holder_ == holder) holder_.clear();
    return absl::OkStatus();
  }
  // The lease expired (e.g. its holder was partitioned away).
  void Revoke() {
    absl::MutexLock lock(&mu_);
    holder_.clear();
  }
  void SetDown(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }
  std::string holder() const {
    absl::MutexLock lock(&mu_);
    return holder_;
  }

 private:
  mutable absl::Mutex mu_;
  std::string holder_ ABSL_GUARDED_BY(mu_);
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
};

LeaderElectorOptions FastLease(const std::string& holder) {
  LeaderElectorOptions o;
  o.holder = holder;
  o.lease = absl::Milliseconds(400);
  o.renew_interval = absl::Milliseconds(20);
  o.margin = absl::Milliseconds(100);
  return o;
}

class ReplicatedEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { log::SetLevel(log::Level::kError); }
  static void TearDownTestSuite() { log::SetLevel(log::Level::kInfo); }

  struct Replica {
    std::unique_ptr<LeaderElector> elector;
    std::unique_ptr<LockCheckingStore> store;
    std::unique_ptr<JobEngine> engine;
  };

  ReplicatedEngineTest() {
    auto flaky = std::make_unique<FlakyStore>();
    flaky_ = flaky.get();
    store_ = std::move(flaky);
  }
  ~ReplicatedEngineTest() override {
    fake_.ReleaseSync();
    for (auto& r : replicas_) {
      r.engine.reset();
      r.elector.reset();
    }
  }

  Replica& AddReplica(const std::string& holder,
                      absl::Duration follow_interval = absl::Milliseconds(10)) {
    Replica r;
    r.elector = std::make_unique<LeaderElector>(FastLease(holder), &lease_);
    EXPECT_TRUE(r.elector->Validate().ok());
    r.elector->Start();
    JobEngineOptions o = FastOptions();
    o.elector = r.elector.get();
    o.follow_interval = follow_interval;
    r.store = std::make_unique<LockCheckingStore>(store_.get());
    r.engine = std::make_unique<JobEngine>(o, r.store.get(), &checked_fake_);
    EXPECT_TRUE(r.engine->Start().ok());
    replicas_.push_back(std::move(r));
    return replicas_.back();
  }

  absl::StatusOr<JobRecord> Stored(const std::string& name) { return store_->GetJob(name); }

  FakeLighthouse fake_;
  LockCheckingClient checked_fake_{&fake_};
  FakeLease lease_;
  FlakyStore* flaky_ = nullptr;
  std::unique_ptr<JobStore> store_;
  std::deque<Replica> replicas_;  // stable references
};

TEST_F(ReplicatedEngineTest, OnlyTheLeaderCallsUpstreamAndAJobSentToAFollowerIsSubmittedOnce) {
  Replica& a = AddReplica("a");
  Replica& b = AddReplica("b");
  ASSERT_EQ(lease_.holder(), "a");
  ASSERT_TRUE(WaitFor([&] { return a.engine->stats().leader_term > 0; }));
  EXPECT_EQ(b.engine->stats().leader_term, 0);

  // Submitted to the follower: recorded there, run by the leader, and the
  // follower's caller gets the job with its new destination ids.
  Replies reply;
  b.engine->Submit(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}), absl::InfiniteFuture(),
                   reply.Callback());
  absl::StatusOr<v1::SyncJob> job = reply.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::RUNNING);
  ASSERT_EQ(job->destinations_size(), 2);
  EXPECT_FALSE(job->destinations(0).blueprint_id().empty());
  EXPECT_EQ(fake_.sync_count(), 1);
  EXPECT_EQ(a.engine->stats().sync_calls, 1);
  EXPECT_EQ(b.engine->stats().sync_calls, 0);

  // Polled by the leader; a watcher on the follower sees it finish.
  Seen seen;
  uint64_t id = 0;
  ASSERT_TRUE(Watch(*b.engine, job->name(), &id, seen).ok());
  EXPECT_NE(id, 0u);
  for (const auto& d : job->destinations()) fake_.SetState(d.region(), d.blueprint_id(), "NORMAL");
  a.engine->PollOnceForTest();
  ASSERT_TRUE(WaitFor([&] {
    auto all = seen.all();
    return !all.empty() && all.back() && all.back()->state() == v1::SyncJob::SUCCEEDED;
  })) << "the follower's watcher never saw the leader finish the job";
  b.engine->Unwatch(id);
  EXPECT_EQ(fake_.sync_count(), 1);
  auto got = Get(*b.engine, job->name());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state(), v1::SyncJob::SUCCEEDED);
}

TEST_F(ReplicatedEngineTest, ACancelAskedOnAFollowerIsCarriedOutByTheLeader) {
  Replica& a = AddReplica("a");
  Replica& b = AddReplica("b");
  ASSERT_TRUE(WaitFor([&] { return a.engine->stats().leader_term > 0; }));
  fake_.HoldSync();
  Replies first;
  a.engine->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::Now() + absl::Milliseconds(20),
                   first.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  Replies second;
  b.engine->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), second.Callback());
  auto queued = second.First();
  ASSERT_TRUE(queued.ok()) << queued.status();
  ASSERT_EQ(queued->state(), v1::SyncJob::QUEUED);
  ASSERT_TRUE(WaitFor([&] {
    auto rec = Stored(queued->name());
    return rec.ok() && Get(*a.engine, queued->name()).ok();
  }));

  Replies cancel;
  b.engine->Cancel(queued->name(), cancel.Callback());
  auto cancelled = cancel.First();
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::SyncJob::CANCELLED);
  auto stored = Stored(queued->name());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->job().state(), v1::SyncJob::CANCELLED);
  EXPECT_TRUE(stored->cancel_requested());

  fake_.ReleaseSync();
  auto running = first.First();
  ASSERT_TRUE(running.ok());
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(fake_.sync_count(), 1);  // the cancelled job was never sent
  EXPECT_EQ(b.engine->stats().sync_calls, 0);
}

TEST_F(ReplicatedEngineTest, FollowerAnswersQueuedByReplyByWhenNobodyLeads) {
  lease_.SetDown(true);  // nobody can take the lease
  Replica& a = AddReplica("a");
  EXPECT_EQ(a.engine->stats().leader_term, 0);
  Replies reply;
  a.engine->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::Now() + absl::Milliseconds(50),
                   reply.Callback());
  absl::StatusOr<v1::SyncJob> job = reply.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(fake_.sync_count(), 0);
  // When the store is back, this replica leads and submits the job.
  lease_.SetDown(false);
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  ASSERT_TRUE(WaitFor([&] {
    auto rec = Stored(job->name());
    return rec.ok() && rec->phase() == JobRecord::SUBMITTED;
  }));
}

TEST_F(ReplicatedEngineTest, LeaderLossMidSubmissionIsReconciledByTheNextLeaderNotResent) {
  Replica& a = AddReplica("a");
  ASSERT_TRUE(WaitFor([&] { return a.engine->stats().leader_term > 0; }));
  fake_.HoldSync();
  Replies reply;
  a.engine->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), reply.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  // The call is on the wire when a is deposed (its lease expired) and b leads.
  Replica& b = AddReplica("b");
  a.elector->Stop();  // a stops renewing; its term lapses
  lease_.Revoke();
  ASSERT_TRUE(WaitFor([&] { return b.engine->stats().leader_term > 0; }));
  ASSERT_TRUE(WaitFor([&] { return a.engine->stats().leader_term == 0; }));
  // The call executes upstream (its copy appears) and answers late.
  const SyncBlueprintRequest sent = fake_.sync_calls()[0].request;
  fake_.Put(kSrc, MakeBlueprint(kBp, kImageName, "NORMAL", absl::Now() - absl::Hours(1)));
  fake_.Put("ap-singapore", MakeBlueprint("lhbp-copy0001", kImageName, "SYNCING", absl::Now()));
  fake_.ReleaseSync();
  auto name = reply.First();
  ASSERT_TRUE(name.ok()) << name.status();
  // b found the job SUBMITTING and adopted the copy instead of resending.
  ASSERT_TRUE(WaitFor([&] {
    auto rec = Stored(name->name());
    return rec.ok() && rec->phase() == JobRecord::SUBMITTED &&
           rec->job().destinations(0).blueprint_id() == "lhbp-copy0001";
  })) << "the new leader did not adopt the copy";
  EXPECT_EQ(fake_.sync_count(), 1) << "the job was submitted twice";
  EXPECT_EQ(b.engine->stats().sync_calls, 0);
}

TEST_F(ReplicatedEngineTest, ADeposedLeaderDoesNotSendWhatItRecordedAsSubmitting) {
  // The engine checks leadership only at start here, so it still believes
  // it leads when its lease has lapsed; the check right before the call
  // must stop it.
  Replica& a = AddReplica("a", absl::Hours(1));
  const int64_t term = a.engine->stats().leader_term;
  ASSERT_GT(term, 0);
  a.elector->Stop();
  ASSERT_EQ(a.elector->Term(), 0);
  Replies reply;
  a.engine->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), reply.Callback());
  absl::StatusOr<v1::SyncJob> job = reply.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(fake_.sync_count(), 0) << "a replica whose lease lapsed called SyncBlueprint";
  // Left for reconciliation (which resubmits only if nothing was created).
  auto rec = Stored(job->name());
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->phase(), JobRecord::OUTCOME_UNKNOWN);
  EXPECT_EQ(a.engine->stats().leader_term, term);
}

TEST_F(ReplicatedEngineTest, FollowerAnswersAJobQueuedBehindAnotherAtOnce) {
  Replica& a = AddReplica("a");
  Replica& b = AddReplica("b");
  ASSERT_TRUE(WaitFor([&] { return a.engine->stats().leader_term > 0; }));
  fake_.HoldSync();
  Replies first, second;
  a.engine->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), first.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  // Same source blueprint, sent to the follower, no reply deadline: it
  // cannot start before the first one ends, so it is answered QUEUED now.
  b.engine->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), second.Callback());
  absl::StatusOr<v1::SyncJob> queued = second.First();
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->state(), v1::SyncJob::QUEUED);
  EXPECT_EQ(first.count(), 0u);
  EXPECT_EQ(fake_.sync_count(), 1);
  fake_.ReleaseSync();
  ASSERT_TRUE(first.First().ok());
}

JobChanges Changed(JobChange::Kind kind, const std::vector<std::string>& names) {
  JobChanges changes;
  for (const std::string& name : names) changes.changes.push_back(JobChange{kind, name});
  return changes;
}

// A leader following the (scripted) change feed, once it has made the full
// re-read that the feed's first resync asks for: from then on it reads
// what the feed names.
class FeedEngineTest : public ReplicatedEngineTest {
 protected:
  Replica& StartLeader(absl::Duration follow_interval = absl::Milliseconds(100)) {
    flaky_->with_feed = true;
    Replica& a = AddReplica("a", follow_interval);
    EXPECT_TRUE(WaitFor([&] { return a.engine->stats().leader_term > 0; }));
    // One full read on taking the lead, one for the feed's resync.
    EXPECT_TRUE(WaitFor([&] { return flaky_->feed_readers() == 1 && flaky_->full_reads >= 2; }));
    return a;
  }
  // A job recorded by another replica, with this name.
  JobRecord RecordElsewhere(const std::string& name, const std::string& dest) {
    JobRecord rec =
        MakeRecord(kSrc, kBp, {{dest, ""}}, JobRecord::NOT_SUBMITTED, v1::SyncJob::QUEUED);
    rec.mutable_job()->set_name(name);
    absl::StatusOr<CreateJobResult> created = store_->CreateJob(rec);
    EXPECT_TRUE(created.ok()) << created.status();
    return rec;
  }
};

// Review M1: the feed's names were read in name order and adopted so, and
// the first adopted job on a source is the one sent first.
TEST_F(FeedEngineTest, JobsNamedByTheFeedAreSentInTheOrderTheyWereRecorded) {
  StartLeader();
  fake_.HoldSync();
  const std::string earlier = "syncJobs/ffffffff-ffff-4fff-bfff-ffffffffffff";
  const std::string later = "syncJobs/00000000-0000-4000-8000-000000000000";
  RecordElsewhere(earlier, "ap-singapore");
  RecordElsewhere(later, "ap-tokyo");
  flaky_->Notify(Changed(JobChange::Kind::kCreated, {earlier, later}));
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  EXPECT_EQ(Stored(earlier)->phase(), JobRecord::SUBMITTING);
  EXPECT_EQ(Stored(later)->phase(), JobRecord::NOT_SUBMITTED);
  fake_.ReleaseSync();
  // The later one waits for the earlier (RUNNING until polled) to finish.
  EXPECT_TRUE(WaitFor([&] { return Stored(earlier)->phase() == JobRecord::SUBMITTED; }));
  EXPECT_EQ(Stored(later)->phase(), JobRecord::NOT_SUBMITTED);
}

TEST_F(FeedEngineTest, TheLeaderReadsOnlyJobsItDoesNotRunUnlessTheirCancellationWasAsked) {
  Replica& a = StartLeader();
  Replies running, reply;
  a.engine->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(),
                   running.Callback());
  ASSERT_TRUE(running.First().ok());
  // Queued behind the first (which stays RUNNING: nobody polls here).
  a.engine->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), reply.Callback());
  absl::StatusOr<v1::SyncJob> job = reply.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->state(), v1::SyncJob::QUEUED);
  // Its own write comes back through the feed with a job it does not know:
  // only that one is read.
  const int reads = flaky_->job_reads;
  const std::string unknown = "syncJobs/00000000-0000-4000-8000-00000000000a";
  flaky_->Notify(Changed(JobChange::Kind::kUpdated, {job->name(), unknown}));
  ASSERT_TRUE(WaitFor([&] { return flaky_->job_reads > reads; }));
  absl::SleepFor(absl::Milliseconds(300));  // a few more cycles
  EXPECT_EQ(flaky_->job_reads, reads + 1);
  // Cancellation asked on another replica: read, and carried out here.
  ASSERT_TRUE(store_->RequestCancel(job->name()).ok());
  flaky_->Notify(Changed(JobChange::Kind::kCancelRequested, {job->name()}));
  EXPECT_TRUE(WaitFor([&] { return Stored(job->name())->job().state() == v1::SyncJob::CANCELLED; }));
}

TEST_F(FeedEngineTest, TooManyNamesAtOnceBecomeOneFullReadNotOneReadEach) {
  StartLeader();
  const int reads = flaky_->job_reads;
  const int full = flaky_->full_reads;
  std::vector<std::string> names;
  for (int i = 0; i < 10001; ++i) {
    names.push_back(absl::StrFormat("syncJobs/00000000-0000-4000-8000-%012d", i));
  }
  flaky_->Notify(Changed(JobChange::Kind::kUpdated, names));
  ASSERT_TRUE(WaitFor([&] { return flaky_->full_reads > full; }));
  EXPECT_LT(flaky_->job_reads - reads, 100);
}

// Review S1: every resync asked for (a reconnect, a payload the feed cannot
// read: anyone with access to the database can send one) was a full read at
// once, back to back.
TEST_F(FeedEngineTest, AResyncReadsWhatNoNotificationNamedButAtMostOncePerFollowInterval) {
  StartLeader(absl::Milliseconds(500));
  // Recorded elsewhere with its notification lost.
  const std::string unheard = "syncJobs/00000000-0000-4000-8000-00000000000b";
  RecordElsewhere(unheard, "ap-singapore");
  const int full = flaky_->full_reads;
  const absl::Time start = absl::Now();
  while (absl::Now() < start + absl::Seconds(1)) {
    flaky_->Notify(JobChanges{{}, /*resync=*/true});
    absl::SleepFor(absl::Milliseconds(5));
  }
  const int during = flaky_->full_reads - full;
  // 1 s of asking, one full read per 500 ms; one more for scheduling slack.
  EXPECT_LE(during, 3) << "full reads during 1 s of resync requests";
  EXPECT_GE(during, 1);
  // The job nobody was told about is run all the same.
  EXPECT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  EXPECT_NE(Stored(unheard)->phase(), JobRecord::NOT_SUBMITTED);
}

// Review S5(2): each deleted job was read back (retention deleting 1,000
// jobs was 1,000 reads).
TEST_F(FeedEngineTest, DeletedJobsAreNotReadBack) {
  StartLeader();
  const int reads = flaky_->job_reads;
  std::vector<std::string> deleted;
  for (int i = 0; i < 50; ++i) {
    deleted.push_back(absl::StrFormat("syncJobs/00000000-0000-4000-8000-%012d", i));
  }
  flaky_->Notify(Changed(JobChange::Kind::kDeleted, deleted));
  // A marker: a job nobody here runs, which is read.
  flaky_->Notify(
      Changed(JobChange::Kind::kUpdated, {"syncJobs/00000000-0000-4000-8000-0000000000ff"}));
  ASSERT_TRUE(WaitFor([&] { return flaky_->job_reads > reads; }));
  absl::SleepFor(absl::Milliseconds(300));  // a few more cycles
  EXPECT_EQ(flaky_->job_reads, reads + 1);
}

// Session 8 review: a job run elsewhere, finished and deleted there in one
// batch of notifications, was never read again on a follower (the delete
// dropped the name), so a watch of it there never ended.
TEST_F(FeedEngineTest, AFollowersWatchOfAJobDeletedElsewhereEndsNotFound) {
  ASSERT_TRUE(lease_.TryAcquireOrRenew("elsewhere", absl::Hours(1)).ok());
  flaky_->with_feed = true;
  Replica& b = AddReplica("b", absl::Hours(1));
  ASSERT_TRUE(WaitFor([&] { return flaky_->feed_readers() == 1; }));
  JobRecord rec = MakeRecord(kSrc, kBp, {{"ap-singapore", "lhbp-sg000009"}},
                             JobRecord::SUBMITTED, v1::SyncJob::RUNNING);
  ASSERT_TRUE(store_->CreateJob(rec).ok());
  const std::string name = rec.job().name();
  Seen seen;
  b.engine->WatchJob(name, seen.Callback());
  absl::Cleanup stop_first = [&] { b.engine.reset(); };  // before `seen` goes
  ASSERT_TRUE(WaitFor([&] { return seen.count() >= 1; }));
  // A change the follower reads and delivers: the job is followed from then
  // on, so only a notification brings it up again.
  rec.mutable_job()->mutable_destinations(0)->set_blueprint_state("SYNCING");
  ASSERT_TRUE(store_->UpdateJob(rec).ok());
  flaky_->Notify(Changed(JobChange::Kind::kUpdated, {name}));
  ASSERT_TRUE(WaitFor([&] { return seen.count() >= 2; }));
  // Finished and deleted elsewhere; both notifications arrive together.
  rec.mutable_job()->set_state(v1::SyncJob::SUCCEEDED);
  rec.mutable_job()->mutable_destinations(0)->set_state(v1::Destination::SUCCEEDED);
  ASSERT_TRUE(store_->UpdateJob(rec).ok());
  ASSERT_TRUE(store_->DeleteJob(name).ok());
  JobChanges both = Changed(JobChange::Kind::kUpdated, {name});
  both.changes.push_back(JobChange{JobChange::Kind::kDeleted, name});
  flaky_->Notify(both);
  EXPECT_TRUE(WaitFor([&] { return absl::IsNotFound(seen.error()); }))
      << "the watch did not end: " << seen.error();
  EXPECT_THAT(std::string(seen.error().message()), HasSubstr("was deleted"));
}

// Review S6: a follower's caller whose job was read before an earlier job on
// its source showed up waited until its reply_by, not answered QUEUED.
TEST_F(FeedEngineTest, AFollowersCallerIsAnsweredQueuedOnceAnotherJobHoldsItsSource) {
  // Another process leads (and does nothing here).
  ASSERT_TRUE(lease_.TryAcquireOrRenew("elsewhere", absl::Hours(1)).ok());
  flaky_->with_feed = true;
  Replica& b = AddReplica("b", absl::Hours(1));
  ASSERT_TRUE(WaitFor([&] { return flaky_->feed_readers() == 1; }));
  Replies reply;
  b.engine->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::Now() + absl::Hours(1),
                   reply.Callback());
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(reply.count(), 0u) << "answered before any other job held its source";
  // The leader elsewhere starts another job on the same source blueprint.
  JobRecord other = MakeRecord(kSrc, kBp, {{"ap-singapore", "lhbp-oth00001"}},
                               JobRecord::SUBMITTED, v1::SyncJob::RUNNING);
  ASSERT_TRUE(store_->CreateJob(other).ok());
  flaky_->Notify(Changed(JobChange::Kind::kCreated, {other.job().name()}));
  absl::StatusOr<v1::SyncJob> queued = reply.First();
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->state(), v1::SyncJob::QUEUED);
}

TEST_F(ReplicatedEngineTest, AJobWhoseFinalWriteFailedIsNotTakenUpAgain) {
  Replica& a = AddReplica("a");
  ASSERT_TRUE(WaitFor([&] { return a.engine->stats().leader_term > 0; }));
  // The source is NORMAL and has no copies: a reconcile would resubmit.
  fake_.Put(kSrc, MakeBlueprint(kBp, kImageName, "NORMAL", absl::Now() - absl::Hours(1)));
  // SUBMITTING is written; then the store fails while Tencent rejects the
  // call, so the FAILED state is only in memory.
  fake_.ScriptSync([this](const SyncBlueprintRequest&,
                          const CallOptions&) -> absl::StatusOr<SyncBlueprintResponse> {
    flaky_->fail_updates = true;
    return Upstream(ErrorKind::kApi, "UnauthorizedOperation.NoPermission");
  });
  Replies reply;
  a.engine->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), reply.Callback());
  ASSERT_FALSE(reply.First().ok());
  flaky_->fail_updates = false;
  // The store still says SUBMITTING; the leader's scans must not take the
  // job up again (reconciling it would resubmit a job reported FAILED).
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(fake_.sync_count(), 1) << "a job already reported FAILED was sent again";
  // The next tracker cycle writes the final state.
  a.engine->PollOnceForTest();
  auto names = store_->ListJobs(JobQuery{});
  ASSERT_TRUE(names.ok());
  ASSERT_EQ(names->records.size(), 1u);
  EXPECT_EQ(names->records[0].job().state(), v1::SyncJob::FAILED);
  EXPECT_GT(flaky_->failed_updates.load(), 0);
}

TEST_F(ReplicatedEngineTest, ElectorRejectsUnsafeTimings) {
  LeaderElectorOptions o = FastLease("x");
  o.renew_interval = absl::Milliseconds(350);  // 350 + 100 >= 400
  LeaderElector e(o, &lease_);
  EXPECT_EQ(e.Validate().code(), absl::StatusCode::kInvalidArgument);
  o = FastLease("");
  EXPECT_EQ(LeaderElector(o, &lease_).Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ReplicatedEngineTest, ElectorTermLapsesWhenTheStoreIsUnreachable) {
  LeaderElector e(FastLease("x"), &lease_);
  e.RoundForTest();
  const int64_t term = e.Term();
  ASSERT_GT(term, 0);
  EXPECT_TRUE(e.store_reachable());
  lease_.SetDown(true);
  e.RoundForTest();
  EXPECT_FALSE(e.store_reachable());
  EXPECT_EQ(e.Term(), term) << "still inside the lease";
  ASSERT_TRUE(WaitFor([&] { return e.Term() == 0; }, absl::Seconds(2)));
  // Renewed later with the same epoch: the term continues.
  lease_.SetDown(false);
  e.RoundForTest();
  EXPECT_EQ(e.Term(), term);
}


// ---------------------------------------------------------------------------
// The end of a job's life: cancel, cleanup of unwanted copies, retry,
// delete, retention, and transient upstream codes.

class LifecycleTest : public ReconcileTest {
 protected:
  // Submits and waits for RUNNING with ids; returns the job.
  v1::SyncJob SubmitRunning(NewJob job) {
    Replies replies;
    engine_->Submit(std::move(job), absl::InfiniteFuture(), replies.Callback());
    auto answer = replies.First();
    EXPECT_TRUE(answer.ok()) << answer.status();
    if (!answer.ok()) return v1::SyncJob();
    EXPECT_TRUE(WaitForIds(answer->name()));
    return Job(answer->name());
  }
  absl::StatusOr<v1::SyncJob> CancelJob(const std::string& name) {
    Replies replies;
    engine_->Cancel(name, replies.Callback());
    return replies.First();
  }
  bool WaitForCleanup(const std::string& name, int region_index,
                      v1::Destination::CopyCleanup cleanup) {
    return WaitFor([&] {
      engine_->PollOnceForTest();
      auto job = Get(*engine_, name);
      return job.ok() && job->destinations(region_index).copy_cleanup() == cleanup;
    });
  }
  int DeletesOf(const std::string& id) {
    int n = 0;
    for (const auto& call : fake_.delete_calls()) {
      for (const auto& b : call.blueprint_ids) n += b == id ? 1 : 0;
    }
    return n;
  }
};

TEST_F(LifecycleTest, CancelOfAQueuedJobIsDurableAndItIsNeverSent) {
  StartEngine();
  fake_.HoldSync();
  Replies first;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::Now() + absl::Milliseconds(50),
                  first.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  Replies second;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), second.Callback());
  auto queued = second.First();
  ASSERT_TRUE(queued.ok()) << queued.status();
  ASSERT_EQ(queued->state(), v1::SyncJob::QUEUED);

  auto cancelled = CancelJob(queued->name());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::SyncJob::CANCELLED);
  EXPECT_TRUE(cancelled->has_cancel_time());
  EXPECT_TRUE(cancelled->has_end_time());
  EXPECT_EQ(cancelled->destinations(0).state(), v1::Destination::CANCELLED);
  // Durable before the answer.
  EXPECT_EQ(Stored(queued->name()).job().state(), v1::SyncJob::CANCELLED);
  EXPECT_FALSE(IsOpen(Stored(queued->name())));

  // Cancelling again is harmless.
  auto again = CancelJob(queued->name());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state(), v1::SyncJob::CANCELLED);

  fake_.ReleaseSync();
  auto running = first.First();
  ASSERT_TRUE(running.ok());
  ASSERT_TRUE(WaitForIds(running->name()));
  fake_.SetState("ap-singapore", Job(running->name()).destinations(0).blueprint_id(), "NORMAL");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(running->name(), v1::SyncJob::SUCCEEDED));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(fake_.sync_count(), 1);  // never the cancelled one

  // A finished job that was not cancelled cannot be.
  auto refused = CancelJob(running->name());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetJobName(refused.status()), running->name());
}

TEST_F(LifecycleTest, ACancelWhoseWriteFailedIsNeverAnsweredCancelledFromMemory) {
  StartEngine(FastOptions(), SystemClock::Default(), &flaky_);
  fake_.HoldSync();
  Replies first;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::Now() + absl::Milliseconds(20),
                  first.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  Replies second;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), second.Callback());
  auto queued = second.First();
  ASSERT_TRUE(queued.ok());
  flaky_.fail_updates = true;
  for (int i = 0; i < 2; ++i) {
    auto refused = CancelJob(queued->name());
    ASSERT_FALSE(refused.ok()) << "attempt " << i << ": " << refused->ShortDebugString();
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  }
  flaky_.fail_updates = false;
  engine_->PollOnceForTest();  // retries the unwritten final state
  auto cancelled = CancelJob(queued->name());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::SyncJob::CANCELLED);
  EXPECT_EQ(flaky_.GetJob(queued->name())->job().state(), v1::SyncJob::CANCELLED);
  fake_.ReleaseSync();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(LifecycleTest, ACancelRecordedForAQueuedJobIsCarriedOutBeforeItCouldBeSent) {
  JobRecord rec =
      MakeRecord(kSrc, kBp, {{"ap-tokyo", ""}}, JobRecord::NOT_SUBMITTED, v1::SyncJob::QUEUED);
  ASSERT_TRUE(store_->CreateJob(rec).ok());
  ASSERT_TRUE(store_->RequestCancel(rec.job().name()).ok());
  StartEngine();
  ASSERT_TRUE(WaitForState(rec.job().name(), v1::SyncJob::CANCELLED));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(fake_.sync_count(), 0);
  EXPECT_EQ(Stored(rec.job().name()).job().state(), v1::SyncJob::CANCELLED);
}

TEST_F(LifecycleTest, ACancelWhileSubmittingIsBeingWrittenSendsNothing) {
  std::atomic<bool> once{false};
  std::thread canceller;
  absl::Notification cancel_answered;
  absl::StatusOr<v1::SyncJob> cancel_answer = absl::UnknownError("unset");
  flaky_.before_update = [&](const JobRecord& r) {
    if (r.phase() != JobRecord::SUBMITTING || once.exchange(true)) return;
    // The cancel lands while the SUBMITTING mark is being written.
    canceller = std::thread([&, name = r.job().name()] {
      engine_->Cancel(name, [&](absl::StatusOr<v1::SyncJob> j) {
        cancel_answer = std::move(j);
        cancel_answered.Notify();
      });
    });
    ASSERT_TRUE(WaitFor([&] { return engine_->stats().jobs_cancelled == 1; }));
  };
  StartEngine(FastOptions(), SystemClock::Default(), &flaky_);
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  cancel_answered.WaitForNotification();
  canceller.join();
  ASSERT_TRUE(cancel_answer.ok()) << cancel_answer.status();
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::CANCELLED));
  EXPECT_EQ(fake_.sync_count(), 0);
  EXPECT_EQ(flaky_.GetJob(job->name())->job().state(), v1::SyncJob::CANCELLED);
}

TEST_F(LifecycleTest, CancelOfARunningJobDeletesEveryCopyOnceDeletable) {
  StartEngine();
  const v1::SyncJob job = SubmitRunning(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}));
  const std::string sg = job.destinations(0).blueprint_id();
  const std::string tk = job.destinations(1).blueprint_id();
  fake_.SetState("ap-singapore", sg, "NORMAL");
  fake_.SetState("ap-tokyo", tk, "SYNCING");

  auto cancelling = CancelJob(job.name());
  ASSERT_TRUE(cancelling.ok()) << cancelling.status();
  EXPECT_EQ(cancelling->state(), v1::SyncJob::CANCELLING);
  // The cancel wakes the tracker: the NORMAL copy may be gone by the answer.
  EXPECT_THAT(cancelling->destinations(0).copy_cleanup(),
              ::testing::AnyOf(v1::Destination::DELETE_PENDING, v1::Destination::DELETED));
  EXPECT_EQ(cancelling->destinations(1).copy_cleanup(), v1::Destination::DELETE_PENDING);

  // The NORMAL copy goes now; the SYNCING one must wait.
  ASSERT_TRUE(WaitForCleanup(job.name(), 0, v1::Destination::DELETED));
  EXPECT_EQ(DeletesOf(sg), 1);
  EXPECT_EQ(DeletesOf(tk), 0);
  EXPECT_EQ(Job(job.name()).state(), v1::SyncJob::CANCELLING);
  EXPECT_TRUE(Job(job.name()).destinations(0).has_copy_delete_time());

  fake_.SetState("ap-tokyo", tk, "NORMAL");
  ASSERT_TRUE(WaitForCleanup(job.name(), 1, v1::Destination::DELETED));
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::CANCELLED));
  const JobRecord stored = Stored(job.name());
  EXPECT_EQ(stored.job().state(), v1::SyncJob::CANCELLED);
  EXPECT_FALSE(IsOpen(stored));
  EXPECT_EQ(DeletesOf(tk), 1);
  EXPECT_EQ(engine_->stats().copies_deleted, 2);
}

TEST_F(LifecycleTest, CancelWhileTheSubmissionIsInFlightDeletesWhatItCreated) {
  StartEngine();
  fake_.HoldSync();
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::Now() + absl::Milliseconds(20),
                  replies.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  auto queued = replies.First();
  ASSERT_TRUE(queued.ok());
  auto cancelling = CancelJob(queued->name());
  ASSERT_TRUE(cancelling.ok()) << cancelling.status();
  EXPECT_EQ(cancelling->state(), v1::SyncJob::CANCELLING);

  fake_.ReleaseSync();
  ASSERT_TRUE(WaitForIds(queued->name()));
  const std::string id = Job(queued->name()).destinations(0).blueprint_id();
  EXPECT_EQ(Job(queued->name()).state(), v1::SyncJob::CANCELLING);
  fake_.SetState("ap-singapore", id, "NORMAL");
  ASSERT_TRUE(WaitForCleanup(queued->name(), 0, v1::Destination::DELETED));
  ASSERT_TRUE(WaitForState(queued->name(), v1::SyncJob::CANCELLED));
}

TEST_F(LifecycleTest, CancelWhileTheSubmissionIsInFlightThatIsRejectedEndsCancelled) {
  StartEngine();
  fake_.HoldSync();
  fake_.ScriptSyncError(Upstream(ErrorKind::kApi, "LimitExceeded.BlueprintQuotaLimitExceeded"));
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::Now() + absl::Milliseconds(20),
                  replies.Callback());
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 1; }));
  auto queued = replies.First();
  ASSERT_TRUE(queued.ok());
  ASSERT_TRUE(CancelJob(queued->name()).ok());
  fake_.ReleaseSync();
  ASSERT_TRUE(WaitForState(queued->name(), v1::SyncJob::CANCELLED));
  EXPECT_EQ(fake_.delete_count(), 0);
}

TEST_F(LifecycleTest, FailedCopyIsDeletedAndTheJobSaysSo) {
  StartEngine();
  const v1::SyncJob job = SubmitRunning(Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"}));
  const std::string sg = job.destinations(0).blueprint_id();
  const std::string tk = job.destinations(1).blueprint_id();
  fake_.SetState("ap-singapore", sg, "NORMAL");
  fake_.SetState("ap-tokyo", tk, "SYNCING_FAILED");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::FAILED));
  ASSERT_TRUE(WaitForCleanup(job.name(), 1, v1::Destination::DELETED));
  const v1::SyncJob after = Job(job.name());
  EXPECT_EQ(after.destinations(0).copy_cleanup(), v1::Destination::COPY_CLEANUP_UNSPECIFIED);
  EXPECT_EQ(after.destinations(1).state(), v1::Destination::FAILED);
  EXPECT_TRUE(after.destinations(1).has_copy_delete_time());
  EXPECT_EQ(DeletesOf(sg), 0);  // the good copy stays
  EXPECT_EQ(DeletesOf(tk), 1);
  EXPECT_EQ(DeletesOf(kBp), 0);  // never the source
  const JobRecord stored = Stored(job.name());
  EXPECT_EQ(stored.job().destinations(1).copy_cleanup(), v1::Destination::DELETED);
  EXPECT_FALSE(IsOpen(stored));
}

TEST_F(LifecycleTest, KeepFailedCopiesKeepsThem) {
  StartEngine();
  NewJob asked = Request(kSrc, kBp, {"ap-tokyo"});
  asked.keep_failed_copies = true;
  const v1::SyncJob job = SubmitRunning(std::move(asked));
  EXPECT_TRUE(job.keep_failed_copies());
  fake_.SetState("ap-tokyo", job.destinations(0).blueprint_id(), "SYNCING_FAILED");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::FAILED));
  engine_->PollOnceForTest();
  EXPECT_EQ(Job(job.name()).destinations(0).copy_cleanup(), v1::Destination::KEPT);
  EXPECT_EQ(fake_.delete_count(), 0);
}

TEST_F(LifecycleTest, ACopyStillSyncingAtTheDeadlineIsDeletedWhenItLands) {
  StartEngine();
  NewJob asked = Request(kSrc, kBp, {"ap-tokyo"});
  asked.timeout = absl::Milliseconds(300);
  const v1::SyncJob job = SubmitRunning(std::move(asked));
  const std::string id = job.destinations(0).blueprint_id();
  fake_.SetState("ap-tokyo", id, "SYNCING");
  absl::SleepFor(absl::Milliseconds(350));
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::FAILED));
  EXPECT_EQ(Job(job.name()).destinations(0).copy_cleanup(), v1::Destination::DELETE_PENDING);
  engine_->PollOnceForTest();
  EXPECT_EQ(DeletesOf(id), 0);  // SYNCING: not deletable yet
  fake_.SetState("ap-tokyo", id, "NORMAL");
  ASSERT_TRUE(WaitForCleanup(job.name(), 0, v1::Destination::DELETED));
  EXPECT_EQ(DeletesOf(id), 1);
  EXPECT_FALSE(IsOpen(Stored(job.name())));
}

TEST_F(LifecycleTest, AnOccupiedCopyIsTriedAgainAndTheErrorReported) {
  StartEngine();
  const v1::SyncJob job = SubmitRunning(Request(kSrc, kBp, {"ap-tokyo"}));
  const std::string id = job.destinations(0).blueprint_id();
  fake_.SetState("ap-tokyo", id, "SYNCING_FAILED");
  fake_.SetOccupied("ap-tokyo", id, true);
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::FAILED));
  ASSERT_TRUE(WaitFor([&] {
    engine_->PollOnceForTest();
    return Job(job.name()).destinations(0).has_cleanup_error();
  }));
  const v1::SyncJob failing = Job(job.name());
  EXPECT_EQ(failing.destinations(0).copy_cleanup(), v1::Destination::DELETE_PENDING);
  EXPECT_EQ(failing.destinations(0).cleanup_error().tencent_code(),
            "UnsupportedOperation.BlueprintOccupied");
  EXPECT_TRUE(IsOpen(Stored(job.name())));
  fake_.SetOccupied("ap-tokyo", id, false);
  ASSERT_TRUE(WaitForCleanup(job.name(), 0, v1::Destination::DELETED));
  EXPECT_FALSE(Job(job.name()).destinations(0).has_cleanup_error());
}

TEST_F(LifecycleTest, ACopyGoneBehindTheServicesBackIsRecordedAsGone) {
  StartEngine();
  const v1::SyncJob job = SubmitRunning(Request(kSrc, kBp, {"ap-tokyo"}));
  const std::string id = job.destinations(0).blueprint_id();
  fake_.SetState("ap-tokyo", id, "SYNCING");
  engine_->PollOnceForTest();
  ASSERT_TRUE(CancelJob(job.name()).ok());
  engine_->PollOnceForTest();  // seen SYNCING while pending
  fake_.Remove("ap-tokyo", id);
  ASSERT_TRUE(WaitForCleanup(job.name(), 0, v1::Destination::ALREADY_GONE));
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::CANCELLED));
  EXPECT_EQ(DeletesOf(id), 0);
}

TEST_F(LifecycleTest, CleanupIsGivenUpAfterItsWindow) {
  JobEngineOptions o = FastOptions();
  o.cleanup_give_up_after = absl::Milliseconds(100);
  StartEngine(o);
  const v1::SyncJob job = SubmitRunning(Request(kSrc, kBp, {"ap-tokyo"}));
  const std::string id = job.destinations(0).blueprint_id();
  fake_.SetState("ap-tokyo", id, "SYNCING_FAILED");
  fake_.SetOccupied("ap-tokyo", id, true);
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::FAILED));
  absl::SleepFor(absl::Milliseconds(150));
  fake_.SetState("ap-tokyo", id, "ISOLATING");  // not deletable: nothing to try
  ASSERT_TRUE(WaitForCleanup(job.name(), 0, v1::Destination::DELETE_ABANDONED));
  EXPECT_TRUE(Job(job.name()).destinations(0).has_cleanup_error());
  EXPECT_FALSE(IsOpen(Stored(job.name())));
}

TEST_F(LifecycleTest, AFinishedJobWithACopyToDeleteIsCleanedUpAfterARestart) {
  JobRecord rec = MakeRecord(kSrc, kBp, {{"ap-tokyo", "lhbp-left0001"}}, JobRecord::SUBMITTED,
                             v1::SyncJob::FAILED);
  auto* d = rec.mutable_job()->mutable_destinations(0);
  d->set_state(v1::Destination::FAILED);
  d->set_blueprint_state("SYNCING_FAILED");
  d->set_copy_cleanup(v1::Destination::DELETE_PENDING);
  *rec.mutable_job()->mutable_end_time() = ToProto(absl::Now());
  ASSERT_TRUE(store_->CreateJob(rec).ok());
  fake_.SetState("ap-tokyo", "lhbp-left0001", "SYNCING_FAILED");
  StartEngine();
  ASSERT_TRUE(WaitForCleanup(rec.job().name(), 0, v1::Destination::DELETED));
  EXPECT_EQ(DeletesOf("lhbp-left0001"), 1);
  EXPECT_FALSE(IsOpen(Stored(rec.job().name())));
}

TEST_F(LifecycleTest, TransientUpstreamCodesAreReconciledNotFailedForGood) {
  for (const char* code : {"FailedOperation.RequestError",
                           "FailedOperation.DescribeBlueprintQuotaFailed", "ServiceUnavailable",
                           "ResourceUnavailable", "InternalError"}) {
    SCOPED_TRACE(code);
    if (engine_ == nullptr) StartEngine();
    const int syncs_before = fake_.sync_count();
    fake_.ScriptSyncError(Upstream(ErrorKind::kApi, code));
    Replies replies;
    engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}), absl::InfiniteFuture(), replies.Callback());
    auto job = replies.First();
    ASSERT_TRUE(job.ok()) << job.status();
    // The reconciler saw nothing made, so it sent again; that one went through.
    ASSERT_TRUE(WaitForIds(job->name())) << Job(job->name()).DebugString();
    EXPECT_EQ(Job(job->name()).state(), v1::SyncJob::RUNNING);
    EXPECT_EQ(fake_.sync_count(), syncs_before + 2);
    fake_.SetState("ap-tokyo", Job(job->name()).destinations(0).blueprint_id(), "NORMAL");
    engine_->PollOnceForTest();
    ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::SUCCEEDED));
  }
}

TEST_F(LifecycleTest, ATransientCodeThatNeverClearsFailsForGoodWithANonRetryableCode) {
  StartEngine();
  // Every attempt answered ServiceUnavailable, none executed (the world
  // stays as it was, so each reconcile finds nothing and sends again).
  for (int i = 0; i < kMaxSubmitAttempts + 2; ++i) {
    fake_.ScriptSyncError(Upstream(ErrorKind::kApi, "ServiceUnavailable"));
  }
  const std::string rid = "7a1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}, rid), absl::InfiniteFuture(),
                  replies.Callback());
  auto job = replies.First();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForState(job->name(), v1::SyncJob::FAILED));
  EXPECT_EQ(fake_.sync_count(), kMaxSubmitAttempts);
  Replies again;
  engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}, rid), absl::InfiniteFuture(), again.Callback());
  auto replay = again.First();
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.status().code(), absl::StatusCode::kFailedPrecondition) << replay.status();
  EXPECT_EQ(GetJobName(replay.status()), job->name());
  EXPECT_EQ(fake_.sync_count(), kMaxSubmitAttempts);
}

TEST_F(LifecycleTest, APermanentRejectionAnswersAndReplaysANonRetryableCode) {
  StartEngine();
  fake_.ScriptSyncError(Upstream(ErrorKind::kApi, "LimitExceeded.BlueprintQuotaLimitExceeded"));
  const std::string rid = "8b1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
  for (int i = 0; i < 2; ++i) {
    Replies replies;
    engine_->Submit(Request(kSrc, kBp, {"ap-tokyo"}, rid), absl::InfiniteFuture(),
                    replies.Callback());
    auto err = replies.First();
    ASSERT_FALSE(err.ok());
    EXPECT_EQ(err.status().code(), absl::StatusCode::kFailedPrecondition) << err.status();
    EXPECT_THAT(err.status().message(), HasSubstr("RESOURCE_EXHAUSTED"));
    EXPECT_FALSE(GetJobName(err.status()).empty());
    ASSERT_TRUE(tencent::GetApiError(err.status()).has_value());
  }
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(LifecycleTest, RetryCreatesAJobForExactlyTheFailedRegions) {
  StartEngine();
  NewJob asked = Request(kSrc, kBp, {"ap-singapore", "ap-tokyo", "ap-seoul"});
  asked.request.mutable_labels()->insert({"team", "web"});
  const v1::SyncJob job = SubmitRunning(std::move(asked));
  fake_.SetState("ap-singapore", job.destinations(0).blueprint_id(), "NORMAL");
  fake_.SetState("ap-tokyo", job.destinations(1).blueprint_id(), "SYNCING_FAILED");
  fake_.SetState("ap-seoul", job.destinations(2).blueprint_id(), "CREATEFAILED");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::FAILED));

  NewJob retry;
  retry.creator = "uri:spiffe://test/deployer";
  retry.request.set_request_id("9c1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  Replies replies;
  engine_->Retry(job.name(), retry, absl::InfiniteFuture(), replies.Callback());
  auto again = replies.First();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->name(), job.name());
  EXPECT_EQ(again->retry_of(), job.name());
  EXPECT_EQ(again->creator(), "uri:spiffe://test/deployer");
  EXPECT_EQ(again->labels().at("team"), "web");
  ASSERT_EQ(again->destinations_size(), 2);
  EXPECT_EQ(again->destinations(0).region(), "ap-tokyo");
  EXPECT_EQ(again->destinations(1).region(), "ap-seoul");

  // The same retry again is the same job.
  Replies repeat;
  engine_->Retry(job.name(), retry, absl::InfiniteFuture(), repeat.Callback());
  auto same = repeat.First();
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->name(), again->name());

  // A job that succeeded everywhere has nothing to retry.
  const v1::SyncJob ok = SubmitRunning(Request(kSrc, kBp2, {"ap-singapore"}));
  fake_.SetState("ap-singapore", ok.destinations(0).blueprint_id(), "NORMAL");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(ok.name(), v1::SyncJob::SUCCEEDED));
  Replies nothing;
  engine_->Retry(ok.name(), NewJob(), absl::InfiniteFuture(), nothing.Callback());
  auto refused = nothing.First();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
}

// A policy's job is recorded with its policy and its SyncBlueprint waits
// behind callers' own calls (background priority); tracking and cleanup
// are batched across jobs and stay foreground. A retry is the caller's
// own job, not the policy's.
TEST_F(LifecycleTest, APolicyJobIsRecordedWithItsPolicyAndSubmittedAtBackgroundPriority) {
  StartEngine();
  const v1::SyncJob direct = SubmitRunning(Request(kSrc, kBp2, {"ap-singapore"}));
  EXPECT_EQ(direct.policy(), "");
  NewJob asked = Request(kSrc, kBp, {"ap-singapore", "ap-tokyo"});
  asked.policy = "syncPolicies/web-golden";
  const v1::SyncJob job = SubmitRunning(std::move(asked));
  EXPECT_EQ(job.policy(), "syncPolicies/web-golden");
  EXPECT_EQ(Stored(job.name()).job().policy(), "syncPolicies/web-golden");
  const auto calls = fake_.sync_calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].request.blueprint_id, kBp2);
  EXPECT_EQ(calls[0].options.priority, tencent::CallPriority::kForeground);
  EXPECT_EQ(calls[1].request.blueprint_id, kBp);
  EXPECT_EQ(calls[1].options.priority, tencent::CallPriority::kBackground);

  // The store lists it by its policy.
  JobQuery by_policy;
  by_policy.policy = "syncPolicies/web-golden";
  auto listed = store_->ListJobs(by_policy);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->records.size(), 1u);
  EXPECT_EQ(listed->records[0].job().name(), job.name());

  fake_.SetState("ap-singapore", job.destinations(0).blueprint_id(), "NORMAL");
  fake_.SetState("ap-tokyo", job.destinations(1).blueprint_id(), "SYNCING_FAILED");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::FAILED));
  ASSERT_TRUE(WaitForCleanup(job.name(), 1, v1::Destination::DELETED));
  EXPECT_EQ(DeletesOf(job.destinations(1).blueprint_id()), 1);
  EXPECT_THAT(fake_.background_events(), ElementsAre(absl::StrCat("sync:", kBp)));

  NewJob retry;
  retry.request.set_request_id("7d1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  Replies replies;
  engine_->Retry(job.name(), retry, absl::InfiniteFuture(), replies.Callback());
  auto again = replies.First();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->retry_of(), job.name());
  EXPECT_EQ(again->policy(), "");
  ASSERT_TRUE(WaitFor([&] { return fake_.sync_count() == 3; }));
  EXPECT_EQ(fake_.sync_calls()[2].options.priority, tencent::CallPriority::kForeground);
  EXPECT_THAT(fake_.background_events(), ElementsAre(absl::StrCat("sync:", kBp)));
}

// A request id names one request: the same id from a policy and directly
// are two different requests; without a policy the fingerprint is the one
// recorded before policies existed.
TEST_F(JobEngineTest, ARequestIdUsedByAPolicyIsNotTheDirectRequestsToo) {
  StartEngine();
  const std::string rid = "5e1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
  NewJob by_policy = Request(kSrc, kBp, {"ap-singapore"}, rid);
  by_policy.policy = "syncPolicies/web-golden";
  Replies first;
  engine_->Submit(by_policy, absl::InfiniteFuture(), first.Callback());
  auto job = first.First();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(Stored(job->name()).request_fingerprint(),
            RequestFingerprint(by_policy.request, "", "syncPolicies/web-golden"));
  EXPECT_NE(RequestFingerprint(by_policy.request, "", "syncPolicies/web-golden"),
            RequestFingerprint(by_policy.request));

  Replies same;
  engine_->Submit(by_policy, absl::InfiniteFuture(), same.Callback());
  auto repeat = same.First();
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_EQ(repeat->name(), job->name());

  Replies direct;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}, rid), absl::InfiniteFuture(),
                  direct.Callback());
  auto refused = direct.First();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(LifecycleTest, DeleteRemovesAFinishedRecordAndFreesItsRequestId) {
  StartEngine();
  const std::string rid = "ad1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
  const v1::SyncJob job = SubmitRunning(Request(kSrc, kBp, {"ap-singapore"}, rid));
  auto deleted = [&](const std::string& name) {
    absl::Notification done;
    absl::Status status;
    engine_->Delete(name, [&](absl::Status s) {
      status = s;
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  };
  const absl::Status running = deleted(job.name());
  EXPECT_EQ(running.code(), absl::StatusCode::kFailedPrecondition) << running;
  EXPECT_EQ(GetJobName(running), job.name());

  fake_.SetState("ap-singapore", job.destinations(0).blueprint_id(), "NORMAL");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(job.name(), v1::SyncJob::SUCCEEDED));
  ASSERT_TRUE(deleted(job.name()).ok());
  EXPECT_EQ(Get(*engine_, job.name()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(deleted(job.name()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fake_.delete_count(), 0);  // records only; the copy stays

  const v1::SyncJob fresh = SubmitRunning(Request(kSrc, kBp, {"ap-singapore"}, rid));
  EXPECT_NE(fresh.name(), job.name());
}

TEST_F(LifecycleTest, RetentionDeletesOldFinishedRecordsOnly) {
  JobEngineOptions o = FastOptions();
  o.job_retention = absl::Milliseconds(100);
  o.retention_interval = absl::ZeroDuration();
  StartEngine(o);
  const v1::SyncJob old_job = SubmitRunning(Request(kSrc, kBp, {"ap-singapore"}));
  fake_.SetState("ap-singapore", old_job.destinations(0).blueprint_id(), "NORMAL");
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitForState(old_job.name(), v1::SyncJob::SUCCEEDED));
  const v1::SyncJob running = SubmitRunning(Request(kSrc, kBp2, {"ap-singapore"}));
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_GE(engine_->RetainOnceForTest(), 1);
  EXPECT_EQ(Get(*engine_, old_job.name()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Job(running.name()).state(), v1::SyncJob::RUNNING);
  EXPECT_TRUE(store_->GetJob(running.name()).ok());
}

TEST_F(LifecycleTest, DryRunReadsTheSourceAndCountsTheJobsAhead) {
  StartEngine();
  auto preview = [&](const std::string& bp) {
    absl::Notification done;
    absl::StatusOr<Preview> got = absl::UnknownError("unset");
    engine_->PreviewSubmit(Request(kSrc, bp, {"ap-tokyo"}), [&](absl::StatusOr<Preview> p) {
      got = std::move(p);
      done.Notify();
    });
    done.WaitForNotification();
    return got;
  };
  auto ok = preview(kBp);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->job.name().empty());
  EXPECT_EQ(ok->job.jobs_ahead(), 0);
  EXPECT_EQ(fake_.sync_count(), 0);

  EXPECT_EQ(preview("lhbp-missing1").status().code(), absl::StatusCode::kNotFound);
  fake_.SetState(kSrc, kBp, "SYNCING");
  EXPECT_EQ(preview(kBp).status().code(), absl::StatusCode::kFailedPrecondition);
  fake_.SetState(kSrc, kBp, "NORMAL");

  SubmitRunning(Request(kSrc, kBp, {"ap-singapore"}));
  fake_.SetState(kSrc, kBp, "SYNCING");  // busy with the job ahead: the new one would queue
  auto behind = preview(kBp);
  ASSERT_TRUE(behind.ok()) << behind.status();
  EXPECT_EQ(behind->job.jobs_ahead(), 1);
  auto stored = store_->ListJobs(JobQuery{});
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->records.size(), 1u);  // the dry runs recorded nothing
}


// The cleaner on its own: a pending copy is judged gone only if the poll
// asked about it (a copy adopted after the poll began is not).
TEST(CleanerTest, OnlyACopyThePollAskedAboutCanBeFoundGone) {
  JobEngineOptions options = FastOptions();
  JobTable table(options);
  std::unique_ptr<JobStore> store = MakeMemoryJobStore();
  JobWriter writer(&table, store.get());
  JobSteps steps(options, &table, &writer, SystemClock::Default());
  FakeLighthouse fake;
  Cleaner cleaner(&table, &steps, &fake);

  JobRecord rec = MakeRecord(kSrc, kBp, {{"ap-tokyo", "lhbp-cln00001"}}, JobRecord::SUBMITTED,
                             v1::SyncJob::FAILED);
  v1::Destination* d = rec.mutable_job()->mutable_destinations(0);
  d->set_state(v1::Destination::FAILED);
  d->set_blueprint_state("NORMAL");  // seen before
  d->set_copy_cleanup(v1::Destination::DELETE_PENDING);
  *rec.mutable_job()->mutable_end_time() = ToProto(absl::Now());
  ASSERT_TRUE(store->CreateJob(rec).ok());
  const uint64_t gen = table.Locked([&](TableState& s) {
    s.leadership = Leadership::Single();
    s.AddCleaning(rec);
    return s.generation;
  });
  auto cleanup = [&] {
    return table.Locked([&](TableState& s) {
      const v1::SyncJob* job = s.Known(rec.job().name());
      return job ? job->destinations(0).copy_cleanup() : v1::Destination::COPY_CLEANUP_UNSPECIFIED;
    });
  };
  cleaner.Run(gen, {}, {});  // not asked: nothing can be concluded
  EXPECT_EQ(cleanup(), v1::Destination::DELETE_PENDING);
  cleaner.Run(gen, {}, {"lhbp-other001"});
  EXPECT_EQ(cleanup(), v1::Destination::DELETE_PENDING);
  cleaner.Run(gen, {}, {"lhbp-cln00001"});  // asked, and not listed: gone
  EXPECT_EQ(cleanup(), v1::Destination::ALREADY_GONE);
  EXPECT_EQ(fake.delete_count(), 0);
  EXPECT_EQ(store->GetJob(rec.job().name())->job().destinations(0).copy_cleanup(),
            v1::Destination::ALREADY_GONE);
}

// A SyncBlueprint answer is recorded only if it names each region asked
// for exactly once, with an id: otherwise a paid copy could go untracked.
TEST(AnswerMismatchTest, EveryRegionAskedForExactlyOnceWithAnId) {
  tencent::SyncBlueprintRequest request;
  request.destination_regions = {"ap-beijing", "ap-shanghai"};
  auto answer = [](std::vector<std::pair<std::string, std::string>> pairs) {
    tencent::SyncBlueprintResponse r;
    for (auto& [region, id] : pairs) r.destinations.push_back({region, id});
    return r;
  };
  EXPECT_EQ(AnswerMismatch(request, answer({{"ap-shanghai", "lhbp-aaaaaaaa"},
                                            {"ap-beijing", "lhbp-bbbbbbbb"}})),
            "");
  EXPECT_EQ(AnswerMismatch(request, answer({{"ap-beijing", "lhbp-aaaaaaaa"},
                                            {"ap-beijing", "lhbp-bbbbbbbb"},
                                            {"ap-shanghai", "lhbp-cccccccc"}})),
            "region ap-beijing twice");
  EXPECT_EQ(AnswerMismatch(request, answer({{"ap-beijing", "lhbp-aaaaaaaa"}})),
            "no blueprint for ap-shanghai");
  EXPECT_EQ(AnswerMismatch(request, answer({{"ap-beijing", "lhbp-aaaaaaaa"},
                                            {"ap-shanghai", "lhbp-bbbbbbbb"},
                                            {"ap-chengdu", "lhbp-cccccccc"}})),
            "region ap-chengdu was not asked for");
  EXPECT_EQ(AnswerMismatch(request, answer({{"ap-beijing", "lhbp-aaaaaaaa"},
                                            {"ap-shanghai", ""}})),
            "no blueprint id for ap-shanghai");
}

// ---------------------------------------------------------------------------
// Adaptive tracking (tracking_pace.h): the tracker's cycles follow a share of
// the DescribeBlueprints budget.

TEST(NextPollWindowTest, GapIsTheBudgetShareOfTheCallsClampedToTheIntervals) {
  JobEngineOptions o;  // 10 s poll interval, 0.5 s minimum, half of 10/s
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  // One call: 0.2 s at 5/s, raised to the minimum gap.
  EXPECT_EQ(NextPollWindow(o, t0, 1).earliest, t0 + absl::Milliseconds(500));
  EXPECT_EQ(NextPollWindow(o, t0, 1).latest, t0 + absl::Milliseconds(500));
  // Ten calls (1,000 copies over 10 regions): 2 s.
  EXPECT_EQ(NextPollWindow(o, t0, 10).earliest, t0 + absl::Seconds(2));
  // Sixty calls would take 12 s of the share: never slower than 10 s.
  EXPECT_EQ(NextPollWindow(o, t0, 60).earliest, t0 + absl::Seconds(10));
  // Nothing pending: the full interval unless woken, a wake not before the minimum.
  EXPECT_EQ(NextPollWindow(o, t0, 0).earliest, t0 + absl::Milliseconds(500));
  EXPECT_EQ(NextPollWindow(o, t0, 0).latest, t0 + absl::Seconds(10));
  o.poll_budget_share = 0.25;
  o.describe_per_second = 4;  // --describe-rate
  EXPECT_EQ(NextPollWindow(o, t0, 3).earliest, t0 + absl::Seconds(3));
  // A minimum above the interval gives way to it (fixed-interval polling).
  o.min_poll_interval = absl::Minutes(1);
  EXPECT_EQ(NextPollWindow(o, t0, 1).earliest, t0 + absl::Seconds(10));
}

// A pacing clock that nobody else moves: a wait whose condition does not
// hold yet jumps it to the wait's end at once.
class JumpingClock final : public PacingClock {
 public:
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time t) override {
    mu->AssertHeld();
    if (cond.Eval()) return true;
    {
      absl::MutexLock lock(&mu_);
      if (t > now_) now_ = t;
    }
    return cond.Eval();
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1700000000);
};

// DescribeBlueprints calls the tracker thread makes, stamped with the time
// of the clock it paces on. Every wait between cycles advances that clock at
// once, so minutes of pacing take milliseconds.
class PacedTrackingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { log::SetLevel(log::Level::kError); }
  static void TearDownTestSuite() { log::SetLevel(log::Level::kInfo); }

  PacedTrackingTest() : store_(MakeMemoryJobStore()) {
    fake_.SetDescribeHook([this](const DescribeBlueprintsRequest&)
                              -> std::optional<absl::StatusOr<DescribeBlueprintsResponse>> {
      absl::MutexLock lock(&mu_);
      call_times_.push_back(pacing_.Now());
      return std::nullopt;  // the fake's world: the copies stay out of sight, pending
    });
  }

  // `per_region` SYNCING copies in each of `regions` regions, 10 per job.
  void AddPending(const std::vector<std::string>& regions, int per_region) {
    int next = 0;
    for (const std::string& region : regions) {
      for (int i = 0; i < per_region; i += 10) {
        std::vector<std::pair<std::string, std::string>> dests;
        for (int k = i; k < std::min(per_region, i + 10); ++k) {
          dests.emplace_back(region, absl::StrFormat("lhbp-p%07d", next++));
        }
        // A job may list a region once only in real life; the tracker does
        // not care, and this keeps the layout exact.
        ASSERT_TRUE(store_
                        ->CreateJob(MakeRecord(kSrc, absl::StrFormat("lhbp-src%05d", next), dests,
                                               JobRecord::SUBMITTED, v1::SyncJob::RUNNING))
                        .ok());
      }
    }
  }

  // Runs the engine's own tracker thread until the pacing clock has moved
  // `span` past its start; returns the call times from the start.
  std::vector<absl::Duration> RunFor(JobEngineOptions o, absl::Duration span) {
    const absl::Time t0 = pacing_.Now();
    o.pacing_clock = &pacing_;
    JobEngine engine(o, store_.get(), &fake_);
    EXPECT_TRUE(engine.Start().ok());
    EXPECT_TRUE(WaitFor([&] { return pacing_.Now() >= t0 + span; }, absl::Seconds(30)));
    engine.Shutdown(absl::Now() + absl::Seconds(5));
    absl::MutexLock lock(&mu_);
    std::vector<absl::Duration> out;
    for (absl::Time t : call_times_) {
      if (t < t0 + span) out.push_back(t - t0);
    }
    return out;
  }

  // The calls grouped by cycle: a fake client answers at once, so every
  // call of a cycle carries the time the cycle began.
  static std::vector<std::pair<absl::Duration, int>> Cycles(
      const std::vector<absl::Duration>& calls) {
    std::vector<std::pair<absl::Duration, int>> cycles;
    for (absl::Duration t : calls) {
      if (cycles.empty() || cycles.back().first != t) cycles.push_back({t, 0});
      ++cycles.back().second;
    }
    return cycles;
  }

  // Checks the budget and the poll interval over the calls of a run:
  // `calls_per_cycle` in every cycle, cycle starts `gap` apart, and never
  // more than `share` x `rate` calls in any window of `window` (a window
  // holding whole cycles) unless the poll interval forces it.
  static void ExpectPaced(const std::vector<absl::Duration>& calls, int calls_per_cycle,
                          absl::Duration gap, const JobEngineOptions& o) {
    const auto cycles = Cycles(calls);
    ASSERT_GE(cycles.size(), 5u);
    for (size_t i = 0; i < cycles.size(); ++i) {
      EXPECT_EQ(cycles[i].second, calls_per_cycle) << "cycle " << i;
      if (i == 0) continue;
      const absl::Duration between = cycles[i].first - cycles[i - 1].first;
      EXPECT_EQ(between, gap) << "between cycles " << i - 1 << " and " << i;
      EXPECT_LE(between, o.poll_interval);
    }
    const double span_s = absl::ToDoubleSeconds(cycles.back().first - cycles.front().first);
    const double rate = static_cast<double>(calls.size() - cycles.back().second) / span_s;
    if (gap < o.poll_interval) {
      EXPECT_LE(rate, o.poll_budget_share * o.describe_per_second + 1e-9);
    }
  }

  absl::Mutex mu_;
  std::vector<absl::Time> call_times_ ABSL_GUARDED_BY(mu_);
  JumpingClock pacing_;
  std::unique_ptr<JobStore> store_;
  FakeLighthouse fake_;
};

// 10 copies in one region: one call per cycle, which the share (5/s) would
// allow every 0.2 s; the minimum gap, 0.5 s, holds it to 2 calls/s.
TEST_F(PacedTrackingTest, TenPendingArePolledEveryMinimumInterval) {
  AddPending({"ap-singapore"}, 10);
  const JobEngineOptions o;
  ExpectPaced(RunFor(o, absl::Seconds(60)), 1, absl::Milliseconds(500), o);
}

// 1,000 copies over 10 regions: 10 calls per cycle, so a cycle every 2 s
// keeps to 5 calls/s. Ignoring the share (a cycle every 0.5 s) would make
// 20 calls/s and fail here.
TEST_F(PacedTrackingTest, AThousandPendingAcrossRegionsStayWithinTheShare) {
  AddPending({"ap-singapore", "ap-tokyo", "ap-seoul", "ap-bangkok", "ap-mumbai", "na-siliconvalley",
              "na-ashburn", "eu-frankfurt", "ap-jakarta", "sa-saopaulo"},
             100);
  const JobEngineOptions o;
  ExpectPaced(RunFor(o, absl::Seconds(120)), 10, absl::Seconds(2), o);
}

// A smaller share or rate stretches the gap in proportion.
TEST_F(PacedTrackingTest, TheShareAndTheRateAreTheConfiguredOnes) {
  AddPending({"ap-singapore", "ap-tokyo"}, 150);  // 2 + 2 calls
  JobEngineOptions o;
  o.poll_budget_share = 0.2;
  o.describe_per_second = 5;  // 1 call/s for the tracker: 4 s per cycle
  ExpectPaced(RunFor(o, absl::Seconds(120)), 4, absl::Seconds(4), o);
}

// 6,000 copies in one region take 60 calls, 12 s of the share: the cycle
// still comes every poll interval, as it always did.
TEST_F(PacedTrackingTest, NeverSlowerThanThePollInterval) {
  AddPending({"ap-singapore"}, 6000);
  const JobEngineOptions o;
  ExpectPaced(RunFor(o, absl::Seconds(120)), 60, o.poll_interval, o);
}

TEST_F(PacedTrackingTest, NothingPendingMakesNoCalls) {
  const JobEngineOptions o;
  EXPECT_THAT(RunFor(o, absl::Minutes(5)), IsEmpty());
}

// The copies of a submission just accepted are polled soon, not after the
// poll interval of an idle tracker (here an hour): the submission wakes it.
TEST_F(JobEngineTest, ANewSubmissionWakesAnIdleTracker) {
  JobEngineOptions o = FastOptions();
  o.min_poll_interval = absl::Milliseconds(500);  // the default; poll_interval stays 1 h
  StartEngine(o);
  fake_.ScriptSync([](const SyncBlueprintRequest&, const CallOptions&) {
    SyncBlueprintResponse r;
    r.destinations = {{"ap-singapore", "lhbp-sgwake01"}};
    r.request_id = "req-wake";
    return r;
  });
  Replies replies;
  engine_->Submit(Request(kSrc, kBp, {"ap-singapore"}), absl::InfiniteFuture(), replies.Callback());
  ASSERT_TRUE(replies.First().ok());
  const bool polled = WaitFor(
      [&] {
        for (const auto& call : fake_.describe_calls()) {
          for (const auto& id : call.blueprint_ids) {
            if (id == "lhbp-sgwake01") return true;
          }
        }
        return false;
      },
      absl::Seconds(30));
  EXPECT_TRUE(polled) << "the new copy was not polled before the hour-long interval";
}

}  // namespace
}  // namespace blueprintsync::jobs
