// Authorization of BlueprintSync calls: who may change jobs and policies
// (SyncBlueprint and RetrySyncJob cost money; CancelSyncJob and
// DeleteSyncJob undo work; CreateSyncPolicy and UpdateSyncPolicy make the
// service spend money on its own, DeleteSyncPolicy can delete copies) and
// who may only read them (GetSyncJob, ListSyncJobs, WatchSyncJob,
// GetSyncPolicy, ListSyncPolicies).
// Callers are identified by their verified mTLS client
// certificate; the policy is a JSON file (--authz-policy) of allow-lists:
//
//   {"writers": ["dns:image-builder.ci.svc"],
//    "readers": ["uri:spiffe://cluster.local/ns/ops/sa/dashboard", "cn:oncall"]}
//
// Entries: "dns:NAME" matches a DNS subjectAltName (ASCII case-insensitive),
// "uri:URI" a URI subjectAltName (exact; SPIFFE ids), "cn:NAME" the subject
// common name (exact), "*" any verified client certificate. Writers may also
// read. Health and reflection are not BlueprintSync methods and stay open.
// Without --authz-policy nothing is checked (any caller that gets through
// the transport may call everything).
//
// The handlers call Check() first, before validating the request, so a
// caller that may not call a method learns nothing else about it.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_AUTHZ_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_AUTHZ_H_

#include <grpcpp/security/auth_context.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/common/flags.h"

namespace blueprintsync::server {

enum class Access { kRead, kWrite };

// What the transport proved about the caller.
struct Peer {
  bool authenticated = false;  // a client certificate was presented and verified
  std::vector<std::string> dns_names;
  std::vector<std::string> uris;
  std::string common_name;
};

// From the call's AuthContext (null or insecure: not authenticated).
Peer PeerFromAuthContext(const grpc::AuthContext* context);

// "uri:spiffe://…, dns:a.example" — at most three identities, each
// shortened, for messages and logs. "an unauthenticated caller" when none.
std::string DescribePeer(const Peer& peer);

// The caller's identity as a job records it (SyncJob.creator, which scopes
// request_id): the first identity DescribePeer lists, written as a policy
// entry would match it: "uri:URI", else "dns:NAME" (lower-cased, since
// policies match DNS names case-insensitively, so one caller is one
// creator), else "cn:NAME". Empty without a verified certificate or for a
// certificate with neither SAN nor CN.
std::string CallerIdentity(const Peer& peer);

class AuthzPolicy {
 public:
  // Parses the JSON described above; errors name `source` (the file) and the
  // offending entry.
  static absl::StatusOr<AuthzPolicy> Parse(absl::string_view json, const std::string& source);
  // Reads and parses the file.
  static absl::StatusOr<AuthzPolicy> Load(const std::string& path);

  // OK, UNAUTHENTICATED (no verified certificate) or PERMISSION_DENIED
  // naming `method` and the caller's identity.
  absl::Status Check(absl::string_view method, Access access, const Peer& peer) const;

  size_t writers() const { return writers_.size(); }
  size_t readers() const { return readers_.size(); }

 private:
  struct Entry {
    enum class Kind { kAny, kDns, kUri, kCommonName } kind;
    std::string value;  // lower-cased for kDns
  };
  static bool Matches(const std::vector<Entry>& list, const Peer& peer);

  std::vector<Entry> writers_;
  std::vector<Entry> readers_;
};

// The policy named by --authz-policy, or null when it is empty. A policy
// needs client certificates to identify callers: without `mutual_tls`
// (--tls-client-ca) it is a start-up error.
absl::StatusOr<std::unique_ptr<AuthzPolicy>> AuthzPolicyFromFlags(const Flags& flags,
                                                                  bool mutual_tls);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_AUTHZ_H_
