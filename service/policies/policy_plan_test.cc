#include "service/policies/policy_plan.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::policies {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Region = v1::SyncPolicyRegion;

const absl::Time kNow = absl::FromUnixSeconds(1796000000);

tencent::Blueprint Bp(const std::string& id, const std::string& state,
                      const std::string& created = "2026-12-01T00:00:00Z",
                      const std::string& name = "web-golden", const std::string& type = "PRIVATE") {
  tencent::Blueprint b;
  b.blueprint_id = id;
  b.blueprint_state = state;
  b.created_time = created;
  b.blueprint_name = name;
  b.blueprint_type = type;
  return b;
}

PolicyRecord Family(std::vector<std::string> regions, int keep = 0) {
  PolicyRecord r;
  r.set_uid("uid-1");
  r.set_revision(1);
  v1::SyncPolicy& s = *r.mutable_spec();
  s.set_name("syncPolicies/web");
  s.set_source_region("ap-guangzhou");
  s.set_blueprint_name("web-golden");
  for (auto& d : regions) s.add_destination_regions(d);
  s.set_keep_versions(keep);
  return r;
}

PolicyRecord Fixed(const std::string& id, std::vector<std::string> regions) {
  PolicyRecord r = Family(std::move(regions));
  r.mutable_spec()->set_blueprint_id(id);
  return r;
}

PlanOptions Opts(absl::Time now = kNow) {
  PlanOptions o;
  o.now = now;
  o.backoff_initial = absl::Seconds(60);
  o.backoff_max = absl::Seconds(300);
  o.cleanup_give_up_after = absl::Hours(1);
  return o;
}

// A survey where the family listing in ap-guangzhou answered `versions`.
Survey WithFamily(std::vector<tencent::Blueprint> versions) {
  Survey s;
  s.families[{"ap-guangzhou", "web-golden"}] = std::move(versions);
  return s;
}

v1::SyncJob Job(const std::string& name, const std::string& source, v1::SyncJob::State state,
                std::vector<std::tuple<std::string, std::string, v1::Destination::State>> dests) {
  v1::SyncJob j;
  j.set_name(name);
  j.set_blueprint_id(source);
  j.set_state(state);
  for (auto& [region, id, st] : dests) {
    v1::Destination* d = j.add_destinations();
    d->set_region(region);
    d->set_blueprint_id(id);
    d->set_state(st);
    if (st == v1::Destination::SUCCEEDED) d->set_blueprint_state("NORMAL");
    if (st == v1::Destination::FAILED) {
      d->mutable_error()->set_code(9);
      d->mutable_error()->set_tencent_code("FailedOperation.SyncFailed");
    }
  }
  return j;
}

OpenJobView Found(v1::SyncJob job) {
  OpenJobView v;
  v.kind = OpenJobView::Kind::kFound;
  v.job = std::move(job);
  return v;
}

std::vector<Region::State> States(const PolicyStatus& s) {
  std::vector<Region::State> out;
  for (const Region& r : s.view().regions()) out.push_back(r.state());
  return out;
}

// Runs a plan and, as the controller would, records the job it starts.
PolicyPlan PlanAndStart(PolicyRecord* record, const Survey& survey, const OpenJobView& open,
                        const std::string& job_name, PlanOptions o = Opts()) {
  PolicyPlan plan = PlanPolicy(*record, survey, open, ProtectedSources({*record}), o);
  if (plan.job.has_value()) {
    v1::SyncJob j;
    j.set_name(job_name);
    RecordJobStarted(&plan.status, *plan.job, j);
  }
  *record->mutable_status() = plan.status;
  return plan;
}

