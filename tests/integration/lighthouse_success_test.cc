// Success paths of the production Lighthouse client stack against the
// emulator over real HTTP: what a caller gets back matches what the emulator
// recorded, and the sync state machine is seen through DescribeBlueprints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/common/testing/fake_clock.h"
#include "tests/integration/integration_harness.h"

namespace blueprintsync::testing {
namespace {

using tencent::Blueprint;
using tencent::DeleteBlueprintsRequest;
using tencent::DescribeBlueprintsRequest;
using tencent::SyncBlueprintRequest;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

std::vector<std::string> IdsOf(const std::vector<Blueprint>& blueprints) {
  std::vector<std::string> ids;
  for (const Blueprint& bp : blueprints) ids.push_back(bp.blueprint_id);
  return ids;
}

bool IsWellFormedBlueprintId(const std::string& id) {
  if (id.size() != 13 || id.rfind("lhbp-", 0) != 0) return false;
  for (char c : id.substr(5)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

TEST(LighthouseSuccessTest, SyncBlueprintReturnsDestinationIdsInOrderAndRequestId) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  auto client = emu.Client();

  const std::vector<std::string> destinations = {"ap-shanghai", "ap-beijing", "ap-chengdu"};
  auto r =
      client->SyncBlueprint(SyncBlueprintRequest{"ap-guangzhou", "lhbp-gzbase01", destinations});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->request_id.empty());
  ASSERT_EQ(r->destinations.size(), destinations.size());
  std::set<std::string> distinct;
  for (size_t i = 0; i < destinations.size(); ++i) {
    EXPECT_EQ(r->destinations[i].region, destinations[i]) << i;
    EXPECT_TRUE(IsWellFormedBlueprintId(r->destinations[i].blueprint_id))
        << r->destinations[i].blueprint_id;
    distinct.insert(r->destinations[i].blueprint_id);
  }
  EXPECT_EQ(distinct.size(), destinations.size());

  // What the client returned is exactly what the emulator executed, once.
  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
  ASSERT_EQ(stats->sync_submissions.size(), 1u);
  const EmulatorSyncSubmission& s = stats->sync_submissions[0];
  EXPECT_EQ(s.request_id, r->request_id);
  EXPECT_EQ(s.region, "ap-guangzhou");
  EXPECT_EQ(s.blueprint_id, "lhbp-gzbase01");
  EXPECT_THAT(s.destination_regions, ElementsAreArray(destinations));
  std::vector<std::string> returned_ids;
  for (const auto& d : r->destinations) returned_ids.push_back(d.blueprint_id);
  EXPECT_THAT(s.destination_blueprint_ids, ElementsAreArray(returned_ids));
}

// The emulator runs on a fake clock (started at the real time, so signatures
// from the client's real clock stay within the 300 s window): the sync
// progresses only when the test moves that clock, so the poll is exact.
TEST(LighthouseSuccessTest, DescribeByIdsSeesSyncingThenNormal) {
  FakeClock emulator_clock(absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now())));
  emulator::EmulatorOptions options;
  options.clock = &emulator_clock;
  options.config.sync_duration_ms = 5000;
  EmulatorHarness emu(std::move(options));
  ASSERT_TRUE(emu.Start().ok());
  auto client = emu.Client();

  const std::vector<std::string> destinations = {"ap-shanghai", "ap-beijing"};
  auto sync =
      client->SyncBlueprint(SyncBlueprintRequest{"ap-guangzhou", "lhbp-gzbase02", destinations});
  ASSERT_TRUE(sync.ok()) << sync.status();
  ASSERT_EQ(sync->destinations.size(), 2u);

  // region -> state of the copy (or of the source, for ap-guangzhou).
  auto states = [&]() {
    std::map<std::string, std::string> out;
    for (const auto& d : sync->destinations) {
      DescribeBlueprintsRequest req;
      req.region = d.region;
      req.blueprint_ids = {d.blueprint_id};
      auto r = client->DescribeBlueprints(req);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) continue;
      EXPECT_EQ(r->total_count, 1);
      EXPECT_FALSE(r->request_id.empty());
      if (r->blueprints.size() != 1) {
        ADD_FAILURE() << d.region << ": expected one blueprint, got " << r->blueprints.size();
        continue;
      }
      EXPECT_EQ(r->blueprints[0].blueprint_id, d.blueprint_id);
      EXPECT_EQ(r->blueprints[0].blueprint_type, "PRIVATE");
      out[d.region] = r->blueprints[0].blueprint_state;
    }
    DescribeBlueprintsRequest src;
    src.region = "ap-guangzhou";
    src.blueprint_ids = {"lhbp-gzbase02"};
    auto r = client->DescribeBlueprints(src);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok() && r->blueprints.size() == 1) out["ap-guangzhou"] = r->blueprints[0].blueprint_state;
    return out;
  };

  const std::map<std::string, std::string> all_syncing = {
      {"ap-guangzhou", "SYNCING"}, {"ap-shanghai", "SYNCING"}, {"ap-beijing", "SYNCING"}};
  const std::map<std::string, std::string> all_normal = {
      {"ap-guangzhou", "NORMAL"}, {"ap-shanghai", "NORMAL"}, {"ap-beijing", "NORMAL"}};
  EXPECT_EQ(states(), all_syncing);

  // Bounded poll: one emulated second per round.
  int rounds = 0;
  std::map<std::string, std::string> seen;
  for (; rounds < 20; ++rounds) {
    seen = states();
    if (seen == all_normal) break;
    EXPECT_EQ(seen, all_syncing) << "after " << rounds << " emulated seconds";
    emulator_clock.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(seen, all_normal);
  EXPECT_EQ(rounds, 5) << "a 5000 ms sync must finish after exactly 5 emulated seconds";
}

