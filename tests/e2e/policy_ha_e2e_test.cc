// Replication policies with two real blueprint-syncd replicas on one real
// PostgreSQL server (a throwaway one on loopback) and one lighthouse-emulator:
// only the leader acts on policies, a policy created on the follower is
// acted on by the leader within seconds, and a leader SIGKILLed while a
// policy's SyncBlueprint call is on the wire is replaced by one that
// converges the policy without a second execution.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/e2e/policy_e2e_util.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::testing {
namespace {

using v1::SyncPolicy;

constexpr char kSrc[] = "ap-guangzhou";
constexpr char kFamily[] = "web-golden";
constexpr char kV1[] = "lhbp-wgold001";
const std::vector<std::string> kFour = {"ap-beijing", "ap-shanghai", "ap-chengdu", "ap-nanjing"};
constexpr absl::Duration kLease = absl::Seconds(3);
constexpr absl::Duration kConverge = absl::Seconds(90);

class PolicyHaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bps-policy-ha-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto pg = PostgresServer::Create();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = *std::move(pg);
    auto dsn = pg_->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    // Tencent's limits, for the whole deployment.
    auto emu = testing::StartEmulator({"--sync-duration-ms", "3000", "--rate-limit",
                                       "SyncBlueprint=20", "--rate-limit", "DescribeBlueprints=10"},
                                      dir_ + "/emulator");
    ASSERT_TRUE(emu.ok()) << emu.status();
    emulator_ = *std::move(emu);
    ASSERT_TRUE(
        emulator_.admin->PutBlueprints(SeedNamedJson(kSrc, kV1, kFamily, "2024-06-15T08:00:00Z"))
            .ok());
  }

  void TearDown() override {
    for (const auto& s : all_) {
      for (const std::string& text : {s->process->Stdout(), s->process->Stderr()}) {
        EXPECT_EQ(text.find(kTestSecretKey), std::string::npos) << "a replica logged the key";
        EXPECT_EQ(text.find(pg_->password()), std::string::npos)
            << "a replica logged the database password";
      }
    }
    if (HasFailure()) {
      for (size_t i = 0; i < all_.size(); ++i) {
        const std::string out = all_[i]->process->Stdout();
        std::cerr << "--- replica " << i << " stdout tail:\n"
                  << (out.size() > 6000 ? out.substr(out.size() - 6000) : out) << "\n";
      }
      if (pg_) std::cerr << "--- postgres log tail:\n" << pg_->LogTail() << "\n";
      std::cerr << "logs kept in " << dir_ << "\n";
    }
    live_.clear();
    all_.clear();
    emulator_ = Emulator{};
    pg_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void StartReplicas(int n, const std::string& policy_interval) {
    for (int i = 0; i < n; ++i) {
      auto s =
          testing::StartServer(emulator_.url, dsn_,
                               {"--leader-lease", absl::FormatDuration(kLease), "--follow-interval",
                                "200ms", "--poll-interval", "300ms", "--reconcile-grace", "1s",
                                "--policy-interval", policy_interval, "--policy-backoff-max", "4s"},
                               absl::StrCat(dir_, "/replica", all_.size()));
      ASSERT_TRUE(s.ok()) << s.status();
      all_.push_back(std::make_shared<Server>(*std::move(s)));
      live_.push_back(all_.back());
    }
  }

  // The live replica whose latest leadership line says it leads; -1 if none
  // within `timeout`.
  int WaitForLeader(absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    do {
      for (size_t i = 0; i < live_.size(); ++i) {
        const std::string out = live_[i]->process->Stdout();
        const size_t became = out.rfind("\"msg\":\"leading: resumed unfinished jobs\"");
        const size_t lost = out.rfind("\"msg\":\"no longer leading");
        if (became != std::string::npos && (lost == std::string::npos || lost < became)) {
          return static_cast<int>(i);
        }
      }
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < end);
    return -1;
  }

  std::function<v1::BlueprintSync::Stub&()> StubOf(size_t i) {
    return [this, i]() -> v1::BlueprintSync::Stub& { return *live_[i]->stub; };
  }

  EmulatorStats Stats() {
    auto stats = emulator_.admin->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : EmulatorStats{};
  }

  std::string dir_;
  std::unique_ptr<PostgresServer> pg_;
  std::string dsn_;
  Emulator emulator_;
  std::vector<std::shared_ptr<Server>> all_;  // every replica started
  std::vector<std::shared_ptr<Server>> live_;
};

