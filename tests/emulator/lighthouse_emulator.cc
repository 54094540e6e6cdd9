#include "tests/emulator/lighthouse_emulator.h"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "service/tencent/crypto.h"
#include "tests/emulator/emulator_regions.h"
#include "tests/emulator/tc3_verifier.h"

namespace blueprintsync::emulator {
namespace {

namespace crypto = ::blueprintsync::tencent::crypto;

constexpr int64_t kMaxClockSkewSeconds = 300;
constexpr size_t kMaxDestinationRegions = 10;
constexpr size_t kMaxBlueprintIds = 100;
constexpr size_t kMaxFilters = 10;
constexpr size_t kMaxFilterValues = 100;
constexpr int64_t kDefaultLimit = 20;
constexpr int64_t kMaxLimit = 100;

const char* const kActions[] = {kSyncBlueprint, kDescribeBlueprints, kDescribeRegions,
                                kDeleteBlueprints};
const char* const kFaultKinds[] = {"internal_error", "http_5xx",       "latency",
                                   "drop",           "malformed",      "error",
                                   "hostile_error",  "hostile_fields", "huge_body"};
// Hostile sizes are capped so that a typo cannot make the emulator allocate
// gigabytes.
constexpr int64_t kMaxHostileBytes = 64 * 1024 * 1024;

// Debian's Abseil has its own string_view; the crypto helpers take std's.
std::string_view Std(absl::string_view v) { return {v.data(), v.size()}; }

// The states DeleteBlueprints documents as deletable.
bool IsDeletableState(absl::string_view state) {
  return state == "NORMAL" || state == "ISOLATED" || state == "CREATEFAILED" ||
         state == "SYNCING_FAILED";
}

absl::string_view View(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

void Str(JsonWriter& w, absl::string_view key, absl::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string ErrorEnvelope(absl::string_view code, absl::string_view message,
                          absl::string_view request_id) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("Response");
  w.StartObject();
  w.Key("Error");
  w.StartObject();
  Str(w, "Code", code);
  Str(w, "Message", message);
  w.EndObject();
  Str(w, "RequestId", request_id);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// Checks that every member of `doc` is one of `allowed`.
std::optional<std::string> FindUnknownParameter(const rapidjson::Document& doc,
                                                std::initializer_list<absl::string_view> allowed) {
  for (const auto& m : doc.GetObject()) {
    const absl::string_view name = View(m.name);
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return std::string(name);
    }
  }
  return std::nullopt;
}

bool IsStringArray(const rapidjson::Value& v) {
  if (!v.IsArray()) return false;
  for (const auto& e : v.GetArray()) {
    if (!e.IsString()) return false;
  }
  return true;
}

bool AllDigits(absl::string_view s) {
  if (s.empty() || s.size() > 18) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

const std::set<absl::string_view>& FilterNames() {
  static const auto* const names =
      new std::set<absl::string_view>{"blueprint-id",   "blueprint-type",  "platform-type",
                                      "blueprint-name", "blueprint-state", "scene-id"};
  return *names;
}

bool FilterMatches(const Blueprint& bp, absl::string_view name,
                   const std::vector<std::string>& values) {
  auto in = [&values](absl::string_view v) {
    return std::find(values.begin(), values.end(), v) != values.end();
  };
  if (name == "blueprint-id") return in(bp.id);
  if (name == "blueprint-type") return in(bp.blueprint_type);
  if (name == "platform-type") return bp.platform_type.has_value() && in(*bp.platform_type);
  if (name == "blueprint-name") return bp.blueprint_name.has_value() && in(*bp.blueprint_name);
  if (name == "blueprint-state") return in(bp.state);
  if (name == "scene-id") {
    return std::any_of(bp.scene_ids.begin(), bp.scene_ids.end(), in);
  }
  return false;
}

absl::Status AdminError(absl::string_view what) { return absl::InvalidArgumentError(what); }

// ModifyBlueprintAttribute's limit on BlueprintName.
constexpr size_t kMaxBlueprintNameChars = 60;

// The BlueprintState values Tencent documents.
constexpr const char* kDocumentedStates[] = {"NORMAL",   "SYNCING",      "SYNCING_FAILED",
                                             "OFFLINE",  "CREATEFAILED", "ISOLATING",
                                             "ISOLATED", "DELETING",     "DESTROYING"};

bool IsDocumentedState(absl::string_view state) {
  return std::any_of(std::begin(kDocumentedStates), std::end(kDocumentedStates),
                     [state](const char* s) { return state == s; });
}

// Characters, not bytes: Tencent counts a Chinese name's characters.
size_t Utf8Length(absl::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

absl::StatusOr<rapidjson::Document> ParseAdminObject(absl::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return AdminError("body must be a JSON object");
  return doc;
}

absl::StatusOr<int64_t> NonNegativeInt(const rapidjson::Value& v, absl::string_view name) {
  if (!v.IsInt64() || v.GetInt64() < 0) {
    return AdminError(absl::StrCat(name, " must be a non-negative integer"));
  }
  return v.GetInt64();
}

}  // namespace

bool IsEmulatedAction(absl::string_view action) {
  return std::any_of(std::begin(kActions), std::end(kActions),
                     [action](const char* known) { return action == known; });
}

std::optional<absl::string_view> ApiRequest::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return absl::string_view(v);
  }
  return std::nullopt;
}

LighthouseEmulator::LighthouseEmulator(EmulatorOptions options)
    : clock_(options.clock != nullptr ? options.clock : SystemClock::Default()),
      log_requests_(options.log_requests),
      sts_(
          clock_, [this](const std::string& id) { return FindKey(id); },
          [this](EmulatorKey key) { AddKey(std::move(key)); }),
      fault_rng_(options.fault_seed),
      id_rng_(std::random_device{}()) {
  absl::MutexLock lock(&mu_);
  config_ = std::move(options.config);
  if (options.default_keys) {
    keys_[kDefaultSecretId] = {kDefaultSecretId, kDefaultSecretKey, std::nullopt, std::nullopt};
    keys_[kDefaultTemporarySecretId] = {kDefaultTemporarySecretId, kDefaultTemporarySecretKey,
                                        std::string(kDefaultTemporaryToken), std::nullopt};
  }
  for (EmulatorKey& k : options.keys) keys_[k.secret_id] = std::move(k);
  std::vector<Blueprint> seed = options.seed.has_value() ? *std::move(options.seed) : DefaultSeed();
  for (Blueprint& bp : seed) blueprints_[{bp.region, bp.id}] = std::move(bp);
  ResetStatsLocked();
}

// ---------------------------------------------------------------------------
// API calls

ApiResponse LighthouseEmulator::HandleApi(const ApiRequest& request) {
  if (StsEmulator::IsStsRequest(request)) return sts_.HandleSts(request);
  const std::string request_id = NewRequestId();
  Admission a = Admit(request);
  if (a.error.has_value()) {
    Log(a, a.error->code, request_id);
    return {200, "application/json", ErrorEnvelope(a.error->code, a.error->message, request_id),
            false};
  }
  const std::optional<FaultRule>& fault = a.fault;
  const bool before = fault.has_value() && fault->phase == "before";
  const bool latency = fault.has_value() && fault->fault == "latency";

  if (before && latency) {
    clock_->SleepUntil(clock_->Now() + absl::Milliseconds(fault->latency_ms));
  }
  ApiResponse response;
  bool executed = false;
  std::string outcome;
  if (before && !latency) {
    response = FaultResponse(*fault, request_id, "");
  } else {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    w.Key("Response");
    w.StartObject();
    std::optional<ApiError> error = Execute(a, request.body, request_id, w);
    if (error.has_value()) {
      response.body = ErrorEnvelope(error->code, error->message, request_id);
      outcome = error->code;
    } else {
      Str(w, "RequestId", request_id);
      w.EndObject();
      w.EndObject();
      response.body.assign(buf.GetString(), buf.GetSize());
      executed = true;
      outcome = "OK";
    }
    if (fault.has_value() && !before) {
      if (latency) {
        clock_->SleepUntil(clock_->Now() + absl::Milliseconds(fault->latency_ms));
      } else {
        response = FaultResponse(*fault, request_id, response.body);
      }
    }
  }
  bool final_is_api_error = false;
  if (fault.has_value() && !latency) {
    outcome = absl::StrCat("fault:", fault->fault);
    final_is_api_error = fault->fault == "internal_error" || fault->fault == "error" ||
                         fault->fault == "hostile_error";
  } else {
    final_is_api_error = !executed;
  }
  {
    absl::MutexLock lock(&mu_);
    ActionStats& s = stats_.actions[a.action];
    if (executed) ++s.executed;
    if (final_is_api_error) ++s.errors;
    if (fault.has_value()) ++stats_.faults[fault->fault];
  }
  Log(a, outcome, request_id);
  return response;
}

LighthouseEmulator::Admission LighthouseEmulator::Admit(const ApiRequest& request) {
  Admission a;
  absl::MutexLock lock(&mu_);
  // The time a call is counted at is read under the lock that counts it, so
  // that calls are counted in the order of their times: read before, a
  // handler held up on its way to the lock (a loaded host) would count the
  // calls admitted meanwhile as if they had come before it, and leave its
  // own time behind a later one in the window, where it would outstay its
  // second. Either way the window would hold more than a second of calls.
  const absl::Time now = clock_->Now();
  ++stats_.requests_total;
  if (auto region = request.Header("X-TC-Region"); region.has_value()) {
    a.region = std::string(absl::StripAsciiWhitespace(*region));
  }
  if (auto action = request.Header("X-TC-Action"); action.has_value()) {
    a.action = std::string(absl::StripAsciiWhitespace(*action));
  }
  if (std::optional<ApiError> e = Authenticate(request, now, a.secret_id); e.has_value()) {
    ++stats_.auth_failures;
    if (e->code == "AuthFailure.SignatureFailure") ++stats_.signature_failures;
    a.error = std::move(e);
    return a;
  }

  const std::optional<absl::string_view> version = request.Header("X-TC-Version");
  if (!version.has_value()) {
    a.error =
        ApiError{"MissingParameter", "The request is missing the required header X-TC-Version."};
    return a;
  }
  if (absl::StripAsciiWhitespace(*version) != kApiVersion) {
    a.error = ApiError{"NoSuchVersion",
                       absl::StrCat("The API version `", absl::StripAsciiWhitespace(*version),
                                    "` does not exist for lighthouse.")};
    return a;
  }
  if (a.action.empty()) {
    a.error =
        ApiError{"MissingParameter", "The request is missing the required header X-TC-Action."};
    return a;
  }
  if (!IsEmulatedAction(a.action)) {
    a.error = ApiError{"InvalidAction", absl::StrCat("The action `", a.action,
                                                     "` is not found for lighthouse 2020-03-24.")};
    return a;
  }
  ActionStats& s = stats_.actions[a.action];
  ++s.received;
  auto fail = [&](std::string code, std::string message) {
    ++s.errors;
    a.error = ApiError{std::move(code), std::move(message)};
    return a;
  };

  if (a.action != kDescribeRegions) {
    if (!request.Header("X-TC-Region").has_value() || a.region.empty()) {
      return fail("MissingParameter", "The request is missing the required parameter `Region`.");
    }
    if (!regions_.Find(a.region).has_value()) {
      return fail("UnsupportedRegion",
                  absl::StrCat("The region `", a.region, "` is not supported by ", a.action, "."));
    }
  }
  // Before the rate limit: a throttled call is still a call the caller made.
  if (a.action == kDescribeBlueprints) ++stats_.describe_calls_by_region[a.region];

  // Sliding one-second window over accepted calls, account-wide per action.
  std::deque<absl::Time>& window = accepted_[a.action];
  while (!window.empty() && window.front() <= now - absl::Seconds(1)) window.pop_front();
  const int64_t limit = config_.rate_limits[a.action];
  if (limit > 0 && static_cast<int64_t>(window.size()) >= limit) {
    ++s.throttled;
    a.error = ApiError{"RequestLimitExceeded",
                       absl::StrCat("Your current request times equals to `", limit,
                                    "` in a second, which exceeds the frequency limit `", limit,
                                    "` for a second. Please reduce the frequency of calls.")};
    return a;
  }
  window.push_back(now);
  int64_t& max_accepted = stats_.max_accepted_per_second[a.action];
  max_accepted = std::max<int64_t>(max_accepted, static_cast<int64_t>(window.size()));

  for (FaultRule& rule : faults_) {
    if (rule.action != "*" && rule.action != a.action) continue;
    if (rule.count > 0 && rule.fired >= rule.count) continue;
    if (rule.probability <= 0.0) continue;
    if (rule.probability < 1.0 &&
        std::uniform_real_distribution<double>(0.0, 1.0)(fault_rng_) >= rule.probability) {
      continue;
    }
    ++rule.fired;
    a.fault = rule;
    break;
  }
  return a;
}

std::optional<LighthouseEmulator::ApiError> LighthouseEmulator::Authenticate(
    const ApiRequest& request, absl::Time now, std::string& secret_id) {
  const std::optional<absl::string_view> header = request.Header("Authorization");
  absl::StatusOr<Tc3Authorization> auth = ParseTc3Authorization(header.value_or(""));
  if (!auth.ok()) {
    return ApiError{"AuthFailure.InvalidAuthorization", std::string(auth.status().message())};
  }

  const std::optional<absl::string_view> ts_header = request.Header("X-TC-Timestamp");
  if (!ts_header.has_value()) {
    return ApiError{"MissingParameter",
                    "The request is missing the required header X-TC-Timestamp."};
  }
  const absl::string_view ts_text = absl::StripAsciiWhitespace(*ts_header);
  if (!AllDigits(ts_text)) {
    return ApiError{"InvalidParameter", "X-TC-Timestamp must be an integer number of seconds."};
  }
  const int64_t ts = std::stoll(std::string(ts_text));
  const int64_t server_now = absl::ToUnixSeconds(now);
  if (ts > server_now + kMaxClockSkewSeconds || ts < server_now - kMaxClockSkewSeconds) {
    return ApiError{
        "AuthFailure.SignatureExpire",
        absl::StrCat("Signature expired. Please use local time and enable NTP service for time "
                     "synchronization to avoid a deviation between `Timestamp` and the server "
                     "time ",
                     server_now, ".")};
  }
  if (auth->date != UtcDateOf(ts)) {
    return ApiError{"AuthFailure.InvalidAuthorization",
                    "The date in the credential scope does not match the UTC date of "
                    "X-TC-Timestamp."};
  }
  if (auth->service != "lighthouse") {
    return ApiError{"AuthFailure.InvalidAuthorization",
                    absl::StrCat("The service in the credential scope must be `lighthouse`, got `",
                                 auth->service, "`.")};
  }

  auto key = keys_.find(auth->secret_id);
  if (key == keys_.end()) {
    return ApiError{"AuthFailure.SecretIdNotFound",
                    "The SecretId is not found, please ensure that your SecretId is correct."};
  }
  if (key->second.token.has_value()) {
    const std::optional<absl::string_view> token = request.Header("X-TC-Token");
    if (!token.has_value() || !crypto::ConstantTimeEquals(Std(*token), *key->second.token)) {
      return ApiError{"AuthFailure.TokenFailure", "The token is missing or invalid."};
    }
    if (key->second.expires.has_value() && now >= *key->second.expires) {
      return ApiError{"AuthFailure.TokenFailure", "The temporary credentials have expired."};
    }
  }

  std::vector<std::pair<std::string, std::string>> canonical_headers;
  for (const std::string& name : auth->signed_header_names) {
    canonical_headers.emplace_back(name,
                                   CanonicalHeaderValue(name, request.Header(name).value_or("")));
  }
  const std::optional<absl::string_view> content_sha = request.Header("X-TC-Content-SHA256");
  const std::string payload_hash =
      content_sha.has_value() && absl::StripAsciiWhitespace(*content_sha) == "UNSIGNED-PAYLOAD"
          ? crypto::Sha256Hex("UNSIGNED-PAYLOAD")
          : crypto::Sha256Hex(request.body);
  const std::string canonical_request =
      BuildCanonicalRequest("POST", "/", "", canonical_headers, auth->signed_headers, payload_hash);
  const std::string expected = ExpectedTc3Signature(key->second.secret_key, auth->date,
                                                    auth->service, ts_text, canonical_request);
  if (!crypto::ConstantTimeEquals(expected, auth->signature)) {
    return ApiError{"AuthFailure.SignatureFailure",
                    "The provided credentials could not be validated. Please check your "
                    "signature is correct."};
  }
  secret_id = auth->secret_id;
  return std::nullopt;
}

std::optional<LighthouseEmulator::ApiError> LighthouseEmulator::Execute(
    const Admission& a, absl::string_view body, const std::string& request_id, JsonWriter& w) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return ApiError{"InvalidParameter", "The request body is not valid JSON (expected an object)."};
  }
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  AdvanceAll(now);
  if (a.action == kSyncBlueprint) return SyncBlueprint(a, doc, now, request_id, w);
  if (a.action == kDescribeBlueprints) return DescribeBlueprints(a, doc, now, w);
  if (a.action == kDeleteBlueprints) return DeleteBlueprints(a, doc, now, request_id);
  return DescribeRegions(doc, w);
}

