// CallObserver: how the Lighthouse client reports what it does upstream
// (each attempt with its outcome and duration, each retry) to whoever counts
// it, without the Tencent layer depending on a metrics library. The
// production implementation lives in service/metrics; MakeLighthouseClient()
// plugs it in when LighthouseClientOptions::observer is set.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_CALL_OBSERVER_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_CALL_OBSERVER_H_

#include <array>
#include <string_view>

#include "absl/time/time.h"

namespace blueprintsync::tencent {

// Every action the Lighthouse client reports (see lighthouse_client.cc), so
// an observer can show each one from the start, before its first call.
inline constexpr std::array<std::string_view, 4> kObservedActions = {
    "SyncBlueprint", "DescribeBlueprints", "DescribeRegions", "DeleteBlueprints"};

class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // One attempt of `action` ended: sent and answered, or refused by the
  // single-attempt client before it was sent. Waiting for rate-limit
  // capacity is not part of `duration`. `code` is "OK" or the ApiError code
  // ("RequestLimitExceeded", "ClientError.NetworkError", ...); `throttled`
  // when Tencent answered that the call was rate limited. Called on the
  // calling thread; must be quick and thread-safe.
  virtual void OnAttempt(std::string_view action, std::string_view code, bool throttled,
                         absl::Duration duration) = 0;
  // The retrying layer is about to send `action` again after a failed attempt.
  virtual void OnRetry(std::string_view action) = 0;
};

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_CALL_OBSERVER_H_
