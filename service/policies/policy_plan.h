// The policy controller's decisions, as pure functions of what it knows:
// the stored policy, what the survey saw upstream, and the policy's open
// job. No I/O here, so every rule is unit-tested on its own
// (policy_plan_test.cc) and the controller only carries plans out.
#ifndef BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_PLAN_H_
#define BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_PLAN_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "blueprintsync/internal/policy_record.pb.h"
#include "service/policies/policy_survey.h"

namespace blueprintsync::policies {

using internal::PolicyRecord;
using internal::PolicyStatus;

// Copies tracked per region of a policy, at most; with keep_versions 0 the
// oldest beyond this are forgotten (left upstream, no longer tracked).
inline constexpr int kMaxTrackedCopies = 100;

// The policy's open job, as the job service answered for it.
struct OpenJobView {
  enum class Kind {
    kNone,     // the policy has no open job
    kUnknown,  // it has one, but it could not be read this pass
    kGone,     // it has one, but the job no longer exists
    kFound,
  };
  Kind kind = Kind::kNone;
  v1::SyncJob job;  // kFound
};

struct PlanOptions {
  absl::Time now;
  absl::Duration backoff_initial = absl::Seconds(60);
  absl::Duration backoff_max = absl::Hours(1);
  absl::Duration cleanup_give_up_after = absl::Hours(24);
};

// A job to start for the policy.
struct PlannedJob {
  std::string source_blueprint_id;
  std::vector<std::string> regions;  // in the policy's destination order
  // Derived from the policy's uid and job_attempt (PolicyJobRequestId).
  std::string request_id;
};

struct PlannedDelete {
  std::string region;
  std::string blueprint_id;
};

struct PolicyPlan {
  // The status to write once the plan is carried out (RecordJobStarted and
  // RecordDelete amend it with the outcomes).
  PolicyStatus status;
  std::optional<PlannedJob> job;
  std::vector<PlannedDelete> deletes;
  // Deleting with delete_copies: cancel status.open_job (repeated each pass
  // until the job has ended; cancelling is idempotent).
  bool cancel_job = false;
  // Deleting, and nothing is left: remove the record.
  bool remove = false;
  // Regions whose copy of the current source vanished or broke this pass.
  int drift_repairs = 0;
};

// (region, blueprint id) pairs that are some policy's source: never deleted.
using BlueprintKeys = std::set<std::pair<std::string, std::string>>;
BlueprintKeys ProtectedSources(const std::vector<PolicyRecord>& policies);

// What the survey must look at for these policies: their fixed sources and
// families (paused policies and those being deleted excluded) and every
// copy they track.
SurveyAsk WhatToAsk(const std::vector<PolicyRecord>& policies);

// The plan for one policy this pass. A paused policy (not being deleted)
// gets its status back unchanged and nothing to do.
PolicyPlan PlanPolicy(const PolicyRecord& record, const Survey& survey, const OpenJobView& open_job,
                      const BlueprintKeys& protected_sources, const PlanOptions& options);

// The request_id of the policy's job number `attempt`: a UUID derived from
// the policy's uid, so the same attempt always has the same id.
std::string PolicyJobRequestId(const std::string& uid, int64_t attempt);

// The job was recorded for `planned` (the service answered with `job`):
// it becomes the open job, its regions SYNCING, job_attempt advances.
void RecordJobStarted(PolicyStatus* status, const PlannedJob& planned, const v1::SyncJob& job);

// The outcome of deleting one planned copy: deleted (OK) or already gone
// (NotFound) drop it from tracking; another failure keeps it for the next
// pass until cleanup_give_up_after has passed since the first failure.
// Returns true if the copy is no longer tracked.
bool RecordDelete(PolicyStatus* status, const PlannedDelete& d, const absl::Status& outcome,
                  const PlanOptions& options);

// Whether two statuses differ in anything but the times the controller
// refreshes every pass (reconcile_time, confirm_time).
bool StatusDiffers(const PolicyStatus& a, const PolicyStatus& b);

}  // namespace blueprintsync::policies

#endif  // BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_PLAN_H_
