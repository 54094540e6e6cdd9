// The leader lease and fenced job writes against a real throwaway
// PostgreSQL: epochs, renewal, expiry (by the database clock), takeover,
// release, and UpdateJob refused once the fence's epoch is no longer the
// valid lease.
#include "service/jobs/postgres_lease.h"

#include <libpq-fe.h>

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jobs/job_store.h"
#include "tests/testing_util/postgres_database_test.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::jobs {
namespace {

using ::blueprintsync::testing::PostgresServer;
using ::testing::HasSubstr;
using State = LeaseBackend::State;

constexpr absl::Duration kLong = absl::Hours(1);

JobRecord MakeRecord(const std::string& id, v1::SyncJob::State state) {
  JobRecord r;
  v1::SyncJob& job = *r.mutable_job();
  job.set_name("syncJobs/" + id);
  job.set_state(state);
  job.set_blueprint_id("lhbp-ls883feh");
  job.set_source_region("ap-guangzhou");
  r.set_phase(JobRecord::NOT_SUBMITTED);
  return r;
}

class PostgresLeaseTest : public ::blueprintsync::testing::PostgresDatabaseTest {
 protected:
  void SetUp() override {
    PostgresDatabaseTest::SetUp();
    if (HasFatalFailure()) return;
    auto lease = PostgresLeaderLease::Open(dsn_);
    ASSERT_TRUE(lease.ok()) << lease.status();
    lease_ = *std::move(lease);
  }

  std::unique_ptr<PostgresLeaderLease> MustOpenLease() {
    auto lease = PostgresLeaderLease::Open(dsn_);
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() ? *std::move(lease) : nullptr;
  }

  State MustTry(PostgresLeaderLease& lease, const std::string& holder,
                absl::Duration duration = kLong) {
    auto state = lease.TryAcquireOrRenew(holder, duration);
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *state : State{false, -1};
  }

  // Ends the current lease by the database clock without waiting.
  void ExpireNow() { Sql("UPDATE leader_lease SET expires_at = now() - interval '1 second'"); }

