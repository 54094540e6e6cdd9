#include "client/request_id.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>

namespace blueprintsync::cli {
namespace {

using ::testing::MatchesRegex;

constexpr char kUuidV4[] = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

TEST(NewRequestIdTest, IsAVersion4Uuid) {
  for (int i = 0; i < 200; ++i) EXPECT_THAT(NewRequestId(), MatchesRegex(kUuidV4));
}

TEST(NewRequestIdTest, DiffersEveryTime) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewRequestId());
  EXPECT_EQ(seen.size(), 1000u);
}

// A generator that always returns `kValue`.
template <uint64_t kValue>
struct Constant {
  using result_type = uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() { return kValue; }
};

TEST(NewRequestIdTest, SetsVersionAndVariantBitsWhateverTheGeneratorGives) {
  Constant<~uint64_t{0}> ones;
  EXPECT_EQ(NewRequestId(ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  Constant<0> zeros;
  EXPECT_EQ(NewRequestId(zeros), "00000000-0000-4000-8000-000000000000");
  std::mt19937_64 seeded(42);
  EXPECT_THAT(NewRequestId(seeded), MatchesRegex(kUuidV4));
}

}  // namespace
}  // namespace blueprintsync::cli
