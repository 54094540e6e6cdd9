#include "service/tencent/sts_credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "service/tencent/api_call.h"
#include "service/tencent/api_error.h"
#include "service/tencent/cloud_credentials_internal.h"

namespace blueprintsync::tencent {
namespace {

using internal::Env;
using internal::EnvOr;
using internal::ExpiryOf;
using internal::Getenv;
using internal::Member;
using internal::OrSystem;

constexpr char kAssumeRole[] = "AssumeRole";
constexpr char kAssumeRoleWithWebIdentity[] = "AssumeRoleWithWebIdentity";
// A projected service-account token is 1-2 KiB.
constexpr size_t kMaxTokenFileBytes = 64 * 1024;
constexpr int64_t kMaxDurationSeconds = 43200;

// The endpoint rules are the shared ones (ParseEndpoint); the message names
// the variable, because that is what an operator has to fix.
absl::Status StsEndpointProblem(absl::string_view endpoint) {
  if (ParseEndpoint(endpoint).ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      kEnvStsEndpoint, " must look like https://host[:port] (no path), got \"", endpoint, "\""));
}

std::shared_ptr<TencentApiCaller> MakeStsCaller(const std::string& endpoint,
                                                std::shared_ptr<HttpTransport> transport,
                                                Clock* clock) {
  absl::StatusOr<std::unique_ptr<TencentApiCaller>> caller = MakeTencentApiCaller(
      {endpoint, kStsService, kStsVersion, /*language=*/"", /*request_client=*/"blueprint-sync"},
      std::move(transport), clock);
  if (!caller.ok()) return nullptr;
  return *std::move(caller);
}

// Replaces any secret that the far side echoed back, so that no error text
// built from a server message can leak one.
std::string Scrub(std::string text, std::initializer_list<absl::string_view> secrets) {
  for (absl::string_view secret : secrets) {
    if (secret.size() < 4) continue;
    absl::StrReplaceAll({{absl::string_view(secret.data(), secret.size()), "[redacted]"}}, &text);
  }
  return text;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return absl::FailedPreconditionError(
        absl::StrCat(kEnvTkeTokenFile, " ", path, ": cannot open: ", std::strerror(err)));
  }
  std::string data;
  absl::Status status;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    status = absl::FailedPreconditionError(
        absl::StrCat(kEnvTkeTokenFile, " ", path, ": ", std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::FailedPreconditionError(
        absl::StrCat(kEnvTkeTokenFile, " ", path, ": not a regular file"));
  } else {
    char buf[4096];
    while (status.ok()) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = absl::FailedPreconditionError(
            absl::StrCat(kEnvTkeTokenFile, " ", path, ": read failed: ", std::strerror(errno)));
        break;
      }
      if (n == 0) break;
      data.append(buf, static_cast<size_t>(n));
      if (data.size() > kMaxTokenFileBytes) {
        status = absl::FailedPreconditionError(absl::StrCat(
            kEnvTkeTokenFile, " ", path, ": larger than ", kMaxTokenFileBytes, " bytes"));
      }
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  std::string token(absl::StripAsciiWhitespace(data));
  if (token.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(kEnvTkeTokenFile, " ", path, ": the file is empty"));
  }
  return token;
}

// The status code a failed STS call gets: transient server trouble is
// Unavailable, authentication trouble PermissionDenied, the rest (bad role,
// bad token, bad parameters) FailedPrecondition. Never NotFound: the provider
// is configured, so the chain must stop instead of falling through.
absl::StatusCode CodeForStsError(absl::string_view code, long http_status) {
  if (http_status >= 500 || absl::StartsWith(code, "InternalError") ||
      absl::StartsWith(code, "RequestLimitExceeded") ||
      absl::StartsWith(code, "ServiceUnavailable")) {
    return absl::StatusCode::kUnavailable;
  }
  if (absl::StartsWith(code, "AuthFailure") || absl::StartsWith(code, "UnauthorizedOperation")) {
    return absl::StatusCode::kPermissionDenied;
  }
  return absl::StatusCode::kFailedPrecondition;
}

struct StsCall {
  const char* action = "";
  std::string region;
  std::string body;
  const Credentials* signer = nullptr;  // nullptr: unsigned (Authorization: SKIP)
  absl::Duration timeout;
  std::vector<absl::string_view> secrets;  // scrubbed from any error text
};

