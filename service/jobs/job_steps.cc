#include "service/jobs/job_steps.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/time/clock.h"
#include "service/common/log.h"
#include "service/jobs/job_lifecycle.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::jobs {

void JobSteps::Wire(Executor* executor, Runner submit, StartingRunner submit_now,
                    Runner reconcile) {
  executor_ = executor;
  submit_ = std::move(submit);
  submit_now_ = std::move(submit_now);
  reconcile_ = std::move(reconcile);
}

void JobSteps::Commit(const std::string& name, uint64_t gen, const absl::Status& reply_error) {
  uint64_t written = 0;
  (void)writer_->Write(name, gen, true, &written);  // a failure is logged and retried later
  const std::optional<std::string> next = table_->Locked([&](TableState& s) {
    JobEntry* e = s.FindAny(name, gen);
    // A newer change has been made meanwhile: its own Commit writes it, then
    // answers and finishes, so nothing is answered or ended unwritten.
    if (e == nullptr || e->version != written) return std::optional<std::string>();
    s.Reply(*e, reply_error);
    if (!IsTerminal(e->rec.job().state())) return std::optional<std::string>();
    if (s.cleaning.count(name)) {
      if (!IsOpen(e->rec)) s.EndCleanup(name);
      return std::optional<std::string>();
    }
    return s.Finish(name);
  });
  if (next) ScheduleSubmit(*next, clock_->Now());
}

void JobSteps::MarkFailed(JobEntry& e, const absl::Status& error, absl::Time now) {
  v1::SyncJob* job = e.rec.mutable_job();
  const v1::SyncError err = ToSyncError(error);
  *job->mutable_error() = err;
  job->clear_state_reason();  // the error says it all now
  for (auto& d : *job->mutable_destinations()) {
    if (IsTerminal(d.state())) continue;
    d.set_state(v1::Destination::FAILED);
    *d.mutable_error() = err;
    *d.mutable_update_time() = ToProto(now);
    // A copy still syncing at the deadline is a paid leak once it lands.
    MarkFailedCopy(*job, d);
  }
  job->set_state(v1::SyncJob::FAILED);
  *job->mutable_end_time() = ToProto(now);
  e.Touch(now);
  log::Info("job failed", {{"job", job->name()}, {"error", error.message()}});
}

void JobSteps::Fail(const std::string& name, uint64_t gen, const absl::Status& error) {
  const bool found = table_->Locked([&](TableState& s) {
    JobEntry* e = s.Find(name, gen);
    if (e != nullptr) MarkFailed(*e, error, clock_->Now());
    return e != nullptr;
  });
  if (found) Commit(name, gen, error);
}

