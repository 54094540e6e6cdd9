#include "service/jobs/job_engine.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/common/log.h"
#include "service/jobs/job_state.h"
#include "service/tencent/api_error.h"
#include "service/tencent/retry_policy.h"

namespace blueprintsync::jobs {
namespace {

using internal::JobRecord;
using tencent::ApiError;
using tencent::ErrorKind;

// How a failed SyncBlueprint attempt is handled.
enum class SubmitFailure {
  kNotExecutedTransient,  // certainly not executed, worth trying again
  kSourceBusy,            // Tencent says the source image is busy
  kOutcomeUnknown,        // may have executed: reconcile, never resend blindly
  kRejected,              // not executed, and trying again will not help
};

SubmitFailure Classify(const absl::Status& status) {
  const std::optional<ApiError> api = tencent::GetApiError(status);
  // Without an ApiError we cannot know whether anything was sent.
  if (!api) return SubmitFailure::kOutcomeUnknown;
  switch (api->kind) {
    case ErrorKind::kOutcomeUnknown:
      return SubmitFailure::kOutcomeUnknown;
    case ErrorKind::kTransport:
      return SubmitFailure::kNotExecutedTransient;
    case ErrorKind::kLocal:
      return api->code == "ClientError.DeadlineExceeded" ? SubmitFailure::kNotExecutedTransient
                                                         : SubmitFailure::kRejected;
    case ErrorKind::kApi:
      if (tencent::RetryPolicy::IsThrottle(*api)) return SubmitFailure::kNotExecutedTransient;
      if (api->code == "OperationDenied.BlueprintOperationInProgress" ||
          api->code == "UnsupportedOperation.BlueprintLatestOperationUnfinished") {
        return SubmitFailure::kSourceBusy;
      }
      return SubmitFailure::kRejected;
    case ErrorKind::kHttpStatus:
    case ErrorKind::kMalformedResponse:
      // The client reports these as kOutcomeUnknown for SyncBlueprint; be
      // safe if that ever changes.
      return SubmitFailure::kOutcomeUnknown;
    case ErrorKind::kCredentials:
      return SubmitFailure::kRejected;
  }
  return SubmitFailure::kOutcomeUnknown;
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// Parses Tencent's "YYYY-MM-DDThh:mm:ssZ".
bool ParseCreatedTime(const std::string& text, absl::Time* t) {
  std::string err;
  return !text.empty() &&
         absl::ParseTime("%Y-%m-%d%ET%H:%M:%SZ", text, absl::UTCTimeZone(), t, &err);
}

}  // namespace

JobEngine::JobEngine(JobEngineOptions options, JobStore* store, tencent::LighthouseClient* client,
                     Clock* clock)
    : options_(std::move(options)), store_(store), client_(client), clock_(clock) {}

JobEngine::~JobEngine() { Shutdown(absl::Now() + absl::Seconds(5)); }

std::string JobEngine::SourceKey(const v1::SyncJob& job) {
  return absl::StrCat(job.source_region(), "/", job.blueprint_id());
}

absl::Status JobEngine::Start() {
  std::vector<JobRecord> unfinished;
  if (options_.elector == nullptr) {
    // The only replica: everything unfinished in the store is ours. (With an
    // elector, jobs are loaded when this replica takes the lead.)
    auto loaded = store_->ListUnfinishedJobs();
    if (!loaded.ok()) return loaded.status();
    unfinished = std::move(*loaded);
  }
  executor_ = std::make_unique<Executor>(options_.workers);
  intake_ = std::make_unique<Executor>(2);
  {
    absl::MutexLock lock(&mu_);
    if (options_.elector == nullptr) {
      term_ = kSingleReplicaTerm;
      stats_.leader_term = term_;
      AdoptLocked(std::move(unfinished), "job engine resumed", /*log_if_none=*/true);
    }
  }
  started_ = true;
  tracker_ = std::thread([this] { TrackerLoop(); });
  if (options_.elector != nullptr) {
    FollowOnce();  // take the lead now if the elector already has it
    follower_ = std::thread([this] { FollowLoop(); });
  }
  return absl::OkStatus();
}

void JobEngine::AdoptLocked(JobRecord rec, absl::Time now, int* queued, int* tracked,
                            int* reconciling) {
  const std::string name = rec.job().name();
  Active& a = active_[name];
  a.rec = std::move(rec);
  std::deque<std::string>& q = sources_[SourceKey(a.rec.job())];
  q.push_back(name);
  stats_.active_jobs = static_cast<int64_t>(active_.size());
  switch (a.rec.phase()) {
    case JobRecord::SUBMITTED:
      ++*tracked;
      if (term_ > 0) wake_tracker_ = true;  // a new leader: poll now, not in poll_interval
      break;
    case JobRecord::SUBMITTING:
      // The process that recorded the attempt stopped (or lost the lead)
      // before learning its outcome: the call may have gone out.
      a.rec.set_phase(JobRecord::OUTCOME_UNKNOWN);
      a.rec.mutable_job()->set_state(v1::SyncJob::RUNNING);  // as without a restart
      PersistLocked(a);
      [[fallthrough]];
    case JobRecord::OUTCOME_UNKNOWN:
      ++*reconciling;
      ScheduleReconcileLocked(name, now + options_.reconcile_grace);
      break;
    default:
      ++*queued;
      if (q.size() == 1) ScheduleSubmitLocked(name, now);
      break;
  }
}

void JobEngine::Shutdown(absl::Time deadline) {
  if (stopping_.exchange(true)) return;
  {
    absl::MutexLock lock(&mu_);
    wake_tracker_ = true;
    wake_follower_ = true;
  }
  if (tracker_.joinable()) tracker_.join();
  if (follower_.joinable()) follower_.join();
  std::map<std::string, std::vector<RemoteReply>> remote;
  {
    absl::MutexLock lock(&mu_);
    remote.swap(remote_replies_);
  }
  for (auto& [name, replies] : remote) AnswerFromStore(name, replies);
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](int* n) { return *n == 0; }, &in_flight_),
                          deadline);
    // Callers still waiting get the job as it stands (QUEUED, or RUNNING for
    // a submission whose outcome is being reconciled).
    for (auto& [name, a] : active_) ReplyLocked(a, absl::OkStatus());
    for (auto& [id, w] : watchers_) w.callback(nullptr);
    watchers_.clear();
    watchers_by_job_.clear();
  }
  if (intake_) intake_->Shutdown();
  if (executor_) executor_->Shutdown();
  log::Info("job engine stopped");
}

