// PolicyApi over the memory PolicyStore: what each call writes (uid, times,
// creator, masked fields, the delete mark), the revision checks, the
// destinations checked against the stored source, that answers come from
// the API's own threads, on_change after each successful write only, and
// how Shutdown answers calls that had not started.
#include "service/policies/policy_api.h"

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/testing/fake_clock.h"
#include "service/jobs/job_state.h"
#include "service/policies/policy_store.h"

namespace blueprintsync::policies {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// Long enough never to fire on a loaded machine; only a hang reaches it.
constexpr absl::Duration kWait = absl::Seconds(30);

constexpr char kName[] = "syncPolicies/web-golden";

v1::SyncPolicy Family(const std::string& name = kName) {
  v1::SyncPolicy p;
  p.set_name(name);
  p.set_source_region("ap-guangzhou");
  p.set_blueprint_name("web-golden");
  p.add_destination_regions("ap-shanghai");
  p.add_destination_regions("ap-beijing");
  p.set_keep_versions(2);
  (*p.mutable_labels())["team"] = "web";
  return p;
}

// A PolicyStore that passes every call to the memory store, with hooks a
// test uses to hold a call or to slip another writer's change in before
// one.
class HookedStore final : public PolicyStore {
 public:
  HookedStore() : inner_(MakeMemoryPolicyStore()) {}

  PolicyStore& inner() { return *inner_; }
  // Runs at the start of every Get / UpdateSpec.
  void set_before_get(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    before_get_ = std::move(hook);
  }
  void set_before_update(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    before_update_ = std::move(hook);
  }

  absl::StatusOr<PolicyRecord> Create(const PolicyRecord& record) override {
    return inner_->Create(record);
  }
  absl::StatusOr<PolicyRecord> Get(const std::string& name) override {
    Call(&HookedStore::before_get_);
    return inner_->Get(name);
  }
  absl::StatusOr<PolicyRecord> UpdateSpec(const v1::SyncPolicy& spec,
                                          std::optional<int64_t> expected_revision) override {
    Call(&HookedStore::before_update_);
    return inner_->UpdateSpec(spec, expected_revision);
  }
  absl::StatusOr<PolicyRecord> RequestDelete(const std::string& name,
                                             std::optional<int64_t> expected_revision) override {
    return inner_->RequestDelete(name, expected_revision);
  }
  absl::Status Delete(const std::string& name, std::optional<int64_t> expected_revision,
                      const std::string& expected_uid) override {
    return inner_->Delete(name, expected_revision, expected_uid);
  }
  absl::Status WriteStatus(const std::string& name, const std::string& uid,
                           const PolicyStatus& status) override {
    return inner_->WriteStatus(name, uid, status);
  }
  absl::StatusOr<PolicyPage> List(const PolicyQuery& query) override { return inner_->List(query); }
  absl::StatusOr<std::vector<PolicyRecord>> ListAll() override { return inner_->ListAll(); }
  absl::StatusOr<int64_t> ChangeMark() override { return inner_->ChangeMark(); }

 private:
  // Not under mu_ while it runs: a hook may block or call the store.
  void Call(std::function<void()> HookedStore::*hook) {
    std::function<void()> h;
    {
      absl::MutexLock lock(&mu_);
      h = this->*hook;
    }
    if (h) h();
  }

  std::unique_ptr<PolicyStore> inner_;
  absl::Mutex mu_;
  std::function<void()> before_get_ ABSL_GUARDED_BY(mu_);
  std::function<void()> before_update_ ABSL_GUARDED_BY(mu_);
};

// One call's answer and the thread it came from.
template <typename Result>
struct Answer {
  Result result;
  std::thread::id thread;
};

class PolicyApiTest : public ::testing::Test {
 protected:
  PolicyApiTest() { MakeApi(2); }

  void MakeApi(int threads) {
    api_.reset();
    api_ = std::make_unique<PolicyApi>(
        &store_, [this] { ++changes_; }, &clock_, threads);
  }

  // Makes one call and waits for its answer.
  template <typename Result>
  Answer<Result> Await(const std::function<void(std::function<void(Result)>)>& call) {
    auto answer = std::make_shared<std::optional<Answer<Result>>>();
    auto done = std::make_shared<absl::Notification>();
    call([answer, done](Result r) {
      *answer = Answer<Result>{std::move(r), std::this_thread::get_id()};
      done->Notify();
    });
    if (!done->WaitForNotificationWithTimeout(kWait)) {
      ADD_FAILURE() << "no answer";
      return {Result(absl::DeadlineExceededError("no answer")), {}};
    }
    return **answer;
  }

