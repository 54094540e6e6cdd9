// The one behavioural suite every JobStore implementation must pass. It is
// parameterized over store factories (memory, SQLite, PostgreSQL): a new
// implementation joins by adding a StoreFactory to INSTANTIATE_TEST_SUITE_P
// at the bottom.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "service/common/testing/store_test_util.h"
#include "service/jobs/job_store.h"
#include "service/jobs/store_query.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::jobs {
namespace {

using ::blueprintsync::testing::EqualsProto;

using ::testing::HasSubstr;
using State = v1::SyncJob::State;

struct StoreFactory {
  std::string name;
  // Opens a new, empty store. `dir` is a fresh directory the store may use.
  std::function<absl::StatusOr<std::unique_ptr<JobStore>>(const std::string& dir)> open;
};

void PrintTo(const StoreFactory& f, std::ostream* os) { *os << f.name; }

// A fresh directory for the test's files.
class ScratchDir : public ::blueprintsync::testing::ScratchDir {
 public:
  ScratchDir() : ::blueprintsync::testing::ScratchDir("job_store_test_") {}
};

JobRecord MakeRecord(const std::string& id, State state, const std::string& blueprint_id,
                     const std::string& source_region, const std::string& request_id = "") {
  JobRecord r;
  v1::SyncJob& job = *r.mutable_job();
  job.set_name("syncJobs/" + id);
  job.set_state(state);
  job.set_blueprint_id(blueprint_id);
  job.set_source_region(source_region);
  job.set_request_id(request_id);
  job.mutable_create_time()->set_seconds(1700000000);
  job.mutable_update_time()->set_seconds(1700000000);
  auto* d = job.add_destinations();
  d->set_region("ap-shanghai");
  d->set_state(v1::Destination::PENDING);
  r.set_phase(JobRecord::NOT_SUBMITTED);
  r.set_request_fingerprint("fp-" + id);
  return r;
}

// Job ids ("syncJobs/" stripped), in order.
std::vector<std::string> Names(const std::vector<JobRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.job().name().substr(sizeof("syncJobs/") - 1));
  return out;
}

class JobStoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    auto store = GetParam().open(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Creates and checks that it was created; returns the stored record.
  JobRecord MustCreate(const JobRecord& record) {
    auto result = store_->CreateJob(record);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {};
    EXPECT_TRUE(result->created) << record.job().name();
    return result->record;
  }

  // ListJobs, checked against ListJobsInto (what ListSyncJobs uses), both
  // onto the heap and onto an arena: the same jobs in the same order, the
  // same next_cursor, the same error code. Every list test below goes
  // through here, so both paths meet every list rule.
  absl::StatusOr<JobPage> List(const JobQuery& q) {
    absl::StatusOr<JobPage> page = store_->ListJobs(q);
    google::protobuf::RepeatedPtrField<v1::SyncJob> heap_jobs;
    absl::StatusOr<std::optional<int64_t>> heap_cursor = store_->ListJobsInto(q, &heap_jobs);
    google::protobuf::Arena arena;
    auto* arena_jobs =
        google::protobuf::Arena::CreateMessage<v1::ListSyncJobsResponse>(&arena)->mutable_sync_jobs();
    absl::StatusOr<std::optional<int64_t>> arena_cursor = store_->ListJobsInto(q, arena_jobs);
    for (const auto* cursor : {&heap_cursor, &arena_cursor}) {
      EXPECT_EQ(cursor->status().code(), page.status().code()) << cursor->status();
      if (!page.ok() || !cursor->ok()) continue;
      EXPECT_EQ(**cursor, page->next_cursor);
    }
    if (page.ok()) {
      for (const auto* jobs : {&heap_jobs, arena_jobs}) {
        EXPECT_EQ(jobs->size(), static_cast<int>(page->records.size()));
        for (int i = 0; i < std::min<int>(jobs->size(), page->records.size()); ++i) {
          EXPECT_THAT(jobs->Get(i), EqualsProto(page->records[i].job())) << "job " << i;
        }
      }
    }
    return page;
  }

  ScratchDir dir_;
  std::unique_ptr<JobStore> store_;
};

