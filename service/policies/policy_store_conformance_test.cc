// The one behavioural suite every PolicyStore implementation must pass,
// parameterized over store factories (memory, SQLite, PostgreSQL), plus the
// cases only stores that several processes share can have (two store
// objects on one SQLite file or one PostgreSQL database), and the helpers
// of policy_store.h (etags, the public view, OpenPolicyStore).
#include <sqlite3.h>
#include <stdlib.h>

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
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "service/common/testing/store_test_util.h"
#include "service/jobs/job_store.h"
#include "service/policies/policy_store.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::policies {
namespace {

using ::blueprintsync::testing::EqualsProto;

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using PostgresServer = ::blueprintsync::testing::PostgresServer;

// A fresh directory for the test's files.
class ScratchDir : public ::blueprintsync::testing::ScratchDir {
 public:
  ScratchDir() : ::blueprintsync::testing::ScratchDir("policy_store_test_") {}
};

// A new, empty backing for stores: `spec` opens a store on it (again and
// again, for stores that several processes share; memory: a new store
// each time, so the shared suite leaves it out). `fill` inserts n
// policies "syncPolicies/fNNNNN" behind the store's back, in one
// transaction (creating thousands one by one, each durable, would take
// minutes on a busy disk).
struct Backing {
  std::string spec;
  std::function<absl::Status(int n)> fill;
};

struct StoreFactory {
  std::string name;
  std::function<absl::StatusOr<Backing>(const std::string& dir)> make;
  // PostgreSQL checks SetWriteFence; the others ignore it (one process).
  bool fenced = false;
};

void PrintTo(const StoreFactory& f, std::ostream* os) { *os << f.name; }

// The spec blob of a policy that has only a name of 19 bytes
// ("syncPolicies/fNNNNN"): field 1, length 19.
constexpr char kFillSpecPrefixHex[] = "0a13";

absl::Status FillSqlite(const std::string& path, int n) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, 10000);
    const std::string sql = absl::StrCat(
        "BEGIN IMMEDIATE;"
        "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n + 1 < ",
        n,
        ") INSERT INTO sync_policies (name, uid, revision, spec) "
        "SELECT printf('syncPolicies/f%05d', n), 'fill', 1, "
        "X'",
        kFillSpecPrefixHex,
        "' || CAST(printf('syncPolicies/f%05d', n) AS BLOB) FROM i;"
        "COMMIT;");
    rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  }
  absl::Status s = rc == SQLITE_OK
                       ? absl::OkStatus()
                       : absl::InternalError(absl::StrCat("fill: ", sqlite3_errmsg(db)));
  sqlite3_close_v2(db);
  return s;
}

absl::Status FillPostgres(PostgresServer& server, const std::string& db, int n) {
  return server
      .Query(db, absl::StrCat("INSERT INTO sync_policies (name, uid, revision, spec) "
                              "SELECT 'syncPolicies/f' || lpad(i::text, 5, '0'), 'fill', 1, "
                              "decode('",
                              kFillSpecPrefixHex,
                              "', 'hex') || convert_to('syncPolicies/f' || lpad(i::text, 5, '0'), "
                              "'UTF8') FROM generate_series(0, ",
                              n - 1, ") AS i"))
      .status();
}

std::vector<StoreFactory> AllFactories() {
  return {
      StoreFactory{"Memory",
                   [](const std::string&) -> absl::StatusOr<Backing> {
                     return Backing{"memory:", nullptr};
                   }},
      StoreFactory{
          "Sqlite",
          [](const std::string& dir) -> absl::StatusOr<Backing> {
            const std::string path = dir + "/jobs.db";
            return Backing{"sqlite:" + path, [path](int n) { return FillSqlite(path, n); }};
          }},
      // One throwaway server per test process, a new database per test.
      StoreFactory{"Postgres",
                   [](const std::string&) -> absl::StatusOr<Backing> {
                     auto server = PostgresServer::Shared();
                     if (!server.ok()) return server.status();
                     auto dsn = (*server)->CreateDatabase();
                     if (!dsn.ok()) return dsn.status();
                     const std::string db = dsn->substr(dsn->rfind('/') + 1);
                     PostgresServer* s = *server;
                     return Backing{*dsn, [s, db](int n) { return FillPostgres(*s, db, n); }};
                   },
                   /*fenced=*/true},
  };
}

PolicyRecord MakeRecord(const std::string& id, const std::string& uid = "") {
  PolicyRecord r;
  v1::SyncPolicy& spec = *r.mutable_spec();
  spec.set_name("syncPolicies/" + id);
  spec.set_source_region("ap-guangzhou");
  spec.set_blueprint_name("web-golden");
  spec.add_destination_regions("ap-beijing");
  spec.add_destination_regions("ap-shanghai");
  spec.set_keep_versions(2);
  (*spec.mutable_labels())["team"] = "web";
  spec.mutable_create_time()->set_seconds(1700000000);
  spec.mutable_update_time()->set_seconds(1700000000);
  spec.set_creator("alice");
  r.set_uid(uid.empty() ? "uid-" + id : uid);
  return r;
}

