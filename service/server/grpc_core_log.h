// gRPC core writes its own diagnostics (failed TLS handshakes, malformed
// HTTP/2 from a client, transport errors) as unformatted lines on stderr,
// and an unauthenticated client can make it write them without limit. Once
// RouteGrpcCoreLogs is called they go through the JSON logger instead
// (fields "source":"grpc", "file", "line"), at most `burst` lines at once
// and `per_second` lines a second after that; lines over the limit are
// dropped and counted, and the count is logged with the next line that is
// let through (field "dropped"). gRPC's ERROR lines are logged as "warn":
// they are mostly about what a client did, not something the service
// failed at. GRPC_VERBOSITY still picks which lines gRPC produces.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_GRPC_CORE_LOG_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_GRPC_CORE_LOG_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace blueprintsync::server {

struct CoreLogLimit {
  int burst = 20;
  double per_second = 5;
};

// Installs the route for the whole process. Call before gRPC is used.
void RouteGrpcCoreLogs(CoreLogLimit limit = {});

// The token bucket behind it, exposed for its unit test.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(CoreLogLimit limit);
  // Whether a line at `now` may be written. When it may, `*dropped` is the
  // number of lines refused since the last one let through.
  bool Admit(absl::Time now, uint64_t* dropped);

 private:
  const CoreLogLimit limit_;
  double tokens_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t dropped_ = 0;
};

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_GRPC_CORE_LOG_H_
