// What the three PolicyStore implementations share so that they answer
// alike: the bounds on what they store, how a List page is cut from the
// records read in name order, the errors they return, and their factories
// (for OpenPolicyStore). Used only by the stores.
#ifndef BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_STORE_INTERNAL_H_
#define BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_STORE_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/policies/policy_store.h"

namespace blueprintsync::policies {

absl::StatusOr<std::unique_ptr<PolicyStore>> OpenSqlitePolicyStore(const std::string& path);
// `dsn` as OpenPostgresJobStore's; creates the jobs' schema too (the write
// fence reads its leader_lease table).
absl::StatusOr<std::unique_ptr<PolicyStore>> OpenPostgresPolicyStore(const std::string& dsn);

namespace store {

// The caller validates every field; these bounds only keep the store from
// being where an oversized record gets in. A valid spec is a few hundred
// bytes (10 regions, 32 labels of 63+63 characters). A status holds at most
// 10 regions × 100 tracked copies (about 150 KiB); 1 MiB leaves room for
// error texts without letting a runaway writer grow rows without bound.
inline constexpr size_t kMaxSpecBytes = 64 * 1024;
inline constexpr size_t kMaxStatusBytes = 1024 * 1024;
// "syncPolicies/" + an AIP-122 id of at most 63 characters is 76.
inline constexpr size_t kMaxNameBytes = 256;
inline constexpr size_t kMaxUidBytes = 128;

// InvalidArgument unless the spec has a name and both are within the
// bounds above. `op` names the call.
absl::Status CheckSpec(absl::string_view op, const v1::SyncPolicy& spec);
// Create's checks: the spec's, a uid, and the status's size.
absl::Status CheckNewRecord(const PolicyRecord& record);
absl::Status CheckStatus(absl::string_view op, const std::string& name, const PolicyStatus& status);

// An empty status is stored as no status (the SQL stores cannot tell them
// apart), so every store answers alike.
void NormalizeStatus(PolicyRecord& record);

// What Create stores: the record as it will read back (revision 1, status
// normalized) and, for the SQL stores, its two columns serialized.
struct NewRow {
  PolicyRecord stored;
  std::string spec;
  std::string status;
};
// CheckNewRecord, then the row; InternalError if it cannot be serialized.
absl::StatusOr<NewRow> PrepareCreate(const PolicyRecord& record);

// InvalidArgument for a page_size List does not accept.
absl::Status ValidateQuery(const PolicyQuery& query);
bool Matches(const PolicyQuery& query, const PolicyRecord& record);

// Cuts a List page from the records after query.after_name, offered in
// name order: read at most row_limit() rows (the SQL LIMIT), call Offer for
// each until it returns false, then take the page.
class PageScan {
 public:
  explicit PageScan(const PolicyQuery& query);

  // One more than the rows that may be examined (10 × page_size, at least
  // 100, at most kMaxPolicies; only page_size without filters, since every
  // row is then on the page), so that reading the extra row tells that
  // more exist.
  int64_t row_limit() const { return static_cast<int64_t>(examine_limit_) + 1; }

  // Takes the next record; false once the page is decided (read no
  // further).
  bool Offer(PolicyRecord record);

  PolicyPage TakePage() { return std::move(page_); }

 private:
  const PolicyQuery& query_;
  const int examine_limit_;
  int examined_ = 0;
  std::string last_examined_;
  PolicyPage page_;
};

// The errors every store returns, so that callers can tell them apart by
// code alone: NotFound, Aborted (the revision moved), FailedPrecondition
// (deletion requested).
absl::Status NotFound(absl::string_view op, absl::string_view name);
absl::Status UidMismatch(absl::string_view op, absl::string_view name);
absl::Status RevisionMismatch(absl::string_view op, absl::string_view name, int64_t expected,
                              int64_t stored);
absl::Status Deleting(absl::string_view op, absl::string_view name);
absl::Status TooMany(absl::string_view name);
absl::Status AlreadyExists(absl::string_view name);

// A record from its stored parts (the columns of the SQL stores). DataLoss,
// naming `store` and `op`, when a blob does not parse or the spec is of
// another policy.
absl::StatusOr<PolicyRecord> RecordFromRow(absl::string_view store, absl::string_view op,
                                           const std::string& name, const std::string& uid,
                                           int64_t revision, bool delete_requested,
                                           const std::string& spec, const std::string& status);

}  // namespace store
}  // namespace blueprintsync::policies

#endif  // BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_STORE_INTERNAL_H_
