#include "service/jobs/job_actions.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/common/error_reason.h"
#include "service/common/log.h"
#include "service/jobs/job_lifecycle.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::jobs {
namespace {

std::string StateName(v1::SyncJob::State state) { return v1::SyncJob::State_Name(state); }

// How long a replica that does not run a job waits for the leader to carry
// out a cancellation, and how often it looks.
constexpr absl::Duration kRemoteCancelWait = absl::Seconds(10);
constexpr absl::Duration kRemoteCancelPoll = absl::Milliseconds(100);

}  // namespace

absl::StatusOr<NewJob> PlanRetry(const v1::SyncJob& job, NewJob retry) {
  if (!IsTerminal(job.state())) {
    return WithJobName(
        WithReason(absl::FailedPreconditionError(
                       absl::StrCat(job.name(), " is ", StateName(job.state()),
                                    "; only a finished job (FAILED or CANCELLED) can be retried")),
                   reason::kJobNotFinished),
        job.name());
  }
  v1::SyncBlueprintRequest& request = retry.request;
  request.clear_destination_regions();
  for (const auto& d : job.destinations()) {
    if (d.state() != v1::Destination::SUCCEEDED) request.add_destination_regions(d.region());
  }
  if (request.destination_regions().empty()) {
    return WithJobName(
        WithReason(absl::FailedPreconditionError(absl::StrCat(
                       job.name(), " succeeded in every region; there is nothing to retry")),
                   reason::kNothingToRetry),
        job.name());
  }
  request.set_source_region(job.source_region());
  request.set_blueprint_id(job.blueprint_id());
  request.mutable_labels()->clear();
  request.mutable_labels()->insert(job.labels().begin(), job.labels().end());
  request.set_keep_failed_copies(job.keep_failed_copies());
  request.clear_timeout();
  request.set_validate_only(false);
  retry.retry_of = job.name();
  retry.keep_failed_copies = job.keep_failed_copies();
  return retry;
}

absl::StatusOr<v1::SyncJob> CancelFinished(const v1::SyncJob& job) {
  if (job.state() == v1::SyncJob::CANCELLED || job.state() == v1::SyncJob::CANCELLING) return job;
  return WithJobName(WithReason(absl::FailedPreconditionError(absl::StrCat(
                                    job.name(), " has already finished (", StateName(job.state()),
                                    "); only a QUEUED or RUNNING job can be cancelled")),
                                reason::kJobAlreadyFinished),
                     job.name());
}

