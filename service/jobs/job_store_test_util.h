// Checks shared by the tests of the SQL job stores (SQLite, PostgreSQL).
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_TEST_UTIL_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_TEST_UTIL_H_

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "service/jobs/job_store.h"

namespace blueprintsync::testing {

// With "syncJobs/a" readable and the next job's record unparsable: a page
// without the bad row answers in both list paths, ListJobs and ListJobsInto
// (neither parses the look-ahead row, the next page's first), and the page
// holding it fails with DATA_LOSS in both.
inline void ExpectOnlyThePageWithTheBadRowFails(jobs::JobStore* store) {
  jobs::JobQuery first_page;
  first_page.newest_first = false;
  first_page.page_size = 1;
  auto good = store->ListJobs(first_page);
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_EQ(good->records.size(), 1u);
  EXPECT_EQ(good->records[0].job().name(), "syncJobs/a");
  ASSERT_TRUE(good->next_cursor.has_value());
  google::protobuf::RepeatedPtrField<v1::SyncJob> jobs;
  auto good_into = store->ListJobsInto(first_page, &jobs);
  ASSERT_TRUE(good_into.ok()) << good_into.status();
  EXPECT_EQ(*good_into, good->next_cursor);
  ASSERT_EQ(jobs.size(), 1);
  jobs::JobQuery next_page = first_page;
  next_page.cursor = *good->next_cursor;
  auto bad = store->ListJobs(next_page);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  jobs.Clear();
  auto bad_into = store->ListJobsInto(next_page, &jobs);
  EXPECT_EQ(bad_into.status().code(), absl::StatusCode::kDataLoss) << bad_into.status();
}

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_TEST_UTIL_H_
