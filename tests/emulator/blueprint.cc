#include "tests/emulator/blueprint.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/emulator/emulator_regions.h"

namespace blueprintsync::emulator {
namespace {

constexpr char kIsoFormat[] = "%Y-%m-%dT%H:%M:%SZ";

absl::Status SeedError(absl::string_view id, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("seed blueprint ", id, ": ", why));
}

absl::Status ReadOptString(const rapidjson::Value& v, const char* key, absl::string_view id,
                           std::optional<std::string>& out) {
  auto it = v.FindMember(key);
  if (it == v.MemberEnd()) return absl::OkStatus();
  if (it->value.IsNull()) {
    out.reset();
    return absl::OkStatus();
  }
  if (!it->value.IsString()) return SeedError(id, absl::StrCat(key, " must be a string or null"));
  out = std::string(it->value.GetString(), it->value.GetStringLength());
  return absl::OkStatus();
}

absl::Status ReadString(const rapidjson::Value& v, const char* key, absl::string_view id,
                        std::string& out) {
  std::optional<std::string> s;
  if (absl::Status st = ReadOptString(v, key, id, s); !st.ok()) return st;
  if (s.has_value()) out = *std::move(s);
  return absl::OkStatus();
}

absl::Status ReadOptInt(const rapidjson::Value& v, const char* key, absl::string_view id,
                        std::optional<int64_t>& out) {
  auto it = v.FindMember(key);
  if (it == v.MemberEnd()) return absl::OkStatus();
  if (it->value.IsNull()) {
    out.reset();
    return absl::OkStatus();
  }
  if (!it->value.IsInt64()) return SeedError(id, absl::StrCat(key, " must be an integer"));
  out = it->value.GetInt64();
  return absl::OkStatus();
}

absl::Status ReadBool(const rapidjson::Value& v, const char* key, absl::string_view id, bool& out) {
  auto it = v.FindMember(key);
  if (it == v.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsBool()) return SeedError(id, absl::StrCat(key, " must be a boolean"));
  out = it->value.GetBool();
  return absl::OkStatus();
}

// For fields the API documents as never null: unset is "".
void StringOrEmpty(JsonWriter& w, const char* key, const std::optional<std::string>& v) {
  w.Key(key);
  const std::string& s = v.has_value() ? *v : std::string();
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void OptString(JsonWriter& w, const char* key, const std::optional<std::string>& v) {
  w.Key(key);
  if (v.has_value()) {
    w.String(v->data(), static_cast<rapidjson::SizeType>(v->size()));
  } else {
    w.Null();
  }
}

void OptInt(JsonWriter& w, const char* key, const std::optional<int64_t>& v) {
  w.Key(key);
  if (v.has_value()) {
    w.Int64(*v);
  } else {
    w.Null();
  }
}

void Str(JsonWriter& w, const char* key, absl::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

Blueprint Custom(std::string region, std::string id, std::string name, std::string state,
                 int minute) {
  Blueprint bp = NewCustomBlueprint(
      std::move(region), std::move(id), std::move(name), std::move(state),
      absl::FromUnixSeconds(1705305600) + absl::Minutes(minute));  // 2024-01-15T08:00Z
  bp.description = "seeded custom image";
  return bp;
}

Blueprint PublicOs(std::string region, int minute) {
  Blueprint bp;
  bp.region = std::move(region);
  bp.id = "lhbp-pubos001";
  bp.display_title = "Ubuntu Server";
  bp.display_version = "22.04 LTS 64bit";
  bp.description = "Ubuntu Server 22.04 LTS 64-bit";
  bp.os_name = "Ubuntu Server 22.04 LTS 64bit";
  bp.platform = "UBUNTU";
  bp.platform_type = "LINUX_UNIX";
  bp.blueprint_type = "APP_OS";
  bp.image_url = "https://lighthouse-public.example/ubuntu.png";
  bp.required_system_disk_size = 20;
  bp.required_memory_size = 1;
  bp.blueprint_name = "Ubuntu";
  bp.support_automation_tools = true;
  bp.created = absl::FromUnixSeconds(1672531200) + absl::Minutes(minute);  // 2023-01-01
  bp.community_url = "https://ubuntu.com/";
  bp.guide_url = "";
  bp.scene_ids = {"lhsc-00000001"};
  bp.syncable = false;
  return bp;
}

}  // namespace

Blueprint NewCustomBlueprint(std::string region, std::string id, std::string name,
                             std::string state, absl::Time created) {
  Blueprint bp;
  bp.region = std::move(region);
  bp.id = std::move(id);
  bp.blueprint_name = name;
  bp.display_title = std::move(name);
  bp.os_name = "TencentOS Server 3.1 (TK4)";
  bp.platform = "TencentOS";
  bp.platform_type = "LINUX_UNIX";
  bp.blueprint_type = "PRIVATE";
  bp.required_system_disk_size = 40;
  bp.required_memory_size = 1;
  bp.state = std::move(state);
  bp.created = created;
  bp.community_url = "";
  bp.guide_url = "";
  return bp;
}

bool IsWellFormedBlueprintId(absl::string_view id) {
  constexpr absl::string_view kPrefix = "lhbp-";
  if (id.size() != kPrefix.size() + 8 || id.substr(0, kPrefix.size()) != kPrefix) return false;
  for (char c : id.substr(kPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

void AdvanceBlueprintState(Blueprint& bp, absl::Time now) {
  if (bp.sync_finish.has_value() && now >= *bp.sync_finish) {
    bp.state = bp.sync_fails ? "SYNCING_FAILED" : "NORMAL";
    bp.settled_at = *bp.sync_finish;  // states are advanced lazily: not `now`
    bp.sync_finish.reset();
  }
  if (bp.source_sync_until.has_value() && now >= *bp.source_sync_until) {
    if (bp.state == "SYNCING") bp.state = "NORMAL";
    bp.source_sync_until.reset();
  }
}

absl::StatusOr<Blueprint> BlueprintFromSeed(const rapidjson::Value& v, absl::Time default_created) {
  if (!v.IsObject()) return absl::InvalidArgumentError("seed blueprint: entry is not an object");
  Blueprint bp;
  std::string id = "(unnamed)";
  if (auto it = v.FindMember("BlueprintId"); it != v.MemberEnd() && it->value.IsString()) {
    id = it->value.GetString();
  }
  if (!IsWellFormedBlueprintId(id)) {
    return SeedError(id, "BlueprintId must be \"lhbp-\" followed by 8 of [0-9a-z]");
  }
  bp.id = id;
  if (absl::Status st = ReadString(v, "Region", id, bp.region); !st.ok()) return st;
  if (FindEmulatedRegion(bp.region) == nullptr) {
    return SeedError(id, absl::StrCat("Region \"", bp.region, "\" is not a Lighthouse region"));
  }
  bp.created = default_created;
  bp.state = "NORMAL";
  bp.blueprint_type = "PRIVATE";
  bp.platform_type = "LINUX_UNIX";
  bp.os_name = "TencentOS Server 3.1 (TK4)";
  bp.platform = "TencentOS";
  bp.required_system_disk_size = 40;
  bp.required_memory_size = 1;
  bp.community_url = "";
  bp.guide_url = "";
  for (auto [key, field] :
       std::initializer_list<std::pair<const char*, std::optional<std::string>*>>{
           {"DisplayTitle", &bp.display_title},
           {"DisplayVersion", &bp.display_version},
           {"Description", &bp.description},
           {"OsName", &bp.os_name},
           {"Platform", &bp.platform},
           {"PlatformType", &bp.platform_type},
           {"ImageUrl", &bp.image_url},
           {"BlueprintName", &bp.blueprint_name},
           {"ImageId", &bp.image_id},
           {"CommunityUrl", &bp.community_url},
           {"GuideUrl", &bp.guide_url},
           {"DockerVersion", &bp.docker_version}}) {
    if (absl::Status st = ReadOptString(v, key, id, *field); !st.ok()) return st;
  }
  if (!bp.display_title.has_value()) bp.display_title = bp.blueprint_name;
  if (absl::Status st = ReadString(v, "BlueprintType", id, bp.blueprint_type); !st.ok()) return st;
  if (absl::Status st = ReadString(v, "BlueprintState", id, bp.state); !st.ok()) return st;
  if (bp.state.empty()) return SeedError(id, "BlueprintState must not be empty");
  if (absl::Status st = ReadOptInt(v, "RequiredSystemDiskSize", id, bp.required_system_disk_size);
      !st.ok()) {
    return st;
  }
  if (absl::Status st = ReadOptInt(v, "RequiredMemorySize", id, bp.required_memory_size);
      !st.ok()) {
    return st;
  }
  for (auto [key, field] : std::initializer_list<std::pair<const char*, bool*>>{
           {"SupportAutomationTools", &bp.support_automation_tools},
           {"BlueprintShared", &bp.blueprint_shared},
           {"Syncable", &bp.syncable},
           {"LatestOperationUnfinished", &bp.latest_operation_unfinished}}) {
    if (absl::Status st = ReadBool(v, key, id, *field); !st.ok()) return st;
  }
  if (auto it = v.FindMember("CreatedTime"); it != v.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsString() || !ParseIsoUtc(it->value.GetString(), &bp.created)) {
      return SeedError(id, "CreatedTime must look like 2024-01-15T08:00:00Z");
    }
  }
  if (auto it = v.FindMember("SceneIdSet"); it != v.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsArray()) return SeedError(id, "SceneIdSet must be an array of strings");
    for (const auto& s : it->value.GetArray()) {
      if (!s.IsString()) return SeedError(id, "SceneIdSet must be an array of strings");
      bp.scene_ids.emplace_back(s.GetString(), s.GetStringLength());
    }
  }
  if (auto it = v.FindMember("Tags"); it != v.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsArray()) return SeedError(id, "Tags must be an array of {Key,Value}");
    for (const auto& t : it->value.GetArray()) {
      if (!t.IsObject() || !t.HasMember("Key") || !t["Key"].IsString() || !t.HasMember("Value") ||
          !t["Value"].IsString()) {
        return SeedError(id, "Tags must be an array of {Key,Value}");
      }
      bp.tags.emplace_back(t["Key"].GetString(), t["Value"].GetString());
    }
  }
  return bp;
}

absl::StatusOr<std::vector<Blueprint>> ParseSeedJson(absl::string_view json,
                                                     absl::Time default_created) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError("seed: not a JSON object");
  }
  auto it = doc.FindMember("blueprints");
  if (it == doc.MemberEnd() || !it->value.IsArray()) {
    return absl::InvalidArgumentError("seed: \"blueprints\" must be an array");
  }
  std::vector<Blueprint> out;
  for (const auto& entry : it->value.GetArray()) {
    absl::StatusOr<Blueprint> bp = BlueprintFromSeed(entry, default_created);
    if (!bp.ok()) return bp.status();
    out.push_back(*std::move(bp));
  }
  return out;
}

