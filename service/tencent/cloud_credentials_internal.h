// Helpers shared by the cloud credential providers (sts_credentials.cc,
// cvm_role_credentials.cc, cloud_credentials.cc) and by nothing else: reading
// their environment variables, and reading a temporary triple's fields, which
// STS and the metadata service name alike.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_INTERNAL_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_INTERNAL_H_

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "rapidjson/document.h"
#include "service/tencent/credentials.h"

namespace blueprintsync::tencent::internal {

using Getenv = EnvCredentialProvider::Getenv;

// `getenv`, or ::getenv when it is empty.
Getenv OrSystem(Getenv getenv);

// Trimmed, as in credentials.cc: a value pasted with a trailing newline is
// never meant to contain it.
std::optional<std::string> Env(const Getenv& getenv, const char* name);

// Env(), with `fallback` for a variable that is unset or empty.
std::string EnvOr(const Getenv& getenv, const char* name, std::string fallback);

// The string member `name` of `object`; empty when absent or not a string.
std::string Member(const rapidjson::Value& object, const char* name);

// ExpiredTime (Unix seconds) when present, else the ISO-8601 Expiration.
std::optional<absl::Time> ExpiryOf(const rapidjson::Value& object);

}  // namespace blueprintsync::tencent::internal

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_CLOUD_CREDENTIALS_INTERNAL_H_
