// What a look upstream says about a SyncBlueprint call whose outcome is
// unknown (a crash after the call was recorded, a timeout, a 5xx): a pure
// function of the evidence, so every case can be tested as a table row.
//
//  - every destination region has exactly one candidate copy: the call
//    executed; adopt those copies;
//  - no region has any and the source is NORMAL (not syncing): the call did
//    not execute; sending it now cannot make a second set of copies;
//  - anything else (a copy in some regions only, two candidates in one, the
//    source still syncing, the evidence could not be read): inconclusive;
//    look again later, and never resend.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_RECONCILE_DECISION_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_RECONCILE_DECISION_H_

#include <map>
#include <string>
#include <vector>

#include "service/tencent/lighthouse_types.h"

namespace blueprintsync::jobs {

struct ReconcileEvidence {
  // Set when the evidence could not be gathered (then nothing else counts).
  std::string problem;
  std::vector<std::string> regions;  // the job's destination regions
  std::string source_state;          // the source blueprint's BlueprintState
  // Region -> private blueprints with the source's name created since the
  // attempt, not owned by any other job.
  std::map<std::string, std::vector<tencent::Blueprint>> candidates;
};

struct ReconcileDecision {
  enum class Verdict { kAdopt, kResubmit, kInconclusive };
  Verdict verdict = Verdict::kInconclusive;
  std::map<std::string, tencent::Blueprint> adopt;  // region -> the copy (kAdopt)
  std::string detail;                               // why (kInconclusive)
};

ReconcileDecision DecideReconcile(const ReconcileEvidence& evidence);

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_RECONCILE_DECISION_H_