PolicyStatus MakeStatus(const std::string& source, bool in_sync) {
  PolicyStatus s;
  v1::SyncPolicy& view = *s.mutable_view();
  view.set_source_blueprint_id(source);
  view.set_in_sync(in_sync);
  view.mutable_reconcile_time()->set_seconds(1700000500);
  auto* region = view.add_regions();
  region->set_region("ap-beijing");
  region->set_state(in_sync ? v1::SyncPolicyRegion::IN_SYNC : v1::SyncPolicyRegion::SYNCING);
  region->set_blueprint_id("lhbp-cp000001");
  s.set_open_job(in_sync ? "" : "syncJobs/j1");
  s.set_job_attempt(3);
  return s;
}

std::string Describe(const PolicyQuery& q) {
  auto flag = [](const std::optional<bool>& b) { return !b ? "*" : *b ? "true" : "false"; };
  std::string out = absl::StrCat("in_sync ", flag(q.in_sync), " paused ", flag(q.paused),
                                 " source_region ", q.source_region.value_or("*"), " labels");
  for (const auto& [k, v] : q.labels) absl::StrAppend(&out, " ", k, "=", v);
  return out;
}

// Policy ids ("syncPolicies/" stripped), in order.
std::vector<std::string> Ids(const std::vector<PolicyRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.spec().name().substr(sizeof("syncPolicies/") - 1));
  return out;
}

class PolicyStoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    auto backing = GetParam().make(dir_.path());
    ASSERT_TRUE(backing.ok()) << backing.status();
    backing_ = *std::move(backing);
    store_ = MustOpen();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<PolicyStore> MustOpen() {
    auto store = OpenPolicyStore(backing_.spec);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  PolicyRecord MustCreate(const PolicyRecord& record) {
    auto created = store_->Create(record);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : PolicyRecord{};
  }

  PolicyRecord MustGet(const std::string& id) {
    auto got = store_->Get("syncPolicies/" + id);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : PolicyRecord{};
  }

  int64_t Mark() {
    auto mark = store_->ChangeMark();
    EXPECT_TRUE(mark.ok()) << mark.status();
    return mark.ok() ? *mark : -1;
  }

  // Every record matching `query` (its page_size), by paging to the end.
  std::vector<PolicyRecord> ListToTheEnd(PolicyQuery query) {
    std::vector<PolicyRecord> out;
    for (int call = 0; call < 1000; ++call) {
      auto page = store_->List(query);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->records.size(), static_cast<size_t>(query.page_size));
      for (auto& r : page->records) out.push_back(std::move(r));
      if (!page->next_after.has_value()) return out;
      EXPECT_GT(*page->next_after, query.after_name) << "paging must advance";
      query.after_name = *page->next_after;
    }
    ADD_FAILURE() << "paging did not end";
    return out;
  }

  ScratchDir dir_;
  Backing backing_;
  std::unique_ptr<PolicyStore> store_;
};

TEST_P(PolicyStoreConformanceTest, CreateThenGetRoundTripsEveryField) {
  PolicyRecord r = MakeRecord("web");
  r.set_revision(42);  // the store's to set
  *r.mutable_status() = MakeStatus("lhbp-src00001", false);
  (*r.mutable_status()->mutable_delete_failing_since())["lhbp-old00001"].set_seconds(1700000001);

  PolicyRecord expected = r;
  expected.set_revision(1);
  auto created = store_->Create(r);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(*created, EqualsProto(expected));
  EXPECT_THAT(MustGet("web"), EqualsProto(expected));
}

TEST_P(PolicyStoreConformanceTest, GetMissingIsNotFound) {
  auto got = store_->Get("syncPolicies/none");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("syncPolicies/none"));
}

TEST_P(PolicyStoreConformanceTest, CreateRequiresNameAndUid) {
  PolicyRecord no_name = MakeRecord("a");
  no_name.mutable_spec()->clear_name();
  auto created = store_->Create(no_name);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << created.status();
  EXPECT_THAT(created.status().message(), HasSubstr("name"));

  PolicyRecord no_uid = MakeRecord("a");
  no_uid.clear_uid();
  created = store_->Create(no_uid);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << created.status();
  EXPECT_THAT(created.status().message(), HasSubstr("uid"));
  EXPECT_EQ(store_->Get("syncPolicies/a").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(PolicyStoreConformanceTest, CreateDuplicateNameIsAlreadyExistsAndChangesNothing) {
  MustCreate(MakeRecord("a", "uid-1"));
  const int64_t mark = Mark();
  PolicyRecord again = MakeRecord("a", "uid-2");
  again.mutable_spec()->set_paused(true);
  auto created = store_->Create(again);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kAlreadyExists) << created.status();
  PolicyRecord got = MustGet("a");
  EXPECT_EQ(got.uid(), "uid-1");
  EXPECT_FALSE(got.spec().paused());
  EXPECT_EQ(Mark(), mark);
}

TEST_P(PolicyStoreConformanceTest, OversizedRecordsAreRejectedAndNothingIsWritten) {
  PolicyRecord big = MakeRecord("big");
  (*big.mutable_spec()->mutable_labels())["junk"] = std::string(70 * 1024, 'x');
  auto created = store_->Create(big);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << created.status();
  EXPECT_THAT(created.status().message(), HasSubstr("syncPolicies/big"));
  EXPECT_EQ(store_->Get("syncPolicies/big").status().code(), absl::StatusCode::kNotFound);

  PolicyRecord long_name = MakeRecord(std::string(300, 'n'));
  EXPECT_EQ(store_->Create(long_name).status().code(), absl::StatusCode::kInvalidArgument);
  PolicyRecord long_uid = MakeRecord("u", std::string(200, 'u'));
  EXPECT_EQ(store_->Create(long_uid).status().code(), absl::StatusCode::kInvalidArgument);

  const PolicyRecord stored = MustCreate(MakeRecord("a"));
  auto updated = store_->UpdateSpec(big.spec(), std::nullopt);
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kInvalidArgument) << updated.status();
  v1::SyncPolicy big_a = big.spec();
  big_a.set_name("syncPolicies/a");
  updated = store_->UpdateSpec(big_a, std::nullopt);
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kInvalidArgument) << updated.status();

  PolicyStatus big_status;
  for (int i = 0; i < 12; ++i) {
    big_status.mutable_view()->add_regions()->mutable_last_error()->set_message(
        std::string(100 * 1024, 'e'));
  }
  absl::Status s = store_->WriteStatus("syncPolicies/a", stored.uid(), big_status);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(MustGet("a"), EqualsProto(stored));
}

