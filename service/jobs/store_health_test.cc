// StoreHealth's state rules (what clears what) and the SQLite problem
// classification that feeds it.
#include "service/jobs/store_health.h"

#include <sqlite3.h>

#include <cerrno>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jobs/sqlite_schema.h"

namespace blueprintsync::jobs {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(StoreHealthTest, StartsHealthy) {
  StoreHealth h;
  EXPECT_TRUE(h.healthy());
  EXPECT_TRUE(h.Check().ok());
  EXPECT_EQ(h.Get().changes, 0u);
}

TEST(StoreHealthTest, FailureMakesUnavailableNamingTheReason) {
  StoreHealth h;
  h.ReportFailure(StoreProblem::kNoSpace, "database or disk is full");
  EXPECT_FALSE(h.healthy());
  const absl::Status s = h.Check();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("no_space"), HasSubstr("database or disk is full")));
  EXPECT_EQ(h.Get().changes, 1u);
}

TEST(StoreHealthTest, AWriteClearsPassingProblems) {
  for (StoreProblem p : {StoreProblem::kNoSpace, StoreProblem::kReadOnly, StoreProblem::kIoError}) {
    StoreHealth h;
    h.ReportFailure(p, "x");
    h.ReportWritten();
    EXPECT_TRUE(h.healthy()) << StoreProblemName(p);
    EXPECT_EQ(h.Get().changes, 2u);
  }
}

TEST(StoreHealthTest, ReplacedFileAndDamageStayUntilRestart) {
  for (StoreProblem p : {StoreProblem::kFileReplaced, StoreProblem::kDamaged}) {
    StoreHealth h;
    h.ReportFailure(p, "first cause");
    h.ReportWritten();
    h.ReportFailure(StoreProblem::kNoSpace, "later, lesser cause");
    EXPECT_EQ(h.Get().problem, p);
    EXPECT_EQ(h.Get().detail, "first cause");
  }
}

TEST(StoreHealthTest, NoneIsIgnoredAndDetailIsBounded) {
  StoreHealth h;
  h.ReportFailure(StoreProblem::kNone, "constraint failed");
  EXPECT_TRUE(h.healthy());
  h.ReportFailure(StoreProblem::kIoError, std::string(10000, 'e'));
  EXPECT_LE(h.Get().detail.size(), 300u);
}

TEST(StoreProblemForTest, ClassifiesSqliteCodes) {
  using sqlite::ProblemFor;
  EXPECT_EQ(ProblemFor(SQLITE_FULL, ENOSPC), StoreProblem::kNoSpace);
  EXPECT_EQ(ProblemFor(SQLITE_IOERR_WRITE, ENOSPC), StoreProblem::kNoSpace);
  EXPECT_EQ(ProblemFor(SQLITE_IOERR_FSYNC, EROFS), StoreProblem::kReadOnly);
  EXPECT_EQ(ProblemFor(SQLITE_READONLY, 0), StoreProblem::kReadOnly);
  EXPECT_EQ(ProblemFor(SQLITE_READONLY_DBMOVED, 0), StoreProblem::kReadOnly);
  EXPECT_EQ(ProblemFor(SQLITE_IOERR_READ, EIO), StoreProblem::kIoError);
  EXPECT_EQ(ProblemFor(SQLITE_CORRUPT, 0), StoreProblem::kDamaged);
  EXPECT_EQ(ProblemFor(SQLITE_CORRUPT_INDEX, 0), StoreProblem::kDamaged);
  EXPECT_EQ(ProblemFor(SQLITE_NOTADB, 0), StoreProblem::kDamaged);
  // Not the file's fault.
  EXPECT_EQ(ProblemFor(SQLITE_CONSTRAINT_UNIQUE, 0), StoreProblem::kNone);
  EXPECT_EQ(ProblemFor(SQLITE_BUSY, 0), StoreProblem::kNone);
  EXPECT_EQ(ProblemFor(SQLITE_MISUSE, 0), StoreProblem::kNone);
}

}  // namespace
}  // namespace blueprintsync::jobs
