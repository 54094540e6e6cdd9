// PostgreSQL-specific behaviour of the policy store, against a real
// throwaway server: its tables in the jobs' database, replicas opening it
// together, the leader-lease fence on status writes, the policy limit under
// concurrent creates from two stores, damaged rows and secrets in errors.
// The behaviour all stores share is in policy_store_conformance_test.cc.
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jobs/job_store.h"
#include "service/jobs/postgres_lease.h"
#include "service/policies/policy_store.h"
#include "tests/testing_util/postgres_database_test.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::policies {
namespace {

using ::blueprintsync::jobs::PostgresLeaderLease;
using ::blueprintsync::testing::PostgresServer;
using ::testing::HasSubstr;
using ::testing::Not;

PolicyRecord MakeRecord(const std::string& id, const std::string& uid = "") {
  PolicyRecord r;
  v1::SyncPolicy& spec = *r.mutable_spec();
  spec.set_name("syncPolicies/" + id);
  spec.set_source_region("ap-guangzhou");
  spec.set_blueprint_id("lhbp-ls883feh");
  spec.add_destination_regions("ap-beijing");
  r.set_uid(uid.empty() ? "uid-" + id : uid);
  return r;
}

PolicyStatus InSync(const std::string& source) {
  PolicyStatus s;
  s.mutable_view()->set_source_blueprint_id(source);
  s.mutable_view()->set_in_sync(true);
  return s;
}

class PostgresPolicyStoreTest : public ::blueprintsync::testing::PostgresDatabaseTest {
 protected:
  std::unique_ptr<PolicyStore> MustOpen() {
    auto store = OpenPolicyStore(dsn_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::unique_ptr<PostgresLeaderLease> MustOpenLease() {
    auto lease = PostgresLeaderLease::Open(dsn_);
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() ? *std::move(lease) : nullptr;
  }

};

TEST_F(PostgresPolicyStoreTest, TablesLiveInTheJobsDatabase) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  // The jobs' schema comes with it (the fence reads leader_lease), and the
  // job store opens the same database afterwards without complaint.
  EXPECT_EQ(Sql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                "WHERE schemaname = 'public'"),
            "jobs,leader_lease,schema_version,sync_policies,sync_policy_changes");
  EXPECT_EQ(Sql("SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY ordinal_position) "
                "FROM information_schema.columns WHERE table_name = 'sync_policies'"),
            "name text,uid text,revision bigint,delete_requested boolean,spec bytea,status bytea");
  EXPECT_EQ(Sql("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = 'sync_policies'::regclass "
                "AND i.indisprimary"),
            "name");
  EXPECT_EQ(Sql("SELECT mark FROM sync_policy_changes"), "0");
  auto jobs = jobs::OpenJobStore(dsn_);
  ASSERT_TRUE(jobs.ok()) << jobs.status();

  // The record is the truth: the columns hold what Get returns.
  ASSERT_TRUE(store->Create(MakeRecord("a")).ok());
  ASSERT_TRUE(store->WriteStatus("syncPolicies/a", "uid-a", InSync("lhbp-1")).ok());
  EXPECT_EQ(Sql("SELECT name, uid, revision, delete_requested, length(spec) > 0, "
                "length(status) > 0 FROM sync_policies"),
            "syncPolicies/a|uid-a|1|f|t|t");
  EXPECT_EQ(Sql("SELECT mark FROM sync_policy_changes"), "1");

  // Opening again (a restart) keeps everything.
  store.reset();
  store = MustOpen();
  ASSERT_NE(store, nullptr);
  auto got = store->Get("syncPolicies/a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status().view().source_blueprint_id(), "lhbp-1");
  auto mark = store->ChangeMark();
  ASSERT_TRUE(mark.ok()) << mark.status();
  EXPECT_EQ(*mark, 1);
}

// Replicas starting together on a new database: every open succeeds (the
// tables are created under the schema's advisory lock, once).
TEST_F(PostgresPolicyStoreTest, ConcurrentFirstOpensAllSucceed) {
  constexpr int kOpeners = 6;
  std::vector<absl::Status> results(kOpeners);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      go.WaitForNotification();
      if (i % 2 == 0) {
        results[i] = OpenPolicyStore(dsn_).status();
      } else {
        results[i] = jobs::OpenJobStore(dsn_).status();
      }
    });
  }
  go.Notify();
  for (auto& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
  EXPECT_EQ(Sql("SELECT count(*) FROM sync_policy_changes"), "1");
}

