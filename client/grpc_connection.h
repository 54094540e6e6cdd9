// The real BlueprintSyncConnection: a gRPC channel to blueprint-syncd.
// Channel credentials are made in exactly one place, MakeChannelCredentials(),
// so that adding TLS changes one function.
#ifndef BLUEPRINTSYNC_CLIENT_GRPC_CONNECTION_H_
#define BLUEPRINTSYNC_CLIENT_GRPC_CONNECTION_H_

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "client/connection.h"

namespace blueprintsync::cli {

struct ConnectionOptions {
  std::string server;  // gRPC target, e.g. "127.0.0.1:50051"
  // Deadline of each unary call; for WatchSyncJob, the limit on getting
  // connected.
  absl::Duration timeout = absl::Seconds(30);
};

// Insecure for now; the service is reached over a cluster-internal network.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const ConnectionOptions& options);

std::unique_ptr<BlueprintSyncConnection> MakeGrpcConnection(const ConnectionOptions& options);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_GRPC_CONNECTION_H_
