// The policy controller's counts as a scrape shows them, read through the
// function blueprint-syncd's main hands over (no controller needed).
#include "service/server/server_metrics.h"

#include <gtest/gtest.h>

#include <memory>

#include "service/metrics/testing/prometheus_text.h"

namespace blueprintsync::server {
namespace {

using ::blueprintsync::testing::PrometheusText;

TEST(PolicyMetricsSourceTest, ScrapesReadTheControllersCountsWhileItLives) {
  metrics::Metrics m;
  policies::PolicyControllerStats stats;
  stats.passes = 4;
  stats.policies = 10;
  stats.policies_in_sync = 6;
  stats.policies_paused = 1;
  stats.describe_calls = 12;
  stats.last_pass_describe_calls = 3;
  stats.jobs_started = 5;
  stats.drift_repairs = 2;
  stats.copies_deleted = 7;
  stats.copy_delete_failures = 1;
  stats.pass_failures = 1;
  int reads = 0;
  auto source = std::make_unique<PolicyMetricsSource>(&m, [&] {
    ++reads;
    return stats;
  });
  PrometheusText t(m.TextExposition());
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(t.Sum("blueprintsync_policies", {{"state", "in_sync"}}), 6);
  EXPECT_EQ(t.Sum("blueprintsync_policies", {{"state", "paused"}}), 1);
  EXPECT_EQ(t.Sum("blueprintsync_policies", {{"state", "out_of_sync"}}), 3);
  EXPECT_EQ(t.Sum("blueprintsync_policies"), 10);  // each policy once
  EXPECT_EQ(t.Sum("blueprintsync_policy_passes_total"), 4);
  EXPECT_EQ(t.Sum("blueprintsync_policy_pass_failures_total"), 1);
  EXPECT_EQ(t.Sum("blueprintsync_policy_describe_calls_total"), 12);
  EXPECT_EQ(t.Sum("blueprintsync_policy_jobs_started_total"), 5);
  EXPECT_EQ(t.Sum("blueprintsync_policy_drift_repairs_total"), 2);
  EXPECT_EQ(t.Sum("blueprintsync_policy_copies_deleted_total"), 7);
  EXPECT_EQ(t.Sum("blueprintsync_policy_copy_delete_failures_total"), 1);

  // The next pass: read again at the next scrape.
  stats.policies_in_sync = 9;
  EXPECT_EQ(
      PrometheusText(m.TextExposition()).Sum("blueprintsync_policies", {{"state", "out_of_sync"}}),
      0);

  source.reset();
  const int before = reads;
  PrometheusText after(m.TextExposition());
  EXPECT_EQ(reads, before) << "read after the source was destroyed";
  EXPECT_EQ(after.Sum("blueprintsync_policies"), 0);
  EXPECT_EQ(after.Matching("blueprintsync_policies", {}).size(), 3u);
}

TEST(PolicyMetricsSourceTest, OutOfSyncIsNeverNegative) {
  policies::PolicyControllerStats stats;
  stats.policies = 2;
  stats.policies_in_sync = 2;
  stats.policies_paused = 1;
  EXPECT_EQ(PolicyCountsOf(stats).out_of_sync, 0);
  EXPECT_EQ(PolicyCountsOf(policies::PolicyControllerStats()).out_of_sync, 0);
}

}  // namespace
}  // namespace blueprintsync::server
