// The emulator's test controls for replication policies, over real HTTP on
// 127.0.0.1:0 with a fake clock: new versions of an image family
// (/_emulator/family-versions), blueprints removed behind the service's back,
// the DescribeBlueprints query a policy controller makes for many families at
// once (blueprint-name + blueprint-type filters, Offset/Limit, TotalCount),
// and the per-region DescribeBlueprints counts in the stats. The admin calls
// go through EmulatorAdmin, the client the end-to-end tests use.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/common/testing/fake_clock.h"
#include "tests/emulator/emulator_server.h"
#include "tests/emulator/emulator_test_client.h"
#include "tests/emulator/lighthouse_emulator.h"
#include "tests/testing_util/emulator_admin.h"

namespace blueprintsync::emulator {
namespace {

using ::blueprintsync::testing::CallApi;
using ::blueprintsync::testing::EmulatorAdmin;
using ::blueprintsync::testing::EmulatorBlueprint;
using ::blueprintsync::testing::EmulatorStats;
using ::blueprintsync::testing::Reply;
using ::blueprintsync::testing::SignSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kStart = 1700000000;  // 2023-11-14T22:13:20Z

class FamilyVersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmulatorOptions options;
    options.clock = &clock_;
    // Time stands still under the fake clock; the rate-limit case sets its own.
    for (auto& [action, limit] : options.config.rate_limits) limit = 0;
    emulator_ = std::make_unique<LighthouseEmulator>(std::move(options));
    server_ = std::make_unique<EmulatorServer>(emulator_.get());
    auto port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    admin_ = std::make_unique<EmulatorAdmin>(absl::StrCat("http://127.0.0.1:", port_));
  }
  void TearDown() override { server_->Stop(); }

  Reply Describe(const std::string& region, const std::string& body) {
    SignSpec s;
    s.action = kDescribeBlueprints;
    s.region = region;
    s.timestamp = absl::ToUnixSeconds(clock_.Now());
    return CallApi(port_, s, body);
  }

  // The query a policy controller makes: these names, custom images only.
  Reply DescribeFamilies(const std::string& region, const std::vector<std::string>& names,
                         int offset, int limit) {
    std::vector<std::string> quoted;
    for (const auto& n : names) quoted.push_back(absl::StrCat("\"", n, "\""));
    return Describe(region, absl::StrCat(R"({"Filters":[{"Name":"blueprint-name","Values":[)",
                                         absl::StrJoin(quoted, ","),
                                         R"(]},{"Name":"blueprint-type","Values":["PRIVATE"]}],)",
                                         R"("Offset":)", offset, R"(,"Limit":)", limit, "}"));
  }

  struct Row {
    std::string id;
    std::string name;
    std::string state;
    std::string created;
  };
  static std::vector<Row> Rows(const Reply& r) {
    std::vector<Row> out;
    if (!r.ok_json() || !r.response().HasMember("BlueprintSet")) return out;
    for (const auto& bp : r.response()["BlueprintSet"].GetArray()) {
      out.push_back({bp["BlueprintId"].GetString(), bp["BlueprintName"].GetString(),
                     bp["BlueprintState"].GetString(), bp["CreatedTime"].GetString()});
    }
    return out;
  }

  // The newest NORMAL blueprint named `name` in `region`, as a controller
  // resolves a family from one DescribeBlueprints answer.
  std::string NewestNormal(const std::string& region, const std::string& name) {
    Reply r = DescribeFamilies(region, {name}, 0, 100);
    EXPECT_EQ(r.error_code(), "") << r.body;
    std::string best_id, best_created;
    for (const Row& row : Rows(r)) {
      if (row.state != "NORMAL") continue;
      EXPECT_NE(row.created, best_created) << "two versions share a CreatedTime";
      if (row.created > best_created) best_created = row.created, best_id = row.id;
    }
    return best_id;
  }

  testing::FakeClock clock_{absl::FromUnixSeconds(kStart)};
  std::unique_ptr<LighthouseEmulator> emulator_;
  std::unique_ptr<EmulatorServer> server_;
  std::unique_ptr<EmulatorAdmin> admin_;
  int port_ = 0;
};