  Answer<absl::StatusOr<v1::SyncPolicy>> Create(v1::SyncPolicy p,
                                                const std::string& creator = "dns:ci.test") {
    return Await<absl::StatusOr<v1::SyncPolicy>>(
        [&](PolicyService::PolicyCallback done) { api_->Create(p, creator, std::move(done)); });
  }
  Answer<absl::StatusOr<v1::SyncPolicy>> Get(const std::string& name = kName) {
    return Await<absl::StatusOr<v1::SyncPolicy>>(
        [&](PolicyService::PolicyCallback done) { api_->Get(name, std::move(done)); });
  }
  Answer<absl::StatusOr<PolicyListPage>> List(const PolicyQuery& query) {
    return Await<absl::StatusOr<PolicyListPage>>(
        [&](PolicyService::PageCallback done) { api_->List(query, std::move(done)); });
  }
  Answer<absl::StatusOr<v1::SyncPolicy>> Update(const v1::SyncPolicy& p,
                                                std::vector<std::string> paths,
                                                std::optional<int64_t> expected = std::nullopt) {
    return Await<absl::StatusOr<v1::SyncPolicy>>([&](PolicyService::PolicyCallback done) {
      api_->Update(p, std::move(paths), expected, std::move(done));
    });
  }
  Answer<absl::Status> Delete(const std::string& name, std::optional<int64_t> expected,
                              bool delete_copies) {
    return Await<absl::Status>([&](PolicyService::StatusCallback done) {
      api_->Delete(name, expected, delete_copies, std::move(done));
    });
  }

  PolicyRecord Stored(const std::string& name = kName) {
    auto record = store_.inner().Get(name);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? *record : PolicyRecord();
  }