void JobEngine::Submit(const v1::SyncBlueprintRequest& request, absl::Time reply_by,
                       SubmitCallback done) {
  if (!serving()) {
    done(absl::UnavailableError("the service is shutting down; retry on another replica"));
    return;
  }
  // Recording the job means an fsync; keep it off the caller's thread. The
  // callback is shared so it can still be answered if the task is refused.
  auto shared_done = std::make_shared<SubmitCallback>(std::move(done));
  const bool posted = intake_->Post([this, request, reply_by, shared_done] {
    CreateJob(request, reply_by, std::move(*shared_done));
  });
  if (!posted) {
    (*shared_done)(
        absl::UnavailableError("the service is shutting down; retry on another replica"));
  }
}

void JobEngine::CreateJob(const v1::SyncBlueprintRequest& request, absl::Time reply_by,
                          SubmitCallback done) {
  const absl::Time now = clock_->Now();
  JobRecord rec;
  v1::SyncJob* job = rec.mutable_job();
  job->set_name(NewJobName());
  job->set_state(v1::SyncJob::QUEUED);
  job->set_source_region(request.source_region());
  job->set_blueprint_id(request.blueprint_id());
  job->set_request_id(request.request_id());
  for (const auto& region : request.destination_regions()) {
    v1::Destination* d = job->add_destinations();
    d->set_region(region);
    d->set_state(v1::Destination::PENDING);
    *d->mutable_update_time() = ToProto(now);
  }
  *job->mutable_create_time() = ToProto(now);
  *job->mutable_update_time() = ToProto(now);
  *job->mutable_deadline() = ToProto(now + options_.job_deadline);
  rec.set_phase(JobRecord::NOT_SUBMITTED);
  rec.set_request_fingerprint(RequestFingerprint(request));

  absl::StatusOr<CreateJobResult> created = store_->CreateJob(rec);
  if (!created.ok()) {
    log::Error("could not record job", {{"error", created.status().message()}});
    done(absl::UnavailableError(
        absl::StrCat("could not record the job: ", created.status().message())));
    return;
  }
  absl::MutexLock lock(&mu_);
  if (!created->created) {
    const JobRecord& existing = created->record;
    if (existing.request_fingerprint() != rec.request_fingerprint()) {
      done(InvalidField("request_id", "REQUEST_ID_REUSED",
                        absl::StrCat("request_id \"", request.request_id(),
                                     "\" was already used for a different request (",
                                     existing.job().name(), ")")));
      return;
    }
    auto it = active_.find(existing.job().name());
    const JobRecord& current = it != active_.end() ? it->second.rec : existing;
    if (current.phase() == JobRecord::REJECTED) {
      done(FromSyncError(current.job().error()));
    } else {
      done(current.job());
    }
    return;
  }
  const std::string name = created->record.job().name();
  if (term_ != kSingleReplicaTerm) {
    // Several replicas: hand the job to whoever leads.
    log::Info("job recorded", {{"job", name},
                               {"blueprint_id", request.blueprint_id()},
                               {"source_region", request.source_region()},
                               {"request_id", request.request_id()},
                               {"leader", leading() ? "this replica" : "another replica"}});
    auto it = active_.find(name);
    if (it != active_.end()) {
      // Already adopted from the store by this (leading) replica.
      Active& adopted = it->second;
      const auto& queue = sources_[SourceKey(adopted.rec.job())];
      const bool first = !queue.empty() && queue.front() == name;
      if (first && (adopted.rec.phase() == JobRecord::NOT_SUBMITTED ||
                    adopted.rec.phase() == JobRecord::SUBMITTING)) {
        adopted.reply = std::move(done);
        adopted.reply_by = reply_by;
        if (stopping_) {
          ReplyLocked(adopted, absl::OkStatus());
        } else {
          ScheduleReplyByLocked(name, reply_by);
        }
      } else {
        AnswerRemote(done, adopted.rec);
      }
      return;
    }
    if (auto finished = finished_.find(name); finished != finished_.end()) {
      done(finished->second);
      return;
    }
    if (!leading() || stopping_) {
      if (stopping_) {
        done(created->record.job());
        return;
      }
      remote_replies_[name].push_back(RemoteReply{std::move(done), reply_by});
      if (reply_by != absl::InfiniteFuture()) {
        executor_->PostAt(reply_by, [this, name] {
          std::vector<RemoteReply> due;
          {
            absl::MutexLock l(&mu_);
            auto found = remote_replies_.find(name);
            if (found == remote_replies_.end()) return;
            due.swap(found->second);
            remote_replies_.erase(found);
          }
          AnswerFromStore(name, due);
        });
      }
      wake_follower_ = true;
      return;
    }
  }
  Active& a = active_[name];
  a.rec = created->record;
  a.reply = std::move(done);
  a.reply_by = reply_by;
  stats_.active_jobs = static_cast<int64_t>(active_.size());
  if (stopping_) {
    // Shutdown has already answered the callers it knew of; this job is
    // recorded QUEUED and will be submitted after the restart.
    ReplyLocked(a, absl::OkStatus());
    return;
  }
  if (term_ == kSingleReplicaTerm) {
    log::Info("job recorded", {{"job", name},
                               {"blueprint_id", request.blueprint_id()},
                               {"source_region", request.source_region()},
                               {"request_id", request.request_id()}});
  }
  std::deque<std::string>& q = sources_[SourceKey(a.rec.job())];
  q.push_back(name);
  if (q.size() == 1) {
    ScheduleSubmitLocked(name, now);
    ScheduleReplyByLocked(name, reply_by);
  } else {
    // Another job owns the source blueprint; this one cannot be submitted
    // before that one finishes, so answer now.
    ReplyLocked(a, absl::OkStatus());
  }
  PublishLocked(a.rec.job());
}

