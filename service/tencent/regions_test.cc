#include "service/tencent/regions.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blueprintsync::tencent {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kSupported[] =
    "ap-bangkok, ap-beijing, ap-chengdu, ap-guangzhou, ap-hongkong, ap-jakarta, ap-nanjing, "
    "ap-seoul, ap-shanghai, ap-singapore, ap-tokyo, eu-frankfurt, na-ashburn, na-siliconvalley, "
    "sa-saopaulo";

auto Violation(const std::string& field, const std::string& rule) {
  return AllOf(Field(&FieldViolation::field, field), Field(&FieldViolation::rule, rule));
}

std::vector<std::string> Dest(std::initializer_list<const char*> regions) {
  return std::vector<std::string>(regions.begin(), regions.end());
}

TEST(SyncRegionsTest, TheFifteenDocumentedRegionsSortedById) {
  std::vector<std::string> ids;
  for (const RegionInfo& r : SyncRegions()) ids.emplace_back(r.id);
  EXPECT_THAT(ids, ElementsAre("ap-bangkok", "ap-beijing", "ap-chengdu", "ap-guangzhou",
                               "ap-hongkong", "ap-jakarta", "ap-nanjing", "ap-seoul", "ap-shanghai",
                               "ap-singapore", "ap-tokyo", "eu-frankfurt", "na-ashburn",
                               "na-siliconvalley", "sa-saopaulo"));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
}

TEST(SyncRegionsTest, MainlandRegions) {
  std::set<std::string> mainland;
  for (const RegionInfo& r : SyncRegions()) {
    if (r.china_mainland) mainland.emplace(r.id);
  }
  EXPECT_THAT(mainland, UnorderedElementsAre("ap-beijing", "ap-shanghai", "ap-guangzhou",
                                             "ap-chengdu", "ap-nanjing"));
}

TEST(SyncRegionsTest, EveryRegionHasAnEnglishNameNamingItsCity) {
  const std::pair<const char*, const char*> cities[] = {
      {"ap-bangkok", "Bangkok"},    {"ap-beijing", "Beijing"},
      {"ap-chengdu", "Chengdu"},    {"ap-guangzhou", "Guangzhou"},
      {"ap-hongkong", "Hong Kong"}, {"ap-jakarta", "Jakarta"},
      {"ap-nanjing", "Nanjing"},    {"ap-seoul", "Seoul"},
      {"ap-shanghai", "Shanghai"},  {"ap-singapore", "Singapore"},
      {"ap-tokyo", "Tokyo"},        {"eu-frankfurt", "Frankfurt"},
      {"na-ashburn", "Virginia"},   {"na-siliconvalley", "Silicon Valley"},
      {"sa-saopaulo", "Sao Paulo"},
  };
  for (const auto& [id, city] : cities) {
    const RegionInfo* r = FindSyncRegion(id);
    ASSERT_NE(r, nullptr) << id;
    EXPECT_EQ(r->id, id);
    EXPECT_THAT(std::string(r->name), HasSubstr(city));
  }
  EXPECT_EQ(FindSyncRegion("ap-singapore")->name, "Southeast Asia (Singapore)");
}

TEST(FindSyncRegionTest, UnknownRegions) {
  EXPECT_EQ(FindSyncRegion(""), nullptr);
  EXPECT_EQ(FindSyncRegion("ap-nowhere"), nullptr);
  EXPECT_EQ(FindSyncRegion("ap-mumbai"), nullptr);  // a Lighthouse region, not a SyncBlueprint one
  EXPECT_EQ(FindSyncRegion("AP-SINGAPORE"), nullptr);
  EXPECT_EQ(FindSyncRegion(" ap-singapore"), nullptr);
  EXPECT_EQ(FindSyncRegion("ap-singapore "), nullptr);
  EXPECT_EQ(FindSyncRegion("ap-singapor"), nullptr);
  EXPECT_EQ(FindSyncRegion("zz-last"), nullptr);
  EXPECT_EQ(FindSyncRegion("aa-first"), nullptr);
}

