// PostgreSQL JobStore ("postgres://…"): the store several replicas share.
//
// Semantics match the SQLite store (the conformance suite checks both).
// Differences worth knowing:
//  - sequence is an identity column: unique and increasing in the order a
//    client creates jobs, with gaps (a rejected insert consumes a value).
//  - `record` holds the JobRecord without its sequence; the column is the
//    truth (it is only known once the row is inserted, and one statement
//    per create is what makes request key dedup race-free across
//    processes: INSERT … ON CONFLICT (request_key) DO NOTHING).
//  - UpdateJob can be fenced by the leader lease (SetWriteFence). DeleteJob
//    and DeleteFinishedJobs are not: they only remove jobs that are not
//    open, which no leader writes any more.
//  - Every write notifies the replicas' change feeds, in its own statement
//    (see postgres_change_feed.h): WITH w AS (<write> RETURNING …) SELECT
//    …, pg_notify(…) FROM w, one notification per row written, sent when
//    the write commits and not at all when it writes nothing.
//
// Connections: a small pool (pg::ConnectionPool, kMaxConnections), so calls
// fail with Unavailable while the server is unreachable and work as soon as
// it is back. Reads are retried once on a fresh connection when the pooled
// one turns out dead; writes are not (the first may have committed).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/error_reason.h"
#include "service/jobs/job_store.h"
#include "service/jobs/postgres_change_feed.h"
#include "service/jobs/postgres_connection.h"
#include "service/jobs/store_query.h"

namespace blueprintsync::jobs {
namespace {

constexpr int kMaxConnections = 4;

using store::Micros;

pg::Param IntOrNull(std::optional<int64_t> v) {
  return v.has_value() ? pg::Param::Int(*v) : pg::Param::Null();
}

// `write` (an INSERT, UPDATE or DELETE … RETURNING sequence, name) with a
// change notification for each row it writes; the answer's first column is
// still the sequence.
std::string Notifying(absl::string_view write, JobChange::Kind kind) {
  return absl::StrCat("WITH w AS (", write, ") SELECT w.sequence, ",
                      pg::JobChangeNotify(kind, "w.name"), " FROM w");
}

class PostgresJobStore final : public JobStore {
 public:
  explicit PostgresJobStore(const std::string& dsn) : dsn_(dsn), pool_(dsn, kMaxConnections) {}

  absl::Status Init() {
    auto conn = Acquire("open");
    if (!conn.ok()) return conn.status();
    return pg::EnsureSchema(**conn, pool_.secrets());
  }

  absl::StatusOr<CreateJobResult> CreateJob(const JobRecord& record) override {
    constexpr absl::string_view kOp = "CreateJob";
    const v1::SyncJob& job = record.job();
    if (job.name().empty()) return absl::InvalidArgumentError("CreateJob: job.name is required");
    auto blob = Serialize(record, kOp);
    if (!blob.ok()) return blob.status();
    std::vector<pg::Param> params = RowParams(record, *std::move(blob));

    auto conn = Acquire(kOp);
    if (!conn.ok()) return conn.status();
    // A request key conflict means the job exists; its row is read by a
    // second statement, which sees it once the conflicting insert committed
    // (ON CONFLICT waited for that). Should the key have moved to another
    // job in between (UpdateJob may change it, DeleteJob free it), the
    // insert is simply tried again.
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto inserted = (*conn)->Exec(
          kOp,
          Notifying("INSERT INTO jobs (name, request_key, request_id, creator, retry_of, state, "
                    "open, blueprint_id, source_region, create_time_us, update_time_us, record) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
                    "ON CONFLICT (request_key) DO NOTHING RETURNING sequence, name",
                    JobChange::Kind::kCreated),
          params);
      if (!inserted.ok()) {
        if ((*conn)->last_sqlstate() == "23505") {
          return absl::AlreadyExistsError(
              absl::StrCat("CreateJob: job ", job.name(), " already exists"));
        }
        return inserted.status();
      }
      if (inserted->rows() == 1) {
        JobRecord stored = record;
        stored.set_sequence(inserted->Int64(0, 0));
        return CreateJobResult{std::move(stored), true};
      }
      auto existing =
          (*conn)->Exec(kOp, "SELECT sequence, name, record, cancel_requested FROM jobs WHERE request_key = $1",
                        {pg::Param::Text(RequestKey(job))});
      if (!existing.ok()) return existing.status();
      if (existing->rows() == 1) {
        auto found = RowToRecord(*existing, 0, kOp);
        if (!found.ok()) return found.status();
        return CreateJobResult{*std::move(found), false};
      }
    }
    return absl::AbortedError(absl::StrCat("CreateJob: the job holding request_id of ", job.name(),
                                           " kept changing; try again"));
  }

