// PostgreSQL PolicyStore ("postgres://…"): table sync_policies in the jobs'
// database, shared by every replica. API writes (the spec) may come from
// any replica at once; status writes come from the leader only.
//
// How writes stay correct across processes:
//  - Every spec write (Create, UpdateSpec, RequestDelete, Delete) is one
//    transaction that first bumps the one row of sync_policy_changes (the
//    change mark). That row lock serializes spec writes, so Create's count
//    of policies cannot be raced past kMaxPolicies, and since every spec
//    write takes the same lock first, they cannot deadlock each other.
//  - The revision and uid checks are conditions of the write statement
//    itself; only when it writes nothing does a second statement say why
//    (and the transaction rolls back, mark included).
//  - WriteStatus is one statement that sets only the status column, with
//    the uid and (SetWriteFence) the leader lease's epoch in its WHERE, as
//    JobStore::UpdateJob. It never takes the mark's lock, so the leader's
//    status writes never wait for API writes to other policies.
//
// Connections: a pg::ConnectionPool of its own (policy calls are few),
// alongside the job store's.
#include <algorithm>
#include <cstdint>
#include <functional>
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
#include "service/common/error_reason.h"
#include "service/jobs/postgres_connection.h"
#include "service/policies/policy_store.h"
#include "service/policies/policy_store_internal.h"

namespace blueprintsync::policies {
namespace {

namespace pg = jobs::pg;

constexpr int kMaxConnections = 2;
// Rows read per statement by List and ListAll, so that a call holds at most
// this many rows beyond the records it returns (libpq reads a whole result
// into memory).
constexpr int kChunkRows = 100;

// Created if missing under the schema's advisory lock (pg::EnsureTables);
// a later change of these tables needs a migration of its own. Names sort
// by their bytes (COLLATE "C"), as in the other stores, whatever the
// database's collation.
constexpr char kSchema[] = R"sql(
  CREATE TABLE IF NOT EXISTS sync_policies (
    name text COLLATE "C" PRIMARY KEY,
    uid text NOT NULL,
    revision bigint NOT NULL,
    delete_requested boolean NOT NULL DEFAULT false,
    spec bytea NOT NULL,
    status bytea NOT NULL DEFAULT ''::bytea
  );
  CREATE TABLE IF NOT EXISTS sync_policy_changes (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    mark bigint NOT NULL
  );
  INSERT INTO sync_policy_changes (id, mark) VALUES (true, 0) ON CONFLICT (id) DO NOTHING;
)sql";

constexpr char kColumns[] = "name, uid, revision, delete_requested, spec, status";

pg::Param IntOrNull(std::optional<int64_t> v) {
  return v.has_value() ? pg::Param::Int(*v) : pg::Param::Null();
}

class PostgresPolicyStore final : public PolicyStore {
 public:
  explicit PostgresPolicyStore(const std::string& dsn) : pool_(dsn, kMaxConnections) {}

  absl::Status Init() {
    auto conn = pool_.Acquire("open (policies)");
    if (!conn.ok()) return conn.status();
    // The jobs' schema too: the fence reads leader_lease, and the policy
    // store may be the first to open a new database.
    if (auto s = pg::EnsureSchema(**conn, pool_.secrets()); !s.ok()) return s;
    return pg::EnsureTables(**conn, "open (policy tables)", kSchema);
  }

  absl::StatusOr<PolicyRecord> Create(const PolicyRecord& record) override {
    constexpr absl::string_view kOp = "policies: Create";
    absl::StatusOr<store::NewRow> row = store::PrepareCreate(record);
    if (!row.ok()) return row.status();
    const std::string& name = record.spec().name();
    PolicyRecord& stored = row->stored;
    std::string& spec = row->spec;
    std::string& status = row->status;
    auto done = SpecWrite(kOp, [&](pg::Connection& conn) -> absl::StatusOr<bool> {
      auto counted = conn.Exec(kOp,
                               "SELECT (SELECT count(*) FROM sync_policies), "
                               "EXISTS (SELECT 1 FROM sync_policies WHERE name = $1)",
                               {pg::Param::Text(name)});
      if (!counted.ok()) return counted.status();
      if (counted->Bool(0, 1)) return store::AlreadyExists(name);
      if (counted->Int64(0, 0) >= kMaxPolicies) return store::TooMany(name);
      auto inserted = conn.Exec(
          kOp,
          "INSERT INTO sync_policies (name, uid, revision, delete_requested, spec, status) "
          "VALUES ($1, $2, 1, $3, $4, $5)",
          {pg::Param::Text(name), pg::Param::Text(stored.uid()),
           pg::Param::Text(stored.delete_requested() ? "true" : "false"),
           pg::Param::Binary(std::move(spec)), pg::Param::Binary(std::move(status))});
      if (!inserted.ok()) {
        if (conn.last_sqlstate() == "23505") return store::AlreadyExists(name);
        return inserted.status();
      }
      return true;
    });
    if (!done.ok()) return done;
    return stored;
  }

