// End-to-end: a hostile upstream (issue #16). The emulator answers with
// megabyte error messages, 100 KiB codes and RequestIds, ids holding NUL
// bytes and garbled blueprint fields; whatever it sends, nothing unbounded
// may reach a job record, a gRPC answer or a log line, GetSyncJob and the
// default ListSyncJobs page keep working, and a SyncBlueprint answer that
// cannot be read is reconciled, never sent a second time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using v1::SyncJob;

// Generous ceilings, far below what the emulator sends: the service's own
// caps (service/tencent/upstream_bounds.h) are smaller still.
constexpr size_t kMaxStoredText = 4096;
constexpr size_t kMaxStoredId = 256;
constexpr size_t kMaxLogLine = 16 * 1024;

bool IsCustomBlueprintId(const std::string& id) {
  if (id.size() != 13 || id.rfind("lhbp-", 0) != 0) return false;
  for (char c : id.substr(5)) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

class UpstreamE2eTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    ASSERT_TRUE(StartEmulator({"--sync-duration-ms", "800"}).ok());
    ASSERT_TRUE(StartServer({"--poll-interval", "200ms", "--reconcile-grace", "300ms"}).ok());
  }

  // Everything a caller can read about the job is bounded.
  static void ExpectBounded(const SyncJob& job) {
    EXPECT_LE(job.ByteSizeLong(), 4 * kMaxStoredText) << "job of " << job.ByteSizeLong() << " bytes";
    EXPECT_LE(job.upstream_request_id().size(), kMaxStoredId);
    EXPECT_EQ(job.upstream_request_id().find('\0'), std::string::npos);
    EXPECT_LE(job.error().message().size(), kMaxStoredText);
    EXPECT_LE(job.error().tencent_code().size(), kMaxStoredId);
    EXPECT_LE(job.error().tencent_request_id().size(), kMaxStoredId);
    for (const auto& d : job.destinations()) {
      EXPECT_TRUE(d.blueprint_id().empty() || IsCustomBlueprintId(d.blueprint_id()))
          << "destination " << d.region() << " holds an id of " << d.blueprint_id().size()
          << " bytes";
      EXPECT_LE(d.blueprint_state().size(), 64u);
      EXPECT_EQ(d.blueprint_state().find('\0'), std::string::npos);
      EXPECT_LE(d.error().message().size(), kMaxStoredText);
    }
  }

  // GetSyncJob of `name` and the default ListSyncJobs page both answer.
  void ExpectReadable(const std::string& name) {
    SyncJob got;
    grpc::Status s = Get(name, &got);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message().substr(0, 300);
    ExpectBounded(got);
    v1::ListSyncJobsResponse page;
    s = List(v1::ListSyncJobsRequest(), &page);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message().substr(0, 300);
    EXPECT_GE(page.sync_jobs_size(), 1);
    for (const SyncJob& j : page.sync_jobs()) ExpectBounded(j);
  }

  // No line the server wrote is longer than kMaxLogLine.
  void ExpectBoundedLogs() {
    for (const std::string& text : {server_process().Stdout(), server_process().Stderr()}) {
      size_t longest = 0;
      for (absl::string_view line : absl::StrSplit(text, '\n')) {
        longest = std::max(longest, line.size());
      }
      EXPECT_LE(longest, kMaxLogLine) << "a server log line of " << longest << " bytes";
    }
  }

  // Submits one job while `rule` is armed; answers the job's name (from the
  // answer, or from the list when the call itself failed).
  std::string Submit(const std::string& rule, grpc::Status* status) {
    EXPECT_TRUE(admin().SetFaults(absl::StrCat(R"({"rules":[)", rule, "]}")).ok());
    SyncJob job;
    *status = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing", "ap-shanghai"}),
                   &job);
    EXPECT_LE(status->error_message().size(), kMaxStoredText)
        << "a gRPC error message of " << status->error_message().size() << " bytes";
    if (status->ok()) return job.name();
    v1::ListSyncJobsResponse page;
    grpc::Status s = List(v1::ListSyncJobsRequest(), &page);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message().substr(0, 300);
    return page.sync_jobs_size() == 1 ? page.sync_jobs(0).name() : "";
  }

  EmulatorActionStats SyncStats() {
    auto stats = admin().Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->Action("SyncBlueprint") : EmulatorActionStats{};
  }
};