  absl::StatusOr<JobRecord> GetJob(const std::string& name) override {
    constexpr absl::string_view kOp = "GetJob";
    return Read<JobRecord>(kOp, [&](pg::Connection& conn) -> absl::StatusOr<JobRecord> {
      auto r = conn.Exec(kOp, "SELECT sequence, name, record, cancel_requested FROM jobs WHERE name = $1",
                         {pg::Param::Text(name)});
      if (!r.ok()) return r.status();
      if (r->rows() == 0) {
        return absl::NotFoundError(absl::StrCat("GetJob: job ", name, " not found"));
      }
      return RowToRecord(*r, 0, kOp);
    });
  }

  absl::Status UpdateJob(const JobRecord& record) override {
    constexpr absl::string_view kOp = "UpdateJob";
    const v1::SyncJob& job = record.job();
    std::optional<int64_t> fence;
    {
      absl::MutexLock lock(&mu_);
      fence = fence_;
    }
    auto blob = Serialize(record, kOp);
    if (!blob.ok()) return blob.status();
    std::vector<pg::Param> params = RowParams(record, *std::move(blob));
    std::string sql =
        "UPDATE jobs SET request_key = $2, request_id = $3, creator = $4, retry_of = $5, "
        "state = $6, open = $7, blueprint_id = $8, source_region = $9, create_time_us = $10, "
        "update_time_us = $11, record = $12 WHERE name = $1";
    if (fence.has_value()) {
      params.push_back(pg::Param::Int(*fence));
      absl::StrAppend(&sql, " AND ", pg::LeaseFenceCondition(static_cast<int>(params.size())));
    }
    sql += " RETURNING sequence, name";

    auto conn = Acquire(kOp);
    if (!conn.ok()) return conn.status();
    auto updated = (*conn)->Exec(kOp, Notifying(sql, JobChange::Kind::kUpdated), params);
    if (!updated.ok()) {
      if ((*conn)->last_sqlstate() == "23505") {
        return absl::AlreadyExistsError(
            absl::StrCat("UpdateJob: another job already has the request_id of ", job.name()));
      }
      return updated.status();
    }
    if (updated->rows() == 1) return absl::OkStatus();
    if (!fence.has_value()) {
      return absl::NotFoundError(absl::StrCat("UpdateJob: job ", job.name(), " not found"));
    }
    // Say why: no such job, or the fence did not hold.
    auto exists =
        (*conn)->Exec(kOp, "SELECT 1 FROM jobs WHERE name = $1", {pg::Param::Text(job.name())});
    if (!exists.ok()) return exists.status();
    if (exists->rows() == 0) {
      return absl::NotFoundError(absl::StrCat("UpdateJob: job ", job.name(), " not found"));
    }
    auto lease = pg::DescribeLease(**conn, kOp);
    if (!lease.ok()) return lease.status();
    return WithReason(absl::FailedPreconditionError(absl::StrCat(
                          "UpdateJob: not the leader: job ", job.name(),
                          " not written: write fence is epoch ", *fence, ", ", *lease)),
                      reason::kNotLeader);
  }

