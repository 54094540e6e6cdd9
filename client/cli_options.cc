#include "client/cli_options.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/exit_codes.h"
#include "client/printable.h"

namespace blueprintsync::cli {
namespace {

constexpr size_t kMaxValueBytes = 4096;  // as service/common/flags.cc
constexpr char kJobPrefix[] = "syncJobs/";

std::vector<FlagSpec> GlobalSpecs() {
  return {
      {"server", kServerEnv, kDefaultServer, "blueprint-sync service address, HOST:PORT"},
      {"timeout", kTimeoutEnv, "30s",
       "deadline of each call, e.g. 10s or 2m; for watch and sync --wait it bounds only "
       "connecting, not the stream"},
      {"output", "", "text", "text or json (one JSON object per line, protobuf JSON mapping)"},
      {"help", "", "", "show help (also: -h, help COMMAND, COMMAND --help)", true},
  };
}

std::vector<FlagSpec> CommandSpecs(Command command) {
  switch (command) {
    case Command::kSync:
      return {
          {"source-region", "", "", "region of the source blueprint, e.g. ap-guangzhou (required)"},
          {"blueprint-id", "", "", "custom blueprint to copy, e.g. lhbp-ls883feh (required)"},
          {"to", "", "",
           "destination regions, comma-separated; may be repeated: --to R1,R2 --to R3 (required)"},
          {"request-id", "", "",
           "idempotency key (a UUID): repeating the command with it returns the same job"},
          {"validate-only", "", "", "check the request; create nothing", true},
          {"wait", "", "", "follow the job until it SUCCEEDED or FAILED", true},
      };
    case Command::kList:
      return {
          {"filter", "", "",
           "e.g. 'state = RUNNING AND blueprint_id = \"lhbp-ls883feh\"' (fields: state, "
           "blueprint_id, source_region)"},
          {"page-size", "", "0", "jobs per page, 0 to 1000 (0: the server's default, 50)"},
          {"page-token", "", "", "next page token printed by a previous list"},
          {"all", "", "", "follow page tokens until every matching job is listed", true},
      };
    case Command::kGet:
    case Command::kWatch:
    case Command::kHelp:
      return {};
  }
  return {};
}

bool LookupCommand(const std::string& word, Command* command) {
  static const std::pair<const char*, Command> kCommands[] = {
      {"sync", Command::kSync},   {"get", Command::kGet},   {"list", Command::kList},
      {"watch", Command::kWatch}, {"help", Command::kHelp},
  };
  for (const auto& [name, c] : kCommands) {
    if (word == name) {
      *command = c;
      return true;
    }
  }
  return false;
}

const FlagSpec* FindSpec(const std::vector<FlagSpec>& specs, absl::string_view name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// "--name=value" -> "name"; "--name" -> "name".
std::string FlagName(const std::string& arg) {
  const std::string rest = arg.substr(2);
  return rest.substr(0, rest.find('='));
}

absl::Status Usage(absl::string_view message) { return absl::InvalidArgumentError(message); }

// --to may repeat and Flags keeps only the last value of a flag, so its
// values are taken out before Flags sees the rest.
absl::Status ExtractDestinations(const std::vector<std::string>& args,
                                 const std::vector<FlagSpec>& specs, std::vector<std::string>* rest,
                                 std::vector<std::string>* destinations) {
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || !absl::StartsWith(arg, "--")) {
      rest->push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      rest->push_back(arg);
      continue;
    }
    const std::string name = FlagName(arg);
    const bool inline_value = arg.find('=') != std::string::npos;
    if (name != "to") {
      rest->push_back(arg);
      // Keep another flag's value with it, even if it looks like "--to".
      const FlagSpec* spec = FindSpec(specs, name);
      if (spec != nullptr && !spec->is_bool && !inline_value && i + 1 < args.size()) {
        rest->push_back(args[++i]);
      }
      continue;
    }
    std::string value;
    if (inline_value) {
      value = arg.substr(arg.find('=') + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Usage("--to: needs a value, e.g. --to ap-singapore,ap-tokyo");
    }
    if (value.size() > kMaxValueBytes) {
      return Usage(absl::StrCat("--to: longer than ", kMaxValueBytes, " bytes"));
    }
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (part.empty()) {
        return Usage(absl::StrCat("--to: empty region name in \"", Printable(value, 64),
                                  "\"; separate regions with single commas"));
      }
      destinations->emplace_back(part);
    }
  }
  return absl::OkStatus();
}

absl::Status NoPositional(const char* command, const std::vector<std::string>& positional) {
  if (positional.empty()) return absl::OkStatus();
  return Usage(absl::StrCat(command, ": unexpected argument \"", Printable(positional[0], 64),
                            "\" (this command takes only flags)"));
}

}  // namespace

