// DecideReconcile, one row per kind of evidence: what a look upstream after
// an ambiguous SyncBlueprint call may find, and what must follow. The one
// outcome that must never come from doubtful evidence is kResubmit: it sends
// a paid, non-idempotent call again.
#include "service/jobs/reconcile_decision.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace blueprintsync::jobs {
namespace {

using Verdict = ReconcileDecision::Verdict;

tencent::Blueprint Copy(const std::string& id, const std::string& state = "SYNCING") {
  tencent::Blueprint b;
  b.blueprint_id = id;
  b.blueprint_state = state;
  return b;
}

struct Row {
  std::string name;
  ReconcileEvidence evidence;
  Verdict want;
  std::string detail_has;  // for kInconclusive: part of the reason
};

std::vector<Row> Rows() {
  const std::vector<std::string> two = {"ap-beijing", "ap-shanghai"};
  std::vector<Row> rows;
  rows.push_back(
      {"one copy in each region: the call executed",
       {"",
        two,
        "SYNCING",
        {{"ap-beijing", {Copy("lhbp-b1")}}, {"ap-shanghai", {Copy("lhbp-s1", "NORMAL")}}}},
       Verdict::kAdopt,
       ""});
  rows.push_back(
      {"one copy each, source already NORMAL again: still executed",
       {"", two, "NORMAL", {{"ap-beijing", {Copy("lhbp-b1")}}, {"ap-shanghai", {Copy("lhbp-s1")}}}},
       Verdict::kAdopt,
       ""});
  rows.push_back({"no copy anywhere, source NORMAL: not executed",
                  {"", two, "NORMAL", {}},
                  Verdict::kResubmit,
                  ""});
  rows.push_back({"no copy anywhere but the source is syncing: maybe still starting",
                  {"", two, "SYNCING", {}},
                  Verdict::kInconclusive,
                  "source state SYNCING, copies found per region: ap-beijing=0, ap-shanghai=0"});
  rows.push_back({"a copy in one region only",
                  {"", two, "NORMAL", {{"ap-beijing", {Copy("b1")}}}},
                  Verdict::kInconclusive,
                  "ap-beijing=1, ap-shanghai=0"});
  rows.push_back({"two candidates in one region",
                  {"",
                   two,
                   "NORMAL",
                   {{"ap-beijing", {Copy("b1"), Copy("b2")}}, {"ap-shanghai", {Copy("s1")}}}},
                  Verdict::kInconclusive,
                  "ap-beijing=2, ap-shanghai=1"});
  rows.push_back({"a candidate only outside the job's regions: not 'nothing happened'",
                  {"", two, "NORMAL", {{"ap-tokyo", {Copy("t1")}}}},
                  Verdict::kInconclusive,
                  "ap-beijing=0, ap-shanghai=0"});
  rows.push_back({"an empty candidate list counts as none",
                  {"", two, "NORMAL", {{"ap-beijing", {}}}},
                  Verdict::kResubmit,
                  ""});
  rows.push_back({"the evidence could not be read: never resubmit",
                  {"could not read the source blueprint: timeout", two, "NORMAL", {}},
                  Verdict::kInconclusive,
                  "could not read the source blueprint: timeout"});
  rows.push_back({"a read failed after some copies were seen: never adopt",
                  {"could not list blueprints in ap-shanghai: 503",
                   two,
                   "NORMAL",
                   {{"ap-beijing", {Copy("b1")}}, {"ap-shanghai", {Copy("s1")}}}},
                  Verdict::kInconclusive,
                  "could not list blueprints in ap-shanghai"});
  rows.push_back({"the source is gone",
                  {"the source blueprint no longer exists", two, "", {}},
                  Verdict::kInconclusive,
                  "no longer exists"});
  rows.push_back({"source state unknown (empty): never resubmit",
                  {"", two, "", {}},
                  Verdict::kInconclusive,
                  "copies found per region"});
  return rows;
}

TEST(ReconcileDecisionTest, EachKindOfEvidence) {
  for (const Row& row : Rows()) {
    SCOPED_TRACE(row.name);
    const ReconcileDecision d = DecideReconcile(row.evidence);
    EXPECT_EQ(static_cast<int>(d.verdict), static_cast<int>(row.want));
    if (row.want == Verdict::kAdopt) {
      ASSERT_EQ(d.adopt.size(), row.evidence.regions.size());
      for (const std::string& region : row.evidence.regions) {
        EXPECT_EQ(d.adopt.at(region).blueprint_id,
                  row.evidence.candidates.at(region).front().blueprint_id);
      }
    } else {
      EXPECT_TRUE(d.adopt.empty());
    }
    if (!row.detail_has.empty()) {
      EXPECT_NE(d.detail.find(row.detail_has), std::string::npos) << d.detail;
    }
  }
}

}  // namespace
}  // namespace blueprintsync::jobs