  absl::StatusOr<PolicyRecord> Get(const std::string& name) override {
    constexpr absl::string_view kOp = "policies: Get";
    return pool_.Read<PolicyRecord>(kOp, [&](pg::Connection& conn) -> absl::StatusOr<PolicyRecord> {
      auto found = Find(conn, kOp, name);
      if (!found.ok()) return found.status();
      if (!found->has_value()) return store::NotFound("Get", name);
      return **std::move(found);
    });
  }

  absl::StatusOr<PolicyRecord> UpdateSpec(const v1::SyncPolicy& spec,
                                          std::optional<int64_t> expected_revision) override {
    constexpr absl::string_view kOp = "policies: UpdateSpec";
    if (auto s = store::CheckSpec("UpdateSpec", spec); !s.ok()) return s;
    std::string blob;
    if (!spec.SerializeToString(&blob)) {
      return absl::InternalError(absl::StrCat("UpdateSpec: cannot serialize policy ", spec.name()));
    }
    PolicyRecord result;
    auto done = SpecWrite(kOp, [&](pg::Connection& conn) -> absl::StatusOr<bool> {
      // Only the spec's columns: the status is the controller's.
      auto updated = conn.Exec(
          kOp,
          absl::StrCat("UPDATE sync_policies SET spec = $2, revision = revision + 1 "
                       "WHERE name = $1 AND NOT delete_requested "
                       "AND ($3::bigint IS NULL OR revision = $3::bigint) RETURNING ",
                       kColumns),
          {pg::Param::Text(spec.name()), pg::Param::Binary(blob), IntOrNull(expected_revision)});
      if (!updated.ok()) return updated.status();
      if (updated->rows() == 1) {
        auto record = RowToRecord(*updated, 0, kOp);
        if (!record.ok()) return record.status();
        result = *std::move(record);
        return true;
      }
      auto found = Find(conn, kOp, spec.name());
      if (!found.ok()) return found.status();
      if (!found->has_value()) return store::NotFound("UpdateSpec", spec.name());
      if ((*found)->delete_requested()) return store::Deleting("UpdateSpec", spec.name());
      return store::RevisionMismatch("UpdateSpec", spec.name(), expected_revision.value_or(0),
                                     (*found)->revision());
    });
    if (!done.ok()) return done;
    return result;
  }

  absl::StatusOr<PolicyRecord> RequestDelete(const std::string& name,
                                             std::optional<int64_t> expected_revision) override {
    constexpr absl::string_view kOp = "policies: RequestDelete";
    PolicyRecord result;
    auto done = SpecWrite(kOp, [&](pg::Connection& conn) -> absl::StatusOr<bool> {
      auto updated =
          conn.Exec(kOp,
                    absl::StrCat("UPDATE sync_policies SET delete_requested = true, "
                                 "revision = revision + 1 WHERE name = $1 AND NOT delete_requested "
                                 "AND ($2::bigint IS NULL OR revision = $2::bigint) RETURNING ",
                                 kColumns),
                    {pg::Param::Text(name), IntOrNull(expected_revision)});
      if (!updated.ok()) return updated.status();
      if (updated->rows() == 1) {
        auto record = RowToRecord(*updated, 0, kOp);
        if (!record.ok()) return record.status();
        result = *std::move(record);
        return true;
      }
      auto found = Find(conn, kOp, name);
      if (!found.ok()) return found.status();
      if (!found->has_value()) return store::NotFound("RequestDelete", name);
      if ((*found)->delete_requested()) {
        // Asked already: see MemoryPolicyStore::RequestDelete. Nothing
        // changes, the mark included.
        result = **std::move(found);
        return false;
      }
      return store::RevisionMismatch("RequestDelete", name, expected_revision.value_or(0),
                                     (*found)->revision());
    });
    if (!done.ok()) return done;
    return result;
  }

