// LighthouseEmulator: the transport-independent core of the local stand-in
// for Tencent Cloud's Lighthouse API 3.0 endpoint (version 2020-03-24). It
// authenticates requests the way Tencent does (independently of our signer),
// keeps a model of blueprints per region with the SyncBlueprint state machine
// and DeleteBlueprints,
// rate-limits per action, injects configured faults, and counts everything so
// tests can observe what "Tencent" saw. EmulatorServer puts it on HTTP.
//
// All state sits behind one mutex; time comes from an injectable Clock, and
// state transitions are computed lazily from it, so tests need no sleeps.
#ifndef BLUEPRINTSYNC_TESTS_EMULATOR_LIGHTHOUSE_EMULATOR_H_
#define BLUEPRINTSYNC_TESTS_EMULATOR_LIGHTHOUSE_EMULATOR_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "tests/emulator/blueprint.h"
#include "tests/emulator/emulator_regions.h"
#include "tests/emulator/sts_emulator.h"

namespace blueprintsync::emulator {

inline constexpr char kSyncBlueprint[] = "SyncBlueprint";
inline constexpr char kDescribeBlueprints[] = "DescribeBlueprints";
inline constexpr char kDescribeRegions[] = "DescribeRegions";
inline constexpr char kDeleteBlueprints[] = "DeleteBlueprints";
inline constexpr char kApiVersion[] = "2020-03-24";

// One of the Lighthouse actions above (the ones the emulator answers).
bool IsEmulatedAction(absl::string_view action);

// The stats keep the latest deletions only, so a long run stays bounded.
inline constexpr size_t kMaxRecordedDeletions = 1000;

// The built-in credentials (the Tencent documentation's example key, and a
// temporary key whose token is kDefaultTemporaryToken).
inline constexpr char kDefaultSecretId[] = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
inline constexpr char kDefaultSecretKey[] = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
inline constexpr char kDefaultTemporarySecretId[] = "AKIDTMPEMULATOR000000000000000000000";
inline constexpr char kDefaultTemporarySecretKey[] = "TmpEmulatorSecretKey00000000000000";
inline constexpr char kDefaultTemporaryToken[] = "emulator-session-token";

struct ApiRequest {
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;                                          // raw bytes
  // First header named `name` (case-insensitive), if any.
  std::optional<absl::string_view> Header(absl::string_view name) const;
};

struct ApiResponse {
  int http_status = 200;
  std::string content_type = "application/json";
  std::string body;
  // The transport must send the headers and part of `body`, then close the
  // connection, so the client sees an incomplete response.
  bool drop_connection = false;
};

struct EmulatorKey {
  std::string secret_id;
  std::string secret_key;
  std::optional<std::string> token;  // present = temporary key
  std::optional<absl::Time> expires;
};

struct EmulatorConfig {
  int64_t sync_duration_ms = 3000;
  std::set<std::string> fail_regions;
  int64_t visibility_delay_ms = 0;
  // Accepted calls per sliding second; 0 = unlimited.
  std::map<std::string, int64_t> rate_limits = {{kSyncBlueprint, 20},
                                                {kDescribeBlueprints, 10},
                                                {kDescribeRegions, 10},
                                                {kDeleteBlueprints, 20}};
  int64_t quota_per_region = 0;  // custom blueprints per region; 0 = unlimited
  bool balance_insufficient = false;
  std::string certification = "ok";  // "ok" | "none" | "needs_upgrade"
  std::set<std::string> no_permission_secret_ids;
};

struct FaultRule {
  std::string action = "*";      // an action name or "*"
  std::string fault;  // internal_error|http_5xx|latency|drop|malformed|error|hostile_*|huge_body
  std::string phase = "before";  // before: not executed; after: executed, answer replaced
  int64_t count = 0;             // times it fires; 0 = unlimited
  double probability = 1.0;
  int64_t latency_ms = 0;
  int status = 503;
  std::string code = "FailedOperation";
  std::string message = "Injected fault.";
  // Hostile answers (a misbehaving or compromised upstream). Sizes in bytes;
  // the defaults reproduce issue #16: a 2 MiB message, 100 KiB Code and
  // RequestId, 5 KiB ids with NUL bytes, an 8 MiB body.
  //   hostile_error   Response.Error whose Code/Message/RequestId are padded
  //                   to code_bytes/message_bytes/request_id_bytes (0 = as is)
  //   hostile_fields  (phase after) the real answer with every id, region,
  //                   name, state, CreatedTime and RequestId made field_bytes
  //                   of garbage holding NUL bytes
  //   huge_body       the real answer padded with whitespace to body_bytes
  int64_t code_bytes = 100 * 1024;
  int64_t message_bytes = 2 * 1024 * 1024;
  int64_t request_id_bytes = 100 * 1024;
  int64_t field_bytes = 5 * 1024;
  int64_t body_bytes = 8 * 1024 * 1024;
  int64_t fired = 0;
};

struct EmulatorOptions {
  Clock* clock = nullptr;  // nullptr = SystemClock::Default()
  bool default_keys = true;
  std::vector<EmulatorKey> keys;
  std::optional<std::vector<Blueprint>> seed;  // nullopt = DefaultSeed()
  EmulatorConfig config;
  uint64_t fault_seed = 1;
  bool log_requests = false;  // one line per API call to stderr
};

class LighthouseEmulator {
 public:
  explicit LighthouseEmulator(EmulatorOptions options);