TEST(IsValidBlueprintIdTest, Shapes) {
  EXPECT_TRUE(IsValidBlueprintId("lhbp-ls883feh"));
  EXPECT_TRUE(IsValidBlueprintId("lhbp-00000000"));
  EXPECT_TRUE(IsValidBlueprintId("lhbp-zzzzzzzz"));
  EXPECT_FALSE(IsValidBlueprintId(""));
  EXPECT_FALSE(IsValidBlueprintId("lhbp-"));
  EXPECT_FALSE(IsValidBlueprintId("lhbp-ls883fe"));    // 7
  EXPECT_FALSE(IsValidBlueprintId("lhbp-ls883feha"));  // 9
  EXPECT_FALSE(IsValidBlueprintId("lhbp-LS883FEH"));   // upper case
  EXPECT_FALSE(IsValidBlueprintId("lhbp-ls883fe-"));
  EXPECT_FALSE(IsValidBlueprintId("lhbp_ls883feh"));
  EXPECT_FALSE(IsValidBlueprintId("LHBP-ls883feh"));
  EXPECT_FALSE(IsValidBlueprintId("img-ls883feh"));
  EXPECT_FALSE(IsValidBlueprintId(" lhbp-ls883feh"));
  EXPECT_FALSE(IsValidBlueprintId("lhbp-ls883fe\xc3\xa9"));
  EXPECT_FALSE(IsValidBlueprintId(std::string("lhbp-ls88\0feh", 13)));
}

TEST(ValidateSyncRequestTest, ValidRequests) {
  EXPECT_THAT(ValidateSyncRequest("ap-guangzhou", "lhbp-ls883feh", Dest({"ap-beijing"})),
              IsEmpty());
  EXPECT_THAT(ValidateSyncRequest("ap-singapore", "lhbp-ls883feh",
                                  Dest({"ap-hongkong", "ap-tokyo", "eu-frankfurt"})),
              IsEmpty());
  // Ten entries are not "too many" (there are only nine valid non-mainland
  // destinations, so the tenth here is a duplicate, reported as such).
  EXPECT_THAT(ValidateSyncRequest("ap-singapore", "lhbp-ls883feh",
                                  Dest({"ap-bangkok", "ap-hongkong", "ap-jakarta", "ap-seoul",
                                        "ap-tokyo", "eu-frankfurt", "na-ashburn",
                                        "na-siliconvalley", "sa-saopaulo", "ap-hongkong"})),
              ElementsAre(Violation("destination_regions[9]", "DESTINATION_DUPLICATED")));
  EXPECT_THAT(
      ValidateSyncRequest("sa-saopaulo", "lhbp-ls883feh",
                          Dest({"ap-bangkok", "ap-hongkong", "ap-jakarta", "ap-seoul", "ap-tokyo",
                                "eu-frankfurt", "na-ashburn", "na-siliconvalley", "ap-singapore"})),
      IsEmpty());
}

TEST(ValidateSyncRequestTest, SourceRegionRequired) {
  const auto v = ValidateSyncRequest("", "lhbp-ls883feh", Dest({"ap-tokyo"}));
  ASSERT_THAT(v, ElementsAre(Violation("source_region", "SOURCE_REGION_REQUIRED")));
  EXPECT_THAT(v[0].description, HasSubstr("source_region"));
}

TEST(ValidateSyncRequestTest, SourceRegionUnsupported) {
  const auto v = ValidateSyncRequest("ap-mumbai", "lhbp-ls883feh", Dest({"ap-tokyo"}));
  ASSERT_THAT(v, ElementsAre(Violation("source_region", "SOURCE_REGION_UNSUPPORTED")));
  EXPECT_EQ(v[0].description,
            absl::StrCat("source_region \"ap-mumbai\" is not a region SyncBlueprint supports "
                         "(supported: ",
                         kSupported, ")."));
}

TEST(ValidateSyncRequestTest, BlueprintIdRequired) {
  const auto v = ValidateSyncRequest("ap-singapore", "", Dest({"ap-tokyo"}));
  EXPECT_THAT(v, ElementsAre(Violation("blueprint_id", "BLUEPRINT_ID_REQUIRED")));
}

TEST(ValidateSyncRequestTest, BlueprintIdMalformed) {
  const auto v = ValidateSyncRequest("ap-singapore", "lhbp-XYZ", Dest({"ap-tokyo"}));
  ASSERT_THAT(v, ElementsAre(Violation("blueprint_id", "BLUEPRINT_ID_MALFORMED")));
  EXPECT_THAT(v[0].description, AllOf(HasSubstr("\"lhbp-XYZ\""), HasSubstr("lhbp-")));
}

