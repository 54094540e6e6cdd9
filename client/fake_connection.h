// FakeConnection: a scripted BlueprintSyncConnection for the CLI's unit tests.
// Unary calls answer from fields the test sets; SyncBlueprint, RetrySyncJob
// and GetSyncPolicy first use up their queue of answers (to script client
// retries and polls), then answer with the fixed result. Each WatchSyncJob call plays the next
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

// A SyncPolicy from protobuf text format, the same way.
inline blueprintsync::v1::SyncPolicy ParsePolicy(const std::string& text) {
  blueprintsync::v1::SyncPolicy policy;
  if (!google::protobuf::TextFormat::ParseFromString(text, &policy)) policy.Clear();
  return policy;
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
  absl::StatusOr<blueprintsync::v1::SyncPolicy> CreateSyncPolicy(
      const blueprintsync::v1::CreateSyncPolicyRequest& request) override {
    create_policy_requests.push_back(request);
    return create_policy_result;
  }
  // Answers from get_policy_results while there are any (to script a
  // `policy get --wait`), then get_policy_result.
  absl::StatusOr<blueprintsync::v1::SyncPolicy> GetSyncPolicy(
      const blueprintsync::v1::GetSyncPolicyRequest& request) override {
    get_policy_requests.push_back(request);
    if (get_policy_results.empty()) return get_policy_result;
    auto r = std::move(get_policy_results.front());
    get_policy_results.pop_front();
    return r;
  }
  absl::StatusOr<blueprintsync::v1::ListSyncPoliciesResponse> ListSyncPolicies(
      const blueprintsync::v1::ListSyncPoliciesRequest& request) override {
    list_policies_requests.push_back(request);
    if (list_policies_results.empty()) {
      return absl::FailedPreconditionError("test: unexpected ListSyncPolicies");
    }
    auto r = list_policies_results.front();
    list_policies_results.pop_front();
    return r;
  }
  absl::StatusOr<blueprintsync::v1::SyncPolicy> UpdateSyncPolicy(
      const blueprintsync::v1::UpdateSyncPolicyRequest& request) override {
    update_policy_requests.push_back(request);
    return update_policy_result;
  }
  absl::Status DeleteSyncPolicy(
      const blueprintsync::v1::DeleteSyncPolicyRequest& request) override {
    delete_policy_requests.push_back(request);
    return delete_policy_result;
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
  absl::StatusOr<blueprintsync::v1::SyncPolicy> create_policy_result =
      absl::FailedPreconditionError("test: unexpected CreateSyncPolicy");
  std::deque<absl::StatusOr<blueprintsync::v1::SyncPolicy>> get_policy_results;
  absl::StatusOr<blueprintsync::v1::SyncPolicy> get_policy_result =
      absl::FailedPreconditionError("test: unexpected GetSyncPolicy");
  std::deque<absl::StatusOr<blueprintsync::v1::ListSyncPoliciesResponse>> list_policies_results;
  absl::StatusOr<blueprintsync::v1::SyncPolicy> update_policy_result =
      absl::FailedPreconditionError("test: unexpected UpdateSyncPolicy");
  absl::Status delete_policy_result =
      absl::FailedPreconditionError("test: unexpected DeleteSyncPolicy");

  std::vector<blueprintsync::v1::SyncBlueprintRequest> sync_requests;
  std::vector<blueprintsync::v1::GetSyncJobRequest> get_requests;
  std::vector<blueprintsync::v1::ListSyncJobsRequest> list_requests;
  std::vector<blueprintsync::v1::WatchSyncJobRequest> watch_requests;
  std::vector<blueprintsync::v1::CancelSyncJobRequest> cancel_requests;
  std::vector<blueprintsync::v1::RetrySyncJobRequest> retry_requests;
  std::vector<blueprintsync::v1::DeleteSyncJobRequest> delete_requests;
  std::vector<blueprintsync::v1::CreateSyncPolicyRequest> create_policy_requests;
  std::vector<blueprintsync::v1::GetSyncPolicyRequest> get_policy_requests;
  std::vector<blueprintsync::v1::ListSyncPoliciesRequest> list_policies_requests;
  std::vector<blueprintsync::v1::UpdateSyncPolicyRequest> update_policy_requests;
  std::vector<blueprintsync::v1::DeleteSyncPolicyRequest> delete_policy_requests;

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
  absl::StatusOr<blueprintsync::v1::SyncPolicy> CreateSyncPolicy(
      const blueprintsync::v1::CreateSyncPolicyRequest& request) override {
    return target_->CreateSyncPolicy(request);
  }
  absl::StatusOr<blueprintsync::v1::SyncPolicy> GetSyncPolicy(
      const blueprintsync::v1::GetSyncPolicyRequest& request) override {
    return target_->GetSyncPolicy(request);
  }
  absl::StatusOr<blueprintsync::v1::ListSyncPoliciesResponse> ListSyncPolicies(
      const blueprintsync::v1::ListSyncPoliciesRequest& request) override {
    return target_->ListSyncPolicies(request);
  }
  absl::StatusOr<blueprintsync::v1::SyncPolicy> UpdateSyncPolicy(
      const blueprintsync::v1::UpdateSyncPolicyRequest& request) override {
    return target_->UpdateSyncPolicy(request);
  }
  absl::Status DeleteSyncPolicy(
      const blueprintsync::v1::DeleteSyncPolicyRequest& request) override {
    return target_->DeleteSyncPolicy(request);
  }

 private:
  cli::BlueprintSyncConnection* const target_;
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_CLIENT_FAKE_CONNECTION_H_
