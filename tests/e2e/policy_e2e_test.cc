// End-to-end: replication policies against real processes (blueprint-syncd
// on SQLite, the lighthouse-emulator over HTTP, gRPC over TCP). The emulator
// is the ground truth for what reached "Tencent Cloud": which copies exist
// and in which state, which SyncBlueprint calls executed for which source and
// region, which blueprints DeleteBlueprints removed, and how many
// DescribeBlueprints calls each region received.
//
// Every server runs with --policy-interval 1s (so the first retry backoff is
// 1 s, doubling) and the emulator makes a copy in about a second, so each
// scenario takes seconds. Waits poll with generous overall timeouts; what is
// asserted is the outcome, never how fast it came (the figures are printed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <iostream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/e2e/policy_e2e_util.h"

namespace blueprintsync::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using v1::SyncJob;
using v1::SyncPolicy;
using v1::SyncPolicyRegion;

constexpr char kSrc[] = "ap-guangzhou";
const std::vector<std::string> kFour = {"ap-beijing", "ap-shanghai", "ap-chengdu", "ap-nanjing"};
// The family: two NORMAL versions and a newer broken build, all named kFamily
// in the source region. The policy must pick kV1 (the newest NORMAL one).
constexpr char kFamily[] = "web-golden";
constexpr char kV0[] = "lhbp-wgold000";
constexpr char kV1[] = "lhbp-wgold001";
constexpr char kBroken[] = "lhbp-wgoldbad";
// Not made by the service, same name as the family, in a destination region:
// never the service's to delete.
constexpr char kStranger[] = "lhbp-strngr01";
// A fixed source of the default seed.
constexpr char kFixed[] = "lhbp-gzbase01";

constexpr absl::Duration kInterval = absl::Seconds(1);
// Generous: a pass, a submission, a 1 s copy and a poll take a few seconds;
// the machine running the tests may be loaded.
constexpr absl::Duration kConverge = absl::Seconds(60);
// Timestamps cross the wire as protobuf Timestamps; allow for rounding.
constexpr absl::Duration kClockSlack = absl::Milliseconds(50);

