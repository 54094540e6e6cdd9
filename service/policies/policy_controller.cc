#include "service/policies/policy_controller.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <vector>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "service/common/log.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::policies {
namespace {

// How long the controller waits for the job service to answer a call. A
// submission answers by its reply_by at the latest; this only guards
// against a service that never answers (the pass goes on without it).
constexpr absl::Duration kSubmitReplyBy = absl::Seconds(10);
constexpr absl::Duration kAnswerGrace = absl::Seconds(10);
// A status whose only change is its times is still written this often, so
// reconcile_time and confirm_time stay meaningful.
constexpr absl::Duration kStatusRefresh = absl::Minutes(5);

// Calls `start` with a callback and waits (up to `limit`) for its answer;
// nullopt if none came. The callback stays safe to call after that.
template <typename T>
std::optional<T> Await(const std::function<void(std::function<void(T)>)>& start,
                       absl::Duration limit) {
  struct State {
    absl::Notification done;
    std::optional<T> value;
  };
  auto state = std::make_shared<State>();
  start([state](T v) {
    if (state->done.HasBeenNotified()) return;
    state->value = std::move(v);
    state->done.Notify();
  });
  if (!state->done.WaitForNotificationWithTimeout(limit)) return std::nullopt;
  return std::move(state->value);
}

bool IsJobInFlight(const v1::SyncJob& job) { return !jobs::IsTerminal(job.state()); }

std::string CreatorOf(const PolicyRecord& record) {
  return record.spec().creator().empty() ? std::string(jobs::kAnonymousCreator)
                                         : record.spec().creator();
}

bool HasCopies(const PolicyStatus& status) {
  for (const v1::SyncPolicyRegion& r : status.view().regions()) {
    if (r.copies_size() > 0) return true;
  }
  return false;
}

}  // namespace

PolicyController::PolicyController(PolicyControllerOptions options, PolicyStore* store,
                                   jobs::JobService* jobs, tencent::LighthouseClient* client,
                                   Clock* clock)
    : options_(std::move(options)), store_(store), jobs_(jobs), client_(client), clock_(clock) {}

PolicyController::~PolicyController() { Shutdown(); }

void PolicyController::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void PolicyController::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  std::map<std::string, uint64_t> watches;
  {
    absl::MutexLock lock(&mu_);
    watches.swap(watches_);
  }
  for (const auto& [job, id] : watches) jobs_->Unwatch(id);
}

void PolicyController::FollowOpenJobs(const std::set<std::string>& open_jobs) {
  std::vector<uint64_t> stale;
  std::vector<std::string> fresh;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = watches_.begin(); it != watches_.end();) {
      if (open_jobs.count(it->first) == 0) {
        stale.push_back(it->second);
        it = watches_.erase(it);
      } else {
        ++it;
      }
    }
    for (const std::string& job : open_jobs) {
      if (watches_.count(job) == 0) fresh.push_back(job);
    }
  }
  // Outside mu_: the callbacks take it, and Unwatch waits for them.
  for (uint64_t id : stale) jobs_->Unwatch(id);
  for (const std::string& job : fresh) {
    const uint64_t id = jobs_->WatchJob(job, [this](absl::StatusOr<jobs::JobVersion> version) {
      if (version.ok() && !jobs::IsTerminal((*version)->state())) return;
      // The job ended (or cannot be followed): settle it now rather than at
      // the next interval, so in_sync follows the copies promptly.
      absl::MutexLock lock(&mu_);
      wake_ = true;
    });
    absl::MutexLock lock(&mu_);
    watches_[job] = id;
  }
}

void PolicyController::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

void PolicyController::PassOnceForTest() { RunPass(); }

bool PolicyController::stopping() const {
  absl::MutexLock lock(&mu_);
  return stop_;
}

