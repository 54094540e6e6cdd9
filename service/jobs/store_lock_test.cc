// StoreLock: one holder per file, the holder named in the refusal, and a
// lock that dies with its process.
#include "service/jobs/store_lock.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/testing/store_test_util.h"

namespace blueprintsync::jobs {
namespace {

using ::blueprintsync::testing::ScratchDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(StoreLockTest, SecondHolderIsRefusedNamingTheFirst) {
  ScratchDir dir("store_lock");
  const std::string db = dir.path() + "/sub/jobs.db";
  auto first = StoreLock::Acquire(db);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->path(), db + ".lock");
  // flock is per open file: a second open in this process conflicts too.
  auto second = StoreLock::Acquire(db);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      second.status().message(),
      AllOf(HasSubstr("in use by another blueprint-syncd"),
            HasSubstr(absl::StrCat("pid ", getpid(), " on host ")), HasSubstr(db + ".lock")));
}

TEST(StoreLockTest, ReleasedOnDestruction) {
  ScratchDir dir("store_lock");
  const std::string db = dir.path() + "/jobs.db";
  { ASSERT_TRUE(StoreLock::Acquire(db).ok()); }
  EXPECT_TRUE(StoreLock::Acquire(db).ok());
}

TEST(StoreLockTest, DiesWithAKilledHolder) {
  ScratchDir dir("store_lock");
  const std::string db = dir.path() + "/jobs.db";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto held = StoreLock::Acquire(db);
    const char c = held.ok() ? '1' : '0';
    (void)!write(ready[1], &c, 1);
    pause();  // until SIGKILL
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ASSERT_EQ(c, '1');
  auto refused = StoreLock::Acquire(db);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrCat("pid ", child, " ")));
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  auto after = StoreLock::Acquire(db);
  EXPECT_TRUE(after.ok()) << after.status();
}

}  // namespace
}  // namespace blueprintsync::jobs