std::optional<LighthouseEmulator::ApiError> LighthouseEmulator::SyncBlueprint(
    const Admission& a, const rapidjson::Document& doc, absl::Time now,
    const std::string& request_id, JsonWriter& w) {
  if (auto unknown = FindUnknownParameter(doc, {"BlueprintId", "DestinationRegions"})) {
    return ApiError{"UnknownParameter",
                    absl::StrCat("The parameter `", *unknown, "` is not recognized.")};
  }
  auto id_it = doc.FindMember("BlueprintId");
  auto dest_it = doc.FindMember("DestinationRegions");
  if (id_it != doc.MemberEnd() && !id_it->value.IsString()) {
    return ApiError{"InvalidParameter", "The parameter `BlueprintId` must be a string."};
  }
  if (dest_it != doc.MemberEnd() && !IsStringArray(dest_it->value)) {
    return ApiError{"InvalidParameter",
                    "The parameter `DestinationRegions` must be an array of strings."};
  }
  if (id_it == doc.MemberEnd()) {
    return ApiError{"MissingParameter",
                    "The request is missing the required parameter `BlueprintId`."};
  }
  if (dest_it == doc.MemberEnd()) {
    return ApiError{"MissingParameter",
                    "The request is missing the required parameter `DestinationRegions`."};
  }
  const std::string blueprint_id(View(id_it->value));
  if (!IsWellFormedBlueprintId(blueprint_id)) {
    return ApiError{"InvalidParameterValue.BlueprintIdMalformed",
                    absl::StrCat("The image ID `", blueprint_id, "` is malformed.")};
  }
  std::vector<std::string> destinations;
  for (const auto& d : dest_it->value.GetArray()) destinations.emplace_back(View(d));
  if (destinations.empty()) {
    return ApiError{"MissingParameter", "The parameter `DestinationRegions` must not be empty."};
  }
  if (destinations.size() > kMaxDestinationRegions) {
    return ApiError{
        "InvalidParameterValue.LimitExceeded",
        absl::StrCat("At most ", kMaxDestinationRegions, " destination regions are allowed, got ",
                     destinations.size(), ".")};
  }
  for (size_t i = 0; i < destinations.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (destinations[i] == destinations[j]) {
        return ApiError{
            "InvalidParameterValue.Duplicated",
            absl::StrCat("The destination region `", destinations[i], "` is duplicated.")};
      }
    }
  }
  const std::optional<RegionEntry> source = regions_.Find(a.region);
  for (const std::string& d : destinations) {
    if (!regions_.Find(d).has_value()) {
      return ApiError{"InvalidParameterValue.UnavailableRegion",
                      absl::StrCat("The region `", d, "` is not available.")};
    }
  }
  for (const std::string& d : destinations) {
    if (d == a.region) {
      return ApiError{
          "InvalidParameterValue.DestinationRegionSameAsSourceRegion",
          absl::StrCat("The destination region `", d, "` is the same as the source region.")};
    }
  }
  for (const std::string& d : destinations) {
    if (regions_.Find(d)->china_mainland != source->china_mainland) {
      return ApiError{"InvalidParameterValue.NotSupportCrossBorderSyncBlueprint",
                      absl::StrCat("Syncing from `", a.region, "` to `", d,
                                   "` crosses the Chinese mainland border.")};
    }
  }
  if (config_.no_permission_secret_ids.count(a.secret_id) > 0) {
    return ApiError{"UnauthorizedOperation.NoPermission",
                    "You are not authorized to perform this operation."};
  }
  if (config_.certification == "none") {
    return ApiError{"UnauthorizedOperation.NotCertification",
                    "The account identity verification has not been completed."};
  }
  if (config_.certification == "needs_upgrade") {
    return ApiError{"UnauthorizedOperation.CertificationNeedUpgrade",
                    "Completing identity information is required for cloud resource purchases."};
  }

  auto src_it = blueprints_.find({a.region, blueprint_id});
  if (src_it == blueprints_.end() || src_it->second.blueprint_type != "PRIVATE") {
    return ApiError{
        "ResourceNotFound.PrivateBlueprintNotFound",
        absl::StrCat("The custom image `", blueprint_id, "` does not exist in `", a.region, "`.")};
  }
  Blueprint& src = src_it->second;
  if (src.state == "SYNCING") {
    return ApiError{
        "OperationDenied.BlueprintOperationInProgress",
        absl::StrCat("The image `", blueprint_id, "` is being operated on. Try again later.")};
  }
  if (src.state != "NORMAL") {
    return ApiError{
        "UnsupportedOperation.BlueprintCurStateInvalid",
        absl::StrCat("The image state `", src.state, "` does not support this operation.")};
  }
  if (!src.syncable) {
    return ApiError{"FailedOperation.UnableToSyncBlueprint",
                    "The current image status does not allow cross-region synchronization."};
  }
  if (src.latest_operation_unfinished) {
    return ApiError{"UnsupportedOperation.BlueprintLatestOperationUnfinished",
                    "The last operation on the image is not completed yet."};
  }
  if (config_.quota_per_region > 0) {
    for (const std::string& d : destinations) {
      int64_t used = 0;
      for (const auto& [key, bp] : blueprints_) {
        if (key.first == d && bp.blueprint_type == "PRIVATE") ++used;
      }
      if (used + 1 > config_.quota_per_region) {
        return ApiError{"LimitExceeded.SyncBlueprintQuotaLimitExceeded",
                        absl::StrCat("The image quota of region `", d, "` is exceeded.")};
      }
    }
  }
  if (config_.balance_insufficient) {
    return ApiError{"FailedOperation.BalanceInsufficient", "The account balance is insufficient."};
  }

  const absl::Time finish = now + absl::Milliseconds(config_.sync_duration_ms);
  SyncSubmission submission{request_id, a.region, blueprint_id, destinations, {}, now};
  w.Key("DestinationRegionBlueprintSet");
  w.StartArray();
  for (const std::string& d : destinations) {
    Blueprint copy = src;
    copy.region = d;
    copy.id = NewBlueprintId();
    copy.blueprint_type = "PRIVATE";
    copy.created = now;
    copy.state = "SYNCING";
    copy.syncable = true;
    copy.latest_operation_unfinished = false;
    copy.sync_finish = finish;
    copy.sync_fails = config_.fail_regions.count(d) > 0;
    copy.source_sync_until.reset();
    copy.visible_from = now + absl::Milliseconds(config_.visibility_delay_ms);
    copy.synced_from = absl::StrCat(a.region, "/", blueprint_id);
    submission.destination_ids.push_back(copy.id);
    w.StartObject();
    Str(w, "Region", d);
    Str(w, "BlueprintId", copy.id);
    w.EndObject();
    blueprints_[{d, copy.id}] = std::move(copy);
  }
  w.EndArray();
  src.state = "SYNCING";
  src.source_sync_until = finish;
  AdvanceBlueprintState(src, now);  // a zero sync duration finishes at once
  for (size_t i = 0; i < destinations.size(); ++i) {
    AdvanceBlueprintState(blueprints_[{destinations[i], submission.destination_ids[i]}], now);
  }
  stats_.sync_submissions.push_back(std::move(submission));
  return std::nullopt;
}

