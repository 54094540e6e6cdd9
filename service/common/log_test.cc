#include "service/common/log.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace blueprintsync::log {
namespace {

using ::testing::ElementsAre;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = std::tmpfile();
    ASSERT_NE(out_, nullptr);
    SetOutput(out_);
    SetLevel(Level::kInfo);
  }
  void TearDown() override {
    SetOutput(nullptr);
    SetLevel(Level::kInfo);
    std::fclose(out_);
  }
  // Everything written so far, split into lines (the trailing newline of
  // each line removed).
  std::vector<std::string> Lines() {
    std::fflush(out_);
    std::rewind(out_);
    std::string all;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), out_)) > 0) all.append(buf, n);
    std::fseek(out_, 0, SEEK_END);
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < all.size()) {
      const size_t nl = all.find('\n', start);
      EXPECT_NE(nl, std::string::npos) << "last line not terminated";
      if (nl == std::string::npos) break;
      lines.push_back(all.substr(start, nl - start));
      start = nl + 1;
    }
    return lines;
  }
  static rapidjson::Document Parse(const std::string& line) {
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    EXPECT_FALSE(d.HasParseError()) << line;
    EXPECT_TRUE(d.IsObject()) << line;
    return d;
  }
  static std::vector<std::string> Keys(const rapidjson::Document& d) {
    std::vector<std::string> keys;
    for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) keys.emplace_back(it->name.GetString());
    return keys;
  }

  std::FILE* out_ = nullptr;
};

