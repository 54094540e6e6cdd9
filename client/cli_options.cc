#include "client/cli_options.h"

#include <algorithm>
#include <map>
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
#include "client/suggest.h"

namespace blueprintsync::cli {
namespace {

constexpr size_t kMaxValueBytes = 4096;  // as service/common/flags.cc
// --timeout's default; the help text of the global flags says "30s".
constexpr absl::Duration kDefaultCallTimeout = absl::Seconds(30);
constexpr char kJobPrefix[] = "syncJobs/";
constexpr char kPolicyPrefix[] = "syncPolicies/";

std::vector<FlagSpec> GlobalSpecs() {
  return {
      {"server", kServerEnv, kDefaultServer, "blueprint-sync service address, HOST:PORT"},
      {"timeout", kTimeoutEnv, "30s",
       "deadline of each call, e.g. 10s or 2m; sync and retry send a call that timed out "
       "again (same request id, up to 5 attempts); for watch and --wait it bounds only "
       "connecting, not the stream; for policy get --wait, given on the command line, the "
       "whole wait"},
      {"output", "", "text",
       "also -o: text, json (one JSON object per line, protobuf JSON mapping; a list is one "
       "object whose list is [] when empty; watch and --wait: one object per update), name "
       "(only the names of jobs or policies, one per line) or wide (text with more columns)"},
      {"tls", kTlsEnv, "",
       "connect with TLS, trusting the system's CA roots (implied by --cacert, --cert, --key, "
       "--server-name)",
       true},
      {"cacert", kCacertEnv, "", "PEM CA bundle that signed the server's certificate"},
      {"cert", kCertEnv, "", "PEM client certificate chain for mTLS (with --key)"},
      {"key", kKeyEnv, "", "PEM private key of --cert, unencrypted (never printed)"},
      {"server-name", kServerNameEnv, "",
       "name to verify in the server's certificate instead of --server's host, e.g. "
       "blueprint-sync.test"},
      {"version", "", "", "print the CLI's version and the API it speaks", true},
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
           "idempotency key (a UUID): repeating the command with it returns the same job; "
           "default: a new random UUID, printed to stderr"},
          {"label", "", "",
           "KEY=VALUE label for the job, filterable in list; may be repeated (at most 32)"},
          {"job-timeout", "", "",
           "how long the job may take before unfinished destinations fail, e.g. 90m; "
           "default: the server's --job-deadline, at most its --max-job-timeout"},
          {"keep-failed-copies", "", "",
           "keep the copies of destinations that fail (for investigation) instead of deleting "
           "them; =false asks for deletion; default: the server's",
           true},
          {"validate-only", "", "",
           "check the request and the source blueprint; create nothing; prints how many jobs "
           "on the same source are ahead",
           true},
          {"wait", "", "", "follow the job until it SUCCEEDED, FAILED or CANCELLED", true},
      };
    case Command::kCancel:
      return {
          {"wait", "", "", "follow the job until it is CANCELLED (its copies deleted)", true},
      };
    case Command::kRetry:
      return {
          {"request-id", "", "",
           "idempotency key (a UUID) for the new job; default: a new random UUID, printed to "
           "stderr"},
          {"wait", "", "", "follow the new job until it SUCCEEDED, FAILED or CANCELLED", true},
      };
    case Command::kList:
      return {
          {"filter", "", "",
           "conditions joined by AND, e.g. 'state = RUNNING AND labels.team = web' (fields "
           "above)"},
          {"order-by", "", "",
           "\"create_time desc\" (newest first) or \"create_time\" (oldest first); "
           "default: the server's, newest first"},
          {"page-size", "", "0", "jobs per page, 0 to 1000 (0: the server's default, 50)"},
          {"page-token", "", "", "next page token printed by a previous list"},
          {"all", "", "", "follow page tokens until every matching job is listed", true},
      };
    case Command::kPolicyCreate:
      return {
          {"source-region", "", "", "region of the source, e.g. ap-guangzhou (required)"},
          {"blueprint-id", "", "", "one fixed custom blueprint to keep copied, e.g. lhbp-ls883feh"},
          {"blueprint-name", "", "",
           "an image family instead: the newest NORMAL custom blueprint with exactly this "
           "name in --source-region, followed to each new version"},
          {"to", "", "",
           "destination regions, comma-separated; may be repeated: --to R1,R2 --to R3 (required)"},
          {"keep-versions", "", "0",
           "copies made by the policy to keep per region, newest first; older ones are deleted "
           "once the newest is NORMAL; 0 keeps all (at most 100)"},
          {"paused", "", "", "create it paused: no upstream call until it is resumed", true},
          {"label", "", "",
           "KEY=VALUE label for the policy, filterable in policy list; may be repeated (at "
           "most 32)"},
          {"validate-only", "", "", "check the policy; create nothing", true},
      };
    case Command::kPolicyGet:
      return {
          {"wait", "", "",
           "ask again until the policy is in sync (exit 0) or a region FAILED (exit 1); "
           "--timeout bounds the whole wait (exit 4)",
           true},
          {"poll-interval", "", "2s", "with --wait: how often to ask, 1s to 10m"},
      };
    case Command::kPolicyList:
      return {
          {"filter", "", "",
           "conditions joined by AND, e.g. 'in_sync = false AND labels.team = web'"},
          {"page-size", "", "0", "policies per page, 0 to 1000 (0: the server's default, 50)"},
          {"page-token", "", "", "next page token printed by a previous policy list"},
          {"all", "", "", "follow page tokens until every matching policy is listed", true},
      };
    case Command::kPolicyUpdate:
      return {
          {"to", "", "",
           "the new destination regions (replacing the old ones), comma-separated; may be "
           "repeated"},
          {"keep-versions", "", "0", "copies to keep per region, 0 (all) to 100"},
          {"paused", "", "", "pause the policy: no upstream call until it is resumed", true},
          {"resume", "", "", "resume a paused policy", true},
          {"label", "", "", "KEY=VALUE; the labels given replace every label; may be repeated"},
          {"etag", "", "", "fail (ABORTED) if the policy changed since it showed this etag"},
      };
    case Command::kPolicyDelete:
      return {
          {"delete-copies", "", "",
           "also delete every copy the policy made (never its source, never a copy it did not "
           "make)",
           true},
          {"etag", "", "", "fail (ABORTED) if the policy changed since it showed this etag"},
      };
    case Command::kGet:
    case Command::kWatch:
    case Command::kDelete:
    case Command::kHelp:
    case Command::kVersion:
    case Command::kCompletion:
      return {};
  }
  return {};
}