std::optional<LighthouseEmulator::ApiError> LighthouseEmulator::DescribeBlueprints(
    const Admission& a, const rapidjson::Document& doc, absl::Time now, JsonWriter& w) {
  if (auto unknown = FindUnknownParameter(doc, {"BlueprintIds", "Filters", "Offset", "Limit"})) {
    return ApiError{"UnknownParameter",
                    absl::StrCat("The parameter `", *unknown, "` is not recognized.")};
  }
  std::vector<std::string> ids;
  struct Filter {
    std::string name;
    std::vector<std::string> values;
  };
  std::vector<Filter> filters;
  int64_t offset = 0, limit = kDefaultLimit;
  if (auto it = doc.FindMember("BlueprintIds"); it != doc.MemberEnd()) {
    if (!IsStringArray(it->value)) {
      return ApiError{"InvalidParameter",
                      "The parameter `BlueprintIds` must be an array of strings."};
    }
    for (const auto& v : it->value.GetArray()) ids.emplace_back(View(v));
  }
  if (auto it = doc.FindMember("Filters"); it != doc.MemberEnd()) {
    if (!it->value.IsArray()) {
      return ApiError{"InvalidParameter", "The parameter `Filters` must be an array."};
    }
    for (const auto& f : it->value.GetArray()) {
      if (!f.IsObject() || !f.HasMember("Name") || !f["Name"].IsString() ||
          !f.HasMember("Values") || !IsStringArray(f["Values"])) {
        return ApiError{"InvalidParameter",
                        "Each filter must be an object {\"Name\": string, \"Values\": [string]}."};
      }
      for (const auto& m : f.GetObject()) {
        if (View(m.name) != "Name" && View(m.name) != "Values") {
          return ApiError{"UnknownParameter", absl::StrCat("The parameter `Filters.", View(m.name),
                                                           "` is not recognized.")};
        }
      }
      Filter filter{std::string(View(f["Name"])), {}};
      for (const auto& v : f["Values"].GetArray()) filter.values.emplace_back(View(v));
      filters.push_back(std::move(filter));
    }
  }
  if (auto it = doc.FindMember("Offset"); it != doc.MemberEnd()) {
    if (!it->value.IsInt64()) {
      return ApiError{"InvalidParameter", "The parameter `Offset` must be an integer."};
    }
    offset = it->value.GetInt64();
  }
  if (auto it = doc.FindMember("Limit"); it != doc.MemberEnd()) {
    if (!it->value.IsInt64()) {
      return ApiError{"InvalidParameter", "The parameter `Limit` must be an integer."};
    }
    limit = it->value.GetInt64();
  }
  // Empty lists count as absent: SDKs may serialize unset repeated fields as [].
  if (!ids.empty() && !filters.empty()) {
    return ApiError{"InvalidParameter.ParameterConflict",
                    "The parameters `BlueprintIds` and `Filters` cannot be specified at the same "
                    "time."};
  }
  if (auto bad = CheckBlueprintIds(ids)) return bad;
  if (filters.size() > kMaxFilters) {
    return ApiError{"InvalidParameter.FilterValueLimitExceeded",
                    absl::StrCat("At most ", kMaxFilters, " filters are allowed.")};
  }
  for (const Filter& f : filters) {
    if (f.values.size() > kMaxFilterValues) {
      return ApiError{
          "InvalidParameter.FilterValueLimitExceeded",
          absl::StrCat("At most ", kMaxFilterValues, " values are allowed per filter.")};
    }
    if (FilterNames().count(f.name) == 0) {
      return ApiError{"InvalidParameter.InvalidFilterNotSupportedName",
                      absl::StrCat("The filter name `", f.name, "` is not supported.")};
    }
  }
  if (offset < 0) {
    return ApiError{"InvalidParameterValue.Negative",
                    "The parameter `Offset` must not be negative."};
  }
  if (limit < 1 || limit > kMaxLimit) {
    return ApiError{"InvalidParameterValue.OutOfRange",
                    absl::StrCat("The parameter `Limit` must be between 1 and ", kMaxLimit, ".")};
  }

  std::vector<const Blueprint*> matches;
  for (const auto& [key, bp] : blueprints_) {
    if (key.first != a.region || now < bp.visible_from) continue;
    if (!ids.empty() && std::find(ids.begin(), ids.end(), bp.id) == ids.end()) continue;
    bool ok = true;
    for (const Filter& f : filters) ok = ok && FilterMatches(bp, f.name, f.values);
    if (ok) matches.push_back(&bp);
  }
  std::stable_sort(matches.begin(), matches.end(), [](const Blueprint* x, const Blueprint* y) {
    return std::tie(x->created, x->id) < std::tie(y->created, y->id);
  });
  w.Key("TotalCount");
  w.Int64(static_cast<int64_t>(matches.size()));
  w.Key("BlueprintSet");
  w.StartArray();
  for (size_t i = static_cast<size_t>(std::min<int64_t>(offset, matches.size())), n = 0;
       i < matches.size() && n < static_cast<size_t>(limit); ++i, ++n) {
    WriteApiBlueprint(*matches[i], w);
  }
  w.EndArray();
  return std::nullopt;
}