TEST_F(LogTest, OneJsonObjectPerLineWithTimeLevelMsgThenFields) {
  Info("job submitted", {{"job", "syncJobs/abc"}, {"region", "ap-singapore"}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  const auto d = Parse(lines[0]);
  EXPECT_THAT(Keys(d), ElementsAre("time", "level", "msg", "job", "region"));
  EXPECT_STREQ(d["level"].GetString(), "info");
  EXPECT_STREQ(d["msg"].GetString(), "job submitted");
  EXPECT_STREQ(d["job"].GetString(), "syncJobs/abc");
  EXPECT_STREQ(d["region"].GetString(), "ap-singapore");
  const std::string time = d["time"].GetString();
  EXPECT_TRUE(std::regex_match(time, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")))
      << time;
}

TEST_F(LogTest, LevelNames) {
  SetLevel(Level::kDebug);
  Debug("d");
  Info("i");
  Warn("w");
  Error("e");
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 4u);
  std::vector<std::string> levels;
  for (const auto& l : lines) levels.push_back(Parse(l)["level"].GetString());
  EXPECT_THAT(levels, ElementsAre("debug", "info", "warn", "error"));
}

TEST_F(LogTest, LevelFilter) {
  Debug("dropped at the default level");
  Info("kept");
  SetLevel(Level::kWarn);
  Info("dropped");
  Warn("kept too");
  Error("and this");
  SetLevel(Level::kError);
  Warn("dropped as well");
  const auto lines = Lines();
  std::vector<std::string> msgs;
  for (const auto& l : lines) msgs.push_back(Parse(l)["msg"].GetString());
  EXPECT_THAT(msgs, ElementsAre("kept", "kept too", "and this"));
}

TEST_F(LogTest, EscapingKeepsOneLineAndRoundTrips) {
  const std::string nasty = "quote\" backslash\\ newline\n tab\t cr\r ctl\x01 nul-free, \xE4\xB8\xAD";
  Info(nasty, {{"k\"ey", nasty}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << "a field broke the line";
  const auto d = Parse(lines[0]);
  EXPECT_EQ(std::string(d["msg"].GetString(), d["msg"].GetStringLength()), nasty);
  ASSERT_TRUE(d.HasMember("k\"ey"));
  EXPECT_EQ(std::string(d["k\"ey"].GetString()), nasty);
  EXPECT_EQ(lines[0].find('\t'), std::string::npos);
  EXPECT_EQ(lines[0].find('\r'), std::string::npos);
}

TEST_F(LogTest, EmptyFieldsAreSkipped) {
  Info("m", {{"a", ""}, {"b", "x"}, {"c", ""}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(Keys(Parse(lines[0])), ElementsAre("time", "level", "msg", "b"));
}

TEST_F(LogTest, FieldValuesNeedNotBeNulTerminated) {
  const std::string backing = "ap-singaporeXXXX";
  Info("m", {{"region", absl::string_view(backing).substr(0, 12)}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_STREQ(Parse(lines[0])["region"].GetString(), "ap-singapore");
}

TEST_F(LogTest, HugeValuesAreCutAtAUtf8BoundaryAndMarked) {
  // A 2 MB message from upstream, with a multi-byte character straddling
  // the cut.
  std::string huge(kMaxValueBytes - 1, 'a');
  huge += "\xC3\xA9";  // é: its first byte is the last one that fits
  huge += std::string(2 << 20, 'b');
  Warn(huge, {{"error", huge}, {huge, "v"}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_LT(lines[0].size(), 4 * kMaxValueBytes);
  const auto d = Parse(lines[0]);
  const std::string expected =
      std::string(kMaxValueBytes - 1, 'a') + "…[cut: " + std::to_string(huge.size()) + " bytes]";
  EXPECT_EQ(d["msg"].GetString(), expected);
  EXPECT_EQ(d["error"].GetString(), expected);
  EXPECT_TRUE(d.HasMember(expected.c_str()));
}

TEST_F(LogTest, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  // A lone continuation byte, a truncated sequence, an overlong encoding
  // and a surrogate, around valid text.
  Info("m", {{"v", "a" "\x80" "b" "\xE4\xB8" "c" "\xC0\xAF" "d" "\xED\xA0\x80" "e中"}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(std::string(Parse(lines[0])["v"].GetString()),
            "a\uFFFDb\uFFFD\uFFFDc\uFFFD\uFFFDd\uFFFD\uFFFD\uFFFDe中");
}

TEST_F(LogTest, ValuesUpToTheBoundAreKeptWhole) {
  const std::string exact(kMaxValueBytes, 'x');
  Info("m", {{"v", exact}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(Parse(lines[0])["v"].GetString(), exact);
}

TEST_F(LogTest, NumbersAndBooleansAreJsonNumbersAndBooleans) {
  const int64_t big = int64_t{1} << 53;
  Info("m", {{"time_ms", 0},
             {"negative", -7},
             {"int64", big},
             {"size", size_t{3}},
             {"uint64_max", UINT64_MAX},
             {"seconds", 1.5},
             {"ok", true},
             {"text", "12"}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  // Not "0": log queries compare and sum these without parsing strings.
  EXPECT_NE(lines[0].find("\"time_ms\":0,"), std::string::npos) << lines[0];
  const auto d = Parse(lines[0]);
  ASSERT_TRUE(d["time_ms"].IsInt64());
  EXPECT_EQ(d["time_ms"].GetInt64(), 0);
  ASSERT_TRUE(d["negative"].IsInt64());
  EXPECT_EQ(d["negative"].GetInt64(), -7);
  ASSERT_TRUE(d["int64"].IsInt64());
  EXPECT_EQ(d["int64"].GetInt64(), big);
  ASSERT_TRUE(d["size"].IsUint64());
  EXPECT_EQ(d["size"].GetUint64(), 3u);
  ASSERT_TRUE(d["uint64_max"].IsUint64());
  EXPECT_EQ(d["uint64_max"].GetUint64(), UINT64_MAX);
  ASSERT_TRUE(d["seconds"].IsDouble());
  EXPECT_EQ(d["seconds"].GetDouble(), 1.5);
  ASSERT_TRUE(d["ok"].IsBool());
  EXPECT_TRUE(d["ok"].GetBool());
  // A string that looks like a number stays a string.
  ASSERT_TRUE(d["text"].IsString());
  EXPECT_STREQ(d["text"].GetString(), "12");
}

TEST_F(LogTest, ZeroAndFalseAreWrittenUnlikeEmptyStrings) {
  Info("m", {{"zero", 0}, {"no", false}, {"empty", ""}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(Keys(Parse(lines[0])), ElementsAre("time", "level", "msg", "zero", "no"));
}

TEST_F(LogTest, DoublesThatAreNotFiniteStayValidJson) {
  Info("m", {{"nan", std::nan("")},
             {"inf", std::numeric_limits<double>::infinity()},
             {"neg_inf", -std::numeric_limits<double>::infinity()}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  const auto d = Parse(lines[0]);
  EXPECT_STREQ(d["nan"].GetString(), "nan");
  EXPECT_STREQ(d["inf"].GetString(), "inf");
  EXPECT_STREQ(d["neg_inf"].GetString(), "-inf");
}

TEST_F(LogTest, StringValuesNextToNumbersKeepTheirBounds) {
  std::string huge(kMaxValueBytes + 10, 'x');
  huge += "\x80";
  Info("m", {{"count", 3}, {"v", huge}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  const auto d = Parse(lines[0]);
  EXPECT_EQ(d["count"].GetInt(), 3);
  const std::string v = d["v"].GetString();
  EXPECT_EQ(v,
            std::string(kMaxValueBytes, 'x') + "…[cut: " + std::to_string(huge.size()) + " bytes]");
}

TEST_F(LogTest, ConcurrentWritersNeverInterleave) {
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      const std::string payload(300, static_cast<char>('a' + t));
      for (int i = 0; i < kPerThread; ++i) Info("concurrent", {{"payload", payload}});
    });
  }
  for (auto& t : threads) t.join();
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const auto& l : lines) {
    const auto d = Parse(l);
    const std::string p = d["payload"].GetString();
    ASSERT_EQ(p.size(), 300u);
    EXPECT_EQ(p.find_first_not_of(p[0]), std::string::npos);
  }
}

TEST(ParseLevelTest, AcceptsTheFourNamesOnly) {
  Level l = Level::kError;
  ASSERT_TRUE(ParseLevel("debug", &l));
  EXPECT_EQ(l, Level::kDebug);
  ASSERT_TRUE(ParseLevel("info", &l));
  EXPECT_EQ(l, Level::kInfo);
  ASSERT_TRUE(ParseLevel("warn", &l));
  EXPECT_EQ(l, Level::kWarn);
  ASSERT_TRUE(ParseLevel("error", &l));
  EXPECT_EQ(l, Level::kError);
  for (const char* bad : {"", "INFO", "warning", "trace", "fatal", "info "}) {
    l = Level::kWarn;
    EXPECT_FALSE(ParseLevel(bad, &l)) << bad;
    EXPECT_EQ(l, Level::kWarn) << "changed on failure: " << bad;
  }
}

}  // namespace
}  // namespace blueprintsync::log