// Every create counts against kMaxPolicies, whatever the name; a delete
// frees a place.
TEST_P(PolicyStoreConformanceTest, CreateBeyondTheLimitIsResourceExhausted) {
  if (backing_.fill) {
    ASSERT_TRUE(backing_.fill(kMaxPolicies - 1).ok());
  } else {
    for (int i = 0; i < kMaxPolicies - 1; ++i) {
      ASSERT_TRUE(store_->Create(MakeRecord(absl::StrCat("f", 10000 + i))).ok()) << i;
    }
  }
  MustCreate(MakeRecord("last"));
  auto over = store_->Create(MakeRecord("over"));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_THAT(over.status().message(), HasSubstr(absl::StrCat(kMaxPolicies)));
  EXPECT_EQ(store_->Get("syncPolicies/over").status().code(), absl::StatusCode::kNotFound);
  // A taken name is still AlreadyExists, not a quota problem.
  EXPECT_EQ(store_->Create(MakeRecord("last")).status().code(), absl::StatusCode::kAlreadyExists);

  auto all = store_->ListAll();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), static_cast<size_t>(kMaxPolicies));

  ASSERT_TRUE(store_->Delete("syncPolicies/last", std::nullopt).ok());
  MustCreate(MakeRecord("over"));
}

TEST_P(PolicyStoreConformanceTest, UpdateSpecWithAndWithoutEtag) {
  const PolicyRecord created = MustCreate(MakeRecord("a"));
  ASSERT_EQ(created.revision(), 1);
  ASSERT_TRUE(
      store_->WriteStatus("syncPolicies/a", created.uid(), MakeStatus("lhbp-1", true)).ok());

  // Without an expected revision: always written.
  v1::SyncPolicy spec = created.spec();
  spec.set_paused(true);
  auto updated = store_->UpdateSpec(spec, std::nullopt);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->revision(), 2);
  EXPECT_THAT(updated->spec(), EqualsProto(spec));
  EXPECT_EQ(updated->uid(), created.uid());
  EXPECT_THAT(updated->status(), EqualsProto(MakeStatus("lhbp-1", true)));
  EXPECT_THAT(MustGet("a"), EqualsProto(*updated));

  // With the current one: written.
  spec.set_keep_versions(5);
  updated = store_->UpdateSpec(spec, 2);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->revision(), 3);

  // With a stale one: Aborted, nothing written.
  v1::SyncPolicy stale = spec;
  stale.set_keep_versions(9);
  updated = store_->UpdateSpec(stale, 2);
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kAborted) << updated.status();
  EXPECT_THAT(updated.status().message(), HasSubstr("\"r3\""));
  PolicyRecord got = MustGet("a");
  EXPECT_EQ(got.revision(), 3);
  EXPECT_EQ(got.spec().keep_versions(), 5);

  v1::SyncPolicy missing = spec;
  missing.set_name("syncPolicies/none");
  EXPECT_EQ(store_->UpdateSpec(missing, std::nullopt).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->UpdateSpec(missing, 1).status().code(), absl::StatusCode::kNotFound);
}

