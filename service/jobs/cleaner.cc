#include "service/jobs/cleaner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/common/log.h"
#include "service/jobs/job_lifecycle.h"
#include "service/jobs/job_state.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::jobs {
namespace {

// Calls `fn(name, entry)` for every job that may have copies to delete:
// the active ones (a cancelled or partly failed job) and the finished ones
// still being cleaned up.
template <typename Fn>
void ForEachJob(TableState& s, Fn&& fn) {
  for (auto& [name, e] : s.active) fn(name, e);
  for (auto& [name, e] : s.cleaning) fn(name, e);
}

// When the service stops trying to delete the copies of `job`: the
// give-up period after the job ended (or was cancelled). Never while it
// still runs.
absl::Time GiveUpAt(const v1::SyncJob& job, absl::Duration give_up_after) {
  if (job.has_end_time()) return FromProto(job.end_time()) + give_up_after;
  if (job.has_cancel_time()) return FromProto(job.cancel_time()) + give_up_after;
  return absl::InfiniteFuture();
}

bool IsTransient(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

// A stored error message stays small whatever the upstream sent.
v1::SyncError BoundedError(const absl::Status& status) {
  v1::SyncError e = ToSyncError(status);
  // Cut at a character boundary (a cut inside one would not serialize).
  if (e.message().size() > 500) e.set_message(tencent::bounds::BoundText(e.message(), 500));
  return e;
}

void Settle(v1::Destination& d, v1::Destination::CopyCleanup how, absl::Time now) {
  d.set_copy_cleanup(how);
  if (how == v1::Destination::DELETED || how == v1::Destination::ALREADY_GONE) {
    *d.mutable_copy_delete_time() = ToProto(now);
    d.clear_cleanup_error();
  }
}

}  // namespace

void Cleaner::CollectPending(uint64_t generation,
                             std::map<std::string, std::vector<std::string>>* by_region) {
  table_->Locked([&](TableState& s) {
    if (s.generation != generation) return;
    ForEachJob(s, [&](const std::string&, JobEntry& e) {
      for (const auto& d : e.rec.job().destinations()) {
        if (d.copy_cleanup() == v1::Destination::DELETE_PENDING && !d.blueprint_id().empty()) {
          (*by_region)[d.region()].push_back(d.blueprint_id());
        }
      }
    });
  });
}

void Cleaner::Run(uint64_t generation, const std::map<std::string, tencent::Blueprint>& seen,
                  const std::set<std::string>& asked) {
  std::set<std::string> changed;
  const std::vector<Copy> due = Plan(generation, seen, asked, &changed);
  const std::vector<Outcome> outcomes = Delete(due);
  Apply(generation, outcomes, &changed);
  for (const std::string& name : changed) steps_->Commit(name, generation);
}

std::vector<Cleaner::Copy> Cleaner::Plan(uint64_t generation,
                                         const std::map<std::string, tencent::Blueprint>& seen,
                                         const std::set<std::string>& asked,
                                         std::set<std::string>* changed) {
  std::vector<Copy> due;
  const absl::Time now = steps_->clock()->Now();
  const absl::Duration give_up_after = steps_->options().cleanup_give_up_after;
  table_->Locked([&](TableState& s) {
    if (s.generation != generation) return;
    ForEachJob(s, [&](const std::string& name, JobEntry& e) {
      v1::SyncJob* job = e.rec.mutable_job();
      const absl::Time give_up_at = GiveUpAt(*job, give_up_after);
      bool touched = false;
      for (auto& d : *job->mutable_destinations()) {
        if (d.copy_cleanup() != v1::Destination::DELETE_PENDING) continue;
        if (!MayDeleteCopy(*job, d)) {
          // Never delete what the service did not record as its own copy.
          log::Error("refusing to delete a blueprint that is not a copy made by the job",
                     {{"job", name}, {"region", d.region()}, {"blueprint_id", d.blueprint_id()}});
          d.set_copy_cleanup(v1::Destination::KEPT);
          touched = true;
          continue;
        }
        auto found = seen.find(d.blueprint_id());
        if (found != seen.end()) {
          // Bounded: an upstream answer is not trusted with the job's size.
          const std::string state = found->second.blueprint_state.substr(0, 64);
          if (state != d.blueprint_state()) {
            d.set_blueprint_state(state);
            touched = true;
          }
          if (IsDeletableState(state)) {
            due.push_back({name, d.region(), d.blueprint_id()});
            continue;
          }
        } else if (asked.count(d.blueprint_id()) && !d.blueprint_state().empty()) {
          // Seen before, asked about and not listed now: deleted by someone
          // else.
          Settle(d, v1::Destination::ALREADY_GONE, now);
          touched = true;
          continue;
        }
        if (now >= give_up_at) {
          log::Warn("giving up deleting a copy", {{"job", name},
                                                  {"region", d.region()},
                                                  {"blueprint_id", d.blueprint_id()},
                                                  {"state", d.blueprint_state()}});
          if (!d.has_cleanup_error()) {
            *d.mutable_cleanup_error() = BoundedError(absl::DeadlineExceededError(absl::StrCat(
                "the copy did not become deletable in time (last seen ",
                d.blueprint_state().empty() ? "never" : d.blueprint_state(), ")")));
          }
          d.set_copy_cleanup(v1::Destination::DELETE_ABANDONED);
          ++s.stats.copy_deletes_abandoned;
          touched = true;
        }
      }
      if (!touched) return;
      SettleCancel(e.rec, now);
      e.Touch(now);
      changed->insert(name);
    });
  });
  return due;
}

std::vector<Cleaner::Outcome> Cleaner::Delete(const std::vector<Copy>& copies) {
  std::map<std::string, std::vector<Copy>> by_region;
  for (const Copy& c : copies) by_region[c.region].push_back(c);
  std::vector<Outcome> outcomes;
  for (const auto& [region, list] : by_region) {
    for (size_t i = 0; i < list.size(); i += tencent::kMaxDeleteIds) {
      if (table_->Locked([](TableState& s) { return s.stopping; })) return outcomes;
      const std::vector<Copy> batch(list.begin() + i,
                                    list.begin() + std::min(list.size(), i + tencent::kMaxDeleteIds));
      tencent::DeleteBlueprintsRequest request;
      request.region = region;
      for (const Copy& c : batch) request.blueprint_ids.push_back(c.blueprint_id);
      const auto result = client_->DeleteBlueprints(request);
      if (result.ok() || batch.size() == 1 || IsTransient(result.status())) {
        for (const Copy& c : batch) outcomes.push_back({c, result.status()});
      } else {
        DeleteOneByOne(batch, &outcomes);
      }
    }
  }
  return outcomes;
}

void Cleaner::DeleteOneByOne(const std::vector<Copy>& copies, std::vector<Outcome>* outcomes) {
  for (const Copy& c : copies) {
    if (table_->Locked([](TableState& s) { return s.stopping; })) return;
    tencent::DeleteBlueprintsRequest request;
    request.region = c.region;
    request.blueprint_ids = {c.blueprint_id};
    outcomes->push_back({c, client_->DeleteBlueprints(request).status()});
  }
}

void Cleaner::Apply(uint64_t generation, const std::vector<Outcome>& outcomes,
                    std::set<std::string>* changed) {
  if (outcomes.empty()) return;
  const absl::Time now = steps_->clock()->Now();
  table_->Locked([&](TableState& s) {
    std::set<std::string> touched;
    for (const Outcome& o : outcomes) {
      JobEntry* e = s.FindAny(o.copy.job, generation);
      if (e == nullptr) continue;
      for (auto& d : *e->rec.mutable_job()->mutable_destinations()) {
        if (d.region() != o.copy.region || d.blueprint_id() != o.copy.blueprint_id ||
            d.copy_cleanup() != v1::Destination::DELETE_PENDING) {
          continue;
        }
        if (o.status.ok()) {
          Settle(d, v1::Destination::DELETED, now);
          ++s.stats.copies_deleted;
          log::Info("copy deleted", {{"job", o.copy.job},
                                     {"region", d.region()},
                                     {"blueprint_id", d.blueprint_id()}});
        } else if (o.status.code() == absl::StatusCode::kNotFound) {
          Settle(d, v1::Destination::ALREADY_GONE, now);
        } else {
          ++s.stats.copy_delete_failures;
          const v1::SyncError error = BoundedError(o.status);
          log::Warn("could not delete copy; will try again",
                    {{"job", o.copy.job},
                     {"region", d.region()},
                     {"blueprint_id", d.blueprint_id()},
                     {"error", error.message()}});
          // The same error again is not a change worth a write.
          if (d.cleanup_error().SerializeAsString() == error.SerializeAsString()) continue;
          *d.mutable_cleanup_error() = error;
        }
        touched.insert(o.copy.job);
      }
    }
    for (const std::string& name : touched) {
      JobEntry* e = s.FindAny(name, generation);
      SettleCancel(e->rec, now);
      e->Touch(now);
      changed->insert(name);
    }
  });
}

}  // namespace blueprintsync::jobs
