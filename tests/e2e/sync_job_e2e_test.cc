// End-to-end: the life of sync jobs through the real server and emulator —
// success, a failed destination, request_id idempotency (also under
// concurrency), an upstream rejection, two jobs on one source, and
// WatchSyncJob.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using v1::Destination;
using v1::SyncJob;

class SyncJobE2eTest : public E2eTest {};

TEST_F(SyncJobE2eTest, JobSucceedsWithTheNewBlueprintIds) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());

  SyncJob job;
  grpc::Status s =
      Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_THAT(job.name(), HasSubstr("syncJobs/"));
  EXPECT_EQ(job.state(), SyncJob::RUNNING) << job.ShortDebugString();
  EXPECT_EQ(job.source_region(), "ap-guangzhou");
  EXPECT_EQ(job.blueprint_id(), "lhbp-gzbase01");
  ASSERT_EQ(job.destinations_size(), 2) << job.ShortDebugString();
  EXPECT_EQ(job.destinations(0).region(), "ap-beijing");
  EXPECT_EQ(job.destinations(1).region(), "ap-shanghai");
  for (const Destination& d : job.destinations()) {
    EXPECT_EQ(d.state(), Destination::SYNCING) << d.ShortDebugString();
    EXPECT_FALSE(d.blueprint_id().empty()) << d.ShortDebugString();
  }
  EXPECT_TRUE(IsSet(job.create_time()));
  EXPECT_TRUE(IsSet(job.submit_time()));
  EXPECT_FALSE(IsSet(job.end_time()));

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  ASSERT_EQ(stats->sync_submissions.size(), 1u);
  const EmulatorSyncSubmission& sub = stats->sync_submissions[0];
  EXPECT_EQ(sub.region, "ap-guangzhou");
  EXPECT_EQ(sub.blueprint_id, "lhbp-gzbase01");
  EXPECT_THAT(sub.destination_regions, ElementsAre("ap-beijing", "ap-shanghai"));
  EXPECT_THAT(sub.destination_blueprint_ids,
              ElementsAre(job.destinations(0).blueprint_id(), job.destinations(1).blueprint_id()));
  EXPECT_EQ(job.upstream_request_id(), sub.request_id);

  auto done = WaitForTerminal(job.name());
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->ShortDebugString();
  EXPECT_TRUE(IsSet(done->end_time()));
  EXPECT_FALSE(done->has_error()) << done->ShortDebugString();
  ASSERT_EQ(done->destinations_size(), 2);
  for (int i = 0; i < 2; ++i) {
    const Destination& d = done->destinations(i);
    EXPECT_EQ(d.region(), job.destinations(i).region());
    EXPECT_EQ(d.blueprint_id(), job.destinations(i).blueprint_id());
    EXPECT_EQ(d.state(), Destination::SUCCEEDED) << d.ShortDebugString();
    EXPECT_EQ(d.blueprint_state(), "NORMAL") << d.ShortDebugString();
  }
  if (IsSet(done->end_time()) && IsSet(done->submit_time())) {
    EXPECT_GE(ToTime(done->end_time()), ToTime(done->submit_time()));
  }

  // The copies exist upstream, NORMAL, under the ids the job reports.
  for (const Destination& d : done->destinations()) {
    auto bps = admin().Blueprints(d.region());
    BPS_ASSERT_OK(bps.status());
    bool found = false;
    for (const EmulatorBlueprint& b : *bps) {
      if (b.id == d.blueprint_id()) {
        found = true;
        EXPECT_EQ(b.state, "NORMAL");
      }
    }
    EXPECT_TRUE(found) << d.blueprint_id() << " not in " << d.region();
  }
  stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
}

TEST_F(SyncJobE2eTest, FailedDestinationFailsTheJobAndKeepsTheOtherOutcome) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(admin().UpdateConfig(R"({"fail_regions":["ap-shanghai"]})"));
  BPS_ASSERT_OK(StartServer());

  SyncJob job;
  grpc::Status s =
      Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(job.state(), SyncJob::RUNNING) << job.ShortDebugString();

  auto done = WaitForTerminal(job.name());
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::FAILED) << done->ShortDebugString();
  EXPECT_TRUE(IsSet(done->end_time()));
  ASSERT_EQ(done->destinations_size(), 2);
  const Destination& beijing = done->destinations(0);
  const Destination& shanghai = done->destinations(1);
  EXPECT_EQ(beijing.region(), "ap-beijing");
  EXPECT_EQ(beijing.state(), Destination::SUCCEEDED) << beijing.ShortDebugString();
  EXPECT_EQ(beijing.blueprint_state(), "NORMAL");
  EXPECT_FALSE(beijing.has_error());
  EXPECT_EQ(shanghai.region(), "ap-shanghai");
  EXPECT_EQ(shanghai.state(), Destination::FAILED) << shanghai.ShortDebugString();
  EXPECT_EQ(shanghai.blueprint_state(), "SYNCING_FAILED");
  ASSERT_TRUE(shanghai.has_error()) << shanghai.ShortDebugString();
  EXPECT_NE(shanghai.error().code(), 0);
  EXPECT_THAT(shanghai.error().message(), HasSubstr(shanghai.blueprint_id()));
  EXPECT_THAT(shanghai.error().message(), HasSubstr("ap-shanghai"));
}

