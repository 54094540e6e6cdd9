#include "service/common/flags.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/common/display.h"

namespace blueprintsync {
namespace {
constexpr size_t kMaxValueBytes = 4096;

std::optional<std::string> RealGetenv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

}  // namespace

Flags::Flags(std::vector<FlagSpec> specs, Getenv getenv)
    : specs_(std::move(specs)), getenv_(getenv ? std::move(getenv) : Getenv(RealGetenv)) {}

const FlagSpec* Flags::Find(const std::string& name) const {
  for (const auto& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

absl::Status Flags::Parse(int argc, const char* const* argv, int first) {
  bool only_positional = false;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i] == nullptr ? "" : argv[i];
    if (only_positional || !absl::StartsWith(arg, "--")) {
      positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const FlagSpec* spec = Find(name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", Shown(name), " (see --help)"));
    }
    if (!has_value) {
      if (spec->is_bool) {
        value = "true";
      } else if (i + 1 < argc && argv[i + 1] != nullptr) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (value.size() > kMaxValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " is longer than ", kMaxValueBytes, " bytes"));
    }
    from_args_[name] = value;
  }
  return absl::OkStatus();
}

std::string Flags::Source(const std::string& name) const {
  if (from_args_.count(name)) return absl::StrCat("--", name);
  const FlagSpec* spec = Find(name);
  if (spec != nullptr && !spec->env.empty() && getenv_(spec->env))
    return absl::StrCat("$", spec->env);
  return "default";
}

std::string Flags::String(const std::string& name) const {
  if (auto it = from_args_.find(name); it != from_args_.end()) return it->second;
  const FlagSpec* spec = Find(name);
  if (spec == nullptr) return "";
  if (!spec->env.empty()) {
    if (auto v = getenv_(spec->env)) return v->substr(0, kMaxValueBytes);
  }
  return spec->default_value;
}

absl::Status Flags::Invalid(const std::string& name, const std::string& rule) const {
  return absl::InvalidArgumentError(absl::StrCat("invalid value \"", Shown(String(name)),
                                                 "\" for --", name, " (from ", Source(name),
                                                 "): ", rule));
}

absl::StatusOr<int64_t> Flags::Int(const std::string& name, int64_t min, int64_t max) const {
  int64_t v = 0;
  if (!absl::SimpleAtoi(String(name), &v) || v < min || v > max) {
    return Invalid(name, absl::StrCat("must be a whole number from ", min, " to ", max));
  }
  return v;
}

absl::StatusOr<double> Flags::Double(const std::string& name, double min, double max) const {
  double v = 0;
  if (!absl::SimpleAtod(String(name), &v) || !(v >= min && v <= max)) {
    return Invalid(name, absl::StrCat("must be a number from ", min, " to ", max));
  }
  return v;
}

absl::StatusOr<absl::Duration> Flags::Duration(const std::string& name, absl::Duration min,
                                               absl::Duration max) const {
  absl::Duration d;
  if (!absl::ParseDuration(String(name), &d) || d < min || d > max) {
    return Invalid(name,
                   absl::StrCat("must be a duration such as 500ms, 10s or 2h, from ",
                                absl::FormatDuration(min), " to ", absl::FormatDuration(max)));
  }
  return d;
}

absl::StatusOr<bool> Flags::Bool(const std::string& name) const {
  const std::string v = String(name);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no" || v.empty()) return false;
  return Invalid(name, "must be true or false");
}

std::string Flags::Usage() const {
  std::string out;
  for (const auto& s : specs_) {
    absl::StrAppend(&out, "  --", s.name, s.is_bool ? "" : "=VALUE", "\n      ", s.help);
    if (!s.env.empty()) absl::StrAppend(&out, "\n      env ", s.env);
    if (!s.default_value.empty()) absl::StrAppend(&out, "; default ", s.default_value);
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace blueprintsync
