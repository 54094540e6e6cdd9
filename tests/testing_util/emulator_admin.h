// EmulatorAdmin: a small client of the lighthouse-emulator's unsigned admin
// API (/_emulator/...), used by end-to-end tests to configure the emulator
// and to see what "Tencent Cloud" received. Plain HTTP over libcurl; the
// stats are parsed into a struct so tests compare numbers, not JSON text.
#ifndef BLUEPRINTSYNC_TESTS_TESTING_UTIL_EMULATOR_ADMIN_H_
#define BLUEPRINTSYNC_TESTS_TESTING_UTIL_EMULATOR_ADMIN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace blueprintsync::testing {

struct EmulatorActionStats {
  int64_t received = 0;
  int64_t throttled = 0;
  int64_t executed = 0;
  int64_t errors = 0;
};

// One accepted SyncBlueprint, as the emulator recorded it.
struct EmulatorSyncSubmission {
  std::string request_id;  // the emulator's RequestId
  std::string region;
  std::string blueprint_id;
  std::vector<std::string> destination_regions;
  std::vector<std::string> destination_blueprint_ids;
  int64_t time_ms = 0;
};

// One blueprint an executed DeleteBlueprints removed.
struct EmulatorDeletion {
  std::string request_id;  // the emulator's RequestId
  std::string region;
  std::string blueprint_id;
  int64_t time_ms = 0;
};

struct EmulatorStats {
  int64_t requests_total = 0;
  int64_t auth_failures = 0;
  int64_t signature_failures = 0;
  std::map<std::string, EmulatorActionStats> actions;
  // Fired fault rules by kind ("drop", "latency", ...).
  std::map<std::string, int64_t> faults;
  // Per action, the most calls the emulator accepted within one sliding second.
  std::map<std::string, int64_t> max_accepted_per_second;
  // The emulated STS, flattened: "requests", "errors", "AssumeRole.issued", ...
  std::map<std::string, int64_t> sts;
  std::vector<EmulatorSyncSubmission> sync_submissions;
  // Every deletion counts here; `deletions` keeps the latest 1000, oldest first.
  int64_t deleted_blueprints_total = 0;
  std::vector<EmulatorDeletion> deletions;
  // DescribeBlueprints calls per region (throttled ones included), e.g. to
  // count the calls of one polling interval from two snapshots.
  std::map<std::string, int64_t> describe_calls_by_region;
  // Whether DeleteBlueprints removed `id` from `region` (among the recorded ones).
  bool WasDeleted(const std::string& region, const std::string& id) const;
  // The action's counters (all zero if the emulator has none for it).
  EmulatorActionStats Action(const std::string& name) const;
  int64_t Fault(const std::string& kind) const;
  int64_t TotalFaults() const;
  int64_t MaxAcceptedPerSecond(const std::string& action) const;
  // DescribeBlueprints calls that named `region` (0 if none).
  int64_t DescribeCalls(const std::string& region) const;
};

// The one reader of the emulator's stats (the body of GET /_emulator/stats,
// or LighthouseEmulator::StatsJson() for an emulator in this process).
absl::StatusOr<EmulatorStats> ParseEmulatorStats(const std::string& json);

// A blueprint as GET /_emulator/blueprints shows it (the fields tests use).
struct EmulatorBlueprint {
  std::string region;
  std::string id;
  std::string state;
  // When its sync settled (NORMAL or SYNCING_FAILED), Unix ms; 0: it has not.
  int64_t settled_at_ms = 0;
};

class EmulatorAdmin {
 public:
  // `base_url`: "http://127.0.0.1:PORT" (no trailing slash).
  explicit EmulatorAdmin(std::string base_url) : base_url_(std::move(base_url)) {}

  absl::StatusOr<EmulatorStats> Stats() const;
  absl::Status ResetStats() const;
  // Partial update, e.g. {"fail_regions":["ap-shanghai"]}.
  absl::Status UpdateConfig(const std::string& json) const;
  // {"blueprints":[{"BlueprintId":"lhbp-...","Region":"..."}, ...]}, add or replace.
  absl::Status PutBlueprints(const std::string& json) const;
  // {"rules":[...]}, replaces the fault rules.
  absl::Status SetFaults(const std::string& json) const;
  // `region` empty: every region.
  absl::StatusOr<std::vector<EmulatorBlueprint>> Blueprints(const std::string& region) const;
  // Deletes a blueprint behind the service's back (not counted as a
  // deletion); an error naming HTTP 404 if there is none.
  absl::Status RemoveBlueprint(const std::string& region, const std::string& id) const;
  // Adds a new NORMAL version of the image family `name` in `region` (a
  // PRIVATE blueprint with that name, created a whole second after every
  // other one of the name there) and returns its id. Other states or
  // creation times: Post("/_emulator/family-versions", ...).
  absl::StatusOr<std::string> AddFamilyVersion(const std::string& region,
                                               const std::string& name) const;

  // Raw calls: the body of a 200 answer, else an error naming status and body.
  absl::StatusOr<std::string> Get(const std::string& path) const;
  absl::StatusOr<std::string> Post(const std::string& path, const std::string& body) const;
  absl::StatusOr<std::string> Delete(const std::string& path) const;

  const std::string& base_url() const { return base_url_; }

 private:
  // GET without a body, POST with one; `method` overrides the verb.
  absl::StatusOr<std::string> Call(const std::string& path, const std::string* post_body,
                                   const char* method = nullptr) const;

  std::string base_url_;
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_TESTING_UTIL_EMULATOR_ADMIN_H_
