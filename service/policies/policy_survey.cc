#include "service/policies/policy_survey.h"

#include <algorithm>
#include <iterator>

#include "absl/status/statusor.h"

namespace blueprintsync::policies {
namespace {

constexpr size_t kNamesPerCall = 100;  // values of one filter

// Up to `n` items of `all` from `*next` on.
std::vector<std::string> Chunk(const std::set<std::string>& all,
                               std::set<std::string>::const_iterator* next, size_t n) {
  std::vector<std::string> out;
  while (*next != all.end() && out.size() < n) out.push_back(*(*next)++);
  return out;
}

void AskIds(tencent::LighthouseClient* client, const std::string& region,
            const std::set<std::string>& ids, const tencent::CallOptions& options,
            Survey* survey) {
  auto next = ids.begin();
  while (next != ids.end()) {
    tencent::DescribeBlueprintsRequest q;
    q.region = region;
    q.blueprint_ids = Chunk(ids, &next, tencent::kMaxDescribeIds);
    q.limit = tencent::kMaxDescribeIds;
    ++survey->calls;
    absl::StatusOr<tencent::DescribeBlueprintsResponse> r = client->DescribeBlueprints(q, options);
    if (!r.ok()) {
      survey->errors[region] = std::string(r.status().message());
      continue;  // these ids stay unknown
    }
    for (const std::string& id : q.blueprint_ids) survey->ids[{region, id}] = std::nullopt;
    for (tencent::Blueprint& b : r->blueprints) {
      auto it = survey->ids.find({region, b.blueprint_id});
      if (it != survey->ids.end()) it->second = std::move(b);  // never an id not asked
    }
  }
}

void AskNames(tencent::LighthouseClient* client, const std::string& region,
              const std::set<std::string>& names, const tencent::CallOptions& options,
              Survey* survey) {
  auto next = names.begin();
  while (next != names.end()) {
    const std::vector<std::string> chunk = Chunk(names, &next, kNamesPerCall);
    std::map<std::string, std::vector<tencent::Blueprint>> found;
    for (const std::string& n : chunk) found[n];
    bool complete = false;
    for (int64_t offset = 0; offset < kMaxFamilyBlueprints; offset += tencent::kMaxDescribeIds) {
      tencent::DescribeBlueprintsRequest q;
      q.region = region;
      q.filters = {{"blueprint-name", chunk}, {"blueprint-type", {"PRIVATE"}}};
      q.offset = offset;
      q.limit = tencent::kMaxDescribeIds;
      ++survey->calls;
      absl::StatusOr<tencent::DescribeBlueprintsResponse> r =
          client->DescribeBlueprints(q, options);
      if (!r.ok()) {
        survey->errors[region] = std::string(r.status().message());
        break;
      }
      for (tencent::Blueprint& b : r->blueprints) {
        // The filter is Tencent's; the name must match exactly here.
        auto it = found.find(b.blueprint_name);
        if (it != found.end() && b.blueprint_type == "PRIVATE") it->second.push_back(std::move(b));
      }
      const int64_t seen = offset + static_cast<int64_t>(r->blueprints.size());
      if (r->blueprints.empty() || seen >= r->total_count) {
        complete = true;
        break;
      }
    }
    if (!complete) continue;
    for (auto& [name, list] : found) survey->families[{region, name}] = std::move(list);
  }
}

}  // namespace

Survey::Seen Survey::Look(const std::string& region, const std::string& id,
                          const tencent::Blueprint** blueprint) const {
  auto it = ids.find({region, id});
  if (it == ids.end()) return Seen::kUnknown;
  if (!it->second.has_value()) return Seen::kGone;
  if (blueprint != nullptr) *blueprint = &*it->second;
  return Seen::kPresent;
}

const std::vector<tencent::Blueprint>* Survey::Family(const std::string& region,
                                                      const std::string& name) const {
  auto it = families.find({region, name});
  return it == families.end() ? nullptr : &it->second;
}

Survey RunSurvey(tencent::LighthouseClient* client, const SurveyAsk& ask,
                 const tencent::CallOptions& options) {
  Survey survey;
  for (const auto& [region, names] : ask.names) AskNames(client, region, names, options, &survey);
  for (const auto& [region, ids] : ask.ids) AskIds(client, region, ids, options, &survey);
  return survey;
}

}  // namespace blueprintsync::policies
