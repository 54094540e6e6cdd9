#include "service/jobs/submitter.h"

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/common/log.h"
#include "service/jobs/job_lifecycle.h"
#include "service/jobs/job_state.h"
#include "service/jobs/leader_elector.h"
#include "service/jobs/store_health.h"
#include "service/tencent/api_error.h"
#include "service/tencent/retry_policy.h"

namespace blueprintsync::jobs {
namespace {

using tencent::ApiError;
using tencent::ErrorKind;

// Tencent codes that say the service had a problem, not the request: the
// call may or may not have been carried out, so they are settled like any
// other unknown outcome (reconcile; resend only if it provably did not
// execute) instead of failing the job for good.
bool IsTencentTransient(const std::string& code) {
  return code == "FailedOperation.RequestError" ||
         code == "FailedOperation.DescribeBlueprintQuotaFailed" || code == "ServiceUnavailable" ||
         code == "ResourceUnavailable" || code == "InternalError" ||
         absl::StartsWith(code, "InternalError.");
}

}  // namespace

std::string AnswerMismatch(const tencent::SyncBlueprintRequest& request,
                           const tencent::SyncBlueprintResponse& response) {
  std::set<std::string> asked(request.destination_regions.begin(),
                              request.destination_regions.end());
  std::set<std::string> answered;
  for (const auto& d : response.destinations) {
    if (asked.count(d.region) == 0) return absl::StrCat("region ", d.region, " was not asked for");
    if (!answered.insert(d.region).second) return absl::StrCat("region ", d.region, " twice");
    if (d.blueprint_id.empty()) return absl::StrCat("no blueprint id for ", d.region);
  }
  for (const std::string& region : asked) {
    if (answered.count(region) == 0) return absl::StrCat("no blueprint for ", region);
  }
  return "";
}

SubmitFailure ClassifySubmitFailure(const absl::Status& status) {
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
      if (IsTencentTransient(api->code)) return SubmitFailure::kOutcomeUnknown;
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

struct Submitter::Attempt {
  Leadership leadership = Leadership::Following();
  uint64_t generation = 0;
  tencent::SyncBlueprintRequest request;
  absl::Time call_deadline = absl::InfiniteFuture();
  bool lease_bounded = false;  // the call's deadline is the lease's, not the caller's
  // A policy's job waits for rate-limit capacity behind callers' own jobs.
  tencent::CallPriority priority = tencent::CallPriority::kForeground;
};

bool Submitter::Begin(const std::string& name, Attempt* attempt) {
  bool expired = false;
  const bool due = table_->Locked([&](TableState& s) {
    if (s.stopping || !s.leadership.leading()) return false;
    JobEntry* e = s.Find(name, s.generation);
    if (e == nullptr || e->submit_in_flight || e->rec.phase() != JobRecord::NOT_SUBMITTED ||
        e->rec.job().state() != v1::SyncJob::QUEUED || !s.OwnsSource(*e)) {
      return false;
    }
    attempt->leadership = s.leadership;
    attempt->generation = s.generation;
    const absl::Time now = steps_->clock()->Now();
    if (now >= FromProto(e->rec.job().deadline())) {
      expired = true;
      return false;
    }
    e->rec.set_phase(JobRecord::SUBMITTING);
    *e->rec.mutable_submit_attempt_time() = ToProto(now);
    e->rec.set_submit_attempts(e->rec.submit_attempts() + 1);
    e->Touch(now);
    // Nothing else may act on the job until the outcome is known.
    e->submit_in_flight = true;
    ++s.in_flight;
    if (!e->waiters.empty()) attempt->call_deadline = e->LatestReplyBy();
    if (!e->rec.job().policy().empty()) attempt->priority = tencent::CallPriority::kBackground;
    attempt->request.region = e->rec.job().source_region();
    attempt->request.blueprint_id = e->rec.job().blueprint_id();
    for (const auto& d : e->rec.job().destinations()) {
      attempt->request.destination_regions.push_back(d.region());
    }
    ++s.stats.sync_calls;
    return true;
  });
  if (expired) {
    steps_->Fail(name, attempt->generation,
                 absl::DeadlineExceededError("the job could not be submitted before its deadline"));
  }
  return due;
}

void Submitter::Run(const std::string& name) {
  if (std::optional<Attempt> attempt = Prepare(name)) Send(name, *attempt);
}

bool Submitter::RunHandingOffTheCall(const std::string& name, Executor* calls) {
  std::optional<Attempt> attempt = Prepare(name);
  if (!attempt) return false;
  auto shared = std::make_shared<Attempt>(*std::move(attempt));
  if (calls->Post([this, name, shared] { Send(name, *shared); })) return true;
  // Stopping: the call was never sent, and the job stays SUBMITTING in the
  // store, which the next start reconciles like any unknown outcome.
  table_->Locked([&](TableState& s) {
    --s.in_flight;
    JobEntry* e = s.Find(name, shared->generation);
    if (e == nullptr) return;
    e->submit_in_flight = false;
    s.Reply(*e);
  });
  log::Warn("shutting down before the SyncBlueprint call; the job is reconciled after restart",
            {{"job", name}});
  return true;
}

std::optional<Submitter::Attempt> Submitter::Prepare(const std::string& name) {
  Attempt attempt;
  if (!Begin(name, &attempt)) return std::nullopt;
  // Shutdown waits for in_flight: until the outcome is written and answered
  // (Send), or here, until it is known that nothing is sent.
  absl::Cleanup not_sending = [this] { table_->Locked([](TableState& s) { --s.in_flight; }); };
  // This write is what makes submission at-most-once: if it is not durable,
  // do not send. Nor while the store reports it cannot be written, before
  // or just after this write: the outcome could not be recorded either.
  const StoreHealth* const health = steps_->options().store_health;
  const auto writable = [health] { return health ? health->Check() : absl::OkStatus(); };
  absl::Status written = writable();
  if (written.ok()) written = writer_->Write(name, attempt.generation, /*publish=*/false);
  if (written.ok()) written = writable();
  if (!written.ok()) {
    log::Error("could not record submission attempt; not submitting",
               {{"job", name}, {"error", written.message()}});
    // Its caller is answered below: a new job's record must be on disk
    // first (CreateJobSyncLater). If even that fails, the store is reported
    // damaged (nothing is submitted until a restart) and the caller is told
    // QUEUED all the same: the job is committed (a restart of the process
    // finds it; a machine crash may not), and an error would make a caller
    // without a request_id record it twice.
    if (absl::Status synced = writer_->Sync(); !synced.ok()) {
      log::Error("could not flush the job's record to disk",
                 {{"job", name}, {"error", synced.message()}});
    }
    const absl::Time now = steps_->clock()->Now();
    absl::Time retry_at = absl::InfiniteFuture();
    bool cancelled = false;
    table_->Locked([&](TableState& s) {
      JobEntry* e = s.Find(name, attempt.generation);
      if (e == nullptr) return;
      e->submit_in_flight = false;
      e->rec.set_phase(JobRecord::NOT_SUBMITTED);
      e->rec.set_submit_attempts(e->rec.submit_attempts() - 1);
      e->Touch(now);
      if (e->rec.job().state() == v1::SyncJob::CANCELLING) {
        SettleCancel(e->rec, now);  // cancelled meanwhile, and nothing was sent
        cancelled = true;
        return;
      }
      ++e->transient_failures;
      s.Reply(*e);
      retry_at = now + steps_->BackoffFor(e->transient_failures);
    });
    if (cancelled) steps_->Commit(name, attempt.generation);
    if (retry_at != absl::InfiniteFuture()) steps_->ScheduleSubmit(name, retry_at);
    return std::nullopt;
  }

  // Cancelled while SUBMITTING was being written.
  if (CancelledBeforeTheCall(name, attempt.generation)) return std::nullopt;
  std::move(not_sending).Cancel();
  return attempt;
}

bool Submitter::CancelledBeforeTheCall(const std::string& name, uint64_t generation) {
  const bool cancelled = table_->Locked([&](TableState& s) {
    JobEntry* e = s.Find(name, generation);
    if (e == nullptr || e->rec.job().state() != v1::SyncJob::CANCELLING) return false;
    e->submit_in_flight = false;
    e->rec.set_phase(JobRecord::NOT_SUBMITTED);
    const absl::Time now = steps_->clock()->Now();
    SettleCancel(e->rec, now);
    e->Touch(now);
    return true;
  });
  if (cancelled) {
    log::Info("cancelled before its call went out; not submitting", {{"job", name}});
    steps_->Commit(name, generation);
  }
  return cancelled;
}

void Submitter::Send(const std::string& name, Attempt attempt) {
  absl::Cleanup call_done = [this] { table_->Locked([](TableState& s) { --s.in_flight; }); };
  // Cancelled while it waited for a worker (or for the intake to hand it
  // over).
  if (CancelledBeforeTheCall(name, attempt.generation)) return;
  LeaderElector* const elector = steps_->options().elector;
  const int64_t epoch = attempt.leadership.epoch();
  if (attempt.leadership.leased()) {
    // No attempt (retries included) may start once the lease may have run
    // out; an attempt in flight is cut off then, which is an unknown outcome.
    const absl::Time lease_end = elector->ValidUntil(epoch);
    if (lease_end < attempt.call_deadline) {
      attempt.call_deadline = lease_end;
      attempt.lease_bounded = true;
    }
    if (!elector->Holds(epoch)) {
      OnLeaseLapsed(name, attempt);
      return;
    }
  }
  tencent::CallOptions call;
  call.deadline = attempt.call_deadline;
  call.priority = attempt.priority;
  const absl::StatusOr<tencent::SyncBlueprintResponse> result =
      client_->SyncBlueprint(attempt.request, call);
  if (const auto api = result.ok() ? std::nullopt : tencent::GetApiError(result.status());
      api && api->code == tencent::kAbandonedCode) {
    OnAbandoned(name, attempt, result.status());
    return;
  }

  const bool ours = table_->Locked([&](TableState& s) {
    JobEntry* e = s.Find(name, attempt.generation);
    if (e != nullptr) e->submit_in_flight = false;
    return e != nullptr;
  });
  if (!ours) {
    // Leadership changed meanwhile: the job is SUBMITTING in the store, and
    // the leader reconciles it.
    log::Warn("leadership changed while submitting; the leader reconciles the job",
              {{"job", name}, {"outcome", result.ok() ? "accepted" : result.status().message()}});
    return;
  }
  if (result.ok()) {
    if (std::string wrong = AnswerMismatch(attempt.request, *result); !wrong.empty()) {
      // The call executed, but the answer does not say which copy is
      // where: recording it as it is would lose a paid copy (a region
      // missing or named twice). Settle it like any unknown outcome: the
      // reconciler finds the copies upstream.
      tencent::ApiError api;
      api.kind = tencent::ErrorKind::kMalformedResponse;
      api.code = "ClientError.ParseJsonError";
      api.action = "SyncBlueprint";
      api.request_id = result->request_id;
      api.message = absl::StrCat("SyncBlueprint answer does not match the request: ", wrong);
      OnFailed(name, attempt, tencent::MakeStatus(api));
      return;
    }
    OnAccepted(name, attempt, *result);
  } else {
    OnFailed(name, attempt, result.status());
  }
}

void Submitter::OnAbandoned(const std::string& name, const Attempt& attempt,
                            const absl::Status& error) {
  // Cut off at shutdown's drain deadline, sent or not. The job stays
  // SUBMITTING in the store, which is what makes the next start (or leader)
  // reconcile it like any other unknown outcome; writing anything now would
  // only hold the exit up.
  table_->Locked([&](TableState& s) {
    JobEntry* e = s.Find(name, attempt.generation);
    if (e == nullptr) return;
    e->submit_in_flight = false;
    // Callers (the policy controller among them, which shutdown waits for)
    // get the job as it was last written.
    s.Reply(*e);
  });
  log::Warn("SyncBlueprint call abandoned at shutdown; the job is reconciled after restart",
            {{"job", name}, {"error", error.message()}});
}

void Submitter::OnLeaseLapsed(const std::string& name, const Attempt& attempt) {
  // The lease may have run out since this job was recorded SUBMITTING:
  // another replica could be leading, so do not call. Whoever leads next
  // finds the job SUBMITTING and reconciles it (nothing was sent, so it
  // resubmits).
  log::Warn("leadership lapsed before submitting; not calling", {{"job", name}});
  const bool ours = table_->Locked([&](TableState& s) {
    JobEntry* e = s.Find(name, attempt.generation);
    if (e == nullptr) return false;
    // Still our term (the lease may be renewed late): reconcile as if the
    // call had been made, so the job is not left SUBMITTING.
    e->submit_in_flight = false;
    e->MarkOutcomeUnknown();
    e->Touch(steps_->clock()->Now());
    return true;
  });
  if (!ours) return;
  steps_->Commit(name, attempt.generation);
  steps_->ScheduleReconcile(name, steps_->clock()->Now() + steps_->options().reconcile_grace);
}

void Submitter::OnAccepted(const std::string& name, const Attempt& attempt,
                           const tencent::SyncBlueprintResponse& response) {
  table_->Locked([&](TableState& s) {
    JobEntry* e = s.Find(name, attempt.generation);
    if (e == nullptr) return;
    const absl::Time now = steps_->clock()->Now();
    v1::SyncJob* job = e->rec.mutable_job();
    std::map<std::string, std::string> ids;
    for (const auto& d : response.destinations) ids[d.region] = d.blueprint_id;
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
    job->set_upstream_request_id(response.request_id);
    *job->mutable_submit_time() = ToProto(now);
    e->rec.set_phase(JobRecord::SUBMITTED);
    UpdateSubmittedJobState(e->rec, now);  // a job cancelled meanwhile deletes its copies
    e->Touch(now);
    // New copies are pending: poll them as soon as the budget allows rather
    // than after a full poll interval of an idle tracker.
    s.wake_tracker = true;
    log::Info("job submitted", {{"job", name},
                                {"upstream_request_id", response.request_id},
                                {"blueprint_id", job->blueprint_id()}});
  });
  steps_->Commit(name, attempt.generation);
}

Submitter::Next Submitter::PlanAfterBusy(JobEntry& e, absl::Time now) {
  const std::string& name = e.rec.job().name();
  if (e.resubmitted) {
    // Resubmitted because no copy of an earlier, ambiguous call was seen;
    // "busy" may mean that call has executed after all. Retrying on busy
    // could then sync twice: look again instead.
    e.resubmitted = false;
    e.MarkOutcomeUnknown();
    log::Warn("source busy after a resubmission; reconciling again", {{"job", name}});
    return {Next::kReconcile, now + steps_->options().reconcile_grace};
  }
  if (e.busy_since == absl::InfiniteFuture()) e.busy_since = now;
  if (now - e.busy_since >= steps_->options().busy_window) {
    e.rec.set_phase(JobRecord::REJECTED);
    return {Next::kFail, now};
  }
  e.rec.set_phase(JobRecord::NOT_SUBMITTED);
  log::Info("source blueprint busy upstream; will retry",
            {{"job", name}, {"blueprint_id", e.rec.job().blueprint_id()}});
  return {Next::kSubmit, now + steps_->options().busy_retry_interval};
}

Submitter::Next Submitter::PlanAfterFailure(JobEntry& e, const Attempt& attempt,
                                            const absl::Status& error, absl::Time now) {
  const std::string& name = e.rec.job().name();
  const auto api = tencent::GetApiError(error);
  switch (ClassifySubmitFailure(error)) {
    case SubmitFailure::kNotExecutedTransient: {
      e.rec.set_phase(JobRecord::NOT_SUBMITTED);
      const bool caller_deadline = !attempt.lease_bounded && api &&
                                   api->kind == ErrorKind::kLocal &&
                                   api->code == "ClientError.DeadlineExceeded";
      if (!caller_deadline) ++e.transient_failures;
      // Either the caller's deadline would pass waiting for capacity, or the
      // upstream is unreachable for now: answer QUEUED and keep going.
      const absl::Time when =
          caller_deadline ? now : now + steps_->BackoffFor(e.transient_failures);
      log::Warn("submission not sent; will retry",
                {{"job", name}, {"error", error.message()}, {"retry_at", TimeText(when)}});
      return {Next::kSubmit, when};
    }
    case SubmitFailure::kSourceBusy:
      return PlanAfterBusy(e, now);
    case SubmitFailure::kOutcomeUnknown:
      e.MarkOutcomeUnknown();
      if (api) e.rec.mutable_job()->set_upstream_request_id(api->request_id);
      log::Warn("submission outcome unknown; reconciling",
                {{"job", name}, {"error", error.message()}});
      return {Next::kReconcile, now + steps_->options().reconcile_grace};
    case SubmitFailure::kRejected:
      e.rec.set_phase(JobRecord::REJECTED);
      log::Info("submission rejected", {{"job", name}, {"error", error.message()}});
      return {Next::kFail, now};
  }
  return {Next::kReconcile, now + steps_->options().reconcile_grace};
}

void Submitter::OnFailed(const std::string& name, const Attempt& attempt,
                         const absl::Status& error) {
  const absl::Time now = steps_->clock()->Now();
  const std::optional<Next> next = table_->Locked([&](TableState& s) -> std::optional<Next> {
    JobEntry* e = s.Find(name, attempt.generation);
    if (e == nullptr) return std::nullopt;
    e->last_submit_error = std::string(error.message()).substr(0, 500);
    Next planned = PlanAfterFailure(*e, attempt, error, now);
    e->Touch(now);
    if (e->rec.job().state() == v1::SyncJob::CANCELLING && planned.then != Next::kReconcile) {
      // Cancelled while in flight, and the call certainly did not execute.
      if (planned.then == Next::kFail) e->rec.set_phase(JobRecord::REJECTED);
      SettleCancel(e->rec, now);
      planned = {Next::kCommit, now};
    }
    return planned;
  });
  if (!next) return;
  switch (next->then) {
    case Next::kCommit:
      steps_->Commit(name, attempt.generation);
      return;
    case Next::kFail:
      steps_->Fail(name, attempt.generation, PermanentFailure(error));
      return;
    case Next::kSubmit:
      steps_->Commit(name, attempt.generation);
      steps_->ScheduleSubmit(name, next->when);
      return;
    case Next::kReconcile:
      steps_->Commit(name, attempt.generation);
      steps_->ScheduleReconcile(name, next->when);
      return;
  }
}

}  // namespace blueprintsync::jobs
