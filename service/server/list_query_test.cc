#include "service/server/list_query.h"

#include <climits>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "blueprintsync/internal/job_record.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jobs/job_state.h"

namespace blueprintsync::server {
namespace {

using ::testing::HasSubstr;

v1::ListSyncJobsRequest Req(const std::string& filter, int page_size = 0,
                            const std::string& token = "") {
  v1::ListSyncJobsRequest r;
  r.set_filter(filter);
  r.set_page_size(page_size);
  r.set_page_token(token);
  return r;
}

struct Accepted {
  std::string filter;
  std::optional<v1::SyncJob::State> state;
  std::optional<std::string> blueprint_id;
  std::optional<std::string> source_region;
};

class FilterAcceptedTest : public ::testing::TestWithParam<Accepted> {};

TEST_P(FilterAcceptedTest, Parses) {
  auto q = ParseListRequest(Req(GetParam().filter));
  ASSERT_TRUE(q.ok()) << GetParam().filter << ": " << q.status();
  EXPECT_EQ(q->state, GetParam().state);
  EXPECT_EQ(q->blueprint_id, GetParam().blueprint_id);
  EXPECT_EQ(q->source_region, GetParam().source_region);
  EXPECT_EQ(q->cursor, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Table, FilterAcceptedTest,
    ::testing::Values(
        Accepted{"", std::nullopt, std::nullopt, std::nullopt},
        Accepted{"   ", std::nullopt, std::nullopt, std::nullopt},
        Accepted{"state = RUNNING", v1::SyncJob::RUNNING, std::nullopt, std::nullopt},
        Accepted{"state=QUEUED", v1::SyncJob::QUEUED, std::nullopt, std::nullopt},
        Accepted{"state = succeeded", v1::SyncJob::SUCCEEDED, std::nullopt, std::nullopt},
        Accepted{"state = \"FAILED\"", v1::SyncJob::FAILED, std::nullopt, std::nullopt},
        Accepted{"blueprint_id = \"lhbp-ls883feh\"", std::nullopt, "lhbp-ls883feh", std::nullopt},
        Accepted{"blueprint_id = lhbp-ls883feh", std::nullopt, "lhbp-ls883feh", std::nullopt},
        Accepted{"source_region = ap-guangzhou AND state = RUNNING", v1::SyncJob::RUNNING,
                 std::nullopt, "ap-guangzhou"},
        Accepted{"state = RUNNING and blueprint_id = \"lhbp-ls883feh\" AnD "
                 "source_region=\"ap-guangzhou\"",
                 v1::SyncJob::RUNNING, "lhbp-ls883feh", "ap-guangzhou"},
        Accepted{"\tstate\n=\nRUNNING\t", v1::SyncJob::RUNNING, std::nullopt, std::nullopt},
        Accepted{"blueprint_id = \"with space AND = inside\"", std::nullopt,
                 "with space AND = inside", std::nullopt},
        Accepted{"blueprint_id = \"\"", std::nullopt, "", std::nullopt}));

struct Rejected {
  std::string filter;
  std::string rule;
  std::string mentions;
};

class FilterRejectedTest : public ::testing::TestWithParam<Rejected> {};

TEST_P(FilterRejectedTest, IsInvalidArgumentNamingFilter) {
  auto q = ParseListRequest(Req(GetParam().filter));
  ASSERT_FALSE(q.ok()) << "accepted: " << GetParam().filter;
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  auto rule = jobs::GetFieldRule(q.status());
  ASSERT_TRUE(rule.has_value()) << q.status();
  EXPECT_EQ(rule->field, "filter");
  EXPECT_EQ(rule->rule, GetParam().rule);
  EXPECT_THAT(std::string(q.status().message()), HasSubstr(GetParam().mentions));
}

INSTANTIATE_TEST_SUITE_P(
    Table, FilterRejectedTest,
    ::testing::Values(
        Rejected{"state", "INVALID_FILTER", "incomplete"},
        Rejected{"state =", "INVALID_FILTER", "incomplete"},
        Rejected{"state RUNNING", "INVALID_FILTER", "incomplete"},
        Rejected{"state RUNNING x", "INVALID_FILTER", "expected \"=\" after state"},
        Rejected{"state : RUNNING", "INVALID_FILTER", "expected \"=\""},
        Rejected{"state = BOGUS", "INVALID_FILTER", "unknown state \"BOGUS\""},
        Rejected{"state = STATE_UNSPECIFIED", "INVALID_FILTER", "unknown state"},
        Rejected{"state = 2", "INVALID_FILTER", "unknown state"},
        Rejected{"owner = me", "INVALID_FILTER", "unknown field \"owner\""},
        Rejected{"State = RUNNING", "INVALID_FILTER", "unknown field"},
        Rejected{"\"state\" = RUNNING", "INVALID_FILTER", "unknown field"},
        Rejected{"state = RUNNING OR state = QUEUED", "INVALID_FILTER", "expected AND"},
        Rejected{"state = RUNNING state = QUEUED", "INVALID_FILTER", "expected AND"},
        Rejected{"state = RUNNING \"AND\" state = QUEUED", "INVALID_FILTER", "expected AND"},
        Rejected{"state = RUNNING AND", "INVALID_FILTER", "AND must be followed"},
        Rejected{"AND state = RUNNING", "INVALID_FILTER", "expected \"=\" after AND"},
        Rejected{"blueprint_id = \"lhbp-ls883feh", "INVALID_FILTER", "unterminated"},
        Rejected{"state != RUNNING", "INVALID_FILTER", ""},
        Rejected{"state = RUNNING, blueprint_id = x", "INVALID_FILTER", ""},
        Rejected{std::string(1025, ' '), "FILTER_TOO_LONG", "1024"}));

TEST(FilterTest, LongUnknownFieldIsTruncatedInTheMessage) {
  const std::string field(300, 'f');
  auto q = ParseListRequest(Req(field + " = x"));
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(std::string(q.status().message()), ::testing::Not(HasSubstr(field)));
  EXPECT_THAT(std::string(q.status().message()), HasSubstr(std::string(64, 'f') + "..."));
}

TEST(FilterTest, MaximumLengthIsAccepted) {
  std::string filter = "state = RUNNING";
  filter.resize(1024, ' ');
  EXPECT_TRUE(ParseListRequest(Req(filter)).ok());
}

TEST(PageSizeTest, Rules) {
  EXPECT_EQ(ParseListRequest(Req("", 0))->page_size, kDefaultPageSize);
  EXPECT_EQ(kDefaultPageSize, 50);
  EXPECT_EQ(ParseListRequest(Req("", 1))->page_size, 1);
  EXPECT_EQ(ParseListRequest(Req("", 50))->page_size, 50);
  EXPECT_EQ(ParseListRequest(Req("", 1000))->page_size, 1000);
  EXPECT_EQ(ParseListRequest(Req("", 1001))->page_size, kMaxPageSize);
  EXPECT_EQ(ParseListRequest(Req("", INT_MAX))->page_size, kMaxPageSize);
  for (int bad : {-1, INT_MIN}) {
    auto q = ParseListRequest(Req("", bad));
    ASSERT_FALSE(q.ok()) << bad;
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    auto rule = jobs::GetFieldRule(q.status());
    ASSERT_TRUE(rule.has_value());
    EXPECT_EQ(rule->field, "page_size");
    EXPECT_EQ(rule->rule, "NEGATIVE_PAGE_SIZE");
  }
}

TEST(PageTokenTest, RoundTripWithTheSameFilter) {
  for (const std::string filter : {"", "state = RUNNING", "blueprint_id = \"a b\""}) {
    const std::string token = MakePageToken(12345, filter);
    EXPECT_FALSE(token.empty());
    EXPECT_EQ(token.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos)
        << "not URL-safe: " << token;
    auto q = ParseListRequest(Req(filter, 10, token));
    ASSERT_TRUE(q.ok()) << q.status();
    EXPECT_EQ(q->cursor, 12345);
    EXPECT_EQ(q->page_size, 10);
  }
}

void ExpectTokenError(const absl::StatusOr<jobs::JobQuery>& q, const std::string& rule) {
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  auto r = jobs::GetFieldRule(q.status());
  ASSERT_TRUE(r.has_value()) << q.status();
  EXPECT_EQ(r->field, "page_token");
  EXPECT_EQ(r->rule, rule);
}

TEST(PageTokenTest, TokenOnlyWorksWithItsFilter) {
  const std::string token = MakePageToken(99, "state = RUNNING");
  ExpectTokenError(ParseListRequest(Req("state = QUEUED", 0, token)), "PAGE_TOKEN_FILTER_MISMATCH");
  ExpectTokenError(ParseListRequest(Req("", 0, token)), "PAGE_TOKEN_FILTER_MISMATCH");
  ExpectTokenError(ParseListRequest(Req("state = RUNNING", 0, MakePageToken(99, ""))),
                   "PAGE_TOKEN_FILTER_MISMATCH");
  // Exact text: an equivalent spelling of the filter is a different filter.
  ExpectTokenError(ParseListRequest(Req("state=RUNNING", 0, token)), "PAGE_TOKEN_FILTER_MISMATCH");
}

TEST(PageTokenTest, ForeignTokensAreRejected) {
  std::string junk;
  absl::WebSafeBase64Escape(std::string("\xff\xff\xff\xff\x01", 5), &junk);
  for (const std::string& token : {std::string("!!!not base64!!!"), junk, MakePageToken(-5, ""),
                                   std::string(1025, 'A')}) {
    SCOPED_TRACE(token.substr(0, 40));
    ExpectTokenError(ParseListRequest(Req("", 0, token)), "INVALID_PAGE_TOKEN");
  }
  // before_sequence 0 (with an empty filter the token would be empty, i.e. no token).
  ExpectTokenError(
      ParseListRequest(Req("state = RUNNING", 0, MakePageToken(0, "state = RUNNING"))),
      "INVALID_PAGE_TOKEN");
}

TEST(PageTokenTest, FilterErrorsAreReportedBeforeTokenErrors) {
  auto q = ParseListRequest(Req("state = NOPE", 0, "garbage"));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(jobs::GetFieldRule(q.status())->field, "filter");
}

}  // namespace
}  // namespace blueprintsync::server
