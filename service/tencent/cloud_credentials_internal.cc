#include "service/tencent/cloud_credentials_internal.h"

#include <cstdint>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace blueprintsync::tencent::internal {
namespace {

std::optional<std::string> SystemGetenv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace

Getenv OrSystem(Getenv getenv) { return getenv ? std::move(getenv) : Getenv(SystemGetenv); }

std::optional<std::string> Env(const Getenv& getenv, const char* name) {
  std::optional<std::string> value = getenv(name);
  if (!value.has_value()) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(*value));
}

std::string EnvOr(const Getenv& getenv, const char* name, std::string fallback) {
  std::optional<std::string> value = Env(getenv, name);
  return value.has_value() && !value->empty() ? *std::move(value) : std::move(fallback);
}

std::string Member(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<absl::Time> ExpiryOf(const rapidjson::Value& object) {
  if (auto it = object.FindMember("ExpiredTime"); it != object.MemberEnd()) {
    if (it->value.IsInt64() && it->value.GetInt64() > 0) {
      return absl::FromUnixSeconds(it->value.GetInt64());
    }
    if (it->value.IsString()) {  // some gateways quote numbers
      int64_t seconds = 0;
      if (absl::SimpleAtoi(it->value.GetString(), &seconds) && seconds > 0) {
        return absl::FromUnixSeconds(seconds);
      }
    }
  }
  const std::string iso = Member(object, "Expiration");
  absl::Time t;
  std::string err;
  if (!iso.empty() && absl::ParseTime(absl::RFC3339_full, iso, &t, &err)) return t;
  return std::nullopt;
}

}  // namespace blueprintsync::tencent::internal
