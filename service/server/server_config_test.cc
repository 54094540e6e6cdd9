#include "service/server/server_config.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blueprintsync::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Loads from `args` (argv[0] added) and `env`, never the process's own
// environment, so the machine running the test cannot change the outcome.
absl::StatusOr<ServerConfig> Load(std::vector<std::string> args,
                                  std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "blueprint-syncd");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return LoadServerConfig(static_cast<int>(argv.size()), argv.data(),
                          [env](const std::string& name) -> std::optional<std::string> {
                            auto it = env.find(name);
                            if (it == env.end()) return std::nullopt;
                            return it->second;
                          });
}

TEST(ServerConfigTest, DefaultsMatchTheFlagTable) {
  auto config = Load({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->action, ServerAction::kServe);
  EXPECT_EQ(config->listen, "0.0.0.0:50051");
  EXPECT_EQ(config->lighthouse_endpoint, "https://lighthouse.tencentcloudapi.com");
  EXPECT_EQ(config->store, "sqlite:./data/blueprint-sync.db");
  EXPECT_EQ(config->leader_lease, absl::Seconds(15));
  EXPECT_EQ(config->follow_interval, absl::Seconds(1));
  EXPECT_TRUE(config->follow_change_feed);
  EXPECT_EQ(config->follow_resync_interval, absl::Seconds(30));
  EXPECT_EQ(config->poll_interval, absl::Seconds(10));
  EXPECT_EQ(config->poll_budget_share, 0.5);
  EXPECT_EQ(config->min_poll_interval, absl::Milliseconds(500));
  EXPECT_EQ(config->job_deadline, absl::Hours(6));
  EXPECT_EQ(config->max_job_timeout, absl::Hours(24));
  EXPECT_FALSE(config->keep_failed_copies);
  EXPECT_EQ(config->job_retention, absl::Hours(24 * 30));
  EXPECT_EQ(config->cleanup_give_up_after, absl::Hours(24));
  EXPECT_EQ(config->policy_interval, absl::Seconds(60));
  EXPECT_EQ(config->policy_backoff_max, absl::Hours(1));
  EXPECT_EQ(config->sync_rate, 20);
  EXPECT_EQ(config->describe_rate, 10);
  EXPECT_EQ(config->http_timeout, absl::Seconds(30));
  EXPECT_EQ(config->connect_timeout, absl::Seconds(5));
  EXPECT_EQ(config->ca_file, "");
  EXPECT_EQ(config->ca_path, "");
  EXPECT_EQ(config->workers, 4);
  EXPECT_EQ(config->reconcile_grace, absl::Seconds(10));
  EXPECT_EQ(config->drain_timeout, absl::Seconds(20));
  EXPECT_EQ(config->max_message_bytes, 1048576);
  EXPECT_EQ(config->log_level, log::Level::kInfo);
  EXPECT_EQ(config->metrics_listen, "0.0.0.0:8087");
  EXPECT_FALSE(config->tls.enabled());
  EXPECT_EQ(config->tls.Mode(), "off");
  EXPECT_EQ(config->authz, nullptr);
  EXPECT_EQ(config->health_listen, "");
}

TEST(ServerConfigTest, EveryFlagReachesItsField) {
  auto config = Load({"--listen=127.0.0.1:0",     "--lighthouse-endpoint=http://127.0.0.1:8080",
                      "--store=memory:",          "--leader-lease=30s",
                      "--follow-interval=250ms",  "--poll-interval=2s",
                      "--job-deadline=1h",        "--sync-rate=2.5",
                      "--describe-rate=0.5",      "--http-timeout=3s",
                      "--connect-timeout=1s",     "--ca-file=/ca.pem",
                      "--ca-path=/certs",         "--workers=8",
                      "--reconcile-grace=0s",     "--drain-timeout=1m",
                      "--max-message-bytes=4096", "--log-level=debug",
                      "--metrics-listen=",        "--health-listen=127.0.0.1:0",
                      "--max-job-timeout=48h",    "--keep-failed-copies",
                      "--job-retention=0s",       "--cleanup-give-up-after=90m",
                      "--policy-interval=5s",     "--policy-backoff-max=30s",
                      "--poll-budget-share=0.25", "--min-poll-interval=1500ms"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "127.0.0.1:0");
  EXPECT_EQ(config->lighthouse_endpoint, "http://127.0.0.1:8080");
  EXPECT_EQ(config->store, "memory:");
  EXPECT_EQ(config->leader_lease, absl::Seconds(30));
  EXPECT_EQ(config->follow_interval, absl::Milliseconds(250));
  EXPECT_EQ(config->poll_interval, absl::Seconds(2));
  EXPECT_EQ(config->poll_budget_share, 0.25);
  EXPECT_EQ(config->min_poll_interval, absl::Milliseconds(1500));
  EXPECT_EQ(config->job_deadline, absl::Hours(1));
  EXPECT_EQ(config->sync_rate, 2.5);
  EXPECT_EQ(config->describe_rate, 0.5);
  EXPECT_EQ(config->http_timeout, absl::Seconds(3));
  EXPECT_EQ(config->connect_timeout, absl::Seconds(1));
  EXPECT_EQ(config->ca_file, "/ca.pem");
  EXPECT_EQ(config->ca_path, "/certs");
  EXPECT_EQ(config->workers, 8);
  EXPECT_EQ(config->reconcile_grace, absl::ZeroDuration());
  EXPECT_EQ(config->drain_timeout, absl::Minutes(1));
  EXPECT_EQ(config->max_message_bytes, 4096);
  EXPECT_EQ(config->log_level, log::Level::kDebug);
  EXPECT_EQ(config->metrics_listen, "");
  EXPECT_EQ(config->health_listen, "127.0.0.1:0");
  EXPECT_EQ(config->max_job_timeout, absl::Hours(48));
  EXPECT_TRUE(config->keep_failed_copies);
  EXPECT_EQ(config->job_retention, absl::ZeroDuration());
  EXPECT_EQ(config->cleanup_give_up_after, absl::Minutes(90));
  EXPECT_EQ(config->policy_interval, absl::Seconds(5));
  EXPECT_EQ(config->policy_backoff_max, absl::Seconds(30));
}

TEST(ServerConfigTest, PolicyFlagsComeFromTheEnvironmentToo) {
  auto config = Load({"--policy-interval=2m"}, {{"BLUEPRINT_SYNC_POLICY_INTERVAL", "10s"},
                                                {"BLUEPRINT_SYNC_POLICY_BACKOFF_MAX", "15m"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->policy_interval, absl::Minutes(2));
  EXPECT_EQ(config->policy_backoff_max, absl::Minutes(15));
  EXPECT_THAT(
      ServerHelpText(),
      AllOf(HasSubstr("--policy-interval"), HasSubstr("env BLUEPRINT_SYNC_POLICY_INTERVAL"),
            HasSubstr("--policy-backoff-max"), HasSubstr("env BLUEPRINT_SYNC_POLICY_BACKOFF_MAX")));
}

TEST(ServerConfigTest, KeepFailedCopiesTakesAnExplicitValue) {
  auto off = Load({"--keep-failed-copies=false"}, {{"BLUEPRINT_SYNC_KEEP_FAILED_COPIES", "true"}});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->keep_failed_copies);
  auto on = Load({}, {{"BLUEPRINT_SYNC_KEEP_FAILED_COPIES", "yes"}});
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->keep_failed_copies);
}

TEST(ServerConfigTest, MaxJobTimeoutMayNotBeBelowTheJobDeadline) {
  auto config = Load({"--job-deadline=12h", "--max-job-timeout=6h"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "invalid value \"6h\" for --max-job-timeout (from --max-job-timeout): must be at "
            "least --job-deadline (12h)");
  // The default (24h) is checked against a raised deadline too.
  config = Load({"--job-deadline=48h"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr("\"24h\" for --max-job-timeout (from default): must be at least"));
  config = Load({"--job-deadline=12h", "--max-job-timeout=12h"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_job_timeout, absl::Hours(12));
}

TEST(ServerConfigTest, EnvironmentIsReadAndTheCommandLineWins) {
  auto config = Load({"--workers=2"}, {{"BLUEPRINT_SYNC_WORKERS", "16"},
                                       {"BLUEPRINT_SYNC_STORE", "memory:"},
                                       {"BLUEPRINT_SYNC_DRAIN_TIMEOUT", "5s"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->workers, 2);
  EXPECT_EQ(config->store, "memory:");
  EXPECT_EQ(config->drain_timeout, absl::Seconds(5));
}

TEST(ServerConfigTest, HelpAndVersionWinOverBadValues) {
  auto help = Load({"--help", "--workers=0"});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ(help->action, ServerAction::kPrintHelp);
  auto version = Load({"--version", "extra"}, {{"BLUEPRINT_SYNC_LOG_LEVEL", "loud"}});
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->action, ServerAction::kPrintVersion);
}

TEST(ServerConfigTest, HelpTextListsEveryFlagWithItsVariable) {
  const std::string help = ServerHelpText();
  EXPECT_THAT(help, HasSubstr("usage: blueprint-syncd [flags]\n"));
  for (const FlagSpec& spec : ServerFlags()) {
    EXPECT_THAT(help, HasSubstr("--" + spec.name));
    if (!spec.env.empty()) {
      EXPECT_THAT(help, HasSubstr("env " + spec.env));
    }
  }
}

TEST(ServerConfigTest, RefusesUnknownFlagsAndArguments) {
  auto unknown = Load({"--no-such-flag=1"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("--no-such-flag"));
  auto positional = Load({"serve"});
  ASSERT_FALSE(positional.ok());
  EXPECT_EQ(positional.status().message(), "unexpected argument \"serve\"");
}

TEST(ServerConfigTest, RefusesAnUnknownLogLevel) {
  auto config = Load({"--log-level=loud"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "--log-level must be debug, info, warn or error");
}

// Each numeric and duration flag, with a value just outside its range: the
// refusal names the flag and where the value came from.
TEST(ServerConfigTest, EachOutOfRangeValueIsRefusedNamingItsFlag) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"poll-interval", "50ms"},
      {"poll-budget-share", "0"},
      {"poll-budget-share", "1.5"},
      {"poll-budget-share", "half"},
      {"min-poll-interval", "10ms"},
      {"min-poll-interval", "2h"},
      {"job-deadline", "500ms"},
      {"sync-rate", "0.01"},
      {"describe-rate", "1001"},
      {"http-timeout", "11m"},
      {"connect-timeout", "10ms"},
      {"workers", "65"},
      {"reconcile-grace", "2h"},
      {"drain-timeout", "11m"},
      {"max-message-bytes", "1"},
      {"leader-lease", "500ms"},
      {"follow-interval", "2m"},
      {"workers", "four"},
      {"poll-interval", "10"},
      {"tls-reload-interval", "0s"},
      {"max-job-timeout", "59s"},
      {"max-job-timeout", "721h"},
      {"keep-failed-copies", "maybe"},
      {"job-retention", "-1h"},
      {"job-retention", "87601h"},
      {"cleanup-give-up-after", "0s"},
      {"cleanup-give-up-after", "721h"},
      {"policy-interval", "999ms"},
      {"policy-interval", "25h"},
      {"policy-backoff-max", "0s"},
      {"policy-backoff-max", "169h"},
  };
  for (const auto& [flag, value] : bad) {
    auto config = Load({"--" + flag + "=" + value});
    ASSERT_FALSE(config.ok()) << flag << "=" << value;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(config.status().message(),
                HasSubstr("invalid value \"" + value + "\" for --" + flag + " (from --" + flag))
        << flag;
  }
}

// The shortest gap between tracker cycles cannot exceed the longest; left
// at its default it gives way to a short --poll-interval (tests, users of
// fixed intervals), set on purpose the contradiction is refused.
TEST(ServerConfigTest, MinPollIntervalIsAtMostThePollInterval) {
  auto contradicts = Load({"--poll-interval=1s", "--min-poll-interval=2s"});
  ASSERT_FALSE(contradicts.ok());
  EXPECT_EQ(contradicts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(contradicts.status().message(),
              HasSubstr("invalid value \"2s\" for --min-poll-interval (from --min-poll-interval): "
                        "must be at most --poll-interval (1s)"));
  auto defaulted = Load({"--poll-interval=200ms"});
  ASSERT_TRUE(defaulted.ok()) << defaulted.status();
  EXPECT_EQ(defaulted->min_poll_interval, absl::Milliseconds(200));
  auto fixed = Load({"--poll-interval=5s", "--min-poll-interval=5s"});
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->min_poll_interval, absl::Seconds(5));
}

TEST(ServerConfigTest, AnOutOfRangeVariableIsNamedToo) {
  auto config = Load({}, {{"BLUEPRINT_SYNC_LEADER_LEASE", "11m"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr("for --leader-lease (from $BLUEPRINT_SYNC_LEADER_LEASE)"));
}

// The first bad value in the documented order is the one reported.
TEST(ServerConfigTest, ReportsTheFirstBadValue) {
  auto config = Load({"--follow-interval=0s", "--poll-interval=0s"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("--poll-interval"));
}

TEST(ServerConfigTest, TlsFlagsAreCheckedTogether) {
  auto cert_only = Load({"--tls-cert=/nonexistent/cert.pem"});
  ASSERT_FALSE(cert_only.ok());
  EXPECT_THAT(cert_only.status().message(),
              HasSubstr("--tls-cert and --tls-key must be set together (only --tls-cert is set)"));
  auto ca_only = Load({"--tls-client-ca=/nonexistent/ca.pem"});
  ASSERT_FALSE(ca_only.ok());
  EXPECT_THAT(ca_only.status().message(), HasSubstr("--tls-client-ca needs --tls-cert"));
  auto unreadable = Load({"--tls-cert=/nonexistent/cert.pem", "--tls-key=/nonexistent/key.pem"});
  ASSERT_FALSE(unreadable.ok());
  EXPECT_THAT(unreadable.status().message(), HasSubstr("--tls-cert"));
}

TEST(ServerConfigTest, AnAuthzPolicyNeedsClientCertificates) {
  auto config = Load({"--authz-policy=/nonexistent/policy.json"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("--authz-policy needs --tls-client-ca"));
}

TEST(ServerConfigTest, BoundAddressKeepsTheHostAndUsesThePortBound) {
  EXPECT_EQ(BoundAddress("127.0.0.1:0", 43210), "127.0.0.1:43210");
  EXPECT_EQ(BoundAddress("0.0.0.0:9090", 9090), "0.0.0.0:9090");
  EXPECT_EQ(BoundAddress("[::1]:0", 5000), "[::1]:5000");
}

TEST(ServerConfigTest, GrpcLimitsHaveDefaultsAndComeFromFlagsAndEnvironment) {
  absl::StatusOr<ServerConfig> defaults = Load({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  const GrpcLimits d = defaults->grpc_limits;
  EXPECT_EQ(d.max_concurrent_streams, 100);
  EXPECT_EQ(d.max_connection_idle, absl::Minutes(5));
  EXPECT_EQ(d.max_connection_age, absl::Hours(1));
  EXPECT_EQ(d.max_connection_age_grace, absl::Minutes(5));
  EXPECT_EQ(d.grpc_memory_bytes, 64 << 20);
  EXPECT_EQ(d.response_budget_bytes, 32 << 20);
  EXPECT_EQ(d.delivery_timeout, absl::Seconds(30));

  absl::StatusOr<ServerConfig> set =
      Load({"--max-concurrent-streams", "7", "--max-connection-idle", "0", "--max-connection-age",
            "2h", "--max-connection-age-grace", "30s", "--grpc-memory", "8388608",
            "--response-budget", "2097152"},
           {{"BLUEPRINT_SYNC_DELIVERY_TIMEOUT", "5s"}});
  ASSERT_TRUE(set.ok()) << set.status();
  const GrpcLimits s = set->grpc_limits;
  EXPECT_EQ(s.max_concurrent_streams, 7);
  EXPECT_EQ(s.max_connection_idle, absl::ZeroDuration());
  EXPECT_EQ(s.max_connection_age, absl::Hours(2));
  EXPECT_EQ(s.max_connection_age_grace, absl::Seconds(30));
  EXPECT_EQ(s.grpc_memory_bytes, 8 << 20);
  EXPECT_EQ(s.response_budget_bytes, 2 << 20);
  EXPECT_EQ(s.delivery_timeout, absl::Seconds(5));
}

TEST(ServerConfigTest, OutOfRangeGrpcLimitsAreRefusedNamingTheirFlag) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"max-concurrent-streams", "0"},
           {"max-concurrent-streams", "10001"},
           {"max-connection-idle", "25h"},
           {"max-connection-age", "-1s"},
           {"grpc-memory", "1024"},
           {"response-budget", "1000"},
           {"delivery-timeout", "0s"},
           {"delivery-timeout", "2h"}}) {
    absl::StatusOr<ServerConfig> config = Load({"--" + flag, value});
    ASSERT_FALSE(config.ok()) << flag << "=" << value;
    EXPECT_THAT(config.status().message(), HasSubstr("--" + flag)) << config.status();
  }
}

TEST(ServerConfigTest, TencentSiteAndEndpointStyleNameTheEndpoint) {
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string endpoint;
  };
  const Case cases[] = {
      {{}, {}, "https://lighthouse.tencentcloudapi.com"},  // the default: as before
      {{"--tencent-site=intl"}, {}, "https://lighthouse.intl.tencentcloudapi.com"},
      {{},
       {{"BLUEPRINT_SYNC_TENCENT_SITE", "intl"}},
       "https://lighthouse.intl.tencentcloudapi.com"},
      {{"--tencent-site=cn"}, {}, "https://lighthouse.tencentcloudapi.com"},
      {{"--tencent-endpoint-style=regional"},
       {},
       "https://lighthouse.{region}.tencentcloudapi.com"},
      {{"--lighthouse-endpoint=http://127.0.0.1:9"}, {}, "http://127.0.0.1:9"},
  };
  for (const Case& c : cases) {
    auto config = Load(c.args, c.env);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->lighthouse_endpoint, c.endpoint);
  }
}

TEST(ServerConfigTest, BadSiteStyleOrConflictingEndpointIsRefusedNamingTheFlag) {
  auto site = Load({"--tencent-site=china"});
  ASSERT_FALSE(site.ok());
  EXPECT_THAT(std::string(site.status().message()),
              AllOf(HasSubstr("--tencent-site"), HasSubstr("cn or intl")));
  auto style = Load({}, {{"BLUEPRINT_SYNC_TENCENT_ENDPOINT_STYLE", "nearest"}});
  ASSERT_FALSE(style.ok());
  EXPECT_THAT(std::string(style.status().message()),
              AllOf(HasSubstr("--tencent-endpoint-style"),
                    HasSubstr("$BLUEPRINT_SYNC_TENCENT_ENDPOINT_STYLE")));
  auto both = Load({"--lighthouse-endpoint=http://127.0.0.1:9", "--tencent-site=intl"});
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(std::string(both.status().message()),
              AllOf(HasSubstr("--lighthouse-endpoint"), HasSubstr("--tencent-site")));
}

TEST(ServerConfigTest, TencentProfileComesFromTheFlagOrTencentCloudProfile) {
  EXPECT_EQ(Load({})->tencent_profile, "");
  EXPECT_EQ(Load({}, {{"TENCENTCLOUD_PROFILE", "prod"}})->tencent_profile, "prod");
  EXPECT_EQ(Load({"--tencent-profile=ci"}, {{"TENCENTCLOUD_PROFILE", "prod"}})->tencent_profile,
            "ci");
  auto bad = Load({"--tencent-profile=../../etc/x"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--tencent-profile"));
}

TEST(ServerConfigTest, RegionRefreshIntervalIsZeroOrAtLeastASecond) {
  EXPECT_EQ(Load({})->region_refresh_interval, absl::Hours(1));
  EXPECT_EQ(Load({"--region-refresh-interval=0"})->region_refresh_interval, absl::ZeroDuration());
  EXPECT_EQ(Load({"--region-refresh-interval=90s"})->region_refresh_interval, absl::Seconds(90));
  auto bad = Load({"--region-refresh-interval=500ms"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--region-refresh-interval"));
}

}  // namespace
}  // namespace blueprintsync::server
