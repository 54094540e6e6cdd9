// The emulator's own table of Lighthouse regions (the 15 regions the
// SyncBlueprint API page lists) with the Chinese-mainland flag. Deliberately
// independent of service/tencent/regions.h so that the emulator checks the
// service's region rules instead of sharing its mistakes.
#ifndef BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_REGIONS_H_
#define BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_REGIONS_H_

#include <vector>

#include "absl/strings/string_view.h"

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

}  // namespace blueprintsync::emulator

#endif  // BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_REGIONS_H_
