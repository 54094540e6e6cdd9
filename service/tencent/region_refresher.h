// RegionRefresher: keeps the live region table (regions.h LiveRegions) in
// step with what Lighthouse DescribeRegions says, so a region Tencent adds
// can be synced to without a rebuild. It asks once at Start() and then every
// `interval`, in the background: the answer is fetched and checked first,
// and only a believable one (RegionTable::FromDescribeRegions) replaces the
// table, as a whole, in one pointer swap. A failed call or an unbelievable
// answer keeps the table in use (at first the compiled one), is logged, and
// is counted for the metrics. The calls go through the client's rate
// limiter at background priority, so they never take a slot a caller's job
// is waiting for.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_REGION_REFRESHER_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_REGION_REFRESHER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "service/tencent/lighthouse_client.h"
#include "service/tencent/regions.h"

namespace blueprintsync::tencent {

struct RegionRefresherOptions {
  absl::Duration interval = absl::Hours(1);
  // The region the DescribeRegions call names (any region answers with the
  // whole list; with regional endpoints it also picks the host).
  std::string call_region = "ap-guangzhou";
  // Time one refresh may take, rate-limit wait and retries included.
  absl::Duration call_timeout = absl::Seconds(10);
};

class RegionRefresher {
 public:
  RegionRefresher(RegionRefresherOptions options, LighthouseClient* client, LiveRegions* live);
  ~RegionRefresher();  // Stop()s

  // Starts the background thread; its first refresh is at once.
  void Start();
  // Tells the thread to end after the refresh under way, without waiting:
  // shutdown asks this first, so a slow DescribeRegions never delays the
  // engine's stop, and joins with Stop() last.
  void RequestStop();
  // Wakes and joins the thread; a call in flight ends by its own deadline.
  void Stop();

  // One refresh, on the caller's thread (the thread's loop body; tests).
  absl::Status RefreshOnce();

  int64_t refreshes() const { return refreshes_.load(); }
  int64_t failures() const { return failures_.load(); }
  // Regions in the live table.
  int64_t region_count() const;

 private:
  const RegionRefresherOptions options_;
  LighthouseClient* const client_;
  LiveRegions* const live_;
  absl::Notification stop_;
  std::thread thread_;
  std::atomic<int64_t> refreshes_{0};
  std::atomic<int64_t> failures_{0};
};

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_REGION_REFRESHER_H_