absl::StatusOr<std::string> NormalizeJobName(absl::string_view name) {
  absl::string_view id = name;
  if (absl::StartsWith(id, kJobPrefix)) id.remove_prefix(sizeof(kJobPrefix) - 1);
  if (id.empty()) return Usage("NAME: must be syncJobs/ID or ID, and ID must not be empty");
  if (absl::StrContains(id, '/')) {
    return Usage(
        absl::StrCat("NAME: must be syncJobs/ID or ID, got \"", Printable(name, 64), "\""));
  }
  return absl::StrCat(kJobPrefix, id);
}

absl::StatusOr<CliOptions> ParseCommandLine(const std::vector<std::string>& args,
                                            Flags::Getenv getenv) {
  const std::vector<FlagSpec> global = GlobalSpecs();
  // Every flag any command knows, for a helpful message when one comes
  // before the command.
  std::vector<FlagSpec> all_command_flags;
  for (Command c : {Command::kSync, Command::kList}) {
    for (auto& s : CommandSpecs(c)) all_command_flags.push_back(std::move(s));
  }

  // Find the command word: the first argument that is not a global flag or
  // its value.
  size_t command_index = args.size();
  bool dash_h = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      command_index = i + 1 < args.size() ? i + 1 : args.size();
      break;
    }
    if (arg == "-h") {
      dash_h = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      command_index = i;
      break;
    }
    const std::string name = FlagName(arg);
    const FlagSpec* spec = FindSpec(global, name);
    if (spec == nullptr) {
      if (FindSpec(all_command_flags, name) != nullptr) {
        return Usage(absl::StrCat("--", name,
                                  ": a command flag; put it after the command, e.g. "
                                  "blueprint-sync sync --",
                                  name));
      }
      return Usage(absl::StrCat("unknown flag --", Printable(name, 64), " (see --help)"));
    }
    if (!spec->is_bool && arg.find('=') == std::string::npos) ++i;
  }

  CliOptions options;
  Command command = Command::kHelp;
  std::string command_word;
  if (command_index < args.size()) {
    command_word = args[command_index];
    if (!LookupCommand(command_word, &command)) {
      return Usage(absl::StrCat("unknown command \"", Printable(command_word, 64),
                                "\" (commands: sync, get, list, watch, help)"));
    }
  }

  std::vector<FlagSpec> specs = global;
  for (auto& s : CommandSpecs(command)) specs.push_back(std::move(s));
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i != command_index) rest.push_back(args[i]);
  }
  std::vector<std::string> flag_args;
  if (command == Command::kSync) {
    absl::Status s = ExtractDestinations(rest, specs, &flag_args, &options.destinations);
    if (!s.ok()) return s;
  } else {
    flag_args = rest;
  }

  Flags flags(specs, std::move(getenv));
  std::vector<const char*> argv;
  for (const auto& a : flag_args) argv.push_back(a.c_str());
  if (absl::Status s = flags.Parse(static_cast<int>(argv.size()), argv.data(), 0); !s.ok()) {
    return s;
  }
  auto help = flags.Bool("help");
  if (!help.ok()) return help.status();
  for (const auto& p : flags.positional()) {
    if (p == "-h") dash_h = true;
  }

  if (command_word.empty() && !dash_h && !*help && !args.empty()) {
    return Usage("missing COMMAND (one of sync, get, list, watch; see --help)");
  }
  if (dash_h || *help || command == Command::kHelp) {
    options.command = Command::kHelp;
    if (!command_word.empty() && command != Command::kHelp) {
      options.help_topic = command_word;
    } else {
      for (const auto& p : flags.positional()) {
        if (p != "-h") {
          options.help_topic = p;
          break;
        }
      }
    }
    return options;
  }

  options.command = command;
  options.server = flags.String("server");
  if (options.server.empty() || options.server.find_first_of(" \t\r\n") != std::string::npos) {
    return Usage(absl::StrCat("--server: must be HOST:PORT without spaces (from ",
                              flags.Source("server"), ")"));
  }
  auto timeout = flags.Duration("timeout", absl::Milliseconds(1), absl::Hours(24));
  if (!timeout.ok()) return timeout.status();
  options.timeout = *timeout;
  const std::string output = flags.String("output");
  if (output == "text") {
    options.output = OutputFormat::kText;
  } else if (output == "json") {
    options.output = OutputFormat::kJson;
  } else {
    return Usage(
        absl::StrCat("--output: must be text or json, got \"", Printable(output, 64), "\""));
  }

  const std::vector<std::string>& positional = flags.positional();
  for (const auto& p : positional) {
    if (absl::StartsWith(p, "-") && p.size() > 1) {
      return Usage(absl::StrCat("unknown flag ", Printable(p, 64), " (flags start with --)"));
    }
  }

  switch (command) {
    case Command::kSync: {
      if (absl::Status s = NoPositional("sync", positional); !s.ok()) return s;
      options.source_region = flags.String("source-region");
      options.blueprint_id = flags.String("blueprint-id");
      options.request_id = flags.String("request-id");
      if (options.source_region.empty()) {
        return Usage(
            "--source-region: required (the region of the source blueprint, e.g. "
            "ap-guangzhou)");
      }
      if (options.blueprint_id.empty()) {
        return Usage(
            "--blueprint-id: required (the custom blueprint to copy, e.g. "
            "lhbp-ls883feh)");
      }
      if (options.destinations.empty()) {
        return Usage("--to: at least one destination region is required");
      }
      auto validate_only = flags.Bool("validate-only");
      if (!validate_only.ok()) return validate_only.status();
      auto wait = flags.Bool("wait");
      if (!wait.ok()) return wait.status();
      options.validate_only = *validate_only;
      options.wait = *wait;
      if (options.wait && options.validate_only) {
        return Usage("--wait: cannot be combined with --validate-only, which creates no job");
      }
      break;
    }
    case Command::kGet:
    case Command::kWatch: {
      if (positional.size() != 1) {
        return Usage(absl::StrCat(command_word,
                                  ": expects exactly one NAME (syncJobs/ID or ID), got ",
                                  positional.size()));
      }
      auto name = NormalizeJobName(positional[0]);
      if (!name.ok()) return name.status();
      options.name = *std::move(name);
      break;
    }
    case Command::kList: {
      if (absl::Status s = NoPositional("list", positional); !s.ok()) return s;
      auto page_size = flags.Int("page-size", 0, 1000);
      if (!page_size.ok()) return page_size.status();
      auto all = flags.Bool("all");
      if (!all.ok()) return all.status();
      options.page_size = static_cast<int32_t>(*page_size);
      options.all = *all;
      options.filter = flags.String("filter");
      options.page_token = flags.String("page-token");
      break;
    }
    case Command::kHelp:
      break;
  }
  return options;
}