TEST_F(SyncJobE2eTest, RequestIdReuseReturnsTheSameJobWithOneUpstreamCall) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());
  const std::string request_id = "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c";
  const v1::SyncBlueprintRequest request =
      MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"}, request_id);

  // Eight callers at once, as retrying clients would.
  constexpr int kCallers = 8;
  std::vector<grpc::Status> statuses(kCallers);
  std::vector<SyncJob> jobs(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] { statuses[i] = Sync(request, &jobs[i]); });
  }
  for (std::thread& t : callers) t.join();
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_code() << " "
                                  << statuses[i].error_message();
    EXPECT_FALSE(jobs[i].name().empty());
    EXPECT_EQ(jobs[i].name(), jobs[0].name()) << i;
    EXPECT_EQ(jobs[i].request_id(), request_id);
  }

  // And once more afterwards.
  SyncJob again;
  grpc::Status s = Sync(request, &again);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(again.name(), jobs[0].name());

  auto done = WaitForTerminal(jobs[0].name());
  BPS_ASSERT_OK(done.status());
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->ShortDebugString();

  // The same UUID in upper case is the same key.
  v1::SyncBlueprintRequest upper = request;
  upper.set_request_id("3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C");
  s = Sync(upper, &again);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(again.name(), jobs[0].name());

  // Even after the job finished, the id still means this job.
  s = Sync(request, &again);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(again.name(), jobs[0].name());
  EXPECT_EQ(again.state(), SyncJob::SUCCEEDED);

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
  EXPECT_EQ(stats->sync_submissions.size(), 1u);

  auto all = ListAll("");
  BPS_ASSERT_OK(all.status());
  EXPECT_EQ(all->size(), 1u);

  // Same id, different request: rejected, naming request_id.
  v1::SyncBlueprintRequest different = request;
  different.clear_destination_regions();
  different.add_destination_regions("ap-chengdu");
  SyncJob rejected;
  s = Sync(different, &rejected);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("request_id"));
  RichError rich = ParseRichError(s);
  EXPECT_THAT(rich.violation_fields(), ElementsAre("request_id")) << s.error_message();

  stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
  EXPECT_EQ(stats->sync_submissions.size(), 1u);
}

TEST_F(SyncJobE2eTest, UpstreamRejectionIsSurfacedAndTheJobIsKeptFailed) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());

  SyncJob job;
  grpc::Status s = Sync(MakeRequest("ap-guangzhou", "lhbp-zz404zzz", {"ap-beijing"}), &job);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  RichError rich = ParseRichError(s);
  ASSERT_TRUE(rich.info.has_value()) << "no ErrorInfo in " << s.error_message();
  const auto& md = rich.info->metadata();
  ASSERT_EQ(md.count("tencent_code"), 1u);
  EXPECT_EQ(md.at("tencent_code"), "ResourceNotFound.PrivateBlueprintNotFound");
  ASSERT_EQ(md.count("tencent_request_id"), 1u);
  EXPECT_FALSE(md.at("tencent_request_id").empty());

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 0);

  auto jobs = ListAll("");
  BPS_ASSERT_OK(jobs.status());
  ASSERT_EQ(jobs->size(), 1u);
  const SyncJob& failed = (*jobs)[0];
  EXPECT_EQ(failed.state(), SyncJob::FAILED) << failed.ShortDebugString();
  EXPECT_EQ(failed.blueprint_id(), "lhbp-zz404zzz");
  EXPECT_TRUE(IsSet(failed.end_time()));
  ASSERT_TRUE(failed.has_error()) << failed.ShortDebugString();
  EXPECT_EQ(failed.error().code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(failed.error().tencent_code(), "ResourceNotFound.PrivateBlueprintNotFound");
  EXPECT_EQ(failed.error().tencent_request_id(), md.at("tencent_request_id"));

  // GetSyncJob and the FAILED filter agree.
  SyncJob got;
  s = Get(failed.name(), &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.state(), SyncJob::FAILED);
  auto by_state = ListAll("state = FAILED");
  BPS_ASSERT_OK(by_state.status());
  EXPECT_EQ(by_state->size(), 1u);
}

