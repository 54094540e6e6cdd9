#include "service/common/flags.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blueprintsync {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<FlagSpec> Specs() {
  return {
      {"listen", "BPS_LISTEN", "0.0.0.0:50051", "address to listen on", false},
      {"workers", "BPS_WORKERS", "4", "submission workers", false},
      {"ratio", "BPS_RATIO", "0.5", "a ratio", false},
      {"poll", "BPS_POLL", "10s", "poll interval", false},
      {"verbose", "BPS_VERBOSE", "false", "more output", true},
      {"noenv", "", "plain", "no environment variable", false},
  };
}

class FlagsTest : public ::testing::Test {
 protected:
  Flags Make() {
    return Flags(Specs(), [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    });
  }
  absl::Status Parse(Flags& flags, std::vector<std::string> args) {
    args.insert(args.begin(), "prog");
    argv_.clear();
    storage_ = std::move(args);
    for (const auto& a : storage_) argv_.push_back(a.c_str());
    return flags.Parse(static_cast<int>(argv_.size()), argv_.data());
  }

  std::map<std::string, std::string> env_;
  std::vector<std::string> storage_;
  std::vector<const char*> argv_;
};

TEST_F(FlagsTest, DefaultsWhenNothingIsSet) {
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {}).ok());
  EXPECT_EQ(f.String("listen"), "0.0.0.0:50051");
  EXPECT_EQ(f.Source("listen"), "default");
  EXPECT_EQ(*f.Int("workers", 1, 64), 4);
  EXPECT_EQ(*f.Duration("poll", absl::Seconds(1), absl::Hours(1)), absl::Seconds(10));
  EXPECT_FALSE(*f.Bool("verbose"));
  EXPECT_TRUE(f.positional().empty());
}

TEST_F(FlagsTest, ArgumentBeatsEnvironmentBeatsDefault) {
  env_["BPS_LISTEN"] = "127.0.0.1:1";
  env_["BPS_WORKERS"] = "8";
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {"--listen=127.0.0.1:2"}).ok());
  EXPECT_EQ(f.String("listen"), "127.0.0.1:2");
  EXPECT_EQ(f.Source("listen"), "--listen");
  EXPECT_EQ(f.String("workers"), "8");
  EXPECT_EQ(f.Source("workers"), "$BPS_WORKERS");
  EXPECT_EQ(f.String("poll"), "10s");
  EXPECT_EQ(f.Source("poll"), "default");
}

TEST_F(FlagsTest, EmptyEnvironmentValueStillCountsAsSet) {
  env_["BPS_LISTEN"] = "";
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {}).ok());
  EXPECT_EQ(f.String("listen"), "");
  EXPECT_EQ(f.Source("listen"), "$BPS_LISTEN");
}

TEST_F(FlagsTest, EqualsAndSeparateValueForms) {
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {"--listen", "127.0.0.1:3", "--workers=2", "--noenv="}).ok());
  EXPECT_EQ(f.String("listen"), "127.0.0.1:3");
  EXPECT_EQ(f.String("workers"), "2");
  EXPECT_EQ(f.String("noenv"), "");
  EXPECT_EQ(f.Source("noenv"), "--noenv");
  EXPECT_TRUE(f.positional().empty());
}

TEST_F(FlagsTest, ValueMayContainEqualsSign) {
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {"--listen=a=b"}).ok());
  EXPECT_EQ(f.String("listen"), "a=b");
}

TEST_F(FlagsTest, SeparateValueIsTakenEvenIfItLooksLikeAFlag) {
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {"--listen", "--workers"}).ok());
  EXPECT_EQ(f.String("listen"), "--workers");
  EXPECT_EQ(f.Source("workers"), "default");
}

TEST_F(FlagsTest, LaterArgumentWins) {
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {"--workers=2", "--workers", "3"}).ok());
  EXPECT_EQ(*f.Int("workers", 1, 64), 3);
}

