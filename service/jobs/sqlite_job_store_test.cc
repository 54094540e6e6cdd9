// SQLite-specific behaviour of the job store: durability across reopen, the
// schema_version table and migrations, clear errors for files that are not
// usable databases, and several connections writing one file. The shared
// behaviour is in job_store_conformance_test.cc.
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
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
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "service/common/testing/store_test_util.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_store_test_util.h"
#include "service/jobs/sqlite_sync_counter_test_util.h"

namespace blueprintsync::jobs {
namespace {

using ::blueprintsync::testing::EqualsProto;

using ::testing::HasSubstr;

JobRecord MakeRecord(const std::string& id, v1::SyncJob::State state,
                     const std::string& request_id = "") {
  JobRecord r;
  r.mutable_job()->set_name("syncJobs/" + id);
  r.mutable_job()->set_state(state);
  r.mutable_job()->set_blueprint_id("lhbp-ls883feh");
  r.mutable_job()->set_source_region("ap-guangzhou");
  r.mutable_job()->set_request_id(request_id);
  r.set_phase(JobRecord::NOT_SUBMITTED);
  return r;
}

// A second, independent connection for inspecting and tampering with the file.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    int rc =
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << "open " << path;
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }

  void Exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }

  // Rows joined by "\n", columns by "|".
  std::string Query(const std::string& sql) {
    std::string out;
    char* err = nullptr;
    int rc = sqlite3_exec(
        db_, sql.c_str(),
        [](void* arg, int n, char** values, char**) {
          auto* s = static_cast<std::string*>(arg);
          if (!s->empty()) *s += "\n";
          for (int i = 0; i < n; ++i) {
            if (i > 0) *s += "|";
            *s += values[i] ? values[i] : "NULL";
          }
          return 0;
        },
        &out, &err);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
    sqlite3_free(err);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SqliteJobStoreTest : public ::testing::Test {
 protected:
  SqliteJobStoreTest() {
    std::string templ = ::testing::TempDir() + "sqlite_job_store_test_XXXXXX";
    EXPECT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    path_ = dir_ + "/jobs.db";
  }
  ~SqliteJobStoreTest() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::unique_ptr<JobStore> MustOpen(const std::string& path) {
    auto store = OpenSqliteJobStore(path);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(SqliteJobStoreTest, JobsSurviveReopen) {
  JobRecord a, b;
  {
    auto store = MustOpen(path_);
    ASSERT_NE(store, nullptr);
    auto ca = store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED, "req-a"));
    auto cb = store->CreateJob(MakeRecord("b", v1::SyncJob::QUEUED));
    ASSERT_TRUE(ca.ok() && cb.ok());
    a = ca->record;
    b = cb->record;
    b.mutable_job()->set_state(v1::SyncJob::RUNNING);
    b.set_phase(JobRecord::SUBMITTING);
    ASSERT_TRUE(store->UpdateJob(b).ok());
  }
  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  auto got_a = store->GetJob("syncJobs/a");
  auto got_b = store->GetJob("syncJobs/b");
  ASSERT_TRUE(got_a.ok()) << got_a.status();
  ASSERT_TRUE(got_b.ok()) << got_b.status();
  EXPECT_THAT(*got_a, EqualsProto(a));
  EXPECT_THAT(*got_b, EqualsProto(b));

  auto unfinished = store->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  ASSERT_EQ(unfinished->size(), 2u);
  EXPECT_EQ((*unfinished)[1].phase(), JobRecord::SUBMITTING);

  // request_id dedup and sequence allocation continue from the stored state.
  auto dup = store->CreateJob(MakeRecord("a2", v1::SyncJob::QUEUED, "req-a"));
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_FALSE(dup->created);
  EXPECT_EQ(dup->record.job().name(), "syncJobs/a");
  auto c = store->CreateJob(MakeRecord("c", v1::SyncJob::QUEUED));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GT(c->record.sequence(), b.sequence());
}

// CreateJobSyncLater commits without flushing to disk; the next durable
// write flushes the write-ahead log, which holds both; every other write
// still flushes (synchronous is FULL again after it).
TEST_F(SqliteJobStoreTest, CreateJobSyncLaterCommitsWithoutAFlushThatTheNextWriteMakes) {
  ::blueprintsync::testing::SqliteSyncCounter counter;
  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  auto flushes_of = [&](const std::function<void()>& write) {
    const int before = counter.syncs();
    write();
    return counter.syncs() - before;
  };

  EXPECT_GE(flushes_of([&] { ASSERT_TRUE(store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok()); }),
            1);
  JobRecord b;
  EXPECT_EQ(flushes_of([&] {
              auto created = store->CreateJobSyncLater(MakeRecord("b", v1::SyncJob::QUEUED, "req-b"));
              ASSERT_TRUE(created.ok()) << created.status();
              ASSERT_TRUE(created->created);
              b = created->record;
            }),
            0);
  // Committed: another connection sees it, and its request_id is taken.
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT name FROM jobs WHERE name = 'syncJobs/b'"), "syncJobs/b");
  auto repeat = store->CreateJobSyncLater(MakeRecord("b2", v1::SyncJob::QUEUED, "req-b"));
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_FALSE(repeat->created);
  EXPECT_EQ(repeat->record.job().name(), "syncJobs/b");

  b.set_phase(JobRecord::SUBMITTING);
  EXPECT_GE(flushes_of([&] { ASSERT_TRUE(store->UpdateJob(b).ok()); }), 1);
  EXPECT_GE(flushes_of([&] { ASSERT_TRUE(store->CreateJob(MakeRecord("c", v1::SyncJob::QUEUED)).ok()); }),
            1);
  EXPECT_EQ(flushes_of([&] { ASSERT_TRUE(store->CreateJobSyncLater(MakeRecord("d", v1::SyncJob::QUEUED)).ok()); }),
            0);
  const int wal_flushes = counter.wal_syncs();
  EXPECT_EQ(flushes_of([&] { ASSERT_TRUE(store->Sync().ok()); }), 1);
  EXPECT_EQ(counter.wal_syncs() - wal_flushes, 1);  // the write-ahead log, where the commit is
  EXPECT_EQ(flushes_of([&] { ASSERT_TRUE(store->Sync().ok()); }), 0);  // nothing left to flush
  EXPECT_GE(flushes_of([&] { ASSERT_TRUE(store->RequestCancel("syncJobs/d").ok()); }), 1);

  // A commit that changes nothing flushes nothing, and leaves the record
  // pending for Sync().
  ASSERT_TRUE(store->CreateJobSyncLater(MakeRecord("e", v1::SyncJob::QUEUED)).ok());
  auto deleted = store->DeleteFinishedJobs(absl::Now() - absl::Hours(1), 10);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0);
  EXPECT_EQ(flushes_of([&] { ASSERT_TRUE(store->Sync().ok()); }), 1);

  // And it is all there after a reopen.
  store.reset();
  store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  for (const char* name : {"syncJobs/a", "syncJobs/b", "syncJobs/c", "syncJobs/d"}) {
    EXPECT_TRUE(store->GetJob(name).ok()) << name;
  }
  EXPECT_EQ(store->GetJob("syncJobs/b")->phase(), JobRecord::SUBMITTING);
}

