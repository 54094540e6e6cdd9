// OpenJobStore: turns the --job-store flag value into a JobStore.
#include "service/jobs/job_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/jobs/postgres_connection.h"

namespace blueprintsync::jobs {
namespace {

bool IsPostgresSpec(absl::string_view spec) {
  return absl::StartsWith(spec, "postgres://") || absl::StartsWith(spec, "postgresql://");
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (spec == "memory:") return MakeMemoryJobStore();
  if (IsPostgresSpec(spec)) return OpenPostgresJobStore(spec);
  if (absl::StartsWith(spec, kSqlite) && spec.size() > kSqlite.size()) {
    return OpenSqliteJobStore(spec.substr(kSqlite.size()));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "store must be sqlite:PATH, postgres://… or memory:, got \"", RedactStoreSpec(spec), "\""));
}

std::string RedactStoreSpec(const std::string& spec) {
  return IsPostgresSpec(spec) ? RedactDsn(spec) : spec;
}

}  // namespace blueprintsync::jobs
