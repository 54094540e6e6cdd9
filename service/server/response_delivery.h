// Answers the server has produced but its clients have not taken yet.
//
// gRPC keeps an answer (the response message and its serialized copy) until
// the client has read it: a client that asks for large answers and never
// reads them (an HTTP/2 flow-control window of 0) pins them for as long as
// its connection lasts. ResponseDelivery bounds that memory twice over:
//  - a budget: the serialized bytes of answers handed to gRPC and not yet
//    delivered, in total; an answer that would go over it is not produced
//    and the call is answered RESOURCE_EXHAUSTED instead;
//  - a delivery timeout: a call whose answer is still not delivered this
//    long after it was handed over is cancelled, which frees it.
// Used by the list methods, whose answers are up to megabytes.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_RESPONSE_DELIVERY_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_RESPONSE_DELIVERY_H_

#include <grpcpp/server_context.h>

#include <cstdint>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace blueprintsync::server {

struct ResponseDeliveryOptions {
  int64_t budget_bytes = 32 << 20;               // --response-budget
  absl::Duration timeout = absl::Seconds(30);  // --delivery-timeout
};

class ResponseDelivery {
 public:
  explicit ResponseDelivery(ResponseDeliveryOptions options);
  // Destroy after the gRPC server: every call must have ended.
  ~ResponseDelivery();
  ResponseDelivery(const ResponseDelivery&) = delete;
  ResponseDelivery& operator=(const ResponseDelivery&) = delete;

  // Takes `bytes` of the budget for the answer about to be handed to gRPC on
  // `context`'s call, and starts its delivery clock; a ticket for Release.
  // RESOURCE_EXHAUSTED, saying how much is held and how to get an answer,
  // when the budget cannot take it.
  absl::StatusOr<uint64_t> Reserve(grpc::CallbackServerContext* context, int64_t bytes);

  // The call of `ticket` is done (its reactor's OnDone): gives its bytes
  // back. After it returns, `context` is never touched again.
  void Release(uint64_t ticket);

  int64_t held_bytes() const;
  int64_t timed_out() const;  // calls cancelled by the delivery timeout
  int64_t refused() const;    // answers refused by the budget

 private:
  struct Pending {
    grpc::CallbackServerContext* context;
    int64_t bytes;
    absl::Time deadline;
  };

  void WatchLoop();
  bool AnyDueOrStopping() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const ResponseDeliveryOptions options_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t timed_out_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  // The ticket whose call the watch thread is cancelling (outside mu_), 0
  // for none: Release waits for it, since the call's context must stay
  // alive until TryCancel returns, unless Release runs inside that very
  // TryCancel (gRPC may run the call's OnDone inline).
  uint64_t cancelling_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread::id cancelling_thread_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_RESPONSE_DELIVERY_H_