  LighthouseEmulator(const LighthouseEmulator&) = delete;
  LighthouseEmulator& operator=(const LighthouseEmulator&) = delete;

  // One API 3.0 call (POST /). STS calls (X-TC-Version 2018-08-13 or a Host
  // of sts.*) go to sts().
  ApiResponse HandleApi(const ApiRequest& request);

  // STS and the instance metadata service; the keys they issue are accepted
  // here until they expire.
  StsEmulator& sts() { return sts_; }
  // The key with this SecretId, if any.
  std::optional<EmulatorKey> FindKey(const std::string& secret_id) ABSL_LOCKS_EXCLUDED(mu_);

  // Admin surface (the /_emulator/ endpoints). JSON in, JSON out; bad input
  // yields InvalidArgument and changes nothing.
  std::string StatsJson();
  void ResetStats();
  std::string ConfigJson();
  absl::Status UpdateConfig(absl::string_view json);   // partial update
  absl::Status PutBlueprints(absl::string_view json);  // {"blueprints":[...]}, add or replace
  // Every blueprint (of `region`, when given) that exists; deleted ones are gone.
  std::string BlueprintsJson(const std::optional<std::string>& region);
  // Deletes a blueprint behind the API's back (not counted as a deletion
  // in the stats); NotFound if there is no such blueprint.
  absl::Status RemoveBlueprint(const std::string& region, const std::string& id);
  // A new version of an image family: {"Region", "BlueprintName",
  // "BlueprintState"?, "CreatedTime"?} adds a PRIVATE blueprint with a fresh
  // id and that name, and returns the id. Without CreatedTime it is created
  // now, but always a whole second later than every blueprint of that name in
  // the region, so "the newest by CreatedTime" (which the API reports to the
  // second) names exactly one blueprint even when versions come fast.
  absl::StatusOr<std::string> AddFamilyVersion(absl::string_view json);
  absl::Status AddKeys(absl::string_view json);  // {"keys":[...]}
  void AddKey(EmulatorKey key);
  absl::Status SetFaults(absl::string_view json);  // {"rules":[...]}, replaces
  std::string FaultsJson();
  // The regions DescribeRegions lists and every region check uses
  // (RegionList::Replace); seeds stay limited to the 15 built-in ones.
  RegionList& regions() { return regions_; }

