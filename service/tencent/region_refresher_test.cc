#include "service/tencent/region_refresher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::tencent {
namespace {

// Answers DescribeRegions with whatever the test set; nothing else is called.
class ScriptedRegionsClient final : public LighthouseClient {
 public:
  absl::StatusOr<DescribeRegionsResponse> next = absl::UnavailableError("not scripted");
  int calls = 0;
  CallOptions last_options;

  absl::StatusOr<SyncBlueprintResponse> SyncBlueprint(const SyncBlueprintRequest&,
                                                      const CallOptions&) override {
    return absl::InternalError("unexpected");
  }
  absl::StatusOr<DescribeBlueprintsResponse> DescribeBlueprints(const DescribeBlueprintsRequest&,
                                                                const CallOptions&) override {
    return absl::InternalError("unexpected");
  }
  absl::StatusOr<DescribeRegionsResponse> DescribeRegions(const std::string&,
                                                          const CallOptions& options) override {
    ++calls;
    last_options = options;
    return next;
  }
  absl::StatusOr<DeleteBlueprintsResponse> DeleteBlueprints(const DeleteBlueprintsRequest&,
                                                            const CallOptions&) override {
    return absl::InternalError("unexpected");
  }
};

// The compiled regions plus `extra`, as DescribeRegions would list them.
DescribeRegionsResponse CompiledPlus(std::vector<Region> extra) {
  DescribeRegionsResponse r;
  for (const RegionInfo& info : SyncRegions()) {
    r.regions.push_back({info.id, info.name, "AVAILABLE", info.china_mainland});
  }
  for (Region& e : extra) r.regions.push_back(std::move(e));
  r.total_count = static_cast<int64_t>(r.regions.size());
  return r;
}

std::vector<std::string> Rules(const std::vector<FieldViolation>& violations) {
  std::vector<std::string> rules;
  for (const auto& v : violations) rules.push_back(absl::StrCat(v.field, ":", v.rule));
  return rules;
}

class RegionRefresherTest : public ::testing::Test {
 protected:
  ScriptedRegionsClient client_;
  LiveRegions live_;
  RegionRefresher refresher_{{}, &client_, &live_};
};

TEST_F(RegionRefresherTest, ANewRegionBecomesValidWithItsMainlandFlag) {
  const std::vector<std::string> to_new = {"ap-newcity"};
  ASSERT_EQ(Rules(ValidateSyncRequest(*live_.Get(), "ap-guangzhou", "lhbp-aaaaaaaa", to_new)),
            std::vector<std::string>{"destination_regions[0]:DESTINATION_REGION_UNSUPPORTED"});

  client_.next = CompiledPlus({{"ap-newcity", "New City", "AVAILABLE", true}});
  ASSERT_TRUE(refresher_.RefreshOnce().ok());
  EXPECT_EQ(client_.last_options.priority, CallPriority::kBackground);
  EXPECT_EQ(live_.Get()->origin(), "DescribeRegions");
  EXPECT_EQ(refresher_.region_count(), 16);
  EXPECT_TRUE(ValidateSyncRequest(*live_.Get(), "ap-guangzhou", "lhbp-aaaaaaaa", to_new).empty());
  // The mainland rule holds for it too, from IsChinaMainland.
  EXPECT_EQ(Rules(ValidateSyncRequest(*live_.Get(), "ap-singapore", "lhbp-aaaaaaaa", to_new)),
            std::vector<std::string>{"destination_regions[0]:CROSS_BORDER_SYNC"});
  EXPECT_EQ(refresher_.failures(), 0);
}

TEST_F(RegionRefresherTest, AFailedCallKeepsTheTableInUse) {
  client_.next = CompiledPlus({{"ap-newcity", "New City", "AVAILABLE", false}});
  ASSERT_TRUE(refresher_.RefreshOnce().ok());
  const auto before = live_.Get();
  client_.next = absl::UnavailableError("upstream down");
  EXPECT_FALSE(refresher_.RefreshOnce().ok());
  EXPECT_EQ(live_.Get(), before);
  EXPECT_EQ(refresher_.failures(), 1);
}

TEST_F(RegionRefresherTest, UnbelievableAnswersKeepTheTableAndAreCounted) {
  const auto compiled = live_.Get();
  std::vector<DescribeRegionsResponse> garbage;
  garbage.push_back({});  // no region at all
  DescribeRegionsResponse too_many;
  for (size_t i = 0; i <= RegionTable::kMaxRegions; ++i) {
    too_many.regions.push_back({absl::StrCat("xx-r", i), "", "AVAILABLE", false});
  }
  garbage.push_back(too_many);
  garbage.push_back(CompiledPlus({{"ap-beijing", "again", "AVAILABLE", false}}));
  garbage.push_back(CompiledPlus({{"AP_BAD", "", "AVAILABLE", false}}));
  garbage.push_back(CompiledPlus({{std::string(200, 'a'), "", "AVAILABLE", false}}));
  DescribeRegionsResponse none_available;
  none_available.regions.push_back({"ap-guangzhou", "", "UNAVAILABLE", true});
  garbage.push_back(none_available);
  for (size_t i = 0; i < garbage.size(); ++i) {
    client_.next = garbage[i];
    absl::Status s = refresher_.RefreshOnce();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << i << ": " << s;
    EXPECT_EQ(live_.Get(), compiled) << i;
  }
  EXPECT_EQ(refresher_.failures(), static_cast<int64_t>(garbage.size()));
}

TEST_F(RegionRefresherTest, UnavailableRegionsAreLeftOutAndLongNamesCut) {
  client_.next = CompiledPlus({{"ap-closed", "Closed", "UNAVAILABLE", false},
                               {"ap-longname", std::string(10000, 'n'), "AVAILABLE", false}});
  ASSERT_TRUE(refresher_.RefreshOnce().ok());
  EXPECT_EQ(live_.Get()->Find("ap-closed"), nullptr);
  ASSERT_NE(live_.Get()->Find("ap-longname"), nullptr);
  EXPECT_LE(live_.Get()->Find("ap-longname")->name.size(), RegionTable::kMaxNameBytes);
}

TEST_F(RegionRefresherTest, StartRefreshesAtOnceAndStopJoins) {
  client_.next = CompiledPlus({{"ap-newcity", "New City", "AVAILABLE", true}});
  refresher_.Start();
  for (int i = 0; i < 500 && live_.Get()->Find("ap-newcity") == nullptr; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  refresher_.Stop();
  EXPECT_NE(live_.Get()->Find("ap-newcity"), nullptr);
}

TEST(LiveRegionsTest, ASnapshotOutlivesASwap) {
  LiveRegions live;
  const auto snapshot = live.Get();
  live.Set(std::make_shared<RegionTable>(std::vector<RegionInfo>{{"ap-x", "X", false}}, "test"));
  EXPECT_NE(snapshot->Find("ap-guangzhou"), nullptr);
  EXPECT_EQ(live.Get()->Find("ap-guangzhou"), nullptr);
}

}  // namespace
}  // namespace blueprintsync::tencent