// As JobStore::UpdateJob: a status write passes only while the fenced epoch
// is the valid lease, checked in the write's own statement.
TEST_F(PostgresPolicyStoreTest, StatusWritesPassOnlyUnderTheFencedLease) {
  auto store = MustOpen();
  auto lease = MustOpenLease();
  ASSERT_NE(store, nullptr);
  ASSERT_NE(lease, nullptr);
  ASSERT_TRUE(store->Create(MakeRecord("a")).ok());
  auto stored_source = [&] {
    auto got = store->Get("syncPolicies/a");
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? got->status().view().source_blueprint_id() : "";
  };

  store->SetWriteFence(1);
  absl::Status s = store->WriteStatus("syncPolicies/a", "uid-a", InSync("lhbp-1"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("nobody holds the lease"));
  EXPECT_EQ(stored_source(), "");

  auto a = lease->TryAcquireOrRenew("replica-a", absl::Seconds(30));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->leader);
  store->SetWriteFence(a->epoch);
  ASSERT_TRUE(store->WriteStatus("syncPolicies/a", "uid-a", InSync("lhbp-1")).ok());
  EXPECT_EQ(stored_source(), "lhbp-1");

  // The lease moves to another replica: the old leader's write is refused.
  ASSERT_TRUE(lease->Release("replica-a").ok());
  auto other_lease = MustOpenLease();
  ASSERT_NE(other_lease, nullptr);
  auto b = other_lease->TryAcquireOrRenew("replica-b", absl::Seconds(30));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(b->leader);
  ASSERT_GT(b->epoch, a->epoch);
  s = store->WriteStatus("syncPolicies/a", "uid-a", InSync("lhbp-stale"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("not the leader"));
  EXPECT_THAT(s.message(), HasSubstr("syncPolicies/a"));
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("epoch ", b->epoch, ", held by \"replica-b\"")));
  EXPECT_EQ(stored_source(), "lhbp-1");

  // The new leader's store writes; a gone or recreated policy is NotFound
  // for it, not a fence problem.
  auto leader = MustOpen();
  ASSERT_NE(leader, nullptr);
  leader->SetWriteFence(b->epoch);
  ASSERT_TRUE(leader->WriteStatus("syncPolicies/a", "uid-a", InSync("lhbp-2")).ok());
  EXPECT_EQ(stored_source(), "lhbp-2");
  EXPECT_EQ(leader->WriteStatus("syncPolicies/a", "uid-old", InSync("x")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(leader->WriteStatus("syncPolicies/none", "uid-a", InSync("x")).code(),
            absl::StatusCode::kNotFound);
  // The old leader's wrong uid is NotFound too (checked before the lease).
  EXPECT_EQ(store->WriteStatus("syncPolicies/none", "uid-a", InSync("x")).code(),
            absl::StatusCode::kNotFound);

  // Spec writes are not fenced: any replica serves the API.
  auto spec = store->Get("syncPolicies/a");
  ASSERT_TRUE(spec.ok()) << spec.status();
  v1::SyncPolicy paused = spec->spec();
  paused.set_paused(true);
  EXPECT_TRUE(store->UpdateSpec(paused, spec->revision()).ok());

  // No fence: no check.
  store->SetWriteFence(std::nullopt);
  EXPECT_TRUE(store->WriteStatus("syncPolicies/a", "uid-a", InSync("lhbp-3")).ok());
  EXPECT_EQ(stored_source(), "lhbp-3");
}

// Creates racing at the limit from two stores (two replicas) and several
// threads each: exactly one gets the last place.
TEST_F(PostgresPolicyStoreTest, TheLastPlaceGoesToExactlyOneOfManyConcurrentCreates) {
  auto first = MustOpen();
  auto second = MustOpen();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  Sql(
      absl::StrCat("INSERT INTO sync_policies (name, uid, revision, spec) "
                   "SELECT 'syncPolicies/f' || i, 'fill', 1, '' FROM generate_series(1, ",
                   kMaxPolicies - 1, ") AS i"));
  constexpr int kThreads = 8;
  std::vector<absl::Status> results(kThreads);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      PolicyStore& store = i % 2 == 0 ? *first : *second;
      go.WaitForNotification();
      results[i] = store.Create(MakeRecord(absl::StrCat("racer", i))).status();
    });
  }
  go.Notify();
  for (auto& t : threads) t.join();
  int created = 0;
  for (const absl::Status& s : results) {
    if (s.ok()) {
      ++created;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    }
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM sync_policies"), absl::StrCat(kMaxPolicies));
}

