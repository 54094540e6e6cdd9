#include "service/server/server_config.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/common/display.h"
#include "service/tencent/credentials.h"
#include "service/tencent/lighthouse_client.h"

namespace blueprintsync::server {

std::vector<FlagSpec> ServerFlags() {
  return {
      {"listen", "BLUEPRINT_SYNC_LISTEN", "0.0.0.0:50051",
       "gRPC listen address (host:port; port 0 picks one)"},
      {"lighthouse-endpoint", "BLUEPRINT_SYNC_LIGHTHOUSE_ENDPOINT", "",
       "Lighthouse API endpoint, overriding --tencent-site/--tencent-endpoint-style; "
       "http://127.0.0.1:PORT for the bundled emulator; {region} stands for the call's region"},
      {"tencent-site", "BLUEPRINT_SYNC_TENCENT_SITE", "cn",
       "cn: lighthouse.tencentcloudapi.com (China site); intl: "
       "lighthouse.intl.tencentcloudapi.com (International site)"},
      {"tencent-endpoint-style", "BLUEPRINT_SYNC_TENCENT_ENDPOINT_STYLE", "global",
       "global: the site's domain; regional: lighthouse.<region>.tencentcloudapi.com, the "
       "region each call is about"},
      {"tencent-profile", "TENCENTCLOUD_PROFILE", "",
       "credential profile: section [NAME] of the credentials file, or tccli's "
       "~/.tccli/NAME.credential; named but missing stops the start"},
      {"region-refresh-interval", "BLUEPRINT_SYNC_REGION_REFRESH_INTERVAL", "1h",
       "how often the region table is refreshed from DescribeRegions (also at start); 0: never, "
       "the compiled table only"},
      {"store", "BLUEPRINT_SYNC_STORE", "sqlite:./data/blueprint-sync.db",
       "job store: sqlite:PATH, postgres://USER@HOST/DB (shared by several replicas; password "
       "from the URI, PGPASSWORD or PGPASSFILE) or memory: (tests only; jobs are lost on exit)"},
      {"leader-lease", "BLUEPRINT_SYNC_LEADER_LEASE", "15s",
       "postgres store: how long the leader's lease lasts; another replica takes over at most "
       "this long after the leader dies"},
      {"follow-interval", "BLUEPRINT_SYNC_FOLLOW_INTERVAL", "1s",
       "postgres store: how often the leader picks up jobs other replicas recorded and other "
       "replicas re-read jobs their callers follow"},
      {"follow-change-feed", "BLUEPRINT_SYNC_FOLLOW_CHANGE_FEED", "true",
       "postgres store: follow job changes through LISTEN/NOTIFY (one more connection per "
       "replica) and re-read everything only every --follow-resync-interval; false: re-read "
       "everything every --follow-interval (e.g. behind a pooler in transaction mode)"},
      {"follow-resync-interval", "BLUEPRINT_SYNC_FOLLOW_RESYNC_INTERVAL", "30s",
       "postgres store with the change feed: how often every unfinished job and every job "
       "callers follow is re-read anyway, the safety net for a lost notification"},
      {"poll-interval", "BLUEPRINT_SYNC_POLL_INTERVAL", "10s",
       "unfinished destination images are checked at least this often"},
      {"poll-budget-share", "BLUEPRINT_SYNC_POLL_BUDGET_SHARE", "0.5",
       "share of --describe-rate the tracker may use: the next check of unfinished images comes "
       "as soon as this share allows for the calls of the last one (0.01 to 1)"},
      {"min-poll-interval", "BLUEPRINT_SYNC_MIN_POLL_INTERVAL", "500ms",
       "unfinished destination images are checked at most this often (at most --poll-interval, "
       "which lowers it when shorter and it is not set; equal to it: fixed-interval checks)"},
      {"job-deadline", "BLUEPRINT_SYNC_JOB_DEADLINE", "6h",
       "destinations not NORMAL this long after the job was created fail (the timeout of "
       "requests that set none)"},
      {"max-job-timeout", "BLUEPRINT_SYNC_MAX_JOB_TIMEOUT", "24h",
       "the longest timeout a request may ask for (at least --job-deadline)"},
      {"keep-failed-copies", "BLUEPRINT_SYNC_KEEP_FAILED_COPIES", "false",
       "keep the copies of failed destinations instead of deleting them, for requests that do "
       "not say",
       true},
      {"job-retention", "BLUEPRINT_SYNC_JOB_RETENTION", "720h",
       "finished jobs are deleted (freeing their request ids) this long after their last "
       "change; 0 keeps them forever"},
      {"cleanup-give-up-after", "BLUEPRINT_SYNC_CLEANUP_GIVE_UP_AFTER", "24h",
       "a copy that could not be deleted is given up on this long after its destination ended"},
      {"policy-interval", "BLUEPRINT_SYNC_POLICY_INTERVAL", "60s",
       "how often every replication policy is checked upstream and repaired (also at once on "
       "each change); at least 1s"},
      {"policy-backoff-max", "BLUEPRINT_SYNC_POLICY_BACKOFF_MAX", "1h",
       "a policy region whose sync failed is tried again after a backoff that doubles per "
       "failure up to this"},
      {"sync-rate", "BLUEPRINT_SYNC_SYNC_RATE", "20", "SyncBlueprint calls per second at most"},
      {"describe-rate", "BLUEPRINT_SYNC_DESCRIBE_RATE", "10",
       "DescribeBlueprints calls per second at most"},
      {"http-timeout", "BLUEPRINT_SYNC_HTTP_TIMEOUT", "30s", "total time for one upstream call"},
      {"connect-timeout", "BLUEPRINT_SYNC_CONNECT_TIMEOUT", "5s", "time to connect upstream"},
      {"ca-file", "BLUEPRINT_SYNC_CA_FILE", "", "CA bundle for the upstream TLS connection"},
      {"ca-path", "BLUEPRINT_SYNC_CA_PATH", "", "CA directory for the upstream TLS connection"},
      {"workers", "BLUEPRINT_SYNC_WORKERS", "4", "submission worker threads"},
      {"reconcile-grace", "BLUEPRINT_SYNC_RECONCILE_GRACE", "10s",
       "wait before checking upstream after an ambiguous submission"},
      {"drain-timeout", "BLUEPRINT_SYNC_DRAIN_TIMEOUT", "20s",
       "on SIGTERM, how long in-flight calls may take to finish"},
      {"max-message-bytes", "BLUEPRINT_SYNC_MAX_MESSAGE_BYTES", "1048576",
       "largest gRPC request accepted"},
      {"log-level", "BLUEPRINT_SYNC_LOG_LEVEL", "info", "debug, info, warn or error"},
      {"metrics-listen", "BLUEPRINT_SYNC_METRICS_LISTEN", "0.0.0.0:8087",
       "Prometheus /metrics address, plain HTTP (port 0 picks one; empty: no metrics)"},
      {"tls-cert", "BLUEPRINT_SYNC_TLS_CERT", "",
       "PEM certificate chain of the gRPC port; with --tls-key turns TLS on"},
      {"tls-key", "BLUEPRINT_SYNC_TLS_KEY", "", "PEM private key for --tls-cert"},
      {"tls-client-ca", "BLUEPRINT_SYNC_TLS_CLIENT_CA", "",
       "PEM CA bundle; set: mTLS, every caller must present a certificate it signed"},
      {"tls-reload-interval", "BLUEPRINT_SYNC_TLS_RELOAD_INTERVAL", "60s",
       "how often the TLS files are re-read (renewed certificates apply without a restart)"},
      {"authz-policy", "BLUEPRINT_SYNC_AUTHZ_POLICY", "",
       "JSON file of writers/readers client identities (needs --tls-client-ca); empty: no checks"},
      {"health-listen", "BLUEPRINT_SYNC_HEALTH_LISTEN", "",
       "plaintext grpc.health.v1-only address for probes when the gRPC port needs (m)TLS; "
       "empty: none"},
      {"max-concurrent-streams", "BLUEPRINT_SYNC_MAX_CONCURRENT_STREAMS", "100",
       "calls one client connection may have open at once"},
      {"max-connection-idle", "BLUEPRINT_SYNC_MAX_CONNECTION_IDLE", "5m",
       "a client connection without calls this long is closed; 0: never"},
      {"max-connection-age", "BLUEPRINT_SYNC_MAX_CONNECTION_AGE", "1h",
       "a client connection this old is asked to reconnect (long watches reconnect); 0: never"},
      {"max-connection-age-grace", "BLUEPRINT_SYNC_MAX_CONNECTION_AGE_GRACE", "5m",
       "how long the calls of such a connection may still take"},
      {"grpc-memory", "BLUEPRINT_SYNC_GRPC_MEMORY", "67108864",
       "bytes gRPC's connection buffers may use in total"},
      {"response-budget", "BLUEPRINT_SYNC_RESPONSE_BUDGET", "33554432",
       "bytes of list answers not yet taken by their clients, in total; beyond it lists are "
       "answered RESOURCE_EXHAUSTED"},
      {"delivery-timeout", "BLUEPRINT_SYNC_DELIVERY_TIMEOUT", "30s",
       "a list answer its client has not taken this long is given up (the call is cancelled)"},
      {"help", "", "", "print this help and exit", true},
      {"version", "", "", "print the version and exit", true},
  };
}

std::string ServerHelpText() {
  return absl::StrCat(
      "usage: blueprint-syncd [flags]\n\nflags (each also settable by the variable shown):\n",
      Flags(ServerFlags()).Usage());
}

namespace {

constexpr absl::Duration kMaxJobDeadline = absl::Hours(24 * 30);
constexpr absl::Duration kMaxJobRetention = absl::Hours(24 * 365 * 10);
constexpr absl::Duration kMaxPolicyBackoff = absl::Hours(24 * 7);

// The numeric and duration flags, each within the range it accepts. Every
// value is read before the first error is returned, and the errors are
// checked in this order, so the flag named is always the first bad one.
absl::Status ReadRanges(const Flags& flags, ServerConfig& config) {
  auto poll = flags.Duration("poll-interval", absl::Milliseconds(100), absl::Hours(1));
  auto budget_share = flags.Double("poll-budget-share", 0.01, 1);
  auto min_poll = flags.Duration("min-poll-interval", absl::Milliseconds(50), absl::Hours(1));
  auto deadline = flags.Duration("job-deadline", absl::Seconds(1), kMaxJobDeadline);
  auto sync_rate = flags.Double("sync-rate", 0.1, 1000);
  auto describe_rate = flags.Double("describe-rate", 0.1, 1000);
  auto http_timeout = flags.Duration("http-timeout", absl::Milliseconds(100), absl::Minutes(10));
  auto connect_timeout =
      flags.Duration("connect-timeout", absl::Milliseconds(100), absl::Minutes(5));
  auto workers = flags.Int("workers", 1, 64);
  auto grace = flags.Duration("reconcile-grace", absl::ZeroDuration(), absl::Hours(1));
  auto drain = flags.Duration("drain-timeout", absl::ZeroDuration(), absl::Minutes(10));
  auto max_msg = flags.Int("max-message-bytes", 1024, 64 << 20);
  auto lease = flags.Duration("leader-lease", absl::Seconds(1), absl::Minutes(10));
  auto follow = flags.Duration("follow-interval", absl::Milliseconds(50), absl::Minutes(1));
  auto follow_resync =
      flags.Duration("follow-resync-interval", absl::Seconds(1), absl::Hours(24));
  if (!follow_resync.ok()) return follow_resync.status();
  auto change_feed = flags.Bool("follow-change-feed");
  if (!change_feed.ok()) return change_feed.status();
  auto max_timeout = flags.Duration("max-job-timeout", absl::Minutes(1), kMaxJobDeadline);
  auto keep = flags.Bool("keep-failed-copies");
  auto retention = flags.Duration("job-retention", absl::ZeroDuration(), kMaxJobRetention);
  auto give_up = flags.Duration("cleanup-give-up-after", absl::Seconds(1), kMaxJobDeadline);
  auto policy_interval = flags.Duration("policy-interval", absl::Seconds(1), absl::Hours(24));
  auto policy_backoff = flags.Duration("policy-backoff-max", absl::Seconds(1), kMaxPolicyBackoff);
  auto region_refresh =
      flags.Duration("region-refresh-interval", absl::ZeroDuration(), absl::Hours(24 * 7));
  for (const absl::Status& s :
       {poll.status(), budget_share.status(), min_poll.status(), deadline.status(),
        sync_rate.status(), describe_rate.status(), http_timeout.status(),
        connect_timeout.status(), workers.status(), grace.status(), drain.status(),
        max_msg.status(), lease.status(), follow.status(), max_timeout.status(), keep.status(),
        retention.status(), give_up.status(), policy_interval.status(), policy_backoff.status(),
        region_refresh.status()}) {
    if (!s.ok()) return s;
  }
  // Otherwise a request that sets no timeout would get more than any
  // request may ask for.
  if (*max_timeout < *deadline) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid value \"", Shown(flags.String("max-job-timeout")),
                     "\" for --max-job-timeout (from ", flags.Source("max-job-timeout"),
                     "): must be at least --job-deadline (", absl::FormatDuration(*deadline), ")"));
  }
  config.poll_interval = *poll;
  config.poll_budget_share = *budget_share;
  config.min_poll_interval = *min_poll;
  if (config.min_poll_interval > config.poll_interval) {
    // Left at its default, it gives way to a shorter --poll-interval (the
    // fixed interval asked for); set on purpose, the two contradict.
    if (flags.Source("min-poll-interval") != "default") {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid value \"", Shown(flags.String("min-poll-interval")),
          "\" for --min-poll-interval (from ", flags.Source("min-poll-interval"),
          "): must be at most --poll-interval (", absl::FormatDuration(config.poll_interval), ")"));
    }
    config.min_poll_interval = config.poll_interval;
  }
  config.job_deadline = *deadline;
  config.sync_rate = *sync_rate;
  config.describe_rate = *describe_rate;
  config.http_timeout = *http_timeout;
  config.connect_timeout = *connect_timeout;
  config.workers = static_cast<int>(*workers);
  config.reconcile_grace = *grace;
  config.drain_timeout = *drain;
  config.max_message_bytes = static_cast<int>(*max_msg);
  config.leader_lease = *lease;
  config.follow_interval = *follow;
  config.follow_resync_interval = *follow_resync;
  config.follow_change_feed = *change_feed;
  config.max_job_timeout = *max_timeout;
  config.keep_failed_copies = *keep;
  config.job_retention = *retention;
  config.cleanup_give_up_after = *give_up;
  config.policy_interval = *policy_interval;
  config.policy_backoff_max = *policy_backoff;
  config.region_refresh_interval = *region_refresh;
  if (config.region_refresh_interval > absl::ZeroDuration() &&
      config.region_refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid value \"", Shown(flags.String("region-refresh-interval")),
        "\" for --region-refresh-interval (from ", flags.Source("region-refresh-interval"),
        "): must be 0 (never) or at least 1s"));
  }
  return absl::OkStatus();
}

