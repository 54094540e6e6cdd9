// The real BlueprintSyncConnection: a gRPC channel to blueprint-syncd.
// Channel credentials are made in exactly one place, MakeChannelCredentials():
// plaintext, TLS, or TLS with a client certificate (mTLS).
#ifndef BLUEPRINTSYNC_CLIENT_GRPC_CONNECTION_H_
#define BLUEPRINTSYNC_CLIENT_GRPC_CONNECTION_H_

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "client/connection.h"
#include "client/tls_files.h"

namespace blueprintsync::cli {

struct ConnectionOptions {
  std::string server;  // gRPC target, e.g. "127.0.0.1:50051"
  // Deadline of each unary call; for WatchSyncJob, the limit on getting
  // connected.
  absl::Duration timeout = absl::Seconds(30);
  // Not enabled: plaintext (the server's default).
  TlsMaterial tls;
};

// Plaintext unless options.tls.enabled; then TLS trusting tls.root_pem (or
// the system's roots), presenting tls.cert_pem/key_pem when given.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const ConnectionOptions& options);

std::unique_ptr<BlueprintSyncConnection> MakeGrpcConnection(const ConnectionOptions& options);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_GRPC_CONNECTION_H_