// UpdateJob sets only the columns a job changes once recorded, unless the
// record says otherwise for another one: then that column (and its index)
// follows the record too.
TEST_F(SqliteJobStoreTest, UpdateJobKeepsEveryColumnInStepWithTheRecord) {
  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  auto created = store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED, "req-a"));
  ASSERT_TRUE(created.ok()) << created.status();
  JobRecord rec = created->record;
  rec.mutable_job()->set_state(v1::SyncJob::RUNNING);
  ASSERT_TRUE(store->UpdateJob(rec).ok());
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT state, blueprint_id, request_id FROM jobs"),
            absl::StrCat(static_cast<int>(v1::SyncJob::RUNNING), "|lhbp-ls883feh|req-a"));

  rec.mutable_job()->set_blueprint_id("lhbp-other001");
  rec.mutable_job()->set_request_id("");
  rec.mutable_job()->set_state(v1::SyncJob::SUCCEEDED);
  ASSERT_TRUE(store->UpdateJob(rec).ok());
  EXPECT_EQ(raw.Query("SELECT state, blueprint_id, request_id, request_key FROM jobs"),
            absl::StrCat(static_cast<int>(v1::SyncJob::SUCCEEDED), "|lhbp-other001|NULL|NULL"));
  JobQuery by_blueprint;
  by_blueprint.page_size = 10;
  by_blueprint.blueprint_id = "lhbp-other001";
  auto page = store->ListJobs(by_blueprint);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].job().name(), "syncJobs/a");
  // The request_id is free again.
  auto again = store->CreateJob(MakeRecord("b", v1::SyncJob::QUEUED, "req-a"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->created);
}