// The emulator checks the signature with its own verifier: a DeleteBlueprints
// the client signed is accepted, executed once, and what it removed is gone
// from every view.
TEST(LighthouseSuccessTest, DeleteBlueprintsRemovesCopiesAndRepeatIsNotFound) {
  emulator::EmulatorOptions options;
  options.config.sync_duration_ms = 0;
  options.config.fail_regions = {"ap-beijing"};
  EmulatorHarness emu(std::move(options));
  ASSERT_TRUE(emu.Start().ok());
  auto client = emu.Client();

  auto sync = client->SyncBlueprint(
      SyncBlueprintRequest{"ap-guangzhou", "lhbp-gzbase01", {"ap-shanghai", "ap-beijing"}});
  ASSERT_TRUE(sync.ok()) << sync.status();
  const std::string sh = sync->destinations.at(0).blueprint_id;
  const std::string bj = sync->destinations.at(1).blueprint_id;  // SYNCING_FAILED

  for (const auto& [region, id] : {std::pair{"ap-shanghai", sh}, std::pair{"ap-beijing", bj}}) {
    auto r = client->DeleteBlueprints(DeleteBlueprintsRequest{region, {id}});
    ASSERT_TRUE(r.ok()) << region << ": " << r.status();
    EXPECT_FALSE(r->request_id.empty());
    DescribeBlueprintsRequest look;
    look.region = region;
    look.blueprint_ids = {id};
    auto d = client->DescribeBlueprints(look);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->total_count, 0) << region;
  }

  auto again = client->DeleteBlueprints(DeleteBlueprintsRequest{"ap-shanghai", {sh}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ApiErrorOf(again)->code, "ResourceNotFound.PrivateBlueprintNotFound");
  // The source stays; deleting the public image is not possible.
  auto pub = client->DeleteBlueprints(DeleteBlueprintsRequest{"ap-guangzhou", {"lhbp-pubos001"}});
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kNotFound);
  // Refused locally: the emulator never sees it.
  auto empty = client->DeleteBlueprints(DeleteBlueprintsRequest{"ap-guangzhou", {}});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);

  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->signature_failures, 0);
  EXPECT_EQ(stats->Action("DeleteBlueprints").received, 4);
  EXPECT_EQ(stats->Action("DeleteBlueprints").executed, 2);
  EXPECT_EQ(stats->deleted_blueprints_total, 2);
  EXPECT_TRUE(stats->WasDeleted("ap-shanghai", sh));
  EXPECT_TRUE(stats->WasDeleted("ap-beijing", bj));
  EXPECT_FALSE(stats->WasDeleted("ap-guangzhou", "lhbp-gzbase01"));
}