TEST_F(FamilyVersionsTest, EachNewVersionIsANewestNormalPrivateBlueprint) {
  // The fake clock stands still: three versions within one second.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::string> id = admin_->AddFamilyVersion("ap-guangzhou", "web-golden");
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(IsWellFormedBlueprintId(*id)) << *id;
    ids.push_back(*id);
    EXPECT_EQ(NewestNormal("ap-guangzhou", "web-golden"), *id) << i;
  }
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 3u);

  Reply r = DescribeFamilies("ap-guangzhou", {"web-golden"}, 0, 100);
  ASSERT_EQ(r.error_code(), "") << r.body;
  EXPECT_EQ(r.response()["TotalCount"].GetInt(), 3);
  const std::vector<Row> rows = Rows(r);
  ASSERT_THAT(rows, SizeIs(3));
  // Oldest first; the first is "now", each later one a whole second after.
  EXPECT_EQ(rows[0].id, ids[0]);
  EXPECT_EQ(rows[0].created, "2023-11-14T22:13:20Z");
  EXPECT_EQ(rows[1].created, "2023-11-14T22:13:21Z");
  EXPECT_EQ(rows[2].created, "2023-11-14T22:13:22Z");
  for (const Row& row : rows) {
    EXPECT_EQ(row.name, "web-golden");
    EXPECT_EQ(row.state, "NORMAL");
  }
  const auto& bp = r.response()["BlueprintSet"][0];
  EXPECT_STREQ(bp["BlueprintType"].GetString(), "PRIVATE");
  EXPECT_STREQ(bp["PlatformType"].GetString(), "LINUX_UNIX");

  // Only in that region; a version is syncable like any custom image.
  EXPECT_EQ(
      DescribeFamilies("ap-shanghai", {"web-golden"}, 0, 100).response()["TotalCount"].GetInt(), 0);
  SignSpec s;
  s.action = kSyncBlueprint;
  s.region = "ap-guangzhou";
  s.timestamp = kStart;
  Reply sync = CallApi(
      port_, s,
      absl::StrCat(R"({"BlueprintId":")", ids[2], R"(","DestinationRegions":["ap-shanghai"]})"));
  EXPECT_EQ(sync.error_code(), "") << sync.body;

  // Once time moves past the versions made ahead of it, "now" is used again.
  clock_.Advance(absl::Seconds(10) + absl::Milliseconds(700));
  ASSERT_TRUE(admin_->AddFamilyVersion("ap-guangzhou", "web-golden").ok());
  EXPECT_EQ(Rows(DescribeFamilies("ap-guangzhou", {"web-golden"}, 0, 100)).back().created,
            "2023-11-14T22:13:30Z");
}

TEST_F(FamilyVersionsTest, StateAndCreatedTimeMayBeGiven) {
  auto add = [this](const std::string& body) -> std::string {
    absl::StatusOr<std::string> answer = admin_->Post("/_emulator/family-versions", body);
    EXPECT_TRUE(answer.ok()) << answer.status();
    rapidjson::Document doc;
    doc.Parse(answer.value_or("{}").c_str());
    return doc.IsObject() && doc.HasMember("BlueprintId") ? doc["BlueprintId"].GetString() : "";
  };
  const std::string normal = add(R"({"Region":"ap-tokyo","BlueprintName":"app"})");
  const std::string failed =
      add(R"({"Region":"ap-tokyo","BlueprintName":"app","BlueprintState":"CREATEFAILED"})");
  const std::string old =
      add(R"({"Region":"ap-tokyo","BlueprintName":"app","CreatedTime":"2020-01-01T00:00:00Z"})");
  const std::string future =
      add(R"({"Region":"ap-tokyo","BlueprintName":"app","CreatedTime":"2030-01-01T00:00:00Z"})");
  // A default creation time still comes after the newest, even one given in the future.
  const std::string after = add(R"({"Region":"ap-tokyo","BlueprintName":"app"})");

  std::vector<std::string> ids, states, created;
  for (const Row& row : Rows(DescribeFamilies("ap-tokyo", {"app"}, 0, 100))) {
    ids.push_back(row.id);
    states.push_back(row.state);
    created.push_back(row.created);
  }
  EXPECT_THAT(ids, ElementsAre(old, normal, failed, future, after));
  EXPECT_THAT(states, ElementsAre("NORMAL", "NORMAL", "CREATEFAILED", "NORMAL", "NORMAL"));
  EXPECT_THAT(created,
              ElementsAre("2020-01-01T00:00:00Z", "2023-11-14T22:13:20Z", "2023-11-14T22:13:21Z",
                          "2030-01-01T00:00:00Z", "2030-01-01T00:00:01Z"));
  EXPECT_EQ(NewestNormal("ap-tokyo", "app"), after);
}

