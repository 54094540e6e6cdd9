#include "service/server/list_query.h"

#include <climits>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "blueprintsync/internal/job_record.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jobs/job_state.h"
#include "service/tencent/crypto.h"

namespace blueprintsync::server {
namespace {

using ::testing::HasSubstr;

v1::ListSyncJobsRequest Req(const std::string& filter, int page_size = 0,
                            const std::string& token = "", const std::string& order_by = "") {
  v1::ListSyncJobsRequest r;
  r.set_filter(filter);
  r.set_page_size(page_size);
  r.set_page_token(token);
  r.set_order_by(order_by);
  return r;
}

// A token as the service issues it for a page of a request with this
// filter and order_by.
std::string TokenFor(int64_t cursor, const std::string& filter, const std::string& order_by = "") {
  return MakePageToken(cursor, Req(filter, 0, "", order_by));
}

absl::Time Rfc3339(const std::string& text) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &t, &err)) << text << ": " << err;
  return t;
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
  EXPECT_TRUE(q->newest_first);
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
        Accepted{"state = CANCELLING", v1::SyncJob::CANCELLING, std::nullopt, std::nullopt},
        Accepted{"state = cancelled", v1::SyncJob::CANCELLED, std::nullopt, std::nullopt},
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
        Rejected{"state != RUNNING", "INVALID_FILTER", "state can only be compared with \"=\""},
        Rejected{"blueprint_id < x", "INVALID_FILTER", "blueprint_id can only be compared"},
        Rejected{"labels.team >= web", "INVALID_FILTER", "labels.team can only be compared"},
        Rejected{"state = RUNNING, blueprint_id = x", "INVALID_FILTER", ""},
        Rejected{"state ! RUNNING", "INVALID_FILTER", "\"!\" must be followed by \"=\""},
        Rejected{"state = = RUNNING", "INVALID_FILTER", "expected a value after state ="},
        Rejected{"create_time RUNNING x", "INVALID_FILTER",
                 "expected one of = != < <= > >= after create_time"},
        Rejected{"state = RUNNING AND state = QUEUED", "INVALID_FILTER",
                 "state is used more than once"},
        Rejected{"creator = a AND creator = a", "INVALID_FILTER", "creator is used more than once"},
        Rejected{"policy = syncPolicies/a AND policy = syncPolicies/b", "INVALID_FILTER",
                 "policy is used more than once"},
        Rejected{"policy != syncPolicies/a", "INVALID_FILTER", "policy can only be compared"},
        Rejected{"labels.team = a AND labels.team = b", "INVALID_FILTER",
                 "labels.team is used more than once"},
        Rejected{"request_id = a AND blueprint_id = b AND request_id = a", "INVALID_FILTER",
                 "request_id is used more than once"},
        Rejected{"labels = web", "INVALID_FILTER", "unknown field \"labels\""},
        Rejected{"label.team = web", "INVALID_FILTER", "unknown field \"label.team\""},
        Rejected{"Labels.team = web", "INVALID_FILTER", "unknown field"},
        Rejected{"create_time = yesterday", "INVALID_FILTER",
                 "create_time value \"yesterday\" is not an RFC 3339 time"},
        Rejected{"create_time > \"2026-12-01\"", "INVALID_FILTER", "RFC 3339"},
        Rejected{"create_time > \"2026-12-01 00:00:00Z\"", "INVALID_FILTER", "RFC 3339"},
        Rejected{"create_time > \"2026-12-01T00:00:00\"", "INVALID_FILTER", "RFC 3339"},
        Rejected{"create_time > \"2026-13-01T00:00:00Z\"", "INVALID_FILTER", "RFC 3339"},
        Rejected{"create_time < infinite-future", "INVALID_FILTER", "RFC 3339"},
        Rejected{"create_time >= \"infinite-past\"", "INVALID_FILTER", "RFC 3339"},
        Rejected{"create_time = 1764547200", "INVALID_FILTER", "RFC 3339"},
        Rejected{std::string(1025, ' '), "FILTER_TOO_LONG", "1024"}));