void JobEngine::ScheduleSubmitLocked(const std::string& name, absl::Time when) {
  if (stopping_) return;
  executor_->PostAt(when, [this, name] { RunSubmit(name); });
}

void JobEngine::ScheduleReplyByLocked(const std::string& name, absl::Time reply_by) {
  if (reply_by == absl::InfiniteFuture()) return;
  executor_->PostAt(reply_by, [this, name] {
    absl::MutexLock l(&mu_);
    auto it = active_.find(name);
    if (it != active_.end()) ReplyLocked(it->second, absl::OkStatus());
  });
}

void JobEngine::ScheduleReconcileLocked(const std::string& name, absl::Time when) {
  if (stopping_) return;
  executor_->PostAt(when, [this, name] { RunReconcile(name); });
}

absl::Duration JobEngine::BackoffFor(int failures) const {
  absl::Duration d = options_.retry_initial;
  for (int i = 1; i < failures && d < options_.retry_max; ++i) d *= 2;
  return std::min(d, options_.retry_max);
}

void JobEngine::RunSubmit(const std::string& name) {
  tencent::SyncBlueprintRequest req;
  absl::Time call_deadline = absl::InfiniteFuture();
  int64_t term = 0;
  uint64_t generation = 0;
  bool lease_bounded = false;  // the call's deadline is the lease's, not the caller's
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !leading()) return;
    term = term_;
    generation = generation_;
    auto it = active_.find(name);
    if (it == active_.end()) return;
    Active& a = it->second;
    const auto& q = sources_[SourceKey(a.rec.job())];
    if (a.submit_in_flight || a.rec.phase() != JobRecord::NOT_SUBMITTED || q.empty() ||
        q.front() != name) {
      return;
    }
    const absl::Time now = clock_->Now();
    if (now >= FromProto(a.rec.job().deadline())) {
      FailJobLocked(
          a, absl::DeadlineExceededError("the job could not be submitted before its deadline"));
      return;
    }
    a.rec.set_phase(JobRecord::SUBMITTING);
    *a.rec.mutable_submit_attempt_time() = ToProto(now);
    a.rec.set_submit_attempts(a.rec.submit_attempts() + 1);
    *a.rec.mutable_job()->mutable_update_time() = ToProto(now);
    // This write is what makes submission at-most-once: if it is not
    // durable, do not send.
    absl::Status written = store_->UpdateJob(a.rec);
    if (!written.ok()) {
      log::Error("could not record submission attempt; not submitting",
                 {{"job", name}, {"error", written.message()}});
      a.rec.set_phase(JobRecord::NOT_SUBMITTED);
      a.rec.set_submit_attempts(a.rec.submit_attempts() - 1);
      ++a.transient_failures;
      ReplyLocked(a, absl::OkStatus());
      ScheduleSubmitLocked(name, now + BackoffFor(a.transient_failures));
      return;
    }
    a.submit_in_flight = true;
    ++in_flight_;
    if (a.reply) call_deadline = a.reply_by;
    req.region = a.rec.job().source_region();
    req.blueprint_id = a.rec.job().blueprint_id();
    for (const auto& d : a.rec.job().destinations()) req.destination_regions.push_back(d.region());
    ++stats_.sync_calls;
  }

  if (term > 0) {
    // No attempt (retries included) may start once the lease may have run
    // out; an attempt in flight is cut off then, which is an unknown outcome.
    const absl::Time lease_end = options_.elector->ValidUntil(term);
    if (lease_end < call_deadline) {
      call_deadline = lease_end;
      lease_bounded = true;
    }
  }
  if (term > 0 && !options_.elector->Holds(term)) {
    // The lease may have run out since this job was recorded SUBMITTING:
    // another replica could be leading, so do not call. Whoever leads next
    // finds the job SUBMITTING and reconciles it (nothing was sent, so it
    // resubmits).
    absl::MutexLock lock(&mu_);
    --in_flight_;
    log::Warn("leadership lapsed before submitting; not calling", {{"job", name}});
    auto it = active_.find(name);
    if (generation_ == generation && it != active_.end()) {
      // Still our term (the lease may be renewed late): reconcile as if the
      // call had been made, so the job is not left SUBMITTING.
      Active& a = it->second;
      a.submit_in_flight = false;
      a.rec.set_phase(JobRecord::OUTCOME_UNKNOWN);
      a.rec.mutable_job()->set_state(v1::SyncJob::RUNNING);
      PersistLocked(a);
      ReplyLocked(a, absl::OkStatus());
      ScheduleReconcileLocked(name, clock_->Now() + options_.reconcile_grace);
    }
    return;
  }
  tencent::CallOptions call;
  call.deadline = call_deadline;
  absl::StatusOr<tencent::SyncBlueprintResponse> result = client_->SyncBlueprint(req, call);

  absl::MutexLock lock(&mu_);
  --in_flight_;
  auto it = active_.find(name);
  // Gone or re-adopted when leadership changed meanwhile: the job is
  // SUBMITTING in the store, and the leader reconciles it.
  if (generation_ != generation || it == active_.end()) {
    if (generation_ != generation) {
      log::Warn("leadership changed while submitting; the leader reconciles the job",
                {{"job", name}, {"outcome", result.ok() ? "accepted" : result.status().message()}});
    }
    return;
  }
  Active& a = it->second;
  a.submit_in_flight = false;
  const absl::Time now = clock_->Now();
  v1::SyncJob* job = a.rec.mutable_job();

  if (result.ok()) {
    std::map<std::string, std::string> ids;
    for (const auto& d : result->destinations) ids[d.region] = d.blueprint_id;
    for (auto& d : *job->mutable_destinations()) {
      *d.mutable_update_time() = ToProto(now);
      auto found = ids.find(d.region());
      if (found != ids.end() && !found->second.empty()) {
        d.set_blueprint_id(found->second);
        d.set_state(v1::Destination::SYNCING);
      } else {
        d.set_state(v1::Destination::FAILED);
        *d.mutable_error() = ToSyncError(absl::InternalError(
            "Tencent Cloud accepted the sync but returned no blueprint for this region"));
      }
    }
    job->set_upstream_request_id(result->request_id);
    *job->mutable_submit_time() = ToProto(now);
    a.rec.set_phase(JobRecord::SUBMITTED);
    job->set_state(DeriveSubmittedJobState(*job));
    log::Info("job submitted", {{"job", name},
                                {"upstream_request_id", result->request_id},
                                {"blueprint_id", job->blueprint_id()}});
    if (IsTerminal(job->state())) *job->mutable_end_time() = ToProto(now);
    PersistLocked(a);
    ReplyLocked(a, absl::OkStatus());
    if (IsTerminal(job->state())) FinishLocked(name);
    return;
  }

  const absl::Status& error = result.status();
  const auto api = tencent::GetApiError(error);
  switch (Classify(error)) {
    case SubmitFailure::kNotExecutedTransient: {
      a.rec.set_phase(JobRecord::NOT_SUBMITTED);
      const bool caller_deadline = !lease_bounded && api && api->kind == ErrorKind::kLocal &&
                                   api->code == "ClientError.DeadlineExceeded";
      if (!caller_deadline) ++a.transient_failures;
      PersistLocked(a);
      // Either the caller's deadline would pass waiting for capacity, or the
      // upstream is unreachable for now: answer QUEUED and keep going.
      ReplyLocked(a, absl::OkStatus());
      const absl::Time next = caller_deadline ? now : now + BackoffFor(a.transient_failures);
      log::Warn("submission not sent; will retry",
                {{"job", name}, {"error", error.message()}, {"retry_at", TimeText(next)}});
      ScheduleSubmitLocked(name, next);
      return;
    }
    case SubmitFailure::kSourceBusy: {
      if (a.resubmitted) {
        // Resubmitted because no copy of an earlier, ambiguous call was
        // seen; "busy" may mean that call has executed after all. Retrying
        // on busy could then sync twice: look again instead.
        a.resubmitted = false;
        a.rec.set_phase(JobRecord::OUTCOME_UNKNOWN);
        job->set_state(v1::SyncJob::RUNNING);
        PersistLocked(a);
        ReplyLocked(a, absl::OkStatus());
        log::Warn("source busy after a resubmission; reconciling again", {{"job", name}});
        ScheduleReconcileLocked(name, now + options_.reconcile_grace);
        return;
      }
      a.rec.set_phase(JobRecord::NOT_SUBMITTED);
      if (a.busy_since == absl::InfiniteFuture()) a.busy_since = now;
      if (now - a.busy_since >= options_.busy_window) {
        a.rec.set_phase(JobRecord::REJECTED);
        FailJobLocked(a, error);
        return;
      }
      PersistLocked(a);
      ReplyLocked(a, absl::OkStatus());
      log::Info("source blueprint busy upstream; will retry",
                {{"job", name}, {"blueprint_id", job->blueprint_id()}});
      ScheduleSubmitLocked(name, now + options_.busy_retry_interval);
      return;
    }
    case SubmitFailure::kOutcomeUnknown: {
      a.rec.set_phase(JobRecord::OUTCOME_UNKNOWN);
      job->set_state(v1::SyncJob::RUNNING);
      if (api) job->set_upstream_request_id(api->request_id);
      PersistLocked(a);
      ReplyLocked(a, absl::OkStatus());
      log::Warn("submission outcome unknown; reconciling",
                {{"job", name}, {"error", error.message()}});
      ScheduleReconcileLocked(name, now + options_.reconcile_grace);
      return;
    }
    case SubmitFailure::kRejected:
      a.rec.set_phase(JobRecord::REJECTED);
      log::Info("submission rejected", {{"job", name}, {"error", error.message()}});
      FailJobLocked(a, error);
      return;
  }
}

