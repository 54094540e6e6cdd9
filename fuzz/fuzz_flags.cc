// Fuzz target: blueprintsync::Flags (service/common/flags.h), the command-line
// and environment parser of blueprint-syncd, whose values come from
// operators, ConfigMaps and scripts. The input is split by FuzzedDataProvider
// into an argv (flag names picked from blueprint-syncd's own set, so values
// reach the typed getters, mixed with raw bytes) and an environment served by
// the injected getenv. Checked:
//   - Parse and every getter fail with InvalidArgument only, with a message of
//     at most kMaxMessage bytes (values are shown cut, never in full);
//   - a getter's error names the flag;
//   - String() is at most 4096 bytes, whatever the environment holds;
//   - Int/Double/Duration results lie within [min, max] (never NaN);
//   - Bool() accepts exactly the documented spellings;
//   - Source() is "--name", "$ENV" or "default", and agrees with where the
//     value came from.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "fuzz/fuzz_check.h"
#include "service/common/flags.h"

namespace {

using blueprintsync::Flags;
using blueprintsync::FlagSpec;

constexpr size_t kMaxMessage = 512;
constexpr size_t kMaxValueBytes = 4096;

// A subset of blueprint-syncd's flags, one of each kind.
std::vector<FlagSpec> Specs() {
  return {
      {"listen", "BLUEPRINT_SYNC_LISTEN", "0.0.0.0:50051", "address"},
      {"poll-interval", "BLUEPRINT_SYNC_POLL_INTERVAL", "10s", "poll"},
      {"sync-rate", "BLUEPRINT_SYNC_SYNC_RATE", "20", "rate"},
      {"workers", "BLUEPRINT_SYNC_WORKERS", "4", "workers"},
      {"log-level", "BLUEPRINT_SYNC_LOG_LEVEL", "info", "level"},
      {"store", "", "sqlite:./data/blueprint-sync.db", "store"},
      {"help", "", "", "help", true},
  };
}

void CheckError(const absl::Status& s, const std::string& flag) {
  FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "errors are InvalidArgument");
  FUZZ_CHECK_SHOW(s.message().size() <= kMaxMessage, "error messages are bounded", s.message());
  if (!flag.empty()) {
    FUZZ_CHECK_SHOW(absl::StrContains(s.message(), "--" + flag), "a getter's error names the flag",
                    s.message());
  }
}

std::string Arg(FuzzedDataProvider& fdp, const std::vector<FlagSpec>& specs) {
  const FlagSpec& spec = specs[fdp.ConsumeIntegralInRange<size_t>(0, specs.size() - 1)];
  switch (fdp.ConsumeIntegralInRange(0, 3)) {
    case 0:
      return "--" + spec.name;
    case 1:
      return "--" + spec.name + "=" + fdp.ConsumeRandomLengthString(kMaxValueBytes + 8);
    case 2:
      return "--";
    default:
      return fdp.ConsumeRandomLengthString(kMaxValueBytes + 8);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const std::vector<FlagSpec> specs = Specs();

  std::map<std::string, std::string> env;
  for (const FlagSpec& s : specs) {
    if (!s.env.empty() && fdp.ConsumeBool()) {
      env[s.env] = fdp.ConsumeRandomLengthString(2 * kMaxValueBytes);
    }
  }
  std::vector<std::string> args = {"blueprint-syncd"};
  const size_t argc = fdp.ConsumeIntegralInRange<size_t>(0, 12);
  for (size_t i = 0; i < argc; ++i) args.push_back(Arg(fdp, specs));
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());

  Flags flags(specs, [&env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  const absl::Status parsed = flags.Parse(static_cast<int>(argv.size()), argv.data());
  if (!parsed.ok()) {
    CheckError(parsed, "");
    return 0;
  }
  FUZZ_CHECK(flags.positional().size() < args.size(), "positionals come from argv");

  for (const FlagSpec& s : specs) {
    const std::string value = flags.String(s.name);
    FUZZ_CHECK(value.size() <= kMaxValueBytes, "values are capped at 4096 bytes");
    const std::string source = flags.Source(s.name);
    FUZZ_CHECK(source == "--" + s.name || source == "$" + s.env || source == "default",
               "Source() is --name, $ENV or default");
    if (source == "default") {
      FUZZ_CHECK(value == s.default_value, "a default-sourced value is the default");
    } else if (source == "$" + s.env) {
      FUZZ_CHECK(!s.env.empty() && env.count(s.env) == 1, "$ENV source means the env is set");
      FUZZ_CHECK(env[s.env].compare(0, value.size(), value) == 0,
                 "an env-sourced value is (a prefix of) the env value");
    }
  }

  if (auto v = flags.Int("workers", 1, 64); v.ok()) {
    FUZZ_CHECK(*v >= 1 && *v <= 64, "Int() within [min, max]");
  } else {
    CheckError(v.status(), "workers");
  }
  if (auto v = flags.Int("listen", INT64_MIN, INT64_MAX); !v.ok()) {
    CheckError(v.status(), "listen");
  }
  if (auto v = flags.Double("sync-rate", 0.1, 1000); v.ok()) {
    FUZZ_CHECK(!std::isnan(*v) && *v >= 0.1 && *v <= 1000, "Double() within [min, max]");
  } else {
    CheckError(v.status(), "sync-rate");
  }
  if (auto v = flags.Duration("poll-interval", absl::Milliseconds(100), absl::Hours(1)); v.ok()) {
    FUZZ_CHECK(*v >= absl::Milliseconds(100) && *v <= absl::Hours(1),
               "Duration() within [min, max]");
  } else {
    CheckError(v.status(), "poll-interval");
  }
  if (auto v = flags.Duration("log-level", -absl::InfiniteDuration(), absl::InfiniteDuration());
      !v.ok()) {
    CheckError(v.status(), "log-level");
  }
  for (const char* name : {"help", "store", "log-level"}) {
    const std::string text = flags.String(name);
    auto v = flags.Bool(name);
    const bool truthy = text == "true" || text == "1" || text == "yes";
    const bool falsy = text == "false" || text == "0" || text == "no" || text.empty();
    if (v.ok()) {
      FUZZ_CHECK(truthy || falsy, "Bool() accepts only the documented spellings");
      FUZZ_CHECK(*v == truthy, "Bool() value matches the spelling");
    } else {
      FUZZ_CHECK(!truthy && !falsy, "Bool() rejects only other spellings");
      CheckError(v.status(), name);
    }
  }
  FUZZ_CHECK(!flags.Usage().empty(), "usage text exists");
  return 0;
}
