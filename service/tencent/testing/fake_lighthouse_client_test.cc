// The shared fake's DeleteBlueprints: the engine's unit tests trust it to
// answer as Tencent (and the real client stack) would, so its rules are
// pinned here.
#include "service/tencent/testing/fake_lighthouse_client.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::testing {
namespace {

using tencent::Blueprint;
using tencent::DeleteBlueprintsRequest;
using tencent::DescribeBlueprintsRequest;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kRegion[] = "ap-shanghai";

Blueprint Private(const std::string& id, const std::string& state) {
  Blueprint b;
  b.blueprint_id = id;
  b.blueprint_state = state;
  b.blueprint_type = "PRIVATE";
  return b;
}

DeleteBlueprintsRequest Delete(std::vector<std::string> ids, std::string region = kRegion) {
  return DeleteBlueprintsRequest{std::move(region), std::move(ids)};
}

std::vector<std::string> IdsIn(FakeLighthouseClient& fake, const std::string& region) {
  DescribeBlueprintsRequest all;
  all.region = region;
  const auto described = fake.DescribeBlueprints(all, {});
  EXPECT_TRUE(described.ok()) << described.status();
  std::vector<std::string> ids;
  if (!described.ok()) return ids;
  for (const Blueprint& b : described->blueprints) {
    ids.push_back(b.blueprint_id);
  }
  return ids;
}

// The Tencent code a failed call carries ("" when it has no ApiError).
std::string CodeOf(const absl::Status& status) {
  std::optional<tencent::ApiError> e = tencent::GetApiError(status);
  return e.has_value() ? e->code : "";
}

TEST(FakeDeleteBlueprintsTest, DeletableStatesLeaveTheWorld) {
  FakeLighthouseClient fake;
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  fake.Put(kRegion, Private("lhbp-isolat01", "ISOLATED"));
  fake.Put(kRegion, Private("lhbp-crfail01", "CREATEFAILED"));
  fake.Put(kRegion, Private("lhbp-syfail01", "SYNCING_FAILED"));
  fake.Put(kRegion, Private("lhbp-keep0001", "NORMAL"));
  fake.Put("ap-beijing", Private("lhbp-normal01", "NORMAL"));  // same id, other region

  auto r = fake.DeleteBlueprints(
      Delete({"lhbp-normal01", "lhbp-isolat01", "lhbp-crfail01", "lhbp-syfail01"}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->request_id.empty());
  EXPECT_THAT(IdsIn(fake, kRegion), ElementsAre("lhbp-keep0001"));
  EXPECT_THAT(IdsIn(fake, "ap-beijing"), ElementsAre("lhbp-normal01"));
  EXPECT_EQ(fake.delete_count(), 1);
  ASSERT_EQ(fake.delete_calls().size(), 1u);
  EXPECT_EQ(fake.delete_calls()[0].region, kRegion);
  EXPECT_THAT(fake.events(),
              ElementsAre("delete:ap-shanghai/lhbp-normal01,lhbp-isolat01,lhbp-crfail01,"
                          "lhbp-syfail01",
                          "poll:ap-shanghai", "poll:ap-beijing"));
}

TEST(FakeDeleteBlueprintsTest, OtherStatesAreRefusedAndNothingIsDeleted) {
  for (const char* state : {"SYNCING", "OFFLINE", "ISOLATING", "DELETING", "DESTROYING"}) {
    SCOPED_TRACE(state);
    FakeLighthouseClient fake;
    fake.Put(kRegion, Private("lhbp-first001", "NORMAL"));
    fake.Put(kRegion, Private("lhbp-busy0001", state));
    auto r = fake.DeleteBlueprints(Delete({"lhbp-first001", "lhbp-busy0001"}), {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    std::optional<tencent::ApiError> e = tencent::GetApiError(r.status());
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->kind, tencent::ErrorKind::kApi);
    EXPECT_EQ(e->code, "UnsupportedOperation.BlueprintCurStateInvalid");
    EXPECT_EQ(e->action, "DeleteBlueprints");
    EXPECT_FALSE(e->request_id.empty());
    // All or nothing: the deletable first id is still there.
    EXPECT_THAT(IdsIn(fake, kRegion), ElementsAre("lhbp-busy0001", "lhbp-first001"));
  }
}

TEST(FakeDeleteBlueprintsTest, UnknownPublicAndAlreadyDeletedIdsAreNotFound) {
  FakeLighthouseClient fake;
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  Blueprint pub = Private("lhbp-pubos001", "NORMAL");
  pub.blueprint_type = "APP_OS";
  fake.Put(kRegion, pub);
  fake.SetState(kRegion, "lhbp-bare0001", "NORMAL");  // no type: a custom image

  for (const char* id : {"lhbp-nothere1", "lhbp-pubos001"}) {
    auto r = fake.DeleteBlueprints(Delete({id}), {});
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << id;
    EXPECT_EQ(CodeOf(r.status()), "ResourceNotFound.PrivateBlueprintNotFound") << id;
  }
  // The id exists elsewhere only.
  EXPECT_EQ(CodeOf(fake.DeleteBlueprints(Delete({"lhbp-normal01"}, "ap-tokyo"), {}).status()),
            "ResourceNotFound.PrivateBlueprintNotFound");

  ASSERT_TRUE(fake.DeleteBlueprints(Delete({"lhbp-normal01", "lhbp-bare0001"}), {}).ok());
  // Repeating a delete that went through answers NotFound.
  EXPECT_EQ(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(IdsIn(fake, kRegion), ElementsAre("lhbp-pubos001"));
}

TEST(FakeDeleteBlueprintsTest, OccupiedUntilReleased) {
  FakeLighthouseClient fake;
  fake.Put(kRegion, Private("lhbp-source01", "NORMAL"));
  fake.SetOccupied(kRegion, "lhbp-source01", true);
  auto r = fake.DeleteBlueprints(Delete({"lhbp-source01"}), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CodeOf(r.status()), "UnsupportedOperation.BlueprintOccupied");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(IdsIn(fake, kRegion), ElementsAre("lhbp-source01"));

  fake.SetOccupied(kRegion, "lhbp-source01", false);
  EXPECT_TRUE(fake.DeleteBlueprints(Delete({"lhbp-source01"}), {}).ok());
  EXPECT_THAT(IdsIn(fake, kRegion), IsEmpty());
}

TEST(FakeDeleteBlueprintsTest, ScriptedErrorsAnswerInOrderWithoutDeleting) {
  FakeLighthouseClient fake;
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  const absl::Status throttled = absl::UnavailableError("scripted throttle");
  fake.ScriptDeleteError(throttled);
  fake.ScriptDeleteError(absl::OkStatus());  // the world answers the second call
  fake.ScriptDeleteError(absl::InternalError("scripted third"));

  EXPECT_EQ(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).status(), throttled);
  EXPECT_THAT(IdsIn(fake, kRegion), ElementsAre("lhbp-normal01"));
  EXPECT_TRUE(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).ok());
  EXPECT_EQ(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).status().message(),
            "scripted third");
  // Script used up: the world answers again.
  EXPECT_EQ(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(fake.delete_count(), 4);
}

TEST(FakeDeleteBlueprintsTest, RefusesWhatTheRealClientRefusesLocally) {
  FakeLighthouseClient fake;
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  fake.ScriptDeleteError(absl::InternalError("must stay queued"));
  const std::vector<DeleteBlueprintsRequest> invalid = {
      Delete({}),
      Delete({"lhbp-normal01"}, ""),
      Delete({"not-an-id"}),
      Delete(std::vector<std::string>(101, "lhbp-normal01")),
  };
  for (const DeleteBlueprintsRequest& request : invalid) {
    auto r = fake.DeleteBlueprints(request, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(CodeOf(r.status()), "ClientError.InvalidArgument");
  }
  // Recorded (the caller made them), but neither the script nor the world moved.
  EXPECT_EQ(fake.delete_count(), 4);
  EXPECT_EQ(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).status().message(),
            "must stay queued");
  EXPECT_THAT(IdsIn(fake, kRegion), ElementsAre("lhbp-normal01"));
}

TEST(FakeDeleteBlueprintsTest, RemoveBehindTheCallersBack) {
  FakeLighthouseClient fake;
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  fake.SetOccupied(kRegion, "lhbp-normal01", true);
  fake.Remove(kRegion, "lhbp-normal01");
  fake.Remove(kRegion, "lhbp-nothere1");  // ignored
  fake.Remove("ap-nowhere", "lhbp-normal01");
  EXPECT_THAT(IdsIn(fake, kRegion), IsEmpty());
  EXPECT_EQ(fake.delete_count(), 0);
  // Gone, not occupied: put back, it deletes normally.
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  EXPECT_TRUE(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).ok());
}

TEST(FakeDeleteBlueprintsTest, FailUnscriptedCoversDeletes) {
  FakeLighthouseClient fake;
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  fake.FailUnscripted(absl::UnavailableError("no upstream"));
  EXPECT_EQ(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).status().message(), "no upstream");
  fake.FailUnscripted(absl::OkStatus());
  EXPECT_TRUE(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).ok());
}

