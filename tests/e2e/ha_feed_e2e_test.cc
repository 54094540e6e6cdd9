// The PostgreSQL change feed end to end (LISTEN/NOTIFY, see
// service/jobs/postgres_change_feed.h): two real blueprint-syncd replicas
// on a real throwaway PostgreSQL, with the safety-net re-read
// (--follow-resync-interval) set to 10 min and the follow interval (the
// longest a follower sleeps between cycles, and the minimum gap between two
// full re-reads) to 30 s, both longer than any "at once" bound below, so
// whatever a replica learns sooner it learns from the feed:
//  - a watcher on the follower sees the leader's change about when a
//    watcher on the leader does;
//  - the leader picks up a job recorded on the follower at once;
//  - a job whose notification was lost (written straight into the table,
//    as a replica of an older build would) is picked up after the
//    listener's connection is terminated and re-established: the re-read
//    after every reconnect is what makes up for lost notifications.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "blueprintsync/internal/job_record.pb.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::testing {
namespace {

constexpr char kSrc[] = "ap-guangzhou";
constexpr absl::Duration kLease = absl::Seconds(3);
constexpr char kSafetyNet[] = "10m";
// Above kSoon: a cycle that no notification woke comes too late to pass.
constexpr char kFollowInterval[] = "30s";
// What "at once" means on a loaded 2-core machine running sanitizer
// builds; still below the 30 s follow interval.
constexpr absl::Duration kSoon = absl::Seconds(15);

std::string Bp(int i) { return absl::StrFormat("lhbp-fd%06d", i); }

class HaFeedE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bps-feed-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto pg = PostgresServer::Create();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = *std::move(pg);
    auto dsn = pg_->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    db_ = dsn_.substr(dsn_.rfind('/') + 1);
    auto emu = testing::StartEmulator({"--sync-duration-ms", "1500"}, dir_ + "/emulator");
    ASSERT_TRUE(emu.ok()) << emu.status();
    emulator_ = *std::move(emu);
    std::vector<std::string> ids;
    for (int i = 0; i < 8; ++i) ids.push_back(Bp(i));
    ASSERT_TRUE(emulator_.admin->PutBlueprints(SeedJson(kSrc, ids)).ok());
    for (int i = 0; i < 2; ++i) {
      auto s = testing::StartServer(
          emulator_.url, dsn_,
          {"--leader-lease", absl::FormatDuration(kLease), "--follow-resync-interval", kSafetyNet,
           "--follow-interval", kFollowInterval,
           "--poll-interval", "300ms", "--reconcile-grace", "2s"},
          absl::StrCat(dir_, "/replica", i));
      ASSERT_TRUE(s.ok()) << s.status();
      servers_.push_back(std::make_unique<Server>(*std::move(s)));
    }
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while ((leader_ = Leader()) < 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(100));
    ASSERT_GE(leader_, 0) << "no replica says it leads";
    // Both listen before the test writes anything.
    for (auto& s : servers_) {
      const absl::Time end = absl::Now() + absl::Seconds(30);
      while (s->process->Stdout().find("change feed listening") == std::string::npos &&
             absl::Now() < end) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      ASSERT_NE(s->process->Stdout().find("change feed listening"), std::string::npos)
          << "a replica's change feed never listened";
    }
  }

  void TearDown() override {
    for (const auto& s : servers_) {
      for (const std::string& text : {s->process->Stdout(), s->process->Stderr()}) {
        EXPECT_EQ(text.find(pg_->password()), std::string::npos)
            << "a replica logged the database password";
      }
    }
    if (HasFailure()) {
      for (size_t i = 0; i < servers_.size(); ++i) {
        const std::string out = servers_[i]->process->Stdout();
        std::cerr << "--- replica " << i << " stdout tail:\n"
                  << out.substr(out.size() > 6000 ? out.size() - 6000 : 0) << "\n";
      }
      std::cerr << "logs kept in " << dir_ << "\n";
    }
    servers_.clear();
    emulator_ = Emulator{};
    pg_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  int Leader() const {
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (servers_[i]->process->Stdout().find("\"msg\":\"leading: resumed unfinished jobs\"") !=
          std::string::npos) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }
  Server& leader() { return *servers_[leader_]; }
  Server& follower() { return *servers_[1 - leader_]; }

  grpc::Status Sync(Server& s, const v1::SyncBlueprintRequest& req, v1::SyncJob* job) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return s.stub->SyncBlueprint(&ctx, req, job);
  }

  // The job as `s` answers GetSyncJob, once `done` holds or `timeout` passed.
  v1::SyncJob GetUntil(Server& s, const std::string& name,
                       std::function<bool(const v1::SyncJob&)> done, absl::Duration timeout) {
    v1::SyncJob job;
    const absl::Time end = absl::Now() + timeout;
    do {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      v1::GetSyncJobRequest req;
      req.set_name(name);
      if (s.stub->GetSyncJob(&ctx, req, &job).ok() && done(job)) break;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < end);
    return job;
  }

  std::string dir_;
  std::unique_ptr<PostgresServer> pg_;
  std::string dsn_, db_;
  Emulator emulator_;
  std::vector<std::unique_ptr<Server>> servers_;
  int leader_ = -1;
};

