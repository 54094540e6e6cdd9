// In-memory PolicyStore ("memory:"): the same semantics as the SQL stores
// without durability, for tests and throwaway runs. One process, so the
// write fence does not apply.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "service/policies/policy_store.h"
#include "service/policies/policy_store_internal.h"

namespace blueprintsync::policies {
namespace {

class MemoryPolicyStore final : public PolicyStore {
 public:
  absl::StatusOr<PolicyRecord> Create(const PolicyRecord& record) override {
    if (auto s = store::CheckNewRecord(record); !s.ok()) return s;
    const std::string& name = record.spec().name();
    absl::MutexLock lock(&mu_);
    if (records_.count(name) != 0) return store::AlreadyExists(name);
    if (records_.size() >= static_cast<size_t>(kMaxPolicies)) return store::TooMany(name);
    PolicyRecord stored = record;
    stored.set_revision(1);
    store::NormalizeStatus(stored);
    records_[name] = stored;
    ++mark_;
    return stored;
  }

  absl::StatusOr<PolicyRecord> Get(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(name);
    if (it == records_.end()) return store::NotFound("Get", name);
    return it->second;
  }

  absl::StatusOr<PolicyRecord> UpdateSpec(const v1::SyncPolicy& spec,
                                          std::optional<int64_t> expected_revision) override {
    constexpr absl::string_view kOp = "UpdateSpec";
    if (auto s = store::CheckSpec(kOp, spec); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    auto it = records_.find(spec.name());
    if (it == records_.end()) return store::NotFound(kOp, spec.name());
    PolicyRecord& stored = it->second;
    if (stored.delete_requested()) return store::Deleting(kOp, spec.name());
    if (expected_revision.has_value() && *expected_revision != stored.revision()) {
      return store::RevisionMismatch(kOp, spec.name(), *expected_revision, stored.revision());
    }
    *stored.mutable_spec() = spec;
    stored.set_revision(stored.revision() + 1);
    ++mark_;
    return stored;
  }

  absl::StatusOr<PolicyRecord> RequestDelete(const std::string& name,
                                             std::optional<int64_t> expected_revision) override {
    constexpr absl::string_view kOp = "RequestDelete";
    absl::MutexLock lock(&mu_);
    auto it = records_.find(name);
    if (it == records_.end()) return store::NotFound(kOp, name);
    PolicyRecord& stored = it->second;
    // Asked already: nothing can have changed the spec since (UpdateSpec
    // refuses), so a repeat, e.g. a retry with the etag the first request
    // had, answers the record as it is.
    if (stored.delete_requested()) return stored;
    if (expected_revision.has_value() && *expected_revision != stored.revision()) {
      return store::RevisionMismatch(kOp, name, *expected_revision, stored.revision());
    }
    stored.set_delete_requested(true);
    stored.set_revision(stored.revision() + 1);
    ++mark_;
    return stored;
  }

  absl::Status Delete(const std::string& name, std::optional<int64_t> expected_revision,
                      const std::string& expected_uid) override {
    constexpr absl::string_view kOp = "Delete";
    absl::MutexLock lock(&mu_);
    auto it = records_.find(name);
    if (it == records_.end()) return store::NotFound(kOp, name);
    if (!expected_uid.empty() && it->second.uid() != expected_uid) {
      return store::UidMismatch(kOp, name);
    }
    if (expected_revision.has_value() && *expected_revision != it->second.revision()) {
      return store::RevisionMismatch(kOp, name, *expected_revision, it->second.revision());
    }
    records_.erase(it);
    ++mark_;
    return absl::OkStatus();
  }

  absl::Status WriteStatus(const std::string& name, const std::string& uid,
                           const PolicyStatus& status) override {
    constexpr absl::string_view kOp = "WriteStatus";
    if (auto s = store::CheckStatus(kOp, name, status); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    auto it = records_.find(name);
    if (it == records_.end()) return store::NotFound(kOp, name);
    if (it->second.uid() != uid) return store::UidMismatch(kOp, name);
    *it->second.mutable_status() = status;
    store::NormalizeStatus(it->second);
    return absl::OkStatus();
  }

  absl::StatusOr<PolicyPage> List(const PolicyQuery& query) override {
    if (auto s = store::ValidateQuery(query); !s.ok()) return s;
    store::PageScan scan(query);
    absl::MutexLock lock(&mu_);
    for (auto it = records_.upper_bound(query.after_name); it != records_.end(); ++it) {
      if (!scan.Offer(it->second)) break;
    }
    return scan.TakePage();
  }

  absl::StatusOr<std::vector<PolicyRecord>> ListAll() override {
    absl::MutexLock lock(&mu_);
    std::vector<PolicyRecord> out;
    out.reserve(records_.size());
    for (const auto& [name, record] : records_) out.push_back(record);
    return out;
  }

  absl::StatusOr<int64_t> ChangeMark() override {
    absl::MutexLock lock(&mu_);
    return mark_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, PolicyRecord> records_ ABSL_GUARDED_BY(mu_);  // by name
  int64_t mark_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

std::unique_ptr<PolicyStore> MakeMemoryPolicyStore() {
  return std::make_unique<MemoryPolicyStore>();
}

}  // namespace blueprintsync::policies
