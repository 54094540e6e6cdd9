// The emulator's own table of Lighthouse regions (the 15 regions the
// SyncBlueprint API page lists) with the Chinese-mainland flag. Deliberately
// independent of service/tencent/regions.h so that the emulator checks the
// service's region rules instead of sharing its mistakes.
#ifndef BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_REGIONS_H_
#define BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_REGIONS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace blueprintsync::emulator {

struct EmulatedRegion {
  absl::string_view id;
  absl::string_view name;
  bool china_mainland;
};

// Sorted by id.
const std::vector<EmulatedRegion>& EmulatedRegions();
// nullptr when `id` is not one of EmulatedRegions().
const EmulatedRegion* FindEmulatedRegion(absl::string_view id);

// A region of the emulator's live list (owned strings).
struct RegionEntry {
  std::string id;
  std::string name;
  bool china_mainland = false;
};

// The regions one emulator serves: EmulatedRegions() at first, replaceable
// through the admin API (/_emulator/regions) so a test can add a region
// Tencent "just opened" and see DescribeRegions, SyncBlueprint and the
// region checks follow. Thread-safe; its lock guards only the list.
class RegionList {
 public:
  RegionList();
  std::optional<RegionEntry> Find(absl::string_view id) const;
  std::vector<RegionEntry> All() const;  // sorted by id
  // {"regions":[{"Region":"ap-x","RegionName":"X","IsChinaMainland":false},...]}:
  // 1 to 100 entries, ids of [a-z0-9-] (1-32, starting with a letter), no
  // id twice. Replaces the list; InvalidArgument changes nothing.
  absl::Status Replace(absl::string_view json);
  std::string Json() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<RegionEntry> regions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace blueprintsync::emulator

#endif  // BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_REGIONS_H_