bool JobActions::CancelHere(const std::string& name, const JobService::JobCallback& done) {
  enum class Found { kNo, kChanged, kAsItIs, kUnwritten, kBeingWritten } found = Found::kNo;
  uint64_t generation = 0;
  v1::SyncJob as_it_is;
  table_->Locked([&](TableState& s) {
    if (!s.leadership.leading()) return;
    if (s.unpersisted.count(name)) {
      // Memory says how it ended, the store does not yet: an answer from
      // memory would promise what a crash could take back.
      found = Found::kUnwritten;
      return;
    }
    JobEntry* e = s.FindAny(name, s.generation);
    if (e == nullptr) return;
    generation = s.generation;
    v1::SyncJob* job = e->rec.mutable_job();
    if (IsTerminal(job->state()) || job->state() == v1::SyncJob::CANCELLING) {
      // Answered from what is written; a change still being written (a
      // concurrent cancel, the job's end) is not an answer yet.
      found = e->published.state() == job->state() ? Found::kAsItIs : Found::kBeingWritten;
      as_it_is = e->published;
      return;
    }
    const absl::Time now = steps_->clock()->Now();
    job->set_state(v1::SyncJob::CANCELLING);
    *job->mutable_cancel_time() = ToProto(now);
    // QUEUED (never sent): CANCELLED now. Submitted: its copies are to be
    // deleted. In flight or unknown: the outcome decides.
    SettleCancel(e->rec, now);
    e->Touch(now);
    ++s.stats.jobs_cancelled;
    if (job->state() == v1::SyncJob::CANCELLING) s.wake_tracker = true;  // delete soon
    log::Info("job cancelled", {{"job", name}, {"state", StateName(job->state())}});
    found = Found::kChanged;
  });
  switch (found) {
    case Found::kNo:
      return false;
    case Found::kAsItIs:
      done(CancelFinished(as_it_is));
      return true;
    case Found::kUnwritten:
      done(WithJobName(WithReason(absl::UnavailableError("the job's last change is not written yet "
                                                         "(the store is failing); try again"),
                                  reason::kStoreUnavailable),
                       name));
      return true;
    case Found::kBeingWritten:
      done(WithJobName(WithReason(absl::UnavailableError("the job is changing (a cancel or its end "
                                                         "is being recorded); try again"),
                                  reason::kJobBusy),
                       name));
      return true;
    case Found::kChanged:
      break;
  }
  // The answer promises that nothing more will be sent for a QUEUED job:
  // only once that is durable.
  const absl::Status written = writer_->Write(name, generation);
  steps_->Commit(name, generation);
  // Aborted: the job left this replica's hands meanwhile — finished by the
  // part that wrote the cancel's outcome (then Known has it, written), or
  // handed to another leader (then it does not).
  if (!written.ok() && written.code() != absl::StatusCode::kAborted) {
    done(WithJobName(WithReason(absl::UnavailableError(absl::StrCat(
                                    "could not record the cancellation: ", written.message())),
                                reason::kStoreUnavailable),
                     name));
    return true;
  }
  std::optional<v1::SyncJob> now_known = table_->Locked([&](TableState& s) {
    const v1::SyncJob* job = s.unpersisted.count(name) ? nullptr : s.Known(name);
    return job ? std::optional<v1::SyncJob>(*job) : std::nullopt;
  });
  if (!now_known && written.ok()) {
    // With several replicas memory does not keep a finished job (see
    // TableState::Known), so a QUEUED job cancelled on the leader is only
    // in the store now, written.
    absl::StatusOr<JobRecord> stored = store_->GetJob(name);
    if (stored.ok() && (IsTerminal(stored->job().state()) ||
                        stored->job().state() == v1::SyncJob::CANCELLING)) {
      now_known = stored->job();
    }
  }
  if (now_known) {
    done(std::move(*now_known));
  } else {
    done(WithJobName(WithReason(absl::UnavailableError("the cancellation is not written yet, or "
                                                       "another replica took the job over; cancel "
                                                       "again to see it"),
                                reason::kCancelNotConfirmed),
                     name));
  }
  return true;
}

void JobActions::Cancel(const std::string& name, JobService::JobCallback done) {
  if (CancelHere(name, done)) return;
  auto shared_done = std::make_shared<JobService::JobCallback>(std::move(done));
  Lookup(name, [this, name, shared_done](absl::StatusOr<v1::SyncJob> job) {
    if (!job.ok()) {
      (*shared_done)(job.status());
      return;
    }
    if (IsTerminal(job->state()) || job->state() == v1::SyncJob::CANCELLING) {
      (*shared_done)(CancelFinished(*job));
      return;
    }
    // Adopted meanwhile (start-up, or this replica has just taken the lead).
    if (CancelHere(name, *shared_done)) return;
    const bool single = table_->Locked([](TableState& s) { return s.leadership.single(); });
    if (single) {
      (*shared_done)(WithJobName(
          WithReason(absl::UnavailableError("the job is being resumed after a restart; try again"),
                     reason::kJobBusy),
          name));
      return;
    }
    CancelThroughStore(name, shared_done);
  });
}

void JobActions::CancelRequested(const std::string& name) {
  log::Info("carrying out a cancellation asked on another replica", {{"job", name}});
  CancelHere(name, [](absl::StatusOr<v1::SyncJob>) {});
}