TEST_F(SyncJobE2eTest, TwoJobsOnOneSourceRunOneAfterTheOther) {
  // Long enough that job A is surely still running when B's short deadline
  // makes the server answer B as it stands.
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "3000"}));
  BPS_ASSERT_OK(StartServer());

  SyncJob a, b;
  grpc::Status s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &a);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(a.state(), SyncJob::RUNNING) << a.ShortDebugString();
  s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-shanghai"}), &b, absl::Seconds(2));
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(b.state(), SyncJob::QUEUED) << b.ShortDebugString();
  EXPECT_NE(a.name(), b.name());
  EXPECT_FALSE(IsSet(b.submit_time()));
  ASSERT_EQ(b.destinations_size(), 1);
  EXPECT_EQ(b.destinations(0).state(), Destination::PENDING);

  auto done_a = WaitForTerminal(a.name());
  BPS_ASSERT_OK(done_a.status());
  auto done_b = WaitForTerminal(b.name());
  BPS_ASSERT_OK(done_b.status());
  EXPECT_EQ(done_a->state(), SyncJob::SUCCEEDED) << done_a->ShortDebugString();
  EXPECT_EQ(done_b->state(), SyncJob::SUCCEEDED) << done_b->ShortDebugString();
  ASSERT_TRUE(IsSet(done_a->end_time()));
  ASSERT_TRUE(IsSet(done_b->submit_time()));
  EXPECT_GE(ToTime(done_b->submit_time()), ToTime(done_a->end_time()));

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  const EmulatorActionStats sync = stats->Action("SyncBlueprint");
  EXPECT_EQ(sync.executed, 2);
  EXPECT_EQ(sync.errors, 0) << "a SyncBlueprint was rejected (OperationDenied: source busy?)";
  EXPECT_EQ(sync.received, 2);
  ASSERT_EQ(stats->sync_submissions.size(), 2u);
  EXPECT_THAT(stats->sync_submissions[0].destination_regions, ElementsAre("ap-beijing"));
  EXPECT_THAT(stats->sync_submissions[1].destination_regions, ElementsAre("ap-shanghai"));
}

int Rank(SyncJob::State s) {
  switch (s) {
    case SyncJob::QUEUED:
      return 1;
    case SyncJob::RUNNING:
      return 2;
    case SyncJob::SUCCEEDED:
    case SyncJob::FAILED:
      return 3;
    default:
      return 0;
  }
}

TEST_F(SyncJobE2eTest, WatchStreamsToTheTerminalState) {
  // Long enough that the watch surely starts before the copies finish, even
  // on a loaded CI machine.
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "4000"}));
  BPS_ASSERT_OK(StartServer());

  SyncJob job;
  grpc::Status s =
      Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(job.state(), SyncJob::RUNNING);

  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::WatchSyncJobRequest request;
  request.set_name(job.name());
  auto reader = stub().WatchSyncJob(&context, request);
  std::vector<SyncJob> seen;
  SyncJob msg;
  while (reader->Read(&msg)) seen.push_back(msg);
  s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_FALSE(seen.empty());
  // The first message is the job as it stood (RUNNING: the copies take 4 s).
  EXPECT_EQ(seen.front().state(), SyncJob::RUNNING) << seen.front().ShortDebugString();
  EXPECT_EQ(seen.front().name(), job.name());
  EXPECT_EQ(seen.back().state(), SyncJob::SUCCEEDED) << seen.back().ShortDebugString();
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_GE(Rank(seen[i].state()), Rank(seen[i - 1].state())) << "message " << i;
    EXPECT_EQ(seen[i].name(), job.name());
    for (int d = 0; d < seen[i].destinations_size(); ++d) {
      EXPECT_GE(seen[i].destinations(d).state(), seen[i - 1].destinations(d).state())
          << "message " << i << " destination " << d;
    }
  }
  for (size_t i = 0; i + 1 < seen.size(); ++i) {
    EXPECT_FALSE(IsTerminalJobState(seen[i].state())) << "message after the terminal one";
  }
  for (const Destination& d : seen.back().destinations()) {
    EXPECT_EQ(d.state(), Destination::SUCCEEDED);
  }

  // A finished job: one message, then OK.
  {
    grpc::ClientContext c2;
    c2.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto r2 = stub().WatchSyncJob(&c2, request);
    std::vector<SyncJob> again;
    while (r2->Read(&msg)) again.push_back(msg);
    s = r2->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].state(), SyncJob::SUCCEEDED);
  }
}

TEST_F(SyncJobE2eTest, WatchRejectsUnknownAndMalformedNames) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "1500"}));
  BPS_ASSERT_OK(StartServer());

  struct Case {
    std::string name;
    grpc::StatusCode code;
  };
  for (const Case& c :
       {Case{"syncJobs/0b7e2c52-6f0e-4a55-9d1e-5b7c3f1e2a90", grpc::StatusCode::NOT_FOUND},
        Case{"jobs/42", grpc::StatusCode::INVALID_ARGUMENT},
        Case{"", grpc::StatusCode::INVALID_ARGUMENT}}) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::WatchSyncJobRequest request;
    request.set_name(c.name);
    auto reader = stub().WatchSyncJob(&context, request);
    SyncJob msg;
    EXPECT_FALSE(reader->Read(&msg)) << c.name;
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), c.code) << "\"" << c.name << "\": " << s.error_message();
    if (c.code == grpc::StatusCode::INVALID_ARGUMENT) {
      EXPECT_THAT(ParseRichError(s).violation_fields(), ElementsAre("name")) << c.name;
    }
    // GetSyncJob answers the same way.
    SyncJob job;
    s = Get(c.name, &job);
    EXPECT_EQ(s.error_code(), c.code) << "GetSyncJob \"" << c.name << "\": " << s.error_message();
  }
}

}  // namespace
}  // namespace blueprintsync::testing