// The point of the split: the API's spec writes and the controller's status
// writes, interleaved, never undo each other.
TEST_P(PolicyStoreConformanceTest, StatusAndSpecWritesNeverClobberEachOther) {
  const PolicyRecord created = MustCreate(MakeRecord("a"));
  const std::string name = created.spec().name();
  v1::SyncPolicy spec = created.spec();

  const PolicyStatus s1 = MakeStatus("lhbp-1", false);
  ASSERT_TRUE(store_->WriteStatus(name, created.uid(), s1).ok());
  spec.add_destination_regions("ap-chengdu");
  auto updated = store_->UpdateSpec(spec, std::nullopt);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_THAT(updated->status(), EqualsProto(s1));

  const PolicyStatus s2 = MakeStatus("lhbp-2", true);
  ASSERT_TRUE(store_->WriteStatus(name, created.uid(), s2).ok());
  PolicyRecord got = MustGet("a");
  EXPECT_THAT(got.spec(), EqualsProto(spec));
  EXPECT_THAT(got.status(), EqualsProto(s2));
  EXPECT_EQ(got.revision(), 2) << "a status write is not a spec change";

  (*spec.mutable_labels())["env"] = "prod";
  updated = store_->UpdateSpec(spec, 2);
  ASSERT_TRUE(updated.ok()) << updated.status();
  got = MustGet("a");
  EXPECT_THAT(got.spec(), EqualsProto(spec));
  EXPECT_THAT(got.status(), EqualsProto(s2));

  // Concurrently: one thread writes specs, another statuses; the last of
  // each is what remains.
  constexpr int kRounds = 40;
  std::vector<std::string> errors;
  std::thread api([&] {
    v1::SyncPolicy s = spec;
    for (int i = 0; i < kRounds; ++i) {
      s.set_keep_versions(i + 1);
      if (auto u = store_->UpdateSpec(s, std::nullopt); !u.ok()) {
        errors.push_back(u.status().ToString());
      }
    }
  });
  std::vector<std::string> status_errors;
  std::thread controller([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (auto w = store_->WriteStatus(name, created.uid(),
                                       MakeStatus(absl::StrCat("lhbp-s", i), i % 2 == 0));
          !w.ok()) {
        status_errors.push_back(w.ToString());
      }
    }
  });
  api.join();
  controller.join();
  EXPECT_THAT(errors, IsEmpty());
  EXPECT_THAT(status_errors, IsEmpty());
  got = MustGet("a");
  EXPECT_EQ(got.spec().keep_versions(), kRounds);
  EXPECT_EQ(got.spec().labels().at("env"), "prod");
  EXPECT_EQ(got.revision(), 3 + kRounds);
  EXPECT_THAT(got.status(), EqualsProto(MakeStatus(absl::StrCat("lhbp-s", kRounds - 1), false)));
}

TEST_P(PolicyStoreConformanceTest, WriteStatusOfAGoneOrRecreatedPolicyIsNotFound) {
  const PolicyRecord first = MustCreate(MakeRecord("a", "uid-first"));
  absl::Status s = store_->WriteStatus("syncPolicies/none", "uid-first", MakeStatus("x", true));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;

  ASSERT_TRUE(store_->Delete("syncPolicies/a", std::nullopt).ok());
  s = store_->WriteStatus("syncPolicies/a", first.uid(), MakeStatus("lhbp-old", true));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;

  // Recreated under the same name: the controller still holding the old
  // uid must not write the new policy's status.
  const PolicyRecord second = MustCreate(MakeRecord("a", "uid-second"));
  s = store_->WriteStatus("syncPolicies/a", first.uid(), MakeStatus("lhbp-old", true));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("syncPolicies/a"));
  EXPECT_THAT(MustGet("a"), EqualsProto(second));
  ASSERT_TRUE(
      store_->WriteStatus("syncPolicies/a", second.uid(), MakeStatus("lhbp-new", true)).ok());
  EXPECT_EQ(MustGet("a").status().view().source_blueprint_id(), "lhbp-new");
}