constexpr char kCommandList[] =
    "sync, get, list, watch, cancel, retry, delete, policy, completion, help";
constexpr char kPolicyGroup[] = "policy";
constexpr char kPolicySubcommandList[] = "create, get, list, update, delete";

// Every command by the words that name it; policy subcommands as
// "policy create" etc.
const std::vector<std::pair<std::string, Command>>& Commands() {
  static const auto* const commands = new std::vector<std::pair<std::string, Command>>{
      {"sync", Command::kSync},
      {"get", Command::kGet},
      {"list", Command::kList},
      {"watch", Command::kWatch},
      {"cancel", Command::kCancel},
      {"retry", Command::kRetry},
      {"delete", Command::kDelete},
      {"policy create", Command::kPolicyCreate},
      {"policy get", Command::kPolicyGet},
      {"policy list", Command::kPolicyList},
      {"policy update", Command::kPolicyUpdate},
      {"policy delete", Command::kPolicyDelete},
      {"completion", Command::kCompletion},
      {"help", Command::kHelp},
  };
  return *commands;
}

bool LookupCommand(const std::string& words, Command* command) {
  for (const auto& [name, c] : Commands()) {
    if (words == name) {
      *command = c;
      return true;
    }
  }
  return false;
}

// The words that may come first: the commands and the "policy" group.
std::vector<std::string> TopLevelWords() {
  std::vector<std::string> words;
  for (const auto& [name, c] : Commands()) {
    const std::string first = name.substr(0, name.find(' '));
    if (std::find(words.begin(), words.end(), first) == words.end()) words.push_back(first);
  }
  return words;
}

std::vector<std::string> PolicySubcommands() {
  std::vector<std::string> words;
  for (const auto& [name, c] : Commands()) {
    if (absl::StartsWith(name, "policy ")) words.push_back(name.substr(7));
  }
  return words;
}

std::vector<std::string> SpecNames(const std::vector<FlagSpec>& specs) {
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  return names;
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

// "-o X", "-oX" and "-o=X" are --output X (kubectl's short form). Values of
// other flags are left alone, even when they look like "-o".
std::vector<std::string> ExpandShortOutput(const std::vector<std::string>& args,
                                           const std::vector<FlagSpec>& known) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (absl::StartsWith(arg, "--")) {
      out.push_back(arg);
      const FlagSpec* spec = FindSpec(known, FlagName(arg));
      if (spec != nullptr && !spec->is_bool && arg.find('=') == std::string::npos &&
          i + 1 < args.size()) {
        out.push_back(args[++i]);
      }
      continue;
    }
    if (arg == "-o") {
      out.push_back("--output");
    } else if (absl::StartsWith(arg, "-o=")) {
      out.push_back(absl::StrCat("--output=", arg.substr(3)));
    } else if (absl::StartsWith(arg, "-o") && arg.size() > 2) {
      out.push_back(absl::StrCat("--output=", arg.substr(2)));
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

// Every --flag in `args` must be one of `specs`; the error names the
// unknown one and the closest known one.
absl::Status CheckFlagNames(const std::vector<std::string>& args,
                            const std::vector<FlagSpec>& specs, const std::string& command_word) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (!absl::StartsWith(arg, "--")) continue;
    const std::string name = FlagName(arg);
    const FlagSpec* spec = FindSpec(specs, name);
    if (spec == nullptr) {
      return Usage(absl::StrCat("unknown flag --", Printable(name, 64),
                                command_word.empty() ? "" : absl::StrCat(" for ", command_word),
                                DidYouMean(name, SpecNames(specs), "--"), " (see ",
                                command_word.empty() ? "" : absl::StrCat(command_word, " "),
                                "--help)"));
    }
    if (!spec->is_bool && arg.find('=') == std::string::npos) ++i;
  }
  return absl::OkStatus();
}

// Flags that may repeat (--to, --label). Flags keeps only the last value of
// a flag, so their values are taken out, in order, before Flags sees the
// rest.
absl::Status ExtractRepeated(const std::vector<std::string>& args,
                             const std::vector<FlagSpec>& specs,
                             const std::map<std::string, std::string>& repeated_examples,
                             std::vector<std::string>* rest,
                             std::map<std::string, std::vector<std::string>>* values) {
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
    const auto repeated = repeated_examples.find(name);
    if (repeated == repeated_examples.end()) {
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
      return Usage(
          absl::StrCat("--", name, ": needs a value, e.g. --", name, " ", repeated->second));
    }
    if (value.size() > kMaxValueBytes) {
      return Usage(absl::StrCat("--", name, ": longer than ", kMaxValueBytes, " bytes"));
    }
    (*values)[name].push_back(std::move(value));
  }
  return absl::OkStatus();
}

