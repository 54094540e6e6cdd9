#include "service/policies/policy_plan.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "service/jobs/job_state.h"
#include "service/tencent/crypto.h"
#include "service/tencent/regions.h"

namespace blueprintsync::policies {
namespace {

using Region = v1::SyncPolicyRegion;

// Upstream strings kept in a status are cut to this (a state is a short
// word; anything longer is not one).
constexpr size_t kMaxStateBytes = 32;

bool IsFamily(const v1::SyncPolicy& spec) {
  return spec.source_case() == v1::SyncPolicy::kBlueprintName;
}

// A blueprint state in which a copy will never become usable again.
bool IsBroken(const std::string& blueprint_state) {
  return jobs::DestinationStateFor(blueprint_state) == v1::Destination::FAILED;
}

v1::SyncError Error(absl::StatusCode code, std::string message) {
  v1::SyncError e;
  e.set_code(static_cast<int>(code));
  e.set_message(std::move(message));
  return e;
}

absl::Time CreatedTime(const tencent::Blueprint& b) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, b.created_time, &t, &err)) return t;
  return absl::InfinitePast();
}

// The newest version of a family (by CreatedTime, then id) that is NORMAL
// or is `current` SYNCING: a blueprint that is the source of a running sync
// shows SYNCING, and the version the policy follows stays the newest one
// while it is copied (its own job's, or anyone's). Nullptr if none.
const tencent::Blueprint* Newest(const std::vector<tencent::Blueprint>& family,
                                 const std::string& current) {
  const tencent::Blueprint* best = nullptr;
  for (const tencent::Blueprint& b : family) {
    const bool busy_current = b.blueprint_id == current && b.blueprint_state == "SYNCING";
    if (b.blueprint_state != "NORMAL" && !busy_current) continue;
    if (best == nullptr || std::make_pair(CreatedTime(b), b.blueprint_id) >
                               std::make_pair(CreatedTime(*best), best->blueprint_id)) {
      best = &b;
    }
  }
  return best;
}

// What the survey says about the policy's source this pass.
struct Source {
  std::string id;          // resolved (or, when unknown, the last known one)
  bool confirmed = false;  // seen NORMAL this pass: jobs may start
  bool answered = false;   // the survey answered for it this pass
  std::string created_time;
  std::optional<v1::SyncError> error;
};

Source Resolve(const v1::SyncPolicy& spec, const PolicyStatus& previous, const Survey& survey) {
  Source s;
  s.id = previous.view().source_blueprint_id();
  s.created_time = previous.source_created_time();
  const std::string& region = spec.source_region();
  if (IsFamily(spec)) {
    const std::vector<tencent::Blueprint>* family = survey.Family(region, spec.blueprint_name());
    if (family == nullptr) return s;  // not answered: keep what we knew
    s.answered = true;
    const tencent::Blueprint* newest = Newest(*family, s.id);
    if (newest == nullptr) {
      s.error = Error(absl::StatusCode::kNotFound,
                      absl::StrCat("no NORMAL custom blueprint named \"", spec.blueprint_name(),
                                   "\" in ", region));
      return s;
    }
    if (!tencent::IsValidBlueprintId(newest->blueprint_id)) {
      // A hostile or broken answer: never copy (or protect) what it names.
      s.error = Error(absl::StatusCode::kUnavailable,
                      "DescribeBlueprints answered a malformed BlueprintId for the family");
      return s;
    }
    s.id = newest->blueprint_id;
    s.created_time = newest->created_time.substr(0, 64);
    // Busy as a source: kept, but no new job from it until it is NORMAL.
    s.confirmed = newest->blueprint_state == "NORMAL";
    return s;
  }
  const tencent::Blueprint* b = nullptr;
  switch (survey.Look(region, spec.blueprint_id(), &b)) {
    case Survey::Seen::kUnknown:
      return s;
    case Survey::Seen::kGone:
      s.answered = true;
      s.error = Error(absl::StatusCode::kNotFound,
                      absl::StrCat("blueprint ", spec.blueprint_id(), " does not exist in ", region));
      return s;
    case Survey::Seen::kPresent:
      s.answered = true;
      s.id = spec.blueprint_id();
      s.created_time = b->created_time.substr(0, 64);
      if (b->blueprint_type != "PRIVATE") {
        s.error = Error(absl::StatusCode::kFailedPrecondition,
                        absl::StrCat("blueprint ", spec.blueprint_id(), " is not a custom image (",
                                     b->blueprint_type.substr(0, kMaxStateBytes), ")"));
      } else if (b->blueprint_state == "SYNCING") {
        // The source of a running sync (ours or anyone's): no new job until
        // it is NORMAL again, and nothing wrong with the policy.
      } else if (b->blueprint_state != "NORMAL") {
        s.error = Error(absl::StatusCode::kFailedPrecondition,
                        absl::StrCat("blueprint ", spec.blueprint_id(), " is ",
                                     b->blueprint_state.substr(0, kMaxStateBytes),
                                     ", not NORMAL"));
      } else {
        s.confirmed = true;
      }
      return s;
  }
  return s;
}

