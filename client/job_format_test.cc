#include "client/job_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "client/fake_connection.h"
#include "google/protobuf/text_format.h"

namespace blueprintsync::cli {
namespace {

using ::blueprintsync::testing::ParseJob;
using ::testing::HasSubstr;
using ::testing::Not;

namespace v1 = ::blueprintsync::v1;

// 2026-11-27T22:01:02Z
constexpr int64_t kT0 = 1795816862;

const char kRunningJob[] = R"pb(
  name: "syncJobs/j1"
  state: RUNNING
  source_region: "ap-guangzhou"
  blueprint_id: "lhbp-src"
  request_id: "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c"
  create_time { seconds: 1795816862 }
  destinations {
    region: "ap-singapore"
    state: SYNCING
    blueprint_id: "lhbp-sg"
    blueprint_state: "SYNCING"
  }
  destinations { region: "ap-tokyo" state: PENDING }
)pb";

TEST(FormatTimestampTest, Rfc3339Utc) {
  google::protobuf::Timestamp ts;
  EXPECT_EQ(FormatTimestamp(ts), "");
  ts.set_seconds(kT0);
  ts.set_nanos(999999999);
  EXPECT_EQ(FormatTimestamp(ts), "2026-11-27T22:01:02Z");
}

TEST(FormatTableTest, AlignsColumnsAndTrimsTrailingSpace) {
  EXPECT_EQ(FormatTable({{"A", "BB", "C"}, {"long", "x", ""}, {"s"}}),
            "A     BB  C\n"
            "long  x\n"
            "s\n");
}

TEST(FormatJobTextTest, ShowsJobAndEachDestination) {
  const std::string text = FormatJobText(ParseJob(kRunningJob));
  EXPECT_EQ(text,
            "name:        syncJobs/j1\n"
            "state:       RUNNING\n"
            "source:      lhbp-src in ap-guangzhou\n"
            "request id:  3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c\n"
            "created:     2026-11-27T22:01:02Z\n"
            "destinations:\n"
            "  REGION        STATE    BLUEPRINT ID  BLUEPRINT STATE  UPDATED\n"
            "  ap-singapore  SYNCING  lhbp-sg       SYNCING          -\n"
            "  ap-tokyo      PENDING  -             -                -\n");
}

TEST(FormatJobTextTest, ShowsErrorsAndValidateOnlyName) {
  v1::SyncJob job = ParseJob(R"pb(
    state: FAILED
    error {
      code: 5
      message: "blueprint not found"
      tencent_code: "ResourceNotFound.PrivateBlueprintNotFound"
    }
    destinations {
      region: "ap-tokyo"
      state: FAILED
      error { code: 10 message: "copy \x1b[31mfailed" }
    }
  )pb");
  const std::string text = FormatJobText(job);
  EXPECT_THAT(text, HasSubstr("name:   (none: validate-only)\n"));
  EXPECT_THAT(text, HasSubstr("error:  NOT_FOUND (5): blueprint not found (tencent code "
                              "ResourceNotFound.PrivateBlueprintNotFound)\n"));
  EXPECT_THAT(text, HasSubstr("errors:\n  ap-tokyo: ABORTED (10): copy ?[31mfailed\n"));
  EXPECT_THAT(text, Not(HasSubstr("\x1b")));
}

TEST(FormatJobListTextTest, TableAndNextPageToken) {
  v1::ListSyncJobsResponse response;
  *response.add_sync_jobs() = ParseJob(kRunningJob);
  *response.add_sync_jobs() = ParseJob(R"pb(
    name: "syncJobs/j0"
    state: SUCCEEDED
    source_region: "ap-beijing"
    blueprint_id: "lhbp-b"
    destinations { region: "ap-shanghai" state: SUCCEEDED }
  )pb");
  response.set_next_page_token("tok2");
  EXPECT_EQ(FormatJobListText(response),
            "NAME         STATE      BLUEPRINT  SOURCE        DESTINATIONS               CREATED\n"
            "syncJobs/j1  RUNNING    lhbp-src   ap-guangzhou  0/2 ap-singapore,ap-tokyo  "
            "2026-11-27T22:01:02Z\n"
            "syncJobs/j0  SUCCEEDED  lhbp-b     ap-beijing    1/1 ap-shanghai            -\n"
            "next page token: tok2\n");
  EXPECT_EQ(FormatJobListText(v1::ListSyncJobsResponse()), "no sync jobs\n");
}

TEST(ToJsonLineTest, LowerCamelCaseCompactWithoutDefaults) {
  auto json = ToJsonLine(ParseJob(R"pb(
    name: "syncJobs/j1"
    state: RUNNING
    blueprint_id: "lhbp-src"
    create_time { seconds: 1795816862 }
    destinations { region: "ap-tokyo" state: PENDING }
  )pb"));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json,
            "{\"name\":\"syncJobs/j1\",\"state\":\"RUNNING\",\"blueprintId\":\"lhbp-src\","
            "\"destinations\":[{\"region\":\"ap-tokyo\",\"state\":\"PENDING\"}],"
            "\"createTime\":\"2026-11-27T22:01:02Z\"}");
}

TEST(FormatSummaryTest, Succeeded) {
  v1::SyncJob job = ParseJob(R"pb(
    name: "syncJobs/j1"
    state: SUCCEEDED
    destinations { region: "ap-singapore" state: SUCCEEDED }
    destinations { region: "ap-tokyo" state: SUCCEEDED }
  )pb");
  EXPECT_EQ(FormatSummary(job), "job syncJobs/j1 SUCCEEDED (2/2 destinations)\n");
}

TEST(FormatSummaryTest, FailedListsEachFailedDestination) {
  v1::SyncJob job = ParseJob(R"pb(
    name: "syncJobs/j1"
    state: FAILED
    destinations { region: "ap-singapore" state: SUCCEEDED }
    destinations {
      region: "ap-tokyo"
      state: FAILED
      error { code: 4 message: "not NORMAL before the job deadline" }
    }
    destinations {
      region: "ap-seoul"
      state: FAILED
      error { code: 9 message: "SYNCING_FAILED" tencent_request_id: "r-9" }
    }
  )pb");
  EXPECT_EQ(FormatSummary(job),
            "job syncJobs/j1 FAILED (1/3 destinations)\n"
            "  ap-tokyo: DEADLINE_EXCEEDED (4): not NORMAL before the job deadline\n"
            "  ap-seoul: FAILED_PRECONDITION (9): SYNCING_FAILED (request id r-9)\n");
}

TEST(FormatSummaryTest, FailedSubmissionShowsJobError) {
  v1::SyncJob job = ParseJob(R"pb(
    name: "syncJobs/j1"
    state: FAILED
    error {
      code: 8
      message: "quota exceeded"
      tencent_code: "LimitExceeded.BlueprintQuotaLimitExceeded"
    }
    destinations { region: "ap-tokyo" state: FAILED }
  )pb");
  EXPECT_EQ(FormatSummary(job),
            "job syncJobs/j1 FAILED (0/1 destinations)\n"
            "  job: RESOURCE_EXHAUSTED (8): quota exceeded (tencent code "
            "LimitExceeded.BlueprintQuotaLimitExceeded)\n"
            "  ap-tokyo: FAILED (no error recorded)\n");
}

TEST(IsTerminalTest, CancelledEndsAJobCancellingDoesNot) {
  EXPECT_TRUE(IsTerminal(v1::SyncJob::SUCCEEDED));
  EXPECT_TRUE(IsTerminal(v1::SyncJob::FAILED));
  EXPECT_TRUE(IsTerminal(v1::SyncJob::CANCELLED));
  EXPECT_FALSE(IsTerminal(v1::SyncJob::CANCELLING));
  EXPECT_FALSE(IsTerminal(v1::SyncJob::RUNNING));
  EXPECT_FALSE(IsTerminal(v1::SyncJob::QUEUED));
}

TEST(CopyCleanupTextTest, EveryOutcome) {
  auto text = [](const std::string& pb) {
    v1::Destination d;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(pb, &d)) << pb;
    return CopyCleanupText(d);
  };
  EXPECT_EQ(text(R"pb(region: "ap-tokyo")pb"), "");
  EXPECT_EQ(text(R"pb(copy_cleanup: DELETE_PENDING)pb"), "deleting copy...");
  EXPECT_EQ(text(R"pb(copy_cleanup: DELETE_PENDING
                      cleanup_error { code: 9 message: "still SYNCING" })pb"),
            "deleting copy... (last attempt: FAILED_PRECONDITION (9): still SYNCING)");
  EXPECT_EQ(text(R"pb(copy_cleanup: DELETED
                      copy_delete_time { seconds: 1795816865 })pb"),
            "copy deleted 2026-11-27T22:01:05Z");
  EXPECT_EQ(text(R"pb(copy_cleanup: DELETED)pb"), "copy deleted");
  EXPECT_EQ(text(R"pb(copy_cleanup: ALREADY_GONE)pb"), "copy already gone");
  EXPECT_EQ(text(R"pb(copy_cleanup: KEPT)pb"), "copy kept");
  EXPECT_EQ(text(R"pb(copy_cleanup: DELETE_ABANDONED
                      cleanup_error { code: 7 message: "\x1b]0;owned\x07denied" })pb"),
            "copy NOT deleted: PERMISSION_DENIED (7): ?]0;owned?denied");
  EXPECT_EQ(text(R"pb(copy_cleanup: DELETE_ABANDONED)pb"), "copy NOT deleted: no error recorded");
  v1::Destination future;
  future.set_copy_cleanup(static_cast<v1::Destination::CopyCleanup>(42));
  EXPECT_EQ(CopyCleanupText(future), "copy cleanup 42");
}