void JobEngine::RunReconcile(const std::string& name) {
  std::string source_region, blueprint_id;
  std::vector<std::string> regions;
  absl::Time attempt;
  std::set<std::string> claimed;  // destination ids other jobs already own
  int64_t sequence = 0;           // this job's place in the store
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !leading()) return;
    auto it = active_.find(name);
    if (it == active_.end() || it->second.rec.phase() != JobRecord::OUTCOME_UNKNOWN ||
        it->second.submit_in_flight) {
      return;
    }
    Active& a = it->second;
    ++a.reconcile_looks;
    ++in_flight_;
    generation = generation_;
    source_region = a.rec.job().source_region();
    blueprint_id = a.rec.job().blueprint_id();
    for (const auto& d : a.rec.job().destinations()) regions.push_back(d.region());
    attempt = FromProto(a.rec.submit_attempt_time());
    sequence = a.rec.sequence();
    for (const auto& [other, o] : active_) {
      if (other == name) continue;
      for (const auto& d : o.rec.job().destinations()) {
        if (!d.blueprint_id().empty()) claimed.insert(d.blueprint_id());
      }
    }
  }

  std::string problem;
  // 0. Copies earlier jobs on this source created are theirs, even when those
  //    jobs have finished (or ran before a restart or on another replica):
  //    jobs on one source run one after another, in creation order, so the
  //    few created just before this one suffice. Not the newest few: with a
  //    backlog of more than a page of jobs queued behind this one, those are
  //    all still unsubmitted, and the previous job's copy was then "adopted"
  //    (its sync never made; tests/e2e/reconcile_e2e_test.cc, ...Backlog).
  {
    JobQuery q;
    q.source_region = source_region;
    q.blueprint_id = blueprint_id;
    q.before_sequence = sequence;  // 0 (unknown): no bound
    q.page_size = 50;
    auto earlier = store_->ListJobs(q);
    if (!earlier.ok()) {
      problem =
          absl::StrCat("could not read earlier jobs on this source: ", earlier.status().message());
    } else {
      for (const JobRecord& other : earlier->records) {
        if (other.job().name() == name) continue;
        for (const auto& d : other.job().destinations()) {
          if (!d.blueprint_id().empty()) claimed.insert(d.blueprint_id());
        }
      }
    }
  }
  // 1. The source: its name identifies the copies, its state tells whether a
  //    sync is (still) running.
  std::string source_name, source_state;
  std::map<std::string, std::vector<tencent::Blueprint>> found;  // region -> candidate copies
  if (problem.empty()) {
    tencent::DescribeBlueprintsRequest q;
    q.region = source_region;
    q.blueprint_ids = {blueprint_id};
    auto r = client_->DescribeBlueprints(q);
    if (!r.ok()) {
      problem = absl::StrCat("could not read the source blueprint: ", r.status().message());
    } else if (r->blueprints.empty()) {
      problem = "the source blueprint no longer exists";
    } else {
      source_name = r->blueprints[0].blueprint_name;
      source_state = r->blueprints[0].blueprint_state;
    }
  }
  // 2. Each destination: private blueprints with the source's name created
  //    no earlier than our attempt (less the allowed clock skew).
  if (problem.empty()) {
    for (const std::string& region : regions) {
      tencent::DescribeBlueprintsRequest q;
      q.region = region;
      q.filters = {{"blueprint-name", {source_name}}, {"blueprint-type", {"PRIVATE"}}};
      q.limit = 100;
      auto r = client_->DescribeBlueprints(q);
      if (!r.ok()) {
        problem = absl::StrCat("could not list blueprints in ", region, ": ", r.status().message());
        break;
      }
      for (const auto& b : r->blueprints) {
        absl::Time created;
        if (claimed.count(b.blueprint_id) || !ParseCreatedTime(b.created_time, &created)) continue;
        if (created >= attempt - options_.reconcile_clock_skew) found[region].push_back(b);
      }
    }
  }

  absl::MutexLock lock(&mu_);
  --in_flight_;
  auto it = active_.find(name);
  // Another look (or a resubmission) may have moved the job on meanwhile.
  if (it == active_.end() || generation_ != generation ||
      it->second.rec.phase() != JobRecord::OUTCOME_UNKNOWN || it->second.submit_in_flight) {
    return;
  }
  Active& a = it->second;
  const absl::Time now = clock_->Now();
  v1::SyncJob* job = a.rec.mutable_job();

  if (problem.empty()) {
    bool all_one = true;
    for (const auto& region : regions) all_one &= found.count(region) && found[region].size() == 1;
    if (all_one) {
      // The call executed: adopt the copies it created.
      for (auto& d : *job->mutable_destinations()) {
        const tencent::Blueprint& b = found[d.region()][0];
        d.set_blueprint_id(b.blueprint_id);
        d.set_blueprint_state(b.blueprint_state);
        d.set_state(DestinationStateFor(b.blueprint_state));
        *d.mutable_update_time() = ToProto(now);
      }
      a.rec.set_phase(JobRecord::SUBMITTED);
      if (!job->has_submit_time()) *job->mutable_submit_time() = a.rec.submit_attempt_time();
      job->set_state(DeriveSubmittedJobState(*job));
      log::Info("reconciled: submission had executed; adopted its copies", {{"job", name}});
      if (IsTerminal(job->state())) *job->mutable_end_time() = ToProto(now);
      PersistLocked(a);
      if (IsTerminal(job->state())) FinishLocked(name);
      return;
    }
    if (found.empty() && source_state == "NORMAL") {
      // No copy anywhere and the source is not syncing: the call did not
      // execute, so sending it now cannot create a second set of copies.
      a.rec.set_phase(JobRecord::NOT_SUBMITTED);
      job->set_state(v1::SyncJob::QUEUED);
      job->clear_upstream_request_id();
      a.resubmitted = true;
      a.reconcile_looks = 0;
      log::Info("reconciled: submission had not executed; resubmitting", {{"job", name}});
      PersistLocked(a);
      ScheduleSubmitLocked(name, now);
      return;
    }
    std::vector<std::string> seen;
    for (const auto& region : regions) {
      seen.push_back(absl::StrCat(region, "=", found.count(region) ? found[region].size() : 0));
    }
    problem = absl::StrCat("source state ", source_state,
                           ", copies found per region: ", absl::StrJoin(seen, ", "));
  }
  if (a.reconcile_looks < options_.reconcile_attempts) {
    log::Info("reconcile inconclusive; will look again", {{"job", name}, {"detail", problem}});
    ScheduleReconcileLocked(name, now + options_.reconcile_grace);
    return;
  }
  FailJobLocked(a, absl::UnknownError(absl::StrCat(
                       "needs attention: the SyncBlueprint call made at ", TimeText(attempt),
                       " may have executed but its outcome could not be determined (", problem,
                       "). Check ", absl::StrJoin(regions, ", "), " for copies of ", blueprint_id,
                       " created after that time before syncing again")));
}

