#include "service/server/blueprint_sync_service.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/common/display.h"
#include "service/jobs/job_state.h"
#include "service/server/grpc_errors.h"
#include "service/server/list_query.h"
#include "service/tencent/regions.h"

namespace blueprintsync::server {
namespace {

constexpr size_t kMaxRequestIdBytes = 64;

std::vector<tencent::FieldViolation> Validate(const v1::SyncBlueprintRequest& r) {
  // A 1 MiB request can carry ~300k destination entries. Only the first
  // kMaxDestinationRegions get the per-entry rules (one violation each and a
  // duplicate search that is quadratic in the count); the count itself is
  // reported as one violation, so the error stays small and cheap.
  const int all = r.destination_regions_size();
  const int checked = std::min(all, tencent::kMaxDestinationRegions);
  std::vector<std::string> destinations(r.destination_regions().begin(),
                                        r.destination_regions().begin() + checked);
  auto violations = tencent::ValidateSyncRequest(r.source_region(), r.blueprint_id(), destinations);
  if (all > checked) {
    auto first_entry = std::find_if(violations.begin(), violations.end(), [](const auto& v) {
      return absl::StartsWith(v.field, "destination_regions");
    });
    violations.insert(
        first_entry,
        {"destination_regions", "TOO_MANY_DESTINATIONS",
         absl::StrCat("destination_regions lists ", all, " regions; SyncBlueprint accepts at most ",
                      tencent::kMaxDestinationRegions, " per request.")});
  }
  if (!r.request_id().empty() &&
      (r.request_id().size() > kMaxRequestIdBytes || !jobs::IsUuid(r.request_id()))) {
    violations.push_back({"request_id", "REQUEST_ID_MALFORMED",
                          absl::StrCat("request_id \"", Shown(r.request_id()),
                                       "\" is not a UUID such as "
                                       "\"3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c\"")});
  }
  return violations;
}

absl::Time ReplyBy(const grpc::CallbackServerContext* context, absl::Duration margin) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline) - margin;
}

// Streams a job: its current state, then each change, then OK after the
// terminal state. Engine callbacks arrive under the engine's lock, so they
// only queue and start writes.
class WatchReactor final : public grpc::ServerWriteReactor<v1::SyncJob> {
 public:
  WatchReactor(jobs::JobEngine* engine, const std::string& name) : engine_(engine) {
    const uint64_t id = engine_->WatchJob(name, [this](absl::StatusOr<v1::SyncJob> job) {
      absl::MutexLock lock(&mu_);
      if (!job.ok() && pending_.empty() && !writing_ && current_.name().empty()) {
        FinishLocked(ToGrpcStatus(job.status()));
        return;
      }
      if (!job.ok()) {
        closing_ = true;
      } else {
        pending_.push_back(std::move(*job));
      }
      MaybeWriteLocked();
    });
    absl::MutexLock lock(&mu_);
    watch_id_ = id;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was closed"));
      return;
    }
    if (jobs::IsTerminal(current_.state())) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!writing_) FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }

  void OnDone() override {
    uint64_t id = 0;
    {
      absl::MutexLock lock(&mu_);
      id = watch_id_;
    }
    engine_->Unwatch(id);
    delete this;
  }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (cancelled_) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
    if (!pending_.empty()) {
      current_ = std::move(pending_.front());
      pending_.pop_front();
      writing_ = true;
      StartWrite(&current_);
      return;
    }
    if (closing_) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "the server is shutting down; watch again to continue"));
    }
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  jobs::JobEngine* const engine_;
  absl::Mutex mu_;
  uint64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::SyncJob> pending_ ABSL_GUARDED_BY(mu_);
  v1::SyncJob current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::Status ValidateJobName(const std::string& name) {
  if (name.empty()) return jobs::InvalidField("name", "NAME_REQUIRED", "name is required");
  constexpr absl::string_view kPrefix = "syncJobs/";
  if (!absl::StartsWith(name, kPrefix) ||
      !jobs::IsUuid(absl::string_view(name).substr(kPrefix.size()))) {
    return jobs::InvalidField(
        "name", "NAME_MALFORMED",
        absl::StrCat("name \"", Shown(name), "\" is not of the form syncJobs/{uuid}"));
  }
  return absl::OkStatus();
}

