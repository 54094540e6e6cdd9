// JobStore: durable storage of sync jobs (JobRecord, see
// proto/blueprintsync/internal/job_record.proto). The job engine writes a job
// before any upstream call and after every state change, so after a crash
// the store alone says what was submitted and what still needs tracking.
//
// Implementations: SQLite (the embedded default, "sqlite:PATH"), PostgreSQL
// ("postgres://…", shared by several replicas; see postgres_lease.h for the
// leader lease that fences their writes) and memory ("memory:", for tests).
// Every implementation passes the shared suite in
// job_store_conformance_test.cc. All methods are thread-safe.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "blueprintsync/internal/job_record.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "service/jobs/store_health.h"

namespace blueprintsync::jobs {

using internal::JobRecord;

// Whether the engine still has work on the job: it is QUEUED, RUNNING or
// CANCELLING, or one of its copies is still to be deleted (DELETE_PENDING).
// Stores index it; only jobs that are not open may be deleted.
bool IsOpen(const JobRecord& record);
bool IsOpen(const v1::SyncJob& job);

// The key request_id is unique under: the request_id alone for anonymous
// callers (and jobs recorded before creators existed), else creator and
// request_id. "" when request_id is empty.
std::string RequestKey(const v1::SyncJob& job);
inline constexpr char kAnonymousCreator[] = "anonymous";

struct CreateJobResult {
  JobRecord record;  // the stored record (with its sequence)
  // False when a job with the same non-empty request_id already existed; then
  // `record` is that existing job and nothing was written.
  bool created = false;
};

// A create_time condition of a list filter.
struct TimeCondition {
  enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };
  Op op = Op::kEq;
  absl::Time time;
};

struct JobQuery {
  // Each set field must match exactly.
  std::optional<v1::SyncJob::State> state;
  std::optional<std::string> blueprint_id;
  std::optional<std::string> source_region;
  std::optional<std::string> request_id;  // of any creator; "": jobs without
  // As recorded: jobs from before creators existed have "".
  std::optional<std::string> creator;
  std::optional<std::string> retry_of;
  // Some destination has this region.
  std::optional<std::string> destination_region;
  // Started by this policy ("syncPolicies/{id}"); "": jobs asked for
  // directly.
  std::optional<std::string> policy;
  // Every label here is on the job with this value.
  std::map<std::string, std::string> labels;
  // All must hold for the job's create_time (a job without one matches
  // no condition).
  std::vector<TimeCondition> create_time;
  // Newest (highest sequence) first, else oldest first.
  bool newest_first = true;
  // Where the previous page ended (0 = from the start): newest first,
  // only sequence < cursor; oldest first, only sequence > cursor.
  int64_t cursor = 0;
  int page_size = 50;  // > 0
};

// Rows ListJobs examines per call when it checks filters on the record
// (see ListJobs): 10 × page_size, at least 100 and at most 5,000 (never
// fewer than page_size).
int ListScanLimit(int page_size);

struct JobPage {
  std::vector<JobRecord> records;  // in the query's order
  // Set when more records may match: pass as the next query's cursor.
  std::optional<int64_t> next_cursor;
};

// One change to a job as a change feed reports it. Only the name is
// carried: readers read the job itself from the store, which is the truth.
struct JobChange {
  enum class Kind { kCreated, kUpdated, kCancelRequested, kDeleted };
  Kind kind = Kind::kUpdated;
  std::string name;
};

// What a change feed hands its reader in one go.
struct JobChanges {
  std::vector<JobChange> changes;
  // Changes may have been missed (the feed has just (re)connected, or a
  // notification could not be understood): the reader re-reads everything
  // it cares about. Sent after the feed listens again, so every change that
  // the re-read does not see is reported after it.
  bool resync = false;
  // The feed has just lost its connection: changes are missed from now on,
  // until a batch with `resync`. Sent so that what trusts the feed (the
  // finished-job cache, see TableState::FeedCache) stops at once, not when
  // a reader next asks status().
  bool disconnected = false;
};

// Changes made to a shared store by any process (this one included), as
// they commit. Best effort: while disconnected() changes are missed, and a
// reader must then poll, as it would without a feed; the feed calls back
// with `resync` once it listens again. Destroying it stops it (within about
// a second, longer only while a connection attempt is under way).
class JobChangeFeed {
 public:
  virtual ~JobChangeFeed() = default;
  // OK while the feed listens; else why it does not (changes are missed).
  virtual absl::Status status() const = 0;
  bool connected() const { return status().ok(); }
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Several replicas on one store: starts a feed of the changes every
  // replica makes to jobs; `on_changes` runs on the feed's own thread (it
  // must not block for long). nullptr: this store has no feed (SQLite and
  // memory, which one process uses alone), and a reader polls.
  virtual std::unique_ptr<JobChangeFeed> OpenChangeFeed(
      std::function<void(JobChanges)> on_changes) {
    (void)on_changes;
    return nullptr;
  }

  // Inserts `record` (its job.name must be set and unique) and assigns
  // record.sequence. If job.request_id is non-empty and a job with the same
  // RequestKey (creator and request_id, above) exists, returns it with
  // created=false instead. The write is durable when this returns.
  virtual absl::StatusOr<CreateJobResult> CreateJob(const JobRecord& record) = 0;

  // CreateJob whose write becomes durable with the next durable write of
  // this store (any other call above or below that says "durable"), or with
  // Sync(); until then it survives a crash of the process but not of the
  // machine. For a job whose next step is a durable write anyway (the
  // SUBMITTING mark, before its SyncBlueprint call is sent) this saves one
  // flush to disk, and nothing can have been sent while the job was not
  // durable. SQLite: committed to the write-ahead log with
  // synchronous=NORMAL, which the next commit's fsync of that log covers.
  // Stores without the distinction: CreateJob.
  virtual absl::StatusOr<CreateJobResult> CreateJobSyncLater(const JobRecord& record) {
    return CreateJob(record);
  }

