#include "client/suggest.h"

#include <gtest/gtest.h>

namespace blueprintsync::cli {
namespace {

TEST(EditDistanceTest, CountsEdits) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("list", "list"), 0u);
  EXPECT_EQ(EditDistance("lst", "list"), 1u);
  EXPECT_EQ(EditDistance("lsit", "list"), 1u);  // a swap is one edit
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
}

TEST(ClosestMatchTest, OffersOnlyLikelyTypos) {
  const std::vector<std::string> commands = {"sync", "get", "list", "watch", "delete", "policy"};
  EXPECT_EQ(ClosestMatch("lsit", commands), "list");
  EXPECT_EQ(ClosestMatch("sycn", commands), "sync");
  EXPECT_EQ(ClosestMatch("polcy", commands), "policy");
  EXPECT_EQ(ClosestMatch("frobnicate", commands), "");
  EXPECT_EQ(ClosestMatch("x", commands), "");  // one letter matches too much
  EXPECT_EQ(ClosestMatch("", commands), "");
  EXPECT_EQ(DidYouMean("wach", commands, ""), "; did you mean \"watch\"?");
  EXPECT_EQ(DidYouMean("wiat", {"wait"}, "--"), "; did you mean \"--wait\"?");
  EXPECT_EQ(DidYouMean("zzzzzz", commands), "");
}

}  // namespace
}  // namespace blueprintsync::cli