TEST_P(JobStoreConformanceTest, CreateThenGetRoundTripsEveryField) {
  JobRecord r = MakeRecord("a", v1::SyncJob::RUNNING, "lhbp-ls883feh", "ap-guangzhou",
                           "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  v1::SyncJob& job = *r.mutable_job();
  job.set_upstream_request_id("up-req-1");
  job.mutable_submit_time()->set_seconds(1700000100);
  job.mutable_submit_time()->set_nanos(123456789);
  job.mutable_deadline()->set_seconds(1700086400);
  job.mutable_error()->set_code(9);
  job.mutable_error()->set_message("quota");
  job.mutable_error()->set_tencent_code("LimitExceeded.BlueprintQuotaLimitExceeded");
  job.set_policy("syncPolicies/web-golden");
  auto* d = job.add_destinations();
  d->set_region("ap-beijing");
  d->set_blueprint_id("lhbp-abcdefgh");
  d->set_state(v1::Destination::SYNCING);
  d->set_blueprint_state("SYNCING");
  r.set_phase(JobRecord::SUBMITTED);
  r.mutable_submit_attempt_time()->set_seconds(1700000099);
  r.set_submit_attempts(2);

  auto created = store_->CreateJob(r);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_GT(created->record.sequence(), 0);

  JobRecord expected = r;
  expected.set_sequence(created->record.sequence());
  EXPECT_THAT(created->record, EqualsProto(expected));

  auto got = store_->GetJob("syncJobs/a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, EqualsProto(expected));
}

TEST_P(JobStoreConformanceTest, CreateIgnoresCallerSequence) {
  JobRecord r = MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou");
  r.set_sequence(987654);
  JobRecord stored = MustCreate(r);
  EXPECT_NE(stored.sequence(), 987654);
  auto got = store_->GetJob("syncJobs/a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->sequence(), stored.sequence());
}

TEST_P(JobStoreConformanceTest, CreateRequiresName) {
  JobRecord r = MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou");
  r.mutable_job()->clear_name();
  auto result = store_->CreateJob(r);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
}

TEST_P(JobStoreConformanceTest, CreateDuplicateNameIsAlreadyExists) {
  MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-1"));
  auto again =
      store_->CreateJob(MakeRecord("a", v1::SyncJob::RUNNING, "lhbp-2", "ap-beijing", "req-2"));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  // Nothing of the rejected record was stored.
  auto got = store_->GetJob("syncJobs/a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->job().blueprint_id(), "lhbp-1");
  EXPECT_EQ(got->job().request_id(), "req-1");
  JobQuery q;
  q.page_size = 10;
  auto page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records.size(), 1u);
}

TEST_P(JobStoreConformanceTest, SequencesIncreaseInCreationOrder) {
  int64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    JobRecord stored =
        MustCreate(MakeRecord(absl::StrCat("j", i), v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));
    EXPECT_GT(stored.sequence(), last) << "job " << i;
    last = stored.sequence();
  }
}

TEST_P(JobStoreConformanceTest, SameRequestIdReturnsExistingJob) {
  JobRecord first =
      MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-1"));
  auto again =
      store_->CreateJob(MakeRecord("b", v1::SyncJob::RUNNING, "lhbp-2", "ap-beijing", "req-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  EXPECT_THAT(again->record, EqualsProto(first));

  EXPECT_EQ(store_->GetJob("syncJobs/b").status().code(), absl::StatusCode::kNotFound);
  // Dedup also finds a job whose record changed since it was created.
  JobRecord updated = first;
  updated.mutable_job()->set_state(v1::SyncJob::RUNNING);
  ASSERT_TRUE(store_->UpdateJob(updated).ok());
  auto third =
      store_->CreateJob(MakeRecord("c", v1::SyncJob::QUEUED, "lhbp-3", "ap-beijing", "req-1"));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->created);
  EXPECT_THAT(third->record, EqualsProto(updated));
}

TEST_P(JobStoreConformanceTest, EmptyRequestIdNeverDeduplicates) {
  JobRecord a = MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));
  JobRecord b = MustCreate(MakeRecord("b", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));
  EXPECT_NE(a.sequence(), b.sequence());
  EXPECT_TRUE(store_->GetJob("syncJobs/a").ok());
  EXPECT_TRUE(store_->GetJob("syncJobs/b").ok());
}

TEST_P(JobStoreConformanceTest, SameRequestIdRaceCreatesExactlyOneJob) {
  constexpr int kThreads = 16;
  std::vector<absl::StatusOr<CreateJobResult>> results(kThreads, absl::UnknownError("not run"));
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      JobRecord r = MakeRecord(absl::StrCat("race-", i), v1::SyncJob::QUEUED, "lhbp-1",
                               "ap-guangzhou", "req-race");
      go.WaitForNotification();
      results[i] = store_->CreateJob(r);
    });
  }
  go.Notify();
  for (auto& t : threads) t.join();

  int created = 0;
  std::optional<JobRecord> winner;
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(results[i].ok()) << "thread " << i << ": " << results[i].status();
    if (results[i]->created) {
      ++created;
      winner = results[i]->record;
    }
  }
  ASSERT_EQ(created, 1);
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_THAT(results[i]->record, EqualsProto(*winner)) << "thread " << i;
    const std::string name = absl::StrCat("syncJobs/race-", i);
    if (name != winner->job().name()) {
      EXPECT_EQ(store_->GetJob(name).status().code(), absl::StatusCode::kNotFound) << name;
    }
  }
  JobQuery q;
  q.page_size = 100;
  auto page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records.size(), 1u);
}

TEST_P(JobStoreConformanceTest, ConcurrentCreatesAllSucceedWithDistinctSequences) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 30;
  std::vector<std::vector<absl::StatusOr<CreateJobResult>>> results(kThreads);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      go.WaitForNotification();
      for (int i = 0; i < kPerThread; ++i) {
        // Half with their own request_id, half without.
        const std::string id = absl::StrCat("t", t, "-", i);
        results[t].push_back(store_->CreateJob(MakeRecord(
            id, v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", i % 2 == 0 ? "req-" + id : "")));
      }
    });
  }
  go.Notify();
  for (auto& t : threads) t.join();

  std::set<int64_t> sequences;
  for (int t = 0; t < kThreads; ++t) {
    int64_t last = 0;
    ASSERT_EQ(results[t].size(), static_cast<size_t>(kPerThread));
    for (const auto& r : results[t]) {
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(r->created);
      // Within one thread, later creates get later sequences.
      EXPECT_GT(r->record.sequence(), last);
      last = r->record.sequence();
      sequences.insert(r->record.sequence());
    }
  }
  EXPECT_EQ(sequences.size(), static_cast<size_t>(kThreads * kPerThread));
  JobQuery q;
  q.page_size = 1000;
  auto page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_P(JobStoreConformanceTest, GetMissingIsNotFound) {
  MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));
  auto got = store_->GetJob("syncJobs/missing");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("syncJobs/missing"));
}

TEST_P(JobStoreConformanceTest, UpdateReplacesRecordAndKeepsSequence) {
  JobRecord stored =
      MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-1"));
  MustCreate(MakeRecord("b", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));

  JobRecord update = stored;
  update.mutable_job()->set_state(v1::SyncJob::RUNNING);
  update.mutable_job()->set_upstream_request_id("up-1");
  update.mutable_job()->mutable_destinations(0)->set_blueprint_id("lhbp-new");
  update.mutable_job()->mutable_update_time()->set_seconds(1700000500);
  update.set_phase(JobRecord::SUBMITTED);
  update.set_sequence(0);  // the caller's value must not matter
  ASSERT_TRUE(store_->UpdateJob(update).ok());

  JobRecord expected = update;
  expected.set_sequence(stored.sequence());
  auto got = store_->GetJob("syncJobs/a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, EqualsProto(expected));

  // The other job is untouched.
  auto other = store_->GetJob("syncJobs/b");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->job().state(), v1::SyncJob::QUEUED);
}