absl::Duration Backoff(int failures, const PlanOptions& options) {
  absl::Duration d = options.backoff_initial;
  for (int i = 1; i < failures && d < options.backoff_max; ++i) d *= 2;
  return std::min(d, options.backoff_max);
}

bool HasCopy(const Region& r, const std::string& id) {
  return std::any_of(r.copies().begin(), r.copies().end(),
                     [&](const v1::PolicyCopy& c) { return c.blueprint_id() == id; });
}

// Adds a copy a job made, newest first.
void AddCopy(Region* r, const v1::SyncJob& job, const v1::Destination& d) {
  if (d.blueprint_id().empty() || HasCopy(*r, d.blueprint_id())) return;
  v1::PolicyCopy c;
  c.set_blueprint_id(d.blueprint_id());
  c.set_source_blueprint_id(job.blueprint_id());
  c.set_job(job.name());
  c.set_blueprint_state(d.blueprint_state().empty() ? "NORMAL" : d.blueprint_state());
  *c.mutable_create_time() = d.update_time();
  auto* copies = r->mutable_copies();
  copies->Add(std::move(c));
  std::rotate(copies->begin(), copies->end() - 1, copies->end());
  if (copies->size() > kMaxTrackedCopies) copies->RemoveLast();
}

// Settles the open job into the regions; returns the regions it still
// covers (running, not ended there).
std::set<std::string> SettleJob(PolicyStatus* status, std::map<std::string, Region*>& regions,
                                const OpenJobView& open, const PlanOptions& options) {
  std::set<std::string> covered;
  if (open.kind == OpenJobView::Kind::kNone) return covered;
  if (open.kind == OpenJobView::Kind::kGone) {
    status->clear_open_job();
    return covered;
  }
  if (open.kind == OpenJobView::Kind::kUnknown) {
    // Cannot tell what it did: every region it may cover waits.
    for (auto& [name, r] : regions) covered.insert(name);
    return covered;
  }
  const v1::SyncJob& job = open.job;
  const bool ended = jobs::IsTerminal(job.state());
  for (const v1::Destination& d : job.destinations()) {
    auto it = regions.find(d.region());
    if (it == regions.end()) continue;  // no longer a destination of the policy
    Region* r = it->second;
    r->set_last_job(job.name());
    if (d.state() == v1::Destination::SUCCEEDED) {
      AddCopy(r, job, d);
      // The tracker saw it NORMAL when the destination succeeded.
      if (d.has_update_time()) *r->mutable_confirm_time() = d.update_time();
    } else if (d.state() == v1::Destination::CANCELLED) {
      // Cancelled by someone: nothing learned; the region is tried again.
    } else if (ended) {
      // Failed here, or never got going (a submission rejected as a whole
      // leaves its destinations as they were and the error on the job).
      *r->mutable_last_error() = d.has_error() ? d.error() : job.error();
      r->set_failures(r->failures() + 1);
      *r->mutable_next_attempt_time() =
          jobs::ToProto(options.now + Backoff(r->failures(), options));
    } else {
      if (d.state() == v1::Destination::FAILED) {
        *r->mutable_last_error() = d.error();
        r->set_state(Region::FAILED);
      } else {
        r->set_state(Region::SYNCING);
      }
      covered.insert(d.region());
    }
  }
  if (ended) status->clear_open_job();
  return covered;
}

