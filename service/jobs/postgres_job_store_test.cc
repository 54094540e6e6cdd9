// PostgreSQL-specific behaviour of the job store, against a real throwaway
// server: the schema and migrations, two processes (two stores) racing on
// one request_id, surviving a server restart, secrets in errors. The
// behaviour all stores share is in job_store_conformance_test.cc.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_store_test_util.h"
#include "service/jobs/postgres_lease.h"
#include "tests/testing_util/postgres_database_test.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::jobs {
namespace {

using ::blueprintsync::testing::PostgresServer;
using ::testing::HasSubstr;
using ::testing::Not;

JobRecord MakeRecord(const std::string& id, v1::SyncJob::State state,
                     const std::string& request_id = "") {
  JobRecord r;
  v1::SyncJob& job = *r.mutable_job();
  job.set_name("syncJobs/" + id);
  job.set_state(state);
  job.set_blueprint_id("lhbp-ls883feh");
  job.set_source_region("ap-guangzhou");
  job.set_request_id(request_id);
  job.mutable_create_time()->set_seconds(1700000000);
  job.mutable_update_time()->set_seconds(1700000000);
  job.add_destinations()->set_region("ap-shanghai");
  r.set_phase(JobRecord::NOT_SUBMITTED);
  return r;
}

class PostgresJobStoreTest : public ::blueprintsync::testing::PostgresDatabaseTest {
 protected:
  std::unique_ptr<JobStore> MustOpen() {
    auto store = OpenJobStore(dsn_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // The schema every database ends up with, whether new or migrated.
  void ExpectCurrentSchema() {
    EXPECT_EQ(Sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version"),
              "1,2");
    EXPECT_EQ(Sql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                  "WHERE schemaname = 'public'"),
              "jobs,leader_lease,schema_version");
    EXPECT_EQ(Sql("SELECT string_agg(indexname || ' ' || substring(indexdef from '\\(.*\\)'), "
                  "';' ORDER BY indexname) "
                  "FROM pg_indexes WHERE tablename = 'jobs' AND indexname LIKE 'jobs_by_%'"),
              "jobs_by_blueprint_id (blueprint_id, sequence);"
              "jobs_by_creator (creator, sequence);"
              "jobs_by_open (open, sequence);"
              "jobs_by_open_update_time (open, update_time_us, sequence);"
              "jobs_by_request_id (request_id, sequence);"
              "jobs_by_retry_of (retry_of, sequence);"
              "jobs_by_source_region (source_region, sequence);"
              "jobs_by_state (state, sequence)");
    // Unique: name and the request key, not request_id (creators may share it).
    EXPECT_EQ(Sql("SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM pg_constraint c "
                  "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
                  "WHERE c.conrelid = 'jobs'::regclass AND c.contype = 'u'"),
              "name,request_key");
    EXPECT_EQ(Sql("SELECT is_identity, data_type FROM information_schema.columns "
                  "WHERE table_name = 'jobs' AND column_name = 'sequence'"),
              "YES|bigint");
    EXPECT_EQ(Sql("SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY column_name) "
                  "FROM information_schema.columns WHERE table_name = 'jobs' AND column_name IN "
                  "('record', 'open', 'request_key', 'creator', 'retry_of')"),
              "creator text,open boolean,record bytea,request_key text,retry_of text");
  }

};

TEST_F(PostgresJobStoreTest, BothUriSchemesSelectPostgres) {
  const std::string short_scheme = absl::StrReplaceAll(dsn_, {{"postgresql://", "postgres://"}});
  ASSERT_NE(short_scheme, dsn_);
  for (const std::string& spec : {dsn_, short_scheme}) {
    auto store = OpenJobStore(spec);
    ASSERT_TRUE(store.ok()) << store.status();
    auto created = (*store)->CreateJob(
        MakeRecord(absl::StrCat("via-", spec.substr(0, spec.find(':'))), v1::SyncJob::QUEUED));
    ASSERT_TRUE(created.ok()) << created.status();
  }
  EXPECT_EQ(Sql("SELECT string_agg(name, ',' ORDER BY sequence) FROM jobs"),
            "syncJobs/via-postgresql,syncJobs/via-postgres");
}

TEST_F(PostgresJobStoreTest, ColumnsMirrorTheRecordAndTheBlobParses) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  auto created = store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED, "req-a"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(Sql("SELECT sequence, name, request_key, request_id, creator, retry_of, state, open, "
                "blueprint_id, source_region, create_time_us FROM jobs"),
            absl::StrCat(created->record.sequence(),
                         "|syncJobs/a|req-a|req-a|||1|t|lhbp-ls883feh|ap-guangzhou|"
                         "1700000000000000"));