  std::unique_ptr<PostgresLeaderLease> lease_;
};

TEST_F(PostgresLeaseTest, FirstAcquisitionIsEpochOneAndRenewalKeepsIt) {
  auto before = lease_->Inspect();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE(before->exists);

  State a = MustTry(*lease_, "replica-a");
  EXPECT_TRUE(a.leader);
  EXPECT_EQ(a.epoch, 1);
  for (int i = 0; i < 3; ++i) {
    State renewed = MustTry(*lease_, "replica-a");
    EXPECT_TRUE(renewed.leader);
    EXPECT_EQ(renewed.epoch, 1);
  }
  auto other = MustOpenLease();
  ASSERT_NE(other, nullptr);
  State b = MustTry(*other, "replica-b");
  EXPECT_FALSE(b.leader);
  EXPECT_EQ(b.epoch, 1);

  auto now = lease_->Inspect();
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_TRUE(now->exists);
  EXPECT_EQ(now->holder, "replica-a");
  EXPECT_EQ(now->epoch, 1);
  EXPECT_GT(now->remaining, absl::ZeroDuration());
  EXPECT_LE(now->remaining, kLong);
}

TEST_F(PostgresLeaseTest, ExpiryByTheDatabaseClockAllowsTakeoverWithANewEpoch) {
  EXPECT_TRUE(MustTry(*lease_, "replica-a", absl::Milliseconds(200)).leader);
  auto other = MustOpenLease();
  ASSERT_NE(other, nullptr);
  // Wait until the database says it expired (no local clock involved).
  for (;;) {
    auto s = lease_->Inspect();
    ASSERT_TRUE(s.ok()) << s.status();
    if (s->remaining <= absl::ZeroDuration()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  State b = MustTry(*other, "replica-b");
  EXPECT_TRUE(b.leader);
  EXPECT_EQ(b.epoch, 2);
  State a = MustTry(*lease_, "replica-a");
  EXPECT_FALSE(a.leader);
  EXPECT_EQ(a.epoch, 2);
  EXPECT_EQ(lease_->Inspect()->holder, "replica-b");
}

TEST_F(PostgresLeaseTest, TheSameHolderAfterExpiryGetsANewEpoch) {
  EXPECT_EQ(MustTry(*lease_, "replica-a").epoch, 1);
  ExpireNow();
  State again = MustTry(*lease_, "replica-a");
  EXPECT_TRUE(again.leader);
  EXPECT_EQ(again.epoch, 2);
  EXPECT_EQ(MustTry(*lease_, "replica-a").epoch, 2);
}

TEST_F(PostgresLeaseTest, ReleaseHandsOverAtOnceAndOnlyTheHolderCanRelease) {
  auto other = MustOpenLease();
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(MustTry(*lease_, "replica-a").leader);
  // Not the holder: nothing happens.
  ASSERT_TRUE(other->Release("replica-b").ok());
  EXPECT_FALSE(MustTry(*other, "replica-b").leader);
  State a = MustTry(*lease_, "replica-a");
  EXPECT_TRUE(a.leader);
  EXPECT_EQ(a.epoch, 1);

  ASSERT_TRUE(lease_->Release("replica-a").ok());
  State b = MustTry(*other, "replica-b");
  EXPECT_TRUE(b.leader);
  EXPECT_EQ(b.epoch, 2);
  // Releasing a lease one no longer holds is harmless.
  ASSERT_TRUE(lease_->Release("replica-a").ok());
  EXPECT_TRUE(MustTry(*other, "replica-b").leader);
}

TEST_F(PostgresLeaseTest, RejectsAnEmptyHolderAndTinyLeases) {
  EXPECT_EQ(lease_->TryAcquireOrRenew("", kLong).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(lease_->TryAcquireOrRenew("a", absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(lease_->TryAcquireOrRenew("a", -absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(lease_->Inspect()->exists);
}

// Replicas starting together on an empty lease table: exactly one wins.
TEST_F(PostgresLeaseTest, ConcurrentFirstAcquisitionsElectExactlyOne) {
  constexpr int kReplicas = 6;
  std::vector<std::unique_ptr<PostgresLeaderLease>> leases;
  for (int i = 0; i < kReplicas; ++i) {
    leases.push_back(MustOpenLease());
    ASSERT_NE(leases.back(), nullptr);
  }
  std::vector<absl::StatusOr<State>> results(kReplicas, absl::UnknownError("not run"));
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      go.WaitForNotification();
      results[i] = leases[i]->TryAcquireOrRenew(absl::StrCat("replica-", i), kLong);
    });
  }
  go.Notify();
  for (auto& t : threads) t.join();
  int leaders = 0;
  for (int i = 0; i < kReplicas; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    leaders += results[i]->leader ? 1 : 0;
    EXPECT_EQ(results[i]->epoch, 1) << i;
  }
  EXPECT_EQ(leaders, 1);
}

TEST_F(PostgresLeaseTest, OpenPostgresLeaderLeaseIsALeaseBackend) {
  auto backend = OpenPostgresLeaderLease(dsn_);
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto state = (*backend)->TryAcquireOrRenew("replica-a", kLong);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(state->leader);
  ASSERT_TRUE((*backend)->Release("replica-a").ok());
  EXPECT_LE(lease_->Inspect()->remaining, absl::ZeroDuration());
}

class FencedWriteTest : public PostgresLeaseTest {
 protected:
  void SetUp() override {
    PostgresLeaseTest::SetUp();
    if (HasFatalFailure()) return;
    auto store = OpenJobStore(dsn_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto created = store_->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED));
    ASSERT_TRUE(created.ok()) << created.status();
    job_ = created->record;
  }

  // UpdateJob with the job's state set to `state`.
  absl::Status Write(v1::SyncJob::State state) {
    JobRecord r = job_;
    r.mutable_job()->set_state(state);
    return store_->UpdateJob(r);
  }

  v1::SyncJob::State Stored() {
    auto got = store_->GetJob(job_.job().name());
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? got->job().state() : v1::SyncJob::STATE_UNSPECIFIED;
  }

  std::unique_ptr<JobStore> store_;
  JobRecord job_;
};

TEST_F(FencedWriteTest, WritesPassOnlyWhileTheFencedEpochIsTheValidLease) {
  // No lease at all yet.
  store_->SetWriteFence(1);
  absl::Status s = Write(v1::SyncJob::RUNNING);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("not the leader"));
  EXPECT_THAT(s.message(), HasSubstr("nobody holds the lease"));
  EXPECT_EQ(Stored(), v1::SyncJob::QUEUED);

  State a = MustTry(*lease_, "replica-a");
  ASSERT_TRUE(a.leader);
  store_->SetWriteFence(a.epoch);
  EXPECT_TRUE(Write(v1::SyncJob::RUNNING).ok());
  EXPECT_EQ(Stored(), v1::SyncJob::RUNNING);

  // Expired (by the database clock), nobody took over yet: refused.
  ExpireNow();
  s = Write(v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("not the leader"));
  EXPECT_THAT(s.message(), HasSubstr("syncJobs/a"));
  EXPECT_THAT(s.message(), HasSubstr("expired"));
  EXPECT_EQ(Stored(), v1::SyncJob::RUNNING);

  // Another replica takes over: the old epoch stays refused, the new passes.
  auto other = MustOpenLease();
  ASSERT_NE(other, nullptr);
  State b = MustTry(*other, "replica-b");
  ASSERT_TRUE(b.leader);
  ASSERT_EQ(b.epoch, a.epoch + 1);
  s = Write(v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("epoch ", b.epoch, ", held by \"replica-b\"")));
  EXPECT_EQ(Stored(), v1::SyncJob::RUNNING);

  auto successor = OpenJobStore(dsn_);
  ASSERT_TRUE(successor.ok()) << successor.status();
  (*successor)->SetWriteFence(b.epoch);
  JobRecord failed = job_;
  failed.mutable_job()->set_state(v1::SyncJob::FAILED);
  EXPECT_TRUE((*successor)->UpdateJob(failed).ok());
  EXPECT_EQ(Stored(), v1::SyncJob::FAILED);

  // The successor releases: its epoch is refused from then on.
  ASSERT_TRUE(other->Release("replica-b").ok());
  EXPECT_EQ((*successor)->UpdateJob(job_).code(), absl::StatusCode::kFailedPrecondition);

  // No fence: no check.
  store_->SetWriteFence(std::nullopt);
  EXPECT_TRUE(Write(v1::SyncJob::SUCCEEDED).ok());
  EXPECT_EQ(Stored(), v1::SyncJob::SUCCEEDED);
}

TEST_F(FencedWriteTest, MissingJobIsNotFoundAndCreatesAreNotFenced) {
  store_->SetWriteFence(42);  // never valid
  EXPECT_EQ(store_->UpdateJob(MakeRecord("ghost", v1::SyncJob::RUNNING)).code(),
            absl::StatusCode::kNotFound);
  auto created = store_->CreateJob(MakeRecord("b", v1::SyncJob::QUEUED));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_TRUE(store_->GetJob("syncJobs/b").ok());
}

// A raw libpq session, to hold a transaction open across steps of a test.
class RawSession {
 public:
  explicit RawSession(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
    EXPECT_EQ(PQstatus(conn_), CONNECTION_OK) << PQerrorMessage(conn_);
  }
  ~RawSession() { PQfinish(conn_); }
  std::string Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(r);
    std::string out = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return out;
  }
  int pid() { return PQbackendPID(conn_); }

 private:
  PGconn* conn_;
};

// A takeover that commits while a fenced write is in flight: the write waits
// for the lease row (FOR SHARE), then sees the new epoch and writes nothing.
// Without the row lock it would check the old row from its snapshot and
// write after the successor had taken over.
TEST_F(FencedWriteTest, TakeoverCommittingDuringAFencedWriteWins) {
  State a = MustTry(*lease_, "replica-a");
  ASSERT_TRUE(a.leader);
  store_->SetWriteFence(a.epoch);

  RawSession takeover(dsn_);
  takeover.Exec("BEGIN");
  takeover.Exec(
      "UPDATE leader_lease SET holder = 'replica-b', epoch = epoch + 1, "
      "expires_at = now() + interval '1 hour'");

  absl::Status write = absl::UnknownError("not run");
  absl::Notification written;
  std::thread writer([&] {
    write = Write(v1::SyncJob::RUNNING);
    written.Notify();
  });
  // Until the write (an UPDATE inside the WITH that notifies) waits on the
  // lease row's lock (no timing involved), or
  // returned without waiting (which fails below).
  while (!written.HasBeenNotified()) {
    auto waiting = server_->Query(
        db_, absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                          "AND query LIKE '%UPDATE jobs SET%' AND ",
                          takeover.pid(), " = ANY (pg_blocking_pids(pid))"));
    ASSERT_TRUE(waiting.ok()) << waiting.status();
    if (*waiting == "1") break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  takeover.Exec("COMMIT");
  writer.join();
  EXPECT_EQ(write.code(), absl::StatusCode::kFailedPrecondition) << write;
  EXPECT_THAT(write.message(), HasSubstr("held by \"replica-b\""));
  EXPECT_EQ(Stored(), v1::SyncJob::QUEUED);
}

// The other order: a fenced write in flight (here: its transaction holds the
// lease row) makes the takeover wait; the write lands, then the lease moves.
TEST_F(FencedWriteTest, TakeoverWaitsForAFencedWriteInFlight) {
  State a = MustTry(*lease_, "replica-a", absl::Seconds(2));
  ASSERT_TRUE(a.leader);
  RawSession old_leader(dsn_);
  old_leader.Exec("BEGIN");
  EXPECT_EQ(old_leader.Exec(absl::StrCat(
                "UPDATE jobs SET state = 2 WHERE name = 'syncJobs/a' AND EXISTS (SELECT 1 FROM "
                "leader_lease WHERE epoch = ",
                a.epoch, " AND expires_at > clock_timestamp() FOR SHARE) RETURNING state")),
            "2");
  // Let the lease expire by the database clock while the write is open.
  for (;;) {
    auto s = lease_->Inspect();
    ASSERT_TRUE(s.ok()) << s.status();
    if (s->remaining <= absl::ZeroDuration()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  auto other = MustOpenLease();
  ASSERT_NE(other, nullptr);
  absl::StatusOr<State> b = absl::UnknownError("not run");
  absl::Notification taken;
  std::thread taker([&] {
    b = other->TryAcquireOrRenew("replica-b", kLong);
    taken.Notify();
  });
  while (!taken.HasBeenNotified()) {
    auto waiting = server_->Query(
        db_, absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                          "AND ",
                          old_leader.pid(), " = ANY (pg_blocking_pids(pid))"));
    ASSERT_TRUE(waiting.ok()) << waiting.status();
    if (*waiting == "1") break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  old_leader.Exec("COMMIT");
  taker.join();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->leader);
  EXPECT_EQ(b->epoch, a.epoch + 1);
  // The old leader's write landed first (it set the column only).
  EXPECT_EQ(Sql("SELECT state FROM jobs WHERE name = 'syncJobs/a'"), "2");
}

}  // namespace
}  // namespace blueprintsync::jobs