std::string HelpText(const std::string& topic) {
  Command command = Command::kHelp;
  const bool known = LookupCommand(topic, &command) && command != Command::kHelp;
  const std::string global_flags = Flags(GlobalSpecs()).Usage();
  const std::string exit_codes = absl::StrCat(
      "Exit codes:\n"
      "  ",
      static_cast<int>(kExitOk),
      "  success (sync: the job was accepted; sync --wait and watch: the job SUCCEEDED)\n"
      "  ",
      static_cast<int>(kExitJobFailed),
      "  sync --wait or watch: the job ended FAILED\n"
      "  ",
      static_cast<int>(kExitUsage),
      "  usage error: unknown flag, missing or invalid value\n"
      "  ",
      static_cast<int>(kExitRpcError),
      "  RPC error: the service could not be reached or rejected the call\n");
  if (!known) {
    return absl::StrCat(
        "blueprint-sync: copy Lighthouse custom images (blueprints) to other regions\n"
        "through the blueprint-sync service, and follow the copies.\n"
        "\n"
        "Usage:\n"
        "  blueprint-sync [global flags] COMMAND [flags]\n"
        "\n"
        "Commands:\n"
        "  sync    start copying a blueprint to other regions (--wait to follow it)\n"
        "  get     show one job: get NAME\n"
        "  list    list jobs, newest first\n"
        "  watch   follow a job until it ends: watch NAME\n"
        "  help    help for a command: help COMMAND\n"
        "\n"
        "NAME is syncJobs/ID or just ID.\n"
        "\n"
        "Global flags (also accepted after the command):\n",
        global_flags, "\n", exit_codes,
        "\n"
        "Example:\n"
        "  blueprint-sync sync --source-region ap-guangzhou --blueprint-id lhbp-ls883feh \\\n"
        "      --to ap-singapore,ap-tokyo --wait\n");
  }
  const std::string command_flags = Flags(CommandSpecs(command)).Usage();
  std::string usage;
  std::string about;
  switch (command) {
    case Command::kSync:
      usage =
          "blueprint-sync sync --source-region R --blueprint-id ID --to R1,R2 [--to R3]\n"
          "                    [--request-id UUID] [--validate-only] [--wait]";
      about =
          "Starts copying a custom blueprint to other regions and prints the job.\n"
          "With --wait, follows the job until it ends and shows each destination's\n"
          "progress: a table redrawn in place on a terminal, one line per change\n"
          "otherwise, one JSON object per update with --output json. If the\n"
          "connection breaks, the watch reconnects for up to 2 minutes.";
      break;
    case Command::kGet:
      usage = "blueprint-sync get NAME";
      about = "Prints one job.";
      break;
    case Command::kList:
      usage = "blueprint-sync list [--filter EXPR] [--page-size N] [--page-token T] [--all]";
      about = "Lists jobs, newest first, one page at a time unless --all is given.";
      break;
    case Command::kWatch:
      usage = "blueprint-sync watch NAME";
      about = "Follows a job until it SUCCEEDED or FAILED, as sync --wait does.";
      break;
    case Command::kHelp:
      break;
  }
  return absl::StrCat("Usage:\n  ", usage, "\n\n", about, "\n\n",
                      command_flags.empty() ? "" : absl::StrCat("Flags:\n", command_flags, "\n"),
                      "Global flags:\n", global_flags, "\n", exit_codes);
}

}  // namespace blueprintsync::cli
