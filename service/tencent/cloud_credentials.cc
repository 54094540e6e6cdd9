#include "service/tencent/cloud_credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "service/common/log.h"
#include "service/tencent/api_call.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::tencent {
namespace {

using Getenv = EnvCredentialProvider::Getenv;

constexpr char kAssumeRole[] = "AssumeRole";
constexpr char kAssumeRoleWithWebIdentity[] = "AssumeRoleWithWebIdentity";
// A projected service-account token is 1-2 KiB; a metadata answer a few
// hundred bytes.
constexpr size_t kMaxTokenFileBytes = 64 * 1024;
constexpr int64_t kMaxDurationSeconds = 43200;

std::optional<std::string> SystemGetenv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Getenv OrSystem(Getenv getenv) { return getenv ? std::move(getenv) : Getenv(SystemGetenv); }

// Trimmed, as in credentials.cc: a value pasted with a trailing newline is
// never meant to contain it.
std::optional<std::string> Env(const Getenv& getenv, const char* name) {
  std::optional<std::string> value = getenv(name);
  if (!value.has_value()) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(*value));
}

std::string EnvOr(const Getenv& getenv, const char* name, std::string fallback) {
  std::optional<std::string> value = Env(getenv, name);
  return value.has_value() && !value->empty() ? *std::move(value) : std::move(fallback);
}

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

std::string Member(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// ExpiredTime (Unix seconds) when present, else the ISO-8601 Expiration.
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

// ---------------------------------------------------------------------------
// RefreshingCredentialProvider

RefreshingCredentialProvider::RefreshingCredentialProvider(RefreshOptions options)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : SystemClock::Default()) {}

absl::Time RefreshingCredentialProvider::RefreshAt(const Credentials& c, absl::Time fetched) const {
  const absl::Duration lifetime = c.expiry - fetched;
  absl::Duration margin = std::max(options_.min_margin, lifetime * options_.margin_fraction);
  margin = std::min(margin, lifetime / 2);
  return c.expiry - margin;
}

absl::StatusOr<Credentials> RefreshingCredentialProvider::GetCredentials() {
  if (absl::Status configured = Configured(); !configured.ok()) return configured;
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      const absl::Time now = clock_->Now();
      if (current_.has_value() && now < refresh_at_) return *current_;
      const bool usable = current_.has_value() && now < current_->expiry;
      if (!refreshing_) break;  // this caller refreshes
      if (usable) return *current_;
      const uint64_t seen = attempts_;
      mu_.Await(absl::Condition(
          +[](bool* refreshing) { return !*refreshing; }, &refreshing_));
      if (attempts_ != seen && !last_attempt_.ok()) {
        // The refresh this caller waited for failed; share its outcome
        // rather than queueing another call behind it.
        if (current_.has_value() && clock_->Now() < current_->expiry) return *current_;
        return last_attempt_;
      }
    }
    refreshing_ = true;
  }

  absl::StatusOr<Credentials> fetched = Fetch();
  const absl::Time done = clock_->Now();
  if (fetched.ok()) {
    absl::Status invalid;
    if (fetched->secret_id.empty() || fetched->secret_key.empty()) {
      invalid = absl::InternalError("returned an empty SecretId or SecretKey");
    } else if (fetched->expiry <= done) {
      invalid = absl::UnavailableError(
          absl::StrCat("returned credentials that expired at ", absl::FormatTime(fetched->expiry)));
    }
    if (!invalid.ok()) fetched = invalid;
  }

  absl::StatusOr<Credentials> result;
  std::optional<std::string> warn_error;
  std::string warn_serving;
  int64_t failures = 0;
  {
    absl::MutexLock lock(&mu_);
    refreshing_ = false;
    ++attempts_;
    if (fetched.ok()) {
      current_ = *fetched;
      refresh_at_ = RefreshAt(*current_, done);
      last_attempt_ = absl::OkStatus();
      last_error_ = absl::OkStatus();
      result = *current_;
    } else if (absl::IsNotFound(fetched.status()) && !current_.has_value()) {
      // Simply not configured here: no failure, no warning.
      last_attempt_ = fetched.status();
      result = fetched.status();
    } else {
      absl::Status error = fetched.status();
      if (absl::IsNotFound(error)) {
        // It worked before, so this is a failure, not "not configured".
        error = absl::UnavailableError(error.message());
      }
      ++failures_;
      failures = failures_;
      last_attempt_ = error;
      last_error_ = error;
      warn_error = std::string(error.message());
      if (current_.has_value() && done < current_->expiry) {
        warn_serving = absl::StrCat(
            "cached credentials until ",
            absl::FormatTime(absl::RFC3339_sec, current_->expiry, absl::UTCTimeZone()));
        result = *current_;
        refresh_at_ = std::min(done + options_.failure_backoff, current_->expiry);
      } else {
        warn_serving = "none";
        if (current_.has_value()) {
          result = absl::Status(error.code(),
                                absl::StrCat("credentials expired at ",
                                             absl::FormatTime(absl::RFC3339_sec, current_->expiry,
                                                              absl::UTCTimeZone()),
                                             " and the refresh failed: ", error.message()));
        } else {
          result = error;
        }
      }
    }
  }
  const std::string name = Name();
  if (warn_error.has_value()) {
    const std::string count = absl::StrCat(failures);
    log::Warn("credential refresh failed", {{"provider", name},
                                            {"error", *warn_error},
                                            {"serving", warn_serving},
                                            {"refresh_failures", count}});
  } else if (fetched.ok()) {
    const std::string masked = MaskSecretId(fetched->secret_id);
    const std::string expiry =
        absl::FormatTime(absl::RFC3339_sec, fetched->expiry, absl::UTCTimeZone());
    log::Info("credentials refreshed",
              {{"provider", name}, {"secret_id", masked}, {"expires", expiry}});
  }
  return result;
}

