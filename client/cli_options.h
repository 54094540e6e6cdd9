// Command-line parsing for blueprint-sync:
//   blueprint-sync [global flags] COMMAND [flags] [NAME]
// Global flags may also follow the command. Values are validated here, and
// every error names the flag (or argument) and the rule it broke, so main()
// only prints the message and exits with kExitUsage. The flag syntax is
// service/common/flags.h's, shared with blueprint-syncd.
#ifndef BLUEPRINTSYNC_CLIENT_CLI_OPTIONS_H_
#define BLUEPRINTSYNC_CLIENT_CLI_OPTIONS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/tls_files.h"
#include "service/common/flags.h"

namespace blueprintsync::cli {

enum class Command {
  kHelp,
  kSync,
  kGet,
  kList,
  kWatch,
  kCancel,
  kRetry,
  kDelete,
  // `policy create|get|list|update|delete`
  kPolicyCreate,
  kPolicyGet,
  kPolicyList,
  kPolicyUpdate,
  kPolicyDelete,
  // `--version`
  kVersion,
  // `completion bash|zsh`: print a shell completion script.
  kCompletion,
};
// -o/--output: kJson one JSON object per line (lists: one object whose list
// field is always present, [] when empty); kName only the resource names,
// one per line; kWide the text with more columns.
enum class OutputFormat { kText, kJson, kName, kWide };

inline constexpr char kDefaultServer[] = "127.0.0.1:50051";
inline constexpr char kServerEnv[] = "BLUEPRINT_SYNC_SERVER";
inline constexpr char kTimeoutEnv[] = "BLUEPRINT_SYNC_TIMEOUT";

struct CliOptions {
  Command command = Command::kHelp;
  // kHelp: the command to explain ("sync", "policy", "policy create", ...);
  // empty for the general help.
  std::string help_topic;

  std::string server = kDefaultServer;
  absl::Duration timeout = absl::Seconds(30);
  OutputFormat output = OutputFormat::kText;
  // --tls, --cacert, --cert, --key, --server-name (paths; read by RunCli).
  TlsFlags tls;

  // completion: "bash" or "zsh".
  std::string completion_shell;

  // sync, policy create (destinations and labels also policy update)
  std::string source_region;
  std::string blueprint_id;
  std::vector<std::string> destinations;
  bool validate_only = false;
  // Syntax-checked here; the service applies the full rules.
  std::map<std::string, std::string> labels;
  // Zero: the server's default job deadline.
  absl::Duration job_timeout = absl::ZeroDuration();
  // Unset: the server's default.
  std::optional<bool> keep_failed_copies;

  // sync, retry; empty: the CLI makes one up.
  std::string request_id;
  // sync, retry, cancel: follow the job until it ends.
  bool wait = false;

  // get, watch, cancel, retry, delete: always "syncJobs/{id}"; policy
  // commands but list: always "syncPolicies/{id}".
  std::string name;

  // policy create: the id of the new policy (name is "syncPolicies/" + it).
  std::string policy_id;
  // policy create: a family instead of blueprint_id.
  std::string blueprint_name;
  // policy create, update; unset: not given (create: 0, keep all).
  std::optional<int32_t> keep_versions;
  // policy create (--paused), update (--paused, --resume); unset: not given.
  std::optional<bool> paused;
  // policy update: --label was given, so `labels` replaces every label.
  bool labels_given = false;
  // policy update, delete: fail if the policy changed since it was read.
  std::string etag;
  // policy delete: also delete every copy the policy made.
  bool delete_copies = false;
  // policy get --wait: how often to ask, and the longest wait (--timeout on
  // the command line; unset: until in sync or failed).
  absl::Duration poll_interval = absl::Seconds(2);
  std::optional<absl::Duration> wait_timeout;

  // list
  std::string filter;
  std::string order_by;
  int32_t page_size = 0;
  std::string page_token;
  bool all = false;
};

// `args` excludes the program name. InvalidArgument with a one-line message
// on any usage error.
absl::StatusOr<CliOptions> ParseCommandLine(const std::vector<std::string>& args,
                                            Flags::Getenv getenv = nullptr);

// "syncJobs/abc" and "abc" both give "syncJobs/abc".
absl::StatusOr<std::string> NormalizeJobName(absl::string_view name);
// "syncPolicies/web" and "web" both give "syncPolicies/web".
absl::StatusOr<std::string> NormalizePolicyName(absl::string_view name);

// Help for one command ("sync", "get", ..., "policy" for the policy
// commands, "policy create", ...), or the general help for "". Unknown
// topics get the general help.
std::string HelpText(const std::string& topic);

// Every command's help topic ("" for the general help, "sync", ...,
// "policy", "policy create", ...): what `help` can show.
std::vector<std::string> HelpTopics();

// The `completion bash|zsh` script, made from the same command and flag
// tables the parser uses, so it cannot offer a flag the parser rejects.
std::string CompletionScript(const std::string& shell);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_CLI_OPTIONS_H_