// Checks the region's copies against the survey: drops the gone ones,
// plans deletion of broken ones. Returns true if a copy of `source` that
// served was lost (a drift to repair).
bool CheckCopies(Region* r, const std::string& source, const Survey& survey,
                 const BlueprintKeys& protected_sources, std::vector<PlannedDelete>* deletes) {
  bool drift = false;
  auto* copies = r->mutable_copies();
  for (int i = 0; i < copies->size();) {
    v1::PolicyCopy& c = copies->at(i);
    const tencent::Blueprint* b = nullptr;
    const Survey::Seen seen = survey.Look(r->region(), c.blueprint_id(), &b);
    const bool was_serving = c.source_blueprint_id() == source && c.blueprint_state() == "NORMAL";
    if (seen == Survey::Seen::kGone) {
      drift |= was_serving;
      copies->erase(copies->begin() + i);
      continue;
    }
    if (seen == Survey::Seen::kPresent) {
      c.set_blueprint_state(b->blueprint_state.substr(0, kMaxStateBytes));
      if (IsBroken(b->blueprint_state)) {
        drift |= was_serving;
        if (protected_sources.count({r->region(), c.blueprint_id()}) == 0) {
          deletes->push_back({r->region(), c.blueprint_id()});
        }
      }
    }
    ++i;
  }
  return drift;
}

// The copy that serves: a NORMAL copy of the current source if there is
// one (a family rolled back to an older version serves that version), else
// the newest NORMAL copy.
void SetServing(Region* r, const std::string& source = "") {
  r->clear_blueprint_id();
  r->clear_serving_source_blueprint_id();
  const v1::PolicyCopy* serving = nullptr;
  for (const v1::PolicyCopy& c : r->copies()) {
    if (c.blueprint_state() != "NORMAL") continue;
    if (!source.empty() && c.source_blueprint_id() == source) {
      serving = &c;
      break;
    }
    if (serving == nullptr) serving = &c;
  }
  if (serving == nullptr) return;
  r->set_blueprint_id(serving->blueprint_id());
  r->set_serving_source_blueprint_id(serving->source_blueprint_id());
}

bool IsPlanned(const std::vector<PlannedDelete>& deletes, const std::string& region,
               const std::string& id) {
  return std::any_of(deletes.begin(), deletes.end(), [&](const PlannedDelete& d) {
    return d.region == region && d.blueprint_id == id;
  });
}

// Old copies beyond keep_versions, once the region is IN_SYNC.
void PlanOldVersions(const Region& r, int keep, const std::string& source,
                     const BlueprintKeys& protected_sources, std::vector<PlannedDelete>* deletes) {
  if (keep <= 0 || r.state() != Region::IN_SYNC) return;
  for (int i = keep; i < r.copies_size(); ++i) {
    const v1::PolicyCopy& c = r.copies(i);
    if (c.blueprint_id() == r.blueprint_id()) continue;  // never the serving copy
    if (c.source_blueprint_id() == source) continue;     // nor one of the current source
    if (protected_sources.count({r.region(), c.blueprint_id()}) > 0) continue;
    if (c.blueprint_state() == "SYNCING") continue;  // not deletable yet
    if (!IsPlanned(*deletes, r.region(), c.blueprint_id())) {
      deletes->push_back({r.region(), c.blueprint_id()});
    }
  }
}

PolicyPlan PlanDeletion(const PolicyRecord& record, const OpenJobView& open,
                        const BlueprintKeys& protected_sources, const PlanOptions& options) {
  PolicyPlan plan;
  plan.status = record.status();
  PolicyStatus& status = plan.status;
  std::map<std::string, Region*> regions;
  for (Region& r : *status.mutable_view()->mutable_regions()) regions[r.region()] = &r;
  if (!status.open_job().empty()) {
    if (open.kind == OpenJobView::Kind::kFound && !jobs::IsTerminal(open.job.state())) {
      plan.cancel_job = true;
    } else {
      SettleJob(&status, regions, open, options);  // its successful copies join the list
    }
  }
  for (Region& r : *status.mutable_view()->mutable_regions()) {
    auto* copies = r.mutable_copies();
    for (int i = 0; i < copies->size();) {
      if (protected_sources.count({r.region(), copies->at(i).blueprint_id()}) > 0) {
        copies->erase(copies->begin() + i);  // another policy's source: left, untracked
        continue;
      }
      plan.deletes.push_back({r.region(), copies->at(i).blueprint_id()});
      ++i;
    }
    SetServing(&r);
  }
  status.mutable_view()->set_in_sync(false);
  *status.mutable_view()->mutable_reconcile_time() = jobs::ToProto(options.now);
  plan.remove = status.open_job().empty() && plan.deletes.empty();
  return plan;
}

}  // namespace