class LabelKeyTest : public ::testing::TestWithParam<std::pair<std::string, bool>> {};

TEST_P(LabelKeyTest, KubernetesLabelKeyRules) {
  const auto& [key, valid] = GetParam();
  auto q = ParseListRequest(Req("labels." + key + " = x"));
  if (valid) {
    ASSERT_TRUE(q.ok()) << key << ": " << q.status();
    EXPECT_EQ(q->labels, (std::map<std::string, std::string>{{key, "x"}}));
    return;
  }
  ASSERT_FALSE(q.ok()) << "accepted: " << key;
  auto rule = jobs::GetFieldRule(q.status());
  ASSERT_TRUE(rule.has_value()) << q.status();
  EXPECT_EQ(rule->field, "filter");
  EXPECT_EQ(rule->rule, "INVALID_FILTER");
  EXPECT_THAT(std::string(q.status().message()), HasSubstr("is not a label key"));
  EXPECT_THAT(std::string(q.status().message()), HasSubstr("1-63 characters"));
}

INSTANTIATE_TEST_SUITE_P(
    Table, LabelKeyTest,
    ::testing::Values(
        std::pair<std::string, bool>{"team", true}, std::pair<std::string, bool>{"a", true},
        std::pair<std::string, bool>{"Team_1.x-y", true},
        std::pair<std::string, bool>{std::string(63, 'k'), true},
        std::pair<std::string, bool>{"example.com/tier", true},
        std::pair<std::string, bool>{"app.kubernetes.io/name", true},
        std::pair<std::string, bool>{"a-b.c9/X", true},
        std::pair<std::string, bool>{std::string(63, 'p') + "." + std::string(63, 'q') + "." +
                                         std::string(63, 'r') + "." + std::string(61, 's') + "/n",
                                     true},  // a 253-character prefix
        std::pair<std::string, bool>{"", false},
        std::pair<std::string, bool>{std::string(64, 'k'), false},
        std::pair<std::string, bool>{"-team", false}, std::pair<std::string, bool>{"team_", false},
        std::pair<std::string, bool>{".team", false},
        std::pair<std::string, bool>{"te/am/x", false},
        std::pair<std::string, bool>{"Example.com/tier", false},
        std::pair<std::string, bool>{"example..com/tier", false},
        std::pair<std::string, bool>{"-example.com/tier", false},
        std::pair<std::string, bool>{"example.com-/tier", false},
        std::pair<std::string, bool>{"exa_mple.com/tier", false},
        std::pair<std::string, bool>{"/tier", false},
        std::pair<std::string, bool>{"example.com/", false},
        std::pair<std::string, bool>{std::string(64, 'p') + ".com/tier", false},
        std::pair<std::string, bool>{std::string(63, 'p') + "." + std::string(63, 'q') + "." +
                                         std::string(63, 'r') + "." + std::string(62, 's') + "/n",
                                     false},  // a 254-character prefix
        std::pair<std::string, bool>{"t\xc3\xa9"
                                     "am",
                                     false}));