TEST_P(PolicyStoreConformanceTest, RequestDeleteMarksOnceAndFreezesTheSpec) {
  const PolicyRecord created = MustCreate(MakeRecord("a"));
  auto marked = store_->RequestDelete("syncPolicies/a", 7);
  EXPECT_EQ(marked.status().code(), absl::StatusCode::kAborted) << marked.status();
  EXPECT_FALSE(MustGet("a").delete_requested());

  marked = store_->RequestDelete("syncPolicies/a", 1);
  ASSERT_TRUE(marked.ok()) << marked.status();
  EXPECT_TRUE(marked->delete_requested());
  EXPECT_EQ(marked->revision(), 2);
  EXPECT_THAT(marked->spec(), EqualsProto(created.spec()));
  EXPECT_THAT(MustGet("a"), EqualsProto(*marked));
  EXPECT_TRUE(PolicyView(*marked).deleting());

  // Asking again (a retry with the etag the first request had, or none)
  // answers the record as it is and changes nothing.
  const int64_t mark = Mark();
  for (std::optional<int64_t> etag : {std::optional<int64_t>(1), std::optional<int64_t>()}) {
    auto again = store_->RequestDelete("syncPolicies/a", etag);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_THAT(*again, EqualsProto(*marked));
  }
  EXPECT_EQ(Mark(), mark);

  // The spec is frozen; the controller still records its progress.
  auto updated = store_->UpdateSpec(created.spec(), std::nullopt);
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kFailedPrecondition) << updated.status();
  EXPECT_THAT(updated.status().message(), HasSubstr("being deleted"));
  PolicyStatus progress = MakeStatus("lhbp-1", false);
  progress.set_copies_deleted(true);
  ASSERT_TRUE(store_->WriteStatus("syncPolicies/a", created.uid(), progress).ok());
  EXPECT_TRUE(MustGet("a").status().copies_deleted());
  EXPECT_TRUE(MustGet("a").delete_requested());

  EXPECT_EQ(store_->RequestDelete("syncPolicies/none", std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(PolicyStoreConformanceTest, DeleteChecksRevisionAndUid) {
  const PolicyRecord created = MustCreate(MakeRecord("a", "uid-a"));
  absl::Status s = store_->Delete("syncPolicies/a", 2);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  s = store_->Delete("syncPolicies/a", 1, "uid-other");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  s = store_->Delete("syncPolicies/a", std::nullopt, "uid-other");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(MustGet("a"), EqualsProto(created));

  EXPECT_TRUE(store_->Delete("syncPolicies/a", 1, "uid-a").ok());
  EXPECT_EQ(store_->Get("syncPolicies/a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("syncPolicies/a", std::nullopt).code(), absl::StatusCode::kNotFound);

  // Without conditions; and the controller's removal of a policy that was
  // marked for deletion (its uid, whatever the revision).
  MustCreate(MakeRecord("b"));
  EXPECT_TRUE(store_->Delete("syncPolicies/b", std::nullopt).ok());
  const PolicyRecord c = MustCreate(MakeRecord("c", "uid-c"));
  ASSERT_TRUE(store_->RequestDelete("syncPolicies/c", std::nullopt).ok());
  EXPECT_TRUE(store_->Delete("syncPolicies/c", std::nullopt, c.uid()).ok());
  auto all = store_->ListAll();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, IsEmpty());
}

TEST_P(PolicyStoreConformanceTest, ChangeMarkMovesWithEverySpecChangeOnly) {
  int64_t last = Mark();
  std::set<int64_t> seen = {last};
  auto expect_new = [&](const char* what) {
    last = Mark();
    EXPECT_TRUE(seen.insert(last).second) << what << ": mark " << last << " seen before";
  };
  auto expect_same = [&](const char* what) { EXPECT_EQ(Mark(), last) << what; };
  const PolicyRecord created = MustCreate(MakeRecord("a"));
  expect_new("create");
  ASSERT_TRUE(store_->WriteStatus("syncPolicies/a", created.uid(), MakeStatus("x", true)).ok());
  expect_same("status write");
  ASSERT_TRUE(store_->Get("syncPolicies/a").ok());
  ASSERT_TRUE(store_->ListAll().ok());
  expect_same("reads");
  v1::SyncPolicy spec = created.spec();
  spec.set_paused(true);
  ASSERT_TRUE(store_->UpdateSpec(spec, std::nullopt).ok());
  expect_new("update");
  ASSERT_FALSE(store_->UpdateSpec(spec, 1).ok());
  expect_same("rejected update");
  ASSERT_FALSE(store_->Delete("syncPolicies/a", 1).ok());
  expect_same("rejected delete");
  ASSERT_TRUE(store_->RequestDelete("syncPolicies/a", std::nullopt).ok());
  expect_new("request delete");
  ASSERT_TRUE(store_->Delete("syncPolicies/a", std::nullopt).ok());
  expect_new("delete");
  // Recreating what was deleted is a change too.
  MustCreate(MakeRecord("a"));
  expect_new("create again");
}

TEST_P(PolicyStoreConformanceTest, ListRejectsNonPositivePageSize) {
  for (int page_size : {0, -1}) {
    PolicyQuery q;
    q.page_size = page_size;
    EXPECT_EQ(store_->List(q).status().code(), absl::StatusCode::kInvalidArgument) << page_size;
  }
}

TEST_P(PolicyStoreConformanceTest, ListEmptyStoreAndAfterTheLast) {
  PolicyQuery q;
  auto page = store_->List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->records, IsEmpty());
  EXPECT_FALSE(page->next_after.has_value());

  MustCreate(MakeRecord("a"));
  q.after_name = "syncPolicies/a";
  page = store_->List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->records, IsEmpty());
  EXPECT_FALSE(page->next_after.has_value());
}

TEST_P(PolicyStoreConformanceTest, ListIsInNameOrderAndAPageExactlyFullEndsWithoutNextAfter) {
  // Created out of order; names that sort differently by bytes than by
  // some locales ("B" < "a" < "b").
  for (const char* id : {"b2", "a10", "B1", "a9", "a1"}) MustCreate(MakeRecord(id));
  PolicyQuery q;
  q.page_size = 5;
  auto page = store_->List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->records), ElementsAre("B1", "a1", "a10", "a9", "b2"));
  EXPECT_FALSE(page->next_after.has_value());

  q.page_size = 2;
  page = store_->List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->records), ElementsAre("B1", "a1"));
  EXPECT_EQ(page->next_after, "syncPolicies/a1");

  auto all = store_->ListAll();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Ids(*all), ElementsAre("B1", "a1", "a10", "a9", "b2"));
}

