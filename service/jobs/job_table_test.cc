// The finished-job cache on a shared store (TableState::FeedCache): it
// answers Get only while the change feed proves it fresh. Each test breaks
// one rule: without it, a Get would answer a job that was deleted.
#include <string>

#include "gtest/gtest.h"
#include "service/jobs/engine_options.h"
#include "service/jobs/job_table.h"

namespace blueprintsync::jobs {
namespace {

constexpr char kJob[] = "syncJobs/finished-1";
constexpr char kOther[] = "syncJobs/other-1";

JobRecord Finished(const std::string& name) {
  JobRecord rec;
  rec.mutable_job()->set_name(name);
  rec.mutable_job()->set_state(v1::SyncJob::SUCCEEDED);
  return rec;
}

JobChanges Resync() {
  JobChanges c;
  c.resync = true;
  return c;
}

JobChanges Disconnected() {
  JobChanges c;
  c.disconnected = true;
  return c;
}

JobChanges Change(JobChange::Kind kind, const std::string& name) {
  JobChanges c;
  c.changes.push_back(JobChange{kind, name});
  return c;
}

class FeedCacheTest : public ::testing::Test {
 protected:
  FeedCacheTest() : s_(options_, /*fanout=*/nullptr) { s_.leadership = Leadership::Following(); }

  // What Lookup does: ticket, store read (`rec`), fill if allowed.
  bool ReadAndFill(const JobRecord& rec, const TableState::FillTicket& ticket) {
    if (!s_.MayFillFinished(rec, ticket)) return false;
    s_.FillFromStore(rec.job());
    return true;
  }
  bool Answers(const std::string& name) const { return s_.Known(name) != nullptr; }

