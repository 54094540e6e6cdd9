// Tests of PolicyController against a real JobEngine (memory job store),
// the memory policy store and the in-memory Lighthouse fake. Passes and
// tracker cycles are driven by the test (PassOnceForTest, PollOnceForTest).
#include "service/policies/policy_controller.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/log.h"
#include "service/jobs/job_engine.h"
#include "service/jobs/job_state.h"
#include "service/tencent/testing/fake_lighthouse_client.h"

namespace blueprintsync::policies {
namespace {

using ::testing::ElementsAre;
using Region = v1::SyncPolicyRegion;

constexpr char kSrc[] = "ap-guangzhou";
constexpr char kFamily[] = "web-golden";

bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > end) return pred();
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

tencent::Blueprint Bp(const std::string& id, const std::string& state, absl::Time created,
                      const std::string& name = kFamily) {
  tencent::Blueprint b;
  b.blueprint_id = id;
  b.blueprint_name = name;
  b.blueprint_state = state;
  b.blueprint_type = "PRIVATE";
  b.created_time = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", created, absl::UTCTimeZone());
  return b;
}

class PolicyControllerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { log::SetLevel(log::Level::kError); }
  static void TearDownTestSuite() { log::SetLevel(log::Level::kInfo); }

  PolicyControllerTest()
      : job_store_(jobs::MakeMemoryJobStore()), policy_store_(MakeMemoryPolicyStore()) {
    jobs::JobEngineOptions o;
    o.poll_interval = absl::Hours(1);  // cycles driven by PollOnceForTest
    o.min_poll_interval = absl::Hours(1);  // not sooner for pending copies
    o.retry_initial = absl::Milliseconds(5);
    o.retry_max = absl::Milliseconds(40);
    o.reconcile_grace = absl::Milliseconds(5);
    engine_ = std::make_unique<jobs::JobEngine>(o, job_store_.get(), &fake_);
    EXPECT_TRUE(engine_->Start().ok());
    PolicyControllerOptions c;
    c.backoff_initial = absl::Milliseconds(1);
    c.backoff_max = absl::Milliseconds(1);
    controller_ = std::make_unique<PolicyController>(c, policy_store_.get(), engine_.get(), &fake_);
    // Every SyncBlueprint creates SYNCING copies in the fake world.
    fake_.ScriptSync([this](const tencent::SyncBlueprintRequest& r, const tencent::CallOptions&) {
      return Copy(r);
    });
  }
  ~PolicyControllerTest() override {
    controller_.reset();
    engine_->Shutdown(absl::Now());
  }

  absl::StatusOr<tencent::SyncBlueprintResponse> Copy(const tencent::SyncBlueprintRequest& r) {
    // Re-arm for the next call (handlers answer one call each).
    fake_.ScriptSync([this](const tencent::SyncBlueprintRequest& n, const tencent::CallOptions&) {
      return Copy(n);
    });
    tencent::SyncBlueprintResponse out;
    for (const std::string& region : r.destination_regions) {
      const std::string id = absl::StrCat("lhbp-c", 1000000 + ++copies_);
      fake_.Put(region, Bp(id, "SYNCING", absl::Now(), copy_name_));
      out.destinations.push_back({region, id});
      made_.push_back({region, id});
    }
    out.request_id = absl::StrCat("req-", copies_);
    return out;
  }

  // Every copy made so far becomes NORMAL, and the tracker sees it.
  void FinishCopies(const std::string& state = "NORMAL") {
    for (const auto& [region, id] : made_) fake_.SetState(region, id, state);
    engine_->PollOnceForTest();
  }

  PolicyRecord Create(const std::string& id, std::vector<std::string> regions, int keep = 0,
                      const std::string& fixed = "") {
    PolicyRecord r;
    r.set_uid(absl::StrCat("uid-", id));
    v1::SyncPolicy& s = *r.mutable_spec();
    s.set_name(absl::StrCat("syncPolicies/", id));
    s.set_source_region(kSrc);
    if (fixed.empty()) {
      s.set_blueprint_name(kFamily);
    } else {
      s.set_blueprint_id(fixed);
    }
    for (auto& d : regions) s.add_destination_regions(d);
    s.set_keep_versions(keep);
    s.set_creator("anonymous");
    auto created = policy_store_->Create(r);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : r;
  }