// 120 policies with every combination of the filtered fields; every query
// paged to the end with several page sizes gives exactly the matching
// policies, each once, in name order.
TEST_P(PolicyStoreConformanceTest, ListPagesMatchTheModelForEveryFilter) {
  std::vector<PolicyRecord> model;
  for (int i = 0; i < 120; ++i) {
    PolicyRecord r = MakeRecord(absl::StrCat("p", 1000 + i));
    v1::SyncPolicy& spec = *r.mutable_spec();
    spec.set_paused(i % 3 == 0);
    spec.set_source_region(i % 4 == 0 ? "ap-beijing" : "ap-guangzhou");
    spec.mutable_labels()->clear();
    if (i % 2 == 0) (*spec.mutable_labels())["team"] = "web";
    if (i % 5 == 0) (*spec.mutable_labels())["env"] = "prod";
    PolicyRecord stored = MustCreate(r);
    // in_sync lives in the status; i % 7 == 6 has none at all (false).
    if (i % 7 != 6) {
      ASSERT_TRUE(
          store_->WriteStatus(spec.name(), stored.uid(), MakeStatus("lhbp-1", i % 7 < 3)).ok());
      *stored.mutable_status() = MakeStatus("lhbp-1", i % 7 < 3);
    }
    model.push_back(stored);
  }

  std::vector<PolicyQuery> queries(1);
  auto add = [&](std::function<void(PolicyQuery&)> f) {
    const size_t n = queries.size();
    for (size_t i = 0; i < n; ++i) {
      PolicyQuery q = queries[i];
      f(q);
      queries.push_back(q);
    }
  };
  add([](PolicyQuery& q) { q.in_sync = true; });
  add([](PolicyQuery& q) { q.paused = false; });
  add([](PolicyQuery& q) { q.source_region = "ap-guangzhou"; });
  add([](PolicyQuery& q) { q.labels["team"] = "web"; });
  add([](PolicyQuery& q) { q.labels["env"] = "prod"; });
  PolicyQuery out_of_sync;
  out_of_sync.in_sync = false;
  out_of_sync.paused = true;
  queries.push_back(out_of_sync);
  PolicyQuery no_such_label;
  no_such_label.labels["team"] = "db";
  queries.push_back(no_such_label);

  for (const PolicyQuery& base : queries) {
    std::vector<std::string> expected;
    for (const PolicyRecord& r : model) {
      const v1::SyncPolicy& spec = r.spec();
      bool match = (!base.in_sync || r.status().view().in_sync() == *base.in_sync) &&
                   (!base.paused || spec.paused() == *base.paused) &&
                   (!base.source_region || spec.source_region() == *base.source_region);
      for (const auto& [k, v] : base.labels) {
        auto it = spec.labels().find(k);
        match = match && it != spec.labels().end() && it->second == v;
      }
      if (match) expected.push_back(spec.name().substr(sizeof("syncPolicies/") - 1));
    }
    for (int page_size : {1, 7, 50, 1000}) {
      PolicyQuery q = base;
      q.page_size = page_size;
      std::vector<PolicyRecord> got = ListToTheEnd(q);
      EXPECT_THAT(Ids(got), ElementsAreArray(expected))
          << "page_size " << page_size << ", " << Describe(base);
      // Whole records, statuses included.
      for (const PolicyRecord& r : got) {
        const int i = std::stoi(r.spec().name().substr(sizeof("syncPolicies/p") - 1)) - 1000;
        EXPECT_THAT(r, EqualsProto(model[i]));
      }
    }
  }
}

// A filter that matches little: each call examines at most 10 × page_size
// (at least 100) policies and says where it stopped.
TEST_P(PolicyStoreConformanceTest, ListStopsAtTheScanBound) {
  for (int i = 0; i < 250; ++i) {
    PolicyRecord r = MakeRecord(absl::StrCat("p", 1000 + i));
    if (i == 249) (*r.mutable_spec()->mutable_labels())["rare"] = "yes";
    MustCreate(r);
  }
  PolicyQuery q;
  q.page_size = 1;
  q.labels["rare"] = "yes";
  std::vector<std::pair<size_t, std::optional<std::string>>> pages;
  for (int call = 0; call < 5; ++call) {
    auto page = store_->List(q);
    ASSERT_TRUE(page.ok()) << page.status();
    pages.emplace_back(page->records.size(), page->next_after);
    if (!page->next_after) break;
    q.after_name = *page->next_after;
  }
  using Page = std::pair<size_t, std::optional<std::string>>;
  EXPECT_THAT(pages, ElementsAre(Page{0, "syncPolicies/p1099"}, Page{0, "syncPolicies/p1199"},
                                 Page{1, std::nullopt}));

  // page_size 20: 200 examined per call.
  q.after_name.clear();
  q.page_size = 20;
  auto page = store_->List(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->records, IsEmpty());
  EXPECT_EQ(page->next_after, "syncPolicies/p1199");

  // Without filters a page is cut at page_size, with next_after only when
  // more follow.
  PolicyQuery all;
  all.page_size = 100;
  all.after_name = "syncPolicies/p1149";
  page = store_->List(all);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records.size(), 100u);
  EXPECT_FALSE(page->next_after.has_value());
}

TEST_P(PolicyStoreConformanceTest, WriteFenceAppliesWhereSeveralProcessesShareTheStore) {
  const PolicyRecord created = MustCreate(MakeRecord("a"));
  store_->SetWriteFence(42);  // no lease has this epoch
  absl::Status s = store_->WriteStatus("syncPolicies/a", created.uid(), MakeStatus("x", true));
  if (GetParam().fenced) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(s.message(), HasSubstr("not the leader"));
    EXPECT_FALSE(MustGet("a").status().view().in_sync());
  } else {
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_TRUE(MustGet("a").status().view().in_sync());
  }
  // Spec writes are never fenced: the API runs on every replica.
  v1::SyncPolicy spec = created.spec();
  spec.set_paused(true);
  EXPECT_TRUE(store_->UpdateSpec(spec, std::nullopt).ok());
  MustCreate(MakeRecord("b"));
  EXPECT_TRUE(store_->RequestDelete("syncPolicies/b", std::nullopt).ok());
  EXPECT_TRUE(store_->Delete("syncPolicies/b", std::nullopt).ok());

  store_->SetWriteFence(std::nullopt);
  EXPECT_TRUE(store_->WriteStatus("syncPolicies/a", created.uid(), MakeStatus("x", true)).ok());
  EXPECT_TRUE(MustGet("a").status().view().in_sync());
}