std::vector<Blueprint> DefaultSeed() {
  std::vector<Blueprint> seed;
  seed.push_back(Custom("ap-guangzhou", "lhbp-gzbase01", "web-base", "NORMAL", 0));
  seed.push_back(Custom("ap-guangzhou", "lhbp-gzbase02", "db-base", "NORMAL", 1));
  seed.push_back(Custom("ap-guangzhou", "lhbp-gzfail01", "broken-build", "CREATEFAILED", 2));
  seed.push_back(Custom("ap-shanghai", "lhbp-shbase01", "web-base-sh", "NORMAL", 3));
  seed.push_back(Custom("ap-singapore", "lhbp-sgbase01", "web-base-sg", "NORMAL", 4));
  seed.push_back(Custom("ap-singapore", "lhbp-sgoffl01", "retired", "OFFLINE", 5));
  seed.push_back(Custom("ap-hongkong", "lhbp-hkbase01", "web-base-hk", "NORMAL", 6));
  seed.push_back(Custom("ap-tokyo", "lhbp-ls883feh", "doc-example", "NORMAL", 7));
  int minute = 0;
  for (const char* region :
       {"ap-guangzhou", "ap-shanghai", "ap-singapore", "ap-hongkong", "ap-tokyo"}) {
    seed.push_back(PublicOs(region, minute++));
  }
  return seed;
}