TEST(PolicyPlanTest, FamilyResolvesToNewestNormalVersion) {
  PolicyRecord p = Family({"ap-beijing"});
  Survey s = WithFamily({Bp("lhbp-old00001", "NORMAL", "2026-11-01T00:00:00Z"),
                         Bp("lhbp-new00001", "NORMAL", "2026-12-01T00:00:00Z"),
                         Bp("lhbp-newer001", "SYNCING", "2026-12-02T00:00:00Z")});
  PolicyPlan plan = PlanPolicy(p, s, {}, {}, Opts());
  EXPECT_EQ(plan.status.view().source_blueprint_id(), "lhbp-new00001");
  ASSERT_TRUE(plan.job.has_value());
  EXPECT_EQ(plan.job->source_blueprint_id, "lhbp-new00001");
  EXPECT_THAT(plan.job->regions, ElementsAre("ap-beijing"));
}

TEST(PolicyPlanTest, FamilyKeepsItsVersionWhileItIsTheSourceOfASync) {
  PolicyRecord p = Family({"ap-beijing"});
  const tencent::Blueprint v1 = Bp("lhbp-v1000001", "NORMAL", "2026-11-01T00:00:00Z");
  PolicyPlan plan = PlanPolicy(
      p, WithFamily({v1, Bp("lhbp-v2000002", "NORMAL", "2026-12-01T00:00:00Z")}), {}, {}, Opts());
  ASSERT_EQ(plan.status.view().source_blueprint_id(), "lhbp-v2000002");
  *p.mutable_status() = plan.status;
  // v2 is being copied (by anyone): it stays the source, and no job starts
  // until it is NORMAL again.
  plan = PlanPolicy(
      p, WithFamily({v1, Bp("lhbp-v2000002", "SYNCING", "2026-12-01T00:00:00Z")}), {}, {}, Opts());
  EXPECT_EQ(plan.status.view().source_blueprint_id(), "lhbp-v2000002");
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_FALSE(plan.status.view().has_source_error());
  // A SYNCING version the policy never followed is not taken.
  PolicyRecord fresh = Family({"ap-beijing"});
  plan = PlanPolicy(
      fresh, WithFamily({v1, Bp("lhbp-v3000003", "SYNCING", "2026-12-02T00:00:00Z")}), {}, {},
      Opts());
  EXPECT_EQ(plan.status.view().source_blueprint_id(), "lhbp-v1000001");
}

