#include "tests/testing_util/emulator_admin.h"

#include <curl/curl.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace blueprintsync::testing {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

int64_t IntMember(const rapidjson::Value& o, const char* name) {
  auto it = o.FindMember(name);
  return it != o.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
}

std::string StringMember(const rapidjson::Value& o, const char* name) {
  auto it = o.FindMember(name);
  return it != o.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

std::vector<std::string> StringsMember(const rapidjson::Value& o, const char* name) {
  std::vector<std::string> out;
  auto it = o.FindMember(name);
  if (it == o.MemberEnd() || !it->value.IsArray()) return out;
  for (const auto& v : it->value.GetArray()) {
    if (v.IsString()) out.emplace_back(v.GetString());
  }
  return out;
}

// The integers of a top-level object, one level of nesting flattened as
// "outer.inner" (the STS counters nest per action).
std::map<std::string, int64_t> Counters(const rapidjson::Value& doc, const char* key) {
  std::map<std::string, int64_t> out;
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsObject()) return out;
  for (const auto& m : it->value.GetObject()) {
    if (m.value.IsInt64()) out[m.name.GetString()] = m.value.GetInt64();
    if (!m.value.IsObject()) continue;
    for (const auto& inner : m.value.GetObject()) {
      if (inner.value.IsInt64()) {
        out[absl::StrCat(m.name.GetString(), ".", inner.name.GetString())] = inner.value.GetInt64();
      }
    }
  }
  return out;
}

}  // namespace

EmulatorActionStats EmulatorStats::Action(const std::string& name) const {
  auto it = actions.find(name);
  return it == actions.end() ? EmulatorActionStats{} : it->second;
}

int64_t EmulatorStats::Fault(const std::string& kind) const {
  auto it = faults.find(kind);
  return it == faults.end() ? 0 : it->second;
}

int64_t EmulatorStats::TotalFaults() const {
  int64_t n = 0;
  for (const auto& [kind, count] : faults) n += count;
  return n;
}

bool EmulatorStats::WasDeleted(const std::string& region, const std::string& id) const {
  for (const EmulatorDeletion& d : deletions) {
    if (d.region == region && d.blueprint_id == id) return true;
  }
  return false;
}

int64_t EmulatorStats::MaxAcceptedPerSecond(const std::string& action) const {
  auto it = max_accepted_per_second.find(action);
  return it == max_accepted_per_second.end() ? 0 : it->second;
}

int64_t EmulatorStats::DescribeCalls(const std::string& region) const {
  auto it = describe_calls_by_region.find(region);
  return it == describe_calls_by_region.end() ? 0 : it->second;
}

absl::StatusOr<EmulatorStats> ParseEmulatorStats(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InternalError(absl::StrCat("emulator stats are not a JSON object: ", json));
  }
  EmulatorStats stats;
  stats.requests_total = IntMember(doc, "requests_total");
  stats.auth_failures = IntMember(doc, "auth_failures");
  stats.signature_failures = IntMember(doc, "signature_failures");
  if (auto it = doc.FindMember("actions"); it != doc.MemberEnd() && it->value.IsObject()) {
    for (const auto& m : it->value.GetObject()) {
      EmulatorActionStats& a = stats.actions[m.name.GetString()];
      a.received = IntMember(m.value, "received");
      a.throttled = IntMember(m.value, "throttled");
      a.executed = IntMember(m.value, "executed");
      a.errors = IntMember(m.value, "errors");
    }
  }
  stats.faults = Counters(doc, "faults");
  stats.max_accepted_per_second = Counters(doc, "max_accepted_per_second");
  stats.sts = Counters(doc, "sts");
  if (auto it = doc.FindMember("sync_submissions"); it != doc.MemberEnd() && it->value.IsArray()) {
    for (const auto& s : it->value.GetArray()) {
      EmulatorSyncSubmission sub;
      sub.request_id = StringMember(s, "RequestId");
      sub.region = StringMember(s, "Region");
      sub.blueprint_id = StringMember(s, "BlueprintId");
      sub.destination_regions = StringsMember(s, "DestinationRegions");
      sub.destination_blueprint_ids = StringsMember(s, "DestinationBlueprintIds");
      sub.time_ms = IntMember(s, "Time");
      stats.sync_submissions.push_back(std::move(sub));
    }
  }
  stats.deleted_blueprints_total = IntMember(doc, "deleted_blueprints_total");
  if (auto it = doc.FindMember("deleted_blueprints");
      it != doc.MemberEnd() && it->value.IsArray()) {
    for (const auto& d : it->value.GetArray()) {
      stats.deletions.push_back({StringMember(d, "RequestId"), StringMember(d, "Region"),
                                 StringMember(d, "BlueprintId"), IntMember(d, "Time")});
    }
  }
  stats.describe_calls_by_region = Counters(doc, "describe_calls_by_region");
  return stats;
}

