#include "service/jobs/tracker.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/common/log.h"
#include "service/jobs/job_lifecycle.h"
#include "service/jobs/job_state.h"
#include "service/tencent/api_error.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::jobs {
namespace {

// Why a job is failed at its deadline.
std::string DeadlineReason(const JobEntry& e,
                           const std::map<std::string, std::string>& poll_errors) {
  switch (e.rec.phase()) {
    case JobRecord::SUBMITTED: {
      std::string what = "a destination image was still not NORMAL at the job deadline";
      for (const auto& d : e.rec.job().destinations()) {
        auto failing = poll_errors.find(d.region());
        if (d.state() == v1::Destination::SYNCING && failing != poll_errors.end()) {
          absl::StrAppend(&what, " (tracking it failed: DescribeBlueprints in ", d.region(),
                          " answered ", failing->second, ")");
          break;
        }
      }
      return what;
    }
    case JobRecord::OUTCOME_UNKNOWN:
      return "needs attention: the outcome of the submission was still unknown at the job "
             "deadline";
    default:
      return "the job could not be submitted before its deadline";
  }
}

}  // namespace

void Tracker::ExpireDeadlines(uint64_t generation) {
  const absl::Time now = steps_->clock()->Now();
  std::vector<std::pair<std::string, absl::Status>> expired;
  table_->Locked([&](TableState& s) {
    if (s.generation != generation) return;
    for (auto& [name, e] : s.active) {
      // A cancelled job is not failed at its deadline: it only waits to
      // delete its copies (or, for an unknown outcome, for the reconciler).
      if (e.submit_in_flight || IsTerminal(e.rec.job().state()) ||
          e.rec.job().state() == v1::SyncJob::CANCELLING ||
          now < FromProto(e.rec.job().deadline())) {
        continue;
      }
      absl::Status error = absl::DeadlineExceededError(DeadlineReason(e, s.poll_errors));
      JobSteps::MarkFailed(e, error, now);
      expired.emplace_back(name, std::move(error));
    }
  });
  for (const auto& [name, error] : expired) steps_->Commit(name, generation, error);
}

Tracker::Poll Tracker::Describe(std::map<std::string, std::vector<std::string>> by_region,
                                const std::function<void(const Seen&)>& region_done) {
  Poll poll;
  for (auto& [region, ids] : by_region) {
    Seen seen;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    bool answered = false;
    for (size_t i = 0; i < ids.size(); i += tencent::kMaxDescribeIds) {
      if (table_->Locked([](TableState& s) { return s.stopping; })) break;
      tencent::DescribeBlueprintsRequest q;
      q.region = region;
      q.blueprint_ids.assign(ids.begin() + i,
                             ids.begin() + std::min(ids.size(), i + tencent::kMaxDescribeIds));
      q.limit = tencent::kMaxDescribeIds;
      ++poll.calls;
      auto r = client_->DescribeBlueprints(q);
      if (!r.ok()) {
        log::Warn("poll failed; will try again next cycle",
                  {{"region", region}, {"error", r.status().message()}});
        const auto api = tencent::GetApiError(r.status());
        std::string text = api && !api->code.empty() ? absl::StrCat(api->code, ": ", api->message)
                                                     : std::string(r.status().message());
        // Cut at a character boundary: the text ends up in job errors.
        text = tencent::bounds::BoundText(text, 240);
        poll.failed[region] = std::move(text);
        continue;
      }
      answered = true;
      poll.answered_ids.insert(q.blueprint_ids.begin(), q.blueprint_ids.end());
      for (auto& b : r->blueprints) seen[b.blueprint_id] = std::move(b);
    }
    if (answered) poll.answered.push_back(region);
    if (!seen.empty()) region_done(seen);
    poll.seen.merge(seen);
  }
  return poll;
}

void Tracker::Record(const Poll& poll) {
  table_->Locked([&](TableState& s) {
    s.stats.poll_cycles++;
    s.stats.describe_calls += poll.calls;
    s.stats.last_cycle_describe_calls = poll.calls;
    for (const std::string& region : poll.answered) s.poll_errors.erase(region);
    for (const auto& [region, text] : poll.failed) s.poll_errors[region] = text;
  });
}

