// End-to-end: ListSyncJobs paging (AIP-158), ordering and filters over jobs
// created through the real server, and the INVALID_ARGUMENT answers that
// name the offending field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using v1::ListSyncJobsRequest;
using v1::ListSyncJobsResponse;
using v1::SyncJob;

class ListE2eTest : public E2eTest {
 protected:
  // Seven jobs, each on its own source blueprint; the fourth names a
  // blueprint that does not exist upstream and fails at once. Returns the
  // names oldest first.
  void CreateJobs(std::vector<std::string>* names) {
    std::vector<std::string> seeded;
    for (int i = 1; i <= 7; ++i) {
      if (i != 4) seeded.push_back(BlueprintFor(i));
    }
    BPS_ASSERT_OK(admin().PutBlueprints(SeedJson("ap-guangzhou", seeded)));
    for (int i = 1; i <= 7; ++i) {
      SyncJob job;
      grpc::Status s = Sync(MakeRequest("ap-guangzhou", BlueprintFor(i), {"ap-beijing"}), &job);
      if (i == 4) {
        ASSERT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
        auto failed = ListAll("blueprint_id = \"" + BlueprintFor(i) + "\"");
        BPS_ASSERT_OK(failed.status());
        ASSERT_EQ(failed->size(), 1u);
        names->push_back((*failed)[0].name());
        continue;
      }
      ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
      names->push_back(job.name());
    }
    for (const std::string& name : *names) BPS_ASSERT_OK(WaitForTerminal(name).status());
  }

  static std::string BlueprintFor(int i) { return absl::StrCat("lhbp-list000", i); }

