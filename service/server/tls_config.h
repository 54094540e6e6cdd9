// TLS and mTLS for blueprint-syncd's gRPC port: which files (--tls-cert,
// --tls-key, --tls-client-ca, --tls-reload-interval), the start-up checks
// on them, and the server credentials built from them. Used by main.cc only.
//
// The credentials watch the files (gRPC's FileWatcherCertificateProvider)
// and pick up new contents every reload interval without a restart, which is
// how a Kubernetes Secret volume delivers a renewed certificate (an atomic
// symlink swap; a subPath mount is never updated). New connections get the
// new certificate; established ones keep the one they negotiated.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_TLS_CONFIG_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_TLS_CONFIG_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/flags.h"

namespace blueprintsync::server {

struct TlsFiles {
  std::string cert_file;       // --tls-cert: PEM certificate chain, leaf first
  std::string key_file;        // --tls-key: PEM private key (unencrypted)
  std::string client_ca_file;  // --tls-client-ca: set = mTLS, client certificate required
  absl::Duration reload_interval = absl::Seconds(60);

  bool enabled() const { return !cert_file.empty(); }
  bool mutual() const { return !client_ca_file.empty(); }
  // "off", "tls" or "mtls", for the start-up log line.
  std::string Mode() const;
};

// Reads the --tls-* flags and checks them with CheckTlsFiles.
absl::StatusOr<TlsFiles> TlsFilesFromFlags(const Flags& flags);

// Start-up checks, each failing with one line that names the flag: the
// combination (cert and key together; a client CA only with both), and
// that each file is readable PEM of the right kind, with the key matching
// the certificate. Never quotes file contents.
absl::Status CheckTlsFiles(const TlsFiles& files);

// Insecure credentials when TLS is off; otherwise TLS 1.2+ credentials that
// reload the files every reload_interval and, with a client CA, require and
// verify a client certificate.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsFiles& files);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_TLS_CONFIG_H_
