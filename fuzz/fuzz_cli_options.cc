// Fuzz target: the blueprint-sync CLI's argument parsing
// (client/cli_options.h ParseCommandLine, NormalizeJobName), fed argument
// lists and BLUEPRINT_SYNC_SERVER / BLUEPRINT_SYNC_TIMEOUT values taken from
// the input. Arguments are picked from the CLI's own vocabulary (commands,
// flags, --flag=value) or are raw bytes. Checked:
//   - errors are InvalidArgument with a one-line message of at most
//     kMaxMessage bytes (arguments are shown cut and made printable);
//   - a parsed command line satisfies what cli.cc relies on: sync has a
//     source region, a blueprint id and non-empty, trimmed, comma-free
//     destinations, and not both --wait and --validate-only; get/watch have a
//     "syncJobs/ID" name; list's page size is 0..1000; the server has no
//     whitespace and the timeout is 1 ms..24 h;
//   - parsing is deterministic.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "client/cli_options.h"
#include "fuzz/fuzz_check.h"

namespace {

namespace cli = blueprintsync::cli;

constexpr size_t kMaxMessage = 512;

const char* const kWords[] = {
    "sync",           "get",           "list",         "watch",      "help",
    "-h",             "--",            "--help",       "--server",   "--timeout",
    "--output",       "--source-region", "--blueprint-id", "--to",    "--request-id",
    "--validate-only", "--wait",        "--filter",     "--page-size", "--page-token",
    "--all",          "json",          "text",         "ap-guangzhou", "ap-singapore,ap-tokyo",
    "lhbp-ls883feh",  "syncJobs/abc",  "10s",          "127.0.0.1:50051",
};

std::string Arg(FuzzedDataProvider& fdp) {
  switch (fdp.ConsumeIntegralInRange(0, 2)) {
    case 0:
      return kWords[fdp.ConsumeIntegralInRange<size_t>(0, std::size(kWords) - 1)];
    case 1:
      return std::string(kWords[fdp.ConsumeIntegralInRange<size_t>(0, std::size(kWords) - 1)]) +
             "=" + fdp.ConsumeRandomLengthString(5000);
    default:
      return fdp.ConsumeRandomLengthString(5000);
  }
}

bool HasSpace(const std::string& s) { return s.find_first_of(" \t\r\n") != std::string::npos; }

void CheckOptions(const cli::CliOptions& o) {
  if (o.command == cli::Command::kHelp) return;
  FUZZ_CHECK(!o.server.empty() && !HasSpace(o.server), "server is HOST:PORT without spaces");
  FUZZ_CHECK(o.timeout >= absl::Milliseconds(1) && o.timeout <= absl::Hours(24),
             "timeout within 1ms..24h");
  switch (o.command) {
    case cli::Command::kSync:
      FUZZ_CHECK(!o.source_region.empty(), "sync has a source region");
      FUZZ_CHECK(!o.blueprint_id.empty(), "sync has a blueprint id");
      FUZZ_CHECK(!o.destinations.empty(), "sync has destinations");
      for (const std::string& d : o.destinations) {
        FUZZ_CHECK(!d.empty() && d.find(',') == std::string::npos, "destinations are split");
        FUZZ_CHECK(!absl::ascii_isspace(static_cast<unsigned char>(d.front())) &&
                       !absl::ascii_isspace(static_cast<unsigned char>(d.back())),
                   "destinations are trimmed");
      }
      FUZZ_CHECK(!(o.wait && o.validate_only), "--wait excludes --validate-only");
      break;
    case cli::Command::kGet:
    case cli::Command::kWatch:
    case cli::Command::kCancel:
    case cli::Command::kRetry:
    case cli::Command::kDelete:
      FUZZ_CHECK(absl::StartsWith(o.name, "syncJobs/") && o.name.size() > 9 &&
                     o.name.find('/', 9) == std::string::npos,
                 "commands on one job have a syncJobs/ID name");
      break;
    case cli::Command::kList:
    case cli::Command::kPolicyList:
      FUZZ_CHECK(o.page_size >= 0 && o.page_size <= 1000, "page size 0..1000");
      break;
    case cli::Command::kPolicyGet:
    case cli::Command::kPolicyUpdate:
    case cli::Command::kPolicyDelete:
      FUZZ_CHECK(absl::StartsWith(o.name, "syncPolicies/") && o.name.size() > 13 &&
                     o.name.find('/', 13) == std::string::npos,
                 "commands on one policy have a syncPolicies/ID name");
      break;
    case cli::Command::kPolicyCreate:
      FUZZ_CHECK(!o.policy_id.empty() && o.policy_id.find('/') == std::string::npos,
                 "policy create has a bare id");
      FUZZ_CHECK(!o.source_region.empty(), "policy create has a source region");
      FUZZ_CHECK(!o.destinations.empty(), "policy create has destinations");
      break;
    case cli::Command::kCompletion:
      FUZZ_CHECK(o.completion_shell == "bash" || o.completion_shell == "zsh",
                 "completion is for bash or zsh");
      break;
    case cli::Command::kHelp:
    case cli::Command::kVersion:
      break;
  }
}

bool Same(const cli::CliOptions& a, const cli::CliOptions& b) {
  return a.command == b.command && a.help_topic == b.help_topic && a.server == b.server &&
         a.timeout == b.timeout && a.output == b.output && a.source_region == b.source_region &&
         a.blueprint_id == b.blueprint_id && a.destinations == b.destinations &&
         a.request_id == b.request_id && a.validate_only == b.validate_only && a.wait == b.wait &&
         a.name == b.name && a.filter == b.filter && a.page_size == b.page_size &&
         a.page_token == b.page_token && a.all == b.all && a.labels == b.labels &&
         a.job_timeout == b.job_timeout && a.keep_failed_copies == b.keep_failed_copies &&
         a.order_by == b.order_by;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  std::map<std::string, std::string> env;
  if (fdp.ConsumeBool()) env[cli::kServerEnv] = fdp.ConsumeRandomLengthString(200);
  if (fdp.ConsumeBool()) env[cli::kTimeoutEnv] = fdp.ConsumeRandomLengthString(64);
  const size_t n = fdp.ConsumeIntegralInRange<size_t>(0, 12);
  std::vector<std::string> args;
  for (size_t i = 0; i < n; ++i) args.push_back(Arg(fdp));
  auto getenv = [&env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };

  absl::StatusOr<cli::CliOptions> parsed = cli::ParseCommandLine(args, getenv);
  absl::StatusOr<cli::CliOptions> again = cli::ParseCommandLine(args, getenv);
  FUZZ_CHECK(parsed.ok() == again.ok(), "parsing is deterministic");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
               "usage errors are InvalidArgument");
    FUZZ_CHECK_SHOW(parsed.status().message().size() <= kMaxMessage, "usage errors are bounded",
                    parsed.status().message());
    FUZZ_CHECK_SHOW(parsed.status().message().find('\n') == absl::string_view::npos,
                    "usage errors are one line", parsed.status().message());
    FUZZ_CHECK(parsed.status() == again.status(), "parsing is deterministic");
  } else {
    CheckOptions(*parsed);
    FUZZ_CHECK(Same(*parsed, *again), "parsing is deterministic");
    if (parsed->command == cli::Command::kHelp) {
      FUZZ_CHECK(!cli::HelpText(parsed->help_topic).empty(), "help text exists");
    }
  }

  const std::string name = args.empty() ? std::string() : args.back();
  if (auto job = cli::NormalizeJobName(name); job.ok()) {
    FUZZ_CHECK(absl::StartsWith(*job, "syncJobs/") && job->size() > 9 &&
                   job->find('/', 9) == std::string::npos,
               "NormalizeJobName gives syncJobs/ID");
    FUZZ_CHECK(cli::NormalizeJobName(*job).value_or("") == *job, "NormalizeJobName is idempotent");
  } else {
    FUZZ_CHECK(job.status().message().size() <= kMaxMessage, "name errors are bounded");
  }
  return 0;
}