void JobEngine::PersistLocked(Active& a) {
  *a.rec.mutable_job()->mutable_update_time() = ToProto(clock_->Now());
  absl::Status s = store_->UpdateJob(a.rec);
  a.unpersisted = !s.ok();
  if (!s.ok()) {
    log::Error("could not persist job", {{"job", a.rec.job().name()}, {"error", s.message()}});
  }
  PublishLocked(a.rec.job());
}

void JobEngine::ReplyLocked(Active& a, const absl::Status& error) {
  if (!a.reply) return;
  SubmitCallback reply = std::move(a.reply);
  a.reply = nullptr;
  if (error.ok()) {
    reply(a.rec.job());
  } else {
    reply(error);
  }
}

void JobEngine::FailJobLocked(Active& a, const absl::Status& error) {
  const absl::Time now = clock_->Now();
  v1::SyncJob* job = a.rec.mutable_job();
  const v1::SyncError e = ToSyncError(error);
  *job->mutable_error() = e;
  for (auto& d : *job->mutable_destinations()) {
    if (IsTerminal(d.state())) continue;
    d.set_state(v1::Destination::FAILED);
    *d.mutable_error() = e;
    *d.mutable_update_time() = ToProto(now);
  }
  job->set_state(v1::SyncJob::FAILED);
  *job->mutable_end_time() = ToProto(now);
  PersistLocked(a);
  log::Info("job failed", {{"job", job->name()}, {"error", error.message()}});
  ReplyLocked(a, error);
  FinishLocked(job->name());  // by value: the record is erased inside
}