TEST_F(SqliteJobStoreTest, CommittedWriteIsVisibleToAnotherConnectionAtOnce) {
  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  auto created = store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED, "req-a"));
  ASSERT_TRUE(created.ok()) << created.status();
  RawDb raw(path_);
  EXPECT_EQ(
      raw.Query("SELECT sequence, name, request_key, request_id, creator, retry_of, state, open, "
                "blueprint_id, source_region FROM jobs"),
      absl::StrCat(created->record.sequence(),
                   "|syncJobs/a|req-a|req-a|||1|1|lhbp-ls883feh|ap-guangzhou"));

  JobRecord updated = created->record;
  updated.mutable_job()->set_state(v1::SyncJob::FAILED);
  updated.mutable_job()->set_creator("uri:spiffe://c/ns/web/sa/deployer");
  updated.mutable_job()->set_retry_of("syncJobs/x");
  updated.mutable_job()->mutable_update_time()->set_seconds(5);
  updated.mutable_job()->mutable_update_time()->set_nanos(7000);
  ASSERT_TRUE(store->UpdateJob(updated).ok());
  EXPECT_EQ(raw.Query("SELECT request_key, request_id, creator, retry_of, state, open, "
                      "update_time_us FROM jobs"),
            "uri:spiffe://c/ns/web/sa/deployer\nreq-a|req-a|uri:spiffe://c/ns/web/sa/deployer|"
            "syncJobs/x|4|0|5000007");
  updated.mutable_job()->set_request_id("");
  updated.mutable_job()->add_destinations()->set_copy_cleanup(v1::Destination::DELETE_PENDING);
  ASSERT_TRUE(store->UpdateJob(updated).ok());
  EXPECT_EQ(raw.Query("SELECT request_key, request_id, open FROM jobs"), "NULL|NULL|1");

  // The blob carries the sequence too.
  JobRecord from_blob;
  std::string hex = raw.Query("SELECT hex(record) FROM jobs");
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  ASSERT_TRUE(from_blob.ParseFromString(bytes));
  EXPECT_EQ(from_blob.sequence(), created->record.sequence());
}

// The schema every database ends up with, whether new or migrated.
void ExpectCurrentSchema(RawDb& raw) {
  EXPECT_EQ(raw.Query("SELECT group_concat(version, ',') FROM schema_version"), "1,2");
  EXPECT_EQ(raw.Query("SELECT group_concat(name, ',') FROM "
                      "(SELECT il.name FROM pragma_index_list('jobs') il "
                      " WHERE il.origin = 'c' ORDER BY il.name)"),
            "jobs_by_blueprint_id,jobs_by_creator,jobs_by_open,jobs_by_open_update_time,"
            "jobs_by_request_id,jobs_by_retry_of,jobs_by_source_region,jobs_by_state");
  for (const auto& [index, columns] : std::vector<std::pair<std::string, std::string>>{
           {"jobs_by_state", "state,sequence"},
           {"jobs_by_blueprint_id", "blueprint_id,sequence"},
           {"jobs_by_source_region", "source_region,sequence"},
           {"jobs_by_request_id", "request_id,sequence"},
           {"jobs_by_creator", "creator,sequence"},
           {"jobs_by_retry_of", "retry_of,sequence"},
           {"jobs_by_open", "open,sequence"},
           {"jobs_by_open_update_time", "open,update_time_us"}}) {
    EXPECT_EQ(
        raw.Query("SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info('" +
                  index + "') ORDER BY seqno)"),
        columns)
        << index;
  }
  // Unique: name and the request key, not request_id (creators may share it).
  EXPECT_EQ(raw.Query("SELECT group_concat(name, ',') FROM (SELECT ii.name FROM "
                      "pragma_index_list('jobs') il, pragma_index_info(il.name) ii "
                      "WHERE il.\"unique\" ORDER BY ii.name)"),
            "name,request_key");
  // Filtered listings, unfinished jobs and retention are answered from an
  // index, not a scan.
  for (const auto& [sql, index] : std::vector<std::pair<std::string, std::string>>{
           {"SELECT sequence FROM jobs WHERE sequence < 10 AND state = 1 "
            "ORDER BY sequence DESC LIMIT 5",
            "jobs_by_state"},
           {"SELECT sequence FROM jobs WHERE sequence > 0 AND creator = 'x' "
            "ORDER BY sequence LIMIT 5",
            "jobs_by_creator"},
           {"SELECT sequence FROM jobs WHERE open = 1 ORDER BY sequence", "jobs_by_open"},
           {"SELECT sequence FROM jobs WHERE open = 0 AND update_time_us < 5 "
            "ORDER BY update_time_us, sequence LIMIT 5",
            "jobs_by_open_update_time"}}) {
    EXPECT_THAT(raw.Query("EXPLAIN QUERY PLAN " + sql), HasSubstr(index)) << sql;
  }
}

