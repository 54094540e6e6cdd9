// StsEmulator: the emulator's stand-in for the two services that hand out
// temporary Tencent Cloud credentials to workloads:
//   - STS (API 3.0, version 2018-08-13) on the emulator's POST / listener:
//     AssumeRoleWithWebIdentity (unsigned, Authorization: SKIP; TKE workload
//     identity) and AssumeRole (TC3-signed with service "sts");
//   - a CVM's instance metadata service: GET
//     /latest/meta-data/cam/security-credentials/[<role>].
// Every temporary key it issues is registered with the LighthouseEmulator
// (through KeySink), so Lighthouse calls signed with it are accepted until it
// expires, exactly what a service using these providers needs to see.
//
// Owned by LighthouseEmulator, which routes STS calls here (X-TC-Version
// 2018-08-13, or a Host of sts.*). Its mutex is never held while calling
// KeyLookup/KeySink, so the LighthouseEmulator may hold its own mutex while
// calling WriteStats().
#ifndef BLUEPRINTSYNC_TESTS_EMULATOR_STS_EMULATOR_H_
#define BLUEPRINTSYNC_TESTS_EMULATOR_STS_EMULATOR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/common/clock.h"
#include "tests/emulator/blueprint.h"

namespace blueprintsync::emulator {

struct ApiRequest;
struct ApiResponse;
struct EmulatorKey;

inline constexpr char kStsApiVersion[] = "2018-08-13";
inline constexpr char kAssumeRole[] = "AssumeRole";
inline constexpr char kAssumeRoleWithWebIdentity[] = "AssumeRoleWithWebIdentity";

struct StsEmulatorConfig {
  std::string provider_id = "emulator-oidc-provider";
  std::string role_arn = "qcs::cam::uin/100000000001:roleName/blueprint-sync";
  std::string web_identity_token = "emulator-web-identity-token";
  int64_t web_identity_token_expiry = 0;  // Unix seconds; 0 = never expires
  int64_t duration_seconds = 0;           // lifetime issued; 0 = as requested
  int64_t fail_next = 0;                  // the next N STS calls answer InternalError
};

struct MetadataEmulatorConfig {
  std::string role;  // empty: no role bound (HTTP 404)
  int64_t duration_seconds = 7200;
  int64_t fail_next = 0;         // the next N metadata GETs answer HTTP 500
  std::string code = "Success";  // the Code field of credential answers
};

class StsEmulator {
 public:
  using KeyLookup = std::function<std::optional<EmulatorKey>(const std::string& secret_id)>;
  using KeySink = std::function<void(EmulatorKey key)>;

  StsEmulator(Clock* clock, KeyLookup lookup, KeySink sink);

  // Whether LighthouseEmulator should route `request` here.
  static bool IsStsRequest(const ApiRequest& request);

  ApiResponse HandleSts(const ApiRequest& request);
  // `role` empty: the directory (role discovery); else that role's credentials.
  ApiResponse HandleMetadata(absl::string_view role);

  // Partial updates; bad input changes nothing. JSON keys as in the structs.
  absl::Status ConfigureSts(absl::string_view json);
  absl::Status ConfigureMetadata(absl::string_view json);
  std::string StsConfigJson();  // the web identity token itself is not shown
  std::string MetadataConfigJson();

  // Writes the "sts" and "metadata" members of the stats object.
  void WriteStats(JsonWriter& w);
  void ResetStats();

 private:
  struct Counters {
    int64_t requests = 0;
    int64_t issued = 0;
    int64_t errors = 0;
  };
  struct Issued {
    std::string secret_id;
    std::string secret_key;
    std::string token;
  };

  Issued NewKey() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewRequestId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const KeyLookup lookup_;
  const KeySink sink_;

  absl::Mutex mu_;
  StsEmulatorConfig sts_ ABSL_GUARDED_BY(mu_);
  MetadataEmulatorConfig metadata_ ABSL_GUARDED_BY(mu_);
  Counters assume_role_ ABSL_GUARDED_BY(mu_);
  Counters web_identity_ ABSL_GUARDED_BY(mu_);
  Counters sts_other_ ABSL_GUARDED_BY(mu_);  // unknown action / version
  Counters metadata_stats_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace blueprintsync::emulator

#endif  // BLUEPRINTSYNC_TESTS_EMULATOR_STS_EMULATOR_H_