  absl::Status Delete(const std::string& name, std::optional<int64_t> expected_revision,
                      const std::string& expected_uid) override {
    constexpr absl::string_view kOp = "policies: Delete";
    return SpecWrite(kOp, [&](pg::Connection& conn) -> absl::StatusOr<bool> {
      auto deleted = conn.Exec(
          kOp,
          "DELETE FROM sync_policies WHERE name = $1 "
          "AND ($2::bigint IS NULL OR revision = $2::bigint) "
          "AND ($3 = '' OR uid = $3) RETURNING name",
          {pg::Param::Text(name), IntOrNull(expected_revision), pg::Param::Text(expected_uid)});
      if (!deleted.ok()) return deleted.status();
      if (deleted->rows() == 1) return true;
      auto found = Find(conn, kOp, name);
      if (!found.ok()) return found.status();
      if (!found->has_value()) return store::NotFound("Delete", name);
      if (!expected_uid.empty() && (*found)->uid() != expected_uid) {
        return store::UidMismatch("Delete", name);
      }
      return store::RevisionMismatch("Delete", name, expected_revision.value_or(0),
                                     (*found)->revision());
    });
  }

  absl::Status WriteStatus(const std::string& name, const std::string& uid,
                           const PolicyStatus& status) override {
    constexpr absl::string_view kOp = "policies: WriteStatus";
    if (auto s = store::CheckStatus("WriteStatus", name, status); !s.ok()) return s;
    std::optional<int64_t> fence;
    {
      absl::MutexLock lock(&mu_);
      fence = fence_;
    }
    std::string blob;
    if (!status.SerializeToString(&blob)) {
      return absl::InternalError(
          absl::StrCat("WriteStatus: cannot serialize the status of ", name));
    }
    std::vector<pg::Param> params = {pg::Param::Text(name), pg::Param::Text(uid),
                                     pg::Param::Binary(std::move(blob))};
    // Only the status column: the spec is the API's.
    std::string sql = "UPDATE sync_policies SET status = $3 WHERE name = $1 AND uid = $2";
    if (fence.has_value()) {
      params.push_back(pg::Param::Int(*fence));
      absl::StrAppend(&sql, " AND ", pg::LeaseFenceCondition(static_cast<int>(params.size())));
    }
    sql += " RETURNING name";

    auto conn = pool_.Acquire(kOp);
    if (!conn.ok()) return conn.status();
    auto updated = (*conn)->Exec(kOp, sql, params);
    if (!updated.ok()) return updated.status();
    if (updated->rows() == 1) return absl::OkStatus();
    // Say why: gone, recreated, or the fence did not hold.
    auto found = (*conn)->Exec(kOp, "SELECT uid FROM sync_policies WHERE name = $1",
                               {pg::Param::Text(name)});
    if (!found.ok()) return found.status();
    if (found->rows() == 0) return store::NotFound("WriteStatus", name);
    if (found->Bytes(0, 0) != uid) return store::UidMismatch("WriteStatus", name);
    if (!fence.has_value()) {
      // Deleted and created again with this very uid in between: cannot
      // happen (uids are random), but do not claim a write that was not
      // made.
      return WithReason(absl::AbortedError(absl::StrCat("WriteStatus: policy ", name,
                                                        " changed while being written; try again")),
                        reason::kConcurrentUpdate);
    }
    auto lease = pg::DescribeLease(**conn, kOp);
    if (!lease.ok()) return lease.status();
    return WithReason(absl::FailedPreconditionError(absl::StrCat(
                          "WriteStatus: not the leader: status of policy ", name,
                          " not written: write fence is epoch ", *fence, ", ", *lease)),
                      reason::kNotLeader);
  }

  absl::StatusOr<PolicyPage> List(const PolicyQuery& query) override {
    constexpr absl::string_view kOp = "policies: List";
    if (auto s = store::ValidateQuery(query); !s.ok()) return s;
    store::PageScan scan(query);
    auto status = Scan(kOp, query.after_name, scan.row_limit(),
                       [&](PolicyRecord record) { return scan.Offer(std::move(record)); });
    if (!status.ok()) return status;
    return scan.TakePage();
  }

  absl::StatusOr<std::vector<PolicyRecord>> ListAll() override {
    constexpr absl::string_view kOp = "policies: ListAll";
    std::vector<PolicyRecord> out;
    auto status = Scan(kOp, "", kMaxPolicies, [&](PolicyRecord record) {
      out.push_back(std::move(record));
      return true;
    });
    if (!status.ok()) return status;
    return out;
  }

  absl::StatusOr<int64_t> ChangeMark() override {
    constexpr absl::string_view kOp = "policies: ChangeMark";
    return pool_.Read<int64_t>(kOp, [&](pg::Connection& conn) -> absl::StatusOr<int64_t> {
      auto r = conn.Exec(kOp, "SELECT mark FROM sync_policy_changes");
      if (!r.ok()) return r.status();
      if (r->rows() != 1) {
        return absl::DataLossError(absl::StrCat("postgres policy store ", pool_.secrets().display(),
                                                ": ChangeMark: sync_policy_changes has ", r->rows(),
                                                " rows, not 1"));
      }
      return r->Int64(0, 0);
    });
  }

