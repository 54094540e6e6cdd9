#include "service/server/response_delivery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace blueprintsync::server {
namespace {

using ::testing::HasSubstr;

// No call is cancelled here (the timeout is an hour), so no context is
// needed; the e2e tests (tests/e2e/abuse_e2e_test.cc) cover the timeout.
TEST(ResponseDeliveryTest, BudgetRefusesWhatItCannotHoldAndReleasesOnDone) {
  ResponseDelivery delivery({100, absl::Hours(1)});
  absl::StatusOr<uint64_t> first = delivery.Reserve(nullptr, 60);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<uint64_t> second = delivery.Reserve(nullptr, 60);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.status().message(), HasSubstr("--response-budget"));
  EXPECT_THAT(second.status().message(), HasSubstr("page_size"));
  EXPECT_EQ(delivery.held_bytes(), 60);
  EXPECT_EQ(delivery.refused(), 1);
  delivery.Release(*first);
  EXPECT_EQ(delivery.held_bytes(), 0);
  absl::StatusOr<uint64_t> third = delivery.Reserve(nullptr, 60);
  ASSERT_TRUE(third.ok()) << third.status();
  delivery.Release(*third);
  delivery.Release(*third);  // twice: no effect
  EXPECT_EQ(delivery.held_bytes(), 0);
}

TEST(ResponseDeliveryTest, OneAnswerLargerThanTheBudgetPassesWhenNothingElseIsHeld) {
  ResponseDelivery delivery({100, absl::Hours(1)});
  absl::StatusOr<uint64_t> big = delivery.Reserve(nullptr, 500);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_FALSE(delivery.Reserve(nullptr, 1).ok());
  delivery.Release(*big);
}

}  // namespace
}  // namespace blueprintsync::server
