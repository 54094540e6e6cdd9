#include "client/policy_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "client/fake_connection.h"

namespace blueprintsync::cli {
namespace {

using ::blueprintsync::testing::ParsePolicy;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

namespace v1 = ::blueprintsync::v1;

// A family policy over three regions after a new version (lhbp-v2000002)
// appeared: Shanghai has it, Beijing is still served by the old version's
// copy while the new one syncs, Chengdu failed for quota. Times from
// 2026-11-27T22:01:02Z.
const char kPolicy[] = R"pb(
  name: "syncPolicies/web-golden"
  source_region: "ap-guangzhou"
  blueprint_name: "web-golden"
  destination_regions: [ "ap-shanghai", "ap-beijing", "ap-chengdu" ]
  keep_versions: 2
  labels { key: "team" value: "web" }
  labels { key: "env" value: "prod" }
  etag: "e-17"
  creator: "anonymous"
  create_time { seconds: 1795816862 }
  source_blueprint_id: "lhbp-v2000002"
  regions {
    region: "ap-shanghai"
    state: IN_SYNC
    blueprint_id: "lhbp-sh000002"
    serving_source_blueprint_id: "lhbp-v2000002"
    last_job: "syncJobs/j2"
    confirm_time { seconds: 1795816922 }
    copies { blueprint_id: "lhbp-sh000002" source_blueprint_id: "lhbp-v2000002" }
    copies { blueprint_id: "lhbp-sh000001" source_blueprint_id: "lhbp-v1000001" }
  }
  regions {
    region: "ap-beijing"
    state: SYNCING
    blueprint_id: "lhbp-bj000001"
    serving_source_blueprint_id: "lhbp-v1000001"
    last_job: "syncJobs/j2"
    copies { blueprint_id: "lhbp-bj000001" source_blueprint_id: "lhbp-v1000001" }
  }
  regions {
    region: "ap-chengdu"
    state: FAILED
    last_job: "syncJobs/j2"
    last_error {
      code: 8
      message: "The image quota of region `ap-chengdu` is exceeded."
      tencent_code: "LimitExceeded.SyncBlueprintQuotaLimitExceeded"
      tencent_request_id: "req-cd-1"
    }
    failures: 2
    next_attempt_time { seconds: 1795816982 }
  }
)pb";

TEST(FormatPolicyTextTest, ShowsThePolicyAndEachRegion) {
  EXPECT_EQ(FormatPolicyText(ParsePolicy(kPolicy)),
            "name:            syncPolicies/web-golden\n"
            "source:          family web-golden in ap-guangzhou\n"
            "current source:  lhbp-v2000002\n"
            "destinations:    ap-shanghai, ap-beijing, ap-chengdu\n"
            "in sync:         no (1/3 regions)\n"
            "keep:            2 versions per region\n"
            "labels:          env=prod, team=web\n"
            "creator:         anonymous\n"
            "etag:            e-17\n"
            "created:         2026-11-27T22:01:02Z\n"
            "regions:\n"
            "  REGION       STATE    SERVING COPY   OF SOURCE      COPIES  LAST JOB     "
            "CONFIRMED\n"
            "  ap-shanghai  IN_SYNC  lhbp-sh000002  lhbp-v2000002  2       syncJobs/j2  "
            "2026-11-27T22:02:02Z\n"
            "  ap-beijing   SYNCING  lhbp-bj000001  lhbp-v1000001  1       syncJobs/j2  -\n"
            "  ap-chengdu   FAILED   -              -              0       syncJobs/j2  -\n"
            "errors:\n"
            "  ap-chengdu: RESOURCE_EXHAUSTED (8): The image quota of region `ap-chengdu` is "
            "exceeded. (tencent code LimitExceeded.SyncBlueprintQuotaLimitExceeded, request id "
            "req-cd-1); 2 failures in a row, next attempt 2026-11-27T22:03:02Z\n");
}

TEST(FormatPolicyTextTest, FixedSourcePausedDeletingAndNotYetResolved) {
  v1::SyncPolicy policy = ParsePolicy(R"pb(
    name: "syncPolicies/docs"
    source_region: "ap-singapore"
    blueprint_id: "lhbp-ls883feh"
    destination_regions: [ "ap-tokyo", "ap-seoul" ]
    paused: true
    deleting: true
    source_error { code: 5 message: "no NORMAL blueprint" }
    reconcile_time { seconds: 1795816862 }
  )pb");
  const std::string text = FormatPolicyText(policy);
  EXPECT_THAT(text, HasSubstr("source:        lhbp-ls883feh in ap-singapore\n"));
  EXPECT_THAT(text, HasSubstr("source error:  NOT_FOUND (5): no NORMAL blueprint\n"));
  // Before the first pass there are no regions yet: counted from the destinations.
  EXPECT_THAT(text, HasSubstr("in sync:       no (0/2 regions)\n"));
  EXPECT_THAT(text, HasSubstr("paused:        yes: no upstream calls until resumed\n"));
  EXPECT_THAT(text, HasSubstr("deleting:      yes: the copies it made are being deleted\n"));
  EXPECT_THAT(text, HasSubstr("keep:          all\n"));
  EXPECT_THAT(text, HasSubstr("reconciled:    2026-11-27T22:01:02Z\n"));
  EXPECT_THAT(text, Not(HasSubstr("current source")));
  EXPECT_THAT(text, Not(HasSubstr("regions:")));

  policy.set_in_sync(true);
  EXPECT_THAT(FormatPolicyText(policy), HasSubstr("in sync:       yes\n"));
}

TEST(FormatPolicyTextTest, ServerTextCannotMoveTheCursor) {
  v1::SyncPolicy policy = ParsePolicy(kPolicy);
  policy.mutable_regions(2)->mutable_last_error()->set_message("bad\x1b[2Jnews");
  EXPECT_THAT(FormatPolicyText(policy), HasSubstr("bad?[2Jnews"));
  EXPECT_THAT(FormatPolicyText(policy), Not(HasSubstr("\x1b")));
}

TEST(FormatPolicyValidateOnlyTextTest, SaysWhatWouldBeKeptWhere) {
  v1::SyncPolicy policy = ParsePolicy(kPolicy);
  policy.clear_name();
  EXPECT_EQ(FormatPolicyValidateOnlyText(policy),
            "valid: would keep family web-golden in ap-guangzhou in ap-shanghai, ap-beijing, "
            "ap-chengdu (keep 2 versions per region)\n"
            "nothing was created (--validate-only)\n");
  policy.set_keep_versions(0);
  policy.set_paused(true);
  EXPECT_THAT(FormatPolicyValidateOnlyText(policy), HasSubstr("(keep all; paused)"));
}

TEST(FormatPolicyListTextTest, OneBlockPerPolicyThenTheNextPageToken) {
  v1::ListSyncPoliciesResponse response;
  *response.add_sync_policies() = ParsePolicy(kPolicy);
  *response.add_sync_policies() = ParsePolicy(R"pb(
    name: "syncPolicies/docs"
    source_region: "ap-singapore"
    blueprint_id: "lhbp-ls883feh"
  )pb");
  response.set_next_page_token("tok-2");
  const std::string text = FormatPolicyListText(response);
  EXPECT_THAT(text, HasSubstr("exceeded. (tencent code"));
  EXPECT_THAT(text, HasSubstr("next attempt 2026-11-27T22:03:02Z\n\nname:"));
  EXPECT_THAT(text, HasSubstr("syncPolicies/docs\n"));
  EXPECT_THAT(text, EndsWith("next page token: tok-2\n"));

  EXPECT_EQ(FormatPolicyListText(v1::ListSyncPoliciesResponse()), "no sync policies\n");
}

TEST(PolicyProgressItemsTest, ThePolicyThenEachRegion) {
  EXPECT_THAT(
      PolicyProgressItems(ParsePolicy(kPolicy)),
      ElementsAre(
          Pair("", "source lhbp-v2000002, 1/3 regions in sync"),
          Pair("ap-shanghai", "ap-shanghai IN_SYNC copy lhbp-sh000002 job syncJobs/j2"),
          Pair("ap-beijing", "ap-beijing SYNCING copy lhbp-bj000001 job syncJobs/j2"),
          Pair("ap-chengdu",
               "ap-chengdu FAILED job syncJobs/j2 error: RESOURCE_EXHAUSTED (8): The image quota "
               "of region `ap-chengdu` is exceeded. (tencent code "
               "LimitExceeded.SyncBlueprintQuotaLimitExceeded, request id req-cd-1); 2 failures "
               "in a row, next attempt 2026-11-27T22:03:02Z")));

  v1::SyncPolicy policy = ParsePolicy(kPolicy);
  policy.set_in_sync(true);
  policy.set_paused(true);
  EXPECT_EQ(PolicyProgressItems(policy)[0].second,
            "paused, in sync with lhbp-v2000002 (1/3 regions)");
  policy.mutable_source_error()->set_message("gone");
  EXPECT_EQ(PolicyProgressItems(policy)[0].second, "paused, source not resolved: OK (0): gone");
  policy.set_deleting(true);
  EXPECT_EQ(PolicyProgressItems(policy)[0].second, "paused, deleting");
}

TEST(FormatPolicySummaryTest, InSync) {
  v1::SyncPolicy policy = ParsePolicy(kPolicy);
  policy.set_in_sync(true);
  for (auto& r : *policy.mutable_regions()) r.set_state(v1::SyncPolicyRegion::IN_SYNC);
  EXPECT_EQ(FormatPolicySummary(policy),
            "policy syncPolicies/web-golden in sync: lhbp-v2000002 in 3/3 regions\n");
}

TEST(FormatPolicySummaryTest, NotInSyncNamesEachRegionAndItsTencentError) {
  EXPECT_EQ(
      FormatPolicySummary(ParsePolicy(kPolicy)),
      "policy syncPolicies/web-golden not in sync (1/3 regions)\n"
      "  ap-beijing: SYNCING\n"
      "  ap-chengdu: FAILED: RESOURCE_EXHAUSTED (8): The image quota of region "
      "`ap-chengdu` is exceeded. (tencent code LimitExceeded.SyncBlueprintQuotaLimitExceeded, "
      "request id req-cd-1); 2 failures in a row, next attempt 2026-11-27T22:03:02Z\n");
}

TEST(PolicyRegionStateNameTest, KnownAndNewerValues) {
  EXPECT_EQ(PolicyRegionStateName(v1::SyncPolicyRegion::IN_SYNC), "IN_SYNC");
  EXPECT_EQ(PolicyRegionStateName(static_cast<v1::SyncPolicyRegion::State>(42)), "STATE_42");
}

}  // namespace
}  // namespace blueprintsync::cli