  JobRecord updated = created->record;
  updated.mutable_job()->set_state(v1::SyncJob::FAILED);
  updated.mutable_job()->set_creator("uri:spiffe://c/ns/web/sa/deployer");
  updated.mutable_job()->set_retry_of("syncJobs/x");
  updated.mutable_job()->mutable_update_time()->set_seconds(5);
  updated.mutable_job()->mutable_update_time()->set_nanos(7000);
  ASSERT_TRUE(store->UpdateJob(updated).ok());
  EXPECT_EQ(Sql("SELECT request_key, request_id, creator, retry_of, state, open, update_time_us "
                "FROM jobs"),
            "uri:spiffe://c/ns/web/sa/deployer\nreq-a|req-a|uri:spiffe://c/ns/web/sa/deployer|"
            "syncJobs/x|4|f|5000007");
  updated.mutable_job()->set_request_id("");
  updated.mutable_job()->mutable_destinations(0)->set_copy_cleanup(v1::Destination::DELETE_PENDING);
  ASSERT_TRUE(store->UpdateJob(updated).ok());
  EXPECT_EQ(Sql("SELECT request_key IS NULL, request_id IS NULL, open FROM jobs"), "t|t|t");

  // The blob is the record; the sequence lives in its column only.
  std::string hex = Sql("SELECT encode(record, 'hex') FROM jobs");
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  JobRecord from_blob;
  ASSERT_TRUE(from_blob.ParseFromString(bytes));
  EXPECT_EQ(from_blob.sequence(), 0);
  EXPECT_EQ(from_blob.job().state(), v1::SyncJob::FAILED);
  EXPECT_EQ(from_blob.job().name(), "syncJobs/a");
}

TEST_F(PostgresJobStoreTest, SchemaVersionTablesAndIndexes) {
  ASSERT_NE(MustOpen(), nullptr);
  ASSERT_NE(MustOpen(), nullptr);  // reopening applies nothing new
  ExpectCurrentSchema();
}

// Schema version 1 as the previous release created it (its migration 1),
// kept here verbatim: the migration test must start from what is on disk
// out there, whatever becomes of the code.
constexpr char kSchemaV1[] = R"sql(
  CREATE TABLE schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE jobs (
    sequence bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    request_id text UNIQUE,
    state integer NOT NULL,
    blueprint_id text NOT NULL,
    source_region text NOT NULL,
    create_time_us bigint,
    update_time_us bigint,
    record bytea NOT NULL
  );
  CREATE INDEX jobs_by_state ON jobs (state, sequence);
  CREATE INDEX jobs_by_blueprint_id ON jobs (blueprint_id, sequence);
  CREATE INDEX jobs_by_source_region ON jobs (source_region, sequence);
  CREATE TABLE leader_lease (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    holder text NOT NULL,
    epoch bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
  );
  INSERT INTO schema_version (version) VALUES (1);
)sql";

