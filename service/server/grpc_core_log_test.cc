#include "service/server/grpc_core_log.h"

#include <grpc/grpc.h>
#include <grpc/support/log.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "service/common/log.h"

namespace blueprintsync::server {
namespace {

TEST(LogRateLimiterTest, LetsABurstThroughThenRefillsAtTheRate) {
  LogRateLimiter limiter({.burst = 3, .per_second = 2});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  uint64_t dropped = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Admit(t0, &dropped)) << i;
    EXPECT_EQ(dropped, 0u);
  }
  EXPECT_FALSE(limiter.Admit(t0, &dropped));
  EXPECT_FALSE(limiter.Admit(t0 + absl::Milliseconds(100), &dropped));
  // Half a second at 2/s is one more line, which carries the two refused.
  ASSERT_TRUE(limiter.Admit(t0 + absl::Milliseconds(500), &dropped));
  EXPECT_EQ(dropped, 2u);
  EXPECT_FALSE(limiter.Admit(t0 + absl::Milliseconds(500), &dropped));
  // A long quiet spell refills to the burst, not beyond.
  int admitted = 0;
  const absl::Time later = t0 + absl::Hours(1);
  while (limiter.Admit(later, &dropped)) ++admitted;
  EXPECT_EQ(admitted, 3);
}

TEST(LogRateLimiterTest, ATimeGoingBackwardsGivesNoTokens) {
  LogRateLimiter limiter({.burst = 1, .per_second = 1});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  uint64_t dropped = 0;
  ASSERT_TRUE(limiter.Admit(t0, &dropped));
  EXPECT_FALSE(limiter.Admit(t0 - absl::Seconds(10), &dropped));
  EXPECT_FALSE(limiter.Admit(t0, &dropped));
}

// gRPC core's own lines, written through gpr_log as gRPC does, come out as
// JSON lines of the service's log, and a flood of them is cut to the limit.
TEST(RouteGrpcCoreLogsTest, CoreLinesBecomeRateLimitedJsonLines) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  log::SetOutput(out);
  RouteGrpcCoreLogs({.burst = 5, .per_second = 0.001});
  // gpr_log drops every line until gRPC is initialized (which reads
  // GRPC_VERBOSITY), as a server does before logging anything.
  grpc_init();
  for (int i = 0; i < 1000; ++i) {
    gpr_log(__FILE__, 42, GPR_LOG_SEVERITY_ERROR, "Handshake failed with fatal error %d", i);
  }
  log::SetOutput(nullptr);
  grpc_shutdown();
  std::fflush(out);
  std::rewind(out);
  std::string all;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), out)) > 0) all.append(buf, n);
  std::fclose(out);
  std::vector<std::string> lines = absl::StrSplit(all, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << all;
  for (const std::string& line : lines) {
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    ASSERT_FALSE(d.HasParseError()) << line;
    EXPECT_STREQ(d["level"].GetString(), "warn");
    EXPECT_STREQ(d["source"].GetString(), "grpc");
    EXPECT_STREQ(d["file"].GetString(), "grpc_core_log_test.cc");
    // A JSON number, like every number the log writes.
    ASSERT_TRUE(d["line"].IsInt()) << line;
    EXPECT_EQ(d["line"].GetInt(), 42);
    EXPECT_TRUE(absl::StartsWith(d["msg"].GetString(), "Handshake failed")) << line;
  }
}

}  // namespace
}  // namespace blueprintsync::server