  v1::SyncPolicy View(const std::string& id) {
    auto r = policy_store_->Get(absl::StrCat("syncPolicies/", id));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? PolicyView(*r) : v1::SyncPolicy();
  }

  std::unique_ptr<jobs::JobStore> job_store_;
  std::unique_ptr<PolicyStore> policy_store_;
  testing::FakeLighthouseClient fake_;
  std::unique_ptr<jobs::JobEngine> engine_;
  std::unique_ptr<PolicyController> controller_;
  int copies_ = 0;
  std::string copy_name_ = "copy";  // Tencent: a copy keeps its source's name
  std::vector<std::pair<std::string, std::string>> made_;
};

TEST_F(PolicyControllerTest, FamilyPolicyConvergesThroughOneJobCarryingThePolicy) {
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  Create("web", {"ap-beijing", "ap-shanghai", "ap-chengdu", "ap-nanjing"});
  controller_->PassOnceForTest();
  ASSERT_EQ(fake_.sync_count(), 1);
  EXPECT_EQ(fake_.sync_calls()[0].request.blueprint_id, "lhbp-v1000001");
  EXPECT_THAT(fake_.sync_calls()[0].request.destination_regions,
              ElementsAre("ap-beijing", "ap-shanghai", "ap-chengdu", "ap-nanjing"));
  v1::SyncPolicy p = View("web");
  ASSERT_FALSE(p.regions(0).last_job().empty());
  auto job = job_store_->GetJob(p.regions(0).last_job());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->job().policy(), "syncPolicies/web");
  EXPECT_EQ(job->job().request_id(), PolicyJobRequestId("uid-web", 0));
  for (const Region& r : p.regions()) EXPECT_EQ(r.state(), Region::SYNCING);

  FinishCopies();
  controller_->PassOnceForTest();
  p = View("web");
  EXPECT_TRUE(p.in_sync()) << p.DebugString();
  EXPECT_EQ(p.source_blueprint_id(), "lhbp-v1000001");
  for (const Region& r : p.regions()) {
    EXPECT_EQ(r.state(), Region::IN_SYNC);
    EXPECT_FALSE(r.blueprint_id().empty());
  }
  // Steady state: no more jobs.
  controller_->PassOnceForTest();
  EXPECT_EQ(fake_.sync_count(), 1);
}

TEST_F(PolicyControllerTest, AJobThatEndsWakesTheControllerBeforeTheInterval) {
  PolicyControllerOptions c;
  c.interval = absl::Hours(1);
  PolicyController controller(c, policy_store_.get(), engine_.get(), &fake_);
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  Create("web", {"ap-beijing"});
  controller.Start();  // the first pass starts the job
  ASSERT_TRUE(WaitFor([&] { return View("web").regions_size() == 1 &&
                                   View("web").regions(0).state() == Region::SYNCING; }));
  FinishCopies();  // the job succeeds; only its end can bring the next pass
  EXPECT_TRUE(WaitFor([&] { return View("web").in_sync(); }));
  EXPECT_EQ(controller.stats().passes, 2);
  controller.Shutdown();
}

