#include "service/jobs/reconciler.h"

#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/common/log.h"
#include "service/jobs/job_lifecycle.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::jobs {
namespace {

// Parses Tencent's "YYYY-MM-DDThh:mm:ssZ".
bool ParseCreatedTime(const std::string& text, absl::Time* t) {
  std::string err;
  return !text.empty() &&
         absl::ParseTime("%Y-%m-%d%ET%H:%M:%SZ", text, absl::UTCTimeZone(), t, &err);
}

}  // namespace

struct Reconciler::Look {
  uint64_t generation = 0;
  std::string source_region;
  std::string blueprint_id;
  std::vector<std::string> regions;
  absl::Time attempt;
  std::set<std::string> claimed;  // destination ids other jobs already own
  int64_t sequence = 0;           // this job's place in the store
};

bool Reconciler::Begin(const std::string& name, Look* look) {
  return table_->Locked([&](TableState& s) {
    if (s.stopping || !s.leadership.leading()) return false;
    JobEntry* e = s.Find(name, s.generation);
    if (e == nullptr || e->rec.phase() != JobRecord::OUTCOME_UNKNOWN || e->submit_in_flight) {
      return false;
    }
    ++e->reconcile_looks;
    ++s.in_flight;
    look->generation = s.generation;
    const v1::SyncJob& job = e->rec.job();
    look->source_region = job.source_region();
    look->blueprint_id = job.blueprint_id();
    for (const auto& d : job.destinations()) look->regions.push_back(d.region());
    look->attempt = FromProto(e->rec.submit_attempt_time());
    look->sequence = e->rec.sequence();
    for (const auto& [other, o] : s.active) {
      if (other == name) continue;
      for (const auto& d : o.rec.job().destinations()) {
        if (!d.blueprint_id().empty()) look->claimed.insert(d.blueprint_id());
      }
    }
    return true;
  });
}

void Reconciler::Run(const std::string& name) {
  Look look;
  if (!Begin(name, &look)) return;
  // Shutdown waits for this: until the verdict is written and acted on.
  absl::Cleanup look_done = [this] { table_->Locked([](TableState& s) { --s.in_flight; }); };
  const ReconcileEvidence evidence = Gather(name, look);
  Apply(name, look, evidence);
}

std::string Reconciler::ClaimEarlierJobs(const std::string& name, const Look& look,
                                         std::set<std::string>* claimed) {
  // Copies earlier jobs on this source created are theirs, even when those
  // jobs have finished (or ran before a restart or on another replica): jobs
  // on one source run one after another, in creation order, so the few
  // created just before this one suffice. Not the newest few: with a backlog
  // of more than a page of jobs queued behind this one, those are all still
  // unsubmitted, and the previous job's copy would be taken for this one's.
  JobQuery q;
  q.source_region = look.source_region;
  q.blueprint_id = look.blueprint_id;
  q.cursor = look.sequence;  // 0 (unknown): no bound
  q.page_size = 50;
  auto earlier = store_->ListJobs(q);
  if (!earlier.ok()) {
    return absl::StrCat("could not read earlier jobs on this source: ", earlier.status().message());
  }
  for (const JobRecord& other : earlier->records) {
    if (other.job().name() == name) continue;
    for (const auto& d : other.job().destinations()) {
      if (!d.blueprint_id().empty()) claimed->insert(d.blueprint_id());
    }
  }
  return "";
}

ReconcileEvidence Reconciler::Gather(const std::string& name, const Look& look) {
  ReconcileEvidence ev;
  ev.regions = look.regions;
  std::set<std::string> claimed = look.claimed;
  ev.problem = ClaimEarlierJobs(name, look, &claimed);
  if (!ev.problem.empty()) return ev;
  // The source: its name identifies the copies, its state tells whether a
  // sync is (still) running.
  std::string source_name;
  {
    tencent::DescribeBlueprintsRequest q;
    q.region = look.source_region;
    q.blueprint_ids = {look.blueprint_id};
    auto r = client_->DescribeBlueprints(q);
    if (!r.ok()) {
      ev.problem = absl::StrCat("could not read the source blueprint: ", r.status().message());
      return ev;
    }
    if (r->blueprints.empty()) {
      ev.problem = "the source blueprint no longer exists";
      return ev;
    }
    source_name = r->blueprints[0].blueprint_name;
    ev.source_state = r->blueprints[0].blueprint_state;
  }
  // Each destination: private blueprints with the source's name created no
  // earlier than our attempt (less the allowed clock skew).
  const absl::Time since = look.attempt - steps_->options().reconcile_clock_skew;
  for (const std::string& region : look.regions) {
    tencent::DescribeBlueprintsRequest q;
    q.region = region;
    q.filters = {{"blueprint-name", {source_name}}, {"blueprint-type", {"PRIVATE"}}};
    q.limit = 100;
    auto r = client_->DescribeBlueprints(q);
    if (!r.ok()) {
      ev.problem =
          absl::StrCat("could not list blueprints in ", region, ": ", r.status().message());
      ev.candidates.clear();
      return ev;
    }
    for (const auto& b : r->blueprints) {
      absl::Time created;
      if (claimed.count(b.blueprint_id) || !ParseCreatedTime(b.created_time, &created)) continue;
      if (created >= since) ev.candidates[region].push_back(b);
    }
  }
  return ev;
}

