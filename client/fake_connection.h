// FakeConnection: a scripted BlueprintSyncConnection for the CLI's unit tests.
// Unary calls answer from fields the test sets; SyncBlueprint and RetrySyncJob
// first use up their queue of answers (to script client retries), then
// answer with the fixed result. Each WatchSyncJob call plays the next
// WatchScript (or fails loudly when the test did not expect it).
#ifndef BLUEPRINTSYNC_CLIENT_FAKE_CONNECTION_H_
#define BLUEPRINTSYNC_CLIENT_FAKE_CONNECTION_H_

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/connection.h"
#include "google/protobuf/text_format.h"

namespace blueprintsync::testing {

// A SyncJob from protobuf text format; an empty job if the text is malformed
// (the test's expectations then fail).
inline blueprintsync::v1::SyncJob ParseJob(const std::string& text) {
  blueprintsync::v1::SyncJob job;
  if (!google::protobuf::TextFormat::ParseFromString(text, &job)) job.Clear();
  return job;
}

struct WatchScript {
  absl::Status open_status;  // non-OK: WatchSyncJob itself fails
  std::vector<blueprintsync::v1::SyncJob> jobs;
  absl::Status finish_status;
};

class FakeConnection final : public cli::BlueprintSyncConnection {
 public:
  absl::StatusOr<blueprintsync::v1::SyncJob> SyncBlueprint(
      const blueprintsync::v1::SyncBlueprintRequest& request) override {
    sync_requests.push_back(request);
    return Next(&sync_results, sync_result);
  }
  absl::StatusOr<blueprintsync::v1::SyncJob> GetSyncJob(
      const blueprintsync::v1::GetSyncJobRequest& request) override {
    get_requests.push_back(request);
    return get_result;
  }
  absl::StatusOr<blueprintsync::v1::ListSyncJobsResponse> ListSyncJobs(
      const blueprintsync::v1::ListSyncJobsRequest& request) override {
    list_requests.push_back(request);
    if (list_results.empty()) return absl::FailedPreconditionError("test: unexpected ListSyncJobs");
    auto r = list_results.front();
    list_results.pop_front();
    return r;
  }
  absl::StatusOr<std::unique_ptr<cli::SyncJobStream>> WatchSyncJob(
      const blueprintsync::v1::WatchSyncJobRequest& request) override {
    watch_requests.push_back(request);
    if (watch_scripts.empty()) {
      return absl::FailedPreconditionError("test: unexpected WatchSyncJob");
    }
    WatchScript script = std::move(watch_scripts.front());
    watch_scripts.pop_front();
    if (!script.open_status.ok()) return script.open_status;
    return std::unique_ptr<cli::SyncJobStream>(new Stream(std::move(script)));
  }
  absl::StatusOr<blueprintsync::v1::SyncJob> CancelSyncJob(
      const blueprintsync::v1::CancelSyncJobRequest& request) override {
    cancel_requests.push_back(request);
    return cancel_result;
  }
  absl::StatusOr<blueprintsync::v1::SyncJob> RetrySyncJob(
      const blueprintsync::v1::RetrySyncJobRequest& request) override {
    retry_requests.push_back(request);
    return Next(&retry_results, retry_result);
  }
  absl::Status DeleteSyncJob(const blueprintsync::v1::DeleteSyncJobRequest& request) override {
    delete_requests.push_back(request);
    return delete_result;
  }

  std::deque<absl::StatusOr<blueprintsync::v1::SyncJob>> sync_results;
  absl::StatusOr<blueprintsync::v1::SyncJob> sync_result =
      absl::FailedPreconditionError("test: unexpected SyncBlueprint");
  absl::StatusOr<blueprintsync::v1::SyncJob> get_result =
      absl::FailedPreconditionError("test: unexpected GetSyncJob");
  std::deque<absl::StatusOr<blueprintsync::v1::ListSyncJobsResponse>> list_results;
  std::deque<WatchScript> watch_scripts;
  absl::StatusOr<blueprintsync::v1::SyncJob> cancel_result =
      absl::FailedPreconditionError("test: unexpected CancelSyncJob");
  std::deque<absl::StatusOr<blueprintsync::v1::SyncJob>> retry_results;
  absl::StatusOr<blueprintsync::v1::SyncJob> retry_result =
      absl::FailedPreconditionError("test: unexpected RetrySyncJob");
  absl::Status delete_result = absl::FailedPreconditionError("test: unexpected DeleteSyncJob");

  std::vector<blueprintsync::v1::SyncBlueprintRequest> sync_requests;
  std::vector<blueprintsync::v1::GetSyncJobRequest> get_requests;
  std::vector<blueprintsync::v1::ListSyncJobsRequest> list_requests;
  std::vector<blueprintsync::v1::WatchSyncJobRequest> watch_requests;
  std::vector<blueprintsync::v1::CancelSyncJobRequest> cancel_requests;
  std::vector<blueprintsync::v1::RetrySyncJobRequest> retry_requests;
  std::vector<blueprintsync::v1::DeleteSyncJobRequest> delete_requests;

 private:
  using JobOrError = absl::StatusOr<blueprintsync::v1::SyncJob>;
  static JobOrError Next(std::deque<JobOrError>* queue, const JobOrError& otherwise) {
    if (queue->empty()) return otherwise;
    JobOrError r = std::move(queue->front());
    queue->pop_front();
    return r;
  }

  class Stream final : public cli::SyncJobStream {
   public:
    explicit Stream(WatchScript script) : script_(std::move(script)) {}
    bool Read(blueprintsync::v1::SyncJob* job) override {
      if (next_ >= script_.jobs.size()) return false;
      *job = script_.jobs[next_++];
      return true;
    }
    absl::Status Finish() override { return script_.finish_status; }

   private:
    WatchScript script_;
    size_t next_ = 0;
  };
};

// Hands a test-owned connection to code that wants to own one.
class ForwardingConnection final : public cli::BlueprintSyncConnection {
 public:
  explicit ForwardingConnection(cli::BlueprintSyncConnection* target) : target_(target) {}
  absl::StatusOr<blueprintsync::v1::SyncJob> SyncBlueprint(
      const blueprintsync::v1::SyncBlueprintRequest& request) override {
    return target_->SyncBlueprint(request);
  }
  absl::StatusOr<blueprintsync::v1::SyncJob> GetSyncJob(
      const blueprintsync::v1::GetSyncJobRequest& request) override {
    return target_->GetSyncJob(request);
  }
  absl::StatusOr<blueprintsync::v1::ListSyncJobsResponse> ListSyncJobs(
      const blueprintsync::v1::ListSyncJobsRequest& request) override {
    return target_->ListSyncJobs(request);
  }
  absl::StatusOr<std::unique_ptr<cli::SyncJobStream>> WatchSyncJob(
      const blueprintsync::v1::WatchSyncJobRequest& request) override {
    return target_->WatchSyncJob(request);
  }
  absl::StatusOr<blueprintsync::v1::SyncJob> CancelSyncJob(
      const blueprintsync::v1::CancelSyncJobRequest& request) override {
    return target_->CancelSyncJob(request);
  }
  absl::StatusOr<blueprintsync::v1::SyncJob> RetrySyncJob(
      const blueprintsync::v1::RetrySyncJobRequest& request) override {
    return target_->RetrySyncJob(request);
  }
  absl::Status DeleteSyncJob(const blueprintsync::v1::DeleteSyncJobRequest& request) override {
    return target_->DeleteSyncJob(request);
  }

 private:
  cli::BlueprintSyncConnection* const target_;
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_CLIENT_FAKE_CONNECTION_H_