TEST(ValidateSyncRequestTest, DestinationsRequired) {
  const auto v = ValidateSyncRequest("ap-singapore", "lhbp-ls883feh", {});
  EXPECT_THAT(v, ElementsAre(Violation("destination_regions", "DESTINATIONS_REQUIRED")));
}

TEST(ValidateSyncRequestTest, TooManyDestinations) {
  const auto v = ValidateSyncRequest(
      "ap-singapore", "lhbp-ls883feh",
      Dest({"ap-bangkok", "ap-hongkong", "ap-jakarta", "ap-seoul", "ap-tokyo", "eu-frankfurt",
            "na-ashburn", "na-siliconvalley", "sa-saopaulo", "ap-beijing", "ap-shanghai"}));
  // Eleven entries: the count, plus the two mainland ones are cross-border.
  EXPECT_THAT(v, UnorderedElementsAre(Violation("destination_regions", "TOO_MANY_DESTINATIONS"),
                                      Violation("destination_regions[9]", "CROSS_BORDER_SYNC"),
                                      Violation("destination_regions[10]", "CROSS_BORDER_SYNC")));
  for (const FieldViolation& f : v) {
    if (f.rule == "TOO_MANY_DESTINATIONS") {
      EXPECT_THAT(f.description, AllOf(HasSubstr("11"), HasSubstr("10")));
    }
  }
}

TEST(ValidateSyncRequestTest, DestinationRegionUnsupported) {
  const auto v = ValidateSyncRequest("ap-singapore", "lhbp-ls883feh",
                                     Dest({"ap-tokyo", "ap-seoul", "ap-nowhere"}));
  ASSERT_THAT(v,
              ElementsAre(Violation("destination_regions[2]", "DESTINATION_REGION_UNSUPPORTED")));
  EXPECT_EQ(v[0].description,
            absl::StrCat("destination_regions[2] \"ap-nowhere\" is not a region SyncBlueprint "
                         "supports (supported: ",
                         kSupported, ")."));
}

TEST(ValidateSyncRequestTest, DestinationSameAsSource) {
  const auto v =
      ValidateSyncRequest("ap-singapore", "lhbp-ls883feh", Dest({"ap-tokyo", "ap-singapore"}));
  ASSERT_THAT(v, ElementsAre(Violation("destination_regions[1]", "DESTINATION_SAME_AS_SOURCE")));
  EXPECT_THAT(v[0].description, HasSubstr("\"ap-singapore\""));
}

TEST(ValidateSyncRequestTest, DestinationDuplicated) {
  const auto v = ValidateSyncRequest("ap-singapore", "lhbp-ls883feh",
                                     Dest({"ap-tokyo", "ap-seoul", "ap-tokyo", "ap-tokyo"}));
  ASSERT_THAT(v, ElementsAre(Violation("destination_regions[2]", "DESTINATION_DUPLICATED"),
                             Violation("destination_regions[3]", "DESTINATION_DUPLICATED")));
  EXPECT_THAT(v[0].description,
              AllOf(HasSubstr("\"ap-tokyo\""), HasSubstr("destination_regions[0]")));
}

TEST(ValidateSyncRequestTest, CrossBorderBothDirections) {
  auto v = ValidateSyncRequest("ap-singapore", "lhbp-ls883feh", Dest({"ap-tokyo", "ap-beijing"}));
  ASSERT_THAT(v, ElementsAre(Violation("destination_regions[1]", "CROSS_BORDER_SYNC")));
  EXPECT_THAT(v[0].description, AllOf(HasSubstr("\"ap-beijing\""), HasSubstr("\"ap-singapore\""),
                                      HasSubstr("mainland")));
  v = ValidateSyncRequest("ap-guangzhou", "lhbp-ls883feh",
                          Dest({"ap-shanghai", "ap-hongkong", "ap-chengdu", "ap-nanjing"}));
  EXPECT_THAT(v, ElementsAre(Violation("destination_regions[1]", "CROSS_BORDER_SYNC")));
  // Within the mainland is fine.
  EXPECT_THAT(
      ValidateSyncRequest("ap-nanjing", "lhbp-ls883feh",
                          Dest({"ap-beijing", "ap-shanghai", "ap-guangzhou", "ap-chengdu"})),
      IsEmpty());
}