void JobActions::CancelThroughStore(const std::string& name,
                                    std::shared_ptr<JobService::JobCallback> done) {
  // On a reader thread (Lookup's).
  const absl::Status recorded = store_->RequestCancel(name);
  if (!recorded.ok()) {
    (*done)(WithJobName(recorded, name));
    return;
  }
  log::Info("cancellation recorded for the leader", {{"job", name}});
  table_->Locked([](TableState& s) { s.wake_follower = true; });
  AwaitCancelled(name, std::move(done), steps_->clock()->Now() + kRemoteCancelWait);
}

void JobActions::AwaitCancelled(const std::string& name,
                                std::shared_ptr<JobService::JobCallback> done,
                                absl::Time give_up) {
  const absl::StatusOr<JobRecord> rec = store_->GetJob(name);
  if (!rec.ok()) {
    (*done)(WithJobName(rec.status(), name));
    return;
  }
  const v1::SyncJob::State state = rec->job().state();
  if (state == v1::SyncJob::CANCELLING || IsTerminal(state)) {
    (*done)(CancelFinished(rec->job()));
    return;
  }
  if (steps_->clock()->Now() >= give_up) {
    (*done)(WithJobName(
        WithReason(absl::UnavailableError("the cancellation is recorded, but the leader has not "
                                          "carried it out yet (is a replica leading?); it will "
                                          "be: cancel again to see the job"),
                   reason::kCancelNotConfirmed),
        name));
    return;
  }
  auto look_again = [this, name, done, give_up] {
    if (!threads_.readers->Post([this, name, done, give_up] { AwaitCancelled(name, done, give_up); })) {
      (*done)(ServiceShuttingDown());
    }
  };
  if (!threads_.timers->PostAt(steps_->clock()->Now() + kRemoteCancelPoll, look_again)) {
    (*done)(ServiceShuttingDown());
  }
}

void JobActions::Retry(const std::string& name, NewJob retry, absl::Time reply_by,
                       JobService::JobCallback done) {
  auto shared_done = std::make_shared<JobService::JobCallback>(std::move(done));
  Lookup(name, [this, retry = std::move(retry), reply_by,
                shared_done](absl::StatusOr<v1::SyncJob> job) mutable {
    if (!job.ok()) {
      (*shared_done)(job.status());
      return;
    }
    absl::StatusOr<NewJob> planned = PlanRetry(*job, std::move(retry));
    if (!planned.ok()) {
      (*shared_done)(planned.status());
      return;
    }
    intake_->Submit(*std::move(planned), reply_by, std::move(*shared_done), threads_.intake,
                    threads_.timers);
  });
}

void JobActions::Delete(const std::string& name, JobService::StatusCallback done) {
  // The store alone judges whether the job may go (DeleteJob refuses an
  // open one in the same statement): every job this replica runs or
  // cleans up, or whose final state is unwritten, is open there.
  auto shared_done = std::make_shared<JobService::StatusCallback>(std::move(done));
  const bool posted = threads_.readers->Post([this, name, shared_done] {
    const absl::Status deleted = store_->DeleteJob(name);
    if (deleted.ok()) {
      table_->Locked([&](TableState& s) {
        // At once, and so that a Get whose store read began before the
        // delete does not put it back: this caller may Get it next.
        s.ForgetFinished(name);
        ++s.stats.jobs_deleted;
      });
      log::Info("job record deleted", {{"job", name}});
    }
    (*shared_done)(WithJobName(deleted, name));
  });
  if (!posted) (*shared_done)(ServiceShuttingDown());
}