TEST_F(PostgresJobStoreTest, VersionOneDatabaseIsMigratedInPlace) {
  Sql(kSchemaV1);
  std::map<std::string, JobRecord> old;
  int64_t sequence = 0;
  for (const auto& [id, state, request_id] :
       std::vector<std::tuple<std::string, v1::SyncJob::State, std::string>>{
           {"queued", v1::SyncJob::QUEUED, "req-q"},
           {"running", v1::SyncJob::RUNNING, ""},
           {"succeeded", v1::SyncJob::SUCCEEDED, "req-s"},
           {"failed", v1::SyncJob::FAILED, "req-f"}}) {
    // A row as version 1 wrote it: the blob without the sequence.
    JobRecord r = MakeRecord(id, state, request_id);
    std::string hex;
    for (unsigned char c : r.SerializeAsString()) {
      absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
    }
    Sql(
        absl::StrCat("INSERT INTO jobs (name, request_id, state, blueprint_id, source_region, "
                     "create_time_us, update_time_us, record) VALUES ('",
                     r.job().name(), "', ",
                     request_id.empty() ? "NULL" : absl::StrCat("'", request_id, "'"), ", ", state,
                     ", 'lhbp-ls883feh', 'ap-guangzhou', 1700000000000000, 1700000000000000, "
                     "'\\x",
                     hex, "')"));
    r.set_sequence(++sequence);
    old[id] = r;
  }
  // The lease row survives too.
  Sql("INSERT INTO leader_lease VALUES (true, 'replica-a', 7, now(), now(), now())");

  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  ExpectCurrentSchema();
  EXPECT_EQ(Sql("SELECT string_agg(concat_ws('|', name, coalesce(request_key, 'NULL'), "
                "coalesce(request_id, 'NULL'), creator, retry_of, open), ';' ORDER BY sequence) "
                "FROM jobs"),
            "syncJobs/queued|req-q|req-q|||t;"
            "syncJobs/running|NULL|NULL|||t;"
            "syncJobs/succeeded|req-s|req-s|||f;"
            "syncJobs/failed|req-f|req-f|||f");
  EXPECT_EQ(Sql("SELECT epoch FROM leader_lease"), "7");
  for (const auto& [id, record] : old) {
    auto got = store->GetJob(record.job().name());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->SerializeAsString(), record.SerializeAsString()) << id;
  }
  auto unfinished = store->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  ASSERT_EQ(unfinished->size(), 2u);
  EXPECT_EQ((*unfinished)[0].job().name(), "syncJobs/queued");
  EXPECT_EQ((*unfinished)[1].job().name(), "syncJobs/running");

  // Old request ids are anonymous keys: the same id dedups, another
  // creator's does not.
  auto dup = store->CreateJob(MakeRecord("queued-again", v1::SyncJob::QUEUED, "req-q"));
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_FALSE(dup->created);
  EXPECT_EQ(dup->record.job().name(), "syncJobs/queued");
  JobRecord mine = MakeRecord("mine", v1::SyncJob::QUEUED, "req-q");
  mine.mutable_job()->set_creator("uri:spiffe://c/ns/web/sa/deployer");
  auto created = store->CreateJob(mine);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_GT(created->record.sequence(), 4);

  JobQuery q;
  q.request_id = "req-q";
  auto page = store->ListJobs(q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_EQ(page->records[0].job().name(), "syncJobs/mine");
  EXPECT_EQ(page->records[1].job().name(), "syncJobs/queued");
  EXPECT_EQ(store->DeleteJob("syncJobs/running").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store->DeleteJob("syncJobs/succeeded").ok());
  auto deleted = store->DeleteFinishedJobs(absl::InfiniteFuture(), 10);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1);  // failed
  auto reused = store->CreateJob(MakeRecord("s2", v1::SyncJob::QUEUED, "req-s"));
  ASSERT_TRUE(reused.ok()) << reused.status();
  EXPECT_TRUE(reused->created);
}

