// The emulator's model of one Lighthouse blueprint (image) in one region: the
// fields DescribeBlueprints returns, the emulator-only knobs a seed can set,
// and the bookkeeping of a running SyncBlueprint. States move lazily: callers
// run AdvanceBlueprintState() with the current time before reading a state,
// so no background thread is needed and an injected clock drives everything.
#ifndef BLUEPRINTSYNC_TESTS_EMULATOR_BLUEPRINT_H_
#define BLUEPRINTSYNC_TESTS_EMULATOR_BLUEPRINT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace blueprintsync::emulator {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

struct Blueprint {
  std::string region;
  std::string id;
  std::optional<std::string> display_title;
  std::optional<std::string> display_version;
  std::optional<std::string> description;
  std::optional<std::string> os_name;
  std::optional<std::string> platform;
  std::optional<std::string> platform_type;
  std::string blueprint_type = "PRIVATE";
  std::optional<std::string> image_url;
  std::optional<int64_t> required_system_disk_size;
  std::string state = "NORMAL";
  absl::Time created = absl::UnixEpoch();
  std::optional<std::string> blueprint_name;
  bool support_automation_tools = false;
  std::optional<int64_t> required_memory_size;
  std::optional<std::string> image_id;
  std::optional<std::string> community_url;
  std::optional<std::string> guide_url;
  std::vector<std::string> scene_ids;
  std::optional<std::string> docker_version;
  bool blueprint_shared = false;
  std::vector<std::pair<std::string, std::string>> tags;

  // Seed flags that make SyncBlueprint refuse this blueprint.
  bool syncable = true;
  bool latest_operation_unfinished = false;

  // Destination of a running sync: settles at sync_finish.
  std::optional<absl::Time> sync_finish;
  bool sync_fails = false;
  // When such a sync settled (became NORMAL or SYNCING_FAILED): the moment
  // DescribeBlueprints first showed it, for tests that time detection.
  std::optional<absl::Time> settled_at;
  // Source of a running sync: back to NORMAL at source_sync_until.
  std::optional<absl::Time> source_sync_until;
  // DescribeBlueprints hides the blueprint before this time.
  absl::Time visible_from = absl::InfinitePast();
  // "region/id" of the blueprint this one was synced from, if any.
  std::string synced_from;
};

// "lhbp-" followed by exactly 8 of [0-9a-z].
bool IsWellFormedBlueprintId(absl::string_view id);

// Applies the state transitions whose time has come.
void AdvanceBlueprintState(Blueprint& bp, absl::Time now);

// Parses one seed entry (Blueprint field names plus "Region", "Syncable",
// "LatestOperationUnfinished"). `default_created` is used when the entry has
// no "CreatedTime".
absl::StatusOr<Blueprint> BlueprintFromSeed(const rapidjson::Value& v, absl::Time default_created);
// Parses {"blueprints":[...]}.
absl::StatusOr<std::vector<Blueprint>> ParseSeedJson(absl::string_view json,
                                                     absl::Time default_created);
// The built-in seed used when no --seed file is given.
std::vector<Blueprint> DefaultSeed();

// A custom (PRIVATE) Linux image with the fields a seed entry gets by
// default, as if made from an instance in `region`.
Blueprint NewCustomBlueprint(std::string region, std::string id, std::string name,
                             std::string state, absl::Time created);

// "YYYY-MM-DDThh:mm:ssZ".
std::string IsoUtc(absl::Time t);
// The inverse of IsoUtc; false if `text` is not in that form.
bool ParseIsoUtc(absl::string_view text, absl::Time* t);

// The documented Blueprint object of DescribeBlueprints.
void WriteApiBlueprint(const Blueprint& bp, JsonWriter& w);
// The API object plus Region, Visible and the emulator-only fields.
void WriteAdminBlueprint(const Blueprint& bp, absl::Time now, JsonWriter& w);

}  // namespace blueprintsync::emulator

#endif  // BLUEPRINTSYNC_TESTS_EMULATOR_BLUEPRINT_H_