void JobActions::PreviewSubmit(NewJob asked, JobService::PreviewCallback done) {
  auto shared_done = std::make_shared<JobService::PreviewCallback>(std::move(done));
  const bool posted = threads_.upstream->Post([this, asked = std::move(asked), shared_done] {
    const v1::SyncBlueprintRequest& request = asked.request;
    tencent::DescribeBlueprintsRequest q;
    q.region = request.source_region();
    q.blueprint_ids = {request.blueprint_id()};
    q.limit = 1;
    const auto found = client_->DescribeBlueprints(q);
    if (!found.ok()) {
      (*shared_done)(found.status());
      return;
    }
    const tencent::Blueprint* source = nullptr;
    for (const auto& b : found->blueprints) {
      if (b.blueprint_id == request.blueprint_id()) source = &b;
    }
    const std::string shown = absl::StrCat("blueprint_id \"", request.blueprint_id(), "\"");
    if (source == nullptr) {
      (*shared_done)(absl::NotFoundError(
          absl::StrCat(shown, " does not exist in ", request.source_region())));
      return;
    }
    if (source->blueprint_type != "PRIVATE") {
      (*shared_done)(WithReason(absl::FailedPreconditionError(absl::StrCat(
                                    shown, " is a ", source->blueprint_type.substr(0, 40),
                                    " image; only custom (PRIVATE) blueprints can be synced")),
                                reason::kBlueprintNotPrivate));
      return;
    }
    Preview preview;
    preview.job = intake_->NewRecord(asked).job();
    preview.job.clear_name();
    preview.job.set_jobs_ahead(JobsAhead(preview.job));
    // SYNCING because of the jobs ahead is what queueing is for.
    const bool busy_with_ours = source->blueprint_state == "SYNCING" && preview.job.jobs_ahead() > 0;
    if (source->blueprint_state != "NORMAL" && !busy_with_ours) {
      (*shared_done)(WithReason(absl::FailedPreconditionError(absl::StrCat(
                                    shown, " is ", source->blueprint_state.substr(0, 40),
                                    "; SyncBlueprint needs it NORMAL")),
                                reason::kBlueprintNotNormal));
      return;
    }
    (*shared_done)(std::move(preview));
  });
  if (!posted) (*shared_done)(ServiceShuttingDown());
}

int JobActions::JobsAhead(const v1::SyncJob& job) {
  const std::optional<int> here = table_->Locked([&](TableState& s) -> std::optional<int> {
    if (!s.leadership.leading()) return std::nullopt;
    auto q = s.sources.find(TableState::SourceKey(job));
    return q == s.sources.end() ? 0 : static_cast<int>(q->second.size());
  });
  if (here) return *here;
  // Another replica runs the jobs: ask the store (the newest page only).
  JobQuery query;
  query.blueprint_id = job.blueprint_id();
  query.source_region = job.source_region();
  query.page_size = 100;
  const absl::StatusOr<JobPage> page = store_->ListJobs(query);
  if (!page.ok()) return 0;
  int ahead = 0;
  for (const JobRecord& r : page->records) ahead += IsTerminal(r.job().state()) ? 0 : 1;
  return ahead;
}

void JobActions::Lookup(const std::string& name, JobService::JobCallback then) {
  TableState::FillTicket ticket;
  std::optional<v1::SyncJob> known = table_->Locked([&](TableState& s) {
    const v1::SyncJob* job = s.Known(name);
    // Taken before the read begins, so a delete noted while it runs
    // keeps its result out of the cache (TableState::MayFillFinished).
    if (job == nullptr) ticket = s.FeedTicket();
    return job ? std::optional<v1::SyncJob>(*job) : std::nullopt;
  });
  if (known) {
    then(std::move(*known));
    return;
  }
  auto shared_then = std::make_shared<JobService::JobCallback>(std::move(then));
  const bool posted = threads_.readers != nullptr && threads_.readers->Post([this, name, ticket,
                                                                             shared_then] {
    absl::StatusOr<JobRecord> rec = store_->GetJob(name);
    if (!rec.ok()) {
      (*shared_then)(rec.status());
      return;
    }
    // A finished job read on a shared store: the next Get of it (on any
    // replica that read it, followers included) answers from memory.
    if (ticket.fresh) {
      table_->Locked([&](TableState& s) {
        if (s.MayFillFinished(*rec, ticket)) s.FillFromStore(rec->job());
      });
    }
    (*shared_then)(std::move(*rec->mutable_job()));
  });
  if (!posted) (*shared_then)(ServiceShuttingDown());
}

}  // namespace blueprintsync::jobs