// Three replicas starting at once on an empty database: the advisory lock
// makes one migrate and the others find the schema done.
TEST_F(PostgresJobStoreTest, ConcurrentFirstOpensMigrateOnce) {
  constexpr int kOpeners = 3;
  std::vector<absl::Status> results(kOpeners);
  std::vector<std::unique_ptr<JobStore>> stores(kOpeners);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      go.WaitForNotification();
      if (i == kOpeners - 1) {
        // The lease opens through the same migrations.
        auto lease = PostgresLeaderLease::Open(dsn_);
        results[i] = lease.status();
        return;
      }
      auto store = OpenJobStore(dsn_);
      results[i] = store.status();
      if (store.ok()) stores[i] = *std::move(store);
    });
  }
  go.Notify();
  for (auto& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
  EXPECT_EQ(Sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version"),
            "1,2");
  ASSERT_NE(stores[0], nullptr);
  ASSERT_TRUE(stores[0]->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
  auto got = stores[1]->GetJob("syncJobs/a");
  EXPECT_TRUE(got.ok()) << got.status();
}

TEST_F(PostgresJobStoreTest, NewerSchemaVersionIsRefused) {
  {
    auto store = MustOpen();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
  }
  Sql("INSERT INTO schema_version (version) VALUES (99)");
  auto store = OpenJobStore(dsn_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
  EXPECT_THAT(store.status().message(), HasSubstr("postgres:****@127.0.0.1"));
  EXPECT_THAT(store.status().message(), Not(HasSubstr(server_->password())));
  EXPECT_EQ(Sql("SELECT count(*) FROM jobs"), "1");
  EXPECT_EQ(Sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version"),
            "1,2,99");
}

TEST_F(PostgresJobStoreTest, FailedMigrationRollsBackEverything) {
  Sql("CREATE TABLE jobs (x integer)");  // conflicts with migration 1
  auto store = OpenJobStore(dsn_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("migration to version 1"));
  EXPECT_THAT(store.status().message(), HasSubstr("already exists"));
  // Not even the schema_version table survived the failed transaction.
  EXPECT_EQ(Sql("SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"),
            "jobs");
}

// Two stores are two processes' connections: the unique constraint, not a
// lock in this process, decides which create wins.
TEST_F(PostgresJobStoreTest, SameRequestIdFromTwoStoresCreatesExactlyOne) {
  auto first = MustOpen();
  auto second = MustOpen();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kRounds = 20;
  constexpr int kThreadsPerStore = 3;
  for (int round = 0; round < kRounds; ++round) {
    const std::string request_id = absl::StrCat("req-", round);
    std::vector<absl::StatusOr<CreateJobResult>> results(2 * kThreadsPerStore,
                                                         absl::UnknownError("not run"));
    absl::Notification go;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2 * kThreadsPerStore; ++t) {
      JobStore* store = t % 2 == 0 ? first.get() : second.get();
      threads.emplace_back([&, t, store] {
        JobRecord r =
            MakeRecord(absl::StrCat("r", round, "-t", t), v1::SyncJob::QUEUED, request_id);
        go.WaitForNotification();
        results[t] = store->CreateJob(r);
      });
    }
    go.Notify();
    for (auto& th : threads) th.join();
    int created = 0;
    std::set<std::string> names;
    std::set<int64_t> sequences;
    for (const auto& r : results) {
      ASSERT_TRUE(r.ok()) << "round " << round << ": " << r.status();
      created += r->created ? 1 : 0;
      names.insert(r->record.job().name());
      sequences.insert(r->record.sequence());
    }
    EXPECT_EQ(created, 1) << "round " << round;
    EXPECT_EQ(names.size(), 1u) << "round " << round;
    EXPECT_EQ(sequences.size(), 1u) << "round " << round;
    EXPECT_EQ(Sql(absl::StrCat("SELECT count(*) FROM jobs WHERE request_id = '", request_id, "'")),
              "1");
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM jobs"), absl::StrCat(kRounds));
}

TEST_F(PostgresJobStoreTest, UnparsableRecordIsDataLossNamingTheJob) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
  ASSERT_TRUE(store->CreateJob(MakeRecord("b", v1::SyncJob::QUEUED)).ok());
  // Field 1, length 5, but only two bytes follow.
  Sql("UPDATE jobs SET record = '\\x0a056162' WHERE name = 'syncJobs/b'");
  auto got = store->GetJob("syncJobs/b");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("syncJobs/b"));
  EXPECT_THAT(got.status().message(), Not(HasSubstr(server_->password())));
  EXPECT_TRUE(store->GetJob("syncJobs/a").ok());
  auto unfinished = store->ListUnfinishedJobs();
  EXPECT_EQ(unfinished.status().code(), absl::StatusCode::kDataLoss) << unfinished.status();

  blueprintsync::testing::ExpectOnlyThePageWithTheBadRowFails(store.get());

  Sql("UPDATE jobs SET record = (SELECT record FROM jobs WHERE name = 'syncJobs/a') "
      "WHERE name = 'syncJobs/b'");
  got = store->GetJob("syncJobs/b");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("is for job \"syncJobs/a\""));
}

TEST_F(PostgresJobStoreTest, WrongPasswordFailsWithoutShowingAnyPassword) {
  const std::string wrong = "Wrong-Password-0815";
  std::string dsn = absl::StrReplaceAll(dsn_, {{server_->password(), wrong}});
  ASSERT_NE(dsn, dsn_);
  auto store = OpenJobStore(dsn);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("password authentication failed"));
  EXPECT_THAT(store.status().message(), Not(HasSubstr(wrong)));
  EXPECT_THAT(store.status().message(), Not(HasSubstr(server_->password())));
}

