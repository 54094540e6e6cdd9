// PolicySurvey: what the policy controller asks Tencent Cloud each pass,
// batched so its cost grows with regions and copies, not with policies:
// per region one DescribeBlueprints per 100 ids (every policy's fixed
// source and tracked copies in that region), and per source region one
// per 100 family names (paged by 100 blueprints).
#ifndef BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_SURVEY_H_
#define BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_SURVEY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::policies {

struct SurveyAsk {
  std::map<std::string, std::set<std::string>> ids;    // region -> blueprint ids
  std::map<std::string, std::set<std::string>> names;  // source region -> family names
};

// A family listing stops after this many blueprints (per region): beyond
// it the families of that call are not answered this pass.
inline constexpr int64_t kMaxFamilyBlueprints = 5000;

struct Survey {
  enum class Seen { kUnknown, kGone, kPresent };
  // Ids asked in calls that succeeded: the blueprint, or nullopt when the
  // answer did not have it (gone).
  std::map<std::pair<std::string, std::string>, std::optional<tencent::Blueprint>> ids;
  // (source region, name) -> the PRIVATE blueprints with exactly that
  // name, for names whose listing completed.
  std::map<std::pair<std::string, std::string>, std::vector<tencent::Blueprint>> families;
  // region -> the last error of a call there.
  std::map<std::string, std::string> errors;
  int64_t calls = 0;

  // kPresent sets *blueprint.
  Seen Look(const std::string& region, const std::string& id,
            const tencent::Blueprint** blueprint = nullptr) const;
  // Nullptr unless the family's listing completed.
  const std::vector<tencent::Blueprint>* Family(const std::string& region,
                                                const std::string& name) const;
};

// Asks everything in `ask`; a failed call leaves what it asked unknown
// (never gone). `options` go with every call (background priority).
Survey RunSurvey(tencent::LighthouseClient* client, const SurveyAsk& ask,
                 const tencent::CallOptions& options);

}  // namespace blueprintsync::policies

#endif  // BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_SURVEY_H_
