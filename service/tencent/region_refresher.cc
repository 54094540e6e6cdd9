#include "service/tencent/region_refresher.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/common/log.h"

namespace blueprintsync::tencent {
namespace {

// Ids in `now` that `before` lacks: what a log reader wants to know.
std::string Added(const RegionTable& before, const RegionTable& now) {
  std::vector<std::string> added;
  for (const RegionInfo& r : now.regions()) {
    if (before.Find(r.id) == nullptr) added.push_back(r.id);
  }
  return absl::StrJoin(added, ",");
}

std::string Removed(const RegionTable& before, const RegionTable& now) {
  return Added(now, before);
}

}  // namespace

RegionRefresher::RegionRefresher(RegionRefresherOptions options, LighthouseClient* client,
                                 LiveRegions* live)
    : options_(std::move(options)), client_(client), live_(live) {}

RegionRefresher::~RegionRefresher() { Stop(); }

void RegionRefresher::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    do {
      (void)RefreshOnce();
    } while (!stop_.WaitForNotificationWithTimeout(options_.interval));
  });
}

void RegionRefresher::RequestStop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
}

void RegionRefresher::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

int64_t RegionRefresher::region_count() const {
  return static_cast<int64_t>(live_->Get()->regions().size());
}

absl::Status RegionRefresher::RefreshOnce() {
  CallOptions call;
  call.deadline = absl::Now() + options_.call_timeout;
  call.priority = CallPriority::kBackground;
  // No lock is held here: the live table stays readable during the call.
  absl::StatusOr<DescribeRegionsResponse> answer =
      client_->DescribeRegions(options_.call_region, call);
  absl::StatusOr<std::shared_ptr<const RegionTable>> table =
      answer.ok() ? RegionTable::FromDescribeRegions(*answer)
                  : absl::StatusOr<std::shared_ptr<const RegionTable>>(answer.status());
  const std::shared_ptr<const RegionTable> before = live_->Get();
  if (!table.ok()) {
    failures_.fetch_add(1);
    const int64_t count = static_cast<int64_t>(before->regions().size());
    log::Warn(
        "region refresh failed; keeping the region table in use",
        {{"error", table.status().message()}, {"table", before->origin()}, {"regions", count}});
    return table.status();
  }
  refreshes_.fetch_add(1);
  if ((*table)->SameRegionsAs(*before) && before->origin() == (*table)->origin()) {
    return absl::OkStatus();
  }
  live_->Set(*table);
  const int64_t count = static_cast<int64_t>((*table)->regions().size());
  const std::string added = Added(*before, **table);
  const std::string removed = Removed(*before, **table);
  log::Info("region table refreshed from DescribeRegions",
            {{"regions", count}, {"added", added}, {"removed", removed}});
  return absl::OkStatus();
}

}  // namespace blueprintsync::tencent