// The password may come from the environment instead of the DSN (libpq).
TEST_F(PostgresJobStoreTest, PasswordFromPgPassword) {
  const std::string without = absl::StrReplaceAll(dsn_, {{":" + server_->password() + "@", "@"}});
  ASSERT_NE(without, dsn_);
  setenv("PGPASSWORD", server_->password().c_str(), 1);
  auto store = OpenJobStore(without);
  unsetenv("PGPASSWORD");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
}

TEST_F(PostgresJobStoreTest, ManyThreadsShareTheSmallPool) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 12;
  constexpr int kPerThread = 10;
  std::vector<std::vector<std::string>> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto created =
            store->CreateJob(MakeRecord(absl::StrCat("t", t, "-", i), v1::SyncJob::QUEUED));
        if (!created.ok()) {
          errors[t].push_back(created.status().ToString());
          continue;
        }
        JobRecord r = created->record;
        r.mutable_job()->set_state(v1::SyncJob::RUNNING);
        if (auto s = store->UpdateJob(r); !s.ok()) errors[t].push_back(s.ToString());
        if (auto got = store->GetJob(r.job().name()); !got.ok()) {
          errors[t].push_back(got.status().ToString());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_THAT(errors[t], ::testing::IsEmpty()) << t;
  EXPECT_EQ(Sql("SELECT count(*) FROM jobs WHERE state = 2"), absl::StrCat(kThreads * kPerThread));
  // The pool stays small: at most 4 connections of this store at any time.
  auto connections = server_->Query(
      db_,
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'blueprint-syncd' "
      "AND datname = current_database()");
  ASSERT_TRUE(connections.ok()) << connections.status();
  int n = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*connections, &n)) << *connections;
  EXPECT_LE(n, 4);
  EXPECT_GE(n, 1);
}

// Its own server: stopping the shared one would disturb other tests of this
// process.
class PostgresRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PostgresServer::Create();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto dsn = server_->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
  }

  // Every call fails with Unavailable, promptly and without the password.
  void ExpectAllUnavailable(JobStore& store, PostgresLeaderLease& lease, const JobRecord& known) {
    std::vector<absl::Status> results = {
        store.GetJob(known.job().name()).status(),
        store.CreateJob(MakeRecord("while-down", v1::SyncJob::QUEUED)).status(),
        store.UpdateJob(known),
        store.ListJobs(JobQuery{}).status(),
        store.ListUnfinishedJobs().status(),
        lease.TryAcquireOrRenew("replica-a", absl::Seconds(30)).status(),
    };
    for (size_t i = 0; i < results.size(); ++i) {
      EXPECT_EQ(results[i].code(), absl::StatusCode::kUnavailable) << i << ": " << results[i];
      EXPECT_THAT(results[i].message(), Not(HasSubstr(server_->password()))) << i;
      EXPECT_THAT(results[i].message(), HasSubstr("127.0.0.1")) << i;
    }
  }

  std::unique_ptr<PostgresServer> server_;
  std::string dsn_;
};

TEST_F(PostgresRestartTest, CallsFailWhileDownAndWorkOnceBack) {
  auto store = OpenJobStore(dsn_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto lease = PostgresLeaderLease::Open(dsn_);
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto a = (*store)->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED, "req-a"));
  ASSERT_TRUE(a.ok()) << a.status();
  auto held = (*lease)->TryAcquireOrRenew("replica-a", absl::Seconds(30));
  ASSERT_TRUE(held.ok()) << held.status();

  ASSERT_TRUE(server_->Stop().ok());
  ExpectAllUnavailable(**store, **lease, a->record);
  // Still down: a second round reconnects (and fails) again, no stale state.
  ExpectAllUnavailable(**store, **lease, a->record);

  ASSERT_TRUE(server_->Start().ok()) << server_->LogTail();
  auto got = (*store)->GetJob("syncJobs/a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->sequence(), a->record.sequence());
  auto dup = (*store)->CreateJob(MakeRecord("a2", v1::SyncJob::QUEUED, "req-a"));
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_FALSE(dup->created);
  JobRecord running = a->record;
  running.mutable_job()->set_state(v1::SyncJob::RUNNING);
  EXPECT_TRUE((*store)->UpdateJob(running).ok());
  auto renewed = (*lease)->TryAcquireOrRenew("replica-a", absl::Seconds(30));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_TRUE(renewed->leader);
  EXPECT_EQ(renewed->epoch, held->epoch);  // the lease row survived the restart
}