class PolicyE2eTest : public E2eTest {
 protected:
  // The server flags of every scenario (plus `extra`).
  std::vector<std::string> ServerArgs(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--policy-interval", "1s", "--policy-backoff-max", "4s",
                                     "--reconcile-grace", "1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  absl::Status StartAll(int sync_ms = 1000) {
    if (absl::Status s = StartEmulator({"--sync-duration-ms", absl::StrCat(sync_ms)}); !s.ok()) {
      return s;
    }
    for (const std::string& json :
         {SeedNamedJson(kSrc, kV0, kFamily, "2024-01-15T08:00:00Z"),
          SeedNamedJson(kSrc, kV1, kFamily, "2024-06-15T08:00:00Z"),
          absl::StrCat(
              R"({"blueprints":[{"BlueprintId":")", kBroken, R"(","Region":")", kSrc,
              R"(","BlueprintName":")", kFamily,
              R"(","BlueprintState":"CREATEFAILED","CreatedTime":"2024-09-15T08:00:00Z"}]})"),
          SeedNamedJson("ap-beijing", kStranger, kFamily, "2024-03-15T08:00:00Z")}) {
      if (absl::Status s = admin().PutBlueprints(json); !s.ok()) return s;
    }
    return StartServer(ServerArgs());
  }

  std::function<v1::BlueprintSync::Stub&()> Stub() {
    return [this]() -> v1::BlueprintSync::Stub& { return stub(); };
  }
  absl::StatusOr<SyncPolicy> Wait(const std::string& name,
                                  const std::function<bool(const SyncPolicy&)>& done,
                                  absl::Duration timeout = kConverge) {
    return WaitForPolicy(Stub(), name, done, timeout);
  }
  std::map<std::string, std::string> Upstream(const std::string& region) {
    auto states = UpstreamStates(admin(), region);
    EXPECT_TRUE(states.ok()) << states.status();
    return states.ok() ? *states : std::map<std::string, std::string>{};
  }
  EmulatorStats Stats() {
    auto stats = admin().Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : EmulatorStats{};
  }
  // Waits until no blueprint of `ids` (region -> id) is left upstream.
  void WaitUntilGoneUpstream(const std::multimap<std::string, std::string>& ids) {
    const absl::Time end = absl::Now() + kConverge;
    for (;;) {
      std::vector<std::string> left;
      for (const auto& [region, id] : ids) {
        if (Upstream(region).count(id)) left.push_back(absl::StrCat(region, "/", id));
      }
      if (left.empty()) return;
      if (absl::Now() >= end) {
        ADD_FAILURE() << "still upstream after " << absl::FormatDuration(kConverge) << ": "
                      << absl::StrJoin(left, ", ");
        return;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  void ExpectServed(const SyncPolicy& policy) { ExpectServedUpstream(stub(), admin(), policy); }
};

TEST_F(PolicyE2eTest, AFamilyPolicyBecomesInSyncThenFollowsANewVersionAndDeletesTheOldCopies) {
  BPS_ASSERT_OK(StartAll());
  SyncPolicy spec = FamilyPolicy(kSrc, kFamily, kFour, /*keep_versions=*/1);
  (*spec.mutable_labels())["team"] = "web";
  SyncPolicy created;
  const absl::Time create_started = absl::Now();
  grpc::Status s = CreatePolicy(stub(), "web-golden", spec, &created);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(created.name(), "syncPolicies/web-golden");
  EXPECT_EQ(created.blueprint_name(), kFamily);
  EXPECT_FALSE(created.etag().empty());
  EXPECT_TRUE(IsSet(created.create_time()));
  EXPECT_EQ(created.labels().at("team"), "web");

  auto first = Wait(created.name(), FullyInSync);
  BPS_ASSERT_OK(first.status());
  const absl::Duration first_took = absl::Now() - create_started;
  EXPECT_EQ(first->source_blueprint_id(), kV1) << "not the newest NORMAL version of the family";
  ExpectServed(*first);
  auto jobs = PolicyJobs(stub(), created.name());
  BPS_ASSERT_OK(jobs.status());
  ASSERT_EQ(jobs->size(), 1u) << "one job for all the regions missing a copy";
  EXPECT_EQ((*jobs)[0].destinations_size(), 4);
  std::multimap<std::string, std::string> old_copies;
  for (const SyncPolicyRegion& r : first->regions())
    old_copies.emplace(r.region(), r.blueprint_id());

  // A new version of the family appears in the console.
  auto v2 = admin().AddFamilyVersion(kSrc, kFamily);
  BPS_ASSERT_OK(v2.status());
  const absl::Time added = absl::Now();
  auto second = Wait(created.name(), [&](const SyncPolicy& p) { return InSyncFor(p, *v2); });
  BPS_ASSERT_OK(second.status());
  const absl::Duration second_took = absl::Now() - added;
  ExpectServed(*second);
  for (const SyncPolicyRegion& r : second->regions()) {
    EXPECT_NE(r.blueprint_id(), old_copies.find(r.region())->second)
        << r.region() << " still served by the old copy";
  }
  jobs = PolicyJobs(stub(), created.name());
  BPS_ASSERT_OK(jobs.status());
  ASSERT_EQ(jobs->size(), 2u) << "one job per version";
  const SyncJob& new_job = (*jobs)[1];
  EXPECT_EQ(new_job.blueprint_id(), *v2);
  EXPECT_EQ(new_job.destinations_size(), 4);
  const absl::Duration noticed = ToTime(new_job.create_time()) - added;

  // keep_versions 1: every old copy is deleted upstream once the new one
  // is NORMAL ...
  WaitUntilGoneUpstream(old_copies);
  const EmulatorStats stats = Stats();
  for (const auto& [region, id] : old_copies) {
    EXPECT_TRUE(stats.WasDeleted(region, id)) << region << "/" << id << " gone, but not deleted";
  }
  // ... and nothing else: never a source (old or new), never a blueprint the
  // service did not make, even with the family's name.
  std::set<std::string> old_ids;
  for (const auto& [region, id] : old_copies) old_ids.insert(id);
  for (const EmulatorDeletion& d : stats.deletions) {
    EXPECT_TRUE(old_ids.count(d.blueprint_id))
        << "deleted " << d.region << "/" << d.blueprint_id << ", not an old copy of the policy";
  }
  const auto source_region = Upstream(kSrc);
  for (const std::string& id : {std::string(kV0), std::string(kV1), *v2, std::string(kBroken)}) {
    EXPECT_TRUE(source_region.count(id)) << "source-region blueprint " << id << " is gone";
  }
  EXPECT_TRUE(Upstream("ap-beijing").count(kStranger)) << "a blueprint the service did not make";

  // The status stops tracking them.
  auto settled = Wait(created.name(), [](const SyncPolicy& p) {
    if (!FullyInSync(p)) return false;
    for (const SyncPolicyRegion& r : p.regions()) {
      if (r.copies_size() != 1) return false;
    }
    return true;
  });
  EXPECT_TRUE(settled.ok()) << settled.status();

  // SyncBlueprint executed once per (source, region), nothing more.
  const auto per = SubmissionsPerSourceAndRegion(stats.sync_submissions);
  for (const std::string& region : kFour) {
    EXPECT_EQ(per.count({kV1, region}) ? per.at({kV1, region}) : 0, 1) << region;
    EXPECT_EQ(per.count({*v2, region}) ? per.at({*v2, region}) : 0, 1) << region;
  }
  EXPECT_EQ(stats.Action("SyncBlueprint").executed, 2);
  EXPECT_EQ(stats.Action("SyncBlueprint").throttled, 0);
  EXPECT_EQ(stats.Action("DescribeBlueprints").throttled, 0);
  std::cout << absl::StrFormat(
      "[policy figures] 4 regions: in sync %s after create; new version %s noticed after %s "
      "(job created), all regions on it after %s (interval %s, copy ~1 s)\n",
      absl::FormatDuration(absl::Trunc(first_took, absl::Milliseconds(1))), *v2,
      absl::FormatDuration(absl::Trunc(noticed, absl::Milliseconds(1))),
      absl::FormatDuration(absl::Trunc(second_took, absl::Milliseconds(1))),
      absl::FormatDuration(kInterval));
}

// While a blueprint is the source of a running sync, Tencent shows it
// SYNCING. The family's newest version being copied somewhere else (here by
// a caller's own job) is still the newest version: the policy must not fall
// back to the older one, copy it, and delete the newer copies.
TEST_F(PolicyE2eTest, AFamilyKeepsItsNewestVersionWhileThatVersionIsTheSourceOfAnotherSync) {
  BPS_ASSERT_OK(StartAll());
  SyncPolicy created;
  grpc::Status s =
      CreatePolicy(stub(), "web-golden",
                   FamilyPolicy(kSrc, kFamily, {"ap-beijing", "ap-shanghai"}, 1), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto in_sync = Wait(created.name(), [](const SyncPolicy& p) { return InSyncFor(p, kV1); });
  BPS_ASSERT_OK(in_sync.status());

  // A caller copies kV1 to Chengdu; the copy takes 5 s, kV1 is SYNCING
  // meanwhile.
  BPS_ASSERT_OK(admin().UpdateConfig(R"({"sync_duration_ms":5000})"));
  SyncJob direct;
  s = Sync(MakeRequest(kSrc, kV1, {"ap-chengdu"}), &direct);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(Upstream(kSrc)[kV1], "SYNCING") << "the source is not SYNCING: the test proves nothing";
  std::set<std::string> sources_seen;
  while (Upstream(kSrc)[kV1] == "SYNCING") {
    SyncPolicy p;
    if (GetPolicy(stub(), created.name(), &p).ok()) sources_seen.insert(p.source_blueprint_id());
    absl::SleepFor(absl::Milliseconds(100));
  }
  BPS_ASSERT_OK(WaitForTerminal(direct.name()).status());
  auto after = Wait(created.name(), [](const SyncPolicy& p) { return InSyncFor(p, kV1); });
  BPS_ASSERT_OK(after.status());

  EXPECT_EQ(sources_seen, std::set<std::string>{kV1}) << "the policy changed its source";
  for (const SyncPolicyRegion& r : after->regions()) {
    EXPECT_EQ(r.blueprint_id(), RegionOf(*in_sync, r.region()).blueprint_id())
        << r.region() << ": the copy of the newest version was replaced";
  }
  const EmulatorStats stats = Stats();
  for (const EmulatorSyncSubmission& sub : stats.sync_submissions) {
    EXPECT_NE(sub.blueprint_id, kV0) << "the older version was copied";
  }
  EXPECT_EQ(stats.deleted_blueprints_total, 0) << "copies were deleted";
}

TEST_F(PolicyE2eTest, ACopyRemovedBehindTheServicesBackIsSyncedAgain) {
  BPS_ASSERT_OK(StartAll());
  SyncPolicy created;
  grpc::Status s = CreatePolicy(
      stub(), "gz-base", FixedPolicy(kSrc, kFixed, {"ap-beijing", "ap-shanghai"}, 1), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto first = Wait(created.name(), FullyInSync);
  BPS_ASSERT_OK(first.status());
  EXPECT_EQ(first->source_blueprint_id(), kFixed);
  const SyncPolicyRegion beijing = RegionOf(*first, "ap-beijing");
  const SyncPolicyRegion shanghai = RegionOf(*first, "ap-shanghai");

  // Someone deletes the Beijing copy in the console.
  BPS_ASSERT_OK(admin().RemoveBlueprint("ap-beijing", beijing.blueprint_id()));
  auto repaired = Wait(created.name(), [&](const SyncPolicy& p) {
    const SyncPolicyRegion r = RegionOf(p, "ap-beijing");
    return FullyInSync(p) && r.blueprint_id() != beijing.blueprint_id();
  });
  BPS_ASSERT_OK(repaired.status());
  ExpectServed(*repaired);
  const SyncPolicyRegion beijing2 = RegionOf(*repaired, "ap-beijing");
  EXPECT_NE(beijing2.last_job(), beijing.last_job()) << "re-synced by a new job";
  EXPECT_EQ(RegionOf(*repaired, "ap-shanghai").blueprint_id(), shanghai.blueprint_id())
      << "the untouched region keeps its copy";
  for (const v1::PolicyCopy& c : beijing2.copies()) {
    EXPECT_NE(c.blueprint_id(), beijing.blueprint_id()) << "a vanished copy is still tracked";
  }

  // The repair job copied into Beijing only.
  SyncJob repair;
  s = GetJob(stub(), beijing2.last_job(), &repair);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(repair.policy(), created.name());
  ASSERT_EQ(repair.destinations_size(), 1) << repair.ShortDebugString();
  EXPECT_EQ(repair.destinations(0).region(), "ap-beijing");
  const EmulatorStats stats = Stats();
  const auto per = SubmissionsPerSourceAndRegion(stats.sync_submissions);
  EXPECT_EQ(per.at({kFixed, "ap-beijing"}), 2);
  EXPECT_EQ(per.at({kFixed, "ap-shanghai"}), 1);
  EXPECT_EQ(stats.deleted_blueprints_total, 0) << "nothing of the policy had to be deleted";
}

TEST_F(PolicyE2eTest, AFailingRegionIsReportedRetriedWithBackoffAndItsFailedCopiesDeleted) {
  BPS_ASSERT_OK(StartAll());
  BPS_ASSERT_OK(admin().UpdateConfig(R"({"fail_regions":["ap-shanghai"]})"));
  SyncPolicy created;
  grpc::Status s = CreatePolicy(
      stub(), "gz-base", FixedPolicy(kSrc, kFixed, {"ap-beijing", "ap-shanghai"}, 1), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // The first attempt fails in Shanghai only.
  auto failed = Wait(created.name(), [](const SyncPolicy& p) {
    const SyncPolicyRegion r = RegionOf(p, "ap-shanghai");
    return r.state() == SyncPolicyRegion::FAILED && r.failures() == 1 &&
           RegionOf(p, "ap-beijing").state() == SyncPolicyRegion::IN_SYNC;
  });
  BPS_ASSERT_OK(failed.status());
  EXPECT_FALSE(failed->in_sync());
  const SyncPolicyRegion sh1 = RegionOf(*failed, "ap-shanghai");
  ASSERT_TRUE(sh1.has_last_error()) << DescribePolicy(*failed);
  EXPECT_NE(sh1.last_error().code(), 0);
  // What Tencent reported: the copy's BlueprintState.
  EXPECT_THAT(sh1.last_error().message(), HasSubstr("SYNCING_FAILED"));
  ASSERT_FALSE(sh1.last_job().empty());
  ASSERT_TRUE(IsSet(sh1.next_attempt_time()));
  SyncJob job1;
  s = GetJob(stub(), sh1.last_job(), &job1);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job1.policy(), created.name());
  EXPECT_EQ(job1.state(), SyncJob::FAILED);
  ASSERT_TRUE(IsSet(job1.end_time()));
  const absl::Duration backoff1 = ToTime(sh1.next_attempt_time()) - ToTime(job1.end_time());
  // The first backoff is the policy interval, from the failure on.
  EXPECT_GE(backoff1, kInterval - kClockSlack) << "the retry is not a backoff after the failure";

  // Retried, not at once: a second job, created no earlier than promised.
  auto failed2 = Wait(created.name(), [&](const SyncPolicy& p) {
    const SyncPolicyRegion r = RegionOf(p, "ap-shanghai");
    return r.state() == SyncPolicyRegion::FAILED && r.failures() == 2 &&
           r.last_job() != sh1.last_job();
  });
  BPS_ASSERT_OK(failed2.status());
  const SyncPolicyRegion sh2 = RegionOf(*failed2, "ap-shanghai");
  SyncJob job2;
  s = GetJob(stub(), sh2.last_job(), &job2);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job2.policy(), created.name());
  EXPECT_GE(ToTime(job2.create_time()), ToTime(sh1.next_attempt_time()))
      << "retried before next_attempt_time";
  ASSERT_EQ(job2.destinations_size(), 1) << "only the failed region: " << job2.ShortDebugString();
  EXPECT_EQ(job2.destinations(0).region(), "ap-shanghai");
  ASSERT_TRUE(IsSet(sh2.next_attempt_time()));
  const absl::Duration backoff2 = ToTime(sh2.next_attempt_time()) - ToTime(job2.end_time());
  EXPECT_GE(backoff2, 2 * kInterval - kClockSlack) << "the backoff does not double";

  // Shanghai is fixed; the next attempt succeeds.
  BPS_ASSERT_OK(admin().UpdateConfig(R"({"fail_regions":[]})"));
  auto healed = Wait(created.name(), FullyInSync);
  BPS_ASSERT_OK(healed.status());
  ExpectServed(*healed);
  EXPECT_EQ(RegionOf(*healed, "ap-shanghai").failures(), 0);

  // Every failed copy was deleted upstream.
  auto jobs = PolicyJobs(stub(), created.name());
  BPS_ASSERT_OK(jobs.status());
  std::multimap<std::string, std::string> failed_copies;
  for (const SyncJob& j : *jobs) {
    for (const auto& d : j.destinations()) {
      if (d.state() == v1::Destination::FAILED && !d.blueprint_id().empty()) {
        failed_copies.emplace(d.region(), d.blueprint_id());
      }
    }
  }
  EXPECT_GE(failed_copies.size(), 2u);
  WaitUntilGoneUpstream(failed_copies);
  const EmulatorStats stats = Stats();
  for (const auto& [region, id] : failed_copies) {
    EXPECT_TRUE(stats.WasDeleted(region, id)) << region << "/" << id;
  }
  EXPECT_TRUE(Upstream(kSrc).count(kFixed)) << "never the source";
  const auto per = SubmissionsPerSourceAndRegion(stats.sync_submissions);
  EXPECT_EQ(per.at({kFixed, "ap-beijing"}), 1) << "a region in sync is not copied again";
  std::cout << absl::StrFormat(
      "[policy figures] failing region: attempts %d, backoff after failure 1 %s, after failure "
      "2 %s (interval %s, max 4s)\n",
      per.at({kFixed, "ap-shanghai"}),
      absl::FormatDuration(absl::Trunc(backoff1, absl::Milliseconds(1))),
      absl::FormatDuration(absl::Trunc(backoff2, absl::Milliseconds(1))),
      absl::FormatDuration(kInterval));
}

TEST_F(PolicyE2eTest, ARejectedSyncReportsTheTencentCodeAndIsRetried) {
  BPS_ASSERT_OK(StartAll());
  // Tencent refuses the first SyncBlueprint (not executed).
  BPS_ASSERT_OK(admin().SetFaults(
      R"({"rules":[{"action":"SyncBlueprint","fault":"error","count":1,)"
      R"("code":"FailedOperation.UnableToSyncBlueprint","message":"Unable to sync."}]})"));
  SyncPolicy created;
  grpc::Status s = CreatePolicy(
      stub(), "gz-base", FixedPolicy(kSrc, kFixed, {"ap-beijing", "ap-shanghai"}, 1), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto failed = Wait(created.name(), [](const SyncPolicy& p) {
    return RegionOf(p, "ap-beijing").state() == SyncPolicyRegion::FAILED;
  });
  BPS_ASSERT_OK(failed.status());
  for (const SyncPolicyRegion& r : failed->regions()) {
    SCOPED_TRACE(r.region());
    EXPECT_EQ(r.state(), SyncPolicyRegion::FAILED);
    EXPECT_EQ(r.last_error().tencent_code(), "FailedOperation.UnableToSyncBlueprint");
    EXPECT_FALSE(r.last_error().tencent_request_id().empty());
    EXPECT_TRUE(IsSet(r.next_attempt_time()));
  }
  auto healed = Wait(created.name(), FullyInSync);
  BPS_ASSERT_OK(healed.status());
  ExpectServed(*healed);
  const EmulatorStats stats = Stats();
  EXPECT_EQ(stats.Action("SyncBlueprint").executed, 1);
  EXPECT_EQ(stats.Action("SyncBlueprint").errors, 1);
}

TEST_F(PolicyE2eTest, APausedPolicyMakesNoUpstreamCall) {
  BPS_ASSERT_OK(StartAll());
  // The paused policy lives in the mainland; a witness policy outside it
  // shows that passes go on (its copy is surveyed every pass) while the
  // paused one costs nothing upstream.
  SyncPolicy paused, witness;
  grpc::Status s = CreatePolicy(
      stub(), "gz-base", FixedPolicy(kSrc, kFixed, {"ap-beijing", "ap-shanghai"}, 1), &paused);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = CreatePolicy(stub(), "sg-base", FixedPolicy("ap-singapore", "lhbp-sgbase01", {"ap-tokyo"}, 1),
                   &witness);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto in_sync = Wait(paused.name(), FullyInSync);
  BPS_ASSERT_OK(in_sync.status());
  BPS_ASSERT_OK(Wait(witness.name(), FullyInSync).status());

  SyncPolicy pause = *in_sync;
  pause.set_paused(true);
  SyncPolicy updated;
  s = UpdatePolicy(stub(), pause, {"paused"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(updated.paused());
  EXPECT_NE(updated.etag(), in_sync->etag());
  // A copy vanishes while paused: not repaired, not even looked at.
  const std::string beijing_copy = RegionOf(*in_sync, "ap-beijing").blueprint_id();
  BPS_ASSERT_OK(admin().RemoveBlueprint("ap-beijing", beijing_copy));
  // Passes are counted by the witness: each one asks about its Tokyo copy
  // in one DescribeBlueprints call (no job runs there, so nothing else
  // does). A pass may have been under way when the update was answered:
  // let one more go by before counting.
  auto passes_seen = [&](int passes) {
    const int64_t start = Stats().DescribeCalls("ap-tokyo");
    const absl::Time end = absl::Now() + kConverge;
    int64_t now = start;
    while (now - start < passes && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(50));
      now = Stats().DescribeCalls("ap-tokyo");
    }
    return now - start;
  };
  ASSERT_GE(passes_seen(1), 1) << "the witness policy is not surveyed";
  const EmulatorStats before = Stats();
  ASSERT_GE(passes_seen(3), 3) << "the witness policy is not surveyed";
  const EmulatorStats after = Stats();
  for (const char* region : {kSrc, "ap-beijing", "ap-shanghai"}) {
    EXPECT_EQ(after.DescribeCalls(region), before.DescribeCalls(region))
        << "DescribeBlueprints in " << region << " for a paused policy";
  }
  EXPECT_EQ(after.Action("SyncBlueprint").received, before.Action("SyncBlueprint").received);
  EXPECT_EQ(after.Action("DeleteBlueprints").received, before.Action("DeleteBlueprints").received);
  SyncPolicy still;
  ASSERT_TRUE(GetPolicy(stub(), paused.name(), &still).ok());
  EXPECT_TRUE(RegionOf(still, "ap-beijing").blueprint_id() == beijing_copy)
      << "a paused policy's status changed: " << DescribePolicy(still);

  // Resumed: the vanished copy is repaired.
  SyncPolicy resume = updated;  // the current etag
  resume.set_paused(false);
  s = UpdatePolicy(stub(), resume, {"paused"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto repaired = Wait(paused.name(), [&](const SyncPolicy& p) {
    return FullyInSync(p) && RegionOf(p, "ap-beijing").blueprint_id() != beijing_copy;
  });
  BPS_ASSERT_OK(repaired.status());
  ExpectServed(*repaired);
}

TEST_F(PolicyE2eTest, DeleteWithDeleteCopiesRemovesEveryCopyItMadeAndWithoutItKeepsThem) {
  BPS_ASSERT_OK(StartAll());
  // keep_versions 0: the copies of both versions stay while the policy lives.
  SyncPolicy family, fixed;
  grpc::Status s = CreatePolicy(
      stub(), "web-golden", FamilyPolicy(kSrc, kFamily, {"ap-beijing", "ap-shanghai"}, 0), &family);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = CreatePolicy(stub(), "gz-base", FixedPolicy(kSrc, kFixed, {"ap-chengdu"}, 0), &fixed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  BPS_ASSERT_OK(Wait(family.name(), FullyInSync).status());
  auto v2 = admin().AddFamilyVersion(kSrc, kFamily);
  BPS_ASSERT_OK(v2.status());
  auto both = Wait(family.name(), [&](const SyncPolicy& p) { return InSyncFor(p, *v2); });
  BPS_ASSERT_OK(both.status());
  auto fixed_in_sync = Wait(fixed.name(), FullyInSync);
  BPS_ASSERT_OK(fixed_in_sync.status());

  std::multimap<std::string, std::string> family_copies;  // from its jobs: the ground truth
  auto jobs = PolicyJobs(stub(), family.name());
  BPS_ASSERT_OK(jobs.status());
  ASSERT_EQ(jobs->size(), 2u);
  for (const SyncJob& j : *jobs) {
    for (const auto& d : j.destinations()) family_copies.emplace(d.region(), d.blueprint_id());
  }
  ASSERT_EQ(family_copies.size(), 4u);
  for (const auto& [region, id] : family_copies) {
    EXPECT_TRUE(Upstream(region).count(id)) << "keep_versions 0 deleted " << region << "/" << id;
  }
  const std::string fixed_copy = RegionOf(*fixed_in_sync, "ap-chengdu").blueprint_id();

  // Without delete_copies: gone at once, its copy stays.
  s = DeletePolicy(stub(), fixed.name(), /*delete_copies=*/false);
  ASSERT_TRUE(s.ok()) << s.error_message();
  SyncPolicy gone;
  EXPECT_EQ(GetPolicy(stub(), fixed.name(), &gone).error_code(), grpc::StatusCode::NOT_FOUND);

  // With delete_copies: readable while its copies go, then NOT_FOUND.
  s = DeletePolicy(stub(), family.name(), /*delete_copies=*/true);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const absl::Time end = absl::Now() + kConverge;
  grpc::Status get;
  do {
    get = GetPolicy(stub(), family.name(), &gone);
    if (get.ok()) {
      EXPECT_TRUE(gone.deleting()) << DescribePolicy(gone);
    } else {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < end);
  ASSERT_EQ(get.error_code(), grpc::StatusCode::NOT_FOUND)
      << "the policy is still there: " << DescribePolicy(gone);
  // When it is gone, so are its copies: none left upstream, each deleted.
  const EmulatorStats stats = Stats();
  for (const auto& [region, id] : family_copies) {
    EXPECT_FALSE(Upstream(region).count(id)) << region << "/" << id << " left upstream";
    EXPECT_TRUE(stats.WasDeleted(region, id)) << region << "/" << id;
  }
  // Nothing else: the other policy's copy, the sources, the stranger.
  EXPECT_TRUE(Upstream("ap-chengdu").count(fixed_copy)) << "the other policy's copy";
  EXPECT_EQ(stats.deleted_blueprints_total, 4);
  const auto source_region = Upstream(kSrc);
  for (const std::string& id : {std::string(kV1), *v2, std::string(kFixed)}) {
    EXPECT_TRUE(source_region.count(id)) << id;
  }
  EXPECT_TRUE(Upstream("ap-beijing").count(kStranger));
  // Its jobs stay readable, still naming it.
  jobs = PolicyJobs(stub(), family.name());
  BPS_ASSERT_OK(jobs.status());
  EXPECT_EQ(jobs->size(), 2u);
  // A deleted policy's name can be used again.
  s = CreatePolicy(stub(), "gz-base", FixedPolicy(kSrc, kFixed, {"ap-chengdu"}, 0), &fixed);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// SIGKILL twice while a policy's first sync is under way: once with the
// SyncBlueprint call executed upstream but unanswered, once while the copies
// are being made. Each (source, region) is copied once, and the policy
// converges on the restarted server.
TEST_F(PolicyE2eTest, SigkillDuringAPolicySyncNeverSubmitsTwiceAndTheRestartConverges) {
  BPS_ASSERT_OK(StartAll(/*sync_ms=*/6000));
  BPS_ASSERT_OK(
      admin().SetFaults(R"({"rules":[{"action":"SyncBlueprint","fault":"latency","phase":"after",)"
                        R"("latency_ms":5000}]})"));
  SyncPolicy created;
  grpc::Status s =
      CreatePolicy(stub(), "web-golden", FamilyPolicy(kSrc, kFamily, kFour, 1), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // Executed upstream, the answer held back: the server cannot know.
  const absl::Time end = absl::Now() + kConverge;
  while (Stats().sync_submissions.empty() && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Stats().sync_submissions.size(), 1u) << "no SyncBlueprint in flight to kill";
  auto killed = KillServer();
  BPS_ASSERT_OK(killed.status());
  EXPECT_EQ(*killed, KilledBy(SIGKILL));
  BPS_ASSERT_OK(admin().SetFaults(R"({"rules":[]})"));
  BPS_ASSERT_OK(StartServer(ServerArgs()));

  // Second kill: the policy's job known and RUNNING, copies still SYNCING.
  auto syncing = Wait(created.name(), [](const SyncPolicy& p) {
    for (const SyncPolicyRegion& r : p.regions()) {
      if (r.state() != SyncPolicyRegion::SYNCING) return false;
    }
    return p.regions_size() == 4;
  });
  BPS_ASSERT_OK(syncing.status());
  killed = KillServer();
  BPS_ASSERT_OK(killed.status());
  BPS_ASSERT_OK(StartServer(ServerArgs()));

  auto converged = Wait(created.name(), FullyInSync);
  BPS_ASSERT_OK(converged.status());
  EXPECT_EQ(converged->source_blueprint_id(), kV1);
  ExpectServed(*converged);
  const EmulatorStats stats = Stats();
  EXPECT_EQ(stats.Action("SyncBlueprint").executed, 1) << "a duplicate SyncBlueprint execution";
  const auto per = SubmissionsPerSourceAndRegion(stats.sync_submissions);
  for (const std::string& region : kFour) {
    EXPECT_EQ(per.count({kV1, region}) ? per.at({kV1, region}) : 0, 1) << region;
  }
  // The one execution is the one job the policy has: what it tracks is
  // what was made.
  auto jobs = PolicyJobs(stub(), created.name());
  BPS_ASSERT_OK(jobs.status());
  ASSERT_EQ(jobs->size(), 1u);
  std::set<std::string> made(stats.sync_submissions[0].destination_blueprint_ids.begin(),
                             stats.sync_submissions[0].destination_blueprint_ids.end());
  for (const auto& d : (*jobs)[0].destinations()) {
    EXPECT_TRUE(made.count(d.blueprint_id())) << d.ShortDebugString();
  }
  EXPECT_EQ(stats.deleted_blueprints_total, 0);
}

TEST_F(PolicyE2eTest, BadPoliciesAreRejectedNamingTheFieldWithoutAnUpstreamCall) {
  BPS_ASSERT_OK(StartAll());
  struct Case {
    std::string what;
    std::string id;
    SyncPolicy policy;
    std::vector<std::string> fields;  // a violation's field contains one of these
  };
  auto with = [](SyncPolicy p, const std::function<void(SyncPolicy&)>& f) {
    f(p);
    return p;
  };
  const SyncPolicy good = FixedPolicy(kSrc, kFixed, {"ap-beijing"}, 1);
  const std::vector<Case> cases = {
      {"id not AIP-122", "Bad_Id", good, {"sync_policy_id"}},
      {"id too short", "ab", good, {"sync_policy_id"}},
      {"no source region",
       "p-one",
       with(good, [](SyncPolicy& p) { p.clear_source_region(); }),
       {"source_region"}},
      {"no source",
       "p-two",
       with(good, [](SyncPolicy& p) { p.clear_source(); }),
       {"blueprint_id", "blueprint_name", "source"}},
      {"malformed blueprint id",
       "p-three",
       with(good, [](SyncPolicy& p) { p.set_blueprint_id("lhbp-NOPE"); }),
       {"blueprint_id"}},
      {"family name too long",
       "p-four",
       with(good, [](SyncPolicy& p) { p.set_blueprint_name(std::string(61, 'n')); }),
       {"blueprint_name"}},
      {"destination is the source",
       "p-five",
       with(good, [](SyncPolicy& p) { p.add_destination_regions(kSrc); }),
       {"destination_regions"}},
      {"across the mainland border",
       "p-six",
       with(good, [](SyncPolicy& p) { p.add_destination_regions("ap-singapore"); }),
       {"destination_regions"}},
      {"duplicate destination",
       "p-seven",
       with(good, [](SyncPolicy& p) { p.add_destination_regions("ap-beijing"); }),
       {"destination_regions"}},
      {"no destination",
       "p-eight",
       with(good, [](SyncPolicy& p) { p.clear_destination_regions(); }),
       {"destination_regions"}},
      {"keep_versions over 100",
       "p-nine",
       with(good, [](SyncPolicy& p) { p.set_keep_versions(101); }),
       {"keep_versions"}},
      {"keep_versions negative",
       "p-ten",
       with(good, [](SyncPolicy& p) { p.set_keep_versions(-1); }),
       {"keep_versions"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    SyncPolicy out;
    grpc::Status s = CreatePolicy(stub(), c.id, c.policy, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    const RichError rich = ParseRichError(s);
    ASSERT_TRUE(rich.bad_request.has_value()) << "no BadRequest in " << s.error_message();
    bool named = false;
    for (const std::string& f : rich.violation_fields()) {
      for (const std::string& want : c.fields) named |= absl::StrContains(f, want);
    }
    EXPECT_TRUE(named) << "no violation names " << absl::StrJoin(c.fields, " or ") << ": "
                       << rich.bad_request->ShortDebugString();
  }
  // validate_only: checked, nothing recorded.
  SyncPolicy out;
  grpc::Status s = CreatePolicy(stub(), "gz-base", good, &out, /*validate_only=*/true);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(GetPolicy(stub(), "syncPolicies/gz-base", &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // The same id twice.
  s = CreatePolicy(stub(), "gz-base", good, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(CreatePolicy(stub(), "gz-base", good, &out).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  // The source cannot change; a stale etag is refused.
  SyncPolicy change = out;
  change.set_keep_versions(3);
  SyncPolicy updated;
  s = UpdatePolicy(stub(), change, {"keep_versions"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.keep_versions(), 3);
  EXPECT_EQ(UpdatePolicy(stub(), change, {"keep_versions"}, &updated).error_code(),
            grpc::StatusCode::ABORTED)
      << "an old etag was accepted";
  change.set_etag("");
  EXPECT_EQ(UpdatePolicy(stub(), change, {"blueprint_id"}, &updated).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Nothing of the rejected ones reached Tencent: only the one policy's work.
  const EmulatorStats stats = Stats();
  for (const EmulatorSyncSubmission& sub : stats.sync_submissions) {
    EXPECT_EQ(sub.blueprint_id, kFixed);
  }
}

#ifdef BLUEPRINT_SYNC_CLI
class PolicyCliE2eTest : public PolicyE2eTest {
 protected:
  absl::StatusOr<RunResult> Cli(std::vector<std::string> args) {
    ChildProcessOptions o;
    o.argv = {BLUEPRINT_SYNC_CLI, "--server", server_address()};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.unset_env = {"BLUEPRINT_SYNC_*", "TENCENTCLOUD_*", "http_proxy", "https_proxy", "grpc_proxy"};
    return RunToCompletion(std::move(o), absl::Seconds(120));
  }
};

TEST_F(PolicyCliE2eTest, GetWaitExitsZeroInSyncAndOneWhenARegionFails) {
  BPS_ASSERT_OK(StartAll());
  SyncPolicy ok_policy, failing;
  grpc::Status s = CreatePolicy(
      stub(), "gz-base", FixedPolicy(kSrc, kFixed, {"ap-beijing", "ap-shanghai"}, 1), &ok_policy);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto run = Cli({"policy", "get", "gz-base", "--wait"});
  BPS_ASSERT_OK(run.status());
  EXPECT_EQ(run->status, ExitedWith(0)) << run->status.ToString() << "\nstdout:\n"
                                        << run->out << "\nstderr:\n"
                                        << run->err;
  SyncPolicy now;
  ASSERT_TRUE(GetPolicy(stub(), ok_policy.name(), &now).ok());
  EXPECT_TRUE(FullyInSync(now)) << "exit 0 before the policy was in sync: " << DescribePolicy(now);

  BPS_ASSERT_OK(admin().UpdateConfig(R"({"fail_regions":["ap-nanjing"]})"));
  s = CreatePolicy(stub(), "gz-two",
                   FixedPolicy(kSrc, "lhbp-gzbase02", {"ap-chengdu", "ap-nanjing"}, 1), &failing);
  ASSERT_TRUE(s.ok()) << s.error_message();
  run = Cli({"policy", "get", "gz-two", "--wait"});
  BPS_ASSERT_OK(run.status());
  EXPECT_EQ(run->status, ExitedWith(1)) << run->status.ToString() << "\nstdout:\n"
                                        << run->out << "\nstderr:\n"
                                        << run->err;
  EXPECT_THAT(run->out + run->err, HasSubstr("ap-nanjing"));
  EXPECT_THAT(run->out + run->err, HasSubstr("FAILED"));
  ASSERT_TRUE(GetPolicy(stub(), failing.name(), &now).ok());
  EXPECT_GT(RegionOf(now, "ap-nanjing").failures(), 0) << DescribePolicy(now);
}
#endif  // BLUEPRINT_SYNC_CLI

}  // namespace
}  // namespace blueprintsync::testing