void JobEngine::FinishLocked(std::string name) {
  auto it = active_.find(name);
  if (it == active_.end()) return;
  const std::string key = SourceKey(it->second.rec.job());
  log::Info("job finished",
            {{"job", name}, {"state", v1::SyncJob::State_Name(it->second.rec.job().state())}});
  if (options_.observer != nullptr) options_.observer->OnJobFinished(it->second.rec.job());
  if (it->second.unpersisted) unpersisted_[name] = it->second.rec;
  if (options_.finished_cache_size > 0) {
    finished_[name] = it->second.rec.job();
    finished_order_.push_back(name);
    while (finished_order_.size() > static_cast<size_t>(options_.finished_cache_size)) {
      finished_.erase(finished_order_.front());
      finished_order_.pop_front();
    }
  }
  active_.erase(it);
  stats_.active_jobs = static_cast<int64_t>(active_.size());
  auto q = sources_.find(key);
  if (q == sources_.end()) return;
  auto pos = std::find(q->second.begin(), q->second.end(), name);
  const bool was_front = pos == q->second.begin();
  if (pos != q->second.end()) q->second.erase(pos);
  if (q->second.empty()) {
    sources_.erase(q);
  } else if (was_front) {
    ScheduleSubmitLocked(q->second.front(), clock_->Now());
  }
}

void JobEngine::PublishLocked(const v1::SyncJob& job) {
  auto range = watchers_by_job_.equal_range(job.name());
  if (range.first == range.second) return;
  // Only needed to tell store re-reads apart from what was already sent.
  const std::string serialized = term_ != kSingleReplicaTerm ? job.SerializeAsString() : "";
  for (auto it = range.first; it != range.second; ++it) {
    auto w = watchers_.find(it->second);
    if (w == watchers_.end()) continue;
    w->second.last_sent = serialized;
    w->second.callback(&job);
  }
}

absl::StatusOr<v1::SyncJob> JobEngine::Get(const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(name);
    if (it != active_.end()) return it->second.rec.job();
    auto done = finished_.find(name);
    if (done != finished_.end()) return done->second;
  }
  auto rec = store_->GetJob(name);
  if (!rec.ok()) return rec.status();
  return rec->job();
}

absl::Status JobEngine::Watch(const std::string& name, uint64_t* watch_id, WatchCallback callback) {
  absl::MutexLock lock(&mu_);
  *watch_id = 0;
  auto it = active_.find(name);
  std::string last_sent;
  if (it == active_.end()) {
    auto rec = store_->GetJob(name);
    if (!rec.ok()) return rec.status();
    // Finished jobs do not change any more; no need to register. With one
    // replica, every unfinished job is in memory.
    if (term_ == kSingleReplicaTerm || IsTerminal(rec->job().state()) || stopping_) {
      callback(&rec->job());
      return absl::OkStatus();
    }
    // Run by another replica (or not adopted yet): followed by re-reading.
    last_sent = rec->job().SerializeAsString();
    callback(&rec->job());
    wake_follower_ = true;
  } else {
    if (stopping_) return absl::UnavailableError("the service is shutting down");
    callback(&it->second.rec.job());
    if (term_ != kSingleReplicaTerm) last_sent = it->second.rec.job().SerializeAsString();
  }
  const uint64_t id = next_watch_id_++;
  watchers_[id] = Watcher{name, std::move(callback), std::move(last_sent)};
  watchers_by_job_.emplace(name, id);
  *watch_id = id;
  return absl::OkStatus();
}

uint64_t JobEngine::WatchJob(const std::string& name, JobService::WatchCallback callback) {
  uint64_t id = 0;
  absl::Status s = Watch(name, &id, [callback](const v1::SyncJob* job) {
    if (job == nullptr) {
      callback(absl::UnavailableError("the server is shutting down; watch again to continue"));
    } else {
      callback(*job);
    }
  });
  if (!s.ok()) callback(s);
  return id;
}

void JobEngine::Unwatch(uint64_t watch_id) {
  if (watch_id == 0) return;
  absl::MutexLock lock(&mu_);
  auto it = watchers_.find(watch_id);
  if (it == watchers_.end()) return;
  auto range = watchers_by_job_.equal_range(it->second.name);
  for (auto w = range.first; w != range.second; ++w) {
    if (w->second == watch_id) {
      watchers_by_job_.erase(w);
      break;
    }
  }
  watchers_.erase(it);
}

void JobEngine::TrackerLoop() {
  while (!stopping_) {
    PollOnce();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&wake_tracker_), options_.poll_interval);
    wake_tracker_ = false;
  }
}

void JobEngine::PollOnceForTest() { PollOnce(); }

void JobEngine::RetryUnpersistedLocked() {
  for (auto it = unpersisted_.begin(); it != unpersisted_.end();) {
    absl::Status s = store_->UpdateJob(it->second);
    if (s.ok() || s.code() == absl::StatusCode::kNotFound ||
        s.code() == absl::StatusCode::kFailedPrecondition) {
      // Written, or no longer this replica's to write (another leads).
      if (s.ok()) log::Info("final state of job written", {{"job", it->first}});
      it = unpersisted_.erase(it);
    } else {
      ++it;
    }
  }
}