std::optional<LighthouseEmulator::ApiError> LighthouseEmulator::DescribeRegions(
    const rapidjson::Document& doc, JsonWriter& w) {
  if (auto unknown = FindUnknownParameter(doc, {})) {
    return ApiError{"UnknownParameter",
                    absl::StrCat("The parameter `", *unknown, "` is not recognized.")};
  }
  w.Key("TotalCount");
  const std::vector<RegionEntry> regions = regions_.All();
  w.Int64(static_cast<int64_t>(regions.size()));
  w.Key("RegionSet");
  w.StartArray();
  for (const RegionEntry& r : regions) {
    w.StartObject();
    Str(w, "Region", r.id);
    Str(w, "RegionName", r.name);
    Str(w, "RegionState", "AVAILABLE");
    w.Key("IsChinaMainland");
    w.Bool(r.china_mainland);
    w.EndObject();
  }
  w.EndArray();
  return std::nullopt;
}

std::optional<LighthouseEmulator::ApiError> LighthouseEmulator::CheckBlueprintIds(
    const std::vector<std::string>& ids) {
  if (ids.size() > kMaxBlueprintIds) {
    return ApiError{"InvalidParameterValue.LimitExceeded",
                    absl::StrCat("At most ", kMaxBlueprintIds, " BlueprintIds are allowed.")};
  }
  for (const std::string& id : ids) {
    if (!IsWellFormedBlueprintId(id)) {
      // Quoted cut short: the id is the caller's and may be anything.
      return ApiError{"InvalidParameterValue.BlueprintIdMalformed",
                      absl::StrCat("The image ID `", id.substr(0, 64), "` is malformed.")};
    }
  }
  return std::nullopt;
}

