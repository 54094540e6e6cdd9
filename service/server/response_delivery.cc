#include "service/server/response_delivery.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "service/common/error_reason.h"
#include "service/common/log.h"

namespace blueprintsync::server {
namespace {

std::string MiB(int64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

}  // namespace

ResponseDelivery::ResponseDelivery(ResponseDeliveryOptions options) : options_(options) {
  watcher_ = std::thread([this] { WatchLoop(); });
}

ResponseDelivery::~ResponseDelivery() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  watcher_.join();
}

absl::StatusOr<uint64_t> ResponseDelivery::Reserve(grpc::CallbackServerContext* context,
                                                   int64_t bytes) {
  absl::MutexLock lock(&mu_);
  // One answer larger than the whole budget is still allowed when nothing
  // else is held, so that no page size is refused for ever.
  if (held_bytes_ > 0 && held_bytes_ + bytes > options_.budget_bytes) {
    ++refused_;
    return WithReason(
        absl::ResourceExhaustedError(absl::StrCat(
            "the server holds ", MiB(held_bytes_),
            " of answers its clients have not read yet "
            "(limit ",
            MiB(options_.budget_bytes), ", --response-budget); this answer (", MiB(bytes),
            ") would go over it: retry later or with a smaller page_size")),
        reason::kResponseBudgetExceeded);
  }
  const uint64_t ticket = next_ticket_++;
  pending_[ticket] = Pending{context, bytes, absl::Now() + options_.timeout};
  held_bytes_ += bytes;
  return ticket;
}

void ResponseDelivery::Release(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  const std::thread::id self = std::this_thread::get_id();
  auto not_cancelling = [this, ticket, self]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return cancelling_ != ticket || cancelling_thread_ == self;
  };
  mu_.Await(absl::Condition(&not_cancelling));
  auto it = pending_.find(ticket);
  if (it == pending_.end()) return;
  held_bytes_ -= it->second.bytes;
  pending_.erase(it);
}

int64_t ResponseDelivery::held_bytes() const {
  absl::MutexLock lock(&mu_);
  return held_bytes_;
}

int64_t ResponseDelivery::timed_out() const {
  absl::MutexLock lock(&mu_);
  return timed_out_;
}

int64_t ResponseDelivery::refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

bool ResponseDelivery::AnyDueOrStopping() const {
  if (stopping_) return true;
  const absl::Time now = absl::Now();
  for (const auto& [ticket, p] : pending_) {
    if (p.deadline <= now) return true;
  }
  return false;
}

void ResponseDelivery::WatchLoop() {
  // Checked a few times per timeout: a call is cancelled at most a quarter
  // of the timeout (at most 1 s) late.
  const absl::Duration tick = std::clamp(options_.timeout / 4, absl::Milliseconds(50),
                                         absl::Seconds(1));
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(this, &ResponseDelivery::AnyDueOrStopping), tick);
    if (stopping_) break;
    const absl::Time now = absl::Now();
    std::vector<uint64_t> due;
    for (const auto& [ticket, p] : pending_) {
      if (p.deadline <= now) due.push_back(ticket);
    }
    int64_t cancelled = 0;
    for (uint64_t ticket : due) {
      auto it = pending_.find(ticket);
      if (it == pending_.end()) continue;  // done while this thread was cancelling another
      grpc::CallbackServerContext* context = it->second.context;
      // Not cancelled twice: the call stays pending until its OnDone.
      it->second.deadline = absl::InfiniteFuture();
      cancelling_ = ticket;
      cancelling_thread_ = std::this_thread::get_id();
      ++timed_out_;
      ++cancelled;
      mu_.Unlock();
      context->TryCancel();
      mu_.Lock();
      cancelling_ = 0;
    }
    if (cancelled > 0) {
      const int64_t held = held_bytes_;
      mu_.Unlock();
      log::Warn("cancelled calls whose clients did not read their answers",
                {{"calls", cancelled},
                 {"delivery_timeout_s", absl::ToDoubleSeconds(options_.timeout)},
                 {"held_bytes", held}});
      mu_.Lock();
    }
  }
}

}  // namespace blueprintsync::server
