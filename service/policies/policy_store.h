// PolicyStore: durable storage of replication policies (PolicyRecord, see
// proto/blueprintsync/internal/policy_record.proto), in the same database
// as the jobs. A record has two parts written by different hands:
//
//   spec    written by the API (any replica): Create, UpdateSpec,
//           RequestDelete, Delete; each change bumps `revision` (the etag),
//           and a write with an expected revision fails with Aborted if the
//           stored one differs.
//   status  written only by the policy controller (WriteStatus), fenced by
//           the leader lease like JobStore::UpdateJob; never touches the
//           spec, and a spec write never touches the status.
//
// Implementations: SQLite, PostgreSQL, memory; all pass
// policy_store_conformance_test.cc. Thread-safe.
#ifndef BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_STORE_H_
#define BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "blueprintsync/internal/policy_record.pb.h"

namespace blueprintsync::policies {

using internal::PolicyRecord;
using internal::PolicyStatus;

// The most policies one store holds: Create fails with ResourceExhausted
// beyond it (the controller reads every policy each pass).
inline constexpr int kMaxPolicies = 10000;

struct PolicyQuery {
  // Each set field must match.
  std::optional<bool> in_sync;  // status.view.in_sync (false when no status)
  std::optional<bool> paused;
  std::optional<std::string> source_region;
  std::map<std::string, std::string> labels;  // every one on the policy
  // Names strictly after this one ("" = from the start), in name order.
  std::string after_name;
  int page_size = 50;  // > 0
};

struct PolicyPage {
  std::vector<PolicyRecord> records;  // name order
  // Set when more may match: the last name examined, for the next query's
  // after_name.
  std::optional<std::string> next_after;
};

class PolicyStore {
 public:
  virtual ~PolicyStore() = default;

  // Inserts `record` (spec.name set; revision is set to 1 by the store; uid
  // must be set). AlreadyExists if the name is taken; ResourceExhausted at
  // kMaxPolicies. Durable when it returns. Returns the stored record.
  virtual absl::StatusOr<PolicyRecord> Create(const PolicyRecord& record) = 0;

  // NotFound if there is none.
  virtual absl::StatusOr<PolicyRecord> Get(const std::string& name) = 0;

  // Replaces the spec of record.spec.name and bumps the revision (status,
  // uid, delete_requested unchanged). With expected_revision, Aborted if
  // the stored revision differs. NotFound; FailedPrecondition if deletion
  // was requested. Returns the stored record.
  virtual absl::StatusOr<PolicyRecord> UpdateSpec(const v1::SyncPolicy& spec,
                                                  std::optional<int64_t> expected_revision) = 0;

  // Marks the policy for deletion with its copies (delete_requested), bumps
  // the revision. Aborted / NotFound as UpdateSpec. Repeating it is fine.
  virtual absl::StatusOr<PolicyRecord> RequestDelete(const std::string& name,
                                                     std::optional<int64_t> expected_revision) = 0;

  // Deletes the record. With expected_revision, Aborted if it differs;
  // with expected_uid (non-empty), only the policy with that uid (NotFound
  // otherwise). NotFound if none.
  virtual absl::Status Delete(const std::string& name, std::optional<int64_t> expected_revision,
                              const std::string& expected_uid = "") = 0;

  // Writes the status of the policy `name` whose uid is `uid` (NotFound if
  // it is gone or was recreated). Fenced: FailedPrecondition once the
  // leader lease this store was fenced with is lost.
  virtual absl::Status WriteStatus(const std::string& name, const std::string& uid,
                                   const PolicyStatus& status) = 0;

  // One page, in name order. InvalidArgument for page_size <= 0. Filters
  // are checked on each record; at most 10 × page_size (at least 100)
  // records are examined per call, so a page may be short with next_after
  // set.
  virtual absl::StatusOr<PolicyPage> List(const PolicyQuery& query) = 0;

  // Every policy, in name order (the controller's pass; at most
  // kMaxPolicies).
  virtual absl::StatusOr<std::vector<PolicyRecord>> ListAll() = 0;

  // A number that changes whenever any spec changes or a policy is created
  // or deleted (not on status writes): the leader's controller polls it to
  // notice changes made on other replicas. Cheap.
  virtual absl::StatusOr<int64_t> ChangeMark() = 0;

  // As JobStore::SetWriteFence, for WriteStatus.
  virtual void SetWriteFence(std::optional<int64_t> epoch) { (void)epoch; }
};

// The same spec forms as OpenJobStore ("sqlite:PATH", "postgres://…",
// "memory:"); the SQL stores use the jobs' database (their own table,
// created if missing).
absl::StatusOr<std::unique_ptr<PolicyStore>> OpenPolicyStore(const std::string& spec);
std::unique_ptr<PolicyStore> MakeMemoryPolicyStore();

// The etag of a record ("r" + revision, quoted as AIP-154 asks: "\"r7\"").
std::string PolicyEtag(int64_t revision);
// The revision in an etag; InvalidArgument naming `field` if it is not one.
absl::StatusOr<int64_t> ParsePolicyEtag(const std::string& etag, const std::string& field);

// The public view of a record: spec + status view + etag (+ deleting).
v1::SyncPolicy PolicyView(const PolicyRecord& record);

}  // namespace blueprintsync::policies

#endif  // BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_STORE_H_