TEST_F(SqliteJobStoreTest, SchemaVersionPragmasAndIndexes) {
  ASSERT_NE(MustOpen(path_), nullptr);
  ASSERT_NE(MustOpen(path_), nullptr);  // reopening applies nothing new
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  ExpectCurrentSchema(raw);
}

// Schema version 1 as the previous release created it (its migration 1),
// kept here verbatim: the migration test must start from what is on disk
// out there, whatever becomes of the code.
constexpr char kSchemaV1[] = R"sql(
  CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_time_us INTEGER NOT NULL);
  CREATE TABLE jobs (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE NOT NULL,
    request_id TEXT UNIQUE,
    state INTEGER NOT NULL,
    blueprint_id TEXT NOT NULL,
    source_region TEXT NOT NULL,
    create_time_us INTEGER,
    update_time_us INTEGER,
    record BLOB NOT NULL
  );
  CREATE INDEX jobs_by_state ON jobs (state, sequence);
  CREATE INDEX jobs_by_blueprint_id ON jobs (blueprint_id, sequence);
  CREATE INDEX jobs_by_source_region ON jobs (source_region, sequence);
  INSERT INTO schema_version VALUES (1, 0);
)sql";

// A row as version 1 wrote it: the blob carries the sequence.
void InsertV1Row(RawDb& raw, int64_t sequence, const JobRecord& record) {
  JobRecord stored = record;
  stored.set_sequence(sequence);
  std::string hex;
  for (unsigned char c : stored.SerializeAsString())
    absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
  const v1::SyncJob& job = record.job();
  raw.Exec(absl::StrCat(
      "INSERT INTO jobs (sequence, name, request_id, state, blueprint_id, source_region, "
      "create_time_us, update_time_us, record) VALUES (",
      sequence, ", '", job.name(), "', ",
      job.request_id().empty() ? "NULL" : absl::StrCat("'", job.request_id(), "'"), ", ",
      job.state(), ", '", job.blueprint_id(), "', '", job.source_region(), "', ",
      job.create_time().seconds() * 1000000, ", ", job.update_time().seconds() * 1000000, ", X'",
      hex, "')"));
}

TEST_F(SqliteJobStoreTest, VersionOneDatabaseIsMigratedInPlace) {
  std::map<std::string, JobRecord> old;
  {
    RawDb raw(path_);
    raw.Exec(kSchemaV1);
    int64_t sequence = 0;
    for (const auto& [id, state, request_id] :
         std::vector<std::tuple<std::string, v1::SyncJob::State, std::string>>{
             {"queued", v1::SyncJob::QUEUED, "req-q"},
             {"running", v1::SyncJob::RUNNING, ""},
             {"succeeded", v1::SyncJob::SUCCEEDED, "req-s"},
             {"failed", v1::SyncJob::FAILED, "req-f"}}) {
      JobRecord r = MakeRecord(id, state, request_id);
      r.mutable_job()->mutable_create_time()->set_seconds(1700000000 + sequence);
      r.mutable_job()->mutable_update_time()->set_seconds(1700000000 + sequence);
      sequence += 2;  // with gaps
      InsertV1Row(raw, sequence, r);
      r.set_sequence(sequence);
      old[id] = r;
    }
    // Sequences were handed out beyond the last row (rows removed by hand):
    // they must never be handed out again.
    raw.Exec("UPDATE sqlite_sequence SET seq = 20 WHERE name = 'jobs'");
  }

  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  {
    RawDb raw(path_);
    ExpectCurrentSchema(raw);
    EXPECT_EQ(raw.Query("SELECT name, request_key, request_id, creator, retry_of, open "
                        "FROM jobs ORDER BY sequence"),
              "syncJobs/queued|req-q|req-q|||1\n"
              "syncJobs/running|NULL|NULL|||1\n"
              "syncJobs/succeeded|req-s|req-s|||0\n"
              "syncJobs/failed|req-f|req-f|||0");
  }
  for (const auto& [id, record] : old) {
    auto got = store->GetJob(record.job().name());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_THAT(*got, EqualsProto(record));
  }
  // QUEUED and RUNNING jobs are the open ones.
  auto unfinished = store->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  ASSERT_EQ(unfinished->size(), 2u);
  EXPECT_EQ((*unfinished)[0].job().name(), "syncJobs/queued");
  EXPECT_EQ((*unfinished)[1].job().name(), "syncJobs/running");

  // Old request ids are anonymous keys: the same id dedups, another
  // creator's does not, and new sequences continue after the old mark.
  auto dup = store->CreateJob(MakeRecord("queued-again", v1::SyncJob::QUEUED, "req-q"));
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_FALSE(dup->created);
  EXPECT_EQ(dup->record.job().name(), "syncJobs/queued");
  JobRecord mine = MakeRecord("mine", v1::SyncJob::QUEUED, "req-q");
  mine.mutable_job()->set_creator("uri:spiffe://c/ns/web/sa/deployer");
  auto created = store->CreateJob(mine);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->record.sequence(), 21);

  // Old jobs can be listed by the new filters and deleted when finished.
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