PolicyControllerStats PolicyController::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void PolicyController::Loop() {
  absl::Time next_pass = absl::InfinitePast();
  std::optional<int64_t> last_mark;
  int64_t last_term = 0;
  // Without an elector nothing changes behind our back but local API
  // calls, which Wake(); with one, other replicas' changes are polled.
  const absl::Duration tick =
      options_.elector != nullptr ? options_.change_poll_interval : absl::Milliseconds(200);
  while (true) {
    bool woken = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this] { return stop_ || wake_; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), tick);
      if (stop_) return;
      woken = wake_;
      wake_ = false;
    }
    bool due = woken || clock_->Now() >= next_pass;
    if (options_.elector != nullptr) {
      const int64_t term = options_.elector->Term();
      if (term == 0) {
        last_term = 0;
        continue;  // a follower: the leader keeps the policies
      }
      if (term != last_term) due = true;  // just took the lead
      last_term = term;
      absl::StatusOr<int64_t> mark = store_->ChangeMark();
      if (mark.ok()) {
        if (last_mark.has_value() && *mark != *last_mark) due = true;
        last_mark = *mark;
      }
    }
    if (!due) continue;
    const absl::Time started = clock_->Now();
    RunPass();
    next_pass = started + options_.interval;  // start to start, as documented
  }
}

OpenJobView PolicyController::ReadOpenJob(const std::string& name) {
  OpenJobView view;
  if (name.empty()) return view;
  std::optional<absl::StatusOr<v1::SyncJob>> answer = Await<absl::StatusOr<v1::SyncJob>>(
      [&](std::function<void(absl::StatusOr<v1::SyncJob>)> done) {
        jobs_->GetJob(name, std::move(done));
      },
      kAnswerGrace);
  if (!answer.has_value()) {
    view.kind = OpenJobView::Kind::kUnknown;
  } else if (answer->ok()) {
    view.kind = OpenJobView::Kind::kFound;
    view.job = **answer;
  } else if (absl::IsNotFound(answer->status())) {
    view.kind = OpenJobView::Kind::kGone;
  } else {
    view.kind = OpenJobView::Kind::kUnknown;
  }
  return view;
}

std::optional<v1::SyncJob> PolicyController::FindJob(const PolicyRecord& record, int64_t attempt,
                                                     bool* looked) {
  jobs::JobQuery query;
  query.request_id = PolicyJobRequestId(record.uid(), attempt);
  query.creator = CreatorOf(record);
  query.page_size = 1;
  std::optional<absl::StatusOr<jobs::JobPage>> found = Await<absl::StatusOr<jobs::JobPage>>(
      [&](std::function<void(absl::StatusOr<jobs::JobPage>)> done) {
        jobs_->ListJobs(query, std::move(done));
      },
      kAnswerGrace);
  if (looked != nullptr) *looked = found.has_value() && found->ok();
  if (!found.has_value() || !found->ok() || (*found)->records.empty()) return std::nullopt;
  return (*found)->records.front().job();
}

bool PolicyController::StartJob(const PolicyRecord& record, PolicyPlan* plan) {
  const PlannedJob& planned = *plan->job;
  const std::string creator = CreatorOf(record);
  // A controller that crashed after the job was recorded but before the
  // status said so finds the job by its request_id instead of starting
  // another.
  bool looked = false;
  std::optional<v1::SyncJob> found = FindJob(record, plan->status.job_attempt(), &looked);
  if (!looked) return false;
  if (found.has_value()) {
    RecordJobStarted(&plan->status, planned, *found);
    return true;
  }

  jobs::NewJob job;
  v1::SyncBlueprintRequest& request = job.request;
  request.set_source_region(record.spec().source_region());
  request.set_blueprint_id(planned.source_blueprint_id);
  for (const std::string& r : planned.regions) request.add_destination_regions(r);
  request.set_request_id(planned.request_id);
  request.set_keep_failed_copies(false);
  job.creator = creator;
  job.timeout = options_.job_timeout;
  job.keep_failed_copies = false;
  job.policy = record.spec().name();
  const absl::Time reply_by = clock_->Now() + kSubmitReplyBy;
  std::optional<absl::StatusOr<v1::SyncJob>> answer = Await<absl::StatusOr<v1::SyncJob>>(
      [&](std::function<void(absl::StatusOr<v1::SyncJob>)> done) {
        jobs_->Submit(std::move(job), reply_by, std::move(done));
      },
      kSubmitReplyBy + kAnswerGrace);
  if (!answer.has_value()) return false;  // found by its request_id next pass
  if (answer->ok()) {
    RecordJobStarted(&plan->status, planned, **answer);
  } else {
    // A job recorded and failed at once (e.g. rejected upstream) is still
    // the policy's job: the next pass settles its error with backoff.
    const std::string name = jobs::GetJobName(answer->status());
    if (name.empty()) {
      log::Warn("policy job not started", {{"policy", record.spec().name()},
                                           {"error", answer->status().message()}});
      return false;
    }
    v1::SyncJob failed;
    failed.set_name(name);
    RecordJobStarted(&plan->status, planned, failed);
  }
  {
    absl::MutexLock lock(&mu_);
    ++stats_.jobs_started;
  }
  log::Info("policy job started", {{"policy", record.spec().name()},
                                   {"job", plan->status.open_job()},
                                   {"blueprint_id", planned.source_blueprint_id},
                                   {"regions", absl::StrJoin(planned.regions, ",")}});
  return true;
}