// "R1,R2" values of --to, in order.
absl::Status SplitDestinations(const std::vector<std::string>& values,
                               std::vector<std::string>* destinations) {
  for (const std::string& value : values) {
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

bool IsLabelChar(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; }

// The shape of a label only (characters, lengths, count, no duplicate); the
// service checks the full Kubernetes rules and says which one was broken.
absl::Status ParseLabels(const std::vector<std::string>& values,
                         std::map<std::string, std::string>* labels) {
  constexpr size_t kMaxLabels = 32;
  constexpr size_t kMaxKeyBytes = 253 + 1 + 63;  // DNS-subdomain prefix, "/", name
  constexpr size_t kMaxValueChars = 63;
  for (const std::string& label : values) {
    const size_t eq = label.find('=');
    if (eq == std::string::npos) {
      return Usage(absl::StrCat("--label: must be KEY=VALUE, e.g. team=web, got \"",
                                Printable(label, 64), "\""));
    }
    const std::string key = label.substr(0, eq);
    const std::string value = label.substr(eq + 1);
    const bool key_ok =
        !key.empty() && key.size() <= kMaxKeyBytes &&
        std::count(key.begin(), key.end(), '/') <= 1 &&
        std::all_of(key.begin(), key.end(), [](char c) { return IsLabelChar(c) || c == '/'; });
    if (!key_ok) {
      return Usage(absl::StrCat("--label: key \"", Printable(key, 64),
                                "\" must be 1 to 317 letters, digits, '.', '_', '-', with at "
                                "most one '/' after a prefix"));
    }
    if (value.size() > kMaxValueChars || !std::all_of(value.begin(), value.end(), IsLabelChar)) {
      return Usage(absl::StrCat("--label: value of \"", Printable(key, 64),
                                "\" must be 0 to 63 letters, digits, '.', '_' or '-'"));
    }
    if (!labels->emplace(key, value).second) {
      return Usage(absl::StrCat("--label: key \"", Printable(key, 64), "\" given twice"));
    }
  }
  if (labels->size() > kMaxLabels) {
    return Usage(absl::StrCat("--label: at most ", kMaxLabels, " labels, got ", labels->size()));
  }
  return absl::OkStatus();
}

// "PREFIX/ID" or "ID" (PREFIX ends with '/') -> "PREFIX/ID".
absl::StatusOr<std::string> NormalizeName(absl::string_view prefix, absl::string_view name) {
  absl::string_view id = name;
  if (absl::StartsWith(id, prefix)) id.remove_prefix(prefix.size());
  if (id.empty()) {
    return Usage(absl::StrCat("NAME: must be ", prefix, "ID or ID, and ID must not be empty"));
  }
  if (absl::StrContains(id, '/')) {
    return Usage(
        absl::StrCat("NAME: must be ", prefix, "ID or ID, got \"", Printable(name, 64), "\""));
  }
  return absl::StrCat(prefix, id);
}

// The one NAME a command takes.
absl::StatusOr<std::string> OneName(const std::string& command_word,
                                    const std::vector<std::string>& positional, bool policy) {
  const char* const prefix = policy ? kPolicyPrefix : kJobPrefix;
  if (positional.size() != 1) {
    return Usage(absl::StrCat(command_word, ": expects exactly one NAME (", prefix,
                              "ID or ID), got ", positional.size()));
  }
  return policy ? NormalizePolicyName(positional[0]) : NormalizeJobName(positional[0]);
}

absl::Status NoPositional(const char* command, const std::vector<std::string>& positional) {
  if (positional.empty()) return absl::OkStatus();
  return Usage(absl::StrCat(command, ": unexpected argument \"", Printable(positional[0], 64),
                            "\" (this command takes only flags)"));
}

// A flag given on the command line or in the environment.
bool Given(const Flags& flags, const std::string& name) { return flags.Source(name) != "default"; }

// The flags and arguments of the policy subcommands, after the global ones.
absl::Status ParsePolicyCommand(Command command, const std::string& command_word,
                                const Flags& flags,
                                std::map<std::string, std::vector<std::string>>& repeated,
                                CliOptions* options) {
  const std::vector<std::string>& positional = flags.positional();
  auto parse_keep_versions = [&]() -> absl::Status {
    if (!Given(flags, "keep-versions")) return absl::OkStatus();
    auto keep = flags.Int("keep-versions", 0, 100);
    if (!keep.ok()) return keep.status();
    options->keep_versions = static_cast<int32_t>(*keep);
    return absl::OkStatus();
  };
  switch (command) {
    case Command::kPolicyCreate: {
      if (positional.size() != 1) {
        return Usage(absl::StrCat(
            "policy create: expects exactly one ID, the new policy's (e.g. web-golden), got ",
            positional.size()));
      }
      auto name = NormalizePolicyName(positional[0]);
      if (!name.ok()) return name.status();
      options->name = *name;
      options->policy_id = name->substr(sizeof(kPolicyPrefix) - 1);
      options->source_region = flags.String("source-region");
      options->blueprint_id = flags.String("blueprint-id");
      options->blueprint_name = flags.String("blueprint-name");
      if (options->source_region.empty()) {
        return Usage("--source-region: required (the region of the source, e.g. ap-guangzhou)");
      }
      if (!options->blueprint_id.empty() && !options->blueprint_name.empty()) {
        return Usage(
            "--blueprint-id, --blueprint-name: give one, not both (one fixed image, or a family "
            "followed to each new version)");
      }
      if (options->blueprint_id.empty() && options->blueprint_name.empty()) {
        return Usage(
            "--blueprint-id or --blueprint-name: one is required (one fixed image, e.g. "
            "lhbp-ls883feh, or a family by name, e.g. web-golden)");
      }
      if (absl::Status s = SplitDestinations(repeated["to"], &options->destinations); !s.ok()) {
        return s;
      }
      if (options->destinations.empty()) {
        return Usage("--to: at least one destination region is required");
      }
      if (absl::Status s = parse_keep_versions(); !s.ok()) return s;
      auto paused = flags.Bool("paused");
      if (!paused.ok()) return paused.status();
      if (Given(flags, "paused")) options->paused = *paused;
      if (absl::Status s = ParseLabels(repeated["label"], &options->labels); !s.ok()) return s;
      auto validate_only = flags.Bool("validate-only");
      if (!validate_only.ok()) return validate_only.status();
      options->validate_only = *validate_only;
      return absl::OkStatus();
    }
    case Command::kPolicyGet: {
      auto name = OneName(command_word, positional, /*policy=*/true);
      if (!name.ok()) return name.status();
      options->name = *std::move(name);
      auto wait = flags.Bool("wait");
      if (!wait.ok()) return wait.status();
      options->wait = *wait;
      if (Given(flags, "poll-interval")) {
        if (!options->wait) return Usage("--poll-interval: only with --wait");
        auto interval = flags.Duration("poll-interval", absl::Seconds(1), absl::Minutes(10));
        if (!interval.ok()) return interval.status();
        options->poll_interval = *interval;
      }
      // Only a --timeout on this command line bounds the wait: one from
      // $BLUEPRINT_SYNC_TIMEOUT is meant for single calls. Each call still
      // gets at most the usual deadline, so one stuck call cannot use up
      // the wait.
      if (options->wait && flags.Source("timeout") == "--timeout") {
        options->wait_timeout = options->timeout;
        options->timeout = std::min(options->timeout, kDefaultCallTimeout);
      }
      return absl::OkStatus();
    }
    case Command::kPolicyList: {
      if (absl::Status s = NoPositional("policy list", positional); !s.ok()) return s;
      auto page_size = flags.Int("page-size", 0, 1000);
      if (!page_size.ok()) return page_size.status();
      auto all = flags.Bool("all");
      if (!all.ok()) return all.status();
      options->page_size = static_cast<int32_t>(*page_size);
      options->all = *all;
      options->filter = flags.String("filter");
      options->page_token = flags.String("page-token");
      return absl::OkStatus();
    }
    case Command::kPolicyUpdate: {
      auto name = OneName(command_word, positional, /*policy=*/true);
      if (!name.ok()) return name.status();
      options->name = *std::move(name);
      if (absl::Status s = SplitDestinations(repeated["to"], &options->destinations); !s.ok()) {
        return s;
      }
      if (absl::Status s = parse_keep_versions(); !s.ok()) return s;
      if (Given(flags, "paused") && Given(flags, "resume")) {
        return Usage("--paused, --resume: give one, not both");
      }
      auto paused = flags.Bool("paused");
      if (!paused.ok()) return paused.status();
      auto resume = flags.Bool("resume");
      if (!resume.ok()) return resume.status();
      if (Given(flags, "paused")) options->paused = *paused;
      if (Given(flags, "resume")) options->paused = !*resume;
      options->labels_given = !repeated["label"].empty();
      if (absl::Status s = ParseLabels(repeated["label"], &options->labels); !s.ok()) return s;
      options->etag = flags.String("etag");
      if (options->destinations.empty() && !options->keep_versions.has_value() &&
          !options->paused.has_value() && !options->labels_given) {
        return Usage(
            "policy update: nothing to change; give --to, --keep-versions, --paused, --resume "
            "or --label");
      }
      return absl::OkStatus();
    }
    case Command::kPolicyDelete: {
      auto name = OneName(command_word, positional, /*policy=*/true);
      if (!name.ok()) return name.status();
      options->name = *std::move(name);
      auto delete_copies = flags.Bool("delete-copies");
      if (!delete_copies.ok()) return delete_copies.status();
      options->delete_copies = *delete_copies;
      options->etag = flags.String("etag");
      return absl::OkStatus();
    }
    default:
      break;
  }
  return absl::InternalError(absl::StrCat("not a policy command: ", command_word));
}

}  // namespace

absl::StatusOr<std::string> NormalizeJobName(absl::string_view name) {
  return NormalizeName(kJobPrefix, name);
}

absl::StatusOr<std::string> NormalizePolicyName(absl::string_view name) {
  return NormalizeName(kPolicyPrefix, name);
}

absl::StatusOr<CliOptions> ParseCommandLine(const std::vector<std::string>& given_args,
                                            Flags::Getenv getenv) {
  const std::vector<FlagSpec> global = GlobalSpecs();
  // Every flag any command knows, with the first command that knows it, for
  // a helpful message when one comes before the command.
  std::vector<std::pair<std::string, FlagSpec>> all_command_flags;
  std::vector<FlagSpec> every_flag = global;
  for (const auto& [words, c] : Commands()) {
    for (auto& s : CommandSpecs(c)) {
      every_flag.push_back(s);
      all_command_flags.emplace_back(words, std::move(s));
    }
  }
  const std::vector<std::string> args = ExpandShortOutput(given_args, every_flag);

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
      for (const auto& [words, command_spec] : all_command_flags) {
        if (command_spec.name != name) continue;
        return Usage(absl::StrCat("--", name,
                                  ": a command flag; put it after the command, e.g. "
                                  "blueprint-sync ",
                                  words, " --", name));
      }
      return Usage(absl::StrCat("unknown flag --", Printable(name, 64),
                                DidYouMean(name, SpecNames(every_flag), "--"), " (see --help)"));
    }
    if (!spec->is_bool && arg.find('=') == std::string::npos) ++i;
  }

  CliOptions options;
  Command command = Command::kHelp;
  std::string command_word;
  // `policy` takes its subcommand right after it; `policy` alone (or with
  // --help) asks for the policy commands' help.
  bool policy_group = false;
  size_t subcommand_index = args.size();
  if (command_index < args.size()) {
    command_word = args[command_index];
    if (command_word == kPolicyGroup) {
      policy_group = true;
      if (command_index + 1 < args.size() && !absl::StartsWith(args[command_index + 1], "-")) {
        subcommand_index = command_index + 1;
        command_word = absl::StrCat(kPolicyGroup, " ", args[subcommand_index]);
        if (!LookupCommand(command_word, &command)) {
          return Usage(absl::StrCat("policy: unknown subcommand \"",
                                    Printable(args[subcommand_index], 64), "\"",
                                    DidYouMean(args[subcommand_index], PolicySubcommands()),
                                    " (subcommands: ", kPolicySubcommandList, ")"));
        }
      }
    } else if (!LookupCommand(command_word, &command)) {
      return Usage(absl::StrCat("unknown command \"", Printable(command_word, 64), "\"",
                                DidYouMean(command_word, TopLevelWords()),
                                " (commands: ", kCommandList, ")"));
    }
  }

  std::vector<FlagSpec> specs = global;
  for (auto& s : CommandSpecs(command)) specs.push_back(std::move(s));
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i != command_index && i != subcommand_index) rest.push_back(args[i]);
  }
  std::vector<std::string> flag_args;
  std::map<std::string, std::vector<std::string>> repeated;
  if (command == Command::kSync || command == Command::kPolicyCreate ||
      command == Command::kPolicyUpdate) {
    absl::Status s =
        ExtractRepeated(rest, specs, {{"to", "ap-beijing,ap-shanghai"}, {"label", "team=web"}},
                        &flag_args, &repeated);
    if (!s.ok()) return s;
  } else {
    flag_args = rest;
  }

  if (absl::Status s = CheckFlagNames(flag_args, specs, command_word); !s.ok()) return s;
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

  if (policy_group && command == Command::kHelp && !dash_h && !*help &&
      !flags.positional().empty()) {
    return Usage(absl::StrCat("policy: the subcommand (", kPolicySubcommandList,
                              ") must come right after \"policy\""));
  }
  auto version = flags.Bool("version");
  if (!version.ok()) return version.status();
  if (*version && !dash_h && !*help) {
    options.command = Command::kVersion;
    return options;
  }
  if (command_word.empty() && !dash_h && !*help && !args.empty()) {
    return Usage(absl::StrCat("missing COMMAND (one of ", kCommandList, "; see --help)"));
  }
  if (dash_h || *help || command == Command::kHelp) {
    options.command = Command::kHelp;
    if (!command_word.empty() && command != Command::kHelp) {
      options.help_topic = command_word;
    } else if (policy_group) {
      options.help_topic = kPolicyGroup;
    } else {
      // `help sync`, `help policy`, `help policy create`.
      std::vector<std::string> words;
      for (const auto& p : flags.positional()) {
        if (p != "-h") words.push_back(p);
      }
      if (!words.empty()) options.help_topic = words[0];
      if (words.size() > 1 && words[0] == kPolicyGroup) {
        options.help_topic = absl::StrCat(kPolicyGroup, " ", words[1]);
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
  } else if (output == "name") {
    options.output = OutputFormat::kName;
  } else if (output == "wide") {
    options.output = OutputFormat::kWide;
  } else {
    return Usage(absl::StrCat("--output (-o): must be text, json, name or wide, got \"",
                              Printable(output, 64), "\"",
                              DidYouMean(output, {"text", "json", "name", "wide"})));
  }
  auto tls = flags.Bool("tls");
  if (!tls.ok()) return tls.status();
  options.tls.tls = *tls;
  options.tls.cacert = flags.String("cacert");
  options.tls.cert = flags.String("cert");
  options.tls.key = flags.String("key");
  options.tls.server_name = flags.String("server-name");

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
      if (absl::Status s = SplitDestinations(repeated["to"], &options.destinations); !s.ok()) {
        return s;
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
      if (absl::Status s = ParseLabels(repeated["label"], &options.labels); !s.ok()) return s;
      if (flags.Source("job-timeout") != "default") {
        auto job_timeout = flags.Duration("job-timeout", absl::Seconds(1), absl::Hours(24 * 30));
        if (!job_timeout.ok()) return job_timeout.status();
        options.job_timeout = *job_timeout;
      }
      if (flags.Source("keep-failed-copies") != "default") {
        auto keep = flags.Bool("keep-failed-copies");
        if (!keep.ok()) return keep.status();
        options.keep_failed_copies = *keep;
      }
      break;
    }
    case Command::kGet:
    case Command::kWatch:
    case Command::kCancel:
    case Command::kRetry:
    case Command::kDelete: {
      auto name = OneName(command_word, positional, /*policy=*/false);
      if (!name.ok()) return name.status();
      options.name = *std::move(name);
      if (command == Command::kRetry) options.request_id = flags.String("request-id");
      if (command == Command::kCancel || command == Command::kRetry) {
        auto wait = flags.Bool("wait");
        if (!wait.ok()) return wait.status();
        options.wait = *wait;
      }
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
      options.order_by = flags.String("order-by");
      options.page_token = flags.String("page-token");
      break;
    }
    case Command::kPolicyCreate:
    case Command::kPolicyGet:
    case Command::kPolicyList:
    case Command::kPolicyUpdate:
    case Command::kPolicyDelete:
      if (absl::Status s = ParsePolicyCommand(command, command_word, flags, repeated, &options);
          !s.ok()) {
        return s;
      }
      break;
    case Command::kCompletion:
      if (positional.size() != 1 || (positional[0] != "bash" && positional[0] != "zsh")) {
        return Usage(absl::StrCat(
            "completion: expects one SHELL, bash or zsh, got ",
            positional.empty() ? "none" : absl::StrCat("\"", Printable(positional[0], 64), "\"")));
      }
      options.completion_shell = positional[0];
      break;
    case Command::kHelp:
    case Command::kVersion:
      break;
  }
  return options;
}