TEST(FilterTest, EveryFieldAtOnce) {
  auto q = ParseListRequest(Req(
      "state = cancelling AND blueprint_id = lhbp-ls883feh AND source_region = ap-guangzhou "
      "AND request_id = \"3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c\" AND "
      "creator = \"uri:spiffe://cluster/ns/web/sa/deployer\" AND "
      "destination_region = ap-shanghai AND retry_of = \"syncJobs/abc\" AND "
      "policy = syncPolicies/web-golden AND "
      "labels.team = web AND labels.example.com/tier = \"\" AND "
      "create_time >= \"2026-12-01T00:00:00Z\" and create_time < \"2026-12-02T08:00:00+08:00\""));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->state, v1::SyncJob::CANCELLING);
  EXPECT_EQ(q->blueprint_id, "lhbp-ls883feh");
  EXPECT_EQ(q->source_region, "ap-guangzhou");
  EXPECT_EQ(q->request_id, "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_EQ(q->creator, "uri:spiffe://cluster/ns/web/sa/deployer");
  EXPECT_EQ(q->destination_region, "ap-shanghai");
  EXPECT_EQ(q->retry_of, "syncJobs/abc");
  EXPECT_EQ(q->policy, "syncPolicies/web-golden");
  EXPECT_EQ(q->labels,
            (std::map<std::string, std::string>{{"team", "web"}, {"example.com/tier", ""}}));
  ASSERT_EQ(q->create_time.size(), 2u);
  EXPECT_EQ(q->create_time[0].op, jobs::TimeCondition::Op::kGe);
  EXPECT_EQ(q->create_time[0].time, absl::FromUnixSeconds(1796083200));
  EXPECT_EQ(q->create_time[1].op, jobs::TimeCondition::Op::kLt);
  EXPECT_EQ(q->create_time[1].time, absl::FromUnixSeconds(1796083200 + 86400));
}

TEST(FilterTest, UnsetFieldsStayUnset) {
  auto q = ParseListRequest(Req("state = RUNNING"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_FALSE(q->request_id.has_value());
  EXPECT_FALSE(q->creator.has_value());
  EXPECT_FALSE(q->destination_region.has_value());
  EXPECT_FALSE(q->retry_of.has_value());
  EXPECT_FALSE(q->policy.has_value());
  EXPECT_TRUE(q->labels.empty());
  EXPECT_TRUE(q->create_time.empty());
}

TEST(FilterTest, EmptyQuotedValuesAreValues) {
  auto q = ParseListRequest(Req("creator = \"\" AND request_id = \"\" AND policy = \"\""));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->creator, "");
  EXPECT_EQ(q->request_id, "");
  // Jobs asked for directly, not by a policy.
  EXPECT_EQ(q->policy, "");
}

TEST(FilterTest, CreateTimeOperators) {
  using Op = jobs::TimeCondition::Op;
  const absl::Time t = Rfc3339("2026-12-01T10:20:30.25Z");
  for (const auto& [text, op] : std::vector<std::pair<std::string, Op>>{{"=", Op::kEq},
                                                                        {"!=", Op::kNe},
                                                                        {"<", Op::kLt},
                                                                        {"<=", Op::kLe},
                                                                        {">", Op::kGt},
                                                                        {">=", Op::kGe}}) {
    for (const std::string& filter :
         {"create_time " + text + " \"2026-12-01T10:20:30.25Z\"",
          "create_time" + text + "2026-12-01T10:20:30.25Z",
          "create_time " + text + " \"2026-12-01T18:20:30.25+08:00\""}) {
      auto q = ParseListRequest(Req(filter));
      ASSERT_TRUE(q.ok()) << filter << ": " << q.status();
      ASSERT_EQ(q->create_time.size(), 1u) << filter;
      EXPECT_EQ(q->create_time[0].op, op) << filter;
      EXPECT_EQ(q->create_time[0].time, t) << filter;
    }
  }
}

TEST(FilterTest, CreateTimeMayRepeat) {
  auto q = ParseListRequest(
      Req("create_time > \"2026-01-01T00:00:00Z\" AND create_time != \"2026-06-01T00:00:00Z\" "
          "AND create_time != \"2026-07-01T00:00:00Z\""));
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->create_time.size(), 3u);
  EXPECT_EQ(q->create_time[2].op, jobs::TimeCondition::Op::kNe);
  EXPECT_EQ(q->create_time[2].time, Rfc3339("2026-07-01T00:00:00Z"));
}

TEST(FilterTest, OperatorsNeedNoSpaces) {
  auto q = ParseListRequest(Req("labels.team=web AND create_time>=\"2026-01-01T00:00:00Z\""));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->labels.at("team"), "web");
  EXPECT_EQ(q->create_time[0].op, jobs::TimeCondition::Op::kGe);
}