  absl::StatusOr<JobPage> ListJobs(const JobQuery& query) override {
    constexpr absl::string_view kOp = "ListJobs";
    if (auto s = store::ValidateQuery(query); !s.ok()) return s;
    const ListSql list = ListStatement(query);
    return Read<JobPage>(kOp, [&](pg::Connection& conn) -> absl::StatusOr<JobPage> {
      auto r = conn.Exec(kOp, list.sql, list.params);
      if (!r.ok()) return r.status();
      store::PageScan scan(query);
      for (int row = 0; row < r->rows(); ++row) {
        absl::StatusOr<bool> more = scan.OfferRow(
            r->Int64(row, 0), [&](JobRecord* record) { return ParseRowInto(*r, row, kOp, record); });
        if (!more.ok()) return more.status();
        if (!*more) break;
      }
      return scan.TakePage();
    });
  }

  absl::StatusOr<std::optional<int64_t>> ListJobsInto(
      const JobQuery& query, google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs) override {
    constexpr absl::string_view kOp = "ListJobs";
    if (auto s = store::ValidateQuery(query); !s.ok()) return s;
    const ListSql list = ListStatement(query);
    // The page is appended only once the query has answered, so a retry on
    // a fresh connection (Read) never appends twice.
    auto r = Read<pg::Result>(kOp, [&](pg::Connection& conn) -> absl::StatusOr<pg::Result> {
      return conn.Exec(kOp, list.sql, list.params);
    });
    if (!r.ok()) return r.status();
    store::PageScan scan(query);
    for (int row = 0; row < r->rows(); ++row) {
      absl::StatusOr<bool> more = scan.OfferInto(
          r->Int64(row, 0),
          [&](JobRecord* record) { return ParseRowInto(*r, row, kOp, record); }, jobs);
      if (!more.ok()) return more.status();
      if (!*more) break;
    }
    return scan.next_cursor();
  }

  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override {
    constexpr absl::string_view kOp = "ListUnfinishedJobs";
    using Records = std::vector<JobRecord>;
    return Read<Records>(kOp, [&](pg::Connection& conn) -> absl::StatusOr<Records> {
      auto r =
          conn.Exec(kOp, "SELECT sequence, name, record, cancel_requested FROM jobs WHERE open ORDER BY sequence");
      if (!r.ok()) return r.status();
      Records out;
      for (int row = 0; row < r->rows(); ++row) {
        auto record = RowToRecord(*r, row, kOp);
        if (!record.ok()) return record.status();
        out.push_back(*std::move(record));
      }
      return out;
    });
  }

  absl::Status RequestCancel(const std::string& name) override {
    constexpr absl::string_view kOp = "RequestCancel";
    auto conn = Acquire(kOp);
    if (!conn.ok()) return conn.status();
    // Not fenced: any replica may ask; only the leader acts on it.
    auto updated = (*conn)->Exec(
        kOp,
        Notifying("UPDATE jobs SET cancel_requested = true WHERE name = $1 RETURNING sequence, name",
                  JobChange::Kind::kCancelRequested),
        {pg::Param::Text(name)});
    if (!updated.ok()) return updated.status();
    if (updated->rows() == 0) {
      return absl::NotFoundError(absl::StrCat("RequestCancel: job ", name, " not found"));
    }
    return absl::OkStatus();
  }