// When each watcher saw the job SUCCEEDED (InfiniteFuture if it did not).
class SucceededWatch {
 public:
  SucceededWatch(Server& s, const std::string& name) {
    v1::WatchSyncJobRequest req;
    req.set_name(name);
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(45)));
    reader_ = s.stub->WatchSyncJob(&ctx_, req);
    thread_ = std::thread([this] {
      v1::SyncJob job;
      while (reader_->Read(&job)) {
        absl::MutexLock lock(&mu_);
        ++messages_;
        if (job.state() == v1::SyncJob::SUCCEEDED) {
          seen_ = absl::Now();
          break;
        }
      }
    });
  }
  ~SucceededWatch() {
    ctx_.TryCancel();
    thread_.join();
  }
  // Waits until the first message (the job as it stands) has arrived.
  bool Started() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        absl::Condition(+[](int* n) { return *n > 0; }, &messages_), absl::Seconds(20));
  }
  absl::Time Await(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](absl::Time* t) { return *t != absl::InfiniteFuture(); }, &seen_),
                         timeout);
    return seen_;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::SyncJob>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  int messages_ = 0;
  absl::Time seen_ = absl::InfiniteFuture();
};

TEST_F(HaFeedE2eTest, FollowerWatcherSeesTheLeadersChangeAsSoonAsTheLeadersWatcher) {
  v1::SyncJob job;
  grpc::Status st = Sync(leader(), MakeRequest(kSrc, Bp(0), {"ap-shanghai"}), &job);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(job.state(), v1::SyncJob::RUNNING);
  SucceededWatch on_leader(leader(), job.name());
  SucceededWatch on_follower(follower(), job.name());
  ASSERT_TRUE(on_leader.Started());
  ASSERT_TRUE(on_follower.Started());
  const absl::Time leader_saw = on_leader.Await(absl::Seconds(30));
  ASSERT_NE(leader_saw, absl::InfiniteFuture()) << "the job did not succeed on the leader";
  const absl::Time follower_saw = on_follower.Await(kSoon);
  ASSERT_NE(follower_saw, absl::InfiniteFuture())
      << "the follower's watcher did not see SUCCEEDED within " << kSoon
      << " of the leader's (the safety net is " << kSafetyNet << ")";
  std::cout << "[feed figures] follower watcher lag behind the leader's: "
            << absl::FormatDuration(follower_saw - leader_saw) << "\n";
}

TEST_F(HaFeedE2eTest, LeaderRunsAJobRecordedOnTheFollowerWithoutWaitingForTheSafetyNet) {
  const absl::Time start = absl::Now();
  v1::SyncJob job;
  // The follower records it and answers once the leader has submitted it
  // (or at its reply deadline, QUEUED).
  grpc::Status st = Sync(follower(), MakeRequest(kSrc, Bp(1), {"ap-beijing"}), &job);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const v1::SyncJob ran = GetUntil(
      follower(), job.name(), [](const v1::SyncJob& j) { return j.state() != v1::SyncJob::QUEUED; },
      kSoon);
  // From the call, not from its answer: the follower's caller itself waits
  // until the leader has submitted the job (or its reply deadline).
  const absl::Duration took = absl::Now() - start;
  EXPECT_NE(ran.state(), v1::SyncJob::QUEUED);
  EXPECT_LT(took, kSoon) << "the leader did not pick the job up within " << kSoon
                         << " (safety net " << kSafetyNet << ", follow interval "
                         << kFollowInterval << ")";
  std::cout << "[feed figures] recorded on the follower -> not QUEUED: "
            << absl::FormatDuration(took) << "\n";
}

// Found by the benchmark: with several replicas the leader keeps no
// finished job in memory, and cancelling a QUEUED job there answered
// UNAVAILABLE ("not written yet") although the cancel was written.
TEST_F(HaFeedE2eTest, CancellingAQueuedJobOnTheLeaderAnswersCancelled) {
  v1::SyncJob running, queued;
  grpc::Status st = Sync(leader(), MakeRequest(kSrc, Bp(3), {"ap-shanghai"}), &running);
  ASSERT_TRUE(st.ok()) << st.error_message();
  st = Sync(leader(), MakeRequest(kSrc, Bp(3), {"ap-beijing"}), &queued);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(queued.state(), v1::SyncJob::QUEUED);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::CancelSyncJobRequest req;
  req.set_name(queued.name());
  v1::SyncJob cancelled;
  st = leader().stub->CancelSyncJob(&ctx, req, &cancelled);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(cancelled.state(), v1::SyncJob::CANCELLED) << cancelled.ShortDebugString();
}