TEST_F(FlagsTest, BoolFlags) {
  {
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {"--verbose"}).ok());
    EXPECT_TRUE(*f.Bool("verbose"));
    EXPECT_EQ(f.Source("verbose"), "--verbose");
  }
  {
    // A bool flag alone never consumes the next argument.
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {"--verbose", "false"}).ok());
    EXPECT_TRUE(*f.Bool("verbose"));
    EXPECT_THAT(f.positional(), ElementsAre("false"));
  }
  for (const char* t : {"true", "1", "yes"}) {
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {std::string("--verbose=") + t}).ok());
    EXPECT_TRUE(*f.Bool("verbose")) << t;
  }
  for (const char* t : {"false", "0", "no", ""}) {
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {std::string("--verbose=") + t}).ok());
    EXPECT_FALSE(*f.Bool("verbose")) << t;
  }
  {
    env_["BPS_VERBOSE"] = "maybe";
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {}).ok());
    auto b = f.Bool("verbose");
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(b.status().message()), HasSubstr("--verbose"));
    EXPECT_THAT(std::string(b.status().message()), HasSubstr("$BPS_VERBOSE"));
    EXPECT_THAT(std::string(b.status().message()), HasSubstr("maybe"));
  }
}

TEST_F(FlagsTest, PositionalArgumentsAndDoubleDash) {
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {"get", "--workers=2", "syncJobs/x", "--", "--listen=1", "-v"}).ok());
  EXPECT_THAT(f.positional(), ElementsAre("get", "syncJobs/x", "--listen=1", "-v"));
  EXPECT_EQ(f.String("workers"), "2");
  EXPECT_EQ(f.Source("listen"), "default");
}

TEST_F(FlagsTest, FirstArgumentIndexIsHonoured) {
  Flags f = Make();
  const char* argv[] = {"prog", "sub", "--workers=9"};
  ASSERT_TRUE(f.Parse(3, argv, 2).ok());
  EXPECT_EQ(f.String("workers"), "9");
  EXPECT_TRUE(f.positional().empty());
}

TEST_F(FlagsTest, UnknownFlagIsAnError) {
  Flags f = Make();
  absl::Status s = Parse(f, {"--nope=1"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--nope"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("=1")));
}

TEST_F(FlagsTest, UnknownFlagNameIsTruncatedInTheError) {
  Flags f = Make();
  const std::string long_name(500, 'x');
  absl::Status s = Parse(f, {"--" + long_name});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u);
}

TEST_F(FlagsTest, MissingValueIsAnError) {
  Flags f = Make();
  absl::Status s = Parse(f, {"--listen"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--listen"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("needs a value"));
}

TEST_F(FlagsTest, ValueLengthLimit) {
  {
    Flags f = Make();
    EXPECT_TRUE(Parse(f, {"--listen=" + std::string(4096, 'a')}).ok());
    EXPECT_EQ(f.String("listen").size(), 4096u);
  }
  {
    Flags f = Make();
    absl::Status s = Parse(f, {"--listen=" + std::string(4097, 'a')});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("--listen"));
    EXPECT_LT(s.message().size(), 200u) << "the value must not be echoed";
  }
  {
    Flags f = Make();
    absl::Status s = Parse(f, {"--listen", std::string(5000, 'a')});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(FlagsTest, IntValidationNamesFlagSourceAndRange) {
  env_["BPS_WORKERS"] = "many";
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {}).ok());
  auto v = f.Int("workers", 1, 64);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string m(v.status().message());
  EXPECT_THAT(m, HasSubstr("\"many\""));
  EXPECT_THAT(m, HasSubstr("--workers"));
  EXPECT_THAT(m, HasSubstr("$BPS_WORKERS"));
  EXPECT_THAT(m, HasSubstr("1"));
  EXPECT_THAT(m, HasSubstr("64"));

  for (const char* bad : {"0", "65", "-1", "4.5", "", "four", "0x10", "99999999999999999999"}) {
    Flags g = Make();
    ASSERT_TRUE(Parse(g, {std::string("--workers=") + bad}).ok());
    auto r = g.Int("workers", 1, 64);
    EXPECT_FALSE(r.ok()) << "\"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("(from --workers)"));
    }
  }
  for (auto [text, want] : std::vector<std::pair<std::string, int64_t>>{{"1", 1}, {"64", 64}, {"+7", 7}}) {
    Flags g = Make();
    ASSERT_TRUE(Parse(g, {"--workers=" + text}).ok());
    auto r = g.Int("workers", 1, 64);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status();
    EXPECT_EQ(*r, want);
  }
}

TEST_F(FlagsTest, DoubleValidation) {
  for (auto [text, want] :
       std::vector<std::pair<std::string, double>>{{"0", 0}, {"1", 1}, {"0.25", 0.25}, {"1e-1", 0.1}}) {
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {"--ratio=" + text}).ok());
    auto r = f.Double("ratio", 0, 1);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status();
    EXPECT_DOUBLE_EQ(*r, want);
  }
  for (const char* bad : {"1.5", "-0.1", "abc", "", "nan", "inf", "-inf"}) {
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {std::string("--ratio=") + bad}).ok());
    auto r = f.Double("ratio", 0, 1);
    EXPECT_FALSE(r.ok()) << "\"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("--ratio"));
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("(from --ratio)"));
    }
  }
}