// One STS action over the shared signed-request path; STS failures become
// the plain status codes the credential chain acts on (see CodeForStsError).
absl::StatusOr<Credentials> CallSts(TencentApiCaller& caller, const StsCall& call) {
  ApiRequest request;
  request.action = call.action;
  request.region = call.region;
  request.body = call.body;
  request.credentials = call.signer;
  request.timeout = call.timeout;

  const std::string what = absl::StrCat("STS ", call.action);
  auto scrub = [&call](std::string text) {
    for (absl::string_view s : call.secrets) text = Scrub(std::move(text), {s});
    return text;
  };
  absl::StatusOr<std::string> body = caller.Call(request);
  if (!body.ok()) {
    const ApiError error = ErrorOf(body.status());
    if (error.kind == ErrorKind::kApi) {
      return absl::Status(
          CodeForStsError(error.code, error.http_status),
          scrub(absl::StrCat(what, ": ", error.code, ": ", error.message,
                             error.request_id.empty()
                                 ? ""
                                 : absl::StrCat(" (RequestId ", error.request_id, ")"))));
    }
    if (error.kind == ErrorKind::kHttpStatus) {
      return absl::Status(
          CodeForStsError("", error.http_status),
          absl::StrCat(what, ": HTTP status ", error.http_status, " without a Tencent error body"));
    }
    return absl::UnavailableError(scrub(absl::StrCat(what, ": ", error.message)));
  }
  // The body is never quoted: a half-readable answer may hold a key.
  auto malformed = [&](const char* why) {
    return absl::UnavailableError(
        absl::StrCat(what, ": malformed response (", why, ", ", body->size(), " bytes)"));
  };
  rapidjson::Document doc;
  doc.Parse(body->data(), body->size());
  const rapidjson::Value* r = nullptr;
  if (!doc.HasParseError() && doc.IsObject()) {
    auto it = doc.FindMember("Response");
    if (it != doc.MemberEnd() && it->value.IsObject()) r = &it->value;
  }
  if (r == nullptr) return malformed("no Response object");
  auto creds = r->FindMember("Credentials");
  if (creds == r->MemberEnd() || !creds->value.IsObject()) return malformed("no Credentials");
  Credentials out;
  out.secret_id = Member(creds->value, "TmpSecretId");
  out.secret_key = Member(creds->value, "TmpSecretKey");
  out.token = Member(creds->value, "Token");
  if (out.secret_id.empty() || out.secret_key.empty() || out.token.empty()) {
    return malformed("TmpSecretId, TmpSecretKey or Token missing");
  }
  std::optional<absl::Time> expiry = ExpiryOf(*r);
  if (!expiry.has_value()) return malformed("no ExpiredTime");
  out.expiry = *expiry;
  return out;
}

std::string SessionName(Clock& clock) {
  return absl::StrCat("blueprint-sync-", absl::ToUnixMicros(clock.Now()));
}

int64_t DurationSeconds(absl::Duration d) {
  return std::clamp<int64_t>(absl::ToInt64Seconds(d), 1, kMaxDurationSeconds);
}

}  // namespace

// ---------------------------------------------------------------------------
// TKE OIDC

TkeOidcCredentialProvider::TkeOidcCredentialProvider(StsOptions options)
    : RefreshingCredentialProvider(options.refresh), options_(options) {
  const Getenv getenv = OrSystem(options.getenv);
  struct Var {
    const char* name;
    std::string* out;
  };
  const Var vars[] = {{kEnvTkeRegion, &region_},
                      {kEnvTkeProviderId, &provider_id_},
                      {kEnvTkeRoleArn, &role_arn_},
                      {kEnvTkeTokenFile, &token_file_}};
  std::vector<std::string> problems;
  int set = 0;
  for (const Var& var : vars) {
    std::optional<std::string> value = Env(getenv, var.name);
    if (!value.has_value()) {
      problems.push_back(absl::StrCat(var.name, " is not set"));
      continue;
    }
    ++set;
    if (value->empty()) problems.push_back(absl::StrCat(var.name, " is set but empty"));
    *var.out = *std::move(value);
  }
  if (set == 0) {
    config_ =
        absl::NotFoundError(absl::StrCat(kEnvTkeRegion, ", ", kEnvTkeProviderId, ", ",
                                         kEnvTkeRoleArn, " and ", kEnvTkeTokenFile, " not set"));
    return;
  }
  if (!problems.empty()) {
    config_ = absl::FailedPreconditionError(
        absl::StrCat("TKE OIDC: ", absl::StrJoin(problems, ", "),
                     " (all four TKE_* variables are required together)"));
    return;
  }
  const std::string endpoint = EnvOr(getenv, kEnvStsEndpoint, kDefaultStsEndpoint);
  if (absl::Status problem = StsEndpointProblem(endpoint); !problem.ok()) {
    config_ = absl::FailedPreconditionError(absl::StrCat("TKE OIDC: ", problem.message()));
    return;
  }
  caller_ = MakeStsCaller(
      endpoint, options.transport != nullptr ? options.transport : MakeCurlTransport(), clock());
}