// The gRPC port's abuse limits (GrpcLimits), each within its range.
absl::Status ReadGrpcLimits(const Flags& flags, GrpcLimits& limits) {
  auto streams = flags.Int("max-concurrent-streams", 1, 10000);
  auto idle = flags.Duration("max-connection-idle", absl::ZeroDuration(), absl::Hours(24));
  auto age = flags.Duration("max-connection-age", absl::ZeroDuration(), absl::Hours(24 * 7));
  auto grace = flags.Duration("max-connection-age-grace", absl::ZeroDuration(), absl::Hours(24));
  auto memory = flags.Int("grpc-memory", 4 << 20, int64_t{16} << 30);
  auto budget = flags.Int("response-budget", 1 << 20, int64_t{16} << 30);
  auto delivery = flags.Duration("delivery-timeout", absl::Seconds(1), absl::Hours(1));
  for (const absl::Status& s : {streams.status(), idle.status(), age.status(), grace.status(),
                                memory.status(), budget.status(), delivery.status()}) {
    if (!s.ok()) return s;
  }
  limits.max_concurrent_streams = static_cast<int>(*streams);
  limits.max_connection_idle = *idle;
  limits.max_connection_age = *age;
  limits.max_connection_age_grace = *grace;
  limits.grpc_memory_bytes = *memory;
  limits.response_budget_bytes = *budget;
  limits.delivery_timeout = *delivery;
  return absl::OkStatus();
}