// Pooled connections that went idle before the restart are found dead
// before use, so not even the first call after the restart fails.
TEST_F(PostgresRestartTest, IdleConnectionsAreReplacedAfterARestart) {
  auto store = OpenJobStore(dsn_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto lease = PostgresLeaderLease::Open(dsn_);
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto a = (*store)->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE((*lease)->TryAcquireOrRenew("replica-a", absl::Seconds(30)).ok());

  ASSERT_TRUE(server_->Stop().ok());
  ASSERT_TRUE(server_->Start().ok()) << server_->LogTail();

  auto created = (*store)->CreateJob(MakeRecord("b", v1::SyncJob::QUEUED));
  EXPECT_TRUE(created.ok()) << created.status();
  auto renewed = (*lease)->TryAcquireOrRenew("replica-a", absl::Seconds(30));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_TRUE(renewed->leader);
  auto page = (*store)->ListJobs(JobQuery{});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records.size(), 2u);
}

// A server that stops answering without closing anything (hung host,
// network black hole): calls end with Unavailable after the timeouts
// instead of hanging, and work again once it answers.
TEST_F(PostgresRestartTest, AFrozenServerMakesCallsFailInsteadOfHanging) {
  auto store = OpenJobStore(dsn_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto lease = PostgresLeaderLease::Open(dsn_, PostgresLeaseOptions{absl::Seconds(2)});
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto a = (*store)->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE((*lease)->TryAcquireOrRenew("replica-a", absl::Seconds(30)).ok());

  ASSERT_TRUE(server_->Freeze().ok());
  // On the open connections: the client-side deadline.
  auto renewed = (*lease)->TryAcquireOrRenew("replica-a", absl::Seconds(30));
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kUnavailable) << renewed.status();
  EXPECT_THAT(renewed.status().message(), HasSubstr("no answer from the server"));
  auto got = (*store)->GetJob("syncJobs/a");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
  // On a new connection: the connect timeout.
  renewed = (*lease)->TryAcquireOrRenew("replica-a", absl::Seconds(30));
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kUnavailable) << renewed.status();
  EXPECT_THAT(renewed.status().message(), HasSubstr("cannot connect"));
  EXPECT_THAT(renewed.status().message(), Not(HasSubstr(server_->password())));

  ASSERT_TRUE(server_->Thaw().ok());
  renewed = (*lease)->TryAcquireOrRenew("replica-a", absl::Seconds(30));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_TRUE(renewed->leader);
  got = (*store)->GetJob("syncJobs/a");
  EXPECT_TRUE(got.ok()) << got.status();
}


// What a change feed reported, for the tests to wait on.
class FeedLog {
 public:
  std::function<void(JobChanges)> Callback() {
    return [this](JobChanges c) {
      absl::MutexLock lock(&mu_);
      if (c.resync) ++resyncs_;
      for (JobChange& change : c.changes) changes_.push_back(std::move(change));
    };
  }
  // Waits (up to 30 s: a loaded machine) until `done` holds of what was seen.
  bool WaitFor(std::function<bool(const std::vector<JobChange>&, int resyncs)> done,
               absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock lock(&mu_);
    auto holds = [&] { return done(changes_, resyncs_); };
    return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
  }
  std::vector<JobChange> Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(changes_, {});
  }
  int resyncs() {
    absl::MutexLock lock(&mu_);
    return resyncs_;
  }

 private:
  absl::Mutex mu_;
  std::vector<JobChange> changes_ ABSL_GUARDED_BY(mu_);
  int resyncs_ ABSL_GUARDED_BY(mu_) = 0;
};

std::string Describe(const std::vector<JobChange>& changes) {
  std::string out;
  for (const JobChange& c : changes) {
    absl::StrAppend(&out, static_cast<int>(c.kind), ":", c.name, " ");
  }
  return out;
}

bool Saw(const std::vector<JobChange>& changes, JobChange::Kind kind, const std::string& name) {
  for (const JobChange& c : changes) {
    if (c.kind == kind && c.name == name) return true;
  }
  return false;
}

