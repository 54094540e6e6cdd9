// The CLI's TLS settings: which flags turn TLS on, and reading the PEM files
// they name. Every error names the flag and the file, never the contents (a
// key must not reach a terminal or a CI log).
#ifndef BLUEPRINTSYNC_CLIENT_TLS_FILES_H_
#define BLUEPRINTSYNC_CLIENT_TLS_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace blueprintsync::cli {

inline constexpr char kTlsEnv[] = "BLUEPRINT_SYNC_TLS";
inline constexpr char kCacertEnv[] = "BLUEPRINT_SYNC_CACERT";
inline constexpr char kCertEnv[] = "BLUEPRINT_SYNC_CERT";
inline constexpr char kKeyEnv[] = "BLUEPRINT_SYNC_KEY";
inline constexpr char kServerNameEnv[] = "BLUEPRINT_SYNC_SERVER_NAME";

// As given on the command line or in the environment (file paths).
struct TlsFlags {
  bool tls = false;         // --tls
  std::string cacert;       // --cacert
  std::string cert;         // --cert
  std::string key;          // --key
  std::string server_name;  // --server-name
  // Any of them turns TLS on: a CA, a client certificate or a name to check
  // only make sense over TLS.
  bool enabled() const {
    return tls || !cacert.empty() || !cert.empty() || !key.empty() || !server_name.empty();
  }
};

// What the channel credentials are made of (see grpc_connection.h).
struct TlsMaterial {
  bool enabled = false;
  std::string root_pem;     // empty: the system's trusted roots
  std::string cert_pem;     // client certificate chain (mTLS); empty: none
  std::string key_pem;      // its private key
  std::string server_name;  // checked against the server certificate; empty: the host
};

// Checks the combination (--cert and --key together) and reads the files:
// InvalidArgument naming the flag when a file is missing, unreadable, too
// large or not the PEM it should be.
absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFlags& flags);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_TLS_FILES_H_