  testing::FakeClock clock_;
  HookedStore store_;
  std::atomic<int> changes_{0};
  std::unique_ptr<PolicyApi> api_;
};

bool IsLowerHex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// ---- Create ----

TEST_F(PolicyApiTest, CreateRecordsTheSpecWithUidTimesAndCreator) {
  v1::SyncPolicy asked = Family();
  // Output-only fields a caller copied from another policy are not kept.
  asked.set_etag("\"r9\"");
  asked.set_in_sync(true);
  asked.set_source_blueprint_id("lhbp-aaaaaaaa");
  asked.add_regions()->set_region("ap-beijing");
  asked.set_deleting(true);
  const auto answer = Create(asked);
  ASSERT_TRUE(answer.result.ok()) << answer.result.status();
  const v1::SyncPolicy& p = *answer.result;
  EXPECT_NE(answer.thread, std::this_thread::get_id());
  EXPECT_EQ(p.name(), kName);
  EXPECT_EQ(p.blueprint_name(), "web-golden");
  EXPECT_THAT(p.destination_regions(), ElementsAre("ap-shanghai", "ap-beijing"));
  EXPECT_EQ(p.creator(), "dns:ci.test");
  EXPECT_EQ(jobs::FromProto(p.create_time()), clock_.Now());
  EXPECT_EQ(jobs::FromProto(p.update_time()), clock_.Now());
  EXPECT_EQ(p.etag(), PolicyEtag(1));
  EXPECT_FALSE(p.in_sync());
  EXPECT_FALSE(p.deleting());
  EXPECT_EQ(p.source_blueprint_id(), "");
  EXPECT_EQ(p.regions_size(), 0);

  const PolicyRecord record = Stored();
  EXPECT_EQ(record.revision(), 1);
  EXPECT_EQ(record.uid().size(), 32u);
  EXPECT_TRUE(IsLowerHex(record.uid())) << record.uid();
  EXPECT_EQ(record.spec().etag(), "");
  EXPECT_FALSE(record.spec().in_sync());
  EXPECT_EQ(record.spec().creator(), "dns:ci.test");
  EXPECT_EQ(changes_, 1);

  ASSERT_TRUE(Create(Family("syncPolicies/web-other")).result.ok());
  EXPECT_NE(Stored("syncPolicies/web-other").uid(), record.uid());
  EXPECT_EQ(changes_, 2);
}

TEST_F(PolicyApiTest, CreateOfATakenNameIsAlreadyExistsAndNoChange) {
  ASSERT_TRUE(Create(Family()).result.ok());
  const std::string uid = Stored().uid();
  v1::SyncPolicy again = Family();
  again.set_keep_versions(9);
  const auto answer = Create(again);
  EXPECT_EQ(answer.result.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Stored().uid(), uid);
  EXPECT_EQ(Stored().spec().keep_versions(), 2);
  EXPECT_EQ(changes_, 1);
}

// ---- Get, List ----

TEST_F(PolicyApiTest, GetAnswersTheViewOrNotFound) {
  EXPECT_EQ(Get().result.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Create(Family()).result.ok());
  const auto answer = Get();
  ASSERT_TRUE(answer.result.ok()) << answer.result.status();
  EXPECT_NE(answer.thread, std::this_thread::get_id());
  EXPECT_EQ(answer.result->name(), kName);
  EXPECT_EQ(answer.result->etag(), PolicyEtag(1));
  EXPECT_EQ(changes_, 1);  // reads are no change
}

TEST_F(PolicyApiTest, ListAnswersViewsAndWhereToContinue) {
  for (const char* id : {"alpha", "bravo", "charlie"}) {
    ASSERT_TRUE(Create(Family(std::string("syncPolicies/") + id)).result.ok());
  }
  PolicyQuery query;
  query.page_size = 2;
  auto first = List(query);
  ASSERT_TRUE(first.result.ok()) << first.result.status();
  EXPECT_NE(first.thread, std::this_thread::get_id());
  ASSERT_EQ(first.result->policies.size(), 2u);
  EXPECT_EQ(first.result->policies[0].name(), "syncPolicies/alpha");
  EXPECT_EQ(first.result->policies[1].name(), "syncPolicies/bravo");
  EXPECT_EQ(first.result->policies[0].etag(), PolicyEtag(1));
  ASSERT_TRUE(first.result->next_after.has_value());

  query.after_name = *first.result->next_after;
  auto second = List(query);
  ASSERT_TRUE(second.result.ok()) << second.result.status();
  ASSERT_EQ(second.result->policies.size(), 1u);
  EXPECT_EQ(second.result->policies[0].name(), "syncPolicies/charlie");
  EXPECT_FALSE(second.result->next_after.has_value());
}

// ---- Update ----

TEST_F(PolicyApiTest, UpdateCopiesOnlyTheMaskedFieldsAndReplacesLabelsWhole) {
  v1::SyncPolicy original = Family();
  (*original.mutable_labels())["tier"] = "front";
  ASSERT_TRUE(Create(original).result.ok());
  const absl::Time created = clock_.Now();
  clock_.Advance(absl::Hours(1));

  v1::SyncPolicy asked;
  asked.set_name(kName);
  asked.set_source_region("ap-singapore");  // never applied: the source cannot change
  asked.set_blueprint_name("another-family");
  asked.add_destination_regions("ap-chengdu");
  asked.set_keep_versions(7);
  asked.set_paused(true);
  (*asked.mutable_labels())["owner"] = "ops";
  const auto answer = Update(asked, {"keep_versions", "labels"});
  ASSERT_TRUE(answer.result.ok()) << answer.result.status();
  EXPECT_NE(answer.thread, std::this_thread::get_id());
  const v1::SyncPolicy& p = *answer.result;
  EXPECT_EQ(p.keep_versions(), 7);
  EXPECT_THAT(p.labels(), UnorderedElementsAre(Pair("owner", "ops")));
  EXPECT_THAT(p.destination_regions(), ElementsAre("ap-shanghai", "ap-beijing"));
  EXPECT_FALSE(p.paused());
  EXPECT_EQ(p.source_region(), "ap-guangzhou");
  EXPECT_EQ(p.blueprint_name(), "web-golden");
  EXPECT_EQ(p.creator(), "dns:ci.test");
  EXPECT_EQ(jobs::FromProto(p.create_time()), created);
  EXPECT_EQ(jobs::FromProto(p.update_time()), clock_.Now());
  EXPECT_EQ(p.etag(), PolicyEtag(2));
  EXPECT_EQ(Stored().spec().keep_versions(), 7);
  EXPECT_EQ(changes_, 2);

  const auto rest = Update(asked, {"destination_regions", "paused"});
  ASSERT_TRUE(rest.result.ok()) << rest.result.status();
  EXPECT_THAT(rest.result->destination_regions(), ElementsAre("ap-chengdu"));
  EXPECT_TRUE(rest.result->paused());
  EXPECT_EQ(rest.result->etag(), PolicyEtag(3));
}

TEST_F(PolicyApiTest, UpdateWithAStaleRevisionIsAbortedAndChangesNothing) {
  ASSERT_TRUE(Create(Family()).result.ok());
  v1::SyncPolicy asked = Family();
  asked.set_keep_versions(5);
  const auto stale = Update(asked, {"keep_versions"}, 7);
  EXPECT_EQ(stale.result.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(stale.result.status().message(), HasSubstr(kName));
  EXPECT_EQ(Stored().revision(), 1);
  EXPECT_EQ(Stored().spec().keep_versions(), 2);
  EXPECT_EQ(changes_, 1);

  const auto current = Update(asked, {"keep_versions"}, 1);
  ASSERT_TRUE(current.result.ok()) << current.result.status();
  EXPECT_EQ(current.result->keep_versions(), 5);
  EXPECT_EQ(changes_, 2);
}

TEST_F(PolicyApiTest, UpdateChecksNewDestinationsAgainstTheStoredSource) {
  ASSERT_TRUE(Create(Family()).result.ok());  // source ap-guangzhou
  struct Case {
    std::vector<std::string> destinations;
    std::string rule;
    std::string mentions;
  };
  for (const Case& c : std::vector<Case>{
           {{"ap-beijing", "ap-guangzhou"}, "DESTINATION_SAME_AS_SOURCE", "destination_regions[1]"},
           {{"ap-singapore"}, "CROSS_BORDER_SYNC", "destination_regions[0]"},
       }) {
    SCOPED_TRACE(c.rule);
    v1::SyncPolicy asked;
    asked.set_name(kName);
    // A request naming another source does not change what is checked.
    asked.set_source_region("ap-singapore");
    for (const std::string& d : c.destinations) asked.add_destination_regions(d);
    const auto answer = Update(asked, {"destination_regions"});
    EXPECT_EQ(answer.result.status().code(), absl::StatusCode::kInvalidArgument);
    const auto rule = jobs::GetFieldRule(answer.result.status());
    ASSERT_TRUE(rule.has_value());
    EXPECT_EQ(rule->field, "destination_regions");
    EXPECT_EQ(rule->rule, c.rule);
    EXPECT_THAT(answer.result.status().message(), HasSubstr(c.mentions));
  }
  EXPECT_EQ(Stored().revision(), 1);
  EXPECT_EQ(changes_, 1);

  // Destinations not in the mask are not applied, so not checked.
  v1::SyncPolicy asked;
  asked.set_name(kName);
  asked.add_destination_regions("ap-guangzhou");
  asked.set_paused(true);
  const auto paused = Update(asked, {"paused"});
  ASSERT_TRUE(paused.result.ok()) << paused.result.status();
  EXPECT_TRUE(paused.result->paused());
}

TEST_F(PolicyApiTest, UpdateWithoutAnEtagMergesOntoAChangeMadeInBetween) {
  ASSERT_TRUE(Create(Family()).result.ok());
  // Another replica changes the labels after this update read the policy
  // and before it writes, once.
  std::atomic<bool> interfered{false};
  store_.set_before_update([&] {
    if (interfered.exchange(true)) return;
    v1::SyncPolicy theirs = Stored().spec();
    (*theirs.mutable_labels())["owner"] = "ops";
    ASSERT_TRUE(store_.inner().UpdateSpec(theirs, std::nullopt).ok());
  });
  v1::SyncPolicy asked = Family();
  asked.set_keep_versions(9);
  const auto answer = Update(asked, {"keep_versions"});
  ASSERT_TRUE(answer.result.ok()) << answer.result.status();
  EXPECT_TRUE(interfered);
  // Both changes are kept: this update was merged onto theirs.
  EXPECT_EQ(answer.result->keep_versions(), 9);
  EXPECT_THAT(answer.result->labels(),
              UnorderedElementsAre(Pair("team", "web"), Pair("owner", "ops")));
  EXPECT_EQ(answer.result->etag(), PolicyEtag(3));
}

TEST_F(PolicyApiTest, UpdateWithAnEtagLosesToAChangeMadeInBetween) {
  ASSERT_TRUE(Create(Family()).result.ok());
  std::atomic<bool> interfered{false};
  store_.set_before_update([&] {
    if (interfered.exchange(true)) return;
    v1::SyncPolicy theirs = Stored().spec();
    theirs.set_keep_versions(4);
    ASSERT_TRUE(store_.inner().UpdateSpec(theirs, std::nullopt).ok());
  });
  v1::SyncPolicy asked = Family();
  asked.set_keep_versions(9);
  const auto answer = Update(asked, {"keep_versions"}, 1);
  EXPECT_EQ(answer.result.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Stored().spec().keep_versions(), 4);
  EXPECT_EQ(changes_, 1);
}

TEST_F(PolicyApiTest, UpdateOfAMissingOrDeletingPolicyIsRefused) {
  v1::SyncPolicy asked = Family();
  EXPECT_EQ(Update(asked, {"paused"}).result.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Create(Family()).result.ok());
  ASSERT_TRUE(Delete(kName, std::nullopt, /*delete_copies=*/true).result.ok());
  EXPECT_EQ(Update(asked, {"paused"}).result.status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(changes_, 2);
}

// ---- Delete ----

TEST_F(PolicyApiTest, DeleteRemovesTheRecordHonouringTheRevision) {
  ASSERT_TRUE(Create(Family()).result.ok());
  const auto stale = Delete(kName, 5, /*delete_copies=*/false);
  EXPECT_EQ(stale.result.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(store_.inner().Get(kName).ok());
  EXPECT_EQ(changes_, 1);

  const auto answer = Delete(kName, 1, /*delete_copies=*/false);
  ASSERT_TRUE(answer.result.ok()) << answer.result;
  EXPECT_NE(answer.thread, std::this_thread::get_id());
  EXPECT_EQ(store_.inner().Get(kName).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(changes_, 2);
  EXPECT_EQ(Delete(kName, std::nullopt, false).result.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(changes_, 2);
}

TEST_F(PolicyApiTest, DeleteWithCopiesLeavesThePolicyMarkedForTheController) {
  ASSERT_TRUE(Create(Family()).result.ok());
  EXPECT_EQ(Delete(kName, 3, /*delete_copies=*/true).result.code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(Stored().delete_requested());

  ASSERT_TRUE(Delete(kName, 1, /*delete_copies=*/true).result.ok());
  EXPECT_TRUE(Stored().delete_requested());
  const auto view = Get();
  ASSERT_TRUE(view.result.ok()) << view.result.status();
  EXPECT_TRUE(view.result->deleting());
  EXPECT_EQ(changes_, 2);
}

// ---- Shutdown ----

TEST_F(PolicyApiTest, ShutdownAnswersCallsThatHaveNotStartedAndRefusesLaterOnes) {
  MakeApi(1);  // one thread, so a held call keeps the others queued
  ASSERT_TRUE(Create(Family()).result.ok());

  absl::Notification entered, release;
  std::atomic<bool> hold{true};
  store_.set_before_get([&] {
    if (!hold.exchange(false)) return;
    entered.Notify();
    release.WaitForNotification();
  });
  absl::Mutex mu;
  std::vector<absl::StatusOr<v1::SyncPolicy>> answers;
  // Set when a call is answered; shared, as the answer may come after the
  // caller's scope ended.
  auto call = [&]() {
    auto answered = std::make_shared<std::atomic<bool>>(false);
    api_->Get(kName, [&, answered](absl::StatusOr<v1::SyncPolicy> p) {
      absl::MutexLock lock(&mu);
      answers.push_back(std::move(p));
      *answered = true;
    });
    return answered;
  };
  call();  // runs, and is held inside the store
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kWait));
  call();  // queued behind it

  std::thread stopper([this] { api_->Shutdown(); });
  // The only thread is held, so a call answered by the time it returns was
  // refused inline: Shutdown has begun. Until then calls queue up behind
  // the held one.
  int calls = 2;
  while (!*call()) ++calls;
  ++calls;
  release.Notify();
  stopper.join();

  absl::MutexLock lock(&mu);
  ASSERT_EQ(answers.size(), static_cast<size_t>(calls));
  int ok = 0;
  for (const auto& a : answers) {
    if (a.ok()) {
      ++ok;
      continue;
    }
    EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(a.status().message(), HasSubstr("shutting down"));
  }
  // Only the call that was running when Shutdown began did its work.
  EXPECT_EQ(ok, 1);

  // After Shutdown: refused at once, nothing written.
  bool refused = false;
  api_->Create(Family("syncPolicies/too-late"), "dns:ci.test",
               [&](absl::StatusOr<v1::SyncPolicy> p) {
                 refused = p.status().code() == absl::StatusCode::kUnavailable;
               });
  EXPECT_TRUE(refused);
  EXPECT_EQ(store_.inner().Get("syncPolicies/too-late").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace blueprintsync::policies