  absl::Status DeleteJob(const std::string& name) override {
    constexpr absl::string_view kOp = "DeleteJob";
    auto conn = Acquire(kOp);
    if (!conn.ok()) return conn.status();
    // The condition on `open` is re-checked on the newest version of the
    // row should a concurrent update win, so an open job is never deleted.
    // When nothing was deleted, a second statement says why; should the
    // job have closed in between, deleting is simply tried again.
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto deleted = (*conn)->Exec(
          kOp,
          Notifying("DELETE FROM jobs WHERE name = $1 AND NOT open RETURNING sequence, name",
                    JobChange::Kind::kDeleted),
          {pg::Param::Text(name)});
      if (!deleted.ok()) return deleted.status();
      if (deleted->rows() == 1) return absl::OkStatus();
      auto found = (*conn)->Exec(kOp, "SELECT sequence, name, record, cancel_requested FROM jobs WHERE name = $1",
                                 {pg::Param::Text(name)});
      if (!found.ok()) return found.status();
      if (found->rows() == 0) {
        return absl::NotFoundError(absl::StrCat("DeleteJob: job ", name, " not found"));
      }
      auto record = RowToRecord(*found, 0, kOp);
      if (!record.ok()) return record.status();
      if (IsOpen(*record)) return store::OpenJobError(record->job());
    }
    return absl::AbortedError(
        absl::StrCat("DeleteJob: job ", name, " kept changing while being deleted; try again"));
  }

  absl::StatusOr<int> DeleteFinishedJobs(absl::Time before, int limit) override {
    constexpr absl::string_view kOp = "DeleteFinishedJobs";
    if (limit <= 0) {
      return absl::InvalidArgumentError("DeleteFinishedJobs: limit must be positive");
    }
    auto conn = Acquire(kOp);
    if (!conn.ok()) return conn.status();
    // SKIP LOCKED: a job the leader is writing right now is left for the
    // next round instead of making retention wait; the outer NOT open is
    // re-checked on the newest row version.
    auto deleted = (*conn)->Exec(
        kOp,
        Notifying("DELETE FROM jobs WHERE NOT open AND sequence IN (SELECT sequence FROM jobs "
                  "WHERE NOT open AND update_time_us < $1 ORDER BY update_time_us, sequence "
                  "LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING sequence, name",
                  JobChange::Kind::kDeleted),
        {pg::Param::Int(absl::ToUnixMicros(before)), pg::Param::Int(limit)});
    if (!deleted.ok()) return deleted.status();
    return deleted->rows();
  }

  void SetWriteFence(std::optional<int64_t> epoch) override {
    absl::MutexLock lock(&mu_);
    fence_ = epoch;
  }

  std::unique_ptr<JobChangeFeed> OpenChangeFeed(
      std::function<void(JobChanges)> on_changes) override {
    return pg::StartPostgresChangeFeed(dsn_, std::move(on_changes));
  }

 private:
  absl::StatusOr<pg::ConnectionPool::Loan> Acquire(absl::string_view op) {
    return pool_.Acquire(op);
  }

  template <typename T, typename F>
  absl::StatusOr<T> Read(absl::string_view op, F f) {
    return pool_.Read<T>(op, std::move(f));
  }

  absl::StatusOr<std::string> Serialize(const JobRecord& record, absl::string_view op) const {
    JobRecord copy = record;
    copy.clear_sequence();
    std::string blob;
    if (!copy.SerializeToString(&blob)) {
      return absl::InternalError(
          absl::StrCat(op, ": cannot serialize the record of job ", record.job().name()));
    }
    return blob;
  }

  // $1 name, $2 request_key, $3 request_id, $4 creator, $5 retry_of,
  // $6 state, $7 open, $8 blueprint_id, $9 source_region, $10 create_time_us,
  // $11 update_time_us, $12 record.
  static std::vector<pg::Param> RowParams(const JobRecord& record, std::string blob) {
    const v1::SyncJob& job = record.job();
    return {pg::Param::Text(job.name()),
            // NULL, not "": many jobs have no request_id, and the UNIQUE
            // constraint must not apply to them.
            pg::Param::TextOrNull(RequestKey(job)), pg::Param::TextOrNull(job.request_id()),
            pg::Param::Text(job.creator()), pg::Param::Text(job.retry_of()),
            pg::Param::Int(job.state()), pg::Param::Text(IsOpen(job) ? "true" : "false"),
            pg::Param::Text(job.blueprint_id()), pg::Param::Text(job.source_region()),
            IntOrNull(Micros(job.has_create_time(), job.create_time())),
            IntOrNull(Micros(job.has_update_time(), job.update_time())),
            pg::Param::Binary(std::move(blob))};
  }

