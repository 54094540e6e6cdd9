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
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "service/jobs/job_store.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::jobs {
namespace {

using ::testing::HasSubstr;
using State = v1::SyncJob::State;

struct StoreFactory {
  std::string name;
  // Opens a new, empty store. `dir` is a fresh directory the store may use.
  std::function<absl::StatusOr<std::unique_ptr<JobStore>>(const std::string& dir)> open;
};

void PrintTo(const StoreFactory& f, std::ostream* os) { *os << f.name; }

MATCHER_P(EqualsProto, expected, "") {
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(arg, expected)) return true;
  *result_listener << "differences: " << diff;
  return false;
}

// A fresh directory under the test temp dir, removed at destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = ::testing::TempDir() + "job_store_test_XXXXXX";
    char* made = mkdtemp(templ.data());
    EXPECT_NE(made, nullptr) << "mkdtemp " << templ;
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
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
  auto page = store_->ListJobs(q);
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
  auto page = store_->ListJobs(q);
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
  auto page = store_->ListJobs(q);
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

TEST_P(JobStoreConformanceTest, ListRejectsNonPositivePageSizeAndNegativeBound) {
  JobQuery q;
  q.page_size = 0;
  EXPECT_EQ(store_->ListJobs(q).status().code(), absl::StatusCode::kInvalidArgument);
  q.page_size = -3;
  EXPECT_EQ(store_->ListJobs(q).status().code(), absl::StatusCode::kInvalidArgument);
  q.page_size = 10;
  q.before_sequence = -1;
  EXPECT_EQ(store_->ListJobs(q).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(JobStoreConformanceTest, ListEmptyStore) {
  JobQuery q;
  auto page = store_->ListJobs(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->records.empty());
  EXPECT_FALSE(page->next_before_sequence.has_value());
}

TEST_P(JobStoreConformanceTest, ListExactMultipleOfPageSizeEndsWithoutToken) {
  std::vector<JobRecord> created;
  for (int i = 0; i < 10; ++i) {
    created.push_back(MustCreate(
        MakeRecord(absl::StrCat("j", i), v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou")));
  }
  JobQuery q;
  q.page_size = 5;
  auto first = store_->ListJobs(q);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->records.size(), 5u);
  EXPECT_EQ(first->records.front().job().name(), "syncJobs/j9");
  ASSERT_TRUE(first->next_before_sequence.has_value());
  EXPECT_EQ(*first->next_before_sequence, created[5].sequence());

  q.before_sequence = *first->next_before_sequence;
  auto second = store_->ListJobs(q);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->records.size(), 5u);
  EXPECT_EQ(second->records.front().job().name(), "syncJobs/j4");
  EXPECT_EQ(second->records.back().job().name(), "syncJobs/j0");
  EXPECT_FALSE(second->next_before_sequence.has_value());
}

TEST_P(JobStoreConformanceTest, ListBeforeSequenceIsExclusiveUpperBound) {
  std::vector<JobRecord> created;
  for (int i = 0; i < 6; ++i) {
    created.push_back(MustCreate(
        MakeRecord(absl::StrCat("j", i), v1::SyncJob::QUEUED, "lhbp-1", "ap-guangzhou")));
  }
  JobQuery q;
  q.before_sequence = created[3].sequence();
  auto page = store_->ListJobs(q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 3u);
  EXPECT_EQ(page->records[0].job().name(), "syncJobs/j2");
  EXPECT_EQ(page->records[2].job().name(), "syncJobs/j0");
  EXPECT_FALSE(page->next_before_sequence.has_value());

  q.before_sequence = created[0].sequence();
  page = store_->ListJobs(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->records.empty());
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
            auto page = store_->ListJobs(q);
            ASSERT_TRUE(page.ok()) << where << ": " << page.status();
            const size_t remaining = expected.size() - seen;
            ASSERT_EQ(page->records.size(), std::min<size_t>(remaining, page_size)) << where;
            for (const JobRecord& got : page->records) {
              ASSERT_THAT(got, EqualsProto(*expected[seen])) << where << " index " << seen;
              ++seen;
            }
            if (seen == expected.size()) {
              ASSERT_FALSE(page->next_before_sequence.has_value()) << where;
              break;
            }
            ASSERT_TRUE(page->next_before_sequence.has_value()) << where << " at " << seen;
            ASSERT_EQ(*page->next_before_sequence, page->records.back().sequence()) << where;
            q.before_sequence = *page->next_before_sequence;
          }
        }
        ++combos;
      }
    }
  }
  EXPECT_EQ(combos, 6 * 5 * 7);
}

TEST_P(JobStoreConformanceTest, ListUnfinishedIsQueuedAndRunningOldestFirst) {
  // Creation order: a QUEUED, b SUCCEEDED, c RUNNING, d FAILED, e QUEUED, f RUNNING.
  const std::vector<std::pair<std::string, State>> jobs = {
      {"a", v1::SyncJob::QUEUED}, {"b", v1::SyncJob::SUCCEEDED}, {"c", v1::SyncJob::RUNNING},
      {"d", v1::SyncJob::FAILED}, {"e", v1::SyncJob::QUEUED},    {"f", v1::SyncJob::RUNNING}};
  std::map<std::string, JobRecord> stored;
  for (const auto& [id, state] : jobs) {
    stored[id] = MustCreate(MakeRecord(id, state, "lhbp-1", "ap-guangzhou"));
  }
  // c finishes; b is (unusually) reopened and must keep its old position.
  stored["c"].mutable_job()->set_state(v1::SyncJob::SUCCEEDED);
  ASSERT_TRUE(store_->UpdateJob(stored["c"]).ok());
  stored["b"].mutable_job()->set_state(v1::SyncJob::RUNNING);
  ASSERT_TRUE(store_->UpdateJob(stored["b"]).ok());

  auto unfinished = store_->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  std::vector<std::string> names;
  for (const auto& r : *unfinished) names.push_back(r.job().name());
  EXPECT_THAT(names,
              ::testing::ElementsAre("syncJobs/a", "syncJobs/b", "syncJobs/e", "syncJobs/f"));
  ASSERT_EQ(unfinished->size(), 4u);
  EXPECT_THAT((*unfinished)[1], EqualsProto(stored["b"]));
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