INSTANTIATE_TEST_SUITE_P(Stores, PolicyStoreConformanceTest, ::testing::ValuesIn(AllFactories()),
                         [](const ::testing::TestParamInfo<StoreFactory>& p) {
                           return p.param.name;
                         });

// Two store objects on one backing, as two processes (an API replica and
// the leader) have them.
class SharedPolicyStoreTest : public PolicyStoreConformanceTest {
 protected:
  void SetUp() override {
    PolicyStoreConformanceTest::SetUp();
    other_ = MustOpen();
    ASSERT_NE(other_, nullptr);
  }
  std::unique_ptr<PolicyStore> other_;
};

TEST_P(SharedPolicyStoreTest, TwoStoresSeeEachOthersWrites) {
  const int64_t mark = Mark();
  const PolicyRecord created = MustCreate(MakeRecord("a"));
  auto got = other_->Get("syncPolicies/a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, EqualsProto(created));
  auto other_mark = other_->ChangeMark();
  ASSERT_TRUE(other_mark.ok()) << other_mark.status();
  EXPECT_NE(*other_mark, mark);

  v1::SyncPolicy spec = created.spec();
  spec.set_keep_versions(7);
  ASSERT_TRUE(other_->UpdateSpec(spec, 1).ok());
  EXPECT_EQ(MustGet("a").revision(), 2);
  EXPECT_EQ(MustGet("a").spec().keep_versions(), 7);
  EXPECT_EQ(Mark(), *other_->ChangeMark());
  EXPECT_EQ(store_->UpdateSpec(created.spec(), 1).status().code(), absl::StatusCode::kAborted);

  ASSERT_TRUE(
      other_->WriteStatus("syncPolicies/a", created.uid(), MakeStatus("lhbp-9", true)).ok());
  EXPECT_EQ(MustGet("a").status().view().source_blueprint_id(), "lhbp-9");

  ASSERT_TRUE(store_->Delete("syncPolicies/a", 2).ok());
  EXPECT_EQ(other_->Get("syncPolicies/a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Mark(), *other_->ChangeMark());
}

// Two writers with the same etag, on different store objects, at the same
// time: exactly one wins; the same for two creates of one name.
TEST_P(SharedPolicyStoreTest, ConcurrentConditionalWritesHaveOneWinner) {
  constexpr int kRounds = 15;
  const PolicyRecord created = MustCreate(MakeRecord("a"));
  PolicyStore* stores[2] = {store_.get(), other_.get()};
  for (int round = 0; round < kRounds; ++round) {
    const int64_t revision = MustGet("a").revision();
    absl::Status results[2];
    absl::Notification go;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        v1::SyncPolicy spec = created.spec();
        spec.set_keep_versions(round * 2 + t);
        go.WaitForNotification();
        results[t] = stores[t]->UpdateSpec(spec, revision).status();
      });
    }
    go.Notify();
    for (auto& t : threads) t.join();
    const int wins = results[0].ok() + results[1].ok();
    EXPECT_EQ(wins, 1) << "round " << round << ": " << results[0] << " / " << results[1];
    for (const auto& r : results) {
      if (!r.ok()) {
        EXPECT_EQ(r.code(), absl::StatusCode::kAborted) << r;
      }
    }
    EXPECT_EQ(MustGet("a").revision(), revision + 1);
  }

  for (int round = 0; round < kRounds; ++round) {
    const std::string id = absl::StrCat("race", round);
    absl::StatusCode codes[2];
    absl::Notification go;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        go.WaitForNotification();
        codes[t] = stores[t]->Create(MakeRecord(id, absl::StrCat("uid-", t))).status().code();
      });
    }
    go.Notify();
    for (auto& t : threads) t.join();
    EXPECT_THAT((std::multiset<absl::StatusCode>{codes[0], codes[1]}),
                ElementsAre(absl::StatusCode::kOk, absl::StatusCode::kAlreadyExists))
        << "round " << round;
  }
}

// The API on one replica and the controller on another, concurrently.
TEST_P(SharedPolicyStoreTest, SpecAndStatusWritersOnTwoStoresKeepBoth) {
  constexpr int kRounds = 40;
  const PolicyRecord created = MustCreate(MakeRecord("a"));
  std::vector<std::string> errors;
  std::vector<std::string> status_errors;
  std::thread api([&] {
    v1::SyncPolicy spec = created.spec();
    for (int i = 0; i < kRounds; ++i) {
      spec.set_keep_versions(i + 1);
      if (auto u = store_->UpdateSpec(spec, std::nullopt); !u.ok()) {
        errors.push_back(u.status().ToString());
      }
    }
  });
  std::thread controller([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (auto w = other_->WriteStatus("syncPolicies/a", created.uid(),
                                       MakeStatus(absl::StrCat("lhbp-s", i), true));
          !w.ok()) {
        status_errors.push_back(w.ToString());
      }
    }
  });
  api.join();
  controller.join();
  EXPECT_THAT(errors, IsEmpty());
  EXPECT_THAT(status_errors, IsEmpty());
  PolicyRecord got = MustGet("a");
  EXPECT_EQ(got.revision(), 1 + kRounds);
  EXPECT_EQ(got.spec().keep_versions(), kRounds);
  EXPECT_THAT(got.status(), EqualsProto(MakeStatus(absl::StrCat("lhbp-s", kRounds - 1), true)));
}