TEST(ValidateSyncRequestTest, CrossBorderOnlyWhenBothRegionsAreKnown) {
  // Unknown source: no cross-border verdict on any destination.
  auto v = ValidateSyncRequest("ap-mumbai", "lhbp-ls883feh", Dest({"ap-beijing"}));
  EXPECT_THAT(v, ElementsAre(Violation("source_region", "SOURCE_REGION_UNSUPPORTED")));
  v = ValidateSyncRequest("", "lhbp-ls883feh", Dest({"ap-beijing"}));
  EXPECT_THAT(v, ElementsAre(Violation("source_region", "SOURCE_REGION_REQUIRED")));
  // Unknown destination: only "unsupported".
  v = ValidateSyncRequest("ap-beijing", "lhbp-ls883feh", Dest({"ap-mumbai"}));
  EXPECT_THAT(v,
              ElementsAre(Violation("destination_regions[0]", "DESTINATION_REGION_UNSUPPORTED")));
}

TEST(ValidateSyncRequestTest, EveryViolationReportedOnce) {
  const auto v = ValidateSyncRequest(
      "ap-singapore", "bad-id",
      Dest({"ap-singapore", "ap-nowhere", "ap-beijing", "ap-nowhere", "ap-singapore", "ap-tokyo",
            "", "ap-beijing", "ap-tokyo", "ap-hongkong", "ap-seoul"}));
  EXPECT_THAT(
      v, UnorderedElementsAre(Violation("blueprint_id", "BLUEPRINT_ID_MALFORMED"),
                              Violation("destination_regions", "TOO_MANY_DESTINATIONS"),
                              Violation("destination_regions[0]", "DESTINATION_SAME_AS_SOURCE"),
                              Violation("destination_regions[1]", "DESTINATION_REGION_UNSUPPORTED"),
                              Violation("destination_regions[2]", "CROSS_BORDER_SYNC"),
                              Violation("destination_regions[3]", "DESTINATION_DUPLICATED"),
                              Violation("destination_regions[4]", "DESTINATION_DUPLICATED"),
                              Violation("destination_regions[6]", "DESTINATION_REGION_UNSUPPORTED"),
                              Violation("destination_regions[7]", "DESTINATION_DUPLICATED"),
                              Violation("destination_regions[8]", "DESTINATION_DUPLICATED")));
  std::set<std::pair<std::string, std::string>> seen;
  for (const FieldViolation& f : v) {
    EXPECT_TRUE(seen.emplace(f.field, f.rule).second) << f.field << " " << f.rule;
    EXPECT_FALSE(f.description.empty());
    EXPECT_EQ(f.description.back(), '.') << f.description;
    EXPECT_THAT(f.description, HasSubstr(f.field));
  }
}

TEST(ValidateSyncRequestTest, EverythingMissing) {
  EXPECT_THAT(ValidateSyncRequest("", "", {}),
              ElementsAre(Violation("source_region", "SOURCE_REGION_REQUIRED"),
                          Violation("blueprint_id", "BLUEPRINT_ID_REQUIRED"),
                          Violation("destination_regions", "DESTINATIONS_REQUIRED")));
}

TEST(ValidateSyncRequestTest, UnknownSourceRepeatedAsDestination) {
  // Both statements are true and distinct: the value is unsupported and it is
  // also the source region.
  EXPECT_THAT(ValidateSyncRequest("ap-nowhere", "lhbp-ls883feh", Dest({"ap-nowhere"})),
              ElementsAre(Violation("source_region", "SOURCE_REGION_UNSUPPORTED"),
                          Violation("destination_regions[0]", "DESTINATION_REGION_UNSUPPORTED"),
                          Violation("destination_regions[0]", "DESTINATION_SAME_AS_SOURCE")));
}

TEST(ValidateSyncRequestTest, OffendingValuesAreQuotedSafely) {
  const std::string long_value(1000, 'x');
  auto v = ValidateSyncRequest(long_value, "lhbp-ls883feh", Dest({"ap-tokyo"}));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_LT(v[0].description.size(), 400u);
  EXPECT_THAT(v[0].description, HasSubstr("1000 bytes"));

  v = ValidateSyncRequest("ap-singapore", "lhbp-ls883feh", Dest({"ap-\"tok\nyo"}));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_THAT(v[0].description, HasSubstr(R"("ap-\"tok\nyo")"));
}

}  // namespace
}  // namespace blueprintsync::tencent