TEST(PolicyPlanTest, FamilyWithoutNormalVersionReportsSourceErrorAndStartsNothing) {
  PolicyRecord p = Family({"ap-beijing"});
  PolicyPlan plan = PlanPolicy(p, WithFamily({Bp("lhbp-a0000001", "SYNCING")}), {}, {}, Opts());
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_EQ(plan.status.view().source_error().code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_FALSE(plan.status.view().in_sync());
}

TEST(PolicyPlanTest, UnansweredSurveyStartsNothing) {
  PolicyRecord p = Family({"ap-beijing"});
  PolicyPlan plan = PlanPolicy(p, Survey{}, {}, {}, Opts());
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_THAT(States(plan.status), ElementsAre(Region::PENDING));
}

TEST(PolicyPlanTest, FixedSourceMustBeNormalPrivate) {
  PolicyRecord p = Fixed("lhbp-src00001", {"ap-beijing"});
  Survey s;
  s.ids[{"ap-guangzhou", "lhbp-src00001"}] = Bp("lhbp-src00001", "OFFLINE");
  PolicyPlan plan = PlanPolicy(p, s, {}, {}, Opts());
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_THAT(plan.status.view().source_error().message(), ::testing::HasSubstr("not NORMAL"));
  // SYNCING: the source of a running sync; nothing wrong, but no job yet.
  s.ids[{"ap-guangzhou", "lhbp-src00001"}] = Bp("lhbp-src00001", "SYNCING");
  plan = PlanPolicy(p, s, {}, {}, Opts());
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_FALSE(plan.status.view().has_source_error());
  s.ids[{"ap-guangzhou", "lhbp-src00001"}] = std::nullopt;  // gone
  plan = PlanPolicy(p, s, {}, {}, Opts());
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_EQ(plan.status.view().source_error().code(), static_cast<int>(absl::StatusCode::kNotFound));
  s.ids[{"ap-guangzhou", "lhbp-src00001"}] = Bp("lhbp-src00001", "NORMAL");
  plan = PlanPolicy(p, s, {}, {}, Opts());
  ASSERT_TRUE(plan.job.has_value());
  EXPECT_FALSE(plan.status.view().has_source_error());
}

TEST(PolicyPlanTest, RequestIdIsAUuidFixedByUidAndAttempt) {
  const std::string a = PolicyJobRequestId("uid-1", 0);
  EXPECT_TRUE(jobs::IsUuid(a)) << a;
  EXPECT_EQ(a, PolicyJobRequestId("uid-1", 0));
  EXPECT_NE(a, PolicyJobRequestId("uid-1", 1));
  EXPECT_NE(a, PolicyJobRequestId("uid-2", 0));
}

TEST(PolicyPlanTest, OneJobAtATimeThenInSyncWhenItSucceeds) {
  PolicyRecord p = Family({"ap-beijing", "ap-shanghai"});
  const Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL")});
  PolicyPlan plan = PlanAndStart(&p, s, {}, "syncJobs/1");
  ASSERT_TRUE(plan.job.has_value());
  EXPECT_EQ(plan.job->request_id, PolicyJobRequestId("uid-1", 0));
  EXPECT_EQ(p.status().open_job(), "syncJobs/1");
  EXPECT_EQ(p.status().job_attempt(), 1);
  EXPECT_THAT(States(p.status()), ElementsAre(Region::SYNCING, Region::SYNCING));

  // Running: no second job.
  plan = PlanAndStart(&p, s,
                      Found(Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::RUNNING,
                                {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED},
                                 {"ap-shanghai", "lhbp-s1", v1::Destination::SYNCING}})),
                      "syncJobs/x");
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_THAT(States(p.status()), ElementsAre(Region::IN_SYNC, Region::SYNCING));
  EXPECT_FALSE(p.status().view().in_sync());

  plan = PlanAndStart(&p, s,
                      Found(Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::SUCCEEDED,
                                {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED},
                                 {"ap-shanghai", "lhbp-s1", v1::Destination::SUCCEEDED}})),
                      "syncJobs/x");
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_TRUE(p.status().open_job().empty());
  EXPECT_THAT(States(p.status()), ElementsAre(Region::IN_SYNC, Region::IN_SYNC));
  EXPECT_TRUE(p.status().view().in_sync());
  EXPECT_EQ(p.status().view().regions(0).blueprint_id(), "lhbp-b1");
  EXPECT_EQ(p.status().view().regions(0).last_job(), "syncJobs/1");
  ASSERT_EQ(p.status().view().regions(1).copies_size(), 1);
  EXPECT_EQ(p.status().view().regions(1).copies(0).source_blueprint_id(), "lhbp-v1000001");
}