  // INVALID_ARGUMENT whose BadRequest names `field`.
  void ExpectRejected(const ListSyncJobsRequest& request, const std::string& field) {
    ListSyncJobsResponse response;
    grpc::Status s = List(request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << request.ShortDebugString() << ": " << s.error_message();
    EXPECT_THAT(ParseRichError(s).violation_fields(), ElementsAre(field))
        << request.ShortDebugString() << ": " << s.error_message();
    EXPECT_EQ(response.sync_jobs_size(), 0);
  }
};

std::vector<std::string> Names(const std::vector<SyncJob>& jobs) {
  std::vector<std::string> out;
  for (const SyncJob& j : jobs) out.push_back(j.name());
  return out;
}

TEST_F(ListE2eTest, PagesNewestFirstWithoutDuplicatesAndFilters) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "300"}));
  BPS_ASSERT_OK(StartServer());
  std::vector<std::string> created;
  ASSERT_NO_FATAL_FAILURE(CreateJobs(&created));
  ASSERT_EQ(created.size(), 7u);
  std::vector<std::string> newest_first(created.rbegin(), created.rend());

  // page_size 3: 3, 3, 1.
  ListSyncJobsRequest request;
  request.set_page_size(3);
  std::vector<SyncJob> all;
  std::vector<int> sizes;
  std::string first_token;
  for (int page = 0; page < 10; ++page) {
    ListSyncJobsResponse response;
    grpc::Status s = List(request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    sizes.push_back(response.sync_jobs_size());
    all.insert(all.end(), response.sync_jobs().begin(), response.sync_jobs().end());
    if (page == 0) first_token = response.next_page_token();
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_THAT(sizes, ElementsAre(3, 3, 1));
  EXPECT_THAT(Names(all), ElementsAreArray(newest_first));
  std::set<std::string> unique;
  for (const SyncJob& j : all) unique.insert(j.name());
  EXPECT_EQ(unique.size(), all.size()) << "duplicates across pages";
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_GE(ToTime(all[i - 1].create_time()), ToTime(all[i].create_time()));
  }

  // page_size 0 means the default (50): everything, no token.
  {
    ListSyncJobsRequest r;
    ListSyncJobsResponse response;
    grpc::Status s = List(r, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.sync_jobs_size(), 7);
    EXPECT_TRUE(response.next_page_token().empty());
  }

  // Filters.
  auto succeeded = ListAll("state = SUCCEEDED");
  BPS_ASSERT_OK(succeeded.status());
  std::vector<std::string> expected_succeeded;
  for (const std::string& n : newest_first) {
    if (n != created[3]) expected_succeeded.push_back(n);
  }
  EXPECT_THAT(Names(*succeeded), ElementsAreArray(expected_succeeded));
  for (const SyncJob& j : *succeeded) EXPECT_EQ(j.state(), SyncJob::SUCCEEDED);

  auto failed = ListAll("state = FAILED");
  BPS_ASSERT_OK(failed.status());
  EXPECT_THAT(Names(*failed), ElementsAre(created[3]));

  auto running = ListAll("state = RUNNING");
  BPS_ASSERT_OK(running.status());
  EXPECT_TRUE(running->empty());

  auto by_id = ListAll("blueprint_id = \"lhbp-list0003\"");
  BPS_ASSERT_OK(by_id.status());
  EXPECT_THAT(Names(*by_id), ElementsAre(created[2]));
  auto by_id_unquoted = ListAll("blueprint_id = lhbp-list0006");
  BPS_ASSERT_OK(by_id_unquoted.status());
  EXPECT_THAT(Names(*by_id_unquoted), ElementsAre(created[5]));

  auto combined = ListAll("state = SUCCEEDED AND source_region = \"ap-guangzhou\"");
  BPS_ASSERT_OK(combined.status());
  EXPECT_EQ(combined->size(), 6u);
  auto combined_none = ListAll("state = SUCCEEDED AND blueprint_id = \"lhbp-list0004\"");
  BPS_ASSERT_OK(combined_none.status());
  EXPECT_TRUE(combined_none->empty());
  auto other_region = ListAll("source_region = ap-beijing");
  BPS_ASSERT_OK(other_region.status());
  EXPECT_TRUE(other_region->empty());

  // Paging within a filter: 4 + 2.
  {
    ListSyncJobsRequest r;
    r.set_filter("state = SUCCEEDED");
    r.set_page_size(4);
    ListSyncJobsResponse p1, p2;
    grpc::Status s = List(r, &p1);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(p1.sync_jobs_size(), 4);
    ASSERT_FALSE(p1.next_page_token().empty());
    r.set_page_token(p1.next_page_token());
    s = List(r, &p2);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(p2.sync_jobs_size(), 2);
    EXPECT_TRUE(p2.next_page_token().empty());
    std::vector<SyncJob> both(p1.sync_jobs().begin(), p1.sync_jobs().end());
    both.insert(both.end(), p2.sync_jobs().begin(), p2.sync_jobs().end());
    EXPECT_THAT(Names(both), ElementsAreArray(expected_succeeded));

    // A token issued for one filter is refused with another.
    ListSyncJobsRequest other;
    other.set_page_size(4);
    other.set_page_token(p1.next_page_token());
    ExpectRejected(other, "page_token");
  }
  ASSERT_FALSE(first_token.empty());
  {
    ListSyncJobsRequest r;
    r.set_page_size(3);
    r.set_filter("state = SUCCEEDED");
    r.set_page_token(first_token);
    ExpectRejected(r, "page_token");
  }
}

TEST_F(ListE2eTest, InvalidRequestsNameTheField) {
  BPS_ASSERT_OK(StartEmulator({"--sync-duration-ms", "300"}));
  BPS_ASSERT_OK(StartServer());
  SyncJob job;
  grpc::Status s = Sync(MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}), &job);
  ASSERT_TRUE(s.ok()) << s.error_message();

  for (const std::string& filter :
       {std::string("state = DONE"), std::string("colour = red"), std::string("state RUNNING"),
        std::string("state = RUNNING AND"), std::string("state = RUNNING OR state = FAILED"),
        std::string("blueprint_id = \"lhbp-gzbase01"), std::string("state =")}) {
    ListSyncJobsRequest r;
    r.set_filter(filter);
    ExpectRejected(r, "filter");
  }
  {
    ListSyncJobsRequest r;
    r.set_page_size(-1);
    ExpectRejected(r, "page_size");
  }
  for (const std::string& token : {std::string("not-a-token"), std::string("AAAA"),
                                   std::string(2000, 'A'), std::string("!!!")}) {
    ListSyncJobsRequest r;
    r.set_page_token(token);
    ExpectRejected(r, "page_token");
  }
  // Huge page sizes are capped, not refused.
  ListSyncJobsRequest r;
  r.set_page_size(1 << 30);
  ListSyncJobsResponse response;
  s = List(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.sync_jobs_size(), 1);
}

}  // namespace
}  // namespace blueprintsync::testing