void PolicyController::RunPass() {
  tencent::CallOptions call;
  call.priority = tencent::CallPriority::kBackground;
  call.deadline = clock_->Now() + std::max(options_.interval, absl::Seconds(30));
  if (options_.elector != nullptr) {
    const int64_t term = options_.elector->Term();
    if (term == 0) return;
    store_->SetWriteFence(term);
    call.deadline = std::min(call.deadline, options_.elector->ValidUntil(term));
  }
  absl::StatusOr<std::vector<PolicyRecord>> all = store_->ListAll();
  if (!all.ok()) {
    log::Warn("policy pass: cannot read the policies", {{"error", all.status().message()}});
    absl::MutexLock lock(&mu_);
    ++stats_.pass_failures;
    return;
  }
  std::map<std::string, OpenJobView> open_views;  // by policy name
  BlueprintKeys made;  // every copy the policies made or are making
  for (const PolicyRecord& record : *all) {
    for (const v1::SyncPolicyRegion& r : record.status().view().regions()) {
      for (const v1::PolicyCopy& c : r.copies()) made.insert({r.region(), c.blueprint_id()});
    }
    if (record.spec().paused() && !record.delete_requested()) continue;
    OpenJobView open = ReadOpenJob(record.status().open_job());
    if (open.kind == OpenJobView::Kind::kFound) {
      for (const v1::Destination& d : open.job.destinations()) {
        if (!d.blueprint_id().empty()) made.insert({d.region(), d.blueprint_id()});
      }
    }
    open_views[record.spec().name()] = std::move(open);
  }
  Survey survey = RunSurvey(client_, WhatToAsk(*all), call);
  // A copy keeps its source's name, so it would look like a newer version
  // of the family in its region: a policy must never follow a copy a
  // policy made (two policies in opposite directions would copy forever).
  for (auto& [key, family] : survey.families) {
    const std::string& region = key.first;
    family.erase(std::remove_if(family.begin(), family.end(),
                                [&](const tencent::Blueprint& b) {
                                  return made.count({region, b.blueprint_id}) > 0;
                                }),
                 family.end());
  }
  const BlueprintKeys protected_sources = ProtectedSources(*all);

  PolicyControllerStats pass;
  pass.policies = static_cast<int64_t>(all->size());
  std::set<std::string> open_jobs;
  for (const PolicyRecord& record : *all) {
    if (stopping()) break;  // the rest is picked up by the next leader or start
    const std::string& name = record.spec().name();
    if (record.spec().paused() && !record.delete_requested()) {
      ++pass.policies_paused;
      continue;
    }
    PlanOptions options;
    options.now = clock_->Now();
    options.backoff_initial = options_.backoff_initial;
    options.backoff_max = options_.backoff_max;
    options.cleanup_give_up_after = options_.cleanup_give_up_after;
    const OpenJobView& open = open_views[name];
    PolicyPlan plan = PlanPolicy(record, survey, open, protected_sources, options);
    pass.drift_repairs += plan.drift_repairs;

    if (plan.cancel_job && open.kind == OpenJobView::Kind::kFound && IsJobInFlight(open.job)) {
      Await<absl::StatusOr<v1::SyncJob>>(
          [&](std::function<void(absl::StatusOr<v1::SyncJob>)> done) {
            jobs_->Cancel(open.job.name(), std::move(done));
          },
          kAnswerGrace);
    }
    for (const PlannedDelete& d : plan.deletes) {
      tencent::DeleteBlueprintsRequest request;
      request.region = d.region;
      request.blueprint_ids = {d.blueprint_id};
      absl::StatusOr<tencent::DeleteBlueprintsResponse> r = client_->DeleteBlueprints(request, call);
      const bool deleted = r.ok();
      if (deleted || absl::IsNotFound(r.status())) {
        if (deleted) ++pass.copies_deleted;
        log::Info("policy copy deleted", {{"policy", name},
                                          {"region", d.region},
                                          {"blueprint_id", d.blueprint_id},
                                          {"outcome", deleted ? "deleted" : "already gone"}});
      } else {
        ++pass.copy_delete_failures;
        log::Warn("policy copy not deleted", {{"policy", name},
                                              {"region", d.region},
                                              {"blueprint_id", d.blueprint_id},
                                              {"error", r.status().message()}});
      }
      RecordDelete(&plan.status, d, r.status(), options);
    }
    if (record.delete_requested() && plan.status.open_job().empty() &&
        !HasCopies(plan.status)) {
      plan.remove = true;  // the last copies went in this pass
    }
    if (plan.remove) {
      // A job submitted but never recorded in the status (the answer came
      // late, or the process died in between) must be cancelled first.
      std::optional<v1::SyncJob> unrecorded = FindJob(record, plan.status.job_attempt());
      if (unrecorded.has_value()) {
        plan.remove = false;
        RecordJobStarted(&plan.status, PlannedJob{}, *unrecorded);
      }
    }
    if (plan.remove) {
      absl::Status s = store_->Delete(name, std::nullopt, record.uid());
      if (s.ok() || absl::IsNotFound(s)) {
        log::Info("policy deleted with its copies", {{"policy", name}});
        --pass.policies;
        continue;
      }
      log::Warn("policy record not deleted", {{"policy", name}, {"error", s.message()}});
    }
    // What this pass did upstream must be recorded whatever happened to
    // the spec meanwhile; a view alone is dropped if the spec changed (e.g.
    // paused) since the pass read it, and the next pass plans anew.
    bool acted = !plan.deletes.empty();
    bool spec_changed = false;
    if (plan.job.has_value() || StatusDiffers(record.status(), plan.status)) {
      absl::StatusOr<PolicyRecord> now = store_->Get(name);
      spec_changed = !now.ok() || now->uid() != record.uid() || now->revision() != record.revision();
    }
    if (plan.job.has_value() && !spec_changed) acted |= StartJob(record, &plan);
    if (plan.status.view().in_sync()) ++pass.policies_in_sync;
    if (!plan.status.open_job().empty()) open_jobs.insert(plan.status.open_job());
    if (spec_changed && !acted) continue;
    const bool stale = options.now - jobs::FromProto(record.status().view().reconcile_time()) >=
                       kStatusRefresh;
    if (!StatusDiffers(record.status(), plan.status) && !stale) continue;
    absl::Status s = store_->WriteStatus(name, record.uid(), plan.status);
    if (absl::IsFailedPrecondition(s)) {
      log::Warn("policy pass stopped: no longer leading", {{"error", s.message()}});
      break;
    }
    if (!s.ok() && !absl::IsNotFound(s)) {
      log::Warn("policy status not written", {{"policy", name}, {"error", s.message()}});
    }
  }

  FollowOpenJobs(open_jobs);
  absl::MutexLock lock(&mu_);
  ++stats_.passes;
  stats_.policies = pass.policies;
  stats_.policies_in_sync = pass.policies_in_sync;
  stats_.policies_paused = pass.policies_paused;
  stats_.describe_calls += survey.calls;
  stats_.last_pass_describe_calls = survey.calls;
  stats_.drift_repairs += pass.drift_repairs;
  stats_.copies_deleted += pass.copies_deleted;
  stats_.copy_delete_failures += pass.copy_delete_failures;
}

}  // namespace blueprintsync::policies
