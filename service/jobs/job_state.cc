#include "service/jobs/job_state.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "service/tencent/api_error.h"
#include "service/tencent/crypto.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::jobs {

v1::Destination::State DestinationStateFor(absl::string_view s) {
  if (s == "NORMAL") return v1::Destination::SUCCEEDED;
  if (s == "SYNCING_FAILED" || s == "CREATEFAILED" || s == "OFFLINE" || s == "DESTROYING" ||
      absl::StartsWith(s, "ISOLAT") || absl::StartsWith(s, "DELET")) {
    return v1::Destination::FAILED;
  }
  return v1::Destination::SYNCING;
}

bool IsTerminal(v1::SyncJob::State state) {
  return state == v1::SyncJob::SUCCEEDED || state == v1::SyncJob::FAILED ||
         state == v1::SyncJob::CANCELLED;
}

bool IsTerminal(v1::Destination::State state) {
  return state == v1::Destination::SUCCEEDED || state == v1::Destination::FAILED ||
         state == v1::Destination::CANCELLED;
}

v1::SyncJob::State DeriveSubmittedJobState(const v1::SyncJob& job) {
  bool any_failed = false;
  for (const auto& d : job.destinations()) {
    if (!IsTerminal(d.state())) return v1::SyncJob::RUNNING;
    any_failed |= d.state() == v1::Destination::FAILED;
  }
  return any_failed ? v1::SyncJob::FAILED : v1::SyncJob::SUCCEEDED;
}

namespace {

// Length-prefixed fields, so no choice of values can make two different
// requests serialize alike.
void AddField(std::string& canonical, absl::string_view v) {
  absl::StrAppend(&canonical, v.size(), ":", v, ";");
}

// The fingerprint of versions before labels and retries: source,
// blueprint and the destination list in request order.
std::string LegacyFingerprint(const v1::SyncBlueprintRequest& r) {
  std::string canonical;
  AddField(canonical, r.source_region());
  AddField(canonical, r.blueprint_id());
  for (const auto& d : r.destination_regions()) AddField(canonical, d);
  return tencent::crypto::Sha256Hex(canonical);
}

constexpr char kFingerprintV2[] = "v2:";

}  // namespace

std::string RequestFingerprint(const v1::SyncBlueprintRequest& r, const std::string& retry_of,
                               const std::string& policy) {
  std::string canonical;
  AddField(canonical, r.source_region());
  AddField(canonical, r.blueprint_id());
  std::vector<std::string> regions(r.destination_regions().begin(),
                                   r.destination_regions().end());
  std::sort(regions.begin(), regions.end());
  AddField(canonical, std::to_string(regions.size()));
  for (const auto& d : regions) AddField(canonical, d);
  std::map<std::string, std::string> labels(r.labels().begin(), r.labels().end());
  AddField(canonical, std::to_string(labels.size()));
  for (const auto& [k, v] : labels) {
    AddField(canonical, k);
    AddField(canonical, v);
  }
  AddField(canonical, !r.has_keep_failed_copies() ? "" : r.keep_failed_copies() ? "1" : "0");
  AddField(canonical, !r.has_timeout() ? "" : absl::StrCat(r.timeout().seconds(), ".",
                                                            r.timeout().nanos()));
  AddField(canonical, retry_of);
  // Only when set: one more field cannot make a policy job's canonical form
  // equal to any other's (every field is length-prefixed), and jobs without
  // a policy keep the fingerprint they were recorded with.
  if (!policy.empty()) AddField(canonical, policy);
  return absl::StrCat(kFingerprintV2, tencent::crypto::Sha256Hex(canonical));
}

bool FingerprintMatches(const std::string& stored, const v1::SyncBlueprintRequest& request,
                        const std::string& retry_of, const std::string& policy) {
  if (absl::StartsWith(stored, kFingerprintV2)) {
    return stored == RequestFingerprint(request, retry_of, policy);
  }
  // Versions that wrote this format had no policies.
  return policy.empty() && stored == LegacyFingerprint(request);
}

v1::SyncError ToSyncError(const absl::Status& status) {
  namespace bounds = tencent::bounds;
  v1::SyncError e;
  e.set_code(static_cast<int>(status.code()));
  // The last line of defence for job records: whatever built the status,
  // a stored error is bounded and valid UTF-8 (a record that cannot be
  // serialized poisons every read and list that meets it).
  if (auto api = tencent::GetApiError(status)) {
    if (!absl::StartsWith(api->code, "ClientError.")) {
      e.set_tencent_code(bounds::BoundText(api->code, bounds::kMaxCodeBytes));
    }
    e.set_tencent_request_id(bounds::BoundText(api->request_id, bounds::kMaxRequestIdBytes));
  }
  const absl::string_view message = status.message();
  e.set_message(bounds::BoundText({message.data(), message.size()}, kMaxStoredErrorBytes));
  return e;
}

absl::Status FromSyncError(const v1::SyncError& error) {
  auto code = static_cast<absl::StatusCode>(error.code());
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
  absl::Status s(code, error.message());
  if (!error.tencent_code().empty()) {
    tencent::ApiError api;
    api.kind = tencent::ErrorKind::kApi;
    api.code = error.tencent_code();
    api.request_id = error.tencent_request_id();
    api.message = error.message();
    // Keep the original code and message; only attach the Tencent details.
    const absl::Status with_payload = tencent::MakeStatus(api);
    with_payload.ForEachPayload(
        [&s](absl::string_view url, const absl::Cord& payload) { s.SetPayload(url, payload); });
  }
  return s;
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t seconds = absl::ToUnixSeconds(t);  // rounds down
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
  return ts;
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

namespace {
constexpr char kFieldRuleUrl[] = "type.googleapis.com/blueprintsync.FieldRule";
}  // namespace

absl::Status InvalidField(absl::string_view field, absl::string_view rule,
                          absl::string_view description) {
  // Descriptions usually name their field already ("name \"x\" is ..."); do
  // not say it twice.
  absl::Status s = absl::InvalidArgumentError(absl::StartsWith(description, field)
                                                  ? std::string(description)
                                                  : absl::StrCat(field, ": ", description));
  s.SetPayload(kFieldRuleUrl, absl::Cord(absl::StrCat(field, "\n", rule)));
  return s;
}

std::optional<FieldRule> GetFieldRule(const absl::Status& status) {
  auto payload = status.GetPayload(kFieldRuleUrl);
  if (!payload) return std::nullopt;
  const std::string text(*payload);
  const size_t nl = text.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  return FieldRule{text.substr(0, nl), text.substr(nl + 1)};
}

std::string NewJobName() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  uint64_t hi, lo;
  {
    absl::MutexLock lock(&mu);
    hi = absl::Uniform<uint64_t>(*gen);
    lo = absl::Uniform<uint64_t>(*gen);
  }
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return absl::StrCat("syncJobs/", buf);
}

bool IsUuid(absl::string_view t) {
  if (t.size() != 36) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

namespace {
constexpr char kJobNamePayload[] = "type.googleapis.com/blueprintsync.internal.JobName";
}  // namespace

absl::Status WithJobName(absl::Status status, absl::string_view job_name) {
  if (!status.ok() && !job_name.empty()) status.SetPayload(kJobNamePayload, absl::Cord(job_name));
  return status;
}

std::string GetJobName(const absl::Status& status) {
  auto payload = status.GetPayload(kJobNamePayload);
  return payload ? std::string(*payload) : "";
}

}  // namespace blueprintsync::jobs