absl::StatusOr<Credentials> TkeOidcCredentialProvider::Fetch() {
  // Re-read on every refresh: the kubelet rotates the projected token.
  absl::StatusOr<std::string> token = ReadTokenFile(token_file_);
  if (!token.ok())
    return absl::FailedPreconditionError(absl::StrCat("TKE OIDC: ", token.status().message()));
  const std::string session = SessionName(*clock());

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("ProviderId");
  w.String(provider_id_.c_str());
  w.Key("WebIdentityToken");
  w.String(token->c_str());
  w.Key("RoleArn");
  w.String(role_arn_.c_str());
  w.Key("RoleSessionName");
  w.String(session.c_str());
  w.Key("DurationSeconds");
  w.Int64(DurationSeconds(options_.duration));
  w.EndObject();

  StsCall call;
  call.action = kAssumeRoleWithWebIdentity;
  call.region = region_;
  call.body.assign(buf.GetString(), buf.GetSize());
  call.timeout = options_.timeout;
  call.secrets = {*token};
  return CallSts(*caller_, call);
}

// ---------------------------------------------------------------------------
// STS AssumeRole

AssumeRoleCredentialProvider::AssumeRoleCredentialProvider(
    std::shared_ptr<CredentialProvider> source, StsOptions options, std::string role_arn,
    std::string session_name)
    : RefreshingCredentialProvider(options.refresh),
      source_(std::move(source)),
      options_(options),
      role_arn_(std::move(role_arn)),
      session_name_(std::move(session_name)) {
  const Getenv getenv = OrSystem(options.getenv);
  if (role_arn_.empty()) role_arn_ = EnvOr(getenv, kEnvRoleArn, "");
  if (session_name_.empty()) session_name_ = EnvOr(getenv, kEnvRoleSessionName, "");
  region_ = EnvOr(getenv, kEnvRegion, kDefaultStsRegion);
  endpoint_ = EnvOr(getenv, kEnvStsEndpoint, kDefaultStsEndpoint);
  caller_ = MakeStsCaller(
      endpoint_, options.transport != nullptr ? options.transport : MakeCurlTransport(), clock());
}

std::string AssumeRoleCredentialProvider::Name() const { return "STS AssumeRole"; }

std::string AssumeRoleCredentialProvider::Source() const {
  return absl::StrCat("STS AssumeRole ", role_arn_, " with the key from ",
                      source_ != nullptr ? source_->Source() : "nothing");
}

absl::Status AssumeRoleCredentialProvider::Configured() const {
  if (role_arn_.empty()) return absl::NotFoundError(absl::StrCat(kEnvRoleArn, " not set"));
  if (source_ == nullptr) return absl::FailedPreconditionError("no source credential provider");
  return StsEndpointProblem(endpoint_);
}

absl::StatusOr<Credentials> AssumeRoleCredentialProvider::Fetch() {
  if (absl::Status problem = StsEndpointProblem(endpoint_); !problem.ok()) return problem;
  absl::StatusOr<Credentials> source = source_->GetCredentials();
  if (!source.ok()) {
    // Never NotFound: the role ARN is configured, so a missing key to sign
    // with is an error in its own right.
    return absl::FailedPreconditionError(absl::StrCat(
        kEnvRoleArn,
        " is set but there is no key to call AssumeRole with: ", source.status().message()));
  }
  const std::string session = session_name_.empty() ? SessionName(*clock()) : session_name_;

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("RoleArn");
  w.String(role_arn_.c_str());
  w.Key("RoleSessionName");
  w.String(session.c_str());
  w.Key("DurationSeconds");
  w.Int64(DurationSeconds(options_.duration));
  w.EndObject();

  StsCall call;
  call.action = kAssumeRole;
  call.region = region_;
  call.body.assign(buf.GetString(), buf.GetSize());
  call.signer = &*source;
  call.timeout = options_.timeout;
  call.secrets = {source->secret_key, source->token};
  return CallSts(*caller_, call);
}

}  // namespace blueprintsync::tencent
