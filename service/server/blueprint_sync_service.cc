#include "service/server/blueprint_sync_service.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
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

// Answers a unary call with the job, or with the error mapped to gRPC. The
// callback may run after the handler has returned, on another thread: it
// holds only what gRPC keeps valid until Finish.
jobs::JobService::JobCallback FinishWithJob(grpc::ServerUnaryReactor* reactor,
                                            v1::SyncJob* response) {
  return [reactor, response](absl::StatusOr<v1::SyncJob> job) {
    if (!job.ok()) {
      reactor->Finish(ToGrpcStatus(job.status()));
      return;
    }
    *response = *std::move(job);
    reactor->Finish(grpc::Status::OK);
  };
}

// Streams a job: its current state, then each change, then OK after the
// terminal state; a status that ends the watch (the job does not exist, the
// server is shutting down) ends the stream once the versions before it are
// written. Watch callbacks may run inside WatchJob (from the constructor), or
// on a service thread under the service's lock concurrently with OnWriteDone
// and OnCancel, so they only queue and start writes. gRPC runs the reactions
// on its own threads, never inside StartWrite or Finish, so starting those
// under mu_ cannot re-enter it.
class WatchReactor final : public grpc::ServerWriteReactor<v1::SyncJob> {
 public:
  WatchReactor(jobs::JobService* jobs, const std::string& name) : jobs_(jobs) {
    const uint64_t id = jobs_->WatchJob(name, [this](absl::StatusOr<v1::SyncJob> job) {
      absl::MutexLock lock(&mu_);
      if (job.ok()) {
        received_version_ = true;
        pending_.push_back(*std::move(job));
      } else if (!end_.has_value()) {
        // An error before any version says why the watch could not start and
        // carries the rich details of any other failed call. One after
        // versions only ends the stream (the server is going away), and
        // watchers have always received that as the bare code and message.
        end_ = received_version_ ? grpc::Status(static_cast<grpc::StatusCode>(job.status().code()),
                                                std::string(job.status().message()))
                                 : ToGrpcStatus(job.status());
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
    // Not under mu_: Unwatch waits for a running callback, which takes mu_.
    // Once it returns no callback can touch this reactor any more.
    jobs_->Unwatch(id);
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
    if (end_.has_value()) FinishLocked(*end_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  jobs::JobService* const jobs_;
  absl::Mutex mu_;
  uint64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::SyncJob> pending_ ABSL_GUARDED_BY(mu_);
  v1::SyncJob current_ ABSL_GUARDED_BY(mu_);
  // The status the service ended the watch with; sent after pending_.
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool received_version_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
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

BlueprintSyncService::BlueprintSyncService(ServiceOptions options, jobs::JobService* jobs)
    : options_(options), jobs_(jobs) {}

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
  jobs_->Submit(normalized, ReplyBy(context, options_.reply_margin),
                FinishWithJob(reactor, response));
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
  jobs_->GetJob(request->name(), FinishWithJob(reactor, response));
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
  // The request is copied: the page may arrive after this handler returned.
  jobs_->ListJobs(
      *query, [reactor, response, list_request = *request](absl::StatusOr<jobs::JobPage> page) {
        if (!page.ok()) {
          reactor->Finish(ToGrpcStatus(absl::UnavailableError(
              absl::StrCat("could not read jobs: ", page.status().message()))));
          return;
        }
        for (auto& rec : page->records) *response->add_sync_jobs() = std::move(*rec.mutable_job());
        if (page->next_cursor) {
          response->set_next_page_token(MakePageToken(*page->next_cursor, list_request));
        }
        reactor->Finish(grpc::Status::OK);
      });
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
  return new WatchReactor(jobs_, request->name());
}

}  // namespace blueprintsync::server