TEST_F(PolicyControllerTest, AFamilyNeverFollowsACopyAPolicyMade) {
  // Copies keep the family's name and are newer than either source: two
  // policies in opposite directions would otherwise copy each other's
  // copies forever.
  copy_name_ = kFamily;
  fake_.Put(kSrc, Bp("lhbp-g1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  fake_.Put("ap-shanghai", Bp("lhbp-s1000001", "NORMAL", absl::Now() - absl::Hours(3)));
  Create("to-shanghai", {"ap-shanghai"});
  PolicyRecord back;
  back.set_uid("uid-back");
  back.mutable_spec()->set_name("syncPolicies/to-guangzhou");
  back.mutable_spec()->set_source_region("ap-shanghai");
  back.mutable_spec()->set_blueprint_name(kFamily);
  back.mutable_spec()->add_destination_regions(kSrc);
  ASSERT_TRUE(policy_store_->Create(back).ok());
  controller_->PassOnceForTest();
  ASSERT_EQ(fake_.sync_count(), 2);
  FinishCopies();
  for (int i = 0; i < 3; ++i) controller_->PassOnceForTest();
  EXPECT_EQ(fake_.sync_count(), 2);
  EXPECT_TRUE(View("to-shanghai").in_sync());
  EXPECT_EQ(View("to-shanghai").source_blueprint_id(), "lhbp-g1000001");
  EXPECT_EQ(View("to-guangzhou").source_blueprint_id(), "lhbp-s1000001");
}

TEST_F(PolicyControllerTest, LostStatusWriteFindsTheSameJobInsteadOfSubmittingAgain) {
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  const PolicyRecord created = Create("web", {"ap-beijing"});
  controller_->PassOnceForTest();
  ASSERT_EQ(fake_.sync_count(), 1);
  // As if the process had died before writing the status.
  ASSERT_TRUE(policy_store_->WriteStatus(created.spec().name(), created.uid(), PolicyStatus()).ok());
  controller_->PassOnceForTest();
  EXPECT_EQ(fake_.sync_count(), 1);
  const v1::SyncPolicy p = View("web");
  EXPECT_EQ(p.regions(0).state(), Region::SYNCING);
  EXPECT_FALSE(p.regions(0).last_job().empty());
}

TEST_F(PolicyControllerTest, NewVersionReplacesOldCopiesAndKeepsTheSource) {
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  Create("web", {"ap-beijing", "ap-shanghai"}, /*keep=*/1);
  controller_->PassOnceForTest();
  FinishCopies();
  controller_->PassOnceForTest();
  ASSERT_TRUE(View("web").in_sync());
  const std::vector<std::pair<std::string, std::string>> old_copies = made_;

  fake_.Put(kSrc, Bp("lhbp-v2000002", "NORMAL", absl::Now() - absl::Hours(1)));
  controller_->PassOnceForTest();
  ASSERT_EQ(fake_.sync_count(), 2);
  EXPECT_EQ(fake_.sync_calls()[1].request.blueprint_id, "lhbp-v2000002");
  EXPECT_EQ(fake_.delete_count(), 0);  // the old copies serve until the new are NORMAL
  FinishCopies();
  controller_->PassOnceForTest();
  const v1::SyncPolicy p = View("web");
  EXPECT_TRUE(p.in_sync());
  EXPECT_EQ(p.source_blueprint_id(), "lhbp-v2000002");
  std::vector<std::string> deleted;
  for (const auto& d : fake_.delete_calls()) {
    for (const auto& id : d.blueprint_ids) deleted.push_back(d.region + "/" + id);
  }
  std::vector<std::string> expected;
  for (const auto& [region, id] : old_copies) expected.push_back(region + "/" + id);
  EXPECT_THAT(deleted, ::testing::UnorderedElementsAreArray(expected));
  for (const Region& r : p.regions()) EXPECT_EQ(r.copies_size(), 1);
}

TEST_F(PolicyControllerTest, FailedRegionIsRetriedAndCopyRemovedBehindOurBackIsResynced) {
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  Create("web", {"ap-beijing", "ap-shanghai"});
  controller_->PassOnceForTest();
  fake_.SetState(made_[0].first, made_[0].second, "NORMAL");
  fake_.SetState(made_[1].first, made_[1].second, "SYNCING_FAILED");
  engine_->PollOnceForTest();
  controller_->PassOnceForTest();  // settles: beijing IN_SYNC, shanghai failed once
  v1::SyncPolicy p = View("web");
  EXPECT_EQ(p.regions(0).state(), Region::IN_SYNC);
  EXPECT_EQ(p.regions(1).failures(), 1);
  absl::SleepFor(absl::Milliseconds(5));  // past the 1 ms backoff
  controller_->PassOnceForTest();
  ASSERT_EQ(fake_.sync_count(), 2);
  EXPECT_THAT(fake_.sync_calls()[1].request.destination_regions, ElementsAre("ap-shanghai"));
  FinishCopies();
  controller_->PassOnceForTest();
  ASSERT_TRUE(View("web").in_sync());

  // Someone deletes the Beijing copy.
  fake_.Remove("ap-beijing", View("web").regions(0).blueprint_id());
  controller_->PassOnceForTest();
  ASSERT_EQ(fake_.sync_count(), 3);
  EXPECT_THAT(fake_.sync_calls()[2].request.destination_regions, ElementsAre("ap-beijing"));
  EXPECT_EQ(controller_->stats().drift_repairs, 1);
}

TEST_F(PolicyControllerTest, SurveyCostGrowsWithRegionsNotPolicies) {
  // Distinct sources, so the jobs need not wait for each other.
  for (int i = 0; i < 30; ++i) {
    const std::string source = absl::StrCat("lhbp-s", 1000000 + i);
    fake_.Put(kSrc, Bp(source, "NORMAL", absl::Now() - absl::Hours(2), "other"));
    Create(absl::StrCat("p", i), {"ap-beijing", "ap-shanghai"}, 0, source);
  }
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  Create("family", {"ap-beijing"});
  controller_->PassOnceForTest();
  ASSERT_EQ(fake_.sync_count(), 31);
  FinishCopies();
  controller_->PassOnceForTest();
  controller_->PassOnceForTest();
  // One call for the 30 fixed sources and one for the family in the
  // source region, one per destination region for its 30 or 31 copies.
  EXPECT_EQ(controller_->stats().last_pass_describe_calls, 4);
  EXPECT_EQ(controller_->stats().policies_in_sync, 31);
}

TEST_F(PolicyControllerTest, PausedPolicyMakesNoUpstreamCall) {
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  PolicyRecord r = Create("web", {"ap-beijing"});
  r.mutable_spec()->set_paused(true);
  ASSERT_TRUE(policy_store_->UpdateSpec(r.spec(), std::nullopt).ok());
  fake_.ClearDescribeCalls();
  controller_->PassOnceForTest();
  EXPECT_EQ(fake_.describe_count(), 0);
  EXPECT_EQ(fake_.sync_count(), 0);
  EXPECT_EQ(controller_->stats().policies_paused, 1);
}

TEST_F(PolicyControllerTest, DeleteWithCopiesCancelsDeletesAndRemovesTheRecord) {
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  Create("web", {"ap-beijing", "ap-shanghai"});
  controller_->PassOnceForTest();
  FinishCopies();
  controller_->PassOnceForTest();
  ASSERT_TRUE(View("web").in_sync());
  ASSERT_TRUE(policy_store_->RequestDelete("syncPolicies/web", std::nullopt).ok());
  controller_->PassOnceForTest();
  EXPECT_TRUE(absl::IsNotFound(policy_store_->Get("syncPolicies/web").status()));
  for (const auto& [region, id] : made_) {
    const tencent::Blueprint* b = nullptr;
    (void)b;
    tencent::DescribeBlueprintsRequest q;
    q.region = region;
    q.blueprint_ids = {id};
    auto answer = fake_.DescribeBlueprints(q, {});
    ASSERT_TRUE(answer.ok());
    EXPECT_TRUE(answer->blueprints.empty()) << region << "/" << id << " still exists";
  }
  // The source is never touched.
  tencent::DescribeBlueprintsRequest q;
  q.region = kSrc;
  q.blueprint_ids = {"lhbp-v1000001"};
  EXPECT_EQ(fake_.DescribeBlueprints(q, {})->blueprints.size(), 1u);
}

TEST_F(PolicyControllerTest, DeletingWhileSyncingCancelsTheJobFirst) {
  fake_.Put(kSrc, Bp("lhbp-v1000001", "NORMAL", absl::Now() - absl::Hours(2)));
  Create("web", {"ap-beijing"});
  controller_->PassOnceForTest();
  const std::string job = View("web").regions(0).last_job();
  ASSERT_TRUE(policy_store_->RequestDelete("syncPolicies/web", std::nullopt).ok());
  controller_->PassOnceForTest();
  auto stored = job_store_->GetJob(job);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->job().state(), v1::SyncJob::CANCELLING);
  EXPECT_TRUE(policy_store_->Get("syncPolicies/web").ok());  // not before the job has ended
  FinishCopies();  // the copy finishes; the cleaner deletes it; the job ends CANCELLED
  engine_->PollOnceForTest();
  ASSERT_TRUE(WaitFor([&] {
    auto j = job_store_->GetJob(job);
    return j.ok() && j->job().state() == v1::SyncJob::CANCELLED;
  }));
  controller_->PassOnceForTest();
  EXPECT_TRUE(absl::IsNotFound(policy_store_->Get("syncPolicies/web").status()));
}

}  // namespace
}  // namespace blueprintsync::policies