TEST(PolicyPlanTest, FailedRegionBacksOffThenRetriesAloneWithDoublingBackoff) {
  PolicyRecord p = Family({"ap-beijing", "ap-shanghai"});
  const Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL")});
  PlanAndStart(&p, s, {}, "syncJobs/1");
  PlanAndStart(&p, s,
               Found(Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::FAILED,
                         {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED},
                          {"ap-shanghai", "lhbp-s1", v1::Destination::FAILED}})),
               "syncJobs/x");
  EXPECT_THAT(States(p.status()), ElementsAre(Region::IN_SYNC, Region::FAILED));
  const Region& sh = p.status().view().regions(1);
  EXPECT_EQ(sh.failures(), 1);
  EXPECT_EQ(sh.last_error().tencent_code(), "FailedOperation.SyncFailed");
  EXPECT_EQ(jobs::FromProto(sh.next_attempt_time()), kNow + absl::Seconds(60));
  EXPECT_THAT(sh.copies(), IsEmpty());  // a failed copy is the job's to clean up

  // Before the backoff: nothing.
  PolicyPlan plan = PlanAndStart(&p, s, {}, "syncJobs/x", Opts(kNow + absl::Seconds(59)));
  EXPECT_FALSE(plan.job.has_value());
  // After it: a job for that region only.
  plan = PlanAndStart(&p, s, {}, "syncJobs/2", Opts(kNow + absl::Seconds(61)));
  ASSERT_TRUE(plan.job.has_value());
  EXPECT_THAT(plan.job->regions, ElementsAre("ap-shanghai"));
  EXPECT_EQ(plan.job->request_id, PolicyJobRequestId("uid-1", 1));
  PlanAndStart(&p, s,
               Found(Job("syncJobs/2", "lhbp-v1000001", v1::SyncJob::FAILED,
                         {{"ap-shanghai", "lhbp-s2", v1::Destination::FAILED}})),
               "syncJobs/x", Opts(kNow + absl::Seconds(100)));
  EXPECT_EQ(p.status().view().regions(1).failures(), 2);
  EXPECT_EQ(jobs::FromProto(p.status().view().regions(1).next_attempt_time()),
            kNow + absl::Seconds(100) + absl::Seconds(120));
}

TEST(PolicyPlanTest, SubmissionRejectedAsAWholeCountsAsAFailureForItsRegions) {
  PolicyRecord p = Family({"ap-beijing"});
  const Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL")});
  PlanAndStart(&p, s, {}, "syncJobs/1");
  v1::SyncJob rejected = Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::FAILED,
                             {{"ap-beijing", "", v1::Destination::PENDING}});
  rejected.mutable_error()->set_tencent_code("LimitExceeded.BlueprintQuotaLimitExceeded");
  PolicyPlan plan = PlanAndStart(&p, s, Found(rejected), "syncJobs/x");
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_THAT(States(p.status()), ElementsAre(Region::FAILED));
  EXPECT_EQ(p.status().view().regions(0).last_error().tencent_code(),
            "LimitExceeded.BlueprintQuotaLimitExceeded");
}

TEST(PolicyPlanTest, CopyRemovedBehindOurBackIsResynced) {
  PolicyRecord p = Family({"ap-beijing"});
  Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL")});
  PlanAndStart(&p, s, {}, "syncJobs/1");
  PlanAndStart(&p, s,
               Found(Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::SUCCEEDED,
                         {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED}})),
               "syncJobs/x");
  ASSERT_TRUE(p.status().view().in_sync());
  s.ids[{"ap-beijing", "lhbp-b1"}] = std::nullopt;  // asked, not there
  PolicyPlan plan = PlanAndStart(&p, s, {}, "syncJobs/2");
  EXPECT_EQ(plan.drift_repairs, 1);
  ASSERT_TRUE(plan.job.has_value());
  EXPECT_THAT(plan.job->regions, ElementsAre("ap-beijing"));
  EXPECT_TRUE(p.status().view().regions(0).blueprint_id().empty());
}

TEST(PolicyPlanTest, UnansweredCopyIsNotTakenForGone) {
  PolicyRecord p = Family({"ap-beijing"});
  const Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL")});
  PlanAndStart(&p, s, {}, "syncJobs/1");
  PlanAndStart(&p, s,
               Found(Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::SUCCEEDED,
                         {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED}})),
               "syncJobs/x");
  Survey failed = s;
  failed.errors["ap-beijing"] = "timeout";
  PolicyPlan plan = PlanAndStart(&p, failed, {}, "syncJobs/2");
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_EQ(plan.drift_repairs, 0);
  EXPECT_TRUE(p.status().view().in_sync());
}