TEST_F(FlagsTest, DurationValidation) {
  for (auto [text, want] : std::vector<std::pair<std::string, absl::Duration>>{
           {"500ms", absl::Milliseconds(500)},
           {"10s", absl::Seconds(10)},
           {"1m30s", absl::Seconds(90)},
           {"6h", absl::Hours(6)}}) {
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {"--poll=" + text}).ok());
    auto r = f.Duration("poll", absl::Milliseconds(100), absl::Hours(24));
    ASSERT_TRUE(r.ok()) << text << ": " << r.status();
    EXPECT_EQ(*r, want);
  }
  for (const char* bad : {"10", "10x", "-1s", "50ms", "25h", "", "inf"}) {
    Flags f = Make();
    ASSERT_TRUE(Parse(f, {std::string("--poll=") + bad}).ok());
    auto r = f.Duration("poll", absl::Milliseconds(100), absl::Hours(24));
    EXPECT_FALSE(r.ok()) << "\"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("--poll"));
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("(from --poll)"));
    }
  }
  env_["BPS_POLL"] = "soon";
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {}).ok());
  auto r = f.Duration("poll", absl::Milliseconds(100), absl::Hours(24));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("(from $BPS_POLL)"));
}

TEST_F(FlagsTest, LongInvalidValueIsNotEchoedInFull) {
  const std::string value = std::string(100, '9') + "zz";
  env_["BPS_WORKERS"] = value;
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {}).ok());
  auto r = f.Int("workers", 1, 64);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr(value)));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(std::string(64, '9') + "..."));
}

TEST_F(FlagsTest, UnknownNameHasNoValue) {
  Flags f = Make();
  ASSERT_TRUE(Parse(f, {}).ok());
  EXPECT_EQ(f.String("nope"), "");
  EXPECT_EQ(f.Source("nope"), "default");
}

TEST_F(FlagsTest, UsageListsEveryFlagWithEnvAndDefault) {
  Flags f = Make();
  const std::string u = f.Usage();
  EXPECT_THAT(u, HasSubstr("--listen=VALUE"));
  EXPECT_THAT(u, HasSubstr("BPS_LISTEN"));
  EXPECT_THAT(u, HasSubstr("0.0.0.0:50051"));
  EXPECT_THAT(u, HasSubstr("address to listen on"));
  EXPECT_THAT(u, HasSubstr("--verbose\n"));
  EXPECT_THAT(u, Not(HasSubstr("--verbose=VALUE")));
  EXPECT_THAT(u, HasSubstr("--noenv=VALUE"));
}

TEST(FlagsRealEnvTest, ReadsTheProcessEnvironmentByDefault) {
  ::setenv("BPS_FLAGS_TEST_ONLY_VAR", "from-env", 1);
  Flags f({{"x", "BPS_FLAGS_TEST_ONLY_VAR", "dflt", "", false}});
  const char* argv[] = {"prog"};
  ASSERT_TRUE(f.Parse(1, argv).ok());
  EXPECT_EQ(f.String("x"), "from-env");
  ::unsetenv("BPS_FLAGS_TEST_ONLY_VAR");
  EXPECT_EQ(f.String("x"), "dflt");
}


TEST(FlagsDisplayTest, ControlCharactersInValuesAreEscapedInErrors) {
  // Found by fuzz_cli_options: a newline or an escape sequence from an
  // argument or a variable went verbatim into a one-line usage error.
  Flags flags({{"timeout", "BLUEPRINT_SYNC_TIMEOUT", "30s", "deadline"}},
              [](const std::string&) -> std::optional<std::string> { return "1s\n\x1b[2J"; });
  ASSERT_TRUE(flags.Parse(0, nullptr).ok());
  auto d = flags.Duration("timeout", absl::Seconds(1), absl::Hours(1));
  ASSERT_FALSE(d.ok());
  const std::string message(d.status().message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
  EXPECT_NE(message.find("1s\\x0a\\x1b[2J"), std::string::npos) << message;

  const char* argv[] = {"prog", "--bad\nflag"};
  Flags other({});
  const absl::Status s = other.Parse(2, argv);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos) << s.message();
}

}  // namespace
}  // namespace blueprintsync