TEST_F(SqliteJobStoreTest, NewerSchemaVersionIsRefused) {
  {
    auto store = MustOpen(path_);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
  }
  {
    RawDb raw(path_);
    raw.Exec("INSERT INTO schema_version (version, applied_time_us) VALUES (99, 0)");
  }
  auto store = OpenSqliteJobStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
  // The refused database is left as it was.
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM jobs"), "1");
  EXPECT_EQ(raw.Query("SELECT group_concat(version) FROM schema_version"), "1,2,99");
}

TEST_F(SqliteJobStoreTest, VersionZeroDatabaseIsMigrated) {
  {
    RawDb raw(path_);
    raw.Exec(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
        "applied_time_us INTEGER NOT NULL); CREATE TABLE unrelated (x INTEGER);");
  }
  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT group_concat(version) FROM schema_version"), "1,2");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM jobs"), "1");
}

TEST_F(SqliteJobStoreTest, FailedMigrationRollsBackEverything) {
  {
    RawDb raw(path_);
    raw.Exec("CREATE TABLE jobs (x INTEGER)");  // conflicts with migration 1
  }
  auto store = OpenSqliteJobStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("migration to version 1"));
  EXPECT_THAT(store.status().message(), HasSubstr("already exists"));
  RawDb raw(path_);
  // Not even the schema_version table survived the failed transaction.
  EXPECT_EQ(raw.Query("SELECT group_concat(name) FROM sqlite_master"), "jobs");
}

TEST_F(SqliteJobStoreTest, GarbageFileIsAClearErrorAndIsNotModified) {
  std::string garbage;
  for (int i = 0; i < 400; ++i) garbage += absl::StrCat("this is not a database, line ", i, "\n");
  {
    std::ofstream out(path_, std::ios::binary);
    out << garbage;
  }
  auto store = OpenSqliteJobStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
  EXPECT_THAT(store.status().message(), HasSubstr("not a database"));
  EXPECT_EQ(ReadFile(path_), garbage);
}

TEST_F(SqliteJobStoreTest, DirectoryAtPathIsAClearError) {
  std::filesystem::create_directories(path_);
  auto store = OpenSqliteJobStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
}

TEST_F(SqliteJobStoreTest, CreatesParentDirectories) {
  const std::string path = dir_ + "/a/b/c/jobs.db";
  auto store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
}

TEST_F(SqliteJobStoreTest, ParentThatIsAFileIsAClearError) {
  { std::ofstream(dir_ + "/plainfile") << "x"; }
  const std::string path = dir_ + "/plainfile/jobs.db";
  auto store = OpenSqliteJobStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("cannot create directory"));
}

TEST_F(SqliteJobStoreTest, UnparsableRecordIsDataLossNamingTheJob) {
  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
  ASSERT_TRUE(store->CreateJob(MakeRecord("b", v1::SyncJob::QUEUED)).ok());
  {
    RawDb raw(path_);
    // Field 1, length 5, but only two bytes follow.
    raw.Exec("UPDATE jobs SET record = x'0a056162' WHERE name = 'syncJobs/b'");
  }
  auto got = store->GetJob("syncJobs/b");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("syncJobs/b"));
  EXPECT_TRUE(store->GetJob("syncJobs/a").ok());

  JobQuery q;
  auto page = store->ListJobs(q);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kDataLoss) << page.status();
  EXPECT_THAT(page.status().message(), HasSubstr("syncJobs/b"));
  auto unfinished = store->ListUnfinishedJobs();
  EXPECT_EQ(unfinished.status().code(), absl::StatusCode::kDataLoss) << unfinished.status();

  blueprintsync::testing::ExpectOnlyThePageWithTheBadRowFails(store.get());
}