TEST_F(PolicyHaE2eTest, LeaderKilledDuringAPolicySyncTheNewLeaderConvergesWithoutADuplicate) {
  StartReplicas(2, "1s");
  const int leader = WaitForLeader(absl::Seconds(20));
  ASSERT_GE(leader, 0) << "no replica says it leads";
  const size_t follower = 1 - leader;
  // The policy's SyncBlueprint executes upstream, then its answer is held
  // back: the leader dies not knowing whether it went through.
  ASSERT_TRUE(emulator_.admin
                  ->SetFaults(R"({"rules":[{"action":"SyncBlueprint","fault":"latency",)"
                              R"("phase":"after","latency_ms":4000}]})")
                  .ok());
  SyncPolicy created;
  grpc::Status s = CreatePolicy(*live_[leader]->stub, "web-golden",
                                FamilyPolicy(kSrc, kFamily, kFour, 1), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const absl::Time end = absl::Now() + absl::Seconds(30);
  while (Stats().sync_submissions.empty() && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Stats().sync_submissions.size(), 1u) << "no SyncBlueprint in flight to kill";
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(live_[leader]->process->Kill().ok());
  ASSERT_TRUE(emulator_.admin->SetFaults(R"({"rules":[]})").ok());
  std::shared_ptr<Server> survivor = live_[follower];
  live_ = {survivor};

  auto converged = WaitForPolicy(StubOf(0), created.name(), FullyInSync, kConverge);
  ASSERT_TRUE(converged.ok()) << converged.status();
  const absl::Duration took = absl::Now() - killed;
  EXPECT_EQ(WaitForLeader(absl::ZeroDuration()), 0) << "the survivor does not say it leads";
  EXPECT_EQ(converged->source_blueprint_id(), kV1);
  ExpectServedUpstream(*survivor->stub, *emulator_.admin, *converged);

  const EmulatorStats stats = Stats();
  EXPECT_EQ(stats.Action("SyncBlueprint").executed, 1) << "a duplicate SyncBlueprint execution";
  const auto per = SubmissionsPerSourceAndRegion(stats.sync_submissions);
  for (const std::string& region : kFour) {
    EXPECT_EQ(per.count({kV1, region}) ? per.at({kV1, region}) : 0, 1) << region;
  }
  auto jobs = PolicyJobs(*survivor->stub, created.name());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_EQ(jobs->size(), 1u) << "the new leader started a second job for the policy";
  EXPECT_EQ(stats.Action("SyncBlueprint").throttled, 0);
  EXPECT_EQ(stats.Action("DescribeBlueprints").throttled, 0);
  std::cout << absl::StrFormat(
      "[policy ha figures] leader SIGKILLed with the policy's SyncBlueprint in flight: in sync "
      "on the new leader %s later (lease %s), SyncBlueprint executed %d\n",
      absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))), absl::FormatDuration(kLease),
      static_cast<int>(stats.Action("SyncBlueprint").executed));
}

TEST_F(PolicyHaE2eTest, APolicyCreatedOnTheFollowerIsActedOnByTheLeaderWithinSeconds) {
  // A full pass only every 60 s: acting within seconds can only come from
  // the leader noticing the change another replica recorded.
  StartReplicas(2, "60s");
  const int leader = WaitForLeader(absl::Seconds(20));
  ASSERT_GE(leader, 0) << "no replica says it leads";
  const size_t follower = 1 - leader;
  // Let the leader's first pass (at start) go by.
  absl::SleepFor(absl::Seconds(1));

  SyncPolicy created;
  grpc::Status s =
      CreatePolicy(*live_[follower]->stub, "web-golden",
                   FamilyPolicy(kSrc, kFamily, {"ap-beijing", "ap-shanghai"}, 1), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The leader records the job it started in the policy's status; the
  // follower reads it from the store. (The policy reads in_sync only at the
  // leader's next pass after the job ends, 60 s away here: not waited for.)
  auto started = WaitForPolicy(
      StubOf(follower), created.name(),
      [](const SyncPolicy& p) { return p.regions_size() == 2 && !p.regions(0).last_job().empty(); },
      kConverge);
  ASSERT_TRUE(started.ok()) << started.status();
  v1::SyncJob job;
  s = GetJob(*live_[follower]->stub, started->regions(0).last_job(), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.policy(), created.name());
  EXPECT_EQ(job.blueprint_id(), kV1);
  EXPECT_EQ(job.destinations_size(), 2);
  auto jobs = PolicyJobs(*live_[follower]->stub, created.name());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 1u);
  const absl::Duration acted = ToTime(job.create_time()) - ToTime(created.create_time());
  // The leader checks for changes every second (the controller's change
  // poll); 5 s of slack for a loaded machine, far below the 60 s interval.
  EXPECT_LE(acted, absl::Seconds(6)) << "the leader did not act on the follower's policy soon";
  // Only the leader called Tencent Cloud.
  EXPECT_EQ(live_[follower]->process->Stdout().find("\"msg\":\"job submitted\""), std::string::npos)
      << "the follower submitted a job";
  // The job runs to its end on the leader.
  const absl::Time end = absl::Now() + kConverge;
  while (!IsTerminalJobState(job.state()) && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(100));
    s = GetJob(*live_[follower]->stub, job.name(), &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(job.state(), v1::SyncJob::SUCCEEDED) << job.ShortDebugString();
  EXPECT_EQ(Stats().Action("SyncBlueprint").executed, 1);
  std::cout << absl::StrFormat(
      "[policy ha figures] policy created on the follower: the leader's job created %s later "
      "(policy interval 60s)\n",
      absl::FormatDuration(absl::Trunc(acted, absl::Milliseconds(1))));
}

}  // namespace
}  // namespace blueprintsync::testing
