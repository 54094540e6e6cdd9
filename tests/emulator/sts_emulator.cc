#include "tests/emulator/sts_emulator.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/tencent/crypto.h"
#include "tests/emulator/lighthouse_emulator.h"
#include "tests/emulator/tc3_verifier.h"

namespace blueprintsync::emulator {
namespace {

namespace crypto = ::blueprintsync::tencent::crypto;

constexpr int64_t kMaxClockSkewSeconds = 300;
constexpr int64_t kDefaultDurationSeconds = 7200;
constexpr int64_t kMaxDurationSeconds = 43200;

std::string_view Std(absl::string_view v) { return {v.data(), v.size()}; }
absl::string_view View(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

void Str(JsonWriter& w, absl::string_view key, absl::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

struct StsError {
  std::string code;
  std::string message;
};

std::string Envelope(const StsError& e, absl::string_view request_id) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("Response");
  w.StartObject();
  w.Key("Error");
  w.StartObject();
  Str(w, "Code", e.code);
  Str(w, "Message", e.message);
  w.EndObject();
  Str(w, "RequestId", request_id);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool AllDigits(absl::string_view s) {
  if (s.empty() || s.size() > 18) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// CAM's session-name rule: 2..128 of [\w+=,.@-].
bool IsSessionName(absl::string_view s) {
  if (s.size() < 2 || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           absl::string_view("_+=,.@-").find(c) != absl::string_view::npos;
  });
}

struct Params {
  std::string role_arn;
  std::string session_name;
  int64_t duration = kDefaultDurationSeconds;
  std::string provider_id;
  std::string web_identity_token;
};

// Parses and checks the body of either action.
std::optional<StsError> ParseParams(absl::string_view body, bool web_identity, Params& p) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return StsError{"InvalidParameter", "The request body is not valid JSON (expected an object)."};
  }
  static const std::vector<absl::string_view> kWebIdentityParams = {
      "ProviderId", "WebIdentityToken", "RoleArn", "RoleSessionName", "DurationSeconds"};
  static const std::vector<absl::string_view> kAssumeRoleParams = {
      "RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "ExternalId"};
  const std::vector<absl::string_view>& allowed =
      web_identity ? kWebIdentityParams : kAssumeRoleParams;
  for (const auto& m : doc.GetObject()) {
    if (std::find(allowed.begin(), allowed.end(), View(m.name)) == allowed.end()) {
      return StsError{"UnknownParameter",
                      absl::StrCat("The parameter `", View(m.name), "` is not recognized.")};
    }
  }
  auto required = [&doc](const char* name, std::string& out) -> std::optional<StsError> {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) {
      return StsError{"MissingParameter",
                      absl::StrCat("The request is missing the required parameter `", name, "`.")};
    }
    if (!it->value.IsString()) {
      return StsError{"InvalidParameter",
                      absl::StrCat("The parameter `", name, "` must be a string.")};
    }
    out = std::string(View(it->value));
    return std::nullopt;
  };
  if (web_identity) {
    if (auto e = required("ProviderId", p.provider_id)) return e;
    if (auto e = required("WebIdentityToken", p.web_identity_token)) return e;
  }
  if (auto e = required("RoleArn", p.role_arn)) return e;
  if (auto e = required("RoleSessionName", p.session_name)) return e;
  if (!IsSessionName(p.session_name)) {
    return StsError{"InvalidParameter.ParamError",
                    "RoleSessionName must be 2-128 characters of [\\w+=,.@-]."};
  }
  if (auto it = doc.FindMember("DurationSeconds"); it != doc.MemberEnd()) {
    if (!it->value.IsInt64() || it->value.GetInt64() < 1 ||
        it->value.GetInt64() > kMaxDurationSeconds) {
      return StsError{
          "InvalidParameter.ParamError",
          absl::StrCat("DurationSeconds must be an integer in [1, ", kMaxDurationSeconds, "].")};
    }
    p.duration = it->value.GetInt64();
  }
  return std::nullopt;
}

absl::Status AdminError(absl::string_view what) { return absl::InvalidArgumentError(what); }

absl::StatusOr<rapidjson::Document> AdminObject(absl::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return AdminError("body must be a JSON object");
  return doc;
}

absl::Status AdminInt(const rapidjson::Value& v, absl::string_view name, int64_t& out) {
  if (!v.IsInt64() || v.GetInt64() < 0) {
    return AdminError(absl::StrCat(name, " must be a non-negative integer"));
  }
  out = v.GetInt64();
  return absl::OkStatus();
}

absl::Status AdminString(const rapidjson::Value& v, absl::string_view name, std::string& out) {
  if (!v.IsString()) return AdminError(absl::StrCat(name, " must be a string"));
  out = std::string(View(v));
  return absl::OkStatus();
}

ApiResponse Json(int status, std::string body) {
  ApiResponse r;
  r.http_status = status;
  r.body = std::move(body);
  return r;
}

ApiResponse Text(int status, std::string body) {
  ApiResponse r;
  r.http_status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

void WriteCounters(JsonWriter& w, const char* name, int64_t requests, int64_t issued,
                   int64_t errors) {
  w.Key(name);
  w.StartObject();
  w.Key("requests");
  w.Int64(requests);
  w.Key("issued");
  w.Int64(issued);
  w.Key("errors");
  w.Int64(errors);
  w.EndObject();
}

}  // namespace

StsEmulator::StsEmulator(Clock* clock, KeyLookup lookup, KeySink sink)
    : clock_(clock),
      lookup_(std::move(lookup)),
      sink_(std::move(sink)),
      rng_(std::random_device{}()) {}

bool StsEmulator::IsStsRequest(const ApiRequest& request) {
  if (auto v = request.Header("X-TC-Version");
      v.has_value() && absl::StripAsciiWhitespace(*v) == kStsApiVersion) {
    return true;
  }
  auto host = request.Header("Host");
  return host.has_value() && absl::StartsWithIgnoreCase(absl::StripAsciiWhitespace(*host), "sts.");
}

StsEmulator::Issued StsEmulator::NewKey() {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  auto random = [this](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s.push_back(kAlphabet[rng_() % 62]);
    return s;
  };
  return Issued{absl::StrCat("AKIDSTS", random(29)), random(32), random(96)};
}

std::string StsEmulator::NewRequestId() {
  uint64_t hi = rng_();
  uint64_t lo = rng_();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

ApiResponse StsEmulator::HandleSts(const ApiRequest& request) {
  const absl::Time now = clock_->Now();
  const std::string action(absl::StripAsciiWhitespace(request.Header("X-TC-Action").value_or("")));
  const bool is_assume_role = action == kAssumeRole;
  const bool is_web_identity = action == kAssumeRoleWithWebIdentity;
  StsEmulatorConfig config;
  std::string request_id;
  bool inject = false;
  {
    absl::MutexLock lock(&mu_);
    Counters& c = is_assume_role ? assume_role_ : is_web_identity ? web_identity_ : sts_other_;
    ++c.requests;
    request_id = NewRequestId();
    config = sts_;
    if (sts_.fail_next > 0) {
      --sts_.fail_next;
      inject = true;
    }
  }
  auto fail = [&](StsError e) {
    absl::MutexLock lock(&mu_);
    ++(is_assume_role ? assume_role_ : is_web_identity ? web_identity_ : sts_other_).errors;
    return Json(200, Envelope(e, request_id));
  };
  if (inject) {
    return fail({"InternalError",
                 "An internal error has occurred. Retry your request (injected by the emulator)."});
  }

  const absl::string_view version =
      absl::StripAsciiWhitespace(request.Header("X-TC-Version").value_or(""));
  if (version.empty()) {
    return fail({"MissingParameter", "The request is missing the required header X-TC-Version."});
  }
  if (version != kStsApiVersion) {
    return fail(
        {"NoSuchVersion", absl::StrCat("The API version `", version, "` does not exist for sts.")});
  }
  if (!is_assume_role && !is_web_identity) {
    return fail({"InvalidAction",
                 absl::StrCat("The action `", action, "` is not found for sts 2018-08-13.")});
  }
  const absl::string_view ts_text =
      absl::StripAsciiWhitespace(request.Header("X-TC-Timestamp").value_or(""));
  if (ts_text.empty()) {
    return fail({"MissingParameter", "The request is missing the required header X-TC-Timestamp."});
  }
  if (!AllDigits(ts_text)) {
    return fail({"InvalidParameter", "X-TC-Timestamp must be an integer number of seconds."});
  }
  const int64_t ts = std::stoll(std::string(ts_text));
  const int64_t server_now = absl::ToUnixSeconds(now);
  if (ts > server_now + kMaxClockSkewSeconds || ts < server_now - kMaxClockSkewSeconds) {
    return fail({"AuthFailure.SignatureExpire",
                 absl::StrCat("Signature expired: the server time is ", server_now, ".")});
  }
  const absl::string_view authorization =
      absl::StripAsciiWhitespace(request.Header("Authorization").value_or(""));
  if (is_web_identity) {
    if (authorization != "SKIP") {
      return fail({"AuthFailure.InvalidAuthorization",
                   "AssumeRoleWithWebIdentity must be sent unsigned (Authorization: SKIP)."});
    }
  } else {
    absl::StatusOr<Tc3Authorization> auth = ParseTc3Authorization(authorization);
    if (!auth.ok()) {
      return fail({"AuthFailure.InvalidAuthorization", std::string(auth.status().message())});
    }
    if (auth->date != UtcDateOf(ts)) {
      return fail({"AuthFailure.InvalidAuthorization",
                   "The date in the credential scope does not match the UTC date of "
                   "X-TC-Timestamp."});
    }
    if (auth->service != "sts") {
      return fail({"AuthFailure.InvalidAuthorization",
                   absl::StrCat("The service in the credential scope must be `sts`, got `",
                                auth->service, "`.")});
    }
    std::optional<EmulatorKey> key = lookup_(auth->secret_id);
    if (!key.has_value()) {
      return fail({"AuthFailure.SecretIdNotFound",
                   "The SecretId is not found, please ensure that your SecretId is correct."});
    }
    if (key->token.has_value()) {
      auto token = request.Header("X-TC-Token");
      if (!token.has_value() || !crypto::ConstantTimeEquals(Std(*token), *key->token)) {
        return fail({"AuthFailure.TokenFailure", "The token is missing or invalid."});
      }
      if (key->expires.has_value() && now >= *key->expires) {
        return fail({"AuthFailure.TokenFailure", "The temporary credentials have expired."});
      }
    }
    std::vector<std::pair<std::string, std::string>> headers;
    for (const std::string& name : auth->signed_header_names) {
      headers.emplace_back(name, CanonicalHeaderValue(name, request.Header(name).value_or("")));
    }
    const std::string canonical = BuildCanonicalRequest(
        "POST", "/", "", headers, auth->signed_headers, crypto::Sha256Hex(request.body));
    const std::string expected =
        ExpectedTc3Signature(key->secret_key, auth->date, auth->service, ts_text, canonical);
    if (!crypto::ConstantTimeEquals(expected, auth->signature)) {
      return fail({"AuthFailure.SignatureFailure",
                   "The provided credentials could not be validated. Please check your "
                   "signature is correct."});
    }
  }
  if (absl::StripAsciiWhitespace(request.Header("X-TC-Region").value_or("")).empty()) {
    return fail({"MissingParameter", "The request is missing the required parameter `Region`."});
  }

  Params p;
  if (auto e = ParseParams(request.body, is_web_identity, p)) return fail(*std::move(e));
  if (is_web_identity) {
    if (p.provider_id != config.provider_id) {
      return fail({"InvalidParameter.ProviderIdError",
                   absl::StrCat("The identity provider `", p.provider_id, "` does not exist.")});
    }
    // The token is compared, never quoted back.
    if (!crypto::ConstantTimeEquals(p.web_identity_token, config.web_identity_token)) {
      return fail({"InvalidParameter.WebIdentityTokenError", "Invalid token."});
    }
    if (config.web_identity_token_expiry > 0 && server_now >= config.web_identity_token_expiry) {
      return fail({"InvalidParameter.WebIdentityTokenError", "Expired token."});
    }
  }
  if (p.role_arn != config.role_arn) {
    return fail({"ResourceNotFound.RoleNotExist",
                 absl::StrCat("The role `", p.role_arn, "` does not exist.")});
  }

  const int64_t duration = config.duration_seconds > 0 ? config.duration_seconds : p.duration;
  const absl::Time expires = now + absl::Seconds(duration);
  Issued issued;
  {
    absl::MutexLock lock(&mu_);
    issued = NewKey();
    ++(is_assume_role ? assume_role_ : web_identity_).issued;
  }
  sink_(EmulatorKey{issued.secret_id, issued.secret_key, issued.token, expires});

  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("Response");
  w.StartObject();
  w.Key("Credentials");
  w.StartObject();
  Str(w, "Token", issued.token);
  Str(w, "TmpSecretId", issued.secret_id);
  Str(w, "TmpSecretKey", issued.secret_key);
  w.EndObject();
  w.Key("ExpiredTime");
  w.Int64(absl::ToUnixSeconds(expires));
  Str(w, "Expiration", IsoUtc(expires));
  Str(w, "RequestId", request_id);
  w.EndObject();
  w.EndObject();
  return Json(200, std::string(buf.GetString(), buf.GetSize()));
}

ApiResponse StsEmulator::HandleMetadata(absl::string_view role) {
  const absl::Time now = clock_->Now();
  MetadataEmulatorConfig config;
  {
    absl::MutexLock lock(&mu_);
    ++metadata_stats_.requests;
    if (metadata_.fail_next > 0) {
      --metadata_.fail_next;
      ++metadata_stats_.errors;
      return Text(500, "injected metadata failure\n");
    }
    config = metadata_;
  }
  auto not_found = [this] {
    absl::MutexLock lock(&mu_);
    ++metadata_stats_.errors;
    return Text(404, "Not Found\n");
  };
  if (config.role.empty()) return not_found();
  if (role.empty()) return Text(200, config.role);
  if (role != config.role) return not_found();

  const absl::Time expires = now + absl::Seconds(config.duration_seconds);
  Issued issued;
  {
    absl::MutexLock lock(&mu_);
    issued = NewKey();
    if (config.code == "Success") ++metadata_stats_.issued;
  }
  if (config.code == "Success") {
    sink_(EmulatorKey{issued.secret_id, issued.secret_key, issued.token, expires});
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  Str(w, "TmpSecretId", issued.secret_id);
  Str(w, "TmpSecretKey", issued.secret_key);
  w.Key("ExpiredTime");
  w.Int64(absl::ToUnixSeconds(expires));
  Str(w, "Expiration", IsoUtc(expires));
  Str(w, "Token", issued.token);
  Str(w, "Code", config.code);
  w.EndObject();
  return Json(200, std::string(buf.GetString(), buf.GetSize()));
}

absl::Status StsEmulator::ConfigureSts(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = AdminObject(json);
  if (!doc.ok()) return doc.status();
  absl::MutexLock lock(&mu_);
  StsEmulatorConfig next = sts_;
  for (const auto& m : doc->GetObject()) {
    const absl::string_view key = View(m.name);
    absl::Status st;
    if (key == "provider_id") {
      st = AdminString(m.value, key, next.provider_id);
    } else if (key == "role_arn") {
      st = AdminString(m.value, key, next.role_arn);
    } else if (key == "web_identity_token") {
      st = AdminString(m.value, key, next.web_identity_token);
    } else if (key == "web_identity_token_expiry") {
      st = AdminInt(m.value, key, next.web_identity_token_expiry);
    } else if (key == "duration_seconds") {
      st = AdminInt(m.value, key, next.duration_seconds);
    } else if (key == "fail_next") {
      st = AdminInt(m.value, key, next.fail_next);
    } else {
      st = AdminError(absl::StrCat("unknown sts key ", key));
    }
    if (!st.ok()) return st;
  }
  sts_ = std::move(next);
  return absl::OkStatus();
}

absl::Status StsEmulator::ConfigureMetadata(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = AdminObject(json);
  if (!doc.ok()) return doc.status();
  absl::MutexLock lock(&mu_);
  MetadataEmulatorConfig next = metadata_;
  for (const auto& m : doc->GetObject()) {
    const absl::string_view key = View(m.name);
    absl::Status st;
    if (key == "role") {
      st = AdminString(m.value, key, next.role);
      if (st.ok() && next.role.find('/') != std::string::npos) {
        st = AdminError("role must not contain '/'");
      }
    } else if (key == "duration_seconds") {
      st = AdminInt(m.value, key, next.duration_seconds);
    } else if (key == "fail_next") {
      st = AdminInt(m.value, key, next.fail_next);
    } else if (key == "code") {
      st = AdminString(m.value, key, next.code);
    } else {
      st = AdminError(absl::StrCat("unknown metadata key ", key));
    }
    if (!st.ok()) return st;
  }
  metadata_ = std::move(next);
  return absl::OkStatus();
}

std::string StsEmulator::StsConfigJson() {
  absl::MutexLock lock(&mu_);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  Str(w, "provider_id", sts_.provider_id);
  Str(w, "role_arn", sts_.role_arn);
  w.Key("web_identity_token_set");
  w.Bool(!sts_.web_identity_token.empty());
  w.Key("web_identity_token_expiry");
  w.Int64(sts_.web_identity_token_expiry);
  w.Key("duration_seconds");
  w.Int64(sts_.duration_seconds);
  w.Key("fail_next");
  w.Int64(sts_.fail_next);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string StsEmulator::MetadataConfigJson() {
  absl::MutexLock lock(&mu_);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  Str(w, "role", metadata_.role);
  w.Key("duration_seconds");
  w.Int64(metadata_.duration_seconds);
  w.Key("fail_next");
  w.Int64(metadata_.fail_next);
  Str(w, "code", metadata_.code);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void StsEmulator::WriteStats(JsonWriter& w) {
  absl::MutexLock lock(&mu_);
  w.Key("sts");
  w.StartObject();
  w.Key("requests");
  w.Int64(assume_role_.requests + web_identity_.requests + sts_other_.requests);
  w.Key("errors");
  w.Int64(assume_role_.errors + web_identity_.errors + sts_other_.errors);
  WriteCounters(w, kAssumeRole, assume_role_.requests, assume_role_.issued, assume_role_.errors);
  WriteCounters(w, kAssumeRoleWithWebIdentity, web_identity_.requests, web_identity_.issued,
                web_identity_.errors);
  w.EndObject();
  WriteCounters(w, "metadata", metadata_stats_.requests, metadata_stats_.issued,
                metadata_stats_.errors);
}

void StsEmulator::ResetStats() {
  absl::MutexLock lock(&mu_);
  assume_role_ = Counters{};
  web_identity_ = Counters{};
  sts_other_ = Counters{};
  metadata_stats_ = Counters{};
}

}  // namespace blueprintsync::emulator