BlueprintKeys ProtectedSources(const std::vector<PolicyRecord>& policies) {
  BlueprintKeys keys;
  for (const PolicyRecord& p : policies) {
    const std::string& region = p.spec().source_region();
    if (!IsFamily(p.spec()) && !p.spec().blueprint_id().empty()) {
      keys.insert({region, p.spec().blueprint_id()});
    }
    if (!p.status().view().source_blueprint_id().empty()) {
      keys.insert({region, p.status().view().source_blueprint_id()});
    }
  }
  return keys;
}

SurveyAsk WhatToAsk(const std::vector<PolicyRecord>& policies) {
  SurveyAsk ask;
  for (const PolicyRecord& p : policies) {
    if (p.spec().paused() || p.delete_requested()) continue;
    const v1::SyncPolicy& spec = p.spec();
    if (IsFamily(spec)) {
      ask.names[spec.source_region()].insert(spec.blueprint_name());
    } else {
      ask.ids[spec.source_region()].insert(spec.blueprint_id());
    }
    for (const Region& r : p.status().view().regions()) {
      for (const v1::PolicyCopy& c : r.copies()) ask.ids[r.region()].insert(c.blueprint_id());
    }
  }
  return ask;
}

PolicyPlan PlanPolicy(const PolicyRecord& record, const Survey& survey, const OpenJobView& open,
                      const BlueprintKeys& protected_sources, const PlanOptions& options) {
  if (record.delete_requested()) {
    return PlanDeletion(record, open, protected_sources, options);
  }
  PolicyPlan plan;
  plan.status = record.status();
  if (record.spec().paused()) return plan;
  const v1::SyncPolicy& spec = record.spec();
  PolicyStatus& status = plan.status;
  v1::SyncPolicy* view = status.mutable_view();

  // The regions, in the spec's order; regions no longer wanted are dropped
  // (their copies stay upstream, untracked).
  std::map<std::string, Region> previous;
  for (Region& r : *view->mutable_regions()) previous[r.region()] = std::move(r);
  view->clear_regions();
  std::map<std::string, Region*> regions;
  for (const std::string& name : spec.destination_regions()) {
    Region* r = view->add_regions();
    auto it = previous.find(name);
    if (it != previous.end()) {
      *r = std::move(it->second);
    } else {
      r->set_region(name);
      r->set_state(Region::PENDING);
    }
    regions[name] = r;
  }

  const Source source = Resolve(spec, status, survey);
  if (source.id != view->source_blueprint_id()) {
    // A new version: failures counted for the old one no longer apply.
    for (auto& [name, r] : regions) {
      r->set_failures(0);
      r->clear_next_attempt_time();
      r->clear_last_error();
    }
  }
  view->set_source_blueprint_id(source.id);
  status.set_source_created_time(source.created_time);
  if (source.error.has_value()) {
    *view->mutable_source_error() = *source.error;
  } else if (source.answered) {
    view->clear_source_error();
  }

  const std::set<std::string> covered = SettleJob(&status, regions, open, options);

  std::vector<std::string> wanted;
  for (const std::string& name : spec.destination_regions()) {
    Region* r = regions[name];
    if (CheckCopies(r, source.id, survey, protected_sources, &plan.deletes)) ++plan.drift_repairs;
    SetServing(r, source.id);
    if (covered.count(name) > 0) continue;  // SYNCING or FAILED in the running job
    bool in_sync = false;
    bool syncing = false;
    for (const v1::PolicyCopy& c : r->copies()) {
      if (c.source_blueprint_id() != source.id || source.id.empty()) continue;
      if (c.blueprint_state() == "NORMAL") {
        in_sync = true;
        if (survey.Look(name, c.blueprint_id()) == Survey::Seen::kPresent) {
          *r->mutable_confirm_time() = jobs::ToProto(options.now);
        }
        break;
      }
      if (c.blueprint_state() == "SYNCING") syncing = true;
    }
    if (in_sync) {
      r->set_state(Region::IN_SYNC);
      r->set_failures(0);
      r->clear_next_attempt_time();
      r->clear_last_error();
    } else if (syncing) {
      r->set_state(Region::SYNCING);
    } else if (r->failures() > 0 && jobs::FromProto(r->next_attempt_time()) > options.now) {
      r->set_state(Region::FAILED);
    } else {
      r->set_state(Region::PENDING);
      wanted.push_back(name);
    }
    PlanOldVersions(*r, spec.keep_versions(), source.id, protected_sources, &plan.deletes);
  }

  if (!wanted.empty() && status.open_job().empty() && source.confirmed &&
      !source.error.has_value()) {
    plan.job = PlannedJob{source.id, wanted, PolicyJobRequestId(record.uid(), status.job_attempt())};
  }

  bool all_in_sync = !regions.empty() && !source.id.empty() && !view->has_source_error();
  for (const Region& r : view->regions()) all_in_sync &= r.state() == Region::IN_SYNC;
  view->set_in_sync(all_in_sync);
  *view->mutable_reconcile_time() = jobs::ToProto(options.now);
  return plan;
}