std::optional<LighthouseEmulator::ApiError> LighthouseEmulator::DeleteBlueprints(
    const Admission& a, const rapidjson::Document& doc, absl::Time now,
    const std::string& request_id) {
  if (auto unknown = FindUnknownParameter(doc, {"BlueprintIds"})) {
    return ApiError{"UnknownParameter",
                    absl::StrCat("The parameter `", *unknown, "` is not recognized.")};
  }
  auto it = doc.FindMember("BlueprintIds");
  if (it == doc.MemberEnd()) {
    return ApiError{"MissingParameter",
                    "The request is missing the required parameter `BlueprintIds`."};
  }
  if (!IsStringArray(it->value)) {
    return ApiError{"InvalidParameter",
                    "The parameter `BlueprintIds` must be an array of strings."};
  }
  std::vector<std::string> ids;
  for (const auto& v : it->value.GetArray()) ids.emplace_back(View(v));
  if (ids.empty()) {
    return ApiError{"MissingParameter", "The parameter `BlueprintIds` must not be empty."};
  }
  if (auto bad = CheckBlueprintIds(ids)) return bad;
  // All or nothing, as Tencent: every id must be deletable before any goes.
  for (const std::string& id : ids) {
    if (std::optional<ApiError> refusal = DeleteRefusal(a.region, id)) return refusal;
  }
  for (const std::string& id : ids) {
    // A repeated id is deleted once and recorded once.
    if (blueprints_.erase({a.region, id}) == 0) continue;
    ++stats_.deleted_total;
    stats_.deletions.push_back({request_id, a.region, id, now});
    if (stats_.deletions.size() > kMaxRecordedDeletions) stats_.deletions.pop_front();
  }
  return std::nullopt;  // the answer is the RequestId alone
}

std::optional<LighthouseEmulator::ApiError> LighthouseEmulator::DeleteRefusal(
    const std::string& region, const std::string& id) {
  auto it = blueprints_.find({region, id});
  if (it == blueprints_.end() || it->second.blueprint_type != "PRIVATE") {
    return ApiError{"ResourceNotFound.PrivateBlueprintNotFound",
                    absl::StrCat("The custom image `", id, "` does not exist in `", region, "`.")};
  }
  // Before the state check: a source is SYNCING too while its copies are,
  // and Tencent names the reason that matters, the running sync.
  if (IsSourceOfRunningSync(region, id)) {
    return ApiError{"UnsupportedOperation.BlueprintOccupied",
                    absl::StrCat("The image `", id,
                                 "` is in use by a running synchronization and cannot be "
                                 "deleted.")};
  }
  const Blueprint& bp = it->second;
  if (!IsDeletableState(bp.state)) {
    return ApiError{
        "UnsupportedOperation.BlueprintCurStateInvalid",
        absl::StrCat("The image state `", bp.state, "` does not support this operation.")};
  }
  return std::nullopt;
}

bool LighthouseEmulator::IsSourceOfRunningSync(const std::string& region, const std::string& id) {
  const std::string source = absl::StrCat(region, "/", id);
  return std::any_of(blueprints_.begin(), blueprints_.end(), [&source](const auto& entry) {
    return entry.second.synced_from == source && entry.second.state == "SYNCING";
  });
}