TEST(PolicyPlanTest, BrokenCopyIsDeletedAndReplaced) {
  PolicyRecord p = Family({"ap-beijing"});
  Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL")});
  PlanAndStart(&p, s, {}, "syncJobs/1");
  PlanAndStart(&p, s,
               Found(Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::SUCCEEDED,
                         {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED}})),
               "syncJobs/x");
  s.ids[{"ap-beijing", "lhbp-b1"}] = Bp("lhbp-b1", "ISOLATED");
  PolicyPlan plan = PlanAndStart(&p, s, {}, "syncJobs/2");
  EXPECT_EQ(plan.drift_repairs, 1);
  ASSERT_EQ(plan.deletes.size(), 1u);
  EXPECT_EQ(plan.deletes[0].blueprint_id, "lhbp-b1");
  ASSERT_TRUE(plan.job.has_value());
}

TEST(PolicyPlanTest, NewVersionIsFollowedAndOldCopiesGoOnlyOnceNewOneIsNormal) {
  PolicyRecord p = Family({"ap-beijing"}, /*keep=*/1);
  Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL", "2026-11-01T00:00:00Z")});
  PlanAndStart(&p, s, {}, "syncJobs/1");
  PlanAndStart(&p, s,
               Found(Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::SUCCEEDED,
                         {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED}})),
               "syncJobs/x");
  s = WithFamily({Bp("lhbp-v1000001", "NORMAL", "2026-11-01T00:00:00Z"),
                  Bp("lhbp-v2000002", "NORMAL", "2026-12-01T00:00:00Z")});
  s.ids[{"ap-beijing", "lhbp-b1"}] = Bp("lhbp-b1", "NORMAL");
  PolicyPlan plan = PlanAndStart(&p, s, {}, "syncJobs/2");
  EXPECT_EQ(p.status().view().source_blueprint_id(), "lhbp-v2000002");
  ASSERT_TRUE(plan.job.has_value());
  EXPECT_EQ(plan.job->source_blueprint_id, "lhbp-v2000002");
  EXPECT_THAT(plan.deletes, IsEmpty());
  // The old copy serves while the new one syncs.
  EXPECT_EQ(p.status().view().regions(0).blueprint_id(), "lhbp-b1");
  EXPECT_FALSE(p.status().view().in_sync());

  plan = PlanAndStart(&p, s,
                      Found(Job("syncJobs/2", "lhbp-v2000002", v1::SyncJob::SUCCEEDED,
                                {{"ap-beijing", "lhbp-b2", v1::Destination::SUCCEEDED}})),
                      "syncJobs/x");
  EXPECT_TRUE(p.status().view().in_sync());
  EXPECT_EQ(p.status().view().regions(0).blueprint_id(), "lhbp-b2");
  ASSERT_EQ(plan.deletes.size(), 1u);
  EXPECT_EQ(plan.deletes[0].blueprint_id, "lhbp-b1");
  EXPECT_TRUE(RecordDelete(&plan.status, plan.deletes[0], absl::OkStatus(), Opts()));
  EXPECT_EQ(plan.status.view().regions(0).copies_size(), 1);
}

TEST(PolicyPlanTest, KeepVersionsZeroKeepsEveryCopyAndSourcesAreNeverDeleted) {
  PolicyRecord p = Family({"ap-beijing"}, /*keep=*/0);
  Region* r = p.mutable_status()->mutable_view()->add_regions();
  r->set_region("ap-beijing");
  for (const char* id : {"lhbp-c3", "lhbp-c2", "lhbp-c1"}) {
    v1::PolicyCopy* c = r->add_copies();
    c->set_blueprint_id(id);
    c->set_source_blueprint_id(std::string(id) == "lhbp-c3" ? "lhbp-v3000003" : "lhbp-old00001");
    c->set_blueprint_state("NORMAL");
  }
  const Survey s = WithFamily({Bp("lhbp-v3000003", "NORMAL")});
  PolicyPlan plan = PlanPolicy(p, s, {}, {}, Opts());
  EXPECT_TRUE(plan.status.view().in_sync());
  EXPECT_THAT(plan.deletes, IsEmpty());

  p.mutable_spec()->set_keep_versions(1);
  // lhbp-c2 is another policy's source in ap-beijing.
  plan = PlanPolicy(p, s, {}, {{"ap-beijing", "lhbp-c2"}}, Opts());
  ASSERT_EQ(plan.deletes.size(), 1u);
  EXPECT_EQ(plan.deletes[0].blueprint_id, "lhbp-c1");
}

