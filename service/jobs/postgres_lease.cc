#include "service/jobs/postgres_lease.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace blueprintsync::jobs {

PostgresLeaderLease::PostgresLeaderLease(const std::string& dsn, PostgresLeaseOptions options)
    : dsn_(dsn),
      secrets_(dsn),
      connect_options_{std::min(absl::Seconds(5), options.call_timeout), options.call_timeout,
                       // Renewals are frequent: give up soon after the server should have.
                       std::min(absl::Seconds(1), options.call_timeout)} {}

PostgresLeaderLease::~PostgresLeaderLease() {
  absl::MutexLock lock(&mu_);
  conn_.reset();
}

absl::StatusOr<std::unique_ptr<PostgresLeaderLease>> PostgresLeaderLease::Open(
    const std::string& dsn, PostgresLeaseOptions options) {
  std::unique_ptr<PostgresLeaderLease> lease(new PostgresLeaderLease(dsn, options));
  absl::MutexLock lock(&lease->mu_);
  auto conn = lease->Conn();
  if (!conn.ok()) return conn.status();
  if (auto s = pg::EnsureSchema(**conn, lease->secrets_); !s.ok()) return s;
  return lease;
}

absl::StatusOr<pg::Connection*> PostgresLeaderLease::Conn() {
  if (conn_ != nullptr && !conn_->Healthy()) conn_.reset();
  if (conn_ == nullptr) {
    auto opened = pg::Connection::Open(dsn_, secrets_, connect_options_, "leader lease");
    if (!opened.ok()) return opened.status();
    conn_ = *std::move(opened);
  }
  return conn_.get();
}

absl::StatusOr<LeaseBackend::State> PostgresLeaderLease::TryAcquireOrRenew(
    const std::string& holder, absl::Duration lease) {
  constexpr absl::string_view kOp = "leader lease: acquire or renew";
  if (holder.empty()) return absl::InvalidArgumentError("leader lease: empty holder");
  if (lease < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat("leader lease: lease must be at least 1ms, got ",
                                                   absl::FormatDuration(lease)));
  }
  absl::MutexLock lock(&mu_);
  auto conn = Conn();
  if (!conn.ok()) return conn.status();
  // One statement: the upsert takes the lease if it is free or ours, and
  // otherwise the lease row as it stands is returned (the outer SELECT sees
  // the row from before the CTE, which changed nothing in that case).
  auto r = (*conn)->Exec(
      kOp,
      "WITH taken AS ("
      "  INSERT INTO leader_lease AS l (id, holder, epoch, acquired_at, renewed_at, expires_at)"
      "  VALUES (true, $1, 1, now(), now(), now() + $2::bigint * interval '1 microsecond')"
      "  ON CONFLICT (id) DO UPDATE SET"
      "    epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()"
      "                 THEN l.epoch ELSE l.epoch + 1 END,"
      "    acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()"
      "                       THEN l.acquired_at ELSE now() END,"
      "    holder = EXCLUDED.holder,"
      "    renewed_at = now(),"
      "    expires_at = EXCLUDED.expires_at"
      "  WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()"
      "  RETURNING l.epoch"
      ")"
      "SELECT true, epoch FROM taken "
      "UNION ALL "
      "SELECT false, epoch FROM leader_lease WHERE NOT EXISTS (SELECT 1 FROM taken)",
      {pg::Param::Text(holder), pg::Param::Int(absl::ToInt64Microseconds(lease))});
  if (!r.ok()) return r.status();
  if (r->rows() == 1) return State{r->Bool(0, 0), r->Int64(0, 1)};
  // No row in our snapshot, yet the insert conflicted: another replica
  // created the lease concurrently (and holds it). Read what it wrote.
  auto now = (*conn)->Exec(kOp, "SELECT epoch FROM leader_lease");
  if (!now.ok()) return now.status();
  return State{false, now->rows() == 1 ? now->Int64(0, 0) : 0};
}

absl::Status PostgresLeaderLease::Release(const std::string& holder) {
  constexpr absl::string_view kOp = "leader lease: release";
  absl::MutexLock lock(&mu_);
  auto conn = Conn();
  if (!conn.ok()) return conn.status();
  return (*conn)
      ->Exec(kOp,
             "UPDATE leader_lease SET expires_at = now() WHERE holder = $1 AND expires_at > now()",
             {pg::Param::Text(holder)})
      .status();
}

absl::StatusOr<PostgresLeaderLease::Snapshot> PostgresLeaderLease::Inspect() {
  constexpr absl::string_view kOp = "leader lease: inspect";
  absl::MutexLock lock(&mu_);
  auto conn = Conn();
  if (!conn.ok()) return conn.status();
  auto r = (*conn)->Exec(kOp,
                         "SELECT holder, epoch, "
                         "(EXTRACT(EPOCH FROM (expires_at - clock_timestamp())) * 1000000)::bigint "
                         "FROM leader_lease");
  if (!r.ok()) return r.status();
  Snapshot s;
  if (r->rows() == 0) return s;
  s.exists = true;
  s.holder = r->Bytes(0, 0);
  s.epoch = r->Int64(0, 1);
  s.remaining = absl::Microseconds(r->Int64(0, 2));
  return s;
}

absl::StatusOr<std::unique_ptr<LeaseBackend>> OpenPostgresLeaderLease(
    const std::string& dsn, PostgresLeaseOptions options) {
  auto lease = PostgresLeaderLease::Open(dsn, options);
  if (!lease.ok()) return lease.status();
  return std::unique_ptr<LeaseBackend>(*std::move(lease));
}

}  // namespace blueprintsync::jobs