  // Makes every write made so far durable (see CreateJobSyncLater).
  virtual absl::Status Sync() { return absl::OkStatus(); }

  // NotFound if there is no job with this name ("syncJobs/{id}").
  virtual absl::StatusOr<JobRecord> GetJob(const std::string& name) = 0;

  // Replaces the stored record with the same job.name (sequence is kept).
  // NotFound if it does not exist. Durable when this returns.
  virtual absl::Status UpdateJob(const JobRecord& record) = 0;

  // The jobs matching `query`, in its order. InvalidArgument for a
  // page_size that is not positive or a negative cursor.
  //
  // How the work of one call is bounded: state, blueprint_id,
  // source_region, request_id, creator and retry_of are indexed columns in
  // the SQL stores, so a query on them alone reads only matching rows.
  // labels, destination_region, policy and create_time are checked on
  // each record as it is read (a job has many labels and destinations,
  // which would need tables of their own, an index on create_time would
  // not serve a listing in sequence order, and policy lives only in the
  // record, so that stores written before policies need no migration). A
  // query with any of them examines at most ListScanLimit(page_size) rows
  // (of those matching the indexed filters) per call; when it stops there,
  // the page may be short, even empty, and next_cursor is set all the same
  // (AIP-158 allows short pages with a token): callers page on until
  // next_cursor is unset.
  virtual absl::StatusOr<JobPage> ListJobs(const JobQuery& query) = 0;

  // ListJobs for a caller that wants only the jobs (ListSyncJobs): appends
  // the page's jobs to `jobs`, in order, and returns its next_cursor. The
  // SQL stores parse each record straight onto `jobs`' arena when it has
  // one, so the page is never copied; the default moves ListJobs' page. On
  // error `jobs` may hold part of the page.
  virtual absl::StatusOr<std::optional<int64_t>> ListJobsInto(
      const JobQuery& query, google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs);

  // Every open job (IsOpen above: not finished, or a copy still to
  // delete), oldest first.
  virtual absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() = 0;

  // Records, durably, that cancellation of the unfinished job `name` was
  // asked on a replica that does not run it; the leader carries it out.
  // Kept apart from the record UpdateJob writes (and not fenced), so the
  // leader's writes never lose it; read back as JobRecord.cancel_requested
  // by GetJob, ListJobs and ListUnfinishedJobs. NotFound if there is no such
  // job; harmless to repeat.
  virtual absl::Status RequestCancel(const std::string& name) = 0;

  // Deletes the record of a job that is not open (its request key is freed
  // with it). NotFound if there is none; FailedPrecondition if it is open.
  // In one statement, so a job cannot become open meanwhile.
  virtual absl::Status DeleteJob(const std::string& name) = 0;

  // Deletes up to `limit` (> 0, else InvalidArgument) jobs that are not
  // open and whose update_time is before `before`, least recently updated
  // first; returns how many. Jobs without an update_time are kept.
  virtual absl::StatusOr<int> DeleteFinishedJobs(absl::Time before, int limit) = 0;

  // Several replicas on one store: from now on UpdateJob succeeds only while
  // the leader lease still has this epoch and has not expired (checked by
  // the store in the same statement), else FailedPrecondition. nullopt: no
  // check. Stores that only one process can use ignore it.
  virtual void SetWriteFence(std::optional<int64_t> epoch) { (void)epoch; }
};

// "sqlite:PATH" (parent directories are created), "postgres://…" or
// "postgresql://…" (a libpq connection URI; see OpenPostgresJobStore) or
// "memory:". InvalidArgument naming the accepted forms for anything else.
// `health` (SQLite only; may be null) is passed on as SqliteStoreOptions.
absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec,
                                                       StoreHealth* health = nullptr);
// The file of a "sqlite:PATH" spec; "" for other stores.
std::string SqlitePathOf(const std::string& spec);

// `spec` as it may be logged: a PostgreSQL URI's password (userinfo or
// `password=` parameter) is replaced by "****"; other specs are unchanged.
std::string RedactStoreSpec(const std::string& spec);

std::unique_ptr<JobStore> MakeMemoryJobStore();

struct SqliteStoreOptions {
  // Told about every storage error and every commit (see store_health.h);
  // not owned, must outlive the store. Null: no health reporting, no probe.
  StoreHealth* health = nullptr;
  // How often the probe checks the file (and, while unhealthy, writes).
  absl::Duration probe_interval = absl::Seconds(1);
};
absl::StatusOr<std::unique_ptr<JobStore>> OpenSqliteJobStore(const std::string& path);
absl::StatusOr<std::unique_ptr<JobStore>> OpenSqliteJobStore(const std::string& path,
                                                            const SqliteStoreOptions& options);

// PostgreSQL store. `dsn`: a libpq connection string, URI or keyword=value;
// the password may also come from PGPASSWORD or PGPASSFILE (libpq reads
// them). Creates or upgrades the schema (see postgres_connection.cc) under
// an advisory lock, so replicas may start together. Holds up to 4
// connections, reconnects after the server restarts (calls fail with
// Unavailable while it is unreachable) and never waits longer than the
// connect timeout (5 s) or the statement timeout (10 s) plus a few seconds.
// Errors name the server by RedactStoreSpec(dsn), never the password.
absl::StatusOr<std::unique_ptr<JobStore>> OpenPostgresJobStore(const std::string& dsn);

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_STORE_H_