TEST(PolicyPlanTest, RolledBackFamilyServesAndKeepsTheCopyOfTheCurrentSource) {
  PolicyRecord p = Family({"ap-beijing"}, /*keep=*/1);
  Region* r = p.mutable_status()->mutable_view()->add_regions();
  r->set_region("ap-beijing");
  // Newest first: a copy of v3 (withdrawn upstream since), then of v2.
  for (auto [id, source] : {std::pair{"lhbp-c3000003", "lhbp-v3000003"},
                            std::pair{"lhbp-c2000002", "lhbp-v2000002"}}) {
    v1::PolicyCopy* c = r->add_copies();
    c->set_blueprint_id(id);
    c->set_source_blueprint_id(source);
    c->set_blueprint_state("NORMAL");
  }
  const Survey s = WithFamily({Bp("lhbp-v2000002", "NORMAL")});
  const PolicyPlan plan = PlanPolicy(p, s, {}, {}, Opts());
  EXPECT_TRUE(plan.status.view().in_sync());
  EXPECT_EQ(plan.status.view().regions(0).blueprint_id(), "lhbp-c2000002");
  // v3's copy is the newest (within keep_versions 1); v2's is the current
  // source's, beyond it but never deleted.
  EXPECT_TRUE(plan.deletes.empty());
}

TEST(PolicyPlanTest, PausedPolicyIsLeftAsItIs) {
  PolicyRecord p = Family({"ap-beijing"});
  p.mutable_spec()->set_paused(true);
  PolicyPlan plan = PlanPolicy(p, WithFamily({Bp("lhbp-v1000001", "NORMAL")}), {}, {}, Opts());
  EXPECT_FALSE(plan.job.has_value());
  EXPECT_FALSE(StatusDiffers(plan.status, p.status()));
  EXPECT_TRUE(WhatToAsk({p}).ids.empty());
  EXPECT_TRUE(WhatToAsk({p}).names.empty());
}

TEST(PolicyPlanTest, RegionsFollowTheSpec) {
  PolicyRecord p = Family({"ap-beijing", "ap-shanghai"});
  const Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL")});
  PlanAndStart(&p, s, {}, "syncJobs/1");
  PlanAndStart(&p, s,
               Found(Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::SUCCEEDED,
                         {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED},
                          {"ap-shanghai", "lhbp-s1", v1::Destination::SUCCEEDED}})),
               "syncJobs/x");
  p.mutable_spec()->clear_destination_regions();
  p.mutable_spec()->add_destination_regions("ap-chengdu");
  p.mutable_spec()->add_destination_regions("ap-beijing");
  PolicyPlan plan = PlanAndStart(&p, s, {}, "syncJobs/2");
  ASSERT_TRUE(plan.job.has_value());
  EXPECT_THAT(plan.job->regions, ElementsAre("ap-chengdu"));
  ASSERT_EQ(p.status().view().regions_size(), 2);
  EXPECT_EQ(p.status().view().regions(0).region(), "ap-chengdu");
  EXPECT_EQ(p.status().view().regions(1).state(), Region::IN_SYNC);
}

