// Flags: a small command-line parser shared by blueprint-syncd and the CLI.
// Every option can also come from an environment variable (for Kubernetes
// ConfigMaps); the command line wins over the environment, which wins over
// the default. Values are untrusted input: every typed getter validates and
// reports errors that name the flag, the variable and the rule.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_FLAGS_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_FLAGS_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace blueprintsync {

struct FlagSpec {
  std::string name;           // "listen" for --listen
  std::string env;            // "BLUEPRINT_SYNC_LISTEN"; empty for none
  std::string default_value;  // as text
  std::string help;
  bool is_bool = false;  // --name alone means "true"
};

class Flags {
 public:
  using Getenv = std::function<std::optional<std::string>(const std::string&)>;
  explicit Flags(std::vector<FlagSpec> specs, Getenv getenv = nullptr);

  // Parses argv[first..]; positional arguments (not starting with "--", or
  // everything after "--") are kept in positional(). Unknown flags, missing
  // values and values longer than 4096 bytes are errors.
  absl::Status Parse(int argc, const char* const* argv, int first = 1);

  std::string String(const std::string& name) const;
  absl::StatusOr<int64_t> Int(const std::string& name, int64_t min, int64_t max) const;
  absl::StatusOr<double> Double(const std::string& name, double min, double max) const;
  // Go-style durations: "500ms", "10s", "1m30s", "6h".
  absl::StatusOr<absl::Duration> Duration(const std::string& name, absl::Duration min,
                                          absl::Duration max) const;
  absl::StatusOr<bool> Bool(const std::string& name) const;
  // Where the value came from: "--name", "$ENV" or "default".
  std::string Source(const std::string& name) const;

  const std::vector<std::string>& positional() const { return positional_; }
  // Usage text: one line per flag with env name and default.
  std::string Usage() const;

 private:
  const FlagSpec* Find(const std::string& name) const;
  absl::Status Invalid(const std::string& name, const std::string& rule) const;

  std::vector<FlagSpec> specs_;
  Getenv getenv_;
  std::map<std::string, std::string> from_args_;
  std::vector<std::string> positional_;
};

}  // namespace blueprintsync

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_FLAGS_H_
