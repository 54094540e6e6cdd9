#include "service/jobs/job_intake.h"

#include <memory>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "service/common/error_reason.h"
#include "service/common/log.h"
#include "service/jobs/job_lifecycle.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::jobs {

namespace {
constexpr char kNoRepeatPayload[] = "type.blueprintsync/jobs.NoRepeatFound";
}  // namespace

absl::Status NoRepeatFound(const std::string& request_id) {
  absl::Status status = absl::NotFoundError(
      absl::StrCat("no job was recorded with request_id \"", request_id, "\""));
  status.SetPayload(kNoRepeatPayload, absl::Cord("1"));
  return status;
}

bool IsNoRepeatFound(const absl::Status& status) {
  return status.GetPayload(kNoRepeatPayload).has_value();
}
void JobIntake::Submit(NewJob job, absl::Time reply_by, JobService::JobCallback done,
                       Executor* threads, Executor* timers) {
  // Shared so it can still be answered if the task is refused.
  auto shared_done = std::make_shared<JobService::JobCallback>(std::move(done));
  const bool posted = threads->Post([this, job = std::move(job), reply_by, shared_done, timers] {
    Record(job, reply_by, std::move(*shared_done), timers);
  });
  if (!posted) (*shared_done)(ServiceShuttingDown());
}

JobRecord JobIntake::NewRecord(const NewJob& asked) const {
  const v1::SyncBlueprintRequest& request = asked.request;
  const absl::Time now = steps_->clock()->Now();
  JobRecord rec;
  v1::SyncJob* job = rec.mutable_job();
  job->set_name(NewJobName());
  job->set_state(v1::SyncJob::QUEUED);
  job->set_source_region(request.source_region());
  job->set_blueprint_id(request.blueprint_id());
  job->set_request_id(request.request_id());
  job->set_creator(asked.creator.empty() ? kAnonymousCreator : asked.creator);
  job->mutable_labels()->insert(request.labels().begin(), request.labels().end());
  job->set_retry_of(asked.retry_of);
  job->set_keep_failed_copies(asked.keep_failed_copies);
  job->set_policy(asked.policy);
  for (const auto& region : request.destination_regions()) {
    v1::Destination* d = job->add_destinations();
    d->set_region(region);
    d->set_state(v1::Destination::PENDING);
    *d->mutable_update_time() = ToProto(now);
  }
  *job->mutable_create_time() = ToProto(now);
  *job->mutable_update_time() = ToProto(now);
  const absl::Duration timeout =
      asked.timeout > absl::ZeroDuration() ? asked.timeout : steps_->options().job_deadline;
  *job->mutable_deadline() = ToProto(now + timeout);
  rec.set_phase(JobRecord::NOT_SUBMITTED);
  rec.set_request_fingerprint(RequestFingerprint(request, asked.retry_of, asked.policy));
  return rec;
}