TEST_F(PostgresJobStoreTest, ChangeFeedReportsEveryKindOfWriteByAnyStore) {
  auto writer = MustOpen();
  auto reader = MustOpen();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  FeedLog log;
  std::unique_ptr<JobChangeFeed> feed = reader->OpenChangeFeed(log.Callback());
  ASSERT_NE(feed, nullptr) << "the PostgreSQL store has a change feed";
  // Listening first, then a resync: only then is every change reported.
  ASSERT_TRUE(log.WaitFor([](const auto&, int resyncs) { return resyncs >= 1; }));
  EXPECT_TRUE(feed->connected()) << feed->status();

  using Kind = JobChange::Kind;
  JobRecord rec = MakeRecord("feed-a", v1::SyncJob::QUEUED, "req-feed");
  ASSERT_TRUE(writer->CreateJob(rec).ok());
  ASSERT_TRUE(log.WaitFor([](const auto& c, int) { return !c.empty(); }));
  // A repeated request_id writes nothing, so it says nothing.
  JobRecord repeat = MakeRecord("feed-b", v1::SyncJob::QUEUED, "req-feed");
  auto again = writer->CreateJob(repeat);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  ASSERT_TRUE(writer->RequestCancel("syncJobs/feed-a").ok());
  rec.mutable_job()->set_state(v1::SyncJob::SUCCEEDED);
  ASSERT_TRUE(writer->UpdateJob(rec).ok());
  ASSERT_TRUE(writer->DeleteJob("syncJobs/feed-a").ok());
  JobRecord old = MakeRecord("feed-old", v1::SyncJob::SUCCEEDED);
  ASSERT_TRUE(writer->CreateJob(old).ok());
  auto purged = writer->DeleteFinishedJobs(absl::Now(), 10);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1);

  ASSERT_TRUE(log.WaitFor([](const auto& c, int) {
    return Saw(c, Kind::kDeleted, "syncJobs/feed-old");
  })) << Describe(log.Take());
  const std::vector<JobChange> seen = log.Take();
  const std::vector<std::pair<Kind, std::string>> want = {
      {Kind::kCreated, "syncJobs/feed-a"},         {Kind::kCancelRequested, "syncJobs/feed-a"},
      {Kind::kUpdated, "syncJobs/feed-a"},         {Kind::kDeleted, "syncJobs/feed-a"},
      {Kind::kCreated, "syncJobs/feed-old"},       {Kind::kDeleted, "syncJobs/feed-old"}};
  ASSERT_EQ(seen.size(), want.size()) << Describe(seen);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(seen[i].kind, want[i].first) << i << ": " << Describe(seen);
    EXPECT_EQ(seen[i].name, want[i].second) << i << ": " << Describe(seen);
  }
}

TEST_F(PostgresJobStoreTest, ChangeFeedSaysNothingForWritesThatWriteNothing) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  FeedLog log;
  auto feed = store->OpenChangeFeed(log.Callback());
  ASSERT_TRUE(log.WaitFor([](const auto&, int resyncs) { return resyncs >= 1; }));
  // A fenced update that the fence refuses, an update, a cancel and a delete
  // of a job that does not exist, a delete of an open job.
  JobRecord open = MakeRecord("open", v1::SyncJob::QUEUED);
  ASSERT_TRUE(store->CreateJob(open).ok());
  store->SetWriteFence(7);
  EXPECT_FALSE(store->UpdateJob(open).ok());
  store->SetWriteFence(std::nullopt);
  EXPECT_FALSE(store->UpdateJob(MakeRecord("none", v1::SyncJob::QUEUED)).ok());
  EXPECT_FALSE(store->RequestCancel("syncJobs/none").ok());
  EXPECT_FALSE(store->DeleteJob("syncJobs/none").ok());
  EXPECT_FALSE(store->DeleteJob("syncJobs/open").ok());
  // A marker: everything before it has been delivered once it is.
  ASSERT_TRUE(store->CreateJob(MakeRecord("marker", v1::SyncJob::QUEUED)).ok());
  ASSERT_TRUE(log.WaitFor([](const auto& c, int) {
    return Saw(c, JobChange::Kind::kCreated, "syncJobs/marker");
  }));
  const std::vector<JobChange> seen = log.Take();
  ASSERT_EQ(seen.size(), 2u) << Describe(seen);
  EXPECT_EQ(seen[0].name, "syncJobs/open");
}

