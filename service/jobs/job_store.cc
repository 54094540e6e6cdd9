// OpenJobStore: turns the --job-store flag value into a JobStore.
#include "service/jobs/job_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace blueprintsync::jobs {

absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (spec == "memory:") return MakeMemoryJobStore();
  if (absl::StartsWith(spec, kSqlite) && spec.size() > kSqlite.size()) {
    return OpenSqliteJobStore(spec.substr(kSqlite.size()));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("store must be sqlite:PATH or memory:, got \"", spec, "\""));
}

}  // namespace blueprintsync::jobs