TEST(PolicyPlanTest, DeletionCancelsTheJobThenDeletesEveryCopyThenRemoves) {
  PolicyRecord p = Family({"ap-beijing", "ap-shanghai"});
  const Survey s = WithFamily({Bp("lhbp-v1000001", "NORMAL")});
  PlanAndStart(&p, s, {}, "syncJobs/1");
  p.set_delete_requested(true);
  const v1::SyncJob running = Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::RUNNING,
                                  {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED},
                                   {"ap-shanghai", "lhbp-s1", v1::Destination::SYNCING}});
  PolicyPlan plan = PlanPolicy(p, s, Found(running), {}, Opts());
  EXPECT_TRUE(plan.cancel_job);
  EXPECT_FALSE(plan.remove);
  EXPECT_FALSE(plan.job.has_value());

  // Cancelled: the copy that had succeeded is the job's own to delete too,
  // but the policy also tracks it once settled, and deletes it.
  const v1::SyncJob cancelled = Job("syncJobs/1", "lhbp-v1000001", v1::SyncJob::CANCELLED,
                                    {{"ap-beijing", "lhbp-b1", v1::Destination::SUCCEEDED},
                                     {"ap-shanghai", "lhbp-s1", v1::Destination::CANCELLED}});
  plan = PlanPolicy(p, s, Found(cancelled), {}, Opts());
  EXPECT_FALSE(plan.cancel_job);
  ASSERT_EQ(plan.deletes.size(), 1u);
  EXPECT_EQ(plan.deletes[0].blueprint_id, "lhbp-b1");
  EXPECT_FALSE(plan.remove);
  EXPECT_TRUE(RecordDelete(&plan.status, plan.deletes[0],
                           absl::NotFoundError("PrivateBlueprintNotFound"), Opts()));
  *p.mutable_status() = plan.status;
  plan = PlanPolicy(p, s, {}, {}, Opts());
  EXPECT_TRUE(plan.remove);
}

TEST(PolicyPlanTest, FailedDeleteIsRetriedUntilGivenUp) {
  PolicyStatus status;
  Region* r = status.mutable_view()->add_regions();
  r->set_region("ap-beijing");
  r->add_copies()->set_blueprint_id("lhbp-b1");
  const PlannedDelete d{"ap-beijing", "lhbp-b1"};
  const absl::Status busy = absl::FailedPreconditionError("BlueprintOccupied");
  EXPECT_FALSE(RecordDelete(&status, d, busy, Opts()));
  EXPECT_FALSE(RecordDelete(&status, d, busy, Opts(kNow + absl::Minutes(59))));
  EXPECT_EQ(status.view().regions(0).copies_size(), 1);
  EXPECT_TRUE(RecordDelete(&status, d, busy, Opts(kNow + absl::Minutes(60))));
  EXPECT_EQ(status.view().regions(0).copies_size(), 0);
  EXPECT_TRUE(status.delete_failing_since().empty());
}

TEST(PolicyPlanTest, StatusDiffersIgnoresRefreshedTimes) {
  PolicyStatus a;
  a.mutable_view()->add_regions()->set_region("ap-beijing");
  PolicyStatus b = a;
  *b.mutable_view()->mutable_reconcile_time() = jobs::ToProto(kNow);
  *b.mutable_view()->mutable_regions(0)->mutable_confirm_time() = jobs::ToProto(kNow);
  EXPECT_FALSE(StatusDiffers(a, b));
  b.mutable_view()->mutable_regions(0)->set_state(Region::IN_SYNC);
  EXPECT_TRUE(StatusDiffers(a, b));
}

TEST(PolicyPlanTest, WhatToAskBatchesByRegion) {
  PolicyRecord a = Family({"ap-beijing"});
  Region* r = a.mutable_status()->mutable_view()->add_regions();
  r->set_region("ap-beijing");
  r->add_copies()->set_blueprint_id("lhbp-b1");
  PolicyRecord b = Fixed("lhbp-src00001", {"ap-beijing"});
  b.mutable_spec()->set_name("syncPolicies/b");
  const SurveyAsk ask = WhatToAsk({a, b});
  EXPECT_THAT(ask.names.at("ap-guangzhou"), ElementsAre("web-golden"));
  EXPECT_THAT(ask.ids.at("ap-guangzhou"), ElementsAre("lhbp-src00001"));
  EXPECT_THAT(ask.ids.at("ap-beijing"), ElementsAre("lhbp-b1"));
}

}  // namespace
}  // namespace blueprintsync::policies