  JobEngineOptions options_;
  TableState s_;
};

TEST_F(FeedCacheTest, NothingIsCachedOrAnsweredBeforeTheFeedListens) {
  EXPECT_FALSE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
  // Finishing a job here fills the single-replica cache, which does not
  // answer on a shared store.
  s_.RememberFinished(Finished(kJob).job());
  EXPECT_FALSE(Answers(kJob));
}

TEST_F(FeedCacheTest, AReadWhileTheFeedListensFillsTheCache) {
  s_.OnFeedChanges(Resync());
  ASSERT_TRUE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
  ASSERT_TRUE(Answers(kJob));
  EXPECT_EQ(s_.Known(kJob)->state(), v1::SyncJob::SUCCEEDED);
}

TEST_F(FeedCacheTest, ADeleteNotificationDropsTheJob) {
  s_.OnFeedChanges(Resync());
  ASSERT_TRUE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
  s_.OnFeedChanges(Change(JobChange::Kind::kDeleted, kJob));
  EXPECT_FALSE(Answers(kJob));
}

TEST_F(FeedCacheTest, AnyChangeNotificationDropsTheJob) {
  s_.OnFeedChanges(Resync());
  ASSERT_TRUE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
  ASSERT_TRUE(ReadAndFill(Finished(kOther), s_.FeedTicket()));
  s_.OnFeedChanges(Change(JobChange::Kind::kUpdated, kJob));
  EXPECT_FALSE(Answers(kJob));
  EXPECT_TRUE(Answers(kOther));
}

TEST_F(FeedCacheTest, AResyncEmptiesTheCache) {
  s_.OnFeedChanges(Resync());
  ASSERT_TRUE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
  // Reconnected: the delete may have been sent while nobody listened.
  s_.OnFeedChanges(Resync());
  EXPECT_FALSE(Answers(kJob));
  // Filled again by the next read.
  EXPECT_TRUE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
  EXPECT_TRUE(Answers(kJob));
}

TEST_F(FeedCacheTest, ADisconnectEmptiesTheCacheAndStopsFillsUntilTheResync) {
  s_.OnFeedChanges(Resync());
  ASSERT_TRUE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
  s_.OnFeedChanges(Disconnected());
  EXPECT_FALSE(Answers(kJob));
  EXPECT_FALSE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
  EXPECT_FALSE(Answers(kJob));
  s_.OnFeedChanges(Resync());
  EXPECT_TRUE(ReadAndFill(Finished(kJob), s_.FeedTicket()));
}

// The race: the read begins, another replica deletes the job and its
// notification is applied, then the read returns the job as it was.
TEST_F(FeedCacheTest, AReadThatBeganBeforeADeleteNotificationDoesNotFill) {
  s_.OnFeedChanges(Resync());
  const TableState::FillTicket ticket = s_.FeedTicket();
  s_.OnFeedChanges(Change(JobChange::Kind::kDeleted, kJob));
  EXPECT_FALSE(ReadAndFill(Finished(kJob), ticket));
  EXPECT_FALSE(Answers(kJob));
}

TEST_F(FeedCacheTest, AReadThatBeganBeforeADeleteHereDoesNotFill) {
  s_.OnFeedChanges(Resync());
  const TableState::FillTicket ticket = s_.FeedTicket();
  s_.ForgetFinished(kJob);  // DeleteSyncJob on this replica
  EXPECT_FALSE(ReadAndFill(Finished(kJob), ticket));
  EXPECT_FALSE(Answers(kJob));
}

TEST_F(FeedCacheTest, AChangeOfAnotherJobDuringTheReadDoesNotStopTheFill) {
  s_.OnFeedChanges(Resync());
  const TableState::FillTicket ticket = s_.FeedTicket();
  s_.OnFeedChanges(Change(JobChange::Kind::kDeleted, kOther));
  EXPECT_TRUE(ReadAndFill(Finished(kJob), ticket));
}

TEST_F(FeedCacheTest, AReadThatBeganInAnEarlierGenerationDoesNotFill) {
  s_.OnFeedChanges(Resync());
  const TableState::FillTicket ticket = s_.FeedTicket();
  // The feed dropped and came back during the read: the delete may have
  // been missed in between.
  s_.OnFeedChanges(Disconnected());
  s_.OnFeedChanges(Resync());
  EXPECT_FALSE(ReadAndFill(Finished(kJob), ticket));
}

TEST_F(FeedCacheTest, AReadOlderThanTheRememberedChangesDoesNotFill) {
  s_.OnFeedChanges(Resync());
  const TableState::FillTicket ticket = s_.FeedTicket();
  // So many changes that the oldest since the read began is forgotten:
  // it may have been this job's delete.
  for (size_t i = 0; i <= TableState::FeedCache::kRecentChanges; ++i) {
    s_.OnFeedChanges(Change(JobChange::Kind::kUpdated, kOther));
  }
  EXPECT_FALSE(ReadAndFill(Finished(kJob), ticket));
}

TEST_F(FeedCacheTest, AnOpenOrUnfinishedJobIsNotCached) {
  s_.OnFeedChanges(Resync());
  JobRecord running = Finished(kJob);
  running.mutable_job()->set_state(v1::SyncJob::RUNNING);
  EXPECT_FALSE(ReadAndFill(running, s_.FeedTicket()));
  JobRecord cleaning = Finished(kOther);
  v1::Destination* d = cleaning.mutable_job()->add_destinations();
  d->set_region("ap-beijing");
  d->set_copy_cleanup(v1::Destination::DELETE_PENDING);
  ASSERT_TRUE(IsOpen(cleaning));
  EXPECT_FALSE(ReadAndFill(cleaning, s_.FeedTicket()));
}

TEST_F(FeedCacheTest, ASingleReplicaAnswersFromWhatItFinishedAsBefore) {
  s_.leadership = Leadership::Single();
  s_.RememberFinished(Finished(kJob).job());
  EXPECT_TRUE(Answers(kJob));
  // It fills nothing from store reads: its own delete could race them.
  EXPECT_FALSE(s_.MayFillFinished(Finished(kOther), s_.FeedTicket()));
  s_.ForgetFinished(kJob);
  EXPECT_FALSE(Answers(kJob));
}

}  // namespace
}  // namespace blueprintsync::jobs