void JobEngine::AnswerRemote(SubmitCallback& done, const JobRecord& rec) {
  if (rec.phase() == JobRecord::REJECTED ||
      (rec.job().state() == v1::SyncJob::FAILED && rec.job().has_error())) {
    done(FromSyncError(rec.job().error()));
  } else {
    done(rec.job());
  }
}

void JobEngine::AnswerFromStore(const std::string& name, std::vector<RemoteReply>& replies) {
  absl::StatusOr<JobRecord> stored = store_->GetJob(name);
  for (RemoteReply& r : replies) {
    if (stored.ok()) {
      AnswerRemote(r.done, *stored);
    } else {
      r.done(absl::UnavailableError(absl::StrCat(
          name, " is recorded but could not be read back: ", stored.status().message())));
    }
  }
}

void JobEngine::FollowLoop() {
  while (!stopping_) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&wake_follower_), options_.follow_interval);
      wake_follower_ = false;
    }
    if (stopping_) break;
    FollowOnce();
  }
}

void JobEngine::FollowOnce() {
  const int64_t term = options_.elector->Term();
  std::set<std::string> names;    // jobs run elsewhere that someone here waits on
  std::set<std::string> waiting;  // of those, the ones with a caller waiting
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (term != term_) {
      if (term_ != 0) StepDownLocked();
      if (term != 0) BecomeLeaderLocked(term);
    } else if (leading()) {
      AdoptNewJobsLocked();
    }
    for (const auto& [name, replies] : remote_replies_) {
      names.insert(name);
      waiting.insert(name);
    }
    for (const auto& [id, w] : watchers_) {
      if (!active_.count(w.name)) names.insert(w.name);
    }
  }
  for (const std::string& name : names) {
    absl::StatusOr<JobRecord> rec = store_->GetJob(name);
    if (!rec.ok()) continue;  // the store is unreachable: try again next round
    // As on the leader, a caller whose job waits behind an earlier job on the
    // same source blueprint is answered now (QUEUED), not when it starts.
    bool behind = false;
    if (waiting.count(name) && rec->phase() == JobRecord::NOT_SUBMITTED) {
      JobQuery q;
      q.source_region = rec->job().source_region();
      q.blueprint_id = rec->job().blueprint_id();
      q.page_size = 2;
      q.state = v1::SyncJob::RUNNING;
      auto running = store_->ListJobs(q);
      behind = running.ok() && !running->records.empty();
      if (!behind) {
        q.state = v1::SyncJob::QUEUED;
        q.before_sequence = rec->sequence();
        q.page_size = 1;
        auto earlier = store_->ListJobs(q);
        behind = earlier.ok() && !earlier->records.empty();
      }
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (auto r = remote_replies_.find(name); r != remote_replies_.end()) {
      const JobRecord::SubmitPhase phase = rec->phase();
      if (behind || (phase != JobRecord::NOT_SUBMITTED && phase != JobRecord::SUBMITTING)) {
        for (RemoteReply& reply : r->second) AnswerRemote(reply.done, *rec);
        remote_replies_.erase(r);
      }
    }
    if (active_.count(name)) continue;  // adopted meanwhile: its watchers hear from the engine
    const std::string serialized = rec->job().SerializeAsString();
    auto range = watchers_by_job_.equal_range(name);
    for (auto it = range.first; it != range.second; ++it) {
      auto w = watchers_.find(it->second);
      if (w == watchers_.end() || w->second.last_sent == serialized) continue;
      w->second.last_sent = serialized;
      w->second.callback(&rec->job());
    }
  }
}

void JobEngine::BecomeLeaderLocked(int64_t term) {
  // Job updates from now on carry this epoch; the store refuses them once
  // another replica holds a newer one.
  store_->SetWriteFence(term);
  // Lead only with every unfinished job loaded: a new job must not be sent
  // while an earlier one on its source is still unknown to this replica.
  absl::StatusOr<std::vector<JobRecord>> unfinished = store_->ListUnfinishedJobs();
  if (!unfinished.ok()) {
    log::Warn("holding the lease but cannot load unfinished jobs; not leading yet",
              {{"epoch", std::to_string(term)}, {"error", unfinished.status().message()}});
    return;
  }
  term_ = term;
  ++generation_;
  stats_.leader_term = term;
  ++stats_.leadership_changes;
  AdoptLocked(std::move(*unfinished), "adopted unfinished jobs", /*log_if_none=*/false);
  log::Info("leading: resumed unfinished jobs",
            {{"epoch", std::to_string(term)}, {"jobs", std::to_string(active_.size())}});
}

void JobEngine::StepDownLocked() {
  log::Warn("no longer leading: dropping in-memory jobs, no further upstream calls",
            {{"epoch", std::to_string(term_)}, {"jobs", std::to_string(active_.size())}});
  // Callers still waiting here get the job as it stands; watchers of these
  // jobs are followed through the store from now on.
  for (auto& [name, a] : active_) ReplyLocked(a, absl::OkStatus());
  active_.clear();
  sources_.clear();
  term_ = 0;
  ++generation_;
  stats_.leader_term = 0;
  ++stats_.leadership_changes;
  stats_.active_jobs = 0;
  // The fence stays at the old epoch: a write still in flight from this
  // term fails, since every later acquisition has a higher epoch.
}

void JobEngine::AdoptNewJobsLocked() {
  // Under mu_: every update this engine makes is written under mu_, so the
  // store cannot show a job this engine has just finished as unfinished
  // (unless that write failed: see unpersisted_).
  absl::StatusOr<std::vector<JobRecord>> unfinished = store_->ListUnfinishedJobs();
  if (!unfinished.ok()) {
    log::Warn("could not read unfinished jobs; will try again",
              {{"error", unfinished.status().message()}});
    return;
  }
  AdoptLocked(std::move(*unfinished), "adopted unfinished jobs", /*log_if_none=*/false);
}

