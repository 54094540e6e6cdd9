#include "client/policy_waiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/fake_connection.h"
#include "service/common/testing/fake_clock.h"

namespace blueprintsync::cli {
namespace {

using ::blueprintsync::testing::FakeClock;
using ::blueprintsync::testing::FakeConnection;
using ::blueprintsync::testing::ParsePolicy;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

namespace v1 = ::blueprintsync::v1;

// A two-region policy with the regions in `states`.
v1::SyncPolicy Policy(v1::SyncPolicyRegion::State tokyo, v1::SyncPolicyRegion::State seoul) {
  v1::SyncPolicy policy = ParsePolicy(R"pb(
    name: "syncPolicies/web"
    source_region: "ap-singapore"
    blueprint_name: "web"
    destination_regions: [ "ap-tokyo", "ap-seoul" ]
    regions { region: "ap-tokyo" }
    regions { region: "ap-seoul" }
  )pb");
  policy.mutable_regions(0)->set_state(tokyo);
  policy.mutable_regions(1)->set_state(seoul);
  policy.set_in_sync(tokyo == v1::SyncPolicyRegion::IN_SYNC &&
                     seoul == v1::SyncPolicyRegion::IN_SYNC);
  return policy;
}

constexpr auto kPending = v1::SyncPolicyRegion::PENDING;
constexpr auto kSyncing = v1::SyncPolicyRegion::SYNCING;
constexpr auto kInSync = v1::SyncPolicyRegion::IN_SYNC;
constexpr auto kFailed = v1::SyncPolicyRegion::FAILED;

class PolicyWaiterTest : public ::testing::Test {
 protected:
  absl::StatusOr<PolicyWaitResult> Wait() {
    PolicyWaiter waiter(&connection_, &clock_, options_);
    return waiter.Wait(
        "syncPolicies/web", [this](const v1::SyncPolicy& p) { seen_.push_back(p.in_sync()); },
        [this](const std::string& note) { notes_.push_back(note); });
  }

  FakeConnection connection_;
  FakeClock clock_;
  PolicyWaitOptions options_;  // every 2s, no deadline, give up after 2m
  std::vector<bool> seen_;
  std::vector<std::string> notes_;
};

TEST_F(PolicyWaiterTest, AsksEveryIntervalUntilInSync) {
  connection_.get_policy_results = {Policy(kPending, kPending), Policy(kSyncing, kInSync),
                                    Policy(kInSync, kInSync)};
  auto result = Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, PolicyWaitOutcome::kInSync);
  EXPECT_TRUE(result->policy.in_sync());
  EXPECT_THAT(seen_, ElementsAre(false, false, true));
  ASSERT_EQ(connection_.get_policy_requests.size(), 3u);
  EXPECT_EQ(connection_.get_policy_requests[0].name(), "syncPolicies/web");
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(2), absl::Seconds(2)));
  EXPECT_THAT(notes_, IsEmpty());
}

TEST_F(PolicyWaiterTest, StopsAtTheFirstFailedRegion) {
  options_.poll_interval = absl::Seconds(5);
  connection_.get_policy_results = {Policy(kSyncing, kSyncing), Policy(kInSync, kFailed)};
  connection_.get_policy_result = Policy(kInSync, kInSync);  // never asked for
  auto result = Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, PolicyWaitOutcome::kRegionFailed);
  EXPECT_EQ(result->policy.regions(1).state(), kFailed);
  EXPECT_EQ(connection_.get_policy_requests.size(), 2u);
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(5)));
}

TEST_F(PolicyWaiterTest, TimesOutAfterALastLookAtTheDeadline) {
  options_.deadline = clock_.Now() + absl::Seconds(5);
  connection_.get_policy_result = Policy(kSyncing, kInSync);
  auto result = Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, PolicyWaitOutcome::kTimedOut);
  EXPECT_EQ(result->policy.regions(0).state(), kSyncing);
  // At 0s, 2s, 4s and 5s.
  EXPECT_EQ(connection_.get_policy_requests.size(), 4u);
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(2), absl::Seconds(2), absl::Seconds(1)));
}

TEST_F(PolicyWaiterTest, ADeadlineDoesNotHideAnOutcomeSeenOnTheLastLook) {
  options_.deadline = clock_.Now() + absl::Seconds(3);
  connection_.get_policy_results = {Policy(kSyncing, kSyncing), Policy(kSyncing, kSyncing),
                                    Policy(kInSync, kInSync)};
  auto result = Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, PolicyWaitOutcome::kInSync);
}

TEST_F(PolicyWaiterTest, TheFirstCallsErrorEndsTheWaitAtOnce) {
  connection_.get_policy_result = absl::UnavailableError("connection refused");
  auto result = Wait();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(connection_.get_policy_requests.size(), 1u);
  EXPECT_THAT(clock_.sleeps(), IsEmpty());
}

TEST_F(PolicyWaiterTest, KeepsAskingThroughAnOutageOnceThePolicyWasSeen) {
  connection_.get_policy_results = {
      Policy(kSyncing, kSyncing), absl::UnavailableError("Socket closed"),
      absl::DeadlineExceededError("Deadline Exceeded"), Policy(kInSync, kInSync)};
  auto result = Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, PolicyWaitOutcome::kInSync);
  ASSERT_EQ(notes_.size(), 3u);
  EXPECT_EQ(notes_[0], "GetSyncPolicy failed (UNAVAILABLE: Socket closed); asking again in 2s");
  EXPECT_EQ(notes_[1],
            "GetSyncPolicy failed (DEADLINE_EXCEEDED: Deadline Exceeded); asking again in 2s");
  EXPECT_EQ(notes_[2], "reached the service again after 4s");
}

TEST_F(PolicyWaiterTest, GivesUpAfterTheReconnectBudget) {
  options_.reconnect.give_up_after = absl::Seconds(10);
  connection_.get_policy_results = {Policy(kSyncing, kSyncing)};
  connection_.get_policy_result = absl::UnavailableError("connection refused");
  auto result = Wait();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  // Seen at 0s; failing from 2s; the call at 12s is the one that gives up.
  EXPECT_EQ(connection_.get_policy_requests.size(), 7u);
  EXPECT_THAT(notes_.back(), HasSubstr("gave up after 10s without an answer"));
}

TEST_F(PolicyWaiterTest, AnErrorThatAskingAgainCannotFixEndsTheWait) {
  connection_.get_policy_results = {Policy(kSyncing, kSyncing),
                                    absl::NotFoundError("syncPolicies/web not found")};
  auto result = Wait();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(connection_.get_policy_requests.size(), 2u);
}

TEST_F(PolicyWaiterTest, SaysOnceThatAPausedPolicyWillNotChange) {
  v1::SyncPolicy paused = Policy(kPending, kPending);
  paused.set_paused(true);
  connection_.get_policy_results = {
      paused, paused, paused, Policy(kSyncing, kSyncing), paused, Policy(kInSync, kInSync)};
  auto result = Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(notes_, ElementsAre("the policy is paused: it will not change until it is resumed",
                                  "the policy is paused: it will not change until it is resumed"));
}

TEST(AnyRegionFailedTest, OnlyFailedCounts) {
  EXPECT_FALSE(AnyRegionFailed(Policy(kPending, kSyncing)));
  EXPECT_TRUE(AnyRegionFailed(Policy(kInSync, kFailed)));
  EXPECT_FALSE(AnyRegionFailed(v1::SyncPolicy()));
}

}  // namespace
}  // namespace blueprintsync::cli
