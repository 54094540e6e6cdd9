#include "service/policies/policy_api.h"

#include <memory>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/common/error_reason.h"
#include "service/jobs/job_service.h"
#include "service/jobs/job_state.h"
#include "service/tencent/regions.h"

namespace blueprintsync::policies {
namespace {

// Writes that came in between this API's read and its write, in a row,
// before an update without an etag gives up (each one is another caller's
// successful change, so this only ends under a storm of updates).
constexpr int kMaxMergeAttempts = 5;

// 128 random bits in hex: tells a policy from an earlier one of the same
// name (the controller's status writes and job request ids are bound to it).
std::string NewUid() {
  // One generator per thread: no lock, and absl::BitGen is seeded from the
  // OS entropy source.
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

// The spec keeps only what a caller may set; the status is the
// controller's and the etag is derived from the revision.
void ClearOutputOnly(v1::SyncPolicy& policy) {
  policy.clear_etag();
  policy.clear_source_blueprint_id();
  policy.clear_source_error();
  policy.clear_regions();
  policy.clear_in_sync();
  policy.clear_reconcile_time();
  policy.clear_deleting();
}

// Copies the fields named in `paths` (each of kUpdatablePolicyFields) from
// `from` onto `spec`; labels are replaced as a whole (AIP-134: a map field
// in the mask is one field).
void Merge(const v1::SyncPolicy& from, const std::vector<std::string>& paths,
           v1::SyncPolicy& spec) {
  for (const std::string& path : paths) {
    if (path == "destination_regions") {
      *spec.mutable_destination_regions() = from.destination_regions();
    } else if (path == "keep_versions") {
      spec.set_keep_versions(from.keep_versions());
    } else if (path == "paused") {
      spec.set_paused(from.paused());
    } else if (path == "labels") {
      *spec.mutable_labels() = from.labels();
    }
  }
}

// The handler checked the new destinations without the source region (the
// request does not carry it reliably); here they are checked against the
// stored one: not the source, same side of the mainland border.
absl::Status CheckDestinationsAgainstSource(const v1::SyncPolicy& spec) {
  const std::vector<std::string> destinations(spec.destination_regions().begin(),
                                              spec.destination_regions().end());
  std::string rule;
  std::string message;
  for (const auto& v : tencent::ValidateSyncRequest(spec.source_region(), "", destinations)) {
    if (!absl::StartsWith(v.field, "destination_regions")) continue;
    if (rule.empty()) rule = v.rule;
    absl::StrAppend(&message, message.empty() ? "" : " ", v.description);
  }
  if (rule.empty()) return absl::OkStatus();
  return jobs::InvalidField("destination_regions", rule, message);
}

absl::Status Stale(const std::string& name, int64_t expected, int64_t stored) {
  return WithReason(absl::AbortedError(absl::StrCat(
                        "policy ", name, " changed since it was read (etag ", PolicyEtag(expected),
                        ", now ", PolicyEtag(stored), "); read it again and retry")),
                    reason::kEtagMismatch);
}

}  // namespace

PolicyApi::PolicyApi(PolicyStore* store, std::function<void()> on_change, Clock* clock, int threads)
    : store_(store), on_change_(std::move(on_change)), clock_(clock), executor_(threads) {}

PolicyApi::~PolicyApi() { Shutdown(); }

void PolicyApi::Shutdown() {
  stopping_ = true;
  // Tasks already queued still run, see stopping_ and answer that the
  // service is shutting down; running ones finish.
  executor_.Shutdown();
}

template <typename Result>
void PolicyApi::Run(std::function<void(Result)> done, std::function<Result()> work) {
  // Shared: answered by the task, or here if the executor refuses it.
  auto answer = std::make_shared<std::function<void(Result)>>(std::move(done));
  auto task = [this, answer, work = std::move(work)] {
    if (stopping_) {
      (*answer)(jobs::ServiceShuttingDown());
      return;
    }
    (*answer)(work());
  };
  if (stopping_ || !executor_.Post(std::move(task))) (*answer)(jobs::ServiceShuttingDown());
}

void PolicyApi::Changed() {
  if (on_change_) on_change_();
}

void PolicyApi::Create(v1::SyncPolicy policy, std::string creator, PolicyCallback done) {
  Run<absl::StatusOr<v1::SyncPolicy>>(
      std::move(done), [this, policy = std::move(policy), creator = std::move(creator)] {
        return DoCreate(policy, creator);
      });
}

absl::StatusOr<v1::SyncPolicy> PolicyApi::DoCreate(v1::SyncPolicy policy,
                                                   const std::string& creator) {
  ClearOutputOnly(policy);
  const google::protobuf::Timestamp now = jobs::ToProto(clock_->Now());
  *policy.mutable_create_time() = now;
  *policy.mutable_update_time() = now;
  policy.set_creator(creator);
  PolicyRecord record;
  *record.mutable_spec() = std::move(policy);
  record.set_uid(NewUid());
  auto stored = store_->Create(record);
  if (!stored.ok()) return stored.status();
  Changed();
  return PolicyView(*stored);
}

void PolicyApi::Get(const std::string& name, PolicyCallback done) {
  Run<absl::StatusOr<v1::SyncPolicy>>(std::move(done),
                                      [this, name]() -> absl::StatusOr<v1::SyncPolicy> {
                                        auto record = store_->Get(name);
                                        if (!record.ok()) return record.status();
                                        return PolicyView(*record);
                                      });
}

void PolicyApi::List(const PolicyQuery& query, PageCallback done) {
  Run<absl::StatusOr<PolicyListPage>>(std::move(done),
                                      [this, query]() -> absl::StatusOr<PolicyListPage> {
                                        auto page = store_->List(query);
                                        if (!page.ok()) return page.status();
                                        PolicyListPage out;
                                        out.policies.reserve(page->records.size());
                                        for (const PolicyRecord& record : page->records)
                                          out.policies.push_back(PolicyView(record));
                                        out.next_after = std::move(page->next_after);
                                        return out;
                                      });
}

void PolicyApi::Update(v1::SyncPolicy policy, std::vector<std::string> paths,
                       std::optional<int64_t> expected_revision, PolicyCallback done) {
  Run<absl::StatusOr<v1::SyncPolicy>>(
      std::move(done), [this, policy = std::move(policy), paths = std::move(paths),
                        expected_revision] { return DoUpdate(policy, paths, expected_revision); });
}

absl::StatusOr<v1::SyncPolicy> PolicyApi::DoUpdate(const v1::SyncPolicy& policy,
                                                   const std::vector<std::string>& paths,
                                                   std::optional<int64_t> expected_revision) {
  const std::string& name = policy.name();
  for (int attempt = 0; attempt < kMaxMergeAttempts; ++attempt) {
    auto current = store_->Get(name);
    if (!current.ok()) return current.status();
    // Checked here too (the store checks again when it writes) so a stale
    // etag is reported as such, before anything about the new values.
    if (expected_revision && *expected_revision != current->revision()) {
      return Stale(name, *expected_revision, current->revision());
    }
    v1::SyncPolicy spec = current->spec();
    Merge(policy, paths, spec);
    *spec.mutable_update_time() = jobs::ToProto(clock_->Now());
    if (absl::Status s = CheckDestinationsAgainstSource(spec); !s.ok()) return s;
    // Written only over the revision merged onto, so a change another
    // caller made in between is never overwritten by fields this update
    // did not ask to change.
    auto stored = store_->UpdateSpec(spec, current->revision());
    if (stored.ok()) {
      Changed();
      return PolicyView(*stored);
    }
    if (stored.status().code() != absl::StatusCode::kAborted || expected_revision) {
      return stored.status();
    }
  }
  return WithReason(absl::AbortedError(absl::StrCat(
                        "policy ", name, " kept changing while it was being updated; retry")),
                    reason::kConcurrentUpdate);
}

void PolicyApi::Delete(const std::string& name, std::optional<int64_t> expected_revision,
                       bool delete_copies, StatusCallback done) {
  Run<absl::Status>(std::move(done), [this, name, expected_revision, delete_copies] {
    return DoDelete(name, expected_revision, delete_copies);
  });
}

absl::Status PolicyApi::DoDelete(const std::string& name, std::optional<int64_t> expected_revision,
                                 bool delete_copies) {
  // With delete_copies the record stays (deleting) until the controller has
  // cancelled the policy's job and deleted its copies, then removes it.
  absl::Status status = delete_copies ? store_->RequestDelete(name, expected_revision).status()
                                      : store_->Delete(name, expected_revision);
  if (status.ok()) Changed();
  return status;
}

}  // namespace blueprintsync::policies
