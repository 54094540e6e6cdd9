#include "tests/emulator/blueprint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace blueprintsync::emulator {
namespace {

using ::testing::HasSubstr;

TEST(BlueprintTest, IdFormat) {
  EXPECT_TRUE(IsWellFormedBlueprintId("lhbp-ls883feh"));
  EXPECT_TRUE(IsWellFormedBlueprintId("lhbp-00000000"));
  EXPECT_FALSE(IsWellFormedBlueprintId("lhbp-ls883fe"));
  EXPECT_FALSE(IsWellFormedBlueprintId("lhbp-ls883fehh"));
  EXPECT_FALSE(IsWellFormedBlueprintId("lhbp-LS883FEH"));
  EXPECT_FALSE(IsWellFormedBlueprintId("lhbq-ls883feh"));
  EXPECT_FALSE(IsWellFormedBlueprintId("lhbp_ls883feh"));
  EXPECT_FALSE(IsWellFormedBlueprintId(""));
}

TEST(BlueprintTest, DefaultSeedIsValidAndHasTheDocumentedEntries) {
  std::set<std::pair<std::string, std::string>> keys;
  for (const Blueprint& bp : DefaultSeed()) {
    EXPECT_TRUE(IsWellFormedBlueprintId(bp.id)) << bp.id;
    EXPECT_TRUE(keys.insert({bp.region, bp.id}).second) << bp.region << "/" << bp.id;
  }
  EXPECT_TRUE(keys.count({"ap-tokyo", "lhbp-ls883feh"}));
  EXPECT_TRUE(keys.count({"ap-guangzhou", "lhbp-gzbase01"}));
  EXPECT_TRUE(keys.count({"ap-singapore", "lhbp-sgoffl01"}));
  EXPECT_TRUE(keys.count({"ap-hongkong", "lhbp-pubos001"}));
}

TEST(BlueprintTest, ParsesSeedWithDefaultsAndFlags) {
  const absl::Time created = absl::FromUnixSeconds(1700000000);
  auto seed = ParseSeedJson(R"({"blueprints":[
      {"Region":"ap-guangzhou","BlueprintId":"lhbp-aaaaaaaa","BlueprintName":"n1",
       "Syncable":false,"LatestOperationUnfinished":true,"CreatedTime":"2024-02-03T04:05:06Z",
       "Tags":[{"Key":"k","Value":"v"}],"SceneIdSet":["lhsc-1"]},
      {"Region":"ap-tokyo","BlueprintId":"lhbp-bbbbbbbb","BlueprintState":"OFFLINE",
       "BlueprintType":"APP_OS","Description":null}]})",
                            created);
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->size(), 2u);
  const Blueprint& a = (*seed)[0];
  EXPECT_EQ(a.region, "ap-guangzhou");
  EXPECT_EQ(a.state, "NORMAL");
  EXPECT_EQ(a.blueprint_type, "PRIVATE");
  EXPECT_EQ(a.blueprint_name, "n1");
  EXPECT_EQ(a.display_title, "n1");
  EXPECT_FALSE(a.syncable);
  EXPECT_TRUE(a.latest_operation_unfinished);
  EXPECT_EQ(IsoUtc(a.created), "2024-02-03T04:05:06Z");
  ASSERT_EQ(a.tags.size(), 1u);
  EXPECT_EQ(a.tags[0].second, "v");
  const Blueprint& b = (*seed)[1];
  EXPECT_EQ(b.state, "OFFLINE");
  EXPECT_EQ(b.blueprint_type, "APP_OS");
  EXPECT_FALSE(b.description.has_value());
  EXPECT_EQ(b.created, created);
}

TEST(BlueprintTest, RejectsBadSeeds) {
  const absl::Time t = absl::UnixEpoch();
  EXPECT_FALSE(ParseSeedJson("not json", t).ok());
  EXPECT_FALSE(ParseSeedJson(R"({"blueprints":{}})", t).ok());
  auto bad_region =
      ParseSeedJson(R"({"blueprints":[{"Region":"ap-mars","BlueprintId":"lhbp-aaaaaaaa"}]})", t);
  ASSERT_FALSE(bad_region.ok());
  EXPECT_THAT(std::string(bad_region.status().message()), HasSubstr("ap-mars"));
  EXPECT_FALSE(
      ParseSeedJson(R"({"blueprints":[{"Region":"ap-tokyo","BlueprintId":"lhbp-x"}]})", t).ok());
  EXPECT_FALSE(
      ParseSeedJson(
          R"({"blueprints":[{"Region":"ap-tokyo","BlueprintId":"lhbp-aaaaaaaa","Syncable":"yes"}]})",
          t)
          .ok());
  EXPECT_FALSE(
      ParseSeedJson(
          R"({"blueprints":[{"Region":"ap-tokyo","BlueprintId":"lhbp-aaaaaaaa","CreatedTime":"yesterday"}]})",
          t)
          .ok());
}

TEST(BlueprintTest, StateAdvancesOnlyWhenDue) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  Blueprint dest;
  dest.state = "SYNCING";
  dest.sync_finish = t0 + absl::Seconds(3);
  Blueprint failing = dest;
  failing.sync_fails = true;
  Blueprint source;
  source.state = "SYNCING";
  source.source_sync_until = t0 + absl::Seconds(3);
  for (Blueprint* bp : {&dest, &failing, &source})
    AdvanceBlueprintState(*bp, t0 + absl::Seconds(2));
  EXPECT_EQ(dest.state, "SYNCING");
  EXPECT_EQ(failing.state, "SYNCING");
  EXPECT_EQ(source.state, "SYNCING");
  for (Blueprint* bp : {&dest, &failing, &source})
    AdvanceBlueprintState(*bp, t0 + absl::Seconds(3));
  EXPECT_EQ(dest.state, "NORMAL");
  EXPECT_EQ(failing.state, "SYNCING_FAILED");
  EXPECT_EQ(source.state, "NORMAL");
}

}  // namespace
}  // namespace blueprintsync::emulator
