// High availability end to end: several real blueprint-syncd processes on one
// real PostgreSQL server (a throwaway one on loopback, see
// tests/testing_util/postgres_server.h) and one lighthouse-emulator with
// Tencent's rate limits. Jobs are sent round-robin to every replica; the
// emulator's submission list is the ground truth for "submitted exactly
// once" and its per-second counters for "the limits hold for the whole
// deployment".
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/empty.pb.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::testing {
namespace {

constexpr char kSrc[] = "ap-guangzhou";
// The leader lease in these tests; takeover is bounded by it.
constexpr absl::Duration kLease = absl::Seconds(3);
// SIGKILLed leader -> new leader: the lease runs out (kLease), a replica's
// next try finds it free (lease/5), the new leader's engine notices (the
// follow interval); plus generous slack for a loaded 2-core machine.
const absl::Duration kTakeoverBound = kLease + kLease / 5 + absl::Seconds(5);

std::string Bp(int i) { return absl::StrFormat("lhbp-ha%06d", i); }

class HaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bps-ha-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto pg = PostgresServer::Create();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = *std::move(pg);
    auto dsn = pg_->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    // Tencent's limits: 20 SyncBlueprint/s and 10 DescribeBlueprints/s per account.
    auto emu = testing::StartEmulator({"--sync-duration-ms", "1500", "--rate-limit",
                                       "SyncBlueprint=20", "--rate-limit", "DescribeBlueprints=10"},
                                      dir_ + "/emulator");
    ASSERT_TRUE(emu.ok()) << emu.status();
    emulator_ = *std::move(emu);
    std::vector<std::string> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(Bp(i));
    ASSERT_TRUE(emulator_.admin->PutBlueprints(SeedJson(kSrc, ids)).ok());
  }

  void TearDown() override {
    // Secret hygiene: neither the Tencent key nor the database password may
    // reach any replica's output.
    for (const auto& s : all_servers_) {
      for (const std::string& text : {s->process->Stdout(), s->process->Stderr()}) {
        EXPECT_EQ(text.find(kTestSecretKey), std::string::npos)
            << "a replica logged the secret key";
        EXPECT_EQ(text.find(pg_->password()), std::string::npos)
            << "a replica logged the database password";
      }
    }
    if (HasFailure()) {
      for (size_t i = 0; i < all_servers_.size(); ++i) {
        std::cerr << "--- replica " << i << " (" << all_servers_[i]->address << ") stdout tail:\n"
                  << Tail(all_servers_[i]->process->Stdout()) << "\n";
      }
      if (pg_) std::cerr << "--- postgres log tail:\n" << pg_->LogTail() << "\n";
      std::cerr << "logs kept in " << dir_ << "\n";
    }
    live_.clear();
    all_servers_.clear();
    emulator_ = Emulator{};
    pg_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  static std::string Tail(const std::string& text) {
    const size_t keep = 6000;
    return text.size() <= keep ? text : text.substr(text.size() - keep);
  }

  // Starts a replica on the shared database; returns its index in live_.
  size_t StartReplica() {
    const int n = static_cast<int>(all_servers_.size());
    auto s =
        testing::StartServer(emulator_.url, dsn_,
                             {"--leader-lease", absl::FormatDuration(kLease), "--follow-interval",
                              "200ms", "--poll-interval", "300ms", "--reconcile-grace", "2s"},
                             absl::StrCat(dir_, "/replica", n));
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return SIZE_MAX;
    all_servers_.push_back(std::make_shared<Server>(*std::move(s)));
    live_.push_back(all_servers_.back());
    return live_.size() - 1;
  }

  // The live replica whose latest leadership line says it leads, if any.
  int Leader() const {
    for (size_t i = 0; i < live_.size(); ++i) {
      const std::string out = live_[i]->process->Stdout();
      const size_t became = out.rfind("\"msg\":\"leading: resumed unfinished jobs\"");
      const size_t lost = out.rfind("\"msg\":\"no longer leading");
      if (became != std::string::npos && (lost == std::string::npos || lost < became)) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  // Polls the replica's "readiness" until it reports `want`; the last
  // answer (or error) when `timeout` passes first.
  static absl::StatusOr<int> WaitForReadiness(Server& s, int want, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    absl::StatusOr<int> ready = -1;
    while (absl::Now() < end) {
      ready = HealthCheck(s.channel, "readiness", absl::Seconds(2));
      if (ready.ok() && *ready == want) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return ready;
  }

  grpc::Status Sync(Server& s, const v1::SyncBlueprintRequest& req, v1::SyncJob* job) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    return s.stub->SyncBlueprint(&ctx, req, job);
  }
  grpc::Status Get(Server& s, const std::string& name, v1::SyncJob* job) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::GetSyncJobRequest req;
    req.set_name(name);
    return s.stub->GetSyncJob(&ctx, req, job);
  }

  // Waits until every job is terminal, asking the live replicas in turn.
  std::map<std::string, v1::SyncJob> WaitAllTerminal(const std::vector<std::string>& names,
                                                     absl::Duration timeout) {
    std::map<std::string, v1::SyncJob> done;
    const absl::Time end = absl::Now() + timeout;
    size_t turn = 0;
    while (done.size() < names.size() && absl::Now() < end) {
      for (const std::string& name : names) {
        if (done.count(name)) continue;
        v1::SyncJob job;
        if (Get(*live_[turn++ % live_.size()], name, &job).ok() &&
            IsTerminalJobState(job.state())) {
          done[name] = job;
        }
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return done;
  }

  // The emulator's view: SyncBlueprint executions per job (matched by the
  // destination image ids the job reports), and per-second maxima.
  struct Upstream {
    int64_t sync_executed = 0;
    int64_t sync_throttled = 0;
    int64_t describe_throttled = 0;
    int64_t max_sync_per_second = 0;
    int64_t max_describe_per_second = 0;
    std::vector<EmulatorSyncSubmission> submissions;
  };
  Upstream ReadUpstream() {
    Upstream u;
    auto stats = emulator_.admin->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (!stats.ok()) return u;
    u.sync_executed = stats->Action("SyncBlueprint").executed;
    u.sync_throttled = stats->Action("SyncBlueprint").throttled;
    u.describe_throttled = stats->Action("DescribeBlueprints").throttled;
    u.submissions = stats->sync_submissions;
    if (stats->max_accepted_per_second.empty()) {
      ADD_FAILURE() << "no max_accepted_per_second in the emulator's stats";
    }
    u.max_sync_per_second = stats->MaxAcceptedPerSecond("SyncBlueprint");
    u.max_describe_per_second = stats->MaxAcceptedPerSecond("DescribeBlueprints");
    return u;
  }

  // Every job SUCCEEDED and was executed upstream exactly once; prints figures.
  void ExpectEachSubmittedOnce(const std::vector<std::string>& names,
                               const std::map<std::string, v1::SyncJob>& done,
                               const std::string& scenario) {
    ASSERT_EQ(done.size(), names.size()) << "jobs not terminal in time (lost or stuck)";
    const Upstream u = ReadUpstream();
    std::map<std::string, int> executions;  // job -> submissions creating its images
    for (const auto& [name, job] : done) {
      EXPECT_EQ(job.state(), v1::SyncJob::SUCCEEDED)
          << name << " ended " << v1::SyncJob::State_Name(job.state()) << ": "
          << job.error().message();
      std::set<std::string> ids;
      for (const auto& d : job.destinations()) ids.insert(d.blueprint_id());
      for (const auto& sub : u.submissions) {
        for (const auto& id : sub.destination_blueprint_ids) {
          if (ids.count(id)) {
            ++executions[name];
            break;
          }
        }
      }
    }
    int max_per_job = 0;
    for (const auto& name : names) {
      EXPECT_EQ(executions[name], 1)
          << name << " was executed upstream " << executions[name] << " times";
      max_per_job = std::max(max_per_job, executions[name]);
    }
    EXPECT_EQ(u.sync_executed, static_cast<int64_t>(names.size()))
        << "SyncBlueprint executions upstream != jobs (a duplicate or a stray call)";
    EXPECT_EQ(u.sync_throttled, 0);
    EXPECT_EQ(u.describe_throttled, 0);
    EXPECT_LE(u.max_sync_per_second, 20);
    EXPECT_LE(u.max_describe_per_second, 10);
    std::cout << absl::StrFormat(
        "[ha figures] %s: replicas=%d jobs=%d succeeded=%d SyncBlueprint executed=%d "
        "(max per job %d) throttled=%d/%d max/s SyncBlueprint=%d DescribeBlueprints=%d\n",
        scenario, static_cast<int>(all_servers_.size()), static_cast<int>(names.size()),
        static_cast<int>(std::count_if(
            done.begin(), done.end(),
            [](const auto& kv) { return kv.second.state() == v1::SyncJob::SUCCEEDED; })),
        static_cast<int>(u.sync_executed), max_per_job, static_cast<int>(u.sync_throttled),
        static_cast<int>(u.describe_throttled), static_cast<int>(u.max_sync_per_second),
        static_cast<int>(u.max_describe_per_second));
  }

  // Jobs i in [first, last): blueprint i % blueprints, so several share one.
  std::vector<std::string> SubmitRoundRobin(int first, int last, int blueprints) {
    std::vector<std::string> names;
    const std::vector<std::vector<std::string>> dests = {
        {"ap-shanghai"}, {"ap-beijing", "ap-shanghai"}, {"ap-chengdu"}, {"ap-nanjing"}};
    for (int i = first; i < last; ++i) {
      Server& s = *live_[i % live_.size()];
      v1::SyncJob job;
      grpc::Status st = Sync(s,
                             MakeRequest(kSrc, Bp(i % blueprints), dests[i % dests.size()],
                                         absl::StrFormat("00000000-0000-4000-8000-%012d", i)),
                             &job);
      EXPECT_TRUE(st.ok()) << "job " << i << " on replica " << i % live_.size() << ": "
                           << st.error_message();
      if (st.ok()) names.push_back(job.name());
    }
    return names;
  }

  // Every job name, from a live replica, following page tokens.
  std::vector<std::string> ListAllNames() {
    std::vector<std::string> out;
    v1::ListSyncJobsRequest req;
    req.set_page_size(100);
    for (int page = 0; page < 100; ++page) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      v1::ListSyncJobsResponse resp;
      const grpc::Status st = live_[0]->stub->ListSyncJobs(&ctx, req, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok()) break;
      for (const auto& j : resp.sync_jobs()) out.push_back(j.name());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<PostgresServer> pg_;
  std::string dsn_;
  Emulator emulator_;
  std::vector<std::shared_ptr<Server>> all_servers_;  // every replica ever started
  std::vector<std::shared_ptr<Server>> live_;
};

TEST_F(HaE2eTest, ThreeReplicasRoundRobinSubmitEachJobOnceWithinTheLimits) {
  for (int i = 0; i < 3; ++i) ASSERT_NE(StartReplica(), SIZE_MAX);
  // 45 jobs on 15 blueprints: three per blueprint, which must run one after
  // another, from whichever replica they were sent to.
  const std::vector<std::string> names = SubmitRoundRobin(0, 45, 15);
  ASSERT_EQ(names.size(), 45u);
  const int leader = Leader();
  ASSERT_GE(leader, 0) << "no replica says it leads";

  // A watcher on a replica that does not lead sees the job end.
  const size_t follower = (leader + 1) % live_.size();
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(90)));
    v1::WatchSyncJobRequest req;
    req.set_name(names.back());
    auto reader = live_[follower]->stub->WatchSyncJob(&ctx, req);
    v1::SyncJob seen;
    v1::SyncJob::State last = v1::SyncJob::STATE_UNSPECIFIED;
    int updates = 0;
    while (reader->Read(&seen)) {
      ++updates;
      last = seen.state();
      if (IsTerminalJobState(last)) break;
    }
    EXPECT_EQ(last, v1::SyncJob::SUCCEEDED)
        << "the follower's watch ended at " << v1::SyncJob::State_Name(last);
    EXPECT_GE(updates, 2) << "the follower's watch saw no change";
  }

  const auto done = WaitAllTerminal(names, absl::Seconds(120));
  ExpectEachSubmittedOnce(names, done, "round robin");
  // Only the leader called Tencent Cloud.
  for (size_t i = 0; i < live_.size(); ++i) {
    if (static_cast<int>(i) == leader) continue;
    EXPECT_EQ(live_[i]->process->Stdout().find("\"msg\":\"job submitted\""), std::string::npos)
        << "replica " << i << " does not lead but submitted a job";
  }
}

TEST_F(HaE2eTest, LeaderKilledMidRunAnotherTakesOverAndNothingIsSubmittedTwice) {
  for (int i = 0; i < 3; ++i) ASSERT_NE(StartReplica(), SIZE_MAX);
  std::vector<std::string> names = SubmitRoundRobin(0, 24, 12);
  const int leader = Leader();
  ASSERT_GE(leader, 0);

  // Kill the leader while SyncBlueprint calls are on the wire: each one
  // executes upstream, then its answer is held back 2 s. Those jobs are
  // SUBMITTING in the store when the leader dies.
  ASSERT_TRUE(emulator_.admin
                  ->SetFaults(R"({"rules":[{"action":"SyncBlueprint","fault":"latency",)"
                              R"("latency_ms":2000,"phase":"after"}]})")
                  .ok());
  const int64_t executed_before = ReadUpstream().sync_executed;
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([this, leader, i] {
      v1::SyncJob job;
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(1500)));
      // Answered QUEUED at the deadline, or cut off by the kill: either way
      // the job is recorded, and found below by listing.
      live_[leader]->stub->SyncBlueprint(
          &ctx,
          MakeRequest(kSrc, Bp(30 + i), {"ap-shanghai"},
                      absl::StrFormat("00000000-0000-4000-8000-%012d", 100 + i)),
          &job);
    });
  }
  const absl::Time wait_end = absl::Now() + absl::Seconds(10);
  while (ReadUpstream().sync_executed < executed_before + 2 && absl::Now() < wait_end) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GE(ReadUpstream().sync_executed, executed_before + 2) << "no calls in flight to kill";
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(live_[leader]->process->Kill().ok());
  for (auto& t : callers) t.join();
  live_.erase(live_.begin() + leader);
  ASSERT_TRUE(emulator_.admin->SetFaults(R"({"rules":[]})").ok());

  // Keep sending to the survivors while nobody leads: recorded, answered.
  const std::vector<std::string> more = SubmitRoundRobin(36, 48, 12);
  EXPECT_EQ(more.size(), 12u);
  names.insert(names.end(), more.begin(), more.end());

  absl::Time took_over = absl::InfinitePast();
  while (absl::Now() < killed + kTakeoverBound + absl::Seconds(10)) {
    if (Leader() >= 0) {
      took_over = absl::Now();
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_NE(took_over, absl::InfinitePast()) << "no replica took over";
  const absl::Duration takeover = took_over - killed;
  EXPECT_LE(takeover, kTakeoverBound);
  std::cout << "[ha figures] leader SIGKILLed with calls in flight: takeover after "
            << absl::FormatDuration(absl::Trunc(takeover, absl::Milliseconds(1))) << " (lease "
            << absl::FormatDuration(kLease) << ", bound " << absl::FormatDuration(kTakeoverBound)
            << ")\n";

  // Every job the store holds: the ones we know, plus those whose callers
  // were cut off by the kill. None may be lost.
  std::vector<std::string> all = ListAllNames();
  for (const std::string& n : names) {
    EXPECT_NE(std::find(all.begin(), all.end(), n), all.end()) << n << " was lost";
  }
  EXPECT_EQ(all.size(), names.size() + 4);
  const auto done = WaitAllTerminal(all, absl::Seconds(120));
  ExpectEachSubmittedOnce(all, done, "leader killed mid-submission");
  int reconciled = 0;
  for (const auto& s : live_) {
    const std::string out = s->process->Stdout();
    for (size_t p = out.find("reconciled: submission had executed"); p != std::string::npos;
         p = out.find("reconciled: submission had executed", p + 1)) {
      ++reconciled;
    }
  }
  EXPECT_GE(reconciled, 2) << "the new leader did not reconcile the interrupted submissions";
  std::cout << "[ha figures] interrupted submissions adopted by the new leader: " << reconciled
            << "\n";
}

TEST_F(HaE2eTest, PostgresRestartMidRunIsReportedAndRecoveredWithoutLossOrDuplicates) {
  for (int i = 0; i < 2; ++i) ASSERT_NE(StartReplica(), SIZE_MAX);
  std::vector<std::string> names = SubmitRoundRobin(0, 12, 12);
  ASSERT_EQ(names.size(), 12u);

  ASSERT_TRUE(pg_->Stop().ok());
  // While it is down: readiness turns NOT_SERVING (liveness stays SERVING,
  // a restart would not help), and a new job gets a clear UNAVAILABLE.
  for (auto& s : live_) {
    const absl::StatusOr<int> ready = WaitForReadiness(*s, 2 /* NOT_SERVING */, absl::Seconds(20));
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_EQ(*ready, 2) << "readiness did not report the store outage";
    auto live = HealthCheck(s->channel, "liveness", absl::Seconds(2));
    ASSERT_TRUE(live.ok());
    EXPECT_EQ(*live, 1);
  }
  {
    v1::SyncJob job;
    const grpc::Status st = Sync(
        *live_[0],
        MakeRequest(kSrc, Bp(20), {"ap-shanghai"}, "00000000-0000-4000-8000-999999999999"), &job);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
    EXPECT_TRUE(absl::StrContains(st.error_message(), "could not record the job"))
        << st.error_message();
    std::cout << "[ha figures] while PostgreSQL is down, SyncBlueprint -> " << st.error_code()
              << " \"" << st.error_message().substr(0, 160) << "\"\n";
  }

  ASSERT_TRUE(pg_->Start().ok());
  for (auto& s : live_) {
    const absl::StatusOr<int> ready = WaitForReadiness(*s, 1 /* SERVING */, absl::Seconds(30));
    EXPECT_TRUE(ready.ok() && *ready == 1) << "readiness did not recover";
  }
  const std::vector<std::string> more = SubmitRoundRobin(12, 18, 12);
  EXPECT_EQ(more.size(), 6u);
  names.insert(names.end(), more.begin(), more.end());
  const auto done = WaitAllTerminal(names, absl::Seconds(120));
  ExpectEachSubmittedOnce(names, done, "postgres restarted");
}

TEST_F(HaE2eTest, CancelAndDeleteWorkOnAReplicaThatDoesNotLead) {
  for (int i = 0; i < 2; ++i) ASSERT_NE(StartReplica(), SIZE_MAX);
  int leader = -1;
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while ((leader = Leader()) < 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_GE(leader, 0) << "no replica says it leads";
  Server& follower = *live_[(leader + 1) % live_.size()];
  auto cancel = [&](const std::string& name, v1::SyncJob* job) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::CancelSyncJobRequest req;
    req.set_name(name);
    return follower.stub->CancelSyncJob(&ctx, req, job);
  };

  v1::SyncJob running, queued;
  grpc::Status s = Sync(*live_[leader], MakeRequest(kSrc, Bp(35), {"ap-shanghai"}), &running);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(running.state(), v1::SyncJob::RUNNING);
  s = Sync(follower, MakeRequest(kSrc, Bp(35), {"ap-beijing"}), &queued);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(queued.state(), v1::SyncJob::QUEUED);

  // Asked on the follower, carried out by the leader, answered once durable.
  v1::SyncJob cancelled;
  s = cancel(queued.name(), &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelled.state(), v1::SyncJob::CANCELLED) << cancelled.ShortDebugString();
  v1::SyncJob cancelling;
  s = cancel(running.name(), &cancelling);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelling.state(), v1::SyncJob::CANCELLING) << cancelling.ShortDebugString();

  const std::map<std::string, v1::SyncJob> done =
      WaitAllTerminal({running.name()}, absl::Seconds(60));
  ASSERT_EQ(done.size(), 1u);
  const v1::SyncJob& ended = done.at(running.name());
  EXPECT_EQ(ended.state(), v1::SyncJob::CANCELLED) << ended.ShortDebugString();
  ASSERT_EQ(ended.destinations_size(), 1);
  EXPECT_EQ(ended.destinations(0).copy_cleanup(), v1::Destination::DELETED);
  auto left = emulator_.admin->Blueprints("ap-shanghai");
  ASSERT_TRUE(left.ok()) << left.status();
  for (const auto& b : *left) EXPECT_NE(b.id, ended.destinations(0).blueprint_id());
  const Upstream u = ReadUpstream();
  EXPECT_EQ(u.sync_executed, 1) << "the cancelled QUEUED job must never be sent";

  // Delete works on the follower too.
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::DeleteSyncJobRequest del;
  del.set_name(queued.name());
  google::protobuf::Empty empty;
  s = follower.stub->DeleteSyncJob(&ctx, del, &empty);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::SyncJob gone;
  EXPECT_EQ(Get(*live_[leader], queued.name(), &gone).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace blueprintsync::testing