TEST_F(SqliteJobStoreTest, RecordOfAnotherJobIsDataLoss) {
  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED)).ok());
  ASSERT_TRUE(store->CreateJob(MakeRecord("b", v1::SyncJob::QUEUED)).ok());
  {
    RawDb raw(path_);
    raw.Exec(
        "UPDATE jobs SET record = (SELECT record FROM jobs WHERE name = 'syncJobs/a') "
        "WHERE name = 'syncJobs/b'");
  }
  auto got = store->GetJob("syncJobs/b");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("syncJobs/b"));
}

// Two stores on one file stand for two processes: BEGIN IMMEDIATE plus
// busy_timeout must serialize them without errors or lost writes.
TEST_F(SqliteJobStoreTest, ConcurrentWritersOnTwoConnections) {
  auto first = MustOpen(path_);
  auto second = MustOpen(path_);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kThreadsPerStore = 4;
  constexpr int kJobsPerThread = 15;
  std::vector<std::vector<std::string>> errors(2 * kThreadsPerStore);
  std::vector<std::vector<int64_t>> sequences(2 * kThreadsPerStore);
  std::vector<int> race_created(2 * kThreadsPerStore, 0);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerStore; ++t) {
    JobStore* store = t % 2 == 0 ? first.get() : second.get();
    threads.emplace_back([&, t, store] {
      go.WaitForNotification();
      auto race =
          store->CreateJob(MakeRecord(absl::StrCat("race-", t), v1::SyncJob::QUEUED, "req-shared"));
      if (!race.ok()) {
        errors[t].push_back(race.status().ToString());
      } else if (race->created) {
        race_created[t] = 1;
      }
      for (int i = 0; i < kJobsPerThread; ++i) {
        auto created = store->CreateJob(
            MakeRecord(absl::StrCat("t", t, "-", i), v1::SyncJob::QUEUED, absl::StrCat("r", t, i)));
        if (!created.ok()) {
          errors[t].push_back(created.status().ToString());
          continue;
        }
        sequences[t].push_back(created->record.sequence());
        JobRecord r = created->record;
        r.mutable_job()->set_state(v1::SyncJob::SUCCEEDED);
        if (auto s = store->UpdateJob(r); !s.ok()) errors[t].push_back(s.ToString());
      }
    });
  }
  go.Notify();
  for (auto& t : threads) t.join();

  std::set<int64_t> all;
  int winners = 0;
  for (int t = 0; t < 2 * kThreadsPerStore; ++t) {
    EXPECT_THAT(errors[t], ::testing::IsEmpty()) << "thread " << t;
    all.insert(sequences[t].begin(), sequences[t].end());
    winners += race_created[t];
  }
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(all.size(), static_cast<size_t>(2 * kThreadsPerStore * kJobsPerThread));

  first.reset();
  second.reset();
  auto reopened = MustOpen(path_);
  ASSERT_NE(reopened, nullptr);
  JobQuery q;
  q.page_size = 1000;
  auto page = reopened->ListJobs(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records.size(), static_cast<size_t>(2 * kThreadsPerStore * kJobsPerThread + 1));
  q.state = v1::SyncJob::SUCCEEDED;
  page = reopened->ListJobs(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records.size(), static_cast<size_t>(2 * kThreadsPerStore * kJobsPerThread));
}

// A writer on another connection holding the lock for a while makes the
// store wait (busy_timeout), not fail.
TEST_F(SqliteJobStoreTest, WaitsForAnotherConnectionsWriteLock) {
  auto store = MustOpen(path_);
  ASSERT_NE(store, nullptr);
  RawDb raw(path_);
  raw.Exec("BEGIN IMMEDIATE");
  absl::Notification started;
  absl::StatusOr<CreateJobResult> result = absl::UnknownError("not run");
  std::thread writer([&] {
    started.Notify();
    result = store->CreateJob(MakeRecord("a", v1::SyncJob::QUEUED));
  });
  started.WaitForNotification();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  raw.Exec("COMMIT");
  writer.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->created);
}

}  // namespace
}  // namespace blueprintsync::jobs