TEST(FilterTest, LongUnknownFieldIsTruncatedInTheMessage) {
  const std::string field(300, 'f');
  auto q = ParseListRequest(Req(field + " = x"));
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(std::string(q.status().message()), ::testing::Not(HasSubstr(field)));
  EXPECT_THAT(std::string(q.status().message()), HasSubstr(std::string(64, 'f') + "..."));
}

// Values are shown escaped and cut, so even control characters (4 bytes
// each when shown) keep every message short.
TEST(FilterTest, MessagesStayShortWhateverTheValues) {
  const std::string junk(300, '\x01');
  for (const std::string& filter :
       {junk + " = x", "state = \"" + junk + "\"", "state = RUNNING " + junk,
        "labels." + junk + " = x", "create_time > \"" + junk + "\"", "state " + junk + " x",
        "state = " + junk + " AND state = " + junk}) {
    auto q = ParseListRequest(Req(filter));
    ASSERT_FALSE(q.ok());
    EXPECT_LE(q.status().message().size(), 512u) << q.status();
  }
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

TEST(OrderByTest, Accepted) {
  for (const auto& [order_by, newest_first] :
       std::vector<std::pair<std::string, bool>>{{"", true},
                                                 {"   ", true},
                                                 {"create_time desc", true},
                                                 {"create_time DESC", true},
                                                 {"  create_time\tDesc ", true},
                                                 {"create_time", false},
                                                 {"create_time asc", false},
                                                 {"create_time ASC", false},
                                                 {" create_time ", false}}) {
    auto q = ParseListRequest(Req("", 0, "", order_by));
    ASSERT_TRUE(q.ok()) << "\"" << order_by << "\": " << q.status();
    EXPECT_EQ(q->newest_first, newest_first) << "\"" << order_by << "\"";
  }
}

TEST(OrderByTest, RejectedNamingOrderBy) {
  for (const std::string order_by :
       {"create_time descending", "create_time desc asc", "update_time", "update_time desc",
        "CREATE_TIME", "-create_time", "create_time,", "create_time desc, name", "sequence",
        "desc"}) {
    auto q = ParseListRequest(Req("", 0, "", order_by));
    ASSERT_FALSE(q.ok()) << "accepted: " << order_by;
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    auto rule = jobs::GetFieldRule(q.status());
    ASSERT_TRUE(rule.has_value()) << q.status();
    EXPECT_EQ(rule->field, "order_by");
    EXPECT_EQ(rule->rule, "INVALID_ORDER_BY");
    EXPECT_THAT(std::string(q.status().message()), HasSubstr("create_time desc"));
  }
}

TEST(OrderByTest, FilterErrorsComeFirst) {
  auto q = ParseListRequest(Req("state = NOPE", 0, "", "nonsense"));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(jobs::GetFieldRule(q.status())->field, "filter");
}

TEST(PageTokenTest, RoundTripWithTheSameFilterAndOrder) {
  for (const std::string filter :
       {"", "state = RUNNING", "blueprint_id = \"a b\"", "labels.team = web"}) {
    for (const std::string order_by : {"", "create_time desc", "create_time", "create_time asc"}) {
      SCOPED_TRACE(filter + " / " + order_by);
      const std::string token = TokenFor(12345, filter, order_by);
      EXPECT_FALSE(token.empty());
      EXPECT_EQ(token.find_first_not_of(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                std::string::npos)
          << "not URL-safe: " << token;
      auto q = ParseListRequest(Req(filter, 10, token, order_by));
      ASSERT_TRUE(q.ok()) << q.status();
      EXPECT_EQ(q->cursor, 12345);
      EXPECT_EQ(q->page_size, 10);
    }
  }
}

// Tokens issued before there was an order (field 1 and the filter digest
// only) keep working with the default order.
TEST(PageTokenTest, TokensWithoutAnOrderAreNewestFirst) {
  internal::PageToken legacy;
  legacy.set_cursor(77);
  legacy.set_filter_sha256(tencent::crypto::Sha256Hex("state = RUNNING"));
  std::string token;
  absl::WebSafeBase64Escape(legacy.SerializeAsString(), &token);
  EXPECT_EQ(token, TokenFor(77, "state = RUNNING"));
  auto q = ParseListRequest(Req("state = RUNNING", 0, token, "create_time desc"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->cursor, 77);
}

template <typename Query>
void ExpectTokenError(const absl::StatusOr<Query>& q, const std::string& rule) {
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  auto r = jobs::GetFieldRule(q.status());
  ASSERT_TRUE(r.has_value()) << q.status();
  EXPECT_EQ(r->field, "page_token");
  EXPECT_EQ(r->rule, rule);
}

TEST(PageTokenTest, TokenOnlyWorksWithItsFilter) {
  const std::string token = TokenFor(99, "state = RUNNING");
  ExpectTokenError(ParseListRequest(Req("state = QUEUED", 0, token)), "PAGE_TOKEN_FILTER_MISMATCH");
  ExpectTokenError(ParseListRequest(Req("", 0, token)), "PAGE_TOKEN_FILTER_MISMATCH");
  ExpectTokenError(ParseListRequest(Req("state = RUNNING", 0, TokenFor(99, ""))),
                   "PAGE_TOKEN_FILTER_MISMATCH");
  // Exact text: an equivalent spelling of the filter is a different filter.
  ExpectTokenError(ParseListRequest(Req("state=RUNNING", 0, token)), "PAGE_TOKEN_FILTER_MISMATCH");
}

TEST(PageTokenTest, TokenOnlyWorksWithItsOrder) {
  const std::string oldest = TokenFor(99, "labels.team = web", "create_time");
  const std::string newest = TokenFor(99, "labels.team = web", "create_time desc");
  for (const std::string order_by : {"", "create_time desc", "create_time DESC"}) {
    SCOPED_TRACE(order_by);
    ExpectTokenError(ParseListRequest(Req("labels.team = web", 0, oldest, order_by)),
                     "PAGE_TOKEN_ORDER_MISMATCH");
    EXPECT_TRUE(ParseListRequest(Req("labels.team = web", 0, newest, order_by)).ok());
  }
  for (const std::string order_by : {"create_time", "create_time asc"}) {
    SCOPED_TRACE(order_by);
    ExpectTokenError(ParseListRequest(Req("labels.team = web", 0, newest, order_by)),
                     "PAGE_TOKEN_ORDER_MISMATCH");
    EXPECT_TRUE(ParseListRequest(Req("labels.team = web", 0, oldest, order_by)).ok());
  }
  auto q = ParseListRequest(Req("labels.team = web", 0, oldest, "create_time"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_FALSE(q->newest_first);
  EXPECT_EQ(q->cursor, 99);
}

TEST(PageTokenTest, ForeignTokensAreRejected) {
  std::string junk;
  absl::WebSafeBase64Escape(std::string("\xff\xff\xff\xff\x01", 5), &junk);
  for (const std::string& token :
       {std::string("!!!not base64!!!"), junk, TokenFor(-5, ""), std::string(1025, 'A')}) {
    SCOPED_TRACE(token.substr(0, 40));
    ExpectTokenError(ParseListRequest(Req("", 0, token)), "INVALID_PAGE_TOKEN");
  }
  // Cursor 0 (with an empty filter the token would be empty, i.e. no token).
  ExpectTokenError(ParseListRequest(Req("state = RUNNING", 0, TokenFor(0, "state = RUNNING"))),
                   "INVALID_PAGE_TOKEN");
}

TEST(PageTokenTest, OrderByErrorsComeBeforeTokenErrors) {
  auto q = ParseListRequest(Req("", 0, "garbage", "update_time"));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(jobs::GetFieldRule(q.status())->field, "order_by");
}

TEST(PageTokenTest, FilterErrorsAreReportedBeforeTokenErrors) {
  auto q = ParseListRequest(Req("state = NOPE", 0, "garbage"));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(jobs::GetFieldRule(q.status())->field, "filter");
}

// ---- ListSyncPolicies ----

v1::ListSyncPoliciesRequest PolicyReq(const std::string& filter, int page_size = 0,
                                      const std::string& token = "") {
  v1::ListSyncPoliciesRequest r;
  r.set_filter(filter);
  r.set_page_size(page_size);
  r.set_page_token(token);
  return r;
}

TEST(PolicyListTest, FilterSetsTheQuery) {
  auto q = ParsePolicyListRequest(
      PolicyReq("in_sync = True AND paused = false AND source_region = \"ap-guangzhou\" AND "
                "labels.team = web AND labels.example.com/tier = \"front\""));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->in_sync, true);
  EXPECT_EQ(q->paused, false);
  EXPECT_EQ(q->source_region, "ap-guangzhou");
  EXPECT_EQ(q->labels,
            (std::map<std::string, std::string>{{"team", "web"}, {"example.com/tier", "front"}}));
  EXPECT_EQ(q->page_size, kDefaultPageSize);
  EXPECT_EQ(q->after_name, "");
}

TEST(PolicyListTest, EachBadFilterIsAFilterErrorSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"state = RUNNING", "unknown field \"state\""},
      {"create_time > \"2026-12-01T00:00:00Z\"", "unknown field \"create_time\""},
      {"in_sync = yes", "in_sync value \"yes\" is not true or false"},
      {"paused = 1", "paused value \"1\" is not true or false"},
      {"in_sync != true", "can only be compared with \"=\""},
      {"paused = true AND paused = false", "paused is used more than once"},
      {"labels.Bad_ = x", "is not a label key"},
      {"in_sync = true paused = true", "expected AND"},
      {"in_sync =", "incomplete condition"},
  };
  for (const auto& [filter, why] : cases) {
    SCOPED_TRACE(filter);
    auto q = ParsePolicyListRequest(PolicyReq(filter));
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(jobs::GetFieldRule(q.status())->field, "filter");
    EXPECT_THAT(std::string(q.status().message()), HasSubstr(why));
  }
  // Labels with distinct keys may repeat.
  EXPECT_TRUE(ParsePolicyListRequest(PolicyReq("labels.a = 1 AND labels.b = 2")).ok());
}

TEST(PolicyListTest, TokensCarryWhereToContinueAndOnlyWorkWithTheirFilter) {
  const std::string token =
      MakePolicyPageToken("syncPolicies/bravo", PolicyReq("labels.team = web"));
  auto q = ParsePolicyListRequest(PolicyReq("labels.team = web", 10, token));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->after_name, "syncPolicies/bravo");
  EXPECT_EQ(q->page_size, 10);
  ExpectTokenError(ParsePolicyListRequest(PolicyReq("labels.team = ops", 0, token)),
                   "PAGE_TOKEN_FILTER_MISMATCH");
  for (const std::string& bad : {std::string("!!!"), std::string(1025, 'A'), TokenFor(5, ""),
                                 MakePolicyPageToken("", PolicyReq(""))}) {
    SCOPED_TRACE(bad.substr(0, 40));
    ExpectTokenError(ParsePolicyListRequest(PolicyReq("", 0, bad)), "INVALID_PAGE_TOKEN");
  }
}

TEST(PolicyListTest, PageSizeAsForJobs) {
  EXPECT_EQ(jobs::GetFieldRule(ParsePolicyListRequest(PolicyReq("", -1)).status())->rule,
            "NEGATIVE_PAGE_SIZE");
  EXPECT_EQ(ParsePolicyListRequest(PolicyReq("", 5000))->page_size, kMaxPageSize);
}

}  // namespace
}  // namespace blueprintsync::server