  struct ListSql {
    std::string sql;
    std::vector<pg::Param> params;
  };

  // ListJobs' statement: the column filters in SQL, at most the scan's
  // row_limit() rows; the scan checks the other filters.
  static ListSql ListStatement(const JobQuery& query) {
    ListSql out;
    std::vector<pg::Param>& params = out.params;
    std::string& sql = out.sql;
    params.push_back(pg::Param::Int(query.cursor != 0    ? query.cursor
                                    : query.newest_first ? INT64_MAX
                                                         : 0));
    sql = absl::StrCat("SELECT sequence, name, record, cancel_requested FROM jobs WHERE sequence ",
                       query.newest_first ? "<" : ">", " $1");
    auto add = [&](absl::string_view column, pg::Param p) {
      params.push_back(std::move(p));
      absl::StrAppend(&sql, " AND ", column, " = $", params.size());
    };
    if (query.state.has_value()) add("state", pg::Param::Int(*query.state));
    if (query.blueprint_id.has_value()) add("blueprint_id", pg::Param::Text(*query.blueprint_id));
    if (query.source_region.has_value()) {
      add("source_region", pg::Param::Text(*query.source_region));
    }
    if (query.request_id.has_value()) {
      // A job without a request_id has NULL there, and "" means those jobs.
      if (query.request_id->empty()) {
        sql += " AND request_id IS NULL";
      } else {
        add("request_id", pg::Param::Text(*query.request_id));
      }
    }
    if (query.creator.has_value()) add("creator", pg::Param::Text(*query.creator));
    if (query.retry_of.has_value()) add("retry_of", pg::Param::Text(*query.retry_of));
    params.push_back(pg::Param::Int(store::PageScan(query).row_limit()));
    absl::StrAppend(&sql, " ORDER BY sequence ", query.newest_first ? "DESC" : "ASC", " LIMIT $",
                    params.size());
    return out;
  }

  // Columns: 0 sequence, 1 name, 2 record, 3 cancel_requested (optional).
  absl::StatusOr<JobRecord> RowToRecord(const pg::Result& r, int row, absl::string_view op) const {
    JobRecord record;
    if (absl::Status s = ParseRowInto(r, row, op, &record); !s.ok()) return s;
    return record;
  }

  // The same, parsed into `record` (which may live on an arena).
  absl::Status ParseRowInto(const pg::Result& r, int row, absl::string_view op,
                            JobRecord* record) const {
    const absl::string_view name = r.View(row, 1);
    const absl::string_view blob = r.View(row, 2);
    if (!record->ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
      return absl::DataLossError(absl::StrCat("postgres job store ", pool_.secrets().display(), ": ", op,
                                              ": the stored record of job ", name,
                                              " does not parse"));
    }
    if (record->job().name() != name) {
      return absl::DataLossError(absl::StrCat("postgres job store ", pool_.secrets().display(), ": ", op,
                                              ": the stored record of job ", name, " is for job \"",
                                              record->job().name(), "\""));
    }
    record->set_sequence(r.Int64(row, 0));
    record->set_cancel_requested(r.columns() > 3 && r.Bool(row, 3));
    return absl::OkStatus();
  }

  const std::string dsn_;  // for the change feed's own connection
  pg::ConnectionPool pool_;
  absl::Mutex mu_;
  std::optional<int64_t> fence_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> OpenPostgresJobStore(const std::string& dsn) {
  auto store = std::make_unique<PostgresJobStore>(dsn);
  if (auto s = store->Init(); !s.ok()) return s;
  return store;
}

}  // namespace blueprintsync::jobs