namespace {

// `help policy`: what a policy is and the subcommands.
std::string PolicyOverview(const std::string& global_flags) {
  return absl::StrCat(
      "blueprint-sync policy: replication policies. A policy says in which regions an\n"
      "image, or the newest version of an image family, must be usable; the service\n"
      "keeps it true: it copies the source where a copy is missing, copies it again\n"
      "when a copy disappears or fails, follows a family to each new version and\n"
      "deletes old copies it made beyond --keep-versions.\n"
      "\n"
      "Usage:\n"
      "  blueprint-sync [global flags] policy SUBCOMMAND [flags]\n"
      "\n"
      "Subcommands:\n"
      "  create  create a policy: policy create ID --source-region R --blueprint-name N --to R1\n"
      "  get     show one policy, or with --wait follow it until it is in sync: get NAME\n"
      "  list    list policies\n"
      "  update  change its regions, versions kept, paused or labels: update NAME\n"
      "  delete  delete a policy (with --delete-copies, its copies too): delete NAME\n"
      "\n"
      "NAME is syncPolicies/ID or just ID. Help for one: blueprint-sync help policy create\n"
      "\n"
      "Global flags:\n",
      global_flags,
      "\n"
      "Example:\n"
      "  blueprint-sync policy create web-golden --source-region ap-guangzhou \\\n"
      "      --blueprint-name web-golden --to ap-shanghai,ap-beijing --keep-versions 1\n");
}

}  // namespace