TEST(LighthouseSuccessTest, FiltersOffsetLimitAndTotalCount) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  // Seven "batch" images with increasing creation times (the emulator lists
  // oldest first), plus two that the filters must leave out.
  std::string seed = R"({"blueprints":[)";
  std::vector<std::string> batch_ids;
  for (int i = 1; i <= 7; ++i) {
    const std::string id = absl::StrCat("lhbp-batch00", i);
    batch_ids.push_back(id);
    absl::StrAppend(&seed, i > 1 ? "," : "", R"({"Region":"ap-seoul","BlueprintId":")", id,
                    R"(","BlueprintName":"batch","CreatedTime":"2024-02-0)", i, R"(T00:00:00Z"})");
  }
  absl::StrAppend(&seed,
                  R"(,{"Region":"ap-seoul","BlueprintId":"lhbp-other001","BlueprintName":"other"})",
                  R"(,{"Region":"ap-seoul","BlueprintId":"lhbp-batchbad","BlueprintName":"batch",)",
                  R"("BlueprintState":"CREATEFAILED"}]})");
  ASSERT_TRUE(emu.emulator().PutBlueprints(seed).ok());
  auto client = emu.Client();

  auto page = [&](int64_t offset, int64_t limit) {
    DescribeBlueprintsRequest req;
    req.region = "ap-seoul";
    req.filters = {{"blueprint-name", {"batch"}}, {"blueprint-state", {"NORMAL"}}};
    req.offset = offset;
    req.limit = limit;
    return client->DescribeBlueprints(req);
  };
  std::vector<std::string> collected;
  for (int64_t offset = 0; offset < 9; offset += 3) {
    auto r = page(offset, 3);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->total_count, 7) << "offset " << offset;
    EXPECT_EQ(r->blueprints.size(), offset == 6 ? 1u : 3u) << "offset " << offset;
    for (const std::string& id : IdsOf(r->blueprints)) collected.push_back(id);
  }
  EXPECT_THAT(collected, ElementsAreArray(batch_ids));

  auto beyond = page(7, 3);
  ASSERT_TRUE(beyond.ok()) << beyond.status();
  EXPECT_EQ(beyond->total_count, 7);
  EXPECT_TRUE(beyond->blueprints.empty());

  DescribeBlueprintsRequest by_state;
  by_state.region = "ap-seoul";
  by_state.filters = {{"blueprint-state", {"CREATEFAILED"}}};
  auto failed = client->DescribeBlueprints(by_state);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->total_count, 1);
  EXPECT_THAT(IdsOf(failed->blueprints), ElementsAre("lhbp-batchbad"));

  // Unfiltered, the API's default page size (20) holds all nine.
  DescribeBlueprintsRequest all;
  all.region = "ap-seoul";
  auto everything = client->DescribeBlueprints(all);
  ASSERT_TRUE(everything.ok()) << everything.status();
  EXPECT_EQ(everything->total_count, 9);
  EXPECT_EQ(everything->blueprints.size(), 9u);
}

TEST(LighthouseSuccessTest, DescribeRegionsListsFifteenWithMainlandFlags) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  auto client = emu.Client();
  auto r = client->DescribeRegions("ap-guangzhou");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total_count, 15);
  EXPECT_FALSE(r->request_id.empty());
  std::map<std::string, bool> mainland;
  for (const auto& region : r->regions) {
    EXPECT_FALSE(region.region_name.empty()) << region.region;
    mainland[region.region] = region.is_china_mainland;
  }
  const std::map<std::string, bool> expected = {
      {"ap-bangkok", false},   {"ap-beijing", true},        {"ap-chengdu", true},
      {"ap-guangzhou", true},  {"ap-hongkong", false},      {"ap-jakarta", false},
      {"ap-nanjing", true},    {"ap-seoul", false},         {"ap-shanghai", true},
      {"ap-singapore", false}, {"ap-tokyo", false},         {"eu-frankfurt", false},
      {"na-ashburn", false},   {"na-siliconvalley", false}, {"sa-saopaulo", false},
  };
  EXPECT_EQ(r->regions.size(), 15u);
  EXPECT_EQ(mainland, expected);
}

TEST(LighthouseSuccessTest, TemporaryCredentialsWithTokenAccepted) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ClientSetup setup;
  setup.credentials = {emulator::kDefaultTemporarySecretId, emulator::kDefaultTemporarySecretKey,
                       emulator::kDefaultTemporaryToken, absl::Now() + absl::Hours(1)};
  auto client = emu.Client(setup);

  auto regions = client->DescribeRegions("ap-guangzhou");
  ASSERT_TRUE(regions.ok()) << regions.status();
  EXPECT_EQ(regions->total_count, 15);
  auto sync =
      client->SyncBlueprint(SyncBlueprintRequest{"ap-tokyo", "lhbp-ls883feh", {"ap-seoul"}});
  ASSERT_TRUE(sync.ok()) << sync.status();
  EXPECT_EQ(sync->destinations.size(), 1u);

  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->auth_failures, 0);
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
}

TEST(LighthouseSuccessTest, TemporaryCredentialsWithoutOrWithWrongTokenRejected) {
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  for (const std::string token : {"", "not-the-session-token"}) {
    SCOPED_TRACE(token.empty() ? "no token" : "wrong token");
    ClientSetup setup;
    setup.credentials = {emulator::kDefaultTemporarySecretId, emulator::kDefaultTemporarySecretKey,
                         token, absl::InfiniteFuture()};
    auto client = emu.Client(setup);
    DescribeBlueprintsRequest req;
    req.region = "ap-guangzhou";
    auto r = client->DescribeBlueprints(req);
    ASSERT_FALSE(r.ok());
    auto e = ApiErrorOf(r);
    ASSERT_TRUE(e.has_value()) << r.status();
    EXPECT_EQ(e->kind, tencent::ErrorKind::kApi);
    EXPECT_EQ(e->code, "AuthFailure.TokenFailure");
    EXPECT_FALSE(e->request_id.empty());
    EXPECT_EQ(e->http_status, 200);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  }
  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  // Not retried: one attempt per client.
  EXPECT_EQ(stats->auth_failures, 2);
  EXPECT_EQ(stats->requests_total, 2);
}

}  // namespace
}  // namespace blueprintsync::testing