BlueprintSyncService::BlueprintSyncService(ServiceOptions options, jobs::JobEngine* engine,
                                           jobs::JobStore* store)
    : options_(options), engine_(engine), store_(store) {}

grpc::Status BlueprintSyncService::Authorize(grpc::CallbackServerContext* context,
                                             absl::string_view method, Access access) const {
  if (options_.authz == nullptr) return grpc::Status::OK;
  const std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  return ToGrpcStatus(options_.authz->Check(method, access, PeerFromAuthContext(auth.get())));
}

grpc::ServerUnaryReactor* BlueprintSyncService::SyncBlueprint(
    grpc::CallbackServerContext* context, const v1::SyncBlueprintRequest* request,
    v1::SyncJob* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = Authorize(context, "SyncBlueprint", Access::kWrite); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  const auto violations = Validate(*request);
  if (!violations.empty()) {
    reactor->Finish(ValidationError(violations));
    return reactor;
  }
  v1::SyncBlueprintRequest normalized = *request;
  normalized.set_request_id(absl::AsciiStrToLower(request->request_id()));
  if (request->validate_only()) {
    // What the job would look like; nothing is recorded or sent.
    response->set_state(v1::SyncJob::STATE_UNSPECIFIED);
    response->set_source_region(normalized.source_region());
    response->set_blueprint_id(normalized.blueprint_id());
    response->set_request_id(normalized.request_id());
    for (const auto& region : normalized.destination_regions()) {
      auto* d = response->add_destinations();
      d->set_region(region);
      d->set_state(v1::Destination::PENDING);
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  engine_->Submit(normalized, ReplyBy(context, options_.reply_margin),
                  [reactor, response](absl::StatusOr<v1::SyncJob> job) {
                    if (!job.ok()) {
                      reactor->Finish(ToGrpcStatus(job.status()));
                      return;
                    }
                    *response = std::move(*job);
                    reactor->Finish(grpc::Status::OK);
                  });
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::GetSyncJob(grpc::CallbackServerContext* context,
                                                           const v1::GetSyncJobRequest* request,
                                                           v1::SyncJob* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = Authorize(context, "GetSyncJob", Access::kRead); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  if (absl::Status s = ValidateJobName(request->name()); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  engine_->GetJob(request->name(), [reactor, response](absl::StatusOr<v1::SyncJob> job) {
    if (!job.ok()) {
      reactor->Finish(ToGrpcStatus(job.status()));
      return;
    }
    *response = std::move(*job);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* BlueprintSyncService::ListSyncJobs(grpc::CallbackServerContext* context,
                                                             const v1::ListSyncJobsRequest* request,
                                                             v1::ListSyncJobsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status s = Authorize(context, "ListSyncJobs", Access::kRead); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  auto query = ParseListRequest(*request);
  if (!query.ok()) {
    reactor->Finish(ToGrpcStatus(query.status()));
    return reactor;
  }
  auto page = store_->ListJobs(*query);
  if (!page.ok()) {
    reactor->Finish(ToGrpcStatus(
        absl::UnavailableError(absl::StrCat("could not read jobs: ", page.status().message()))));
    return reactor;
  }
  for (auto& rec : page->records) *response->add_sync_jobs() = std::move(*rec.mutable_job());
  if (page->next_before_sequence) {
    response->set_next_page_token(MakePageToken(*page->next_before_sequence, request->filter()));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::SyncJob>* BlueprintSyncService::WatchSyncJob(
    grpc::CallbackServerContext* context, const v1::WatchSyncJobRequest* request) {
  class Rejected final : public grpc::ServerWriteReactor<v1::SyncJob> {
   public:
    explicit Rejected(const grpc::Status& s) { Finish(s); }
    void OnDone() override { delete this; }
  };
  if (grpc::Status s = Authorize(context, "WatchSyncJob", Access::kRead); !s.ok()) {
    return new Rejected(s);
  }
  if (absl::Status s = ValidateJobName(request->name()); !s.ok()) {
    return new Rejected(ToGrpcStatus(s));
  }
  return new WatchReactor(engine_, request->name());
}

}  // namespace blueprintsync::server
