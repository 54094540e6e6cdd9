#include "service/jobs/store_health.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/common/error_reason.h"

namespace blueprintsync::jobs {
namespace {
// Bounds what a storage error may add to every refusal and log line.
constexpr size_t kMaxDetail = 300;
}  // namespace

const char* StoreProblemName(StoreProblem problem) {
  switch (problem) {
    case StoreProblem::kNone:
      return "none";
    case StoreProblem::kNoSpace:
      return "no_space";
    case StoreProblem::kReadOnly:
      return "read_only";
    case StoreProblem::kIoError:
      return "io_error";
    case StoreProblem::kFileReplaced:
      return "file_replaced";
    case StoreProblem::kDamaged:
      return "damaged";
  }
  return "unknown";
}

bool IsStickyProblem(StoreProblem problem) {
  return problem == StoreProblem::kFileReplaced || problem == StoreProblem::kDamaged;
}

void StoreHealth::ReportFailure(StoreProblem problem, std::string detail) {
  if (problem == StoreProblem::kNone) return;
  if (detail.size() > kMaxDetail) detail.resize(kMaxDetail);
  absl::MutexLock lock(&mu_);
  if (IsStickyProblem(condition_.problem)) return;  // the first sticky cause stays
  if (condition_.problem == problem) {
    condition_.detail = std::move(detail);
    return;
  }
  if (condition_.healthy()) {
    ++condition_.changes;
    condition_.since = absl::Now();
  }
  condition_.problem = problem;
  condition_.detail = std::move(detail);
}

void StoreHealth::ReportWritten() {
  absl::MutexLock lock(&mu_);
  if (condition_.healthy() || IsStickyProblem(condition_.problem)) return;
  condition_.problem = StoreProblem::kNone;
  condition_.detail.clear();
  condition_.since = absl::Now();
  ++condition_.changes;
}

StoreCondition StoreHealth::Get() const {
  absl::MutexLock lock(&mu_);
  return condition_;
}

bool StoreHealth::healthy() const {
  absl::MutexLock lock(&mu_);
  return condition_.healthy();
}

absl::Status StoreHealth::Check() const {
  const StoreCondition c = Get();
  if (c.healthy()) return absl::OkStatus();
  return WithReason(absl::UnavailableError(absl::StrCat(
                        "the job store cannot be written (", StoreProblemName(c.problem),
                        "): ", c.detail, "; not accepting or submitting jobs")),
                    reason::kStoreUnavailable);
}

}  // namespace blueprintsync::jobs