std::string HelpText(const std::string& topic) {
  Command command = Command::kHelp;
  const bool known = LookupCommand(topic, &command) && command != Command::kHelp;
  const std::string global_flags = Flags(GlobalSpecs()).Usage();
  if (topic == kPolicyGroup) return PolicyOverview(global_flags);
  const std::string exit_codes = absl::StrCat(
      "Exit codes:\n"
      "  ",
      static_cast<int>(kExitOk),
      "  success (sync, retry: the job was accepted; sync --wait, retry --wait and watch:\n"
      "     the job SUCCEEDED; cancel --wait: the job ended CANCELLED; policy get --wait:\n"
      "     the policy is in sync)\n"
      "  ",
      static_cast<int>(kExitJobFailed),
      "  sync --wait, retry --wait or watch: the job ended FAILED or CANCELLED;\n"
      "     cancel --wait: the job ended otherwise than CANCELLED;\n"
      "     policy get --wait: a region of the policy is FAILED\n"
      "  ",
      static_cast<int>(kExitUsage),
      "  usage error: unknown flag, missing or invalid value\n"
      "  ",
      static_cast<int>(kExitRpcError),
      "  RPC error: the service could not be reached or rejected the call (e.g.\n"
      "     FAILED_PRECONDITION for cancelling a finished job or deleting a running one)\n"
      "  ",
      static_cast<int>(kExitTimeout),
      "  policy get --wait --timeout D: not in sync, and no region failed, within D\n");
  if (!known) {
    return absl::StrCat(
        "blueprint-sync: copy Lighthouse custom images (blueprints) to other regions\n"
        "through the blueprint-sync service, and follow the copies.\n"
        "\n"
        "Usage:\n"
        "  blueprint-sync [global flags] COMMAND [flags]\n"
        "\n"
        "Commands:\n"
        "  sync        start copying a blueprint to other regions (--wait to follow it)\n"
        "  get         show one job: get NAME\n"
        "  list        list jobs, newest first\n"
        "  watch       follow a job until it ends: watch NAME\n"
        "  cancel      withdraw a job and delete the copies it made: cancel NAME\n"
        "  retry       start a new job for what a failed or cancelled job did not copy:\n"
        "              retry NAME\n"
        "  delete      delete the record of a finished job: delete NAME\n"
        "  policy      replication policies: keep an image, or the newest version of an\n"
        "              image family, copied to regions (policy create|get|list|update|delete)\n"
        "  completion  print a bash or zsh completion script: completion bash|zsh\n"
        "  help        help for a command: help COMMAND, help policy create\n"
        "\n"
        "NAME is syncJobs/ID or just ID (policies: syncPolicies/ID or ID).\n"
        "\n"
        "TLS: --cacert FILE (the CA of the server's certificate) turns TLS on; add\n"
        "--cert FILE --key FILE for mTLS, --server-name NAME when --server's host is\n"
        "not in the certificate (e.g. a port-forward). Each flag has an environment\n"
        "variable (below), so a shell or a pod can set them once.\n"
        "\n"
        "Global flags (also accepted after the command):\n",
        global_flags, "\n", exit_codes,
        "\n"
        "Examples:\n"
        "  blueprint-sync sync --source-region ap-guangzhou --blueprint-id lhbp-ls883feh \\\n"
        "      --to ap-shanghai,ap-beijing --wait\n"
        "  blueprint-sync list -o name\n"
        "  blueprint-sync --version\n");
  }
  const std::string command_flags = Flags(CommandSpecs(command)).Usage();
  std::string usage;
  std::string about;
  std::string examples;
  switch (command) {
    case Command::kSync:
      usage =
          "blueprint-sync sync --source-region R --blueprint-id ID --to R1,R2 [--to R3]\n"
          "                    [--label KEY=VALUE]... [--job-timeout D] [--keep-failed-copies]\n"
          "                    [--request-id UUID] [--validate-only] [--wait]";
      about =
          "Starts copying a custom blueprint to other regions and prints the job.\n"
          "A source in the Chinese mainland (ap-guangzhou, ap-shanghai, ap-beijing, ...)\n"
          "can only be copied to mainland regions, any other source only to regions\n"
          "outside the mainland.\n"
          "\n"
          "Every copy is paid, so a sync never makes a second job because of a timeout:\n"
          "the request carries a request id (--request-id, or a new random UUID that is\n"
          "printed to stderr as \"request id: ...\" before the call), and a call that\n"
          "fails with DEADLINE_EXCEEDED or UNAVAILABLE is sent again with the same id,\n"
          "up to 5 attempts in all, 0.5s, 1s, 2s and 4s apart, each with the full\n"
          "--timeout. The service answers a repeated id with the job it already made.\n"
          "Other errors are not retried. If every attempt failed, run the command again\n"
          "with --request-id and the printed id: it returns the job if there is one.\n"
          "\n"
          "With --validate-only nothing is created: the request and the source blueprint\n"
          "are checked and the answer says what would be copied where and how many\n"
          "unfinished jobs on the same source blueprint the job would wait for\n"
          "(\"valid: would copy ... to ...; N job(s) ahead on this source\").\n"
          "\n"
          "With --wait, follows the job until it ends and shows each destination's\n"
          "progress: a table redrawn in place on a terminal, one line per change\n"
          "otherwise, one JSON object per update with --output json. If the\n"
          "connection breaks, the watch reconnects for up to 2 minutes.";
      examples =
          "  blueprint-sync sync --source-region ap-guangzhou --blueprint-id lhbp-ls883feh \\\n"
          "      --to ap-shanghai,ap-beijing --label team=web --label env=prod \\\n"
          "      --job-timeout 2h --wait\n"
          "  blueprint-sync sync --source-region ap-guangzhou --blueprint-id lhbp-ls883feh \\\n"
          "      --to ap-shanghai --validate-only\n"
          "  blueprint-sync sync --source-region ap-singapore --blueprint-id lhbp-ls883feh \\\n"
          "      --to ap-tokyo --keep-failed-copies \\\n"
          "      --request-id 3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
      break;
    case Command::kGet:
      usage = "blueprint-sync get NAME";
      about =
          "Prints one job: its state, who created it, its labels, the job it retries,\n"
          "and per destination the copy's state and what happened to an unwanted copy\n"
          "(deleting copy..., copy deleted TIME, copy already gone, copy kept,\n"
          "copy NOT deleted: ERROR).";
      examples = "  blueprint-sync get syncJobs/0b7e2c52-6f0e-4a55-9d1e-5b7c3f1e2a90";
      break;
    case Command::kList:
      usage =
          "blueprint-sync list [--filter EXPR] [--order-by ORDER] [--page-size N]\n"
          "                    [--page-token T] [--all]";
      about =
          "Lists jobs, newest first unless --order-by create_time, one page at a time\n"
          "unless --all is given.\n"
          "\n"
          "--filter takes conditions joined by AND, each `FIELD = VALUE` on:\n"
          "  state               QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED\n"
          "  blueprint_id, source_region, request_id, creator, retry_of\n"
          "  destination_region  matches a job with any destination there\n"
          "  labels.KEY          the value of label KEY\n"
          "or `create_time OP \"RFC 3339 time\"` with OP one of = != < <= > >=.\n"
          "Values may be quoted.";
      examples =
          "  blueprint-sync list --filter 'state = RUNNING AND labels.team = web AND "
          "create_time >= \"2026-12-01T00:00:00Z\"'\n"
          "  blueprint-sync list --filter 'destination_region = ap-shanghai' "
          "--order-by create_time --all";
      break;
    case Command::kWatch:
      usage = "blueprint-sync watch NAME";
      about = "Follows a job until it SUCCEEDED, FAILED or CANCELLED, as sync --wait does.";
      examples = "  blueprint-sync watch 0b7e2c52-6f0e-4a55-9d1e-5b7c3f1e2a90";
      break;
    case Command::kCancel:
      usage = "blueprint-sync cancel NAME [--wait]";
      about =
          "Withdraws a job and prints it. A QUEUED job is CANCELLED at once (nothing is\n"
          "sent to Tencent Cloud). A RUNNING job becomes CANCELLING: the copies it made\n"
          "are deleted as soon as Tencent Cloud allows (a copy still SYNCING must finish\n"
          "first), then it is CANCELLED. With --wait, follows the job until it is\n"
          "CANCELLED and shows what happened to each copy. Cancelling a CANCELLING or\n"
          "CANCELLED job prints it unchanged; cancelling a SUCCEEDED or FAILED job is\n"
          "an RPC error (FAILED_PRECONDITION).";
      examples = "  blueprint-sync cancel syncJobs/0b7e2c52-6f0e-4a55-9d1e-5b7c3f1e2a90 --wait";
      break;
    case Command::kRetry:
      usage = "blueprint-sync retry NAME [--request-id UUID] [--wait]";
      about =
          "Starts a new job for the destinations of a FAILED or CANCELLED job that did\n"
          "not succeed, and prints it. The new job names the old one (\"retry of\") and\n"
          "takes its labels and keep-failed-copies. The request id and the re-sending\n"
          "of a call that timed out work as for sync. With --wait, follows the new job\n"
          "as sync --wait does. A job that is not finished, or where nothing failed, is\n"
          "an RPC error (FAILED_PRECONDITION).";
      examples = "  blueprint-sync retry 0b7e2c52-6f0e-4a55-9d1e-5b7c3f1e2a90 --wait";
      break;
    case Command::kDelete:
      usage = "blueprint-sync delete NAME";
      about =
          "Deletes the record of a finished job (SUCCEEDED, FAILED or CANCELLED) and\n"
          "frees its request id; the copies in Tencent Cloud are not touched. Prints\n"
          "\"deleted syncJobs/ID\", or {} with --output json. A job that is not finished\n"
          "is an RPC error (FAILED_PRECONDITION): cancel it first.";
      examples = "  blueprint-sync delete syncJobs/0b7e2c52-6f0e-4a55-9d1e-5b7c3f1e2a90";
      break;
    case Command::kPolicyCreate:
      usage =
          "blueprint-sync policy create ID --source-region R\n"
          "                    (--blueprint-id B | --blueprint-name FAMILY) --to R1,R2 [--to R3]\n"
          "                    [--keep-versions K] [--paused] [--label KEY=VALUE]...\n"
          "                    [--validate-only]";
      about =
          "Creates the replication policy syncPolicies/ID and prints it. ID is 4 to 63\n"
          "lower-case letters, digits and hyphens, beginning with a letter. The service\n"
          "then keeps a NORMAL copy of the source in every --to region: --blueprint-id\n"
          "is one fixed image; --blueprint-name is an image family, the newest NORMAL\n"
          "custom blueprint with exactly that name in --source-region, and every region\n"
          "follows it to each new version. Copies that disappear or fail are made again.\n"
          "With --keep-versions K, the copies the policy made beyond the newest K in a\n"
          "region are deleted once the newest is NORMAL (never the one that serves, never\n"
          "an image the service did not make). The regions follow the rules of sync.\n"
          "\n"
          "With --validate-only the policy is checked and nothing is created.";
      examples =
          "  blueprint-sync policy create web-golden --source-region ap-guangzhou \\\n"
          "      --blueprint-name web-golden --to ap-shanghai,ap-beijing,ap-chengdu \\\n"
          "      --keep-versions 2 --label team=web\n"
          "  blueprint-sync policy create docs-image --source-region ap-singapore \\\n"
          "      --blueprint-id lhbp-ls883feh --to ap-tokyo --paused --validate-only";
      break;
    case Command::kPolicyGet:
      usage = "blueprint-sync policy get NAME [--wait [--poll-interval D] [--timeout D]]";
      about =
          "Prints one policy: its source (and the blueprint it currently copies), whether\n"
          "it is in sync, and per region the state (PENDING, SYNCING, IN_SYNC, FAILED),\n"
          "the copy that serves it, the last job and the last error.\n"
          "\n"
          "With --wait, asks again every --poll-interval and prints a line whenever the\n"
          "policy or a region changes (one JSON object per change with --output json),\n"
          "until the policy is in sync (exit 0) or a region is FAILED (exit 1: the\n"
          "region, its Tencent Cloud code and message are printed). --timeout on the\n"
          "command line bounds the whole wait (exit 4 when it runs out; each call still\n"
          "gets at most 30s); without it the wait has no limit. While the service cannot\n"
          "be reached, it keeps asking for up to 2 minutes.";
      examples =
          "  blueprint-sync policy get web-golden\n"
          "  blueprint-sync policy get syncPolicies/web-golden --wait --timeout 30m";
      break;
    case Command::kPolicyList:
      usage =
          "blueprint-sync policy list [--filter EXPR] [--page-size N] [--page-token T]\n"
          "                    [--all]";
      about =
          "Lists policies in name order, one block each, one page at a time unless --all\n"
          "is given.\n"
          "\n"
          "--filter takes conditions joined by AND, each `FIELD = VALUE` on:\n"
          "  in_sync, paused     true or false\n"
          "  source_region\n"
          "  labels.KEY          the value of label KEY";
      examples =
          "  blueprint-sync policy list --filter 'in_sync = false AND labels.team = web' --all";
      break;
    case Command::kPolicyUpdate:
      usage =
          "blueprint-sync policy update NAME [--to R1,R2] [--keep-versions K]\n"
          "                    [--paused | --resume] [--label KEY=VALUE]... [--etag E]";
      about =
          "Changes what the flags given say, and nothing else, and prints the policy.\n"
          "--to replaces the destination regions; --label replaces every label. The\n"
          "source cannot change: create another policy. With --etag (from policy get),\n"
          "the update fails with ABORTED if the policy changed meanwhile.";
      examples =
          "  blueprint-sync policy update web-golden --to ap-shanghai,ap-beijing \\\n"
          "      --keep-versions 1\n"
          "  blueprint-sync policy update web-golden --resume";
      break;
    case Command::kPolicyDelete:
      usage = "blueprint-sync policy delete NAME [--delete-copies] [--etag E]";
      about =
          "Deletes a policy. The copies it made stay, unless --delete-copies: then the\n"
          "service deletes every copy the policy made (policy get shows \"deleting\"\n"
          "meanwhile) and the policy is gone after that. Prints \"deleted\n"
          "syncPolicies/ID\" (or that its copies are being deleted), or {} with\n"
          "--output json.";
      examples = "  blueprint-sync policy delete web-golden --delete-copies";
      break;
    case Command::kCompletion:
      usage = "blueprint-sync completion bash|zsh";
      about =
          "Prints a completion script for the shell: commands, policy subcommands, each\n"
          "command's flags and the values of --output. Load it in the current shell, or\n"
          "from ~/.bashrc or ~/.zshrc:";
      examples =
          "  source <(blueprint-sync completion bash)\n"
          "  source <(blueprint-sync completion zsh)";
      break;
    case Command::kHelp:
    case Command::kVersion:
      break;
  }
  return absl::StrCat("Usage:\n  ", usage, "\n\n", about, "\n\n",
                      command_flags.empty() ? "" : absl::StrCat("Flags:\n", command_flags, "\n"),
                      "Examples:\n", examples, "\n\n", "Global flags:\n", global_flags, "\n",
                      exit_codes);
}

}  // namespace blueprintsync::cli