TEST(FormatJobTextTest, ShowsLifecycleFieldsAndCleanup) {
  const std::string text = FormatJobText(ParseJob(R"pb(
    name: "syncJobs/j2"
    state: CANCELLING
    source_region: "ap-guangzhou"
    blueprint_id: "lhbp-src"
    retry_of: "syncJobs/j1"
    creator: "uri:spiffe://cluster/ns/web/sa/deployer"
    labels { key: "team" value: "web" }
    labels { key: "env" value: "prod" }
    keep_failed_copies: true
    cancel_time { seconds: 1795816870 }
    destinations {
      region: "ap-shanghai"
      state: CANCELLED
      blueprint_id: "lhbp-sh"
      copy_cleanup: DELETED
      copy_delete_time { seconds: 1795816875 }
    }
    destinations {
      region: "ap-beijing"
      state: SYNCING
      blueprint_id: "lhbp-bj"
      copy_cleanup: DELETE_PENDING
    }
  )pb"));
  EXPECT_EQ(text,
            "name:                syncJobs/j2\n"
            "state:               CANCELLING\n"
            "source:              lhbp-src in ap-guangzhou\n"
            "retry of:            syncJobs/j1\n"
            "creator:             uri:spiffe://cluster/ns/web/sa/deployer\n"
            "labels:              env=prod, team=web\n"
            "keep failed copies:  yes\n"
            "cancel requested:    2026-11-27T22:01:10Z\n"
            "destinations:\n"
            "  REGION       STATE      BLUEPRINT ID  BLUEPRINT STATE  UPDATED\n"
            "  ap-shanghai  CANCELLED  lhbp-sh       -                -\n"
            "  ap-beijing   SYNCING    lhbp-bj       -                -\n"
            "cleanup:\n"
            "  ap-shanghai: copy deleted 2026-11-27T22:01:15Z\n"
            "  ap-beijing: deleting copy...\n");
}

TEST(FormatValidateOnlyTextTest, SaysWhatWouldHappenAndTheQueue) {
  EXPECT_EQ(FormatValidateOnlyText(ParseJob(R"pb(
              source_region: "ap-guangzhou"
              blueprint_id: "lhbp-src"
              jobs_ahead: 2
              destinations { region: "ap-shanghai" state: PENDING }
              destinations { region: "ap-beijing" state: PENDING }
            )pb")),
            "valid: would copy lhbp-src in ap-guangzhou to ap-shanghai, ap-beijing; "
            "2 job(s) ahead on this source\n"
            "nothing was created (--validate-only)\n");
  EXPECT_THAT(FormatValidateOnlyText(v1::SyncJob()),
              HasSubstr("would copy - in - to -; 0 job(s) ahead"));
}

TEST(FormatSummaryTest, CancelledListsEachCopysFate) {
  v1::SyncJob job = ParseJob(R"pb(
    name: "syncJobs/j1"
    state: CANCELLED
    destinations { region: "ap-shanghai" state: SUCCEEDED }
    destinations {
      region: "ap-beijing"
      state: CANCELLED
      copy_cleanup: DELETED
      copy_delete_time { seconds: 1795816865 }
    }
    destinations { region: "ap-chengdu" state: CANCELLED }
    destinations {
      region: "ap-nanjing"
      state: FAILED
      error { code: 9 message: "SYNCING_FAILED" }
      copy_cleanup: KEPT
    }
  )pb");
  EXPECT_EQ(FormatSummary(job),
            "job syncJobs/j1 CANCELLED (1/4 destinations)\n"
            "  ap-beijing: CANCELLED; copy deleted 2026-11-27T22:01:05Z\n"
            "  ap-chengdu: CANCELLED\n"
            "  ap-nanjing: FAILED_PRECONDITION (9): SYNCING_FAILED; copy kept\n");
}

}  // namespace
}  // namespace blueprintsync::cli