void JobIntake::Record(const NewJob& asked, absl::Time reply_by, JobService::JobCallback done,
                       Executor* timers) {
  const v1::SyncBlueprintRequest& request = asked.request;
  if (asked.only_if_repeat) {
    AnswerOnlyARepeat(asked, reply_by, done, timers);
    return;
  }
  const JobRecord fresh = NewRecord(asked);
  // One flush to disk before the call, not two: the record is written
  // without one, and the SUBMITTING write that must precede the call
  // flushes both (JobStore::CreateJobSyncLater). Nothing is sent, and no
  // caller is answered, before that flush or a Sync() (here, for a job not
  // submitted at once; AnswerRepeat; the Submitter's failure path;
  // shutdown). Readers may see the job a moment earlier; nothing has been
  // sent for it then.
  absl::StatusOr<CreateJobResult> created = store_->CreateJobSyncLater(fresh);
  if (!created.ok()) {
    log::Error("could not record job",
               {{"job", fresh.job().name()}, {"error", created.status().message()}});
    done(WithReason(absl::UnavailableError(
                        absl::StrCat("could not record the job: ", created.status().message())),
                    reason::kStoreUnavailable));
    return;
  }
  if (!created->created) {
    AnswerRepeat(asked, created->record, reply_by, done, timers);
    return;
  }
  const JobRecord& rec = created->record;
  const std::string& name = rec.job().name();
  log::Info("job recorded", {{"job", name},
                             {"blueprint_id", request.blueprint_id()},
                             {"source_region", request.source_region()},
                             {"request_id", request.request_id()},
                             {"creator", rec.job().creator()},
                             {"retry_of", asked.retry_of},
                             {"policy", asked.policy}});
  Placed placed;
  // One step: another replica's job list may be adopted here at any moment.
  // A job the Submitter takes next is placed at once; any other may be
  // answered as soon as it is placed, so its record is made durable first.
  const bool placed_now = table_->Locked([&](TableState& s) {
    if (!SubmitsAtOnce(s, rec)) return false;
    placed = Place(s, rec, reply_by, done);
    return true;
  });
  if (!placed_now) {
    FlushOrLog(name);
    table_->Locked([&](TableState& s) { placed = Place(s, rec, reply_by, done); });
  } else if (placed.next != Next::kSubmit) {
    // SubmitsAtOnce and Place disagree, which they must not (Place may have
    // answered already): flush late rather than never.
    log::Error("job placed without being submitted at once; flushing its record late",
               {{"job", name}});
    FlushOrLog(name);
  }
  switch (placed.next) {
    case Next::kSubmit:
      // The reply-by answer only once the record is flushed: by SUBMITTING,
      // or here when that was not written (shutdown began meanwhile, say).
      if (!steps_->SubmitNow(name)) FlushOrLog(name);
      steps_->ScheduleReplyBy(name, reply_by);
      return;
    case Next::kWaitHere:
      steps_->ScheduleReplyBy(name, reply_by);
      return;
    case Next::kAwaitLeader:
      follower_->AwaitOutcome(name, std::move(done), reply_by, timers);
      return;
    case Next::kAnswer:
      if (placed.as_remote) ReplicaFollower::AnswerFrom(*placed.as_remote, done);
      if (placed.as_it_is) done(*placed.as_it_is);
      return;
    case Next::kAnswered:
      return;
  }
}

void JobIntake::FlushOrLog(const std::string& name) {
  if (absl::Status synced = store_->Sync(); !synced.ok()) {
    // The store reports itself damaged (nothing is submitted until a
    // restart). The job is committed (a restart of the process finds it; a
    // machine crash may not) and placed all the same: an error would make
    // a caller without a request_id record it twice.
    log::Error("could not flush the job's record to disk",
               {{"job", name}, {"error", synced.message()}});
  }
}

// SubmitsAtOnce below must say true exactly when this returns kSubmit.
JobIntake::Placed JobIntake::Place(TableState& s, const JobRecord& rec, absl::Time reply_by,
                                   JobService::JobCallback& done) {
  const std::string& name = rec.job().name();
  Placed placed;
  if (!s.leadership.single()) {
    if (auto it = s.active.find(name); it != s.active.end()) {
      // Already adopted from the store by this (leading) replica.
      JobEntry& adopted = it->second;
      const JobRecord::SubmitPhase phase = adopted.rec.phase();
      if (s.OwnsSource(adopted) &&
          (phase == JobRecord::NOT_SUBMITTED || phase == JobRecord::SUBMITTING)) {
        adopted.AddWaiter(std::move(done), reply_by);
        if (s.stopping) s.Reply(adopted);
        placed.next = s.stopping ? Next::kAnswered : Next::kWaitHere;
      } else {
        placed.as_remote = adopted.rec;
        *placed.as_remote->mutable_job() = adopted.published;
      }
      return placed;
    }
    if (auto finished = s.finished.find(name); finished != s.finished.end()) {
      placed.as_it_is = finished->second;
      return placed;
    }
    if (s.stopping) {
      placed.as_it_is = rec.job();
      return placed;
    }
    if (!s.leadership.leading()) {
      placed.next = Next::kAwaitLeader;
      return placed;
    }
  }
  const bool owns = s.Add(rec);
  JobEntry& e = s.active[name];
  e.AddWaiter(std::move(done), reply_by);
  // Shutdown has already answered the callers it knew of; a job recorded now
  // is QUEUED and will be submitted after the restart. A job behind another
  // on its source cannot be submitted before that one finishes, so its
  // caller is answered now.
  if (s.stopping || !owns) s.Reply(e);
  s.Publish(e.rec.job());
  placed.next = s.stopping || !owns ? Next::kAnswered : Next::kSubmit;
  return placed;
}