TEST(FakeDeleteBlueprintsTest, CountsWithoutRecordingForBenchmarks) {
  FakeLighthouseClient::Options options;
  options.record_calls = false;
  FakeLighthouseClient fake(options);
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  ASSERT_TRUE(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).ok());
  EXPECT_EQ(fake.delete_count(), 1);
  EXPECT_THAT(fake.delete_calls(), IsEmpty());
  EXPECT_THAT(fake.events(), IsEmpty());
}

// The engine's tests read which calls went at background priority.
TEST(FakeLighthouseClientTest, BackgroundEventsAreTheCallsMadeAtBackgroundPriority) {
  FakeLighthouseClient fake;
  fake.Put(kRegion, Private("lhbp-normal01", "NORMAL"));
  fake.Put(kRegion, Private("lhbp-normal02", "NORMAL"));
  tencent::CallOptions background;
  background.priority = tencent::CallPriority::kBackground;
  ASSERT_TRUE(
      fake.SyncBlueprint(tencent::SyncBlueprintRequest{kRegion, "lhbp-src00001", {"ap-beijing"}},
                         background)
          .ok());
  ASSERT_TRUE(fake.SyncBlueprint(
                      tencent::SyncBlueprintRequest{kRegion, "lhbp-src00002", {"ap-beijing"}}, {})
                  .ok());
  DescribeBlueprintsRequest poll;
  poll.region = kRegion;
  poll.blueprint_ids = {"lhbp-normal01", "lhbp-normal02"};
  ASSERT_TRUE(fake.DescribeBlueprints(poll, background).ok());
  ASSERT_TRUE(fake.DescribeBlueprints(poll, {}).ok());
  ASSERT_TRUE(fake.DeleteBlueprints(Delete({"lhbp-normal01"}), {}).ok());
  ASSERT_TRUE(fake.DeleteBlueprints(Delete({"lhbp-normal02"}), background).ok());
  EXPECT_THAT(fake.background_events(), ElementsAre("sync:lhbp-src00001", "poll:ap-shanghai",
                                                    "delete:ap-shanghai/lhbp-normal02"));
  EXPECT_EQ(fake.events().size(), 6u);
  ASSERT_EQ(fake.sync_calls().size(), 2u);
  EXPECT_EQ(fake.sync_calls()[0].options.priority, tencent::CallPriority::kBackground);
  EXPECT_EQ(fake.sync_calls()[1].options.priority, tencent::CallPriority::kForeground);
}

}  // namespace
}  // namespace blueprintsync::testing