  void SetWriteFence(std::optional<int64_t> epoch) override {
    absl::MutexLock lock(&mu_);
    fence_ = epoch;
  }

 private:
  // Runs `body` in a transaction that first bumps the change mark (see the
  // top of the file). `body` answers whether it changed anything: then
  // the transaction commits; if not, or on an error (returned), it rolls
  // back. Not retried: a lost COMMIT answer may hide a committed write.
  absl::Status SpecWrite(absl::string_view op,
                         const std::function<absl::StatusOr<bool>(pg::Connection&)>& body) {
    auto conn = pool_.Acquire(op);
    if (!conn.ok()) return conn.status();
    pg::Connection& c = **conn;
    if (auto s = c.ExecScript(op, "BEGIN"); !s.ok()) return s;
    absl::StatusOr<bool> changed = false;
    if (absl::Status bumped = c.Exec(op, "UPDATE sync_policy_changes SET mark = mark + 1").status();
        bumped.ok()) {
      changed = body(c);
    } else {
      changed = bumped;
    }
    if (changed.ok() && *changed) return c.ExecScript(op, "COMMIT");
    // A failed ROLLBACK leaves the connection broken (the pool drops it)
    // and the server rolls back when it goes.
    if (!c.broken()) {
      absl::Status rolled_back = c.ExecScript(op, "ROLLBACK");
      if (changed.ok()) return rolled_back;
    }
    return changed.status();
  }

  // Offers the records after `after`, in name order, to `offer` until it
  // returns false or `limit` rows were read; kChunkRows per statement.
  absl::Status Scan(absl::string_view op, const std::string& after, int64_t limit,
                    const std::function<bool(PolicyRecord)>& offer) {
    std::string cursor = after;
    for (int64_t read = 0; read < limit;) {
      const int64_t chunk = std::min<int64_t>(kChunkRows, limit - read);
      auto rows = pool_.Read<std::vector<PolicyRecord>>(
          op, [&](pg::Connection& conn) -> absl::StatusOr<std::vector<PolicyRecord>> {
            auto r = conn.Exec(op,
                               absl::StrCat("SELECT ", kColumns,
                                            " FROM sync_policies WHERE name > $1 "
                                            "ORDER BY name LIMIT $2"),
                               {pg::Param::Text(cursor), pg::Param::Int(chunk)});
            if (!r.ok()) return r.status();
            std::vector<PolicyRecord> out;
            for (int row = 0; row < r->rows(); ++row) {
              auto record = RowToRecord(*r, row, op);
              if (!record.ok()) return record.status();
              out.push_back(*std::move(record));
            }
            return out;
          });
      if (!rows.ok()) return rows.status();
      for (PolicyRecord& record : *rows) {
        cursor = record.spec().name();
        if (!offer(std::move(record))) return absl::OkStatus();
      }
      if (static_cast<int64_t>(rows->size()) < chunk) return absl::OkStatus();
      read += chunk;
    }
    return absl::OkStatus();
  }

  // The record named `name`, or nullopt.
  absl::StatusOr<std::optional<PolicyRecord>> Find(pg::Connection& conn, absl::string_view op,
                                                   const std::string& name) const {
    auto r = conn.Exec(op, absl::StrCat("SELECT ", kColumns, " FROM sync_policies WHERE name = $1"),
                       {pg::Param::Text(name)});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return std::nullopt;
    auto record = RowToRecord(*r, 0, op);
    if (!record.ok()) return record.status();
    return std::optional<PolicyRecord>(*std::move(record));
  }

  // Columns as kColumns.
  absl::StatusOr<PolicyRecord> RowToRecord(const pg::Result& r, int row,
                                           absl::string_view op) const {
    return store::RecordFromRow(absl::StrCat("postgres policy store ", pool_.secrets().display()),
                                op, r.Bytes(row, 0), r.Bytes(row, 1), r.Int64(row, 2),
                                r.Bool(row, 3), r.Bytes(row, 4), r.Bytes(row, 5));
  }

  pg::ConnectionPool pool_;
  absl::Mutex mu_;
  std::optional<int64_t> fence_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<PolicyStore>> OpenPostgresPolicyStore(const std::string& dsn) {
  auto store = std::make_unique<PostgresPolicyStore>(dsn);
  if (auto s = store->Init(); !s.ok()) return s;
  return store;
}

}  // namespace blueprintsync::policies