// Get answers a finished job from memory while the change feed listens
// (TableState::FeedCache); a delete on either replica must still show at
// once on the one that made it and within the feed's delay on the other.
TEST_F(HaFeedE2eTest, ADeleteOnOneReplicaIsNotHiddenByTheOthersCache) {
  for (int deleter : {leader_, 1 - leader_}) {
    SCOPED_TRACE(deleter == leader_ ? "deleted on the leader" : "deleted on the follower");
    Server& here = *servers_[deleter];
    Server& other = *servers_[1 - deleter];
    v1::SyncJob job;
    grpc::Status st =
        Sync(leader(), MakeRequest(kSrc, Bp(deleter == leader_ ? 4 : 5), {"ap-shanghai"}), &job);
    ASSERT_TRUE(st.ok()) << st.error_message();
    const auto succeeded = [](const v1::SyncJob& j) { return j.state() == v1::SyncJob::SUCCEEDED; };
    // Read on both (twice: the first read fills the cache, the second is
    // answered from it).
    for (Server* s : {&here, &other}) {
      for (int i = 0; i < 2; ++i) {
        ASSERT_EQ(GetUntil(*s, job.name(), succeeded, absl::Seconds(30)).state(),
                  v1::SyncJob::SUCCEEDED);
      }
    }
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
      v1::DeleteSyncJobRequest req;
      req.set_name(job.name());
      google::protobuf::Empty empty;
      st = here.stub->DeleteSyncJob(&ctx, req, &empty);
      ASSERT_TRUE(st.ok()) << st.error_message();
    }
    const auto get = [&](Server& s) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      v1::GetSyncJobRequest req;
      req.set_name(job.name());
      v1::SyncJob got;
      return s.stub->GetSyncJob(&ctx, req, &got).error_code();
    };
    // The replica that deleted it: at once.
    EXPECT_EQ(get(here), grpc::StatusCode::NOT_FOUND);
    // The other: as soon as the delete's notification arrives (the safety
    // net re-read, kSafetyNet, never clears the cache: only the feed does).
    const absl::Time deleted = absl::Now();
    grpc::StatusCode code = get(other);
    while (code != grpc::StatusCode::NOT_FOUND && absl::Now() < deleted + kSoon) {
      absl::SleepFor(absl::Milliseconds(50));
      code = get(other);
    }
    EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND)
        << "the other replica still answered the deleted job " << kSoon << " after the delete";
    std::cout << "[feed figures] delete -> NOT_FOUND on the other replica: "
              << absl::FormatDuration(absl::Now() - deleted) << "\n";
  }
}

TEST_F(HaFeedE2eTest, AJobWhoseNotificationWasLostIsRunOnceTheListenerReconnects) {
  // A QUEUED job as a replica records it, written without a notification
  // (as a replica of an older build, or a notification that was lost).
  internal::JobRecord rec;
  v1::SyncJob& job = *rec.mutable_job();
  job.set_name("syncJobs/0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b");
  job.set_state(v1::SyncJob::QUEUED);
  job.set_source_region(kSrc);
  job.set_blueprint_id(Bp(2));
  job.set_creator("anonymous");
  const int64_t now_s = absl::ToUnixSeconds(absl::Now());
  v1::Destination* d = job.add_destinations();
  d->set_region("ap-chengdu");
  d->set_state(v1::Destination::PENDING);
  d->mutable_update_time()->set_seconds(now_s);
  job.mutable_create_time()->set_seconds(now_s);
  job.mutable_update_time()->set_seconds(now_s);
  job.mutable_deadline()->set_seconds(now_s + 3600);
  rec.set_phase(internal::JobRecord::NOT_SUBMITTED);
  rec.set_request_fingerprint("written-by-the-test");
  auto inserted = pg_->Query(
      db_, absl::StrCat("INSERT INTO jobs (name, creator, state, open, blueprint_id, "
                        "source_region, create_time_us, update_time_us, record) VALUES ('",
                        job.name(), "', 'anonymous', ", static_cast<int>(job.state()), ", true, '",
                        job.blueprint_id(), "', '", kSrc, "', ", now_s * 1000000, ", ",
                        now_s * 1000000, ", '\\x", absl::BytesToHexString(rec.SerializeAsString()),
                        "'::bytea)"));
  ASSERT_TRUE(inserted.ok()) << inserted.status();

  // Nobody was told: the leader does not run it (until the safety net).
  absl::SleepFor(absl::Seconds(3));
  const v1::SyncJob waiting = GetUntil(
      leader(), job.name(), [](const v1::SyncJob&) { return true; }, absl::Seconds(10));
  ASSERT_EQ(waiting.state(), v1::SyncJob::QUEUED) << waiting.ShortDebugString();

  // The listeners' connections die; each replica reconnects and re-reads.
  auto killed = pg_->Query(db_,
                           "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE query = 'LISTEN blueprintsync_jobs'");
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(*killed, "2");
  const v1::SyncJob ran = GetUntil(
      leader(), job.name(), [](const v1::SyncJob& j) { return j.state() == v1::SyncJob::SUCCEEDED; },
      // The re-read after the reconnect comes at most one follow interval
      // after the previous full one; still far below the safety net.
      absl::Seconds(60));
  EXPECT_EQ(ran.state(), v1::SyncJob::SUCCEEDED) << ran.ShortDebugString();
}

}  // namespace
}  // namespace blueprintsync::testing
