#include "service/jobs/leader_elector.h"

#include <unistd.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/common/log.h"

namespace blueprintsync::jobs {

LeaderElector::LeaderElector(LeaderElectorOptions options, LeaseBackend* backend)
    : options_(std::move(options)), backend_(backend) {}

LeaderElector::~LeaderElector() { Stop(); }

absl::Status LeaderElector::Validate() const {
  if (options_.holder.empty()) return absl::InvalidArgumentError("leader holder id is empty");
  if (options_.renew_interval <= absl::ZeroDuration() || options_.margin <= absl::ZeroDuration() ||
      options_.renew_interval + options_.margin >= options_.lease) {
    return absl::InvalidArgumentError(
        absl::StrCat("leader lease ", absl::FormatDuration(options_.lease),
                     " must exceed renew interval ", absl::FormatDuration(options_.renew_interval),
                     " + safety margin ", absl::FormatDuration(options_.margin)));
  }
  return absl::OkStatus();
}

void LeaderElector::Start() {
  if (started_) return;
  started_ = true;
  Round();
  thread_ = std::thread([this] { Loop(); });
}

void LeaderElector::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  bool held = false;
  {
    absl::MutexLock lock(&mu_);
    held = epoch_ != 0;
    epoch_ = 0;
  }
  // Released even if no epoch was recorded: a round that acquired the lease
  // while stopping did not record it. Release is a no-op for a non-holder.
  if (started_) {
    absl::Status s = backend_->Release(options_.holder);
    if (s.ok()) {
      if (held) log::Info("leadership released", {{"holder", options_.holder}});
    } else {
      log::Warn("could not release leadership; it expires on its own", {{"error", s.message()}});
    }
  }
}

int64_t LeaderElector::Term() const {
  absl::MutexLock lock(&mu_);
  if (epoch_ == 0 || std::chrono::steady_clock::now() >= valid_until_) return 0;
  return epoch_;
}

absl::Time LeaderElector::ValidUntil(int64_t term) const {
  absl::MutexLock lock(&mu_);
  const SteadyTime now = std::chrono::steady_clock::now();
  if (term == 0 || epoch_ != term || now >= valid_until_) return absl::InfinitePast();
  return absl::Now() + absl::FromChrono(valid_until_ - now);
}

bool LeaderElector::store_reachable() const {
  absl::MutexLock lock(&mu_);
  return reachable_;
}

void LeaderElector::Round() {
  // The lease runs from no earlier than this instant (the database computes
  // its expiry when it executes the statement, which is later).
  const SteadyTime sent = std::chrono::steady_clock::now();
  absl::StatusOr<LeaseBackend::State> r =
      backend_->TryAcquireOrRenew(options_.holder, options_.lease);
  absl::MutexLock lock(&mu_);
  if (stop_) return;
  const int64_t before = epoch_;
  const bool was_reachable = reachable_;
  if (!r.ok()) {
    reachable_ = false;
    // Keep the epoch: Term() turns 0 by itself when the lease may have run
    // out. A later successful renewal of the same epoch continues it.
    if (was_reachable || before != 0) {
      log::Warn("job store unreachable for the leader lease",
                {{"error", r.status().message()},
                 {"leader", before != 0 ? "yes; stops acting before the lease expires" : "no"}});
    }
    return;
  }
  reachable_ = true;
  if (!was_reachable) log::Info("job store reachable for the leader lease");
  if (r->leader) {
    epoch_ = r->epoch;
    valid_until_ = sent + absl::ToChronoNanoseconds(options_.lease - options_.margin);
    if (before != r->epoch) {
      log::Info("became leader: this replica now submits and tracks jobs",
                {{"holder", options_.holder}, {"epoch", r->epoch}});
    }
  } else {
    epoch_ = 0;
    if (before != 0) {
      log::Warn("lost leadership to another replica",
                {{"epoch", before}, {"current_epoch", r->epoch}});
    }
  }
}

void LeaderElector::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.renew_interval);
    if (stop_) break;
    mu_.Unlock();
    Round();
    mu_.Lock();
  }
}

std::string DefaultHolderId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device rd;
  return absl::StrFormat("%s/%d/%08x", host[0] ? host : "unknown", static_cast<int>(getpid()),
                         static_cast<uint32_t>(rd()));
}

}  // namespace blueprintsync::jobs