TEST_F(PostgresPolicyStoreTest, DamagedRowsAreDataLossNamingThePolicy) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Create(MakeRecord("a")).ok());
  ASSERT_TRUE(store->Create(MakeRecord("b")).ok());
  Sql("UPDATE sync_policies SET spec = '\\xff'::bytea WHERE name = 'syncPolicies/a'");
  Sql("UPDATE sync_policies SET spec = (SELECT spec FROM sync_policies "
      "WHERE name = 'syncPolicies/a') WHERE name = 'syncPolicies/b'");
  auto got = store->Get("syncPolicies/a");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("syncPolicies/a"));
  EXPECT_THAT(got.status().message(), Not(HasSubstr(server_->password())));
  EXPECT_EQ(store->ListAll().status().code(), absl::StatusCode::kDataLoss);

  ASSERT_TRUE(store->Create(MakeRecord("c")).ok());
  Sql("UPDATE sync_policies SET spec = (SELECT spec FROM sync_policies "
      "WHERE name = 'syncPolicies/c') WHERE name = 'syncPolicies/b'");
  got = store->Get("syncPolicies/b");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("is for policy \"syncPolicies/c\""));
}

TEST_F(PostgresPolicyStoreTest, WrongPasswordFailsWithoutShowingAnyPassword) {
  const std::string wrong =
      absl::StrReplaceAll(dsn_, {{server_->password(), "not-the-password-7Hq"}});
  ASSERT_NE(wrong, dsn_);
  auto store = OpenPolicyStore(wrong);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), Not(HasSubstr("not-the-password-7Hq")));
  EXPECT_THAT(store.status().message(), Not(HasSubstr(server_->password())));
  EXPECT_THAT(store.status().message(), HasSubstr("127.0.0.1"));
}

TEST_F(PostgresPolicyStoreTest, BothUriSchemesSelectPostgres) {
  const std::string short_scheme = absl::StrReplaceAll(dsn_, {{"postgresql://", "postgres://"}});
  ASSERT_NE(short_scheme, dsn_);
  for (const std::string& spec : {dsn_, short_scheme}) {
    auto store = OpenPolicyStore(spec);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE(
        (*store)->Create(MakeRecord(absl::StrCat("via-", spec.substr(0, spec.find(':'))))).ok());
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM sync_policies"), "2");
}

// Its own server: stopping the shared one would disturb other tests.
TEST(PostgresPolicyStoreRestartTest, CallsFailWhileDownAndWorkOnceBack) {
  auto server = PostgresServer::Create();
  ASSERT_TRUE(server.ok()) << server.status();
  auto dsn = (*server)->CreateDatabase();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  auto store = OpenPolicyStore(*dsn);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Create(MakeRecord("a")).ok());

  ASSERT_TRUE((*server)->Stop().ok());
  const std::vector<absl::Status> results = {
      (*store)->Get("syncPolicies/a").status(),
      (*store)->Create(MakeRecord("b")).status(),
      (*store)->WriteStatus("syncPolicies/a", "uid-a", InSync("x")),
      (*store)->List(PolicyQuery{}).status(),
      (*store)->ChangeMark().status(),
  };
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].code(), absl::StatusCode::kUnavailable) << i << ": " << results[i];
    EXPECT_THAT(results[i].message(), Not(HasSubstr((*server)->password()))) << i;
  }

  ASSERT_TRUE((*server)->Start().ok());
  EXPECT_TRUE((*store)->Get("syncPolicies/a").ok());
  EXPECT_TRUE((*store)->Create(MakeRecord("b")).ok());
}

}  // namespace
}  // namespace blueprintsync::policies