std::vector<StoreFactory> SharedFactories() {
  std::vector<StoreFactory> out;
  for (StoreFactory& f : AllFactories()) {
    if (f.name != "Memory") out.push_back(std::move(f));
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Stores, SharedPolicyStoreTest, ::testing::ValuesIn(SharedFactories()),
                         [](const ::testing::TestParamInfo<StoreFactory>& p) {
                           return p.param.name;
                         });

// The policies' tables live in the jobs' file, next to the jobs, and both
// stores work on it in either opening order.
TEST(SqlitePolicyStoreTest, SharesTheJobsFile) {
  ScratchDir dir;
  const std::string spec = "sqlite:" + dir.path() + "/data/jobs.db";
  auto policies = OpenPolicyStore(spec);
  ASSERT_TRUE(policies.ok()) << policies.status();
  auto jobs = jobs::OpenJobStore(spec);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_TRUE((*policies)->Create(MakeRecord("a")).ok());
  jobs::JobRecord job;
  job.mutable_job()->set_name("syncJobs/j1");
  job.mutable_job()->set_policy("syncPolicies/a");
  ASSERT_TRUE((*jobs)->CreateJob(job).ok());
  // Reopened: both are there.
  policies->reset();
  jobs->reset();
  auto reopened = OpenPolicyStore(spec);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE((*reopened)->Get("syncPolicies/a").ok());
  auto jobs_again = jobs::OpenJobStore(spec);
  ASSERT_TRUE(jobs_again.ok()) << jobs_again.status();
  EXPECT_TRUE((*jobs_again)->GetJob("syncJobs/j1").ok());
}

TEST(SqlitePolicyStoreTest, AFileThatIsNotADatabaseIsAClearError) {
  ScratchDir dir;
  const std::string path = dir.path() + "/jobs.db";
  {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("this is not a database, it is a text file of some length......\n", f);
    fclose(f);
  }
  auto store = OpenPolicyStore("sqlite:" + path);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("sqlite policy store " + path));
}

TEST(OpenPolicyStoreTest, RejectsOtherSpecs) {
  for (const std::string spec : {"", "memory", "memory:x", "sqlite:", "sqlite", "/var/lib/jobs.db",
                                 "postgresql:/localhost/jobs", "postgres:", "POSTGRES://h/db"}) {
    auto store = OpenPolicyStore(spec);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << "spec " << spec;
    EXPECT_THAT(store.status().message(),
                HasSubstr("store must be sqlite:PATH, postgres://… or memory:, got"))
        << "spec " << spec;
  }
}

TEST(PolicyEtagTest, RoundTripsQuotedOrBare) {
  EXPECT_EQ(PolicyEtag(7), "\"r7\"");
  for (int64_t revision : {int64_t{1}, int64_t{7}, int64_t{1234567890123}}) {
    auto parsed = ParsePolicyEtag(PolicyEtag(revision), "etag");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, revision);
    parsed = ParsePolicyEtag(absl::StrCat("r", revision), "etag");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, revision);
  }
}

TEST(PolicyEtagTest, AnythingElseIsInvalidArgumentNamingTheField) {
  for (const std::string& etag : std::vector<std::string>{
           "", "\"\"", "r", "\"r\"", "7", "\"7\"", "r0", "r-1", "r+1", "r 1", "r1x", "\"r1", "r1\"",
           "W/\"r1\"", "R1", "r99999999999999999999", std::string(5000, 'r')}) {
    auto parsed = ParsePolicyEtag(etag, "sync_policy.etag");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << etag;
    EXPECT_THAT(parsed.status().message(), HasSubstr("sync_policy.etag")) << etag;
    EXPECT_LT(parsed.status().message().size(), 200u) << "a long value is not echoed whole";
  }
}

TEST(PolicyViewTest, SpecFieldsStatusOutputsEtagAndDeleting) {
  PolicyRecord r = MakeRecord("web");
  r.set_revision(4);
  r.set_delete_requested(true);
  // Output fields that a spec should not hold do not leak into the view.
  r.mutable_spec()->set_in_sync(true);
  r.mutable_spec()->set_etag("\"r1\"");
  r.mutable_spec()->set_source_blueprint_id("lhbp-stale");
  *r.mutable_status() = MakeStatus("lhbp-src", false);
  r.mutable_status()->mutable_view()->mutable_source_error()->set_message("no NORMAL blueprint");
  // Spec fields in the status's view are not the view's either.
  r.mutable_status()->mutable_view()->set_paused(true);

  v1::SyncPolicy expected = MakeRecord("web").spec();
  expected.set_source_blueprint_id("lhbp-src");
  expected.mutable_source_error()->set_message("no NORMAL blueprint");
  *expected.mutable_regions() = r.status().view().regions();
  expected.set_in_sync(false);
  expected.mutable_reconcile_time()->set_seconds(1700000500);
  expected.set_etag("\"r4\"");
  expected.set_deleting(true);
  EXPECT_THAT(PolicyView(r), EqualsProto(expected));

  // No status yet.
  PolicyRecord fresh = MakeRecord("new");
  fresh.set_revision(1);
  v1::SyncPolicy fresh_view = fresh.spec();
  fresh_view.set_etag("\"r1\"");
  EXPECT_THAT(PolicyView(fresh), EqualsProto(fresh_view));
}

}  // namespace
}  // namespace blueprintsync::policies