void JobSteps::Adopt(std::vector<JobRecord> records, uint64_t read_tick, uint64_t generation,
                     std::optional<Leadership> become, const char* message, bool log_if_none) {
  std::vector<std::string> interrupted, to_reconcile, to_submit;
  int queued = 0, tracked = 0, cleaning = 0;
  uint64_t gen = 0;
  const bool adopted = table_->Locked([&](TableState& s) {
    if (become) {
      s.leadership = *become;
      ++s.generation;
      s.stats.leader_term = become->term_for_stats();
      if (!become->single()) ++s.stats.leadership_changes;
    } else if (s.generation != generation || !s.leadership.leading()) {
      return false;
    }
    gen = s.generation;
    if (!s.leadership.single()) s.PruneFinishTicks(read_tick);
    const absl::Time now = clock_->Now();
    for (JobRecord& rec : records) {
      const std::string name = rec.job().name();
      if (!s.MayAdopt(name, read_tick)) continue;
      if (IsTerminal(rec.job().state())) {
        // Finished, with copies still to delete (or listed as open by a
        // store that has not caught up: written again, then let go).
        const bool stale = !IsOpen(rec);
        s.AddCleaning(std::move(rec));
        if (stale) {
          s.cleaning[name].Touch(now);
          interrupted.push_back(name);
        }
        ++cleaning;
        continue;
      }
      const bool first = s.Add(std::move(rec));
      JobEntry& e = s.active[name];
      const bool cancelled_elsewhere =
          e.rec.cancel_requested() && e.rec.job().state() != v1::SyncJob::CANCELLING;
      if (cancelled_elsewhere || e.rec.job().state() == v1::SyncJob::CANCELLING) {
        // A cancel (asked on another replica, or interrupted) is carried
        // through before anything else is scheduled for the job, so a
        // QUEUED one is never sent.
        const std::string before = e.rec.SerializeAsString();
        if (cancelled_elsewhere) {
          e.rec.mutable_job()->set_state(v1::SyncJob::CANCELLING);
          ++s.stats.jobs_cancelled;
          log::Info("carrying out a cancellation asked on another replica", {{"job", name}});
        }
        SettleCancel(e.rec, now);
        if (e.rec.SerializeAsString() != before) {
          e.Touch(now);
          interrupted.push_back(name);  // written (then finished if terminal)
        }
        if (IsTerminal(e.rec.job().state())) continue;
      }
      switch (e.rec.phase()) {
        case JobRecord::SUBMITTED:
          ++tracked;
          // A new leader polls now, not in poll_interval.
          if (s.leadership.leased()) s.wake_tracker = true;
          break;
        case JobRecord::SUBMITTING:
          // The process that recorded the attempt stopped (or lost the
          // lead) before learning its outcome: the call may have gone out.
          e.MarkOutcomeUnknown();
          e.Touch(now);
          interrupted.push_back(name);
          to_reconcile.push_back(name);
          break;
        case JobRecord::OUTCOME_UNKNOWN:
          to_reconcile.push_back(name);
          break;
        default:
          ++queued;
          if (first) to_submit.push_back(name);
          break;
      }
    }
    return true;
  });
  if (!adopted) return;
  for (const std::string& name : interrupted) Commit(name, gen);
  const absl::Time now = clock_->Now();
  for (const std::string& name : to_reconcile) {
    ScheduleReconcile(name, now + options_.reconcile_grace);
  }
  for (const std::string& name : to_submit) ScheduleSubmit(name, now);
  const size_t reconciling = to_reconcile.size();
  if (log_if_none || queued + tracked + reconciling + cleaning > 0) {
    log::Info(message, {{"queued", queued},
                        {"tracking", tracked},
                        {"reconciling", reconciling},
                        {"cleaning_up", cleaning}});
  }
}

void JobSteps::Post(absl::Time when, std::function<void()> task) {
  const bool stopping = table_->Locked([](TableState& s) { return s.stopping; });
  if (!stopping) executor_->PostAt(when, std::move(task));
}

void JobSteps::ScheduleSubmit(const std::string& name, absl::Time when) {
  Post(when, [this, name] { submit_(name); });
}

bool JobSteps::SubmitNow(const std::string& name) { return submit_now_(name); }

void JobSteps::ScheduleReconcile(const std::string& name, absl::Time when) {
  Post(when, [this, name] { reconcile_(name); });
}

void JobSteps::ScheduleReplyBy(const std::string& name, absl::Time reply_by) {
  if (reply_by == absl::InfiniteFuture()) return;
  executor_->PostAt(reply_by, [this, name] {
    table_->Locked([&](TableState& s) {
      auto it = s.active.find(name);
      // Only those due: a caller who joined with the same request_id has a
      // reply_by of its own.
      if (it != s.active.end()) s.ReplyDue(it->second, absl::Now());
    });
  });
}

absl::Duration JobSteps::BackoffFor(int failures) const {
  absl::Duration d = options_.retry_initial;
  for (int i = 1; i < failures && d < options_.retry_max; ++i) d *= 2;
  return std::min(d, options_.retry_max);
}

}  // namespace blueprintsync::jobs
