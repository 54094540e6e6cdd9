#include "tests/emulator/emulator_regions.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace blueprintsync::emulator {

const std::vector<EmulatedRegion>& EmulatedRegions() {
  static const std::vector<EmulatedRegion>* const regions = new std::vector<EmulatedRegion>{
      {"ap-bangkok", "Southeast Asia (Bangkok)", false},
      {"ap-beijing", "North China (Beijing)", true},
      {"ap-chengdu", "Southwest China (Chengdu)", true},
      {"ap-guangzhou", "South China (Guangzhou)", true},
      {"ap-hongkong", "Hong Kong, Macau and Taiwan (China) (Hong Kong, China)", false},
      {"ap-jakarta", "Southeast Asia (Jakarta)", false},
      {"ap-nanjing", "East China (Nanjing)", true},
      {"ap-seoul", "Northeast Asia (Seoul)", false},
      {"ap-shanghai", "East China (Shanghai)", true},
      {"ap-singapore", "Southeast Asia (Singapore)", false},
      {"ap-tokyo", "Northeast Asia (Tokyo)", false},
      {"eu-frankfurt", "Europe (Frankfurt)", false},
      {"na-ashburn", "US East (Virginia)", false},
      {"na-siliconvalley", "US West (Silicon Valley)", false},
      {"sa-saopaulo", "South America (Sao Paulo)", false},
  };
  return *regions;
}

const EmulatedRegion* FindEmulatedRegion(absl::string_view id) {
  for (const EmulatedRegion& r : EmulatedRegions()) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

namespace {

bool IsRegionId(absl::string_view id) {
  if (id.empty() || id.size() > 32 || !(id[0] >= 'a' && id[0] <= 'z')) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

}  // namespace

RegionList::RegionList() {
  for (const EmulatedRegion& r : EmulatedRegions()) {
    regions_.push_back({std::string(r.id), std::string(r.name), r.china_mainland});
  }
}

std::optional<RegionEntry> RegionList::Find(absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  for (const RegionEntry& r : regions_) {
    if (r.id == id) return r;
  }
  return std::nullopt;
}

std::vector<RegionEntry> RegionList::All() const {
  absl::MutexLock lock(&mu_);
  return regions_;
}

absl::Status RegionList::Replace(absl::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("regions") ||
      !doc["regions"].IsArray()) {
    return absl::InvalidArgumentError(R"(expected {"regions":[{"Region":...},...]})");
  }
  const auto& list = doc["regions"].GetArray();
  if (list.Empty() || list.Size() > 100) {
    return absl::InvalidArgumentError("regions must hold 1 to 100 entries");
  }
  std::vector<RegionEntry> next;
  std::set<std::string> seen;
  for (const auto& v : list) {
    if (!v.IsObject() || !v.HasMember("Region") || !v["Region"].IsString() ||
        !IsRegionId(v["Region"].GetString())) {
      return absl::InvalidArgumentError(
          "each region needs \"Region\": 1-32 of [a-z0-9-] starting with a letter");
    }
    RegionEntry e;
    e.id = v["Region"].GetString();
    if (!seen.insert(e.id).second) {
      return absl::InvalidArgumentError(absl::StrCat("region ", e.id, " listed twice"));
    }
    if (v.HasMember("RegionName") && v["RegionName"].IsString()) {
      e.name = std::string(v["RegionName"].GetString()).substr(0, 256);
    }
    if (!v.HasMember("IsChinaMainland") || !v["IsChinaMainland"].IsBool()) {
      return absl::InvalidArgumentError(
          absl::StrCat("region ", e.id, ": \"IsChinaMainland\" (a boolean) is required"));
    }
    e.china_mainland = v["IsChinaMainland"].GetBool();
    next.push_back(std::move(e));
  }
  std::sort(next.begin(), next.end(),
            [](const RegionEntry& a, const RegionEntry& b) { return a.id < b.id; });
  absl::MutexLock lock(&mu_);
  regions_ = std::move(next);
  return absl::OkStatus();
}

std::string RegionList::Json() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("regions");
  w.StartArray();
  for (const RegionEntry& r : All()) {
    w.StartObject();
    w.Key("Region");
    w.String(r.id.c_str());
    w.Key("RegionName");
    w.String(r.name.c_str());
    w.Key("IsChinaMainland");
    w.Bool(r.china_mainland);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buffer.GetString();
}

}  // namespace blueprintsync::emulator
