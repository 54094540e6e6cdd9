// ServerConfig: everything blueprint-syncd reads from its command line and
// environment, parsed and checked before anything is opened or started, so
// a bad value stops the process with one line that names the flag (exit 2)
// and never half-way through start-up. main.cc reads it; the builders under
// service/server take what they need from it.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_SERVER_CONFIG_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_SERVER_CONFIG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/flags.h"
#include "service/common/log.h"
#include "service/server/authz.h"
#include "service/server/tls_config.h"

namespace blueprintsync::server {

inline constexpr char kServerVersion[] = "0.1.0";

// What one client may hold on the gRPC port and what all of them may
// together (README "Configuration", "Abuse limits").
struct GrpcLimits {
  // Streams one connection may have open at once (HTTP/2 SETTINGS).
  int max_concurrent_streams = 100;
  // A connection without calls this long is closed; zero: never.
  absl::Duration max_connection_idle = absl::Minutes(5);
  // A connection this old is asked to reconnect (GOAWAY); its calls then
  // have max_connection_age_grace to end. Zero: never.
  absl::Duration max_connection_age = absl::Hours(1);
  absl::Duration max_connection_age_grace = absl::Minutes(5);
  // gRPC's own buffers (grpc::ResourceQuota).
  int64_t grpc_memory_bytes = 64 << 20;
  // Answers produced but not yet taken by their clients, in total; a call
  // that would go over is answered RESOURCE_EXHAUSTED instead.
  int64_t response_budget_bytes = 32 << 20;
  // An answer its client has not taken this long after it was produced is
  // given up (the call is cancelled and its memory freed).
  absl::Duration delivery_timeout = absl::Seconds(30);
};

// What the command line asks for: --help and --version print and exit
// before any other value is checked.
enum class ServerAction { kServe, kPrintHelp, kPrintVersion };

struct ServerConfig {
  ServerAction action = ServerAction::kServe;

  std::string listen;
  // --lighthouse-endpoint when given, else the one --tencent-site and
  // --tencent-endpoint-style name (may hold "{region}").
  std::string lighthouse_endpoint;
  std::string tencent_site;            // "cn" or "intl"
  std::string tencent_endpoint_style;  // "global" or "regional"
  // The credential profile named by --tencent-profile / TENCENTCLOUD_PROFILE;
  // empty: none named (the [default] section of the credentials file).
  std::string tencent_profile;
  // How often the live region table is refreshed; zero: never.
  absl::Duration region_refresh_interval;
  std::string store;
  absl::Duration leader_lease;
  absl::Duration follow_interval;
  // See JobEngineOptions::follow_change_feed.
  bool follow_change_feed = true;
  absl::Duration follow_resync_interval;
  absl::Duration poll_interval;
  // Adaptive tracking (jobs/tracking_pace.h); min_poll_interval <= poll_interval.
  double poll_budget_share = 0.5;
  absl::Duration min_poll_interval;
  absl::Duration job_deadline;
  // The longest timeout a SyncBlueprint request may ask for; at least
  // job_deadline (the timeout of requests that ask for none).
  absl::Duration max_job_timeout;
  // For requests that do not say whether to keep failed copies.
  bool keep_failed_copies = false;
  // Finished jobs older than this are deleted; zero keeps them forever.
  absl::Duration job_retention;
  // Copies still not deleted this long after their destination ended are
  // given up on (DELETE_ABANDONED).
  absl::Duration cleanup_give_up_after;
  // The policy controller passes at least this often (and on every change).
  absl::Duration policy_interval;
  // A policy region whose job failed is tried again after a backoff that
  // doubles per failure up to this.
  absl::Duration policy_backoff_max;
  double sync_rate = 0;
  double describe_rate = 0;
  absl::Duration http_timeout;
  absl::Duration connect_timeout;
  std::string ca_file;
  std::string ca_path;
  int workers = 0;
  absl::Duration reconcile_grace;
  absl::Duration drain_timeout;
  int max_message_bytes = 0;
  log::Level log_level = log::Level::kInfo;
  std::string metrics_listen;  // empty: no /metrics
  TlsFiles tls;
  // Loaded from --authz-policy; null: every caller may call every method.
  std::shared_ptr<const AuthzPolicy> authz;
  std::string health_listen;  // empty: no plaintext health port
  GrpcLimits grpc_limits;
};

// The flag table: names, variables, defaults and help text.
std::vector<FlagSpec> ServerFlags();

// The --help text.
std::string ServerHelpText();

// Parses argv[1..] (and the environment through `getenv`; the process's
// when null) and checks every value. The error is the line to print after
// "blueprint-syncd: "; it names the flag (or the argument) at fault.
absl::StatusOr<ServerConfig> LoadServerConfig(int argc, const char* const* argv,
                                              Flags::Getenv getenv = nullptr);

// "host:port" with the port actually bound (listen addresses may ask for
// port 0), for log lines.
std::string BoundAddress(const std::string& listen, int port);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_SERVER_CONFIG_H_
