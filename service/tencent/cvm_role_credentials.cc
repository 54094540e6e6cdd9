#include "service/tencent/cvm_role_credentials.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "service/tencent/api_error.h"
#include "service/tencent/cloud_credentials_internal.h"

namespace blueprintsync::tencent {
namespace {

using internal::EnvOr;
using internal::ExpiryOf;
using internal::Getenv;
using internal::Member;
using internal::OrSystem;

std::string TransportMessage(const absl::Status& status) {
  std::optional<ApiError> error = GetApiError(status);
  return error.has_value() ? error->message : std::string(status.message());
}

// A role name goes into a URL path; anything outside CAM's role-name alphabet
// is not a role name.
bool IsRoleName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           std::strchr("_+=,.@-", c) != nullptr;
  });
}

}  // namespace

CvmRoleCredentialProvider::CvmRoleCredentialProvider(CvmRoleOptions options)
    : RefreshingCredentialProvider(options.refresh),
      options_(options),
      getter_(options.getter != nullptr ? options.getter : MakeCurlGetter()),
      role_from_env_(!EnvOr(OrSystem(options.getenv), kEnvCvmRole, "").empty()) {
  const Getenv getenv = OrSystem(options.getenv);
  base_ = EnvOr(getenv, kEnvMetadataEndpoint, kDefaultMetadataEndpoint);
  if (!absl::EndsWith(base_, "/")) base_ += '/';
  absl::MutexLock lock(&role_mu_);
  role_ = EnvOr(getenv, kEnvCvmRole, "");
}

absl::StatusOr<std::string> CvmRoleCredentialProvider::DiscoverRole() {
  absl::StatusOr<HttpResponse> response =
      getter_->Get(base_, options_.connect_timeout, options_.timeout);
  if (!response.ok()) {
    // Off Tencent Cloud nothing answers here: that is "not configured".
    return absl::NotFoundError(
        absl::StrCat("no metadata service answered: ", TransportMessage(response.status())));
  }
  if (response->status == 404) {
    return absl::NotFoundError(
        absl::StrCat("no CAM role bound to this instance (HTTP 404 from ", base_, ")"));
  }
  if (response->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("role discovery: HTTP status ", response->status, " from ", base_));
  }
  // One role per line; an instance has at most one.
  absl::string_view body(response->body);
  body = body.substr(0, body.find('\n'));
  const std::string role(absl::StripAsciiWhitespace(absl::string_view(body.data(), body.size())));
  if (!IsRoleName(role)) {
    return absl::FailedPreconditionError(
        absl::StrCat("role discovery: ", base_, " did not answer with a role name"));
  }
  return role;
}

absl::StatusOr<Credentials> CvmRoleCredentialProvider::Fetch() {
  std::string role;
  {
    absl::MutexLock lock(&role_mu_);
    role = role_;
  }
  if (role.empty()) {
    absl::StatusOr<std::string> discovered = DiscoverRole();
    if (!discovered.ok()) return discovered.status();
    role = *std::move(discovered);
  } else if (!IsRoleName(role)) {
    return absl::FailedPreconditionError(
        absl::StrCat(kEnvCvmRole, " is not a valid CAM role name"));
  }
  const std::string url = base_ + role;
  absl::StatusOr<HttpResponse> response =
      getter_->Get(url, options_.connect_timeout, options_.timeout);
  if (!response.ok()) {
    return absl::UnavailableError(TransportMessage(response.status()));
  }
  if (response->status != 200) {
    if (response->status == 404 && !role_from_env_) {
      // The role was unbound since discovery; look again next time.
      absl::MutexLock lock(&role_mu_);
      role_.clear();
    }
    return absl::Status(response->status >= 500 ? absl::StatusCode::kUnavailable
                                                : absl::StatusCode::kFailedPrecondition,
                        absl::StrCat("GET ", url, ": HTTP status ", response->status));
  }
  rapidjson::Document doc;
  doc.Parse(response->body.data(), response->body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::UnavailableError(absl::StrCat("GET ", url,
                                               ": malformed response (not a JSON object, ",
                                               response->body.size(), " bytes)"));
  }
  const std::string code = Member(doc, "Code");
  if (code != "Success") {
    return absl::FailedPreconditionError(
        absl::StrCat("GET ", url, ": Code is \"", code.substr(0, 64), "\", not \"Success\""));
  }
  Credentials out;
  out.secret_id = Member(doc, "TmpSecretId");
  out.secret_key = Member(doc, "TmpSecretKey");
  out.token = Member(doc, "Token");
  std::optional<absl::Time> expiry = ExpiryOf(doc);
  if (out.secret_id.empty() || out.secret_key.empty() || out.token.empty() || !expiry.has_value()) {
    return absl::UnavailableError(absl::StrCat(
        "GET ", url,
        ": malformed response (TmpSecretId, TmpSecretKey, Token or ExpiredTime missing)"));
  }
  out.expiry = *expiry;
  if (!role_from_env_) {
    absl::MutexLock lock(&role_mu_);
    role_ = role;
  }
  return out;
}

std::string CvmRoleCredentialProvider::Source() const {
  absl::MutexLock lock(&role_mu_);
  return role_.empty() ? Name() : absl::StrCat("CVM role ", role_);
}

}  // namespace blueprintsync::tencent