TEST_F(PostgresJobStoreTest, ChangeFeedReconnectsAfterItsBackendIsTerminatedAndAsksForAResync) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  FeedLog log;
  auto feed = store->OpenChangeFeed(log.Callback());
  ASSERT_TRUE(log.WaitFor([](const auto&, int resyncs) { return resyncs >= 1; }));
  EXPECT_EQ(Sql("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN blueprintsync_jobs'"),
            "1");
  EXPECT_EQ(Sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query = 'LISTEN blueprintsync_jobs'"),
            "1");
  // A job written about now may be written while nobody listens (or not:
  // the reconnect may win the race): a lost notification is made up for by
  // the second resync, which must therefore come once LISTEN is back.
  ASSERT_TRUE(store->CreateJob(MakeRecord("maybe-unheard", v1::SyncJob::QUEUED)).ok());
  ASSERT_TRUE(log.WaitFor([](const auto&, int resyncs) { return resyncs >= 2; }))
      << "the feed never listened again: " << feed->status();
  EXPECT_TRUE(feed->connected()) << feed->status();
  EXPECT_EQ(Sql("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN blueprintsync_jobs'"),
            "1")
      << "the resync was reported before LISTEN was in place again";
  // And it reports changes again.
  ASSERT_TRUE(store->CreateJob(MakeRecord("heard", v1::SyncJob::QUEUED)).ok());
  EXPECT_TRUE(log.WaitFor([](const auto& c, int) {
    return Saw(c, JobChange::Kind::kCreated, "syncJobs/heard");
  })) << Describe(log.Take());
}

// Review S3: the backoff was reset as soon as LISTEN succeeded, so a server
// that accepts connections and drops them soon after was reconnected to
// (and every reader asked for a full re-read) many times a second.
TEST_F(PostgresJobStoreTest, ChangeFeedBacksOffFromAServerThatKeepsDroppingIt) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  FeedLog log;
  auto feed = store->OpenChangeFeed(log.Callback());
  ASSERT_TRUE(log.WaitFor([](const auto&, int resyncs) { return resyncs >= 1; }));
  const int before = log.resyncs();
  const absl::Time end = absl::Now() + absl::Seconds(4);
  while (absl::Now() < end) {
    Sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE query = 'LISTEN blueprintsync_jobs'");
    absl::SleepFor(absl::Milliseconds(20));
  }
  // Waits of 100, 200, 400, 800, 1600 ms between attempts: about 5 in 4 s.
  const int reconnects = log.resyncs() - before;
  EXPECT_LE(reconnects, 8) << "reconnects in 4 s of dropped connections";
  // Once the server stops dropping it, it listens again.
  ASSERT_TRUE(store->CreateJob(MakeRecord("heard", v1::SyncJob::QUEUED)).ok());
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  bool heard = false;
  while (!heard && absl::Now() < give_up) {
    // Written again until heard: the first may be sent while it reconnects.
    Sql("SELECT pg_notify('blueprintsync_jobs', 'u:syncJobs/heard')");
    heard = log.WaitFor([](const auto& c, int) {
      return Saw(c, JobChange::Kind::kUpdated, "syncJobs/heard");
    }, absl::Milliseconds(500));
  }
  EXPECT_TRUE(heard) << feed->status();
}

TEST_F(PostgresJobStoreTest, ChangeFeedAsksForAResyncOnANotificationItCannotRead) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  FeedLog log;
  auto feed = store->OpenChangeFeed(log.Callback());
  ASSERT_TRUE(log.WaitFor([](const auto&, int resyncs) { return resyncs >= 1; }));
  Sql("SELECT pg_notify('blueprintsync_jobs', 'not a change')");
  EXPECT_TRUE(log.WaitFor([](const auto&, int resyncs) { return resyncs >= 2; }));
  // Longer than any job name: not trusted to be one.
  Sql("SELECT pg_notify('blueprintsync_jobs', 'u:' || repeat('x', 600))");
  EXPECT_TRUE(log.WaitFor([](const auto&, int resyncs) { return resyncs >= 3; }));
  EXPECT_TRUE(log.Take().empty());
}

TEST(MemoryJobStoreTest, HasNoChangeFeed) {
  auto store = MakeMemoryJobStore();
  EXPECT_EQ(store->OpenChangeFeed([](JobChanges) {}), nullptr);
}

}  // namespace
}  // namespace blueprintsync::jobs