TEST_F(FamilyVersionsTest, BadRequestsAreRefusedAndAddNothing) {
  absl::StatusOr<std::vector<EmulatorBlueprint>> before = admin_->Blueprints("");
  ASSERT_TRUE(before.ok()) << before.status();
  const std::string long_name(61, 'n');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[]", "JSON object"},
      {R"({"BlueprintName":"web"})", "Region is required"},
      {R"({"Region":"ap-mars","BlueprintName":"web"})", "Region must be"},
      {R"({"Region":"ap-guangzhou"})", "BlueprintName is required"},
      {R"({"Region":"ap-guangzhou","BlueprintName":""})", "BlueprintName must be"},
      {absl::StrCat(R"({"Region":"ap-guangzhou","BlueprintName":")", long_name, "\"}"),
       "1 to 60 characters"},
      {R"({"Region":"ap-guangzhou","BlueprintName":"web","BlueprintState":"BROKEN"})",
       "BlueprintState must be one of NORMAL"},
      {R"({"Region":"ap-guangzhou","BlueprintName":"web","CreatedTime":"yesterday"})",
       "CreatedTime must look like"},
      {R"({"Region":"ap-guangzhou","BlueprintName":"web","BlueprintId":"lhbp-mine0001"})",
       "unknown key BlueprintId"},
  };
  for (const auto& [body, want] : cases) {
    absl::StatusOr<std::string> r = admin_->Post("/_emulator/family-versions", body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("HTTP 400")) << body;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(want)) << body;
  }
  // 60 characters counted as characters, not bytes.
  std::string sixty_chinese;
  for (int i = 0; i < 60; ++i) sixty_chinese += "\xe9\x95\x9c";  // 镜
  EXPECT_TRUE(admin_->AddFamilyVersion("ap-guangzhou", sixty_chinese).ok());
  absl::StatusOr<std::vector<EmulatorBlueprint>> after = admin_->Blueprints("");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->size(), before->size() + 1);
}

TEST_F(FamilyVersionsTest, RemoveBlueprintBehindTheServicesBack) {
  absl::StatusOr<std::string> id = admin_->AddFamilyVersion("ap-singapore", "web-golden");
  ASSERT_TRUE(id.ok()) << id.status();
  absl::StatusOr<std::vector<EmulatorBlueprint>> listed = admin_->Blueprints("ap-singapore");
  ASSERT_TRUE(listed.ok()) << listed.status();
  bool found = false;
  for (const EmulatorBlueprint& bp : *listed) {
    if (bp.id == *id) {
      found = true;
      EXPECT_EQ(bp.region, "ap-singapore");
      EXPECT_EQ(bp.state, "NORMAL");
    }
  }
  EXPECT_TRUE(found);

  ASSERT_TRUE(admin_->RemoveBlueprint("ap-singapore", *id).ok());
  EXPECT_EQ(
      DescribeFamilies("ap-singapore", {"web-golden"}, 0, 100).response()["TotalCount"].GetInt(),
      0);
  absl::Status again = admin_->RemoveBlueprint("ap-singapore", *id);
  EXPECT_THAT(std::string(again.message()), HasSubstr("HTTP 404"));
  // Not a deletion the API executed: nothing for a test of DeleteBlueprints to find.
  absl::StatusOr<EmulatorStats> stats = admin_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->deleted_blueprints_total, 0);
  EXPECT_FALSE(stats->WasDeleted("ap-singapore", *id));
}