void Reconciler::Apply(const std::string& name, const Look& look,
                       const ReconcileEvidence& evidence) {
  const ReconcileDecision decision = DecideReconcile(evidence);
  enum class Then { kNothing, kCommit, kResubmit, kLookAgain, kFail, kGiveUp } then =
      Then::kNothing;
  std::string last_error;
  const absl::Time now = steps_->clock()->Now();
  table_->Locked([&](TableState& s) {
    JobEntry* e = s.Find(name, look.generation);
    // Another look (or a resubmission) may have moved the job on meanwhile.
    if (e == nullptr || e->rec.phase() != JobRecord::OUTCOME_UNKNOWN || e->submit_in_flight) {
      return;
    }
    v1::SyncJob* job = e->rec.mutable_job();
    last_error = e->last_submit_error;
    switch (decision.verdict) {
      case ReconcileDecision::Verdict::kAdopt:
        // The call executed: adopt the copies it created.
        job->clear_state_reason();  // settled
        for (auto& d : *job->mutable_destinations()) {
          const tencent::Blueprint& b = decision.adopt.at(d.region());
          d.set_blueprint_id(b.blueprint_id);
          d.set_blueprint_state(b.blueprint_state);
          d.set_state(DestinationStateFor(b.blueprint_state));
          *d.mutable_update_time() = ToProto(now);
        }
        e->rec.set_phase(JobRecord::SUBMITTED);
        if (!job->has_submit_time()) *job->mutable_submit_time() = e->rec.submit_attempt_time();
        for (auto& d : *job->mutable_destinations()) {
          if (d.state() == v1::Destination::FAILED) MarkFailedCopy(*job, d);
        }
        UpdateSubmittedJobState(e->rec, now);  // a cancelled job deletes what it adopted
        e->Touch(now);
        s.wake_tracker = true;  // adopted copies are pending: as for a submission
        log::Info("reconciled: submission had executed; adopted its copies", {{"job", name}});
        then = Then::kCommit;
        return;
      case ReconcileDecision::Verdict::kResubmit:
        // Nothing was created and the source is not syncing: sending the
        // call now cannot create a second set of copies.
        e->rec.set_phase(JobRecord::NOT_SUBMITTED);
        job->clear_state_reason();  // settled
        if (job->state() == v1::SyncJob::CANCELLING) {
          // Cancelled while the outcome was unknown, and nothing was made.
          SettleCancel(e->rec, now);
          e->Touch(now);
          log::Info("reconciled: submission had not executed; job cancelled", {{"job", name}});
          then = Then::kCommit;
          return;
        }
        if (++e->attempts_not_executed >= kMaxSubmitAttempts) {
          // Each attempt was answered with a transient error and none
          // executed: stop rather than loop, and say so for good.
          e->rec.set_phase(JobRecord::REJECTED);
          then = Then::kGiveUp;
          return;
        }
        job->set_state(v1::SyncJob::QUEUED);
        job->clear_upstream_request_id();
        e->resubmitted = true;
        e->reconcile_looks = 0;
        e->Touch(now);
        log::Info("reconciled: submission had not executed; resubmitting", {{"job", name}});
        then = Then::kResubmit;
        return;
      case ReconcileDecision::Verdict::kInconclusive:
        if (s.stopping) {
          // At shutdown the look's calls are given up at the drain
          // deadline, which leaves any look inconclusive: it proves
          // nothing, so it neither counts nor fails the job (whose call
          // may have made paid copies). The next start looks again.
          --e->reconcile_looks;
          log::Info("reconcile cut short by shutdown; the next start looks again",
                    {{"job", name}});
          return;
        }
        if (e->reconcile_looks < steps_->options().reconcile_attempts) {
          log::Info("reconcile inconclusive; will look again",
                    {{"job", name}, {"detail", decision.detail}});
          then = Then::kLookAgain;
        } else {
          then = Then::kFail;
        }
        return;
    }
  });
  switch (then) {
    case Then::kNothing:
      return;
    case Then::kCommit:
      steps_->Commit(name, look.generation);
      return;
    case Then::kResubmit:
      steps_->Commit(name, look.generation);
      steps_->ScheduleSubmit(name, now);
      return;
    case Then::kGiveUp:
      steps_->Fail(name, look.generation,
                   PermanentFailure(absl::UnavailableError(absl::StrCat(
                       "SyncBlueprint was tried ", kMaxSubmitAttempts,
                       " times and never executed; the last attempt failed with: ",
                       last_error.empty() ? "an unknown outcome" : last_error))));
      return;
    case Then::kLookAgain:
      steps_->ScheduleReconcile(name, now + steps_->options().reconcile_grace);
      return;
    case Then::kFail:
      steps_->Fail(
          name, look.generation,
          absl::UnknownError(absl::StrCat(
              "needs attention: the SyncBlueprint call made at ", TimeText(look.attempt),
              " may have executed but its outcome could not be determined (", decision.detail,
              "). Check ", absl::StrJoin(look.regions, ", "), " for copies of ", look.blueprint_id,
              " created after that time before syncing again")));
      return;
  }
}

}  // namespace blueprintsync::jobs
