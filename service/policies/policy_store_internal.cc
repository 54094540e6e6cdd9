#include "service/policies/policy_store_internal.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/common/error_reason.h"

namespace blueprintsync::policies::store {
namespace {

int ExamineLimit(const PolicyQuery& q) {
  const bool filtered = q.in_sync.has_value() || q.paused.has_value() ||
                        q.source_region.has_value() || !q.labels.empty();
  if (!filtered) return std::min(q.page_size, kMaxPolicies);
  // A store never holds more than kMaxPolicies: examining more is useless.
  const int64_t wanted = static_cast<int64_t>(q.page_size) * 10;
  return static_cast<int>(
      std::min<int64_t>(kMaxPolicies, std::max<int64_t>({wanted, 100, q.page_size})));
}

}  // namespace

absl::Status CheckSpec(absl::string_view op, const v1::SyncPolicy& spec) {
  if (spec.name().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": spec.name is required"));
  }
  if (spec.name().size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": spec.name is ", spec.name().size(),
                                                   " bytes, at most ", kMaxNameBytes,
                                                   " are stored"));
  }
  if (const size_t size = spec.ByteSizeLong(); size > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": the spec of policy ", spec.name(), " is ",
                                                   size, " bytes serialized, at most ",
                                                   kMaxSpecBytes, " are stored"));
  }
  return absl::OkStatus();
}

absl::Status CheckNewRecord(const PolicyRecord& record) {
  constexpr absl::string_view kOp = "Create";
  if (auto s = CheckSpec(kOp, record.spec()); !s.ok()) return s;
  if (record.uid().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Create: uid of policy ", record.spec().name(), " is required"));
  }
  if (record.uid().size() > kMaxUidBytes) {
    return absl::InvalidArgumentError(absl::StrCat("Create: uid of policy ", record.spec().name(),
                                                   " is ", record.uid().size(), " bytes, at most ",
                                                   kMaxUidBytes, " are stored"));
  }
  return CheckStatus(kOp, record.spec().name(), record.status());
}

absl::Status CheckStatus(absl::string_view op, const std::string& name,
                         const PolicyStatus& status) {
  if (const size_t size = status.ByteSizeLong(); size > kMaxStatusBytes) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": the status of policy ", name, " is ",
                                                   size, " bytes serialized, at most ",
                                                   kMaxStatusBytes, " are stored"));
  }
  return absl::OkStatus();
}

void NormalizeStatus(PolicyRecord& record) {
  if (record.has_status() && record.status().ByteSizeLong() == 0) record.clear_status();
}

absl::StatusOr<NewRow> PrepareCreate(const PolicyRecord& record) {
  if (auto s = CheckNewRecord(record); !s.ok()) return s;
  NewRow row;
  row.stored = record;
  row.stored.set_revision(1);
  NormalizeStatus(row.stored);
  if (!row.stored.spec().SerializeToString(&row.spec) ||
      !row.stored.status().SerializeToString(&row.status)) {
    return absl::InternalError(
        absl::StrCat("Create: cannot serialize policy ", record.spec().name()));
  }
  return row;
}

absl::Status ValidateQuery(const PolicyQuery& query) {
  if (query.page_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("List: page_size must be positive, got ", query.page_size));
  }
  return absl::OkStatus();
}

bool Matches(const PolicyQuery& q, const PolicyRecord& record) {
  const v1::SyncPolicy& spec = record.spec();
  if (q.in_sync.has_value() && record.status().view().in_sync() != *q.in_sync) return false;
  if (q.paused.has_value() && spec.paused() != *q.paused) return false;
  if (q.source_region.has_value() && spec.source_region() != *q.source_region) return false;
  for (const auto& [key, value] : q.labels) {
    auto it = spec.labels().find(key);
    if (it == spec.labels().end() || it->second != value) return false;
  }
  return true;
}

PageScan::PageScan(const PolicyQuery& query) : query_(query), examine_limit_(ExamineLimit(query)) {}

bool PageScan::Offer(PolicyRecord record) {
  if (examined_ == examine_limit_) {
    // More records exist beyond the examined ones: continue after the last
    // examined (those skipped did not match).
    page_.next_after = last_examined_;
    return false;
  }
  ++examined_;
  last_examined_ = record.spec().name();
  if (!Matches(query_, record)) return true;
  if (static_cast<int>(page_.records.size()) == query_.page_size) {
    // A full page and one more match: the next page starts after it.
    page_.next_after = page_.records.back().spec().name();
    return false;
  }
  page_.records.push_back(std::move(record));
  return true;
}

absl::Status NotFound(absl::string_view op, absl::string_view name) {
  return absl::NotFoundError(absl::StrCat(op, ": policy ", name, " not found"));
}

absl::Status UidMismatch(absl::string_view op, absl::string_view name) {
  return absl::NotFoundError(absl::StrCat(
      op, ": policy ", name, " not found (it was deleted and created again since it was read)"));
}

absl::Status RevisionMismatch(absl::string_view op, absl::string_view name, int64_t expected,
                              int64_t stored) {
  return WithReason(absl::AbortedError(absl::StrCat(op, ": policy ", name, " changed: etag ",
                                                    PolicyEtag(expected), " was given, it is now ",
                                                    PolicyEtag(stored), "; read it again")),
                    reason::kEtagMismatch);
}

absl::Status Deleting(absl::string_view op, absl::string_view name) {
  return WithReason(absl::FailedPreconditionError(absl::StrCat(
                        op, ": policy ", name,
                        " is being deleted (its copies are being deleted); it cannot change")),
                    reason::kPolicyBeingDeleted);
}

absl::Status TooMany(absl::string_view name) {
  return WithReason(absl::ResourceExhaustedError(
                        absl::StrCat("Create: policy ", name, " not created: at most ",
                                     kMaxPolicies, " policies are kept; delete one first")),
                    reason::kTooManyPolicies);
}

absl::Status AlreadyExists(absl::string_view name) {
  return absl::AlreadyExistsError(absl::StrCat("Create: policy ", name, " already exists"));
}

absl::StatusOr<PolicyRecord> RecordFromRow(absl::string_view store, absl::string_view op,
                                           const std::string& name, const std::string& uid,
                                           int64_t revision, bool delete_requested,
                                           const std::string& spec, const std::string& status) {
  PolicyRecord record;
  if (!record.mutable_spec()->ParseFromString(spec)) {
    return absl::DataLossError(
        absl::StrCat(store, ": ", op, ": the stored spec of policy ", name, " does not parse"));
  }
  if (record.spec().name() != name) {
    return absl::DataLossError(absl::StrCat(store, ": ", op, ": the stored spec of policy ", name,
                                            " is for policy \"", record.spec().name(), "\""));
  }
  // An empty status (none written yet, or an empty one) reads back unset,
  // as the memory store keeps it (NormalizeStatus).
  if (!status.empty() && !record.mutable_status()->ParseFromString(status)) {
    return absl::DataLossError(
        absl::StrCat(store, ": ", op, ": the stored status of policy ", name, " does not parse"));
  }
  record.set_uid(uid);
  record.set_revision(revision);
  record.set_delete_requested(delete_requested);
  return record;
}

}  // namespace blueprintsync::policies::store