namespace {

// `text` grown to `bytes` (if shorter) with `filler`, then single bytes:
// valid UTF-8 whenever `text` and `filler` are.
std::string PadTo(std::string text, int64_t bytes, absl::string_view filler) {
  const size_t want = static_cast<size_t>(bytes);
  while (text.size() + filler.size() <= want) text.append(filler.data(), filler.size());
  while (text.size() < want) text.push_back('x');
  return text;
}

// Garbage of `bytes` that is valid JSON-escapable text but no valid value of
// any field: NUL bytes, a line break, upper case and multi-byte characters.
std::string Garbage(absl::string_view prefix, int64_t bytes) {
  std::string text(prefix);
  text.push_back('\0');
  text.append("\nBAD");
  text.push_back('\0');
  return PadTo(std::move(text), bytes, "\xe9\x94\x99Z");  // "错Z"
}

void SetString(rapidjson::Value& object, const char* key, const std::string& value,
               rapidjson::Document::AllocatorType& alloc) {
  rapidjson::Value v;
  v.SetString(value.data(), static_cast<rapidjson::SizeType>(value.size()), alloc);
  auto it = object.FindMember(key);
  if (it != object.MemberEnd()) {
    it->value = std::move(v);
  } else {
    object.AddMember(rapidjson::Value(key, alloc), std::move(v), alloc);
  }
}

// The real answer with its identifying fields replaced by garbage.
std::string HostileFields(const std::string& body, int64_t bytes) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("Response")) return body;
  auto& alloc = doc.GetAllocator();
  rapidjson::Value& response = doc["Response"];
  if (!response.IsObject()) return body;
  if (response.HasMember("RequestId") && response["RequestId"].IsString()) {
    SetString(response, "RequestId", Garbage(View(response["RequestId"]), bytes), alloc);
  }
  if (auto it = response.FindMember("DestinationRegionBlueprintSet");
      it != response.MemberEnd() && it->value.IsArray()) {
    for (auto& d : it->value.GetArray()) {
      if (d.IsObject()) SetString(d, "BlueprintId", Garbage("lhbp-", bytes), alloc);
    }
  }
  if (auto it = response.FindMember("BlueprintSet");
      it != response.MemberEnd() && it->value.IsArray()) {
    for (auto& b : it->value.GetArray()) {
      if (!b.IsObject()) continue;
      SetString(b, "BlueprintName", Garbage("name", bytes), alloc);
      SetString(b, "BlueprintState", Garbage("NORMAL", bytes), alloc);
      SetString(b, "CreatedTime", Garbage("2024-01-01T00:00:00Z", bytes), alloc);
      SetString(b, "Description", Garbage("description", bytes), alloc);
    }
  }
  if (auto it = response.FindMember("RegionSet");
      it != response.MemberEnd() && it->value.IsArray()) {
    for (auto& r : it->value.GetArray()) {
      if (r.IsObject()) SetString(r, "Region", Garbage("ap-", bytes), alloc);
    }
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

ApiResponse LighthouseEmulator::FaultResponse(const FaultRule& rule, const std::string& request_id,
                                              const std::string& normal_body) {
  ApiResponse r;
  if (rule.fault == "internal_error") {
    r.body = ErrorEnvelope("InternalError",
                           "An internal error has occurred. Retry your request, but if the "
                           "problem persists, contact us.",
                           request_id);
  } else if (rule.fault == "error") {
    r.body = ErrorEnvelope(rule.code, rule.message, request_id);
  } else if (rule.fault == "hostile_error") {
    r.body = ErrorEnvelope(PadTo(rule.code, rule.code_bytes, "X"),
                           PadTo(Garbage(rule.message, 0), rule.message_bytes, "\xe9\x94\x99"),
                           PadTo(request_id, rule.request_id_bytes, "0"));
  } else if (rule.fault == "hostile_fields") {
    r.body = HostileFields(normal_body, rule.field_bytes);
  } else if (rule.fault == "huge_body") {
    r.body = normal_body.empty()
                 ? absl::StrCat("{\"Response\":{\"RequestId\":\"", request_id, "\"}}")
                 : normal_body;
    r.body = PadTo(std::move(r.body), rule.body_bytes, " ");
  } else if (rule.fault == "http_5xx") {
    r.http_status = rule.status;
    r.content_type = "text/html";
    r.body = absl::StrCat("<html><body><h1>", rule.status,
                          " Service Unavailable</h1>injected by lighthouse-emulator</body></html>");
  } else {  // malformed, drop
    std::string full = normal_body.empty()
                           ? absl::StrCat("{\"Response\":{\"RequestId\":\"", request_id, "\"}}")
                           : normal_body;
    if (rule.fault == "malformed") {
      r.body = full.substr(0, full.size() / 2);
    } else {
      r.body = std::move(full);
      r.drop_connection = true;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------
// Helpers

void LighthouseEmulator::AdvanceAll(absl::Time now) {
  for (auto& [key, bp] : blueprints_) AdvanceBlueprintState(bp, now);
}

std::string LighthouseEmulator::NewBlueprintId() {
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  for (;;) {
    std::string id = "lhbp-";
    for (int i = 0; i < 8; ++i) id.push_back(kAlphabet[id_rng_() % 36]);
    bool taken = false;
    for (const auto& [key, bp] : blueprints_) taken = taken || key.second == id;
    if (!taken) return id;
  }
}

std::string LighthouseEmulator::NewRequestId() {
  uint64_t hi, lo;
  {
    absl::MutexLock lock(&mu_);
    hi = id_rng_();
    lo = id_rng_();
  }
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

void LighthouseEmulator::Log(const Admission& a, absl::string_view outcome,
                             const std::string& request_id) {
  if (!log_requests_) return;
  // One fprintf per line keeps concurrent lines whole. Never keys, tokens or signatures.
  const std::string line =
      absl::StrCat("lighthouse-emulator: action=", a.action.empty() ? "-" : a.action,
                   " region=", a.region.empty() ? "-" : a.region, " code=", outcome,
                   " request_id=", request_id, "\n");
  std::fputs(line.c_str(), stderr);
}

// ---------------------------------------------------------------------------
// Admin surface

std::string LighthouseEmulator::StatsJson() {
  absl::MutexLock lock(&mu_);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("requests_total");
  w.Int64(stats_.requests_total);
  w.Key("auth_failures");
  w.Int64(stats_.auth_failures);
  w.Key("signature_failures");
  w.Int64(stats_.signature_failures);
  w.Key("actions");
  w.StartObject();
  for (const auto& [name, s] : stats_.actions) {
    w.Key(name.c_str());
    w.StartObject();
    w.Key("received");
    w.Int64(s.received);
    w.Key("throttled");
    w.Int64(s.throttled);
    w.Key("executed");
    w.Int64(s.executed);
    w.Key("errors");
    w.Int64(s.errors);
    w.EndObject();
  }
  w.EndObject();
  w.Key("faults");
  w.StartObject();
  for (const auto& [name, n] : stats_.faults) {
    w.Key(name.c_str());
    w.Int64(n);
  }
  w.EndObject();
  w.Key("max_accepted_per_second");
  w.StartObject();
  for (const auto& [name, n] : stats_.max_accepted_per_second) {
    w.Key(name.c_str());
    w.Int64(n);
  }
  w.EndObject();
  w.Key("sync_submissions");
  w.StartArray();
  for (const SyncSubmission& s : stats_.sync_submissions) {
    w.StartObject();
    Str(w, "RequestId", s.request_id);
    Str(w, "Region", s.region);
    Str(w, "BlueprintId", s.blueprint_id);
    w.Key("DestinationRegions");
    w.StartArray();
    for (const std::string& d : s.destinations) w.String(d.c_str());
    w.EndArray();
    w.Key("DestinationBlueprintIds");
    w.StartArray();
    for (const std::string& d : s.destination_ids) w.String(d.c_str());
    w.EndArray();
    w.Key("Time");
    w.Int64(absl::ToUnixMillis(s.time));
    w.EndObject();
  }
  w.EndArray();
  w.Key("deleted_blueprints_total");
  w.Int64(stats_.deleted_total);
  w.Key("deleted_blueprints");
  w.StartArray();
  for (const Deletion& d : stats_.deletions) {
    w.StartObject();
    Str(w, "RequestId", d.request_id);
    Str(w, "Region", d.region);
    Str(w, "BlueprintId", d.blueprint_id);
    w.Key("Time");
    w.Int64(absl::ToUnixMillis(d.time));
    w.EndObject();
  }
  w.EndArray();
  w.Key("describe_calls_by_region");
  w.StartObject();
  for (const auto& [region, n] : stats_.describe_calls_by_region) {
    w.Key(region.c_str());
    w.Int64(n);
  }
  w.EndObject();
  sts_.WriteStats(w);  // lock order: mu_, then the StsEmulator's own
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void LighthouseEmulator::ResetStats() {
  sts_.ResetStats();
  absl::MutexLock lock(&mu_);
  ResetStatsLocked();
}

void LighthouseEmulator::ResetStatsLocked() {
  stats_ = Stats{};
  for (const char* action : kActions) {
    stats_.actions[action] = ActionStats{};
    stats_.max_accepted_per_second[action] = 0;
  }
  for (const char* kind : kFaultKinds) stats_.faults[kind] = 0;
}

std::string LighthouseEmulator::ConfigJson() {
  absl::MutexLock lock(&mu_);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("sync_duration_ms");
  w.Int64(config_.sync_duration_ms);
  w.Key("fail_regions");
  w.StartArray();
  for (const std::string& r : config_.fail_regions) w.String(r.c_str());
  w.EndArray();
  w.Key("visibility_delay_ms");
  w.Int64(config_.visibility_delay_ms);
  w.Key("rate_limits");
  w.StartObject();
  for (const auto& [action, n] : config_.rate_limits) {
    w.Key(action.c_str());
    w.Int64(n);
  }
  w.EndObject();
  w.Key("quota_per_region");
  w.Int64(config_.quota_per_region);
  w.Key("balance_insufficient");
  w.Bool(config_.balance_insufficient);
  Str(w, "certification", config_.certification);
  w.Key("no_permission_secret_ids");
  w.StartArray();
  for (const std::string& s : config_.no_permission_secret_ids) w.String(s.c_str());
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

absl::Status LighthouseEmulator::UpdateConfig(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = ParseAdminObject(json);
  if (!doc.ok()) return doc.status();
  absl::MutexLock lock(&mu_);
  EmulatorConfig next = config_;
  for (const auto& m : doc->GetObject()) {
    const absl::string_view key = View(m.name);
    const rapidjson::Value& v = m.value;
    if (key == "sync_duration_ms" || key == "visibility_delay_ms" || key == "quota_per_region") {
      absl::StatusOr<int64_t> n = NonNegativeInt(v, key);
      if (!n.ok()) return n.status();
      (key == "sync_duration_ms"      ? next.sync_duration_ms
       : key == "visibility_delay_ms" ? next.visibility_delay_ms
                                      : next.quota_per_region) = *n;
    } else if (key == "fail_regions" || key == "no_permission_secret_ids") {
      if (!IsStringArray(v)) return AdminError(absl::StrCat(key, " must be an array of strings"));
      std::set<std::string> values;
      for (const auto& s : v.GetArray()) {
        if (key == "fail_regions" && !regions_.Find(View(s)).has_value()) {
          return AdminError(absl::StrCat("fail_regions: unknown region ", View(s)));
        }
        values.emplace(View(s));
      }
      (key == "fail_regions" ? next.fail_regions : next.no_permission_secret_ids) =
          std::move(values);
    } else if (key == "rate_limits") {
      if (!v.IsObject()) return AdminError("rate_limits must be an object");
      for (const auto& r : v.GetObject()) {
        if (!IsEmulatedAction(View(r.name))) {
          return AdminError(absl::StrCat("rate_limits: unknown action ", View(r.name)));
        }
        absl::StatusOr<int64_t> n = NonNegativeInt(r.value, "a rate limit");
        if (!n.ok()) return n.status();
        next.rate_limits[std::string(View(r.name))] = *n;
      }
    } else if (key == "balance_insufficient") {
      if (!v.IsBool()) return AdminError("balance_insufficient must be a boolean");
      next.balance_insufficient = v.GetBool();
    } else if (key == "certification") {
      if (!v.IsString() || (View(v) != "ok" && View(v) != "none" && View(v) != "needs_upgrade")) {
        return AdminError("certification must be \"ok\", \"none\" or \"needs_upgrade\"");
      }
      next.certification = std::string(View(v));
    } else {
      return AdminError(absl::StrCat("unknown config key ", key));
    }
  }
  config_ = std::move(next);
  return absl::OkStatus();
}

absl::Status LighthouseEmulator::PutBlueprints(absl::string_view json) {
  const absl::Time now = clock_->Now();
  absl::StatusOr<std::vector<Blueprint>> seed = ParseSeedJson(json, now);
  if (!seed.ok()) return seed.status();
  absl::MutexLock lock(&mu_);
  for (Blueprint& bp : *seed) blueprints_[{bp.region, bp.id}] = std::move(bp);
  return absl::OkStatus();
}

std::string LighthouseEmulator::BlueprintsJson(const std::optional<std::string>& region) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  AdvanceAll(now);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("blueprints");
  w.StartArray();
  for (const auto& [key, bp] : blueprints_) {
    if (region.has_value() && key.first != *region) continue;
    WriteAdminBlueprint(bp, now, w);
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

absl::Status LighthouseEmulator::RemoveBlueprint(const std::string& region, const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (blueprints_.erase({region, id}) == 0) {
    // Quoted cut short: both come from the request path.
    return absl::NotFoundError(
        absl::StrCat("no blueprint ", region.substr(0, 64), "/", id.substr(0, 64)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LighthouseEmulator::AddFamilyVersion(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = ParseAdminObject(json);
  if (!doc.ok()) return doc.status();
  std::string region;
  std::string name;
  std::string state = "NORMAL";
  std::optional<absl::Time> created;
  for (const auto& m : doc->GetObject()) {
    const absl::string_view key = View(m.name);
    const rapidjson::Value& v = m.value;
    if (key == "Region") {
      if (!v.IsString() || !regions_.Find(View(v)).has_value()) {
        return AdminError("Region must be a Lighthouse region, e.g. \"ap-guangzhou\"");
      }
      region = std::string(View(v));
    } else if (key == "BlueprintName") {
      if (!v.IsString() || v.GetStringLength() == 0 ||
          Utf8Length(View(v)) > kMaxBlueprintNameChars) {
        return AdminError(absl::StrCat("BlueprintName must be a string of 1 to ",
                                       kMaxBlueprintNameChars, " characters"));
      }
      name = std::string(View(v));
    } else if (key == "BlueprintState") {
      if (!v.IsString() || !IsDocumentedState(View(v))) {
        return AdminError(
            absl::StrCat("BlueprintState must be one of ", absl::StrJoin(kDocumentedStates, ", ")));
      }
      state = std::string(View(v));
    } else if (key == "CreatedTime") {
      absl::Time t;
      if (!v.IsString() || !ParseIsoUtc(View(v), &t)) {
        return AdminError("CreatedTime must look like 2024-01-15T08:00:00Z");
      }
      created = t;
    } else {
      return AdminError(absl::StrCat("unknown key ", key.substr(0, 64),
                                     " (expected Region, BlueprintName, BlueprintState, "
                                     "CreatedTime)"));
    }
  }
  if (region.empty()) return AdminError("Region is required");
  if (name.empty()) return AdminError("BlueprintName is required");

  absl::MutexLock lock(&mu_);
  if (!created.has_value()) {
    // Whole seconds, as the API shows CreatedTime; one past the newest of
    // the family if "now" would tie with it or (after an explicit
    // CreatedTime in the future) come before it.
    absl::Time when = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_->Now()));
    for (const auto& [key, bp] : blueprints_) {
      if (key.first != region || bp.blueprint_name != name) continue;
      const absl::Time newest = absl::FromUnixSeconds(absl::ToUnixSeconds(bp.created));
      if (when <= newest) when = newest + absl::Seconds(1);
    }
    created = when;
  }
  std::string id = NewBlueprintId();
  blueprints_[{region, id}] = NewCustomBlueprint(region, id, name, std::move(state), *created);
  return id;
}

absl::Status LighthouseEmulator::AddKeys(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = ParseAdminObject(json);
  if (!doc.ok()) return doc.status();
  auto it = doc->FindMember("keys");
  if (it == doc->MemberEnd() || !it->value.IsArray()) return AdminError("keys must be an array");
  std::vector<EmulatorKey> keys;
  for (const auto& k : it->value.GetArray()) {
    if (!k.IsObject() || !k.HasMember("SecretId") || !k["SecretId"].IsString() ||
        !k.HasMember("SecretKey") || !k["SecretKey"].IsString() ||
        k["SecretId"].GetStringLength() == 0) {
      return AdminError("each key needs string SecretId and SecretKey");
    }
    EmulatorKey key{std::string(View(k["SecretId"])), std::string(View(k["SecretKey"])),
                    std::nullopt, std::nullopt};
    if (auto t = k.FindMember("Token"); t != k.MemberEnd() && !t->value.IsNull()) {
      if (!t->value.IsString()) return AdminError("Token must be a string");
      key.token = std::string(View(t->value));
    }
    if (auto e = k.FindMember("ExpiredTime"); e != k.MemberEnd() && !e->value.IsNull()) {
      if (!e->value.IsInt64()) return AdminError("ExpiredTime must be Unix seconds");
      key.expires = absl::FromUnixSeconds(e->value.GetInt64());
    }
    keys.push_back(std::move(key));
  }
  for (EmulatorKey& k : keys) AddKey(std::move(k));
  return absl::OkStatus();
}

std::optional<EmulatorKey> LighthouseEmulator::FindKey(const std::string& secret_id) {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(secret_id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

void LighthouseEmulator::AddKey(EmulatorKey key) {
  absl::MutexLock lock(&mu_);
  std::string id = key.secret_id;
  keys_[id] = std::move(key);
}

absl::Status LighthouseEmulator::SetFaults(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = ParseAdminObject(json);
  if (!doc.ok()) return doc.status();
  auto it = doc->FindMember("rules");
  if (it == doc->MemberEnd() || !it->value.IsArray()) return AdminError("rules must be an array");
  std::vector<FaultRule> rules;
  for (const auto& r : it->value.GetArray()) {
    if (!r.IsObject()) return AdminError("each rule must be an object");
    FaultRule rule;
    for (const auto& m : r.GetObject()) {
      const absl::string_view key = View(m.name);
      const rapidjson::Value& v = m.value;
      auto want_string = [&](std::string& out) -> absl::Status {
        if (!v.IsString()) return AdminError(absl::StrCat(key, " must be a string"));
        out = std::string(View(v));
        return absl::OkStatus();
      };
      absl::Status st;
      if (key == "action") {
        st = want_string(rule.action);
        if (st.ok() && rule.action != "*" && !IsEmulatedAction(rule.action)) {
          st = AdminError(absl::StrCat("unknown action ", rule.action));
        }
      } else if (key == "fault") {
        st = want_string(rule.fault);
      } else if (key == "phase") {
        st = want_string(rule.phase);
        if (st.ok() && rule.phase != "before" && rule.phase != "after") {
          st = AdminError("phase must be \"before\" or \"after\"");
        }
      } else if (key == "code") {
        st = want_string(rule.code);
      } else if (key == "message") {
        st = want_string(rule.message);
      } else if (key == "count" || key == "latency_ms") {
        absl::StatusOr<int64_t> n = NonNegativeInt(v, key);
        if (!n.ok()) return n.status();
        (key == "count" ? rule.count : rule.latency_ms) = *n;
      } else if (key == "code_bytes" || key == "message_bytes" || key == "request_id_bytes" ||
                 key == "field_bytes" || key == "body_bytes") {
        absl::StatusOr<int64_t> n = NonNegativeInt(v, key);
        if (!n.ok()) return n.status();
        if (*n > kMaxHostileBytes) {
          return AdminError(absl::StrCat(key, " must be at most ", kMaxHostileBytes));
        }
        (key == "code_bytes"         ? rule.code_bytes
         : key == "message_bytes"    ? rule.message_bytes
         : key == "request_id_bytes" ? rule.request_id_bytes
         : key == "field_bytes"      ? rule.field_bytes
                                     : rule.body_bytes) = *n;
      } else if (key == "status") {
        if (!v.IsInt() || v.GetInt() < 100 || v.GetInt() > 599) {
          return AdminError("status must be an HTTP status code");
        }
        rule.status = v.GetInt();
      } else if (key == "probability") {
        if (!v.IsNumber() || v.GetDouble() < 0.0 || v.GetDouble() > 1.0) {
          return AdminError("probability must be a number in [0, 1]");
        }
        rule.probability = v.GetDouble();
      } else {
        return AdminError(absl::StrCat("unknown rule key ", key));
      }
      if (!st.ok()) return st;
    }
    if (std::find_if(std::begin(kFaultKinds), std::end(kFaultKinds),
                     [&](const char* k) { return rule.fault == k; }) == std::end(kFaultKinds)) {
      return AdminError(absl::StrCat("unknown fault kind \"", rule.fault, "\""));
    }
    if (rule.code.empty()) return AdminError("code must not be empty");
    if (rule.fault == "hostile_fields" && rule.phase != "after") {
      return AdminError("hostile_fields needs phase \"after\" (it garbles the real answer)");
    }
    rules.push_back(std::move(rule));
  }
  absl::MutexLock lock(&mu_);
  faults_ = std::move(rules);
  return absl::OkStatus();
}

std::string LighthouseEmulator::FaultsJson() {
  absl::MutexLock lock(&mu_);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("rules");
  w.StartArray();
  for (const FaultRule& r : faults_) {
    w.StartObject();
    Str(w, "action", r.action);
    Str(w, "fault", r.fault);
    Str(w, "phase", r.phase);
    w.Key("count");
    w.Int64(r.count);
    w.Key("probability");
    w.Double(r.probability);
    w.Key("latency_ms");
    w.Int64(r.latency_ms);
    w.Key("status");
    w.Int(r.status);
    Str(w, "code", r.code);
    Str(w, "message", r.message);
    if (absl::StartsWith(r.fault, "hostile_") || r.fault == "huge_body") {
      for (const auto& [key, n] : {std::pair<const char*, int64_t>{"code_bytes", r.code_bytes},
                                   {"message_bytes", r.message_bytes},
                                   {"request_id_bytes", r.request_id_bytes},
                                   {"field_bytes", r.field_bytes},
                                   {"body_bytes", r.body_bytes}}) {
        w.Key(key);
        w.Int64(n);
      }
    }
    w.Key("fired");
    w.Int64(r.fired);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace blueprintsync::emulator
