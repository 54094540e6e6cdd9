// BlueprintSyncConnection: the CLI's view of the blueprint-sync service, one
// virtual per RPC, so command logic (cli.cc, job_watcher.cc) can be tested
// against a fake and the real gRPC wiring lives in one place
// (grpc_connection.cc). Errors are absl::Status values that keep the
// server's rich details (see rpc_error.h).
#ifndef BLUEPRINTSYNC_CLIENT_CONNECTION_H_
#define BLUEPRINTSYNC_CLIENT_CONNECTION_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"

namespace blueprintsync::cli {

// One open WatchSyncJob call.
class SyncJobStream {
 public:
  virtual ~SyncJobStream() = default;
  // Blocks for the next job update; false when the stream has ended.
  virtual bool Read(blueprintsync::v1::SyncJob* job) = 0;
  // How the stream ended; call once, after Read() returned false.
  virtual absl::Status Finish() = 0;
};

class BlueprintSyncConnection {
 public:
  virtual ~BlueprintSyncConnection() = default;
  virtual absl::StatusOr<blueprintsync::v1::SyncJob> SyncBlueprint(
      const blueprintsync::v1::SyncBlueprintRequest& request) = 0;
  virtual absl::StatusOr<blueprintsync::v1::SyncJob> GetSyncJob(
      const blueprintsync::v1::GetSyncJobRequest& request) = 0;
  virtual absl::StatusOr<blueprintsync::v1::ListSyncJobsResponse> ListSyncJobs(
      const blueprintsync::v1::ListSyncJobsRequest& request) = 0;
  // Opens the stream. The connection's timeout bounds only getting connected,
  // never the stream itself: a copy can take an hour.
  virtual absl::StatusOr<std::unique_ptr<SyncJobStream>> WatchSyncJob(
      const blueprintsync::v1::WatchSyncJobRequest& request) = 0;
  virtual absl::StatusOr<blueprintsync::v1::SyncJob> CancelSyncJob(
      const blueprintsync::v1::CancelSyncJobRequest& request) = 0;
  virtual absl::StatusOr<blueprintsync::v1::SyncJob> RetrySyncJob(
      const blueprintsync::v1::RetrySyncJobRequest& request) = 0;
  // The RPC returns google.protobuf.Empty; OK is all there is to say.
  virtual absl::Status DeleteSyncJob(const blueprintsync::v1::DeleteSyncJobRequest& request) = 0;

  // Replication policies (`blueprint-sync policy ...`).
  virtual absl::StatusOr<blueprintsync::v1::SyncPolicy> CreateSyncPolicy(
      const blueprintsync::v1::CreateSyncPolicyRequest& request) = 0;
  virtual absl::StatusOr<blueprintsync::v1::SyncPolicy> GetSyncPolicy(
      const blueprintsync::v1::GetSyncPolicyRequest& request) = 0;
  virtual absl::StatusOr<blueprintsync::v1::ListSyncPoliciesResponse> ListSyncPolicies(
      const blueprintsync::v1::ListSyncPoliciesRequest& request) = 0;
  virtual absl::StatusOr<blueprintsync::v1::SyncPolicy> UpdateSyncPolicy(
      const blueprintsync::v1::UpdateSyncPolicyRequest& request) = 0;
  // google.protobuf.Empty, as DeleteSyncJob.
  virtual absl::Status DeleteSyncPolicy(
      const blueprintsync::v1::DeleteSyncPolicyRequest& request) = 0;
};

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_CONNECTION_H_