// A documented rejection whose Message is 2 MiB (with NUL bytes, a line
// break and multi-byte characters) and whose RequestId is 100 KiB: the job
// fails with the code kept and the rest cut.
TEST_F(UpstreamE2eTest, HugeRejectionFailsTheJobWithABoundedError) {
  grpc::Status status;
  const std::string name = Submit(
      R"({"action":"SyncBlueprint","fault":"hostile_error","phase":"before","count":1,)"
      R"("code":"FailedOperation.UnableToSyncBlueprint","code_bytes":0})",
      &status);
  ASSERT_FALSE(name.empty());
  auto done = WaitForTerminal(name, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status().ToString().substr(0, 300);
  EXPECT_EQ(done->state(), SyncJob::FAILED);
  EXPECT_EQ(done->error().tencent_code(), "FailedOperation.UnableToSyncBlueprint");
  EXPECT_NE(done->error().message().find("[cut: "), std::string::npos)
      << "the message should say it was cut";
  ExpectBounded(*done);
  ExpectReadable(name);
  ExpectBoundedLogs();
  EXPECT_EQ(SyncStats().executed, 0);
}

// An error envelope whose Code is 100 KiB is no Tencent answer: after an
// executed call it is an unknown outcome, reconciled against the upstream
// state, and the copies the one execution made are adopted.
TEST_F(UpstreamE2eTest, HugeErrorCodeAfterExecutionIsReconciledNotResent) {
  grpc::Status status;
  const std::string name = Submit(
      R"({"action":"SyncBlueprint","fault":"hostile_error","phase":"after","count":1})", &status);
  ASSERT_FALSE(name.empty());
  auto done = WaitForTerminal(name, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status().ToString().substr(0, 300);
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->error().message().substr(0, 300);
  ExpectBounded(*done);
  ExpectReadable(name);
  ExpectBoundedLogs();
  const EmulatorActionStats sync = SyncStats();
  EXPECT_EQ(sync.executed, 1) << "the job must create exactly one set of paid copies";
  EXPECT_EQ(sync.received, 1);
}

// A SyncBlueprint success whose DestinationBlueprintIds are 5 KiB of
// garbage with NUL bytes (and whose RequestId is as bad): the ids are never
// stored or polled; the call executed, so the job is reconciled and ends
// with the real copies.
TEST_F(UpstreamE2eTest, GarbledSyncAnswerIsReconciledNotResent) {
  grpc::Status status;
  const std::string name = Submit(
      R"({"action":"SyncBlueprint","fault":"hostile_fields","phase":"after","count":1})", &status);
  ASSERT_FALSE(name.empty());
  auto done = WaitForTerminal(name, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status().ToString().substr(0, 300);
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->error().message().substr(0, 300);
  ExpectBounded(*done);
  ExpectReadable(name);
  ExpectBoundedLogs();
  const EmulatorActionStats sync = SyncStats();
  EXPECT_EQ(sync.executed, 1);
  EXPECT_EQ(sync.received, 1);
  auto stats = admin().Stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->sync_submissions.size(), 1u);
  std::vector<std::string> tracked;
  for (const auto& d : done->destinations()) tracked.push_back(d.blueprint_id());
  EXPECT_THAT(tracked, ::testing::UnorderedElementsAreArray(
                           stats->sync_submissions[0].destination_blueprint_ids));
}

// DescribeBlueprints answers whose names, states and CreatedTimes are 5 KiB
// of garbage: polls fail (nothing of them is stored), the job stays
// readable, and once the upstream is sane again the job completes.
TEST_F(UpstreamE2eTest, GarbledDescribeAnswersAreNotStored) {
  grpc::Status status;
  const std::string name = Submit(
      R"({"action":"DescribeBlueprints","fault":"hostile_fields","phase":"after"})", &status);
  ASSERT_TRUE(status.ok()) << status.error_message().substr(0, 300);
  // Several polls meet the garbled answers.
  for (int i = 0; i < 300; ++i) {
    auto stats = admin().Stats();
    ASSERT_TRUE(stats.ok());
    if (stats->Fault("hostile_fields") >= 4) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ExpectReadable(name);
  SyncJob mid;
  ASSERT_TRUE(Get(name, &mid).ok());
  for (const auto& d : mid.destinations()) {
    EXPECT_THAT(d.blueprint_state(), ::testing::AnyOf("", "SYNCING", "NORMAL"))
        << "a garbled state was stored (" << d.blueprint_state().size() << " bytes)";
  }
  ASSERT_TRUE(admin().SetFaults(R"({"rules":[]})").ok());
  auto done = WaitForTerminal(name, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status().ToString().substr(0, 300);
  EXPECT_EQ(done->state(), SyncJob::SUCCEEDED) << done->error().message().substr(0, 300);
  ExpectBounded(*done);
  ExpectBoundedLogs();
  EXPECT_EQ(SyncStats().executed, 1);
}

}  // namespace
}  // namespace blueprintsync::testing