std::string PolicyJobRequestId(const std::string& uid, int64_t attempt) {
  std::string h = tencent::crypto::Sha256Hex(absl::StrCat("blueprint-sync policy job\n", uid, "\n", attempt));
  h[12] = '5';  // a name-based UUID (version 5 layout, SHA-derived)
  h[16] = "89ab"[h[16] % 4];
  return absl::StrCat(h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4), "-",
                      h.substr(16, 4), "-", h.substr(20, 12));
}

void RecordJobStarted(PolicyStatus* status, const PlannedJob& planned, const v1::SyncJob& job) {
  status->set_open_job(job.name());
  status->set_job_attempt(status->job_attempt() + 1);
  for (Region& r : *status->mutable_view()->mutable_regions()) {
    if (std::find(planned.regions.begin(), planned.regions.end(), r.region()) ==
        planned.regions.end()) {
      continue;
    }
    r.set_last_job(job.name());
    r.set_state(Region::SYNCING);
  }
  status->mutable_view()->set_in_sync(false);
}

bool RecordDelete(PolicyStatus* status, const PlannedDelete& d, const absl::Status& outcome,
                  const PlanOptions& options) {
  auto& failing = *status->mutable_delete_failing_since();
  bool drop = outcome.ok() || absl::IsNotFound(outcome);
  if (!drop) {
    auto it = failing.find(d.blueprint_id);
    if (it == failing.end()) {
      failing[d.blueprint_id] = jobs::ToProto(options.now);
    } else if (options.now - jobs::FromProto(it->second) >= options.cleanup_give_up_after) {
      drop = true;  // given up on: no longer tracked
    }
  }
  if (!drop) return false;
  failing.erase(d.blueprint_id);
  for (Region& r : *status->mutable_view()->mutable_regions()) {
    if (r.region() != d.region) continue;
    auto* copies = r.mutable_copies();
    for (int i = 0; i < copies->size(); ++i) {
      if (copies->at(i).blueprint_id() == d.blueprint_id) {
        copies->erase(copies->begin() + i);
        break;
      }
    }
    SetServing(&r);
  }
  return true;
}

bool StatusDiffers(const PolicyStatus& a, const PolicyStatus& b) {
  PolicyStatus x = a;
  PolicyStatus y = b;
  for (PolicyStatus* s : {&x, &y}) {
    s->mutable_view()->clear_reconcile_time();
    for (Region& r : *s->mutable_view()->mutable_regions()) r.clear_confirm_time();
  }
  return !google::protobuf::util::MessageDifferencer::Equals(x, y);
}

}  // namespace blueprintsync::policies