absl::StatusOr<std::string> EmulatorAdmin::Call(const std::string& path,
                                                const std::string* post_body,
                                                const char* method) const {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  const std::string url = base_url_ + path;
  std::string body;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
  if (method != nullptr) curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method);
  struct curl_slist* headers = nullptr;
  if (post_body != nullptr) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, post_body->c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  const CURLcode rc = curl_easy_perform(curl.get());
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(url, ": ", curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    return absl::FailedPreconditionError(absl::StrCat(url, ": HTTP ", status, ": ", body));
  }
  return body;
}

absl::StatusOr<std::string> EmulatorAdmin::Get(const std::string& path) const {
  return Call(path, nullptr);
}

absl::StatusOr<std::string> EmulatorAdmin::Post(const std::string& path,
                                                const std::string& body) const {
  return Call(path, &body);
}

absl::StatusOr<std::string> EmulatorAdmin::Delete(const std::string& path) const {
  return Call(path, nullptr, "DELETE");
}

absl::StatusOr<EmulatorStats> EmulatorAdmin::Stats() const {
  absl::StatusOr<std::string> body = Get("/_emulator/stats");
  if (!body.ok()) return body.status();
  return ParseEmulatorStats(*body);
}

absl::Status EmulatorAdmin::ResetStats() const {
  return Post("/_emulator/reset-stats", "").status();
}

absl::Status EmulatorAdmin::UpdateConfig(const std::string& json) const {
  return Post("/_emulator/config", json).status();
}

absl::Status EmulatorAdmin::PutBlueprints(const std::string& json) const {
  return Post("/_emulator/blueprints", json).status();
}

absl::Status EmulatorAdmin::SetFaults(const std::string& json) const {
  return Post("/_emulator/faults", json).status();
}

absl::Status EmulatorAdmin::RemoveBlueprint(const std::string& region,
                                            const std::string& id) const {
  return Delete(absl::StrCat("/_emulator/blueprints/", region, "/", id)).status();
}

absl::StatusOr<std::string> EmulatorAdmin::AddFamilyVersion(const std::string& region,
                                                            const std::string& name) const {
  // Built with RapidJSON so a name with quotes or non-ASCII stays valid JSON.
  rapidjson::StringBuffer request;
  rapidjson::Writer<rapidjson::StringBuffer> w(request);
  w.StartObject();
  w.Key("Region");
  w.String(region.c_str(), static_cast<rapidjson::SizeType>(region.size()));
  w.Key("BlueprintName");
  w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
  w.EndObject();
  absl::StatusOr<std::string> body =
      Post("/_emulator/family-versions", std::string(request.GetString(), request.GetSize()));
  if (!body.ok()) return body.status();
  rapidjson::Document doc;
  doc.Parse(body->c_str(), body->size());
  if (doc.HasParseError() || !doc.IsObject() || StringMember(doc, "BlueprintId").empty()) {
    return absl::InternalError(absl::StrCat("unexpected family-versions answer: ", *body));
  }
  return StringMember(doc, "BlueprintId");
}

absl::StatusOr<std::vector<EmulatorBlueprint>> EmulatorAdmin::Blueprints(
    const std::string& region) const {
  absl::StatusOr<std::string> body =
      Get(region.empty() ? "/_emulator/blueprints" : "/_emulator/blueprints?region=" + region);
  if (!body.ok()) return body.status();
  rapidjson::Document doc;
  doc.Parse(body->c_str(), body->size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("blueprints") ||
      !doc["blueprints"].IsArray()) {
    return absl::InternalError(absl::StrCat("unexpected blueprints answer: ", *body));
  }
  std::vector<EmulatorBlueprint> out;
  for (const auto& b : doc["blueprints"].GetArray()) {
    EmulatorBlueprint bp{StringMember(b, "Region"), StringMember(b, "BlueprintId"),
                         StringMember(b, "BlueprintState")};
    if (auto it = b.FindMember("SettledAtUnixMs"); it != b.MemberEnd() && it->value.IsInt64()) {
      bp.settled_at_ms = it->value.GetInt64();
    }
    out.push_back(std::move(bp));
  }
  return out;
}

}  // namespace blueprintsync::testing
