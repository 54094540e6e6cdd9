// OpenPolicyStore (the --job-store flag value as a PolicyStore), etags and
// the public view of a stored policy.
#include "service/policies/policy_store.h"

#include <algorithm>
#include <cstddef>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "service/jobs/job_store.h"
#include "service/policies/policy_store_internal.h"

namespace blueprintsync::policies {
namespace {

bool IsPostgresSpec(absl::string_view spec) {
  return absl::StartsWith(spec, "postgres://") || absl::StartsWith(spec, "postgresql://");
}

}  // namespace

absl::StatusOr<std::unique_ptr<PolicyStore>> OpenPolicyStore(const std::string& spec) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (spec == "memory:") return MakeMemoryPolicyStore();
  if (IsPostgresSpec(spec)) return OpenPostgresPolicyStore(spec);
  if (absl::StartsWith(spec, kSqlite) && spec.size() > kSqlite.size()) {
    return OpenSqlitePolicyStore(spec.substr(kSqlite.size()));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("store must be sqlite:PATH, postgres://… or memory:, got \"",
                   jobs::RedactStoreSpec(spec), "\""));
}

std::string PolicyEtag(int64_t revision) { return absl::StrCat("\"r", revision, "\""); }

absl::StatusOr<int64_t> ParsePolicyEtag(const std::string& etag, const std::string& field) {
  absl::string_view e = etag;
  // Quoted as PolicyEtag writes it, or bare (a hand-typed etag often
  // loses its quotes in a shell).
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  int64_t revision = 0;
  if (absl::ConsumePrefix(&e, "r") && !e.empty() &&
      std::all_of(e.begin(), e.end(), [](char c) { return absl::ascii_isdigit(c); }) &&
      absl::SimpleAtoi(e, &revision) && revision > 0) {
    return revision;
  }
  // An etag is short: a long value is not one, and is not worth echoing.
  constexpr size_t kShown = 32;
  const std::string shown = etag.size() <= kShown ? etag : etag.substr(0, kShown) + "…";
  return absl::InvalidArgumentError(absl::StrCat(
      field, " must be an etag read from the policy (like \"r7\", quotes optional), got \"",
      absl::CHexEscape(shown), "\""));
}

v1::SyncPolicy PolicyView(const PolicyRecord& record) {
  v1::SyncPolicy view = record.spec();
  // Every output field comes from the status or the record, whatever the
  // stored spec holds.
  const v1::SyncPolicy& status = record.status().view();
  view.set_source_blueprint_id(status.source_blueprint_id());
  if (status.has_source_error()) {
    *view.mutable_source_error() = status.source_error();
  } else {
    view.clear_source_error();
  }
  *view.mutable_regions() = status.regions();
  view.set_in_sync(status.in_sync());
  if (status.has_reconcile_time()) {
    *view.mutable_reconcile_time() = status.reconcile_time();
  } else {
    view.clear_reconcile_time();
  }
  view.set_etag(PolicyEtag(record.revision()));
  view.set_deleting(record.delete_requested());
  return view;
}

}  // namespace blueprintsync::policies
