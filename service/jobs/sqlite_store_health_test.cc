// The SQLite job store reporting into StoreHealth: a database file deleted
// or replaced under the running store fails the next write (before anything
// can act on it) and is noticed by the probe while idle; a passing problem
// is cleared by the probe's write.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/testing/store_test_util.h"
#include "service/jobs/job_store.h"
#include "service/jobs/sqlite_sync_counter_test_util.h"
#include "service/jobs/store_health.h"

namespace blueprintsync::jobs {
namespace {

using ::blueprintsync::testing::ScratchDir;
using ::testing::HasSubstr;

JobRecord MakeRecord(const std::string& id) {
  JobRecord r;
  r.mutable_job()->set_name("syncJobs/" + id);
  r.mutable_job()->set_state(v1::SyncJob::QUEUED);
  r.mutable_job()->set_blueprint_id("lhbp-ls883feh");
  r.mutable_job()->set_source_region("ap-guangzhou");
  r.set_phase(JobRecord::NOT_SUBMITTED);
  return r;
}

// Generous: the probe thread may be slow to run on a loaded sanitized build.
bool PollUntil(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(20)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

class SqliteStoreHealthTest : public ::testing::Test {
 protected:
  void Open(absl::Duration probe_interval) {
    SqliteStoreOptions options;
    options.health = &health_;
    options.probe_interval = probe_interval;
    auto store = OpenSqliteJobStore(path_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void RemoveDatabase() {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::remove((path_ + suffix).c_str());
    }
  }

  ScratchDir dir_{"sqlite_health"};
  const std::string path_ = dir_.path() + "/jobs.db";
  StoreHealth health_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(SqliteStoreHealthTest, WritesKeepItHealthy) {
  ASSERT_NO_FATAL_FAILURE(Open(absl::ZeroDuration()));
  ASSERT_TRUE(store_->CreateJob(MakeRecord("a")).ok());
  JobRecord r = MakeRecord("a");
  r.set_phase(JobRecord::SUBMITTING);
  ASSERT_TRUE(store_->UpdateJob(r).ok());
  EXPECT_TRUE(health_.healthy());
}

// A record committed without a flush (CreateJobSyncLater), then a flush of
// the WAL that fails: the kernel may have dropped the record's pages, so
// the store is damaged until a restart, through Sync() or through the next
// commit's own flush, even once flushes succeed again.
TEST_F(SqliteStoreHealthTest, AFailedFlushWithARecordPendingIsDamageUntilARestart) {
  for (const bool through_sync : {true, false}) {
    SCOPED_TRACE(through_sync ? "Sync()" : "the next commit");
    ::blueprintsync::testing::SqliteSyncCounter counter;
    StoreHealth health;
    SqliteStoreOptions options;
    options.health = &health;
    options.probe_interval = absl::ZeroDuration();
    const std::string path = dir_.path() + (through_sync ? "/sync.db" : "/commit.db");
    auto opened = OpenSqliteJobStore(path, options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    std::unique_ptr<JobStore> store = *std::move(opened);
    absl::Cleanup close = [&] { store.reset(); };  // before the counter goes

    ASSERT_TRUE(store->CreateJobSyncLater(MakeRecord("a")).ok());
    counter.FailWalSyncs(true);
    if (through_sync) {
      EXPECT_FALSE(store->Sync().ok());
    } else {
      JobRecord r = MakeRecord("a");
      r.set_phase(JobRecord::SUBMITTING);
      EXPECT_FALSE(store->UpdateJob(r).ok());
    }
    EXPECT_EQ(health.Get().problem, StoreProblem::kDamaged);
    EXPECT_THAT(health.Get().detail, ::testing::HasSubstr("restart needed"));
    counter.FailWalSyncs(false);
    ASSERT_TRUE(store->CreateJob(MakeRecord("b")).ok());
    EXPECT_EQ(health.Get().problem, StoreProblem::kDamaged);
    EXPECT_FALSE(health.Check().ok());
  }
}

// The same failed flush with nothing committed unflushed is an I/O error
// like any other: it clears at the next write that succeeds.
TEST_F(SqliteStoreHealthTest, AFailedFlushWithNothingPendingClearsAtTheNextWrite) {
  ::blueprintsync::testing::SqliteSyncCounter counter;
  StoreHealth health;
  SqliteStoreOptions options;
  options.health = &health;
  options.probe_interval = absl::ZeroDuration();
  auto opened = OpenSqliteJobStore(path_, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<JobStore> store = *std::move(opened);
  absl::Cleanup close = [&] { store.reset(); };

  ASSERT_TRUE(store->CreateJob(MakeRecord("a")).ok());
  counter.FailWalSyncs(true);
  JobRecord r = MakeRecord("a");
  r.set_phase(JobRecord::SUBMITTING);
  EXPECT_FALSE(store->UpdateJob(r).ok());
  EXPECT_FALSE(health.Get().healthy());
  EXPECT_NE(health.Get().problem, StoreProblem::kDamaged);
  counter.FailWalSyncs(false);
  ASSERT_TRUE(store->UpdateJob(r).ok());
  EXPECT_TRUE(health.Get().healthy());
}

TEST_F(SqliteStoreHealthTest, AWriteToADeletedFileFailsAndStaysUnhealthy) {
  ASSERT_NO_FATAL_FAILURE(Open(absl::ZeroDuration()));  // no probe: the write itself must notice
  ASSERT_TRUE(store_->CreateJob(MakeRecord("a")).ok());
  RemoveDatabase();
  JobRecord r = MakeRecord("a");
  r.set_phase(JobRecord::SUBMITTING);
  const absl::Status updated = store_->UpdateJob(r);
  EXPECT_EQ(updated.code(), absl::StatusCode::kUnavailable) << updated;
  EXPECT_THAT(updated.message(), HasSubstr("deleted or replaced"));
  const auto created = store_->CreateJob(MakeRecord("b"));
  EXPECT_EQ(created.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(health_.Get().problem, StoreProblem::kFileReplaced);
  EXPECT_THAT(health_.Check().message(), HasSubstr("restart needed"));
}

TEST_F(SqliteStoreHealthTest, AReplacedFileIsNoticedByTheProbeWhileIdle) {
  ASSERT_NO_FATAL_FAILURE(Open(absl::Milliseconds(50)));
  ASSERT_TRUE(store_->CreateJob(MakeRecord("a")).ok());
  const std::string other = dir_.path() + "/other";
  { std::ofstream(other) << "not this database"; }
  ASSERT_EQ(std::rename(other.c_str(), path_.c_str()), 0);
  EXPECT_TRUE(PollUntil([&] { return !health_.healthy(); }));
  EXPECT_EQ(health_.Get().problem, StoreProblem::kFileReplaced);
}

TEST_F(SqliteStoreHealthTest, TheProbeWriteClearsAPassingProblem) {
  ASSERT_NO_FATAL_FAILURE(Open(absl::Milliseconds(50)));
  health_.ReportFailure(StoreProblem::kNoSpace, "database or disk is full");
  EXPECT_TRUE(PollUntil([&] { return health_.healthy(); }));
}

TEST_F(SqliteStoreHealthTest, ReadOnlyFileIsRefusedAtOpen) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes a 0444 file anyway; the e2e suite covers root";
  ASSERT_NO_FATAL_FAILURE(Open(absl::ZeroDuration()));
  store_.reset();
  ASSERT_EQ(chmod(path_.c_str(), 0444), 0);
  auto reopened = OpenSqliteJobStore(path_);
  ASSERT_FALSE(reopened.ok());
  EXPECT_THAT(reopened.status().message(), HasSubstr("cannot be opened for writing"));
}

}  // namespace
}  // namespace blueprintsync::jobs