std::vector<std::string> Tracker::Apply(uint64_t generation, const Seen& seen,
                                        const std::set<std::string>& jobs) {
  std::vector<std::string> changed_jobs;
  table_->Locked([&](TableState& s) {
    if (s.generation != generation) return;  // lost the lead meanwhile: the new leader polls
    const absl::Time now = steps_->clock()->Now();
    for (const std::string& name : jobs) {
      auto active = s.active.find(name);
      if (active == s.active.end()) continue;
      JobEntry& e = active->second;
      if (e.rec.phase() != JobRecord::SUBMITTED || IsTerminal(e.rec.job().state())) continue;
      v1::SyncJob* job = e.rec.mutable_job();
      bool changed = false;
      for (auto& d : *job->mutable_destinations()) {
        if (d.state() != v1::Destination::SYNCING) continue;
        auto found = seen.find(d.blueprint_id());
        if (found == seen.end()) continue;  // not visible yet: pending until the deadline
        const tencent::Blueprint& b = found->second;
        const v1::Destination::State next = DestinationStateFor(b.blueprint_state);
        if (b.blueprint_state == d.blueprint_state() && next == d.state()) continue;
        d.set_blueprint_state(b.blueprint_state);
        d.set_state(next);
        *d.mutable_update_time() = ToProto(now);
        if (next == v1::Destination::FAILED) {
          *d.mutable_error() = ToSyncError(absl::AbortedError(absl::StrCat(
              "the new image ", d.blueprint_id(), " in ", d.region(), " is ", b.blueprint_state)));
          MarkFailedCopy(*job, d);
        }
        log::Info("destination changed", {{"job", name},
                                          {"region", d.region()},
                                          {"blueprint_id", d.blueprint_id()},
                                          {"state", b.blueprint_state}});
        changed = true;
      }
      if (!changed) continue;
      UpdateSubmittedJobState(e.rec, now);
      e.Touch(now);
      changed_jobs.push_back(name);
    }
  });
  return changed_jobs;
}

int64_t Tracker::PollOnce() {
  absl::MutexLock one_cycle(&poll_mu_);
  std::map<std::string, std::vector<std::string>> by_region;  // region -> ids
  // Tracked id -> the jobs that track it. One job each, normally; every
  // one of them is updated if a copy were ever recorded by two (the old
  // whole-table pass did that too), so none is failed at its deadline while
  // the copy is in fact NORMAL.
  std::map<std::string, std::vector<std::string>> owners;
  uint64_t generation = 0;
  const bool leading = table_->Locked([&](TableState& s) {
    generation = s.generation;
    return s.leadership.leading();
  });
  if (!leading) return 0;
  writer_->RetryUnpersisted();
  ExpireDeadlines(generation);
  table_->Locked([&](TableState& s) {
    if (s.generation != generation) return;
    for (const auto& [name, e] : s.active) {
      if (e.rec.phase() != JobRecord::SUBMITTED) continue;
      for (const auto& d : e.rec.job().destinations()) {
        if (d.state() == v1::Destination::SYNCING && !d.blueprint_id().empty()) {
          by_region[d.region()].push_back(d.blueprint_id());
          owners[d.blueprint_id()].push_back(name);
        }
      }
    }
  });
  cleaner_->CollectPending(generation, &by_region);
  // Each region's answers are applied and written (so watchers see them) as
  // soon as they are in: a cycle over many regions takes seconds of paced
  // calls, and a copy seen NORMAL early in it should not wait for the rest.
  const Poll poll = Describe(std::move(by_region), [&](const Seen& seen) {
    std::set<std::string> jobs;
    for (const auto& [id, b] : seen) {
      if (auto it = owners.find(id); it != owners.end()) {
        jobs.insert(it->second.begin(), it->second.end());
      }
    }
    if (jobs.empty()) return;
    for (const std::string& name : Apply(generation, seen, jobs)) {
      steps_->Commit(name, generation);
    }
  });
  Record(poll);
  cleaner_->Run(generation, poll.seen, poll.answered_ids);
  return poll.calls;
}

}  // namespace blueprintsync::jobs