TEST_P(JobStoreConformanceTest, RequestCancelIsKeptApartFromTheRecord) {
  JobRecord stored = MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));
  MustCreate(MakeRecord("b", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));
  EXPECT_FALSE(stored.cancel_requested());
  EXPECT_EQ(store_->RequestCancel("syncJobs/missing").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->RequestCancel("syncJobs/a").ok());
  ASSERT_TRUE(store_->RequestCancel("syncJobs/a").ok());  // harmless to repeat

  auto got = store_->GetJob("syncJobs/a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->cancel_requested());
  EXPECT_FALSE(store_->GetJob("syncJobs/b")->cancel_requested());

  // The leader's writes (from a record read before the request) keep it.
  JobRecord update = stored;
  update.mutable_job()->set_state(v1::SyncJob::RUNNING);
  update.set_cancel_requested(false);
  ASSERT_TRUE(store_->UpdateJob(update).ok());
  got = store_->GetJob("syncJobs/a");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->cancel_requested());
  EXPECT_EQ(got->job().state(), v1::SyncJob::RUNNING);

  auto unfinished = store_->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  ASSERT_EQ(unfinished->size(), 2u);
  EXPECT_TRUE((*unfinished)[0].cancel_requested());
  EXPECT_FALSE((*unfinished)[1].cancel_requested());
  auto page = List(JobQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_TRUE(page->records[1].cancel_requested());  // newest first: a is second
}

TEST_P(JobStoreConformanceTest, UpdateMissingIsNotFoundAndCreatesNothing) {
  auto status =
      store_->UpdateJob(MakeRecord("ghost", v1::SyncJob::RUNNING, "lhbp-1", "ap-guangzhou"));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(status.message(), HasSubstr("syncJobs/ghost"));
  EXPECT_EQ(store_->GetJob("syncJobs/ghost").status().code(), absl::StatusCode::kNotFound);
  auto unfinished = store_->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  EXPECT_TRUE(unfinished->empty());
}