 private:
  struct ApiError {
    std::string code;
    std::string message;
  };
  struct ActionStats {
    int64_t received = 0;
    int64_t throttled = 0;
    int64_t executed = 0;
    int64_t errors = 0;
  };
  struct SyncSubmission {
    std::string request_id;
    std::string region;
    std::string blueprint_id;
    std::vector<std::string> destinations;
    std::vector<std::string> destination_ids;
    absl::Time time;
  };
  // One blueprint removed by an executed DeleteBlueprints.
  struct Deletion {
    std::string request_id;
    std::string region;
    std::string blueprint_id;
    absl::Time time;
  };
  struct Stats {
    int64_t requests_total = 0;
    int64_t auth_failures = 0;
    int64_t signature_failures = 0;
    std::map<std::string, ActionStats> actions;
    std::map<std::string, int64_t> faults;
    std::map<std::string, int64_t> max_accepted_per_second;
    std::vector<SyncSubmission> sync_submissions;
    int64_t deleted_total = 0;
    std::deque<Deletion> deletions;  // the latest kMaxRecordedDeletions
    // DescribeBlueprints calls per region (every call that named a
    // supported region, throttled ones included), so a test can check that
    // tracking cost grows with regions, not with jobs or policies. At most
    // one entry per emulated region.
    std::map<std::string, int64_t> describe_calls_by_region;
  };
  // What the admission step decided about a call.
  struct Admission {
    std::optional<ApiError> error;  // answer with this error and stop
    std::string action;             // set once the action is known
    std::string region;
    std::string secret_id;
    bool counted_as_received = false;
    std::optional<FaultRule> fault;
  };
  using BlueprintKey = std::pair<std::string, std::string>;  // (region, id)

  Admission Admit(const ApiRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<ApiError> Authenticate(const ApiRequest& request, absl::Time now,
                                       std::string& secret_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the action; on success writes its members into `w` (inside "Response").
  std::optional<ApiError> Execute(const Admission& a, absl::string_view body,
                                  const std::string& request_id, JsonWriter& w)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<ApiError> SyncBlueprint(const Admission& a, const rapidjson::Document& doc,
                                        absl::Time now, const std::string& request_id,
                                        JsonWriter& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<ApiError> DescribeBlueprints(const Admission& a, const rapidjson::Document& doc,
                                             absl::Time now, JsonWriter& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<ApiError> DescribeRegions(const rapidjson::Document& doc, JsonWriter& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<ApiError> DeleteBlueprints(const Admission& a, const rapidjson::Document& doc,
                                           absl::Time now, const std::string& request_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why `id` in `region` cannot be deleted, if it cannot.
  std::optional<ApiError> DeleteRefusal(const std::string& region, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A copy synced from `region`/`id` is still SYNCING.
  bool IsSourceOfRunningSync(const std::string& region, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The checks Tencent makes of a BlueprintIds list (its size, each id's
  // form), for every action that takes one.
  static std::optional<ApiError> CheckBlueprintIds(const std::vector<std::string>& ids);
  void AdvanceAll(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewBlueprintId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewRequestId() ABSL_LOCKS_EXCLUDED(mu_);
  ApiResponse FaultResponse(const FaultRule& rule, const std::string& request_id,
                            const std::string& normal_body);
  void Log(const Admission& a, absl::string_view outcome, const std::string& request_id);
  void ResetStatsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const bool log_requests_;
  StsEmulator sts_;

  RegionList regions_;  // its own lock
  absl::Mutex mu_;
  EmulatorConfig config_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, EmulatorKey> keys_ ABSL_GUARDED_BY(mu_);
  std::map<BlueprintKey, Blueprint> blueprints_ ABSL_GUARDED_BY(mu_);
  std::vector<FaultRule> faults_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<absl::Time>> accepted_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 fault_rng_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 id_rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace blueprintsync::emulator

#endif  // BLUEPRINTSYNC_TESTS_EMULATOR_LIGHTHOUSE_EMULATOR_H_