namespace blueprintsync::cli {

std::vector<std::string> HelpTopics() {
  std::vector<std::string> topics = {"", kPolicyGroup};
  for (const auto& [words, c] : Commands()) {
    if (c != Command::kHelp) topics.push_back(words);
  }
  return topics;
}

namespace {

// The flag words ("--a --b") of a command, global ones included.
std::string FlagWords(Command command) {
  std::vector<std::string> words;
  for (const auto& s : GlobalSpecs()) words.push_back("--" + s.name);
  for (const auto& s : CommandSpecs(command)) words.push_back("--" + s.name);
  return absl::StrJoin(words, " ");
}

// Flags whose value is a file, for file-name completion after them.
constexpr char kFileFlags[] = "--cacert|--cert|--key";

}  // namespace

// One bash function serves both shells (zsh through bashcompinit). It finds
// the command among the words typed so far (skipping global flags and their
// values) and offers that command's flags, the subcommands of policy, or
// the commands.
std::string CompletionScript(const std::string& shell) {
  std::vector<std::string> value_flags;  // flags that take a value
  for (const auto& s : GlobalSpecs()) {
    if (!s.is_bool) value_flags.push_back("--" + s.name);
  }
  value_flags.push_back("-o");
  std::string cases;
  for (const auto& [words, c] : Commands()) {
    absl::StrAppend(&cases, "    \"", words, "\") flags=\"", FlagWords(c), "\" ;;\n");
  }
  std::string script = absl::StrCat(
      "# blueprint-sync completion for ", shell, "; load with: source <(blueprint-sync completion ",
      shell, ")\n",
      shell == "zsh"
          ? "if ! (( $+functions[compdef] )); then autoload -U +X compinit && compinit; fi\n"
            "autoload -U +X bashcompinit && bashcompinit\n"
          : "",
      "_blueprint_sync() {\n"
      "  local cur prev cmd i w flags\n"
      "  cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
      "  prev=\"\"\n"
      "  [ \"$COMP_CWORD\" -gt 0 ] && prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      "  COMPREPLY=()\n"
      "  case \"$prev\" in\n"
      "    -o|--output) COMPREPLY=($(compgen -W \"text json name wide\" -- \"$cur\")); return 0 "
      ";;\n"
      "    ",
      kFileFlags,
      ") COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n"
      "    completion) COMPREPLY=($(compgen -W \"bash zsh\" -- \"$cur\")); return 0 ;;\n"
      "  esac\n"
      "  cmd=\"\"\n"
      "  i=1\n"
      "  while [ \"$i\" -lt \"$COMP_CWORD\" ]; do\n"
      "    w=\"${COMP_WORDS[i]}\"\n"
      "    case \"$w\" in\n"
      "      ",
      absl::StrJoin(value_flags, "|"),
      ") i=$((i+1)) ;;\n"
      "      -*) ;;\n"
      "      *)\n"
      "        if [ -z \"$cmd\" ]; then cmd=\"$w\"\n"
      "        elif [ \"$cmd\" = policy ]; then cmd=\"policy $w\"; break\n"
      "        else break; fi ;;\n"
      "    esac\n"
      "    i=$((i+1))\n"
      "  done\n"
      "  if [ -z \"$cmd\" ] && [[ \"$cur\" != -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"",
      absl::StrJoin(TopLevelWords(), " "),
      "\" -- \"$cur\"))\n"
      "    return 0\n"
      "  fi\n"
      "  if [ \"$cmd\" = policy ] && [[ \"$cur\" != -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"",
      absl::StrJoin(PolicySubcommands(), " "),
      "\" -- \"$cur\"))\n"
      "    return 0\n"
      "  fi\n"
      "  case \"$cmd\" in\n",
      cases, "    *) flags=\"", FlagWords(Command::kHelp),
      "\" ;;\n"
      "  esac\n"
      "  if [[ \"$cur\" == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
      "  fi\n"
      "  return 0\n"
      "}\n"
      "complete -F _blueprint_sync blueprint-sync\n");
  return script;
}

}  // namespace blueprintsync::cli