bool JobIntake::SubmitsAtOnce(const TableState& s, const JobRecord& rec) {
  if (s.stopping) return false;
  const std::string& name = rec.job().name();
  if (!s.leadership.single() &&
      (s.active.find(name) != s.active.end() || s.finished.find(name) != s.finished.end() ||
       !s.leadership.leading())) {
    return false;
  }
  // Place's s.Add(rec) makes it first on its source (it owns it).
  auto q = s.sources.find(TableState::SourceKey(rec.job()));
  return q == s.sources.end() || q->second.empty();
}

bool JobIntake::SubmissionPending(const TableState& s, const JobEntry& e) {
  const JobRecord::SubmitPhase phase = e.rec.phase();
  return e.rec.job().state() == v1::SyncJob::QUEUED &&
         (phase == JobRecord::NOT_SUBMITTED || phase == JobRecord::SUBMITTING) &&
         s.OwnsSource(e);
}

void JobIntake::AnswerOnlyARepeat(const NewJob& asked, absl::Time reply_by,
                                  JobService::JobCallback& done, Executor* timers) {
  JobQuery query;
  query.request_id = asked.request.request_id();
  query.creator = asked.creator.empty() ? kAnonymousCreator : asked.creator;
  query.page_size = 1;
  absl::StatusOr<JobPage> page = store_->ListJobs(query);
  if (!page.ok()) {
    // Not known to be new: a final "invalid" could be wrong, so retryable.
    done(absl::UnavailableError(absl::StrCat("could not check whether request_id \"",
                                             asked.request.request_id(),
                                             "\" was already used: ", page.status().message())));
    return;
  }
  if (page->records.empty()) {
    done(NoRepeatFound(asked.request.request_id()));
    return;
  }
  AnswerRepeat(asked, page->records.front(), reply_by, done, timers);
}

void JobIntake::AnswerRepeat(const NewJob& asked, const JobRecord& existing, absl::Time reply_by,
                             JobService::JobCallback& done, Executor* timers) {
  // The other intake thread may have recorded it a moment ago, not yet
  // flushed (CreateJobSyncLater): nothing is said of it before it is on
  // disk. Free when it already is.
  if (absl::Status synced = store_->Sync(); !synced.ok()) {
    done(WithReason(absl::UnavailableError(absl::StrCat(
                        "could not flush the job store: ", synced.message())),
                    reason::kStoreUnavailable));
    return;
  }
  if (!FingerprintMatches(existing.request_fingerprint(), asked.request, asked.retry_of,
                          asked.policy)) {
    done(WithJobName(InvalidField("request_id", "REQUEST_ID_REUSED",
                                  absl::StrCat("request_id \"", asked.request.request_id(),
                                               "\" was already used for a different request (",
                                               existing.job().name(), ")")),
                     existing.job().name()));
    return;
  }
  const std::string& name = existing.job().name();
  // A retry while the first call still waits for the submission's outcome
  // joins it: answered QUEUED now, it would believe in a job that may be
  // rejected a moment later.
  enum class Then { kAnswer, kJoined, kAwaitLeader } then = Then::kAnswer;
  // The version this replica runs is newer than the store's, if it has one.
  JobRecord current = existing;
  table_->Locked([&](TableState& s) {
    if (auto it = s.active.find(name); it != s.active.end()) {
      JobEntry& e = it->second;
      if (!s.stopping && SubmissionPending(s, e)) {
        e.AddWaiter(std::move(done), reply_by);
        then = Then::kJoined;
        return;
      }
      current = e.rec;
      *current.mutable_job() = e.published;
      return;
    }
    const JobRecord::SubmitPhase phase = existing.phase();
    if (!s.stopping && follower_ != nullptr && !s.leadership.single() &&
        !s.leadership.leading() && existing.job().state() == v1::SyncJob::QUEUED &&
        (phase == JobRecord::NOT_SUBMITTED || phase == JobRecord::SUBMITTING)) {
      then = Then::kAwaitLeader;  // the leader runs it: wait, as the first caller does
    }
  });
  switch (then) {
    case Then::kJoined:
      steps_->ScheduleReplyBy(name, reply_by);
      return;
    case Then::kAwaitLeader:
      follower_->AwaitOutcome(name, std::move(done), reply_by, timers);
      return;
    case Then::kAnswer:
      break;
  }
  if (current.phase() == JobRecord::REJECTED) {
    // PermanentFailure also for rejections recorded by earlier versions.
    done(WithJobName(PermanentFailure(FromSyncError(current.job().error())),
                     current.job().name()));
  } else {
    done(current.job());
  }
}

}  // namespace blueprintsync::jobs