TEST_P(JobStoreConformanceTest, UpdateToAnotherJobsRequestIdIsAlreadyExists) {
  MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-a"));
  JobRecord b = MustCreate(MakeRecord("b", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-b"));
  b.mutable_job()->set_request_id("req-a");
  EXPECT_EQ(store_->UpdateJob(b).code(), absl::StatusCode::kAlreadyExists);
  auto got = store_->GetJob("syncJobs/b");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->job().request_id(), "req-b");
}

TEST_P(JobStoreConformanceTest, UpdateCanChangeRequestIdAndDedupFollows) {
  JobRecord a =
      MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-old"));
  a.mutable_job()->set_request_id("req-new");
  ASSERT_TRUE(store_->UpdateJob(a).ok());
  // The old id is free again; the new one finds job a.
  JobRecord b =
      MustCreate(MakeRecord("b", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-old"));
  EXPECT_EQ(b.job().name(), "syncJobs/b");
  auto dup =
      store_->CreateJob(MakeRecord("c", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-new"));
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_FALSE(dup->created);
  EXPECT_EQ(dup->record.job().name(), "syncJobs/a");
}

TEST_P(JobStoreConformanceTest, ListRejectsNonPositivePageSizeAndNegativeCursor) {
  JobQuery q;
  q.page_size = 0;
  EXPECT_EQ(List(q).status().code(), absl::StatusCode::kInvalidArgument);
  q.page_size = -3;
  EXPECT_EQ(List(q).status().code(), absl::StatusCode::kInvalidArgument);
  q.page_size = 10;
  for (bool newest_first : {true, false}) {
    q.newest_first = newest_first;
    q.cursor = -1;
    EXPECT_EQ(List(q).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_P(JobStoreConformanceTest, ListEmptyStore) {
  JobQuery q;
  auto page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->records.empty());
  EXPECT_FALSE(page->next_cursor.has_value());
}

TEST_P(JobStoreConformanceTest, ListExactMultipleOfPageSizeEndsWithoutToken) {
  std::vector<JobRecord> created;
  for (int i = 0; i < 10; ++i) {
    created.push_back(MustCreate(
        MakeRecord(absl::StrCat("j", i), v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou")));
  }
  JobQuery q;
  q.page_size = 5;
  auto first = List(q);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->records.size(), 5u);
  EXPECT_EQ(first->records.front().job().name(), "syncJobs/j9");
  ASSERT_TRUE(first->next_cursor.has_value());
  EXPECT_EQ(*first->next_cursor, created[5].sequence());

  q.cursor = *first->next_cursor;
  auto second = List(q);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->records.size(), 5u);
  EXPECT_EQ(second->records.front().job().name(), "syncJobs/j4");
  EXPECT_EQ(second->records.back().job().name(), "syncJobs/j0");
  EXPECT_FALSE(second->next_cursor.has_value());
}

TEST_P(JobStoreConformanceTest, ListCursorIsAnExclusiveBoundInEitherOrder) {
  std::vector<JobRecord> created;
  for (int i = 0; i < 6; ++i) {
    created.push_back(MustCreate(
        MakeRecord(absl::StrCat("j", i), v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou")));
  }
  JobQuery q;
  q.cursor = created[3].sequence();
  auto page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Names(page->records), ::testing::ElementsAre("j2", "j1", "j0"));
  EXPECT_FALSE(page->next_cursor.has_value());

  q.cursor = created[0].sequence();
  page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->records.empty());

  q.newest_first = false;
  q.cursor = created[3].sequence();
  page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Names(page->records), ::testing::ElementsAre("j4", "j5"));
  EXPECT_FALSE(page->next_cursor.has_value());

  q.cursor = created[5].sequence();
  page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->records.empty());
}

TEST_P(JobStoreConformanceTest, ListOldestFirstPagesForward) {
  std::vector<JobRecord> created;
  for (int i = 0; i < 7; ++i) {
    created.push_back(MustCreate(
        MakeRecord(absl::StrCat("j", i), v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou")));
  }
  JobQuery q;
  q.newest_first = false;
  q.page_size = 3;
  std::vector<std::vector<std::string>> pages;
  for (int i = 0; i < 5; ++i) {
    auto page = List(q);
    ASSERT_TRUE(page.ok()) << page.status();
    pages.push_back(Names(page->records));
    if (!page->next_cursor.has_value()) break;
    EXPECT_EQ(*page->next_cursor, page->records.back().sequence());
    q.cursor = *page->next_cursor;
  }
  EXPECT_THAT(pages, ::testing::ElementsAre(::testing::ElementsAre("j0", "j1", "j2"),
                                            ::testing::ElementsAre("j3", "j4", "j5"),
                                            ::testing::ElementsAre("j6")));
}

// 250 jobs over every combination of filters (including values that match
// nothing) and several page sizes, compared with a model computed here.
TEST_P(JobStoreConformanceTest, ListPagesMatchModelForEveryFilterCombination) {
  const std::vector<State> kStates = {v1::SyncJob::QUEUED, v1::SyncJob::RUNNING,
                                      v1::SyncJob::SUCCEEDED, v1::SyncJob::FAILED};
  const std::vector<std::string> kBlueprints = {"lhbp-aaaaaaaa", "lhbp-bbbbbbbb", "lhbp-cccccccc"};
  const std::vector<std::string> kRegions = {"ap-guangzhou", "ap-shanghai", "ap-beijing",
                                             "ap-chengdu", "ap-nanjing"};
  std::vector<JobRecord> model;  // creation order
  for (int i = 0; i < 250; ++i) {
    model.push_back(
        MustCreate(MakeRecord(absl::StrCat("j", i), kStates[i % 4], kBlueprints[i % 3],
                              kRegions[i % 5], i % 2 == 0 ? absl::StrCat("req-", i) : "")));
  }
  ASSERT_FALSE(HasFailure());
  // Updates must move jobs between filter results.
  for (int i = 0; i < 250; i += 10) {
    JobRecord& r = model[i];
    r.mutable_job()->set_state(v1::SyncJob::SUCCEEDED);
    r.mutable_job()->set_blueprint_id(kBlueprints[(i / 10) % 3]);
    ASSERT_TRUE(store_->UpdateJob(r).ok()) << r.job().name();
  }

  std::vector<std::optional<State>> state_options = {std::nullopt};
  for (State s : kStates) state_options.push_back(s);
  state_options.push_back(v1::SyncJob::STATE_UNSPECIFIED);  // matches nothing
  std::vector<std::optional<std::string>> blueprint_options = {std::nullopt};
  for (const auto& b : kBlueprints) blueprint_options.push_back(b);
  blueprint_options.push_back("lhbp-nomatch");
  std::vector<std::optional<std::string>> region_options = {std::nullopt};
  for (const auto& r : kRegions) region_options.push_back(r);
  region_options.push_back("ap-nowhere");

  int combos = 0;
  for (const auto& state : state_options) {
    for (const auto& blueprint : blueprint_options) {
      for (const auto& region : region_options) {
        std::vector<const JobRecord*> expected;
        for (auto it = model.rbegin(); it != model.rend(); ++it) {
          const v1::SyncJob& job = it->job();
          if (state && job.state() != *state) continue;
          if (blueprint && job.blueprint_id() != *blueprint) continue;
          if (region && job.source_region() != *region) continue;
          expected.push_back(&*it);
        }
        for (int page_size : {1, 7, 50, 1000}) {
          const std::string where =
              absl::StrCat("state=", state ? absl::StrCat(static_cast<int>(*state)) : "*",
                           " blueprint=", blueprint.value_or("*"), " region=", region.value_or("*"),
                           " page_size=", page_size);
          JobQuery q;
          q.state = state;
          q.blueprint_id = blueprint;
          q.source_region = region;
          q.page_size = page_size;
          size_t seen = 0;
          for (int pages = 0;; ++pages) {
            ASSERT_LE(pages, 251) << where << ": paging does not end";
            auto page = List(q);
            ASSERT_TRUE(page.ok()) << where << ": " << page.status();
            const size_t remaining = expected.size() - seen;
            ASSERT_EQ(page->records.size(), std::min<size_t>(remaining, page_size)) << where;
            for (const JobRecord& got : page->records) {
              ASSERT_THAT(got, EqualsProto(*expected[seen])) << where << " index " << seen;
              ++seen;
            }
            if (seen == expected.size()) {
              ASSERT_FALSE(page->next_cursor.has_value()) << where;
              break;
            }
            ASSERT_TRUE(page->next_cursor.has_value()) << where << " at " << seen;
            ASSERT_EQ(*page->next_cursor, page->records.back().sequence()) << where;
            q.cursor = *page->next_cursor;
          }
        }
        ++combos;
      }
    }
  }
  EXPECT_EQ(combos, 6 * 5 * 7);
}

// A finished job (state) one of whose copies is still to be deleted.
JobRecord WithCopyCleanup(JobRecord r, v1::Destination::CopyCleanup cleanup) {
  auto* d = r.mutable_job()->mutable_destinations(0);
  d->set_state(v1::Destination::FAILED);
  d->set_blueprint_id("lhbp-copy");
  d->set_copy_cleanup(cleanup);
  return r;
}

TEST_P(JobStoreConformanceTest, ListUnfinishedIsEveryOpenJobOldestFirst) {
  using D = v1::Destination;
  const std::vector<JobRecord> jobs = {
      MakeRecord("queued", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"),
      MakeRecord("succeeded", v1::SyncJob::SUCCEEDED, "lhbp-1", "ap-guangzhou"),
      MakeRecord("running", v1::SyncJob::RUNNING, "lhbp-1", "ap-guangzhou"),
      MakeRecord("failed", v1::SyncJob::FAILED, "lhbp-1", "ap-guangzhou"),
      MakeRecord("cancelling", v1::SyncJob::CANCELLING, "lhbp-1", "ap-guangzhou"),
      MakeRecord("cancelled", v1::SyncJob::CANCELLED, "lhbp-1", "ap-guangzhou"),
      WithCopyCleanup(MakeRecord("failed-pending", v1::SyncJob::FAILED, "lhbp-1", "ap-guangzhou"),
                      D::DELETE_PENDING),
      WithCopyCleanup(
          MakeRecord("cancelled-pending", v1::SyncJob::CANCELLED, "lhbp-1", "ap-guangzhou"),
          D::DELETE_PENDING),
      WithCopyCleanup(MakeRecord("failed-deleted", v1::SyncJob::FAILED, "lhbp-1", "ap-guangzhou"),
                      D::DELETED),
      WithCopyCleanup(MakeRecord("failed-kept", v1::SyncJob::FAILED, "lhbp-1", "ap-guangzhou"),
                      D::KEPT),
      WithCopyCleanup(MakeRecord("failed-abandoned", v1::SyncJob::FAILED, "lhbp-1", "ap-guangzhou"),
                      D::DELETE_ABANDONED),
  };
  std::map<std::string, JobRecord> stored;
  for (const JobRecord& r : jobs) stored[Names({r})[0]] = MustCreate(r);

  auto unfinished = store_->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  EXPECT_THAT(Names(*unfinished), ::testing::ElementsAre("queued", "running", "cancelling",
                                                         "failed-pending", "cancelled-pending"));

  // Updates move jobs in and out, each keeping its place: running
  // finishes, the pending copy of failed-pending is deleted, succeeded is
  // (unusually) reopened, failed gets a copy to delete.
  stored["running"].mutable_job()->set_state(v1::SyncJob::SUCCEEDED);
  stored["failed-pending"] = WithCopyCleanup(stored["failed-pending"], D::DELETED);
  stored["succeeded"].mutable_job()->set_state(v1::SyncJob::RUNNING);
  stored["failed"] = WithCopyCleanup(stored["failed"], D::DELETE_PENDING);
  for (const char* id : {"running", "failed-pending", "succeeded", "failed"}) {
    ASSERT_TRUE(store_->UpdateJob(stored[id]).ok()) << id;
  }
  unfinished = store_->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  EXPECT_THAT(Names(*unfinished), ::testing::ElementsAre("queued", "succeeded", "failed",
                                                         "cancelling", "cancelled-pending"));
  ASSERT_EQ(unfinished->size(), 5u);
  EXPECT_THAT((*unfinished)[1], EqualsProto(stored["succeeded"]));
  EXPECT_THAT((*unfinished)[2], EqualsProto(stored["failed"]));
}

TEST_P(JobStoreConformanceTest, DeleteMissingJobIsNotFound) {
  MustCreate(MakeRecord("a", v1::SyncJob::SUCCEEDED, "lhbp-1", "ap-guangzhou"));
  absl::Status s = store_->DeleteJob("syncJobs/missing");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("syncJobs/missing"));
  EXPECT_TRUE(store_->GetJob("syncJobs/a").ok());
}

TEST_P(JobStoreConformanceTest, DeleteOpenJobIsFailedPreconditionSayingWhy) {
  const std::vector<std::pair<JobRecord, std::string>> cases = {
      {MakeRecord("q", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"), "not finished (QUEUED)"},
      {MakeRecord("r", v1::SyncJob::RUNNING, "lhbp-1", "ap-guangzhou"), "not finished (RUNNING)"},
      {MakeRecord("c", v1::SyncJob::CANCELLING, "lhbp-1", "ap-guangzhou"),
       "not finished (CANCELLING)"},
      {WithCopyCleanup(MakeRecord("f", v1::SyncJob::FAILED, "lhbp-1", "ap-guangzhou"),
                       v1::Destination::DELETE_PENDING),
       "copies of it are still being deleted"},
  };
  for (const auto& [record, why] : cases) {
    const JobRecord stored = MustCreate(record);
    absl::Status s = store_->DeleteJob(record.job().name());
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(s.message(), HasSubstr(record.job().name()));
    EXPECT_THAT(s.message(), HasSubstr(why));
    auto got = store_->GetJob(record.job().name());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_THAT(*got, EqualsProto(stored));
  }
  auto unfinished = store_->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  EXPECT_EQ(unfinished->size(), cases.size());
}

TEST_P(JobStoreConformanceTest, DeleteFinishedJobRemovesItAndFreesItsRequestKey) {
  JobRecord a = MakeRecord("a", v1::SyncJob::RUNNING, "lhbp-1", "ap-guangzhou", "req-1");
  a.mutable_job()->set_creator("uri:spiffe://c/ns/web/sa/deployer");
  a = MustCreate(a);
  MustCreate(MakeRecord("b", v1::SyncJob::SUCCEEDED, "lhbp-1", "ap-guangzhou"));
  a.mutable_job()->set_state(v1::SyncJob::FAILED);
  a = WithCopyCleanup(a, v1::Destination::DELETED);
  ASSERT_TRUE(store_->UpdateJob(a).ok());

  ASSERT_TRUE(store_->DeleteJob("syncJobs/a").ok());
  EXPECT_EQ(store_->GetJob("syncJobs/a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteJob("syncJobs/a").code(), absl::StatusCode::kNotFound);
  JobQuery q;
  auto page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Names(page->records), ::testing::ElementsAre("b"));

  // The same creator and request_id make a new job now.
  JobRecord again = MakeRecord("a2", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-1");
  again.mutable_job()->set_creator(a.job().creator());
  JobRecord created = MustCreate(again);
  EXPECT_EQ(created.job().name(), "syncJobs/a2");
  EXPECT_GT(created.sequence(), a.sequence());
  // And the name of the deleted job is free too.
  MustCreate(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));
}

// Jobs b0..b9 updated at t0 + i seconds (b9 first); b1, b4 and b7 open. DeleteFinishedJobs
// takes the least recently updated closed ones first, never an open one.
TEST_P(JobStoreConformanceTest, DeleteFinishedJobsByAgeAndLimit) {
  constexpr int64_t kT0 = 1800000000;
  std::vector<JobRecord> jobs;
  for (int i = 0; i < 10; ++i) {
    JobRecord r = MakeRecord(absl::StrCat("b", i), v1::SyncJob::SUCCEEDED, "lhbp-1", "ap-guangzhou",
                             absl::StrCat("req-", i));
    if (i == 1) r.mutable_job()->set_state(v1::SyncJob::RUNNING);
    if (i == 4) r = WithCopyCleanup(r, v1::Destination::DELETE_PENDING);
    if (i == 7) r.mutable_job()->set_state(v1::SyncJob::CANCELLING);
    // Updated in an order other than creation's: b9 first.
    r.mutable_job()->mutable_update_time()->set_seconds(kT0 + (i == 9 ? -1 : i));
    jobs.push_back(MustCreate(r));
  }
  JobRecord undated = MakeRecord("undated", v1::SyncJob::FAILED, "lhbp-1", "ap-guangzhou");
  undated.mutable_job()->clear_update_time();
  MustCreate(undated);
  auto remaining = [&] {
    JobQuery q;
    q.page_size = 100;
    q.newest_first = false;
    auto page = List(q);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? Names(page->records) : std::vector<std::string>{};
  };

  EXPECT_EQ(store_->DeleteFinishedJobs(absl::FromUnixSeconds(kT0 + 5), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Before t0 - 1: nothing is that old.
  auto deleted = store_->DeleteFinishedJobs(absl::FromUnixSeconds(kT0 - 1), 100);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0);
  // Before t0 + 5, at most 3: b9 (t0 - 1), b0, b2.
  deleted = store_->DeleteFinishedJobs(absl::FromUnixSeconds(kT0 + 5), 3);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);
  EXPECT_THAT(remaining(),
              ::testing::ElementsAre("b1", "b3", "b4", "b5", "b6", "b7", "b8", "undated"));
  // The rest before t0 + 5: b3 (b1 and b4 are open, b5 is not older).
  deleted = store_->DeleteFinishedJobs(absl::FromUnixSeconds(kT0 + 5), 100);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1);
  // Everything closed: b5, b6, b8; never the open ones or the undated one.
  deleted = store_->DeleteFinishedJobs(absl::InfiniteFuture(), 100);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);
  EXPECT_THAT(remaining(), ::testing::ElementsAre("b1", "b4", "b7", "undated"));
  // Deleted request ids are free again; the open jobs' are not.
  MustCreate(MakeRecord("new-0", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-0"));
  auto dup = store_->CreateJob(
      MakeRecord("new-1", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", "req-1"));
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_FALSE(dup->created);
  EXPECT_EQ(dup->record.job().name(), "syncJobs/b1");
}

TEST_P(JobStoreConformanceTest, RequestIdIsUniquePerCreator) {
  auto make = [](const std::string& id, const std::string& creator, const std::string& req) {
    JobRecord r = MakeRecord(id, v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou", req);
    r.mutable_job()->set_creator(creator);
    return r;
  };
  const std::string kWeb = "uri:spiffe://cluster/ns/web/sa/deployer";
  const std::string kOps = "uri:spiffe://cluster/ns/ops/sa/deployer";
  MustCreate(make("web", kWeb, "req-1"));
  MustCreate(make("ops", kOps, "req-1"));
  // Anonymous callers and jobs recorded before creators share one key.
  MustCreate(make("legacy", "", "req-1"));
  for (const auto& [id, creator, winner] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"web-again", kWeb, "syncJobs/web"},
           {"ops-again", kOps, "syncJobs/ops"},
           {"anonymous-again", kAnonymousCreator, "syncJobs/legacy"},
           {"legacy-again", "", "syncJobs/legacy"}}) {
    auto again = store_->CreateJob(make(id, creator, "req-1"));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(again->created) << id;
    EXPECT_EQ(again->record.job().name(), winner) << id;
  }
  // UpdateJob keeps the keys unique as well.
  JobRecord other = MustCreate(make("other", kWeb, "req-2"));
  other.mutable_job()->set_creator(kOps);
  other.mutable_job()->set_request_id("req-1");
  EXPECT_EQ(store_->UpdateJob(other).code(), absl::StatusCode::kAlreadyExists);
  other.mutable_job()->set_creator("uri:spiffe://cluster/ns/third/sa/x");
  EXPECT_TRUE(store_->UpdateJob(other).ok());

  JobQuery q;
  q.request_id = "req-1";
  auto page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Names(page->records), ::testing::ElementsAre("other", "legacy", "ops", "web"));
}

// A varied set of jobs for the filter tests: 120 jobs, each field cycling
// with a different period so that combinations occur.
std::vector<JobRecord> FilterFixture() {
  const std::vector<std::string> kCreators = {"", "uri:a", "uri:b"};
  const std::vector<std::string> kRegions = {"ap-shanghai", "ap-beijing", "ap-chengdu",
                                             "ap-nanjing"};
  std::vector<JobRecord> out;
  for (int i = 0; i < 120; ++i) {
    JobRecord r =
        MakeRecord(absl::StrCat("f", i), i % 3 == 0 ? v1::SyncJob::FAILED : v1::SyncJob::SUCCEEDED,
                   i % 2 == 0 ? "lhbp-even" : "lhbp-odd", "ap-guangzhou",
                   // f0..f2: one request_id, three creators.
                   i < 3        ? "shared"
                   : i % 4 == 0 ? absl::StrCat("req-", i)
                                : "");
    v1::SyncJob& job = *r.mutable_job();
    job.set_creator(kCreators[i % 3]);
    if (i % 5 == 0) job.set_retry_of(absl::StrCat("syncJobs/f", i / 10));
    job.mutable_destinations(0)->set_region(kRegions[i % 4]);
    if (i % 7 == 0) job.add_destinations()->set_region("ap-hongkong");
    if (i % 2 == 0) (*job.mutable_labels())["team"] = i % 4 == 0 ? "web" : "ops";
    if (i % 3 == 0) (*job.mutable_labels())["example.com/tier"] = "gold";
    // Every sixth job started by one of two policies, the rest asked for
    // directly.
    if (i % 6 == 1) job.set_policy(i % 12 == 1 ? "syncPolicies/web-golden" : "syncPolicies/db");
    // Not in creation order, with sub-second parts.
    job.mutable_create_time()->set_seconds(1700000000 + (i * 37) % 120);
    job.mutable_create_time()->set_nanos(i % 2 == 0 ? 0 : 500000000);
    out.push_back(r);
  }
  return out;
}

bool ModelMatches(const JobQuery& q, const v1::SyncJob& job) {
  if (q.state && job.state() != *q.state) return false;
  if (q.blueprint_id && job.blueprint_id() != *q.blueprint_id) return false;
  if (q.source_region && job.source_region() != *q.source_region) return false;
  if (q.request_id && job.request_id() != *q.request_id) return false;
  if (q.creator && job.creator() != *q.creator) return false;
  if (q.retry_of && job.retry_of() != *q.retry_of) return false;
  if (q.destination_region) {
    bool found = false;
    for (const auto& d : job.destinations()) found = found || d.region() == *q.destination_region;
    if (!found) return false;
  }
  if (q.policy && job.policy() != *q.policy) return false;
  for (const auto& [k, v] : q.labels) {
    auto it = job.labels().find(k);
    if (it == job.labels().end() || it->second != v) return false;
  }
  const absl::Time t = absl::FromUnixSeconds(job.create_time().seconds()) +
                       absl::Nanoseconds(job.create_time().nanos());
  for (const TimeCondition& c : q.create_time) {
    using Op = TimeCondition::Op;
    const bool holds = c.op == Op::kEq   ? t == c.time
                       : c.op == Op::kNe ? t != c.time
                       : c.op == Op::kLt ? t < c.time
                       : c.op == Op::kLe ? t <= c.time
                       : c.op == Op::kGt ? t > c.time
                                         : t >= c.time;
    if (!holds) return false;
  }
  return true;
}

// Every filter alone and in combinations, both orders, several page sizes:
// following the cursors yields exactly the model's jobs, in order, without
// duplicates or gaps, and pages never exceed page_size.
TEST_P(JobStoreConformanceTest, ListEveryFilterInBothOrdersMatchesModel) {
  std::vector<JobRecord> model;
  for (const JobRecord& r : FilterFixture()) model.push_back(MustCreate(r));
  ASSERT_FALSE(HasFailure());
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  using Op = TimeCondition::Op;

  std::vector<std::pair<std::string, JobQuery>> queries;
  auto add = [&](const std::string& what, auto set) {
    JobQuery q;
    set(q);
    queries.emplace_back(what, q);
  };
  add("none", [](JobQuery&) {});
  add("state", [](JobQuery& q) { q.state = v1::SyncJob::FAILED; });
  add("state none", [](JobQuery& q) { q.state = v1::SyncJob::CANCELLING; });
  add("request_id", [](JobQuery& q) { q.request_id = "shared"; });
  add("request_id none", [](JobQuery& q) { q.request_id = "req-1"; });
  add("request_id empty", [](JobQuery& q) { q.request_id = ""; });
  add("creator", [](JobQuery& q) { q.creator = "uri:a"; });
  add("creator empty", [](JobQuery& q) { q.creator = ""; });
  add("retry_of", [](JobQuery& q) { q.retry_of = "syncJobs/f5"; });
  add("retry_of empty", [](JobQuery& q) { q.retry_of = ""; });
  add("destination", [](JobQuery& q) { q.destination_region = "ap-hongkong"; });
  add("destination first", [](JobQuery& q) { q.destination_region = "ap-beijing"; });
  add("destination none", [](JobQuery& q) { q.destination_region = "ap-tokyo"; });
  add("policy", [](JobQuery& q) { q.policy = "syncPolicies/web-golden"; });
  add("policy other", [](JobQuery& q) { q.policy = "syncPolicies/db"; });
  add("policy none", [](JobQuery& q) { q.policy = "syncPolicies/nobody"; });
  add("policy empty", [](JobQuery& q) { q.policy = ""; });
  add("policy and columns", [](JobQuery& q) {
    q.policy = "syncPolicies/db";
    q.state = v1::SyncJob::SUCCEEDED;
    q.destination_region = "ap-hongkong";
  });
  add("label", [](JobQuery& q) { q.labels["team"] = "web"; });
  add("label prefixed", [](JobQuery& q) { q.labels["example.com/tier"] = "gold"; });
  add("labels both", [](JobQuery& q) {
    q.labels["team"] = "ops";
    q.labels["example.com/tier"] = "gold";
  });
  add("label none", [](JobQuery& q) { q.labels["team"] = "nobody"; });
  add("create_time range", [&](JobQuery& q) {
    q.create_time = {{Op::kGe, t0 + absl::Seconds(30)}, {Op::kLt, t0 + absl::Seconds(60)}};
  });
  add("create_time eq", [&](JobQuery& q) {
    q.create_time = {{Op::kEq, t0 + absl::Seconds(37) + absl::Milliseconds(500)}};
  });
  add("create_time ne le", [&](JobQuery& q) {
    q.create_time = {{Op::kNe, t0 + absl::Seconds(2)}, {Op::kLe, t0 + absl::Seconds(10)}};
  });
  add("create_time gt", [&](JobQuery& q) { q.create_time = {{Op::kGt, t0 + absl::Seconds(100)}}; });
  add("columns and record", [](JobQuery& q) {
    q.creator = "";
    q.blueprint_id = "lhbp-even";
    q.labels["team"] = "web";
    q.destination_region = "ap-shanghai";
  });
  add("everything", [&](JobQuery& q) {
    q.state = v1::SyncJob::FAILED;
    q.blueprint_id = "lhbp-even";
    q.source_region = "ap-guangzhou";
    q.creator = "";
    q.request_id = "req-48";
    q.labels["team"] = "web";
    q.create_time = {{Op::kGe, t0}};
  });

  for (const auto& [what, base] : queries) {
    for (bool newest_first : {true, false}) {
      std::vector<std::string> expected;
      for (const JobRecord& r : model) {
        if (ModelMatches(base, r.job())) expected.push_back(Names({r})[0]);
      }
      if (newest_first) std::reverse(expected.begin(), expected.end());
      for (int page_size : {1, 7, 1000}) {
        SCOPED_TRACE(absl::StrCat(what, newest_first ? " newest" : " oldest", " first, page_size ",
                                  page_size));
        JobQuery q = base;
        q.newest_first = newest_first;
        q.page_size = page_size;
        std::vector<std::string> got;
        int64_t last_cursor = 0;
        for (int pages = 0;; ++pages) {
          ASSERT_LE(pages, 130) << "paging does not end";
          auto page = List(q);
          ASSERT_TRUE(page.ok()) << page.status();
          ASSERT_LE(page->records.size(), static_cast<size_t>(page_size));
          if (!store::HasRecordFilters(base) && page->next_cursor.has_value()) {
            // Only filters on records may cut a page short.
            ASSERT_EQ(page->records.size(), static_cast<size_t>(page_size));
          }
          for (const auto& r : Names(page->records)) got.push_back(r);
          if (!page->next_cursor.has_value()) break;
          // The cursor moves on in the query's order.
          if (last_cursor != 0) {
            ASSERT_TRUE(newest_first ? *page->next_cursor < last_cursor
                                     : *page->next_cursor > last_cursor);
          }
          last_cursor = *page->next_cursor;
          q.cursor = *page->next_cursor;
        }
        EXPECT_EQ(got, expected);
      }
    }
  }
}

// 250 jobs, only the oldest one labelled: newest first, one per page, each
// call examines at most ListScanLimit(1) = 100 jobs and returns an empty
// page with a cursor until it reaches it. Jobs that the column filters
// exclude do not count.
TEST_P(JobStoreConformanceTest, ListWithRecordFiltersStopsAtTheScanBound) {
  ASSERT_EQ(ListScanLimit(1), 100);
  std::vector<JobRecord> created;
  for (int i = 0; i < 250; ++i) {
    JobRecord r = MakeRecord(absl::StrCat("s", i), v1::SyncJob::SUCCEEDED, "lhbp-1",
                             i % 2 == 0 ? "ap-guangzhou" : "ap-beijing");
    if (i == 0) (*r.mutable_job()->mutable_labels())["team"] = "web";
    created.push_back(MustCreate(r));
  }
  JobQuery q;
  q.page_size = 1;
  q.labels["team"] = "web";
  std::vector<std::pair<size_t, std::optional<int64_t>>> pages;
  for (int i = 0; i < 5; ++i) {
    auto page = List(q);
    ASSERT_TRUE(page.ok()) << page.status();
    pages.emplace_back(page->records.size(), page->next_cursor);
    if (!page->next_cursor.has_value()) {
      ASSERT_EQ(page->records.size(), 1u);
      EXPECT_EQ(page->records[0].job().name(), "syncJobs/s0");
      break;
    }
    q.cursor = *page->next_cursor;
  }
  using Page = std::pair<size_t, std::optional<int64_t>>;
  EXPECT_THAT(pages,
              ::testing::ElementsAre(Page{0, created[150].sequence()},
                                     Page{0, created[50].sequence()}, Page{1, std::nullopt}));

  // With a column filter only its 125 jobs are examined: 100, then 25.
  q.cursor = 0;
  q.source_region = "ap-guangzhou";
  auto page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->records.empty());
  ASSERT_EQ(page->next_cursor, created[50].sequence());
  q.cursor = *page->next_cursor;
  page = List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Names(page->records), ::testing::ElementsAre("s0"));
  EXPECT_FALSE(page->next_cursor.has_value());

  // Oldest first, a full page ends the call early with a cursor after the
  // last job returned.
  JobQuery forward;
  forward.newest_first = false;
  forward.page_size = 1;
  forward.destination_region = "ap-shanghai";
  page = List(forward);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Names(page->records), ::testing::ElementsAre("s0"));
  EXPECT_EQ(page->next_cursor, created[0].sequence());
}

// OpenJobStore's spec parsing, independent of the store parameter.
TEST(OpenJobStoreTest, MemorySpecOpensAWorkingStore) {
  auto store = OpenJobStore("memory:");
  ASSERT_TRUE(store.ok()) << store.status();
  auto created =
      (*store)->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE((*store)->GetJob("syncJobs/a").ok());
}

TEST(OpenJobStoreTest, SqliteSpecOpensTheFileAtPath) {
  ScratchDir dir;
  const std::string path = dir.path() + "/sub/jobs.db";
  auto store = OpenJobStore("sqlite:" + path);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(
      (*store)->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou")).ok());
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
}

TEST(OpenJobStoreTest, RejectsOtherSpecs) {
  for (const std::string spec : {"", "memory", "memory:x", "sqlite:", "sqlite", "/var/lib/jobs.db",
                                 "postgresql:/localhost/jobs", "postgres:", "POSTGRES://h/db",
                                 "pg://h/db", "SQLITE:/tmp/x.db"}) {
    auto store = OpenJobStore(spec);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << "spec " << spec;
    EXPECT_THAT(store.status().message(),
                HasSubstr("store must be sqlite:PATH, postgres://… or memory:, got"))
        << "spec " << spec;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Stores, JobStoreConformanceTest,
    ::testing::Values(
        StoreFactory{"Memory",
                     [](const std::string&) -> absl::StatusOr<std::unique_ptr<JobStore>> {
                       return MakeMemoryJobStore();
                     }},
        StoreFactory{
            "Sqlite",
            [](const std::string& dir) { return OpenJobStore("sqlite:" + dir + "/jobs.db"); }},
        // One throwaway server per test process, a new database per test.
        StoreFactory{"Postgres",
                     [](const std::string&) -> absl::StatusOr<std::unique_ptr<JobStore>> {
                       auto server = blueprintsync::testing::PostgresServer::Shared();
                       if (!server.ok()) return server.status();
                       auto dsn = (*server)->CreateDatabase();
                       if (!dsn.ok()) return dsn.status();
                       return OpenJobStore(*dsn);
                     }}),
    [](const ::testing::TestParamInfo<StoreFactory>& p) { return p.param.name; });

}  // namespace
}  // namespace blueprintsync::jobs