std::string IsoUtc(absl::Time t) { return absl::FormatTime(kIsoFormat, t, absl::UTCTimeZone()); }

bool ParseIsoUtc(absl::string_view text, absl::Time* t) {
  std::string err;
  return absl::ParseTime(kIsoFormat, text, absl::UTCTimeZone(), t, &err);
}

void WriteApiBlueprint(const Blueprint& bp, JsonWriter& w) {
  w.StartObject();
  Str(w, "BlueprintId", bp.id);
  StringOrEmpty(w, "DisplayTitle", bp.display_title);
  StringOrEmpty(w, "DisplayVersion", bp.display_version);
  OptString(w, "Description", bp.description);
  StringOrEmpty(w, "OsName", bp.os_name);
  StringOrEmpty(w, "Platform", bp.platform);
  StringOrEmpty(w, "PlatformType", bp.platform_type);
  Str(w, "BlueprintType", bp.blueprint_type);
  StringOrEmpty(w, "ImageUrl", bp.image_url);
  OptInt(w, "RequiredSystemDiskSize", bp.required_system_disk_size);
  Str(w, "BlueprintState", bp.state);
  Str(w, "CreatedTime", IsoUtc(bp.created));
  StringOrEmpty(w, "BlueprintName", bp.blueprint_name);
  w.Key("SupportAutomationTools");
  w.Bool(bp.support_automation_tools);
  OptInt(w, "RequiredMemorySize", bp.required_memory_size);
  StringOrEmpty(w, "ImageId", bp.image_id);
  StringOrEmpty(w, "CommunityUrl", bp.community_url);
  StringOrEmpty(w, "GuideUrl", bp.guide_url);
  w.Key("SceneIdSet");
  w.StartArray();
  for (const std::string& s : bp.scene_ids) w.String(s.c_str());
  w.EndArray();
  OptString(w, "DockerVersion", bp.docker_version);
  w.Key("BlueprintShared");
  w.Bool(bp.blueprint_shared);
  w.Key("Tags");
  w.StartArray();
  for (const auto& [k, v] : bp.tags) {
    w.StartObject();
    Str(w, "Key", k);
    Str(w, "Value", v);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void WriteAdminBlueprint(const Blueprint& bp, absl::Time now, JsonWriter& w) {
  // Reuse the API shape, then splice the extra members in before the closing brace.
  rapidjson::StringBuffer api;
  JsonWriter api_writer(api);
  WriteApiBlueprint(bp, api_writer);
  std::string s(api.GetString(), api.GetSize() - 1);  // without '}'
  absl::StrAppend(
      &s, ",\"Region\":\"", bp.region, "\",\"Visible\":", now >= bp.visible_from ? "true" : "false",
      ",\"Syncable\":", bp.syncable ? "true" : "false",
      ",\"LatestOperationUnfinished\":", bp.latest_operation_unfinished ? "true" : "false");
  if (!bp.synced_from.empty()) absl::StrAppend(&s, ",\"SyncedFrom\":\"", bp.synced_from, "\"");
  if (bp.settled_at.has_value()) {
    absl::StrAppend(&s, ",\"SettledAtUnixMs\":", absl::ToUnixMillis(*bp.settled_at));
  }
  s.push_back('}');
  w.RawValue(s.data(), s.size(), rapidjson::kObjectType);
}

}  // namespace blueprintsync::emulator
