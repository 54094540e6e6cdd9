#include "service/jobs/reconcile_decision.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace blueprintsync::jobs {

ReconcileDecision DecideReconcile(const ReconcileEvidence& evidence) {
  ReconcileDecision d;
  if (!evidence.problem.empty()) {
    d.detail = evidence.problem;
    return d;
  }
  auto count = [&](const std::string& region) -> size_t {
    auto it = evidence.candidates.find(region);
    return it == evidence.candidates.end() ? 0 : it->second.size();
  };
  bool all_one = !evidence.regions.empty();
  bool none = true;
  for (const std::string& region : evidence.regions) {
    all_one &= count(region) == 1;
    none &= count(region) == 0;
  }
  // Candidates in regions the job does not sync to are not its copies, but
  // they are copies of this source made since the attempt: not "none".
  for (const auto& [region, list] : evidence.candidates) none &= list.empty();
  if (all_one) {
    d.verdict = ReconcileDecision::Verdict::kAdopt;
    for (const std::string& region : evidence.regions) {
      d.adopt[region] = evidence.candidates.at(region).front();
    }
    return d;
  }
  if (none && evidence.source_state == "NORMAL") {
    d.verdict = ReconcileDecision::Verdict::kResubmit;
    return d;
  }
  std::vector<std::string> seen;
  for (const std::string& region : evidence.regions) {
    seen.push_back(absl::StrCat(region, "=", count(region)));
  }
  d.detail = absl::StrCat("source state ", evidence.source_state,
                          ", copies found per region: ", absl::StrJoin(seen, ", "));
  return d;
}

}  // namespace blueprintsync::jobs