int64_t RefreshingCredentialProvider::refresh_failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

absl::Status RefreshingCredentialProvider::last_refresh_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

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

// ---------------------------------------------------------------------------
// CVM role

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

// ---------------------------------------------------------------------------
// Chain

int64_t CredentialRefreshFailures(const CredentialProvider& provider) {
  int64_t total = 0;
  if (const auto* refreshing = dynamic_cast<const RefreshingCredentialProvider*>(&provider)) {
    total += refreshing->refresh_failures();
  }
  if (const auto* assume = dynamic_cast<const AssumeRoleCredentialProvider*>(&provider);
      assume != nullptr && assume->source() != nullptr) {
    total += CredentialRefreshFailures(*assume->source());
  }
  if (const auto* chain = dynamic_cast<const CredentialProviderChain*>(&provider)) {
    for (const std::shared_ptr<CredentialProvider>& p : chain->providers()) {
      if (p != nullptr) total += CredentialRefreshFailures(*p);
    }
  }
  return total;
}

std::shared_ptr<CredentialProvider> MakeCloudCredentialChain(CloudChainOptions options) {
  const Getenv getenv = OrSystem(options.getenv);
  RefreshOptions refresh;
  refresh.clock = options.clock;
  StsOptions sts;
  sts.transport = options.transport != nullptr ? options.transport : MakeCurlTransport();
  sts.getenv = getenv;
  sts.refresh = refresh;
  CvmRoleOptions cvm;
  cvm.getter = options.getter;
  cvm.getenv = getenv;
  cvm.refresh = refresh;
  auto base =
      std::make_shared<CredentialProviderChain>(std::vector<std::shared_ptr<CredentialProvider>>{
          std::make_shared<EnvCredentialProvider>(getenv),
          std::make_shared<ProfileCredentialProvider>("", getenv),
          std::make_shared<TkeOidcCredentialProvider>(sts),
          std::make_shared<CvmRoleCredentialProvider>(cvm)});
  if (EnvOr(getenv, kEnvRoleArn, "").empty()) return base;
  return std::make_shared<AssumeRoleCredentialProvider>(base, sts);
}

}  // namespace blueprintsync::tencent