TEST_F(FamilyVersionsTest, ManyFamiliesInOneQueryArePagedWithTotalCount) {
  // 100 families in ap-guangzhou, family i with (i % 3) + 1 versions: 199
  // custom images; plus noise the query must not return.
  std::vector<std::string> names;
  std::set<std::string> expected;
  for (int i = 0; i < 100; ++i) {
    names.push_back(absl::StrCat("fam-", i));
    for (int v = 0; v <= i % 3; ++v) {
      absl::StatusOr<std::string> id = admin_->AddFamilyVersion("ap-guangzhou", names.back());
      ASSERT_TRUE(id.ok()) << id.status();
      expected.insert(*id);
    }
  }
  ASSERT_EQ(expected.size(), 199u);
  ASSERT_TRUE(admin_->AddFamilyVersion("ap-guangzhou", "fam-100").ok());    // not asked for
  ASSERT_TRUE(admin_->AddFamilyVersion("ap-guangzhou", "fam-1-old").ok());  // a prefix match
  ASSERT_TRUE(admin_->AddFamilyVersion("ap-shanghai", "fam-1").ok());       // another region
  // The public image "Ubuntu" is not a custom one.
  EXPECT_EQ(DescribeFamilies("ap-guangzhou", {"Ubuntu"}, 0, 100).response()["TotalCount"].GetInt(),
            0);

  std::vector<std::string> seen;
  for (int offset = 0;; offset += 100) {
    Reply page = DescribeFamilies("ap-guangzhou", names, offset, 100);
    ASSERT_EQ(page.error_code(), "") << page.body.substr(0, 300);
    EXPECT_EQ(page.response()["TotalCount"].GetInt(), 199) << offset;
    const std::vector<Row> rows = Rows(page);
    for (const Row& row : rows) seen.push_back(row.id);
    if (rows.size() < 100) {
      EXPECT_EQ(offset, 100);
      EXPECT_THAT(rows, SizeIs(99));
      break;
    }
  }
  EXPECT_EQ(seen.size(), 199u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected);

  // Limit defaults to 20; past the end is an empty page with the same total.
  Reply default_limit =
      Describe("ap-guangzhou", absl::StrCat(R"({"Filters":[{"Name":"blueprint-name","Values":[")",
                                            absl::StrJoin(names, R"(",")"), R"("]}]})"));
  ASSERT_EQ(default_limit.error_code(), "") << default_limit.body.substr(0, 300);
  EXPECT_EQ(default_limit.response()["TotalCount"].GetInt(), 199);
  EXPECT_THAT(Rows(default_limit), SizeIs(20));
  Reply past_end = DescribeFamilies("ap-guangzhou", names, 300, 100);
  EXPECT_EQ(past_end.response()["TotalCount"].GetInt(), 199);
  EXPECT_THAT(Rows(past_end), IsEmpty());

  // Tencent's limits on the query: 100 values per filter, Limit 1 to 100.
  std::vector<std::string> too_many = names;
  too_many.push_back("fam-100");
  EXPECT_EQ(DescribeFamilies("ap-guangzhou", too_many, 0, 100).error_code(),
            "InvalidParameter.FilterValueLimitExceeded");
  EXPECT_EQ(DescribeFamilies("ap-guangzhou", names, 0, 101).error_code(),
            "InvalidParameterValue.OutOfRange");
}

TEST_F(FamilyVersionsTest, StatsCountDescribeCallsPerRegion) {
  const std::string body = R"({"Limit":1})";
  EXPECT_EQ(Describe("ap-guangzhou", body).error_code(), "");
  EXPECT_EQ(Describe("ap-guangzhou", body).error_code(), "");
  EXPECT_EQ(Describe("ap-shanghai", body).error_code(), "");
  // A call Tencent refuses for its parameters was still made.
  EXPECT_EQ(Describe("ap-shanghai", R"({"Limit":0})").error_code(),
            "InvalidParameterValue.OutOfRange");
  // Not a region the API serves: no entry for it.
  EXPECT_EQ(Describe("ap-mars", body).error_code(), "UnsupportedRegion");
  // Throttled calls count: the caller made them.
  clock_.Advance(absl::Seconds(1));  // a fresh rate window
  ASSERT_TRUE(admin_->UpdateConfig(R"({"rate_limits":{"DescribeBlueprints":1}})").ok());
  EXPECT_EQ(Describe("ap-tokyo", body).error_code(), "");
  EXPECT_EQ(Describe("ap-tokyo", body).error_code(), "RequestLimitExceeded");

  absl::StatusOr<EmulatorStats> stats = admin_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->DescribeCalls("ap-guangzhou"), 2);
  EXPECT_EQ(stats->DescribeCalls("ap-shanghai"), 2);
  EXPECT_EQ(stats->DescribeCalls("ap-tokyo"), 2);
  EXPECT_EQ(stats->DescribeCalls("ap-seoul"), 0);
  EXPECT_EQ(stats->describe_calls_by_region.size(), 3u);
  EXPECT_EQ(stats->Action(kDescribeBlueprints).throttled, 1);

  ASSERT_TRUE(admin_->ResetStats().ok());
  stats = admin_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(stats->describe_calls_by_region, IsEmpty());
}

}  // namespace
}  // namespace blueprintsync::emulator