// TLS files are checked (readable, matching) before the policy, which needs
// to know whether callers present certificates.
absl::Status ReadSecurity(const Flags& flags, ServerConfig& config) {
  absl::StatusOr<TlsFiles> tls = TlsFilesFromFlags(flags);
  if (!tls.ok()) return tls.status();
  absl::StatusOr<std::unique_ptr<AuthzPolicy>> authz = AuthzPolicyFromFlags(flags, tls->mutual());
  if (!authz.ok()) return authz.status();
  config.tls = *std::move(tls);
  config.authz = *std::move(authz);
  return absl::OkStatus();
}

// The flag's value when it is one of `allowed`, else an error naming them.
absl::StatusOr<std::string> OneOf(const Flags& flags, const std::string& name,
                                  std::initializer_list<absl::string_view> allowed) {
  const std::string value = flags.String(name);
  for (absl::string_view a : allowed) {
    if (value == a) return value;
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid value \"", Shown(value), "\" for --",
                                                 name, " (from ", flags.Source(name), "): must be ",
                                                 absl::StrJoin(allowed, " or ")));
}

// Which Lighthouse endpoint to call and which credential profile to use.
absl::Status ReadTencent(const Flags& flags, ServerConfig& config) {
  absl::StatusOr<std::string> site = OneOf(flags, "tencent-site", {"cn", "intl"});
  if (!site.ok()) return site.status();
  absl::StatusOr<std::string> style =
      OneOf(flags, "tencent-endpoint-style", {"global", "regional"});
  if (!style.ok()) return style.status();
  config.tencent_site = *site;
  config.tencent_endpoint_style = *style;
  const std::string explicit_endpoint = flags.String("lighthouse-endpoint");
  if (!explicit_endpoint.empty()) {
    // An endpoint given outright says everything; a site or style given
    // beside it would be silently ignored, so it is refused instead.
    for (const char* other : {"tencent-site", "tencent-endpoint-style"}) {
      if (flags.Source(other) != "default") {
        return absl::InvalidArgumentError(
            absl::StrCat("--lighthouse-endpoint and --", other, " (from ", flags.Source(other),
                         ") cannot both be set: the endpoint names the host outright"));
      }
    }
    config.lighthouse_endpoint = explicit_endpoint;
  } else {
    config.lighthouse_endpoint = tencent::LighthouseEndpointFor(
        config.tencent_site == "intl" ? tencent::TencentSite::kInternational
                                      : tencent::TencentSite::kChina,
        config.tencent_endpoint_style == "regional" ? tencent::EndpointStyle::kRegional
                                                    : tencent::EndpointStyle::kGlobal);
  }
  const std::string profile = flags.String("tencent-profile");
  if (!profile.empty()) {
    if (absl::Status s = tencent::CheckProfileName(profile); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid value \"", Shown(profile), "\" for --tencent-profile (from ",
                       flags.Source("tencent-profile"), "): ", s.message()));
    }
  }
  config.tencent_profile = profile;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> LoadServerConfig(int argc, const char* const* argv,
                                              Flags::Getenv getenv) {
  Flags flags(ServerFlags(), std::move(getenv));
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return s;
  ServerConfig config;
  if (*flags.Bool("help")) {
    config.action = ServerAction::kPrintHelp;
    return config;
  }
  if (*flags.Bool("version")) {
    config.action = ServerAction::kPrintVersion;
    return config;
  }
  if (!flags.positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", flags.positional()[0], "\""));
  }
  if (!log::ParseLevel(flags.String("log-level"), &config.log_level)) {
    return absl::InvalidArgumentError("--log-level must be debug, info, warn or error");
  }
  if (absl::Status s = ReadRanges(flags, config); !s.ok()) return s;
  if (absl::Status s = ReadGrpcLimits(flags, config.grpc_limits); !s.ok()) return s;
  if (absl::Status s = ReadSecurity(flags, config); !s.ok()) return s;
  if (absl::Status s = ReadTencent(flags, config); !s.ok()) return s;
  config.listen = flags.String("listen");
  config.store = flags.String("store");
  config.ca_file = flags.String("ca-file");
  config.ca_path = flags.String("ca-path");
  config.metrics_listen = flags.String("metrics-listen");
  config.health_listen = flags.String("health-listen");
  return config;
}

std::string BoundAddress(const std::string& listen, int port) {
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
}

}  // namespace blueprintsync::server