void JobEngine::AdoptLocked(std::vector<JobRecord> unfinished, const char* message,
                            bool log_if_none) {
  const absl::Time now = clock_->Now();
  int queued = 0, tracked = 0, reconciling = 0;
  for (JobRecord& rec : unfinished) {
    const std::string& name = rec.job().name();
    // Finished here although the store has not heard yet: never again.
    if (active_.count(name) || finished_.count(name) || unpersisted_.count(name)) continue;
    AdoptLocked(std::move(rec), now, &queued, &tracked, &reconciling);
  }
  if (log_if_none || queued + tracked + reconciling > 0) {
    log::Info(message, {{"queued", std::to_string(queued)},
                        {"tracking", std::to_string(tracked)},
                        {"reconciling", std::to_string(reconciling)}});
  }
}

void JobEngine::ExpireDeadlinesLocked(absl::Time now) {
  std::vector<std::string> expired;
  for (const auto& [name, a] : active_) {
    if (!a.submit_in_flight && now >= FromProto(a.rec.job().deadline())) expired.push_back(name);
  }
  for (const std::string& name : expired) {
    Active& a = active_[name];
    std::string what;
    switch (a.rec.phase()) {
      case JobRecord::SUBMITTED:
        what = "a destination image was still not NORMAL at the job deadline";
        for (const auto& d : a.rec.job().destinations()) {
          auto failing = poll_errors_.find(d.region());
          if (d.state() == v1::Destination::SYNCING && failing != poll_errors_.end()) {
            absl::StrAppend(&what, " (tracking it failed: DescribeBlueprints in ", d.region(),
                            " answered ", failing->second, ")");
            break;
          }
        }
        break;
      case JobRecord::OUTCOME_UNKNOWN:
        what =
            "needs attention: the outcome of the submission was still unknown at the job deadline";
        break;
      default:
        what = "the job could not be submitted before its deadline";
        break;
    }
    FailJobLocked(a, absl::DeadlineExceededError(what));
  }
}

void JobEngine::PollOnce() {
  absl::MutexLock poll_lock(&poll_mu_);
  std::map<std::string, std::vector<std::string>> by_region;  // region -> ids, sorted, unique
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    if (!leading()) return;
    generation = generation_;
    RetryUnpersistedLocked();
    ExpireDeadlinesLocked(clock_->Now());
    for (const auto& [name, a] : active_) {
      if (a.rec.phase() != JobRecord::SUBMITTED) continue;
      for (const auto& d : a.rec.job().destinations()) {
        if (d.state() == v1::Destination::SYNCING && !d.blueprint_id().empty()) {
          by_region[d.region()].push_back(d.blueprint_id());
        }
      }
    }
  }
  // One DescribeBlueprints per region per 100 ids, whatever the number of
  // jobs: the cost grows with regions, not with jobs.
  std::map<std::string, tencent::Blueprint> seen;  // id -> latest view
  std::map<std::string, std::string> failed;       // region -> error
  std::set<std::string> answered;                  // regions that answered
  int64_t calls = 0;
  for (auto& [region, ids] : by_region) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (size_t i = 0; i < ids.size() && !stopping_; i += tencent::kMaxDescribeIds) {
      tencent::DescribeBlueprintsRequest q;
      q.region = region;
      q.blueprint_ids.assign(ids.begin() + i,
                             ids.begin() + std::min(ids.size(), i + tencent::kMaxDescribeIds));
      q.limit = tencent::kMaxDescribeIds;
      ++calls;
      auto r = client_->DescribeBlueprints(q);
      if (!r.ok()) {
        log::Warn("poll failed; will try again next cycle",
                  {{"region", region}, {"error", r.status().message()}});
        const auto api = tencent::GetApiError(r.status());
        std::string text = api && !api->code.empty() ? absl::StrCat(api->code, ": ", api->message)
                                                     : std::string(r.status().message());
        if (text.size() > 200) text = absl::StrCat(text.substr(0, 200), "...");
        failed[region] = std::move(text);
        continue;
      }
      answered.insert(region);
      for (auto& b : r->blueprints) seen[b.blueprint_id] = std::move(b);
    }
  }

  absl::MutexLock lock(&mu_);
  stats_.poll_cycles++;
  stats_.describe_calls += calls;
  stats_.last_cycle_describe_calls = calls;
  for (const std::string& region : answered) poll_errors_.erase(region);
  for (auto& [region, text] : failed) poll_errors_[region] = std::move(text);
  if (generation_ != generation) return;  // lost the lead meanwhile: the new leader polls
  const absl::Time now = clock_->Now();
  std::vector<std::string> finished;
  for (auto& [name, a] : active_) {
    if (a.rec.phase() != JobRecord::SUBMITTED) continue;
    v1::SyncJob* job = a.rec.mutable_job();
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
      }
      log::Info("destination changed", {{"job", name},
                                        {"region", d.region()},
                                        {"blueprint_id", d.blueprint_id()},
                                        {"state", b.blueprint_state}});
      changed = true;
    }
    if (!changed) continue;
    job->set_state(DeriveSubmittedJobState(*job));
    if (IsTerminal(job->state())) {
      *job->mutable_end_time() = ToProto(now);
      finished.push_back(name);
    }
    PersistLocked(a);
  }
  for (const std::string& name : finished) FinishLocked(name);
}

JobEngineStats JobEngine::stats() const {
  absl::MutexLock lock(&mu_);
  JobEngineStats out = stats_;
  for (const auto& [name, a] : active_) {
    const v1::SyncJob::State state = a.rec.job().state();
    if (state == v1::SyncJob::QUEUED) ++out.queued_jobs;
    if (state == v1::SyncJob::RUNNING) ++out.running_jobs;
  }
  return out;
}

}  // namespace blueprintsync::jobs
