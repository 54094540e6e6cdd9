#include "client/cli_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace blueprintsync::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

Flags::Getenv Env(std::map<std::string, std::string> vars = {}) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

absl::StatusOr<CliOptions> Parse(std::vector<std::string> args,
                                 std::map<std::string, std::string> env = {}) {
  return ParseCommandLine(args, Env(std::move(env)));
}

// The usage error's message, or a marker when parsing succeeded.
std::string ErrorOf(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  auto o = Parse(std::move(args), std::move(env));
  if (o.ok()) return "<parsed>";
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(o.status().message());
}

TEST(ParseCommandLineTest, SyncWithEverything) {
  auto o = Parse({"--server", "bps:7000", "sync", "--source-region", "ap-guangzhou",
                  "--blueprint-id=lhbp-ls883feh", "--to", "ap-singapore, ap-tokyo", "--to",
                  "ap-bangkok", "--request-id", "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c", "--wait",
                  "--output=json", "--timeout", "5s"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->command, Command::kSync);
  EXPECT_EQ(o->server, "bps:7000");
  EXPECT_EQ(o->timeout, absl::Seconds(5));
  EXPECT_EQ(o->output, OutputFormat::kJson);
  EXPECT_EQ(o->source_region, "ap-guangzhou");
  EXPECT_EQ(o->blueprint_id, "lhbp-ls883feh");
  EXPECT_THAT(o->destinations, ElementsAre("ap-singapore", "ap-tokyo", "ap-bangkok"));
  EXPECT_EQ(o->request_id, "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_TRUE(o->wait);
  EXPECT_FALSE(o->validate_only);
}

TEST(ParseCommandLineTest, Defaults) {
  auto o = Parse({"list"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->command, Command::kList);
  EXPECT_EQ(o->server, "127.0.0.1:50051");
  EXPECT_EQ(o->timeout, absl::Seconds(30));
  EXPECT_EQ(o->output, OutputFormat::kText);
  EXPECT_EQ(o->page_size, 0);
  EXPECT_FALSE(o->all);
}

TEST(ParseCommandLineTest, EnvironmentAndCommandLinePrecedence) {
  std::map<std::string, std::string> env = {{"BLUEPRINT_SYNC_SERVER", "env-host:1"},
                                            {"BLUEPRINT_SYNC_TIMEOUT", "2m"}};
  auto from_env = Parse({"get", "x"}, env);
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->server, "env-host:1");
  EXPECT_EQ(from_env->timeout, absl::Minutes(2));
  auto from_flag = Parse({"get", "x", "--server=flag-host:2", "--timeout=1s"}, env);
  ASSERT_TRUE(from_flag.ok()) << from_flag.status();
  EXPECT_EQ(from_flag->server, "flag-host:2");
  EXPECT_EQ(from_flag->timeout, absl::Seconds(1));
  EXPECT_THAT(ErrorOf({"get", "x"}, {{"BLUEPRINT_SYNC_TIMEOUT", "soon"}}),
              HasSubstr("--timeout (from $BLUEPRINT_SYNC_TIMEOUT)"));
}

TEST(ParseCommandLineTest, GetAndWatchNormalizeTheName) {
  auto get = Parse({"get", "abc123"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->command, Command::kGet);
  EXPECT_EQ(get->name, "syncJobs/abc123");
  auto watch = Parse({"watch", "syncJobs/abc123"});
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(watch->command, Command::kWatch);
  EXPECT_EQ(watch->name, "syncJobs/abc123");
}

TEST(ParseCommandLineTest, ListFlags) {
  auto o = Parse({"list", "--filter", "state = RUNNING", "--page-size", "20", "--page-token", "tok",
                  "--all", "--order-by", "create_time"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->filter, "state = RUNNING");
  EXPECT_EQ(o->order_by, "create_time");
  EXPECT_EQ(o->page_size, 20);
  EXPECT_EQ(o->page_token, "tok");
  EXPECT_TRUE(o->all);
}

TEST(ParseCommandLineTest, SyncLabelsJobTimeoutAndKeepFailedCopies) {
  auto o = Parse({"sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-1", "--to",
                  "ap-shanghai", "--label", "team=web", "--label=example.com/env=prod", "--label",
                  "empty=", "--job-timeout", "1h30m", "--keep-failed-copies"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_THAT(o->labels,
              ElementsAre(Pair("empty", ""), Pair("example.com/env", "prod"), Pair("team", "web")));
  EXPECT_EQ(o->job_timeout, absl::Minutes(90));
  EXPECT_EQ(o->keep_failed_copies, std::optional<bool>(true));
  EXPECT_THAT(o->destinations, ElementsAre("ap-shanghai"));

  auto plain = Parse({"sync", "--source-region", "s", "--blueprint-id", "b", "--to", "r"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(plain->labels.empty());
  EXPECT_EQ(plain->job_timeout, absl::ZeroDuration());
  EXPECT_EQ(plain->keep_failed_copies, std::nullopt);

  auto no_keep = Parse({"sync", "--source-region", "s", "--blueprint-id", "b", "--to", "r",
                        "--keep-failed-copies=false"});
  ASSERT_TRUE(no_keep.ok()) << no_keep.status();
  EXPECT_EQ(no_keep->keep_failed_copies, std::optional<bool>(false));
}

TEST(ParseCommandLineTest, SyncLabelAndJobTimeoutErrors) {
  auto with = [](std::vector<std::string> extra) {
    std::vector<std::string> args = {"sync", "--source-region", "s", "--blueprint-id", "b", "--to",
                                     "r"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ErrorOf(args);
  };
  EXPECT_THAT(with({"--label", "team"}), HasSubstr("--label: must be KEY=VALUE"));
  EXPECT_THAT(with({"--label", "=web"}), HasSubstr("--label: key \"\" must be"));
  EXPECT_THAT(with({"--label", "te am=web"}), HasSubstr("--label: key \"te am\" must be"));
  EXPECT_THAT(with({"--label", "a/b/c=web"}), HasSubstr("--label: key \"a/b/c\""));
  EXPECT_THAT(with({"--label", "team=w/b"}), HasSubstr("--label: value of \"team\" must be"));
  EXPECT_THAT(with({"--label", "team=" + std::string(64, 'a')}),
              HasSubstr("--label: value of \"team\""));
  EXPECT_THAT(with({"--label", "team=a", "--label", "team=b"}),
              HasSubstr("--label: key \"team\" given twice"));
  EXPECT_THAT(with({"--label"}), HasSubstr("--label: needs a value, e.g. --label team=web"));
  std::vector<std::string> many;
  for (int i = 0; i < 33; ++i) {
    many.push_back("--label");
    many.push_back("k" + std::to_string(i) + "=v");
  }
  EXPECT_THAT(with(many), HasSubstr("--label: at most 32 labels, got 33"));
  EXPECT_THAT(with({"--job-timeout", "soon"}), HasSubstr("--job-timeout"));
  EXPECT_THAT(with({"--job-timeout", "0s"}), HasSubstr("--job-timeout"));
  EXPECT_THAT(with({"--keep-failed-copies=maybe"}), HasSubstr("--keep-failed-copies"));
  // The value of another flag is not taken for a label.
  auto o = Parse({"sync", "--source-region", "--label", "--blueprint-id", "b", "--to", "r"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->source_region, "--label");
  EXPECT_TRUE(o->labels.empty());
}

TEST(ParseCommandLineTest, CancelRetryDelete) {
  auto cancel = Parse({"cancel", "abc", "--wait"});
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  EXPECT_EQ(cancel->command, Command::kCancel);
  EXPECT_EQ(cancel->name, "syncJobs/abc");
  EXPECT_TRUE(cancel->wait);

  auto retry =
      Parse({"retry", "syncJobs/abc", "--request-id", "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c"});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->command, Command::kRetry);
  EXPECT_EQ(retry->name, "syncJobs/abc");
  EXPECT_EQ(retry->request_id, "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  EXPECT_FALSE(retry->wait);

  auto del = Parse({"delete", "abc"});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->command, Command::kDelete);
  EXPECT_EQ(del->name, "syncJobs/abc");

  EXPECT_THAT(ErrorOf({"cancel"}), HasSubstr("cancel: expects exactly one NAME"));
  EXPECT_THAT(ErrorOf({"retry", "a", "b"}), HasSubstr("retry: expects exactly one NAME"));
  EXPECT_THAT(ErrorOf({"delete", "syncJobs/"}), HasSubstr("NAME: must be syncJobs/ID or ID"));
  EXPECT_THAT(ErrorOf({"delete", "a", "--wait"}), HasSubstr("unknown flag --wait"));
  EXPECT_THAT(ErrorOf({"cancel", "a", "--request-id", "x"}),
              HasSubstr("unknown flag --request-id"));
  EXPECT_THAT(ErrorOf({"--keep-failed-copies", "sync"}), HasSubstr("a command flag"));
}

TEST(ParseCommandLineTest, AnotherFlagsValueIsNotTakenForTo) {
  auto o = Parse({"sync", "--source-region", "--to", "--blueprint-id", "b", "--to", "r1"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->source_region, "--to");
  EXPECT_THAT(o->destinations, ElementsAre("r1"));
}

TEST(ParseCommandLineTest, HelpForms) {
  for (const auto& args : std::vector<std::vector<std::string>>{{}, {"--help"}, {"-h"}, {"help"}}) {
    auto o = Parse(args);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->command, Command::kHelp);
    EXPECT_EQ(o->help_topic, "");
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"help", "sync"}, {"sync", "--help"}, {"sync", "-h"}, {"--help", "sync"}}) {
    auto o = Parse(args);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->command, Command::kHelp);
    EXPECT_EQ(o->help_topic, "sync");
  }
}

TEST(ParseCommandLineTest, SyncUsageErrorsNameTheFlagAndRule) {
  const std::vector<std::string> ok_base = {"sync", "--source-region", "ap-guangzhou",
                                            "--blueprint-id", "lhbp-1"};
  EXPECT_EQ(ErrorOf(ok_base), "--to: at least one destination region is required");
  EXPECT_THAT(ErrorOf({"sync", "--blueprint-id", "b", "--to", "r"}),
              HasSubstr("--source-region: required"));
  EXPECT_THAT(ErrorOf({"sync", "--source-region", "s", "--to", "r"}),
              HasSubstr("--blueprint-id: required"));
  auto with = [&ok_base](std::vector<std::string> extra) {
    std::vector<std::string> args = ok_base;
    args.insert(args.end(), extra.begin(), extra.end());
    return ErrorOf(args);
  };
  EXPECT_THAT(with({"--to", "a,,b"}), HasSubstr("--to: empty region name in \"a,,b\""));
  EXPECT_THAT(with({"--to", ""}), HasSubstr("--to: empty region name"));
  EXPECT_THAT(with({"--to"}), HasSubstr("--to: needs a value"));
  EXPECT_EQ(with({"--to", "r", "--wait", "--validate-only"}),
            "--wait: cannot be combined with --validate-only, which creates no job");
  EXPECT_THAT(with({"--to", "r", "--wait=maybe"}), HasSubstr("--wait"));
  EXPECT_THAT(with({"--to", "r", "extra"}), HasSubstr("sync: unexpected argument \"extra\""));
  EXPECT_THAT(with({"--to", "r", "--filter", "x"}), HasSubstr("unknown flag --filter"));
  EXPECT_EQ(with({"--to", "r", "--wait", "--validate-only=false"}), "<parsed>");
}

TEST(ParseCommandLineTest, GeneralUsageErrors) {
  EXPECT_THAT(ErrorOf({"--server", "h:1"}), HasSubstr("missing COMMAND"));
  EXPECT_THAT(ErrorOf({"frobnicate"}), HasSubstr("unknown command \"frobnicate\""));
  EXPECT_THAT(ErrorOf({"--bogus", "list"}), HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(ErrorOf({"--wait", "sync"}),
              HasSubstr("--wait: a command flag; put it after the command"));
  EXPECT_THAT(ErrorOf({"list", "--output", "yaml"}),
              HasSubstr("--output (-o): must be text, json, name or wide, got \"yaml\""));
  EXPECT_THAT(ErrorOf({"list", "--timeout", "0s"}), HasSubstr("--timeout"));
  EXPECT_THAT(ErrorOf({"list", "--server", ""}), HasSubstr("--server: must be HOST:PORT"));
  EXPECT_THAT(ErrorOf({"list", "--page-size", "-1"}), HasSubstr("--page-size"));
  EXPECT_THAT(ErrorOf({"list", "--page-size", "1001"}), HasSubstr("from 0 to 1000"));
  EXPECT_THAT(ErrorOf({"list", "-x"}), HasSubstr("unknown flag -x"));
  EXPECT_THAT(ErrorOf({"list", "junk"}), HasSubstr("list: unexpected argument"));
  EXPECT_THAT(ErrorOf({"get"}), HasSubstr("get: expects exactly one NAME"));
  EXPECT_THAT(ErrorOf({"watch", "a", "b"}), HasSubstr("watch: expects exactly one NAME"));
  EXPECT_THAT(ErrorOf({"get", "syncJobs/"}), HasSubstr("NAME: must be syncJobs/ID or ID"));
  EXPECT_THAT(ErrorOf({"get", "projects/p/syncJobs/x"}), HasSubstr("NAME: must be"));
}

TEST(ParseCommandLineTest, PolicyCreateWithEverything) {
  auto o = Parse({"policy", "create", "web-golden", "--source-region", "ap-guangzhou",
                  "--blueprint-name", "web-golden", "--to", "ap-shanghai,ap-beijing", "--to",
                  "ap-chengdu", "--keep-versions", "2", "--paused", "--label", "team=web",
                  "--validate-only", "--output", "json"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->command, Command::kPolicyCreate);
  EXPECT_EQ(o->policy_id, "web-golden");
  EXPECT_EQ(o->name, "syncPolicies/web-golden");
  EXPECT_EQ(o->source_region, "ap-guangzhou");
  EXPECT_EQ(o->blueprint_name, "web-golden");
  EXPECT_EQ(o->blueprint_id, "");
  EXPECT_THAT(o->destinations, ElementsAre("ap-shanghai", "ap-beijing", "ap-chengdu"));
  EXPECT_EQ(o->keep_versions, std::optional<int32_t>(2));
  EXPECT_EQ(o->paused, std::optional<bool>(true));
  EXPECT_THAT(o->labels, ElementsAre(Pair("team", "web")));
  EXPECT_TRUE(o->validate_only);
  EXPECT_EQ(o->output, OutputFormat::kJson);

  auto plain = Parse({"policy", "create", "syncPolicies/docs", "--source-region", "ap-tokyo",
                      "--blueprint-id", "lhbp-ls883feh", "--to", "ap-seoul"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->policy_id, "docs");
  EXPECT_EQ(plain->blueprint_id, "lhbp-ls883feh");
  EXPECT_EQ(plain->keep_versions, std::nullopt);
  EXPECT_EQ(plain->paused, std::nullopt);
  EXPECT_FALSE(plain->validate_only);
}

TEST(ParseCommandLineTest, PolicyCreateUsageErrorsNameTheFlagAndRule) {
  const std::vector<std::string> base = {"policy", "create", "web", "--source-region",
                                         "ap-guangzhou"};
  auto with = [&base](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return ErrorOf(args);
  };
  EXPECT_THAT(with({"--to", "ap-shanghai"}),
              HasSubstr("--blueprint-id or --blueprint-name: one is required"));
  EXPECT_THAT(with({"--blueprint-id", "lhbp-1", "--blueprint-name", "web", "--to", "r"}),
              HasSubstr("--blueprint-id, --blueprint-name: give one, not both"));
  EXPECT_EQ(with({"--blueprint-name", "web"}), "--to: at least one destination region is required");
  EXPECT_THAT(with({"--blueprint-name", "web", "--to", "r", "--keep-versions", "101"}),
              HasSubstr("--keep-versions"));
  EXPECT_THAT(with({"--blueprint-name", "web", "--to", "r", "--keep-versions", "-1"}),
              HasSubstr("--keep-versions"));
  EXPECT_THAT(with({"--blueprint-name", "web", "--to", "r", "--label", "x"}),
              HasSubstr("--label: must be KEY=VALUE"));
  EXPECT_THAT(with({"--blueprint-name", "web", "--to", "r", "--wait"}),
              HasSubstr("unknown flag --wait"));
  EXPECT_THAT(
      ErrorOf({"policy", "create", "--source-region", "s", "--blueprint-name", "w", "--to", "r"}),
      HasSubstr("policy create: expects exactly one ID"));
  EXPECT_THAT(ErrorOf({"policy", "create", "a/b", "--source-region", "s", "--blueprint-name", "w",
                       "--to", "r"}),
              HasSubstr("NAME: must be syncPolicies/ID or ID"));
  EXPECT_THAT(ErrorOf({"policy", "create", "w", "--blueprint-name", "w", "--to", "r"}),
              HasSubstr("--source-region: required"));
}

TEST(ParseCommandLineTest, PolicyGetWaitPollIntervalAndTimeout) {
  auto get = Parse({"policy", "get", "web"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->command, Command::kPolicyGet);
  EXPECT_EQ(get->name, "syncPolicies/web");
  EXPECT_FALSE(get->wait);
  EXPECT_EQ(get->wait_timeout, std::nullopt);

  auto wait = Parse({"policy", "get", "syncPolicies/web", "--wait", "--poll-interval", "10s",
                     "--timeout", "30m"});
  ASSERT_TRUE(wait.ok()) << wait.status();
  EXPECT_TRUE(wait->wait);
  EXPECT_EQ(wait->poll_interval, absl::Seconds(10));
  EXPECT_EQ(wait->wait_timeout, std::optional<absl::Duration>(absl::Minutes(30)));
  EXPECT_EQ(wait->timeout, absl::Seconds(30));  // each call
  auto short_wait = Parse({"policy", "get", "web", "--wait", "--timeout", "5s"});
  ASSERT_TRUE(short_wait.ok()) << short_wait.status();
  EXPECT_EQ(short_wait->timeout, absl::Seconds(5));
  EXPECT_EQ(short_wait->poll_interval, absl::Seconds(2));

  // A timeout from the environment is for single calls, not the wait.
  auto from_env = Parse({"policy", "get", "web", "--wait"}, {{"BLUEPRINT_SYNC_TIMEOUT", "10s"}});
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->wait_timeout, std::nullopt);
  EXPECT_EQ(from_env->timeout, absl::Seconds(10));
  // Without --wait, --timeout is the call's deadline as everywhere.
  auto no_wait = Parse({"policy", "get", "web", "--timeout", "1m"});
  ASSERT_TRUE(no_wait.ok()) << no_wait.status();
  EXPECT_EQ(no_wait->wait_timeout, std::nullopt);
  EXPECT_EQ(no_wait->timeout, absl::Minutes(1));

  EXPECT_EQ(ErrorOf({"policy", "get", "web", "--poll-interval", "5s"}),
            "--poll-interval: only with --wait");
  EXPECT_THAT(ErrorOf({"policy", "get", "web", "--wait", "--poll-interval", "100ms"}),
              HasSubstr("--poll-interval"));
  EXPECT_THAT(ErrorOf({"policy", "get"}),
              HasSubstr("policy get: expects exactly one NAME (syncPolicies/ID or ID), got 0"));
  EXPECT_THAT(ErrorOf({"policy", "get", "syncJobs/x"}),
              HasSubstr("NAME: must be syncPolicies/ID or ID"));
}

TEST(ParseCommandLineTest, PolicyListUpdateDelete) {
  auto list = Parse({"policy", "list", "--filter", "in_sync = false", "--page-size", "10",
                     "--page-token", "t", "--all"});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->command, Command::kPolicyList);
  EXPECT_EQ(list->filter, "in_sync = false");
  EXPECT_EQ(list->page_size, 10);
  EXPECT_EQ(list->page_token, "t");
  EXPECT_TRUE(list->all);
  EXPECT_THAT(ErrorOf({"policy", "list", "web"}), HasSubstr("policy list: unexpected argument"));
  EXPECT_THAT(ErrorOf({"policy", "list", "--order-by", "x"}), HasSubstr("unknown flag --order-by"));

  auto update = Parse({"policy", "update", "web", "--to", "ap-tokyo", "--keep-versions", "0",
                       "--resume", "--label", "a=b", "--etag", "e1"});
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_EQ(update->command, Command::kPolicyUpdate);
  EXPECT_EQ(update->name, "syncPolicies/web");
  EXPECT_THAT(update->destinations, ElementsAre("ap-tokyo"));
  EXPECT_EQ(update->keep_versions, std::optional<int32_t>(0));
  EXPECT_EQ(update->paused, std::optional<bool>(false));
  EXPECT_TRUE(update->labels_given);
  EXPECT_EQ(update->etag, "e1");
  auto pause = Parse({"policy", "update", "web", "--paused"});
  ASSERT_TRUE(pause.ok()) << pause.status();
  EXPECT_EQ(pause->paused, std::optional<bool>(true));
  EXPECT_FALSE(pause->labels_given);
  EXPECT_TRUE(pause->destinations.empty());
  EXPECT_EQ(pause->keep_versions, std::nullopt);
  EXPECT_EQ(ErrorOf({"policy", "update", "web", "--paused", "--resume"}),
            "--paused, --resume: give one, not both");
  EXPECT_THAT(ErrorOf({"policy", "update", "web", "--etag", "e1"}),
              HasSubstr("policy update: nothing to change"));
  EXPECT_THAT(ErrorOf({"policy", "update", "web", "--to", "a,,b"}),
              HasSubstr("--to: empty region name"));
  EXPECT_THAT(ErrorOf({"policy", "update", "web", "--source-region", "x"}),
              HasSubstr("unknown flag --source-region"));

  auto del = Parse({"policy", "delete", "web", "--delete-copies", "--etag", "e2"});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->command, Command::kPolicyDelete);
  EXPECT_EQ(del->name, "syncPolicies/web");
  EXPECT_TRUE(del->delete_copies);
  EXPECT_EQ(del->etag, "e2");
  auto keep = Parse({"policy", "delete", "web"});
  ASSERT_TRUE(keep.ok()) << keep.status();
  EXPECT_FALSE(keep->delete_copies);
}

TEST(ParseCommandLineTest, PolicySubcommandsAndTheirHelp) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"policy"}, {"policy", "--help"}, {"help", "policy"}, {"policy", "-h"}}) {
    auto o = Parse(args);
    ASSERT_TRUE(o.ok()) << absl::StrJoin(args, " ") << ": " << o.status();
    EXPECT_EQ(o->command, Command::kHelp);
    EXPECT_EQ(o->help_topic, "policy") << absl::StrJoin(args, " ");
  }
  for (const auto& args : std::vector<std::vector<std::string>>{{"policy", "create", "--help"},
                                                                {"help", "policy", "create"},
                                                                {"policy", "create", "-h"}}) {
    auto o = Parse(args);
    ASSERT_TRUE(o.ok()) << absl::StrJoin(args, " ") << ": " << o.status();
    EXPECT_EQ(o->command, Command::kHelp);
    EXPECT_EQ(o->help_topic, "policy create") << absl::StrJoin(args, " ");
  }
  EXPECT_THAT(ErrorOf({"policy", "sync"}),
              HasSubstr("policy: unknown subcommand \"sync\" (subcommands: create, get, list, "
                        "update, delete)"));
  EXPECT_EQ(ErrorOf({"policy", "--output", "json", "get", "web"}),
            "policy: the subcommand (create, get, list, update, delete) must come right after "
            "\"policy\"");
  // Global flags may come first, or after the subcommand.
  auto o = Parse({"--server", "h:1", "policy", "get", "web", "--output", "json"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server, "h:1");
  EXPECT_EQ(o->output, OutputFormat::kJson);
  // A policy command's flag before the command names that command.
  EXPECT_THAT(ErrorOf({"--delete-copies", "policy", "delete", "web"}),
              HasSubstr("--delete-copies: a command flag; put it after the command, e.g. "
                        "blueprint-sync policy delete --delete-copies"));
}

TEST(NormalizePolicyNameTest, Rules) {
  EXPECT_EQ(*NormalizePolicyName("web"), "syncPolicies/web");
  EXPECT_EQ(*NormalizePolicyName("syncPolicies/web"), "syncPolicies/web");
  EXPECT_FALSE(NormalizePolicyName("").ok());
  EXPECT_FALSE(NormalizePolicyName("syncPolicies/").ok());
  EXPECT_FALSE(NormalizePolicyName("syncPolicies/a/b").ok());
}

TEST(NormalizeJobNameTest, Rules) {
  EXPECT_EQ(*NormalizeJobName("x"), "syncJobs/x");
  EXPECT_EQ(*NormalizeJobName("syncJobs/x"), "syncJobs/x");
  EXPECT_FALSE(NormalizeJobName("").ok());
  EXPECT_FALSE(NormalizeJobName("syncJobs/a/b").ok());
}

TEST(HelpTextTest, DocumentsCommandsFlagsAndExitCodes) {
  const std::string general = HelpText("");
  for (const char* s :
       {"sync", "get", "list", "watch", "cancel", "retry", "delete", "--server",
        "BLUEPRINT_SYNC_SERVER", "--timeout", "BLUEPRINT_SYNC_TIMEOUT", "--output",
        "Exit codes:", "  0  success",
        "  1  sync --wait, retry --wait or watch: the job ended FAILED or CANCELLED",
        "cancel --wait: the job ended otherwise than CANCELLED", "  2  usage error",
        "  3  RPC error"}) {
    EXPECT_THAT(general, HasSubstr(s));
  }
  const std::string sync = HelpText("sync");
  for (const char* s : {"--source-region", "--blueprint-id", "--to", "--request-id",
                        "--validate-only", "--wait", "Exit codes:", "--server", "--label",
                        "--job-timeout", "--keep-failed-copies", "DEADLINE_EXCEEDED or UNAVAILABLE",
                        "up to 5 attempts", "request id: ", "job(s) ahead on this source"}) {
    EXPECT_THAT(sync, HasSubstr(s));
  }
  const std::string list = HelpText("list");
  for (const char* s : {"--all", "--order-by", "CANCELLING, CANCELLED", "request_id", "creator",
                        "destination_region", "retry_of", "labels.KEY", "create_time OP"}) {
    EXPECT_THAT(list, HasSubstr(s));
  }
  EXPECT_THAT(HelpText("cancel"), HasSubstr("Usage:\n  blueprint-sync cancel NAME [--wait]"));
  EXPECT_THAT(HelpText("cancel"), HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(HelpText("retry"), HasSubstr("--request-id"));
  EXPECT_THAT(HelpText("delete"), HasSubstr("{} with --output json"));
  EXPECT_EQ(HelpText("nonsense"), general);

  EXPECT_THAT(general, HasSubstr("  policy      replication policies"));
  EXPECT_THAT(general, HasSubstr("policy get --wait: a region of the policy is FAILED"));
  EXPECT_THAT(general, HasSubstr("  4  policy get --wait --timeout D"));
  const std::string policy = HelpText("policy");
  for (const char* s : {"Subcommands:", "  create", "  get", "  list", "  update", "  delete",
                        "syncPolicies/ID", "--keep-versions", "--server"}) {
    EXPECT_THAT(policy, HasSubstr(s));
  }
  const std::string create = HelpText("policy create");
  for (const char* s :
       {"Usage:\n  blueprint-sync policy create ID", "--blueprint-name", "--blueprint-id",
        "--keep-versions", "--paused", "--validate-only", "newest NORMAL", "Exit codes:"}) {
    EXPECT_THAT(create, HasSubstr(s));
  }
  const std::string get = HelpText("policy get");
  for (const char* s :
       {"--wait", "--poll-interval", "(exit 0)", "(exit 1", "exit 4", "Tencent Cloud code"}) {
    EXPECT_THAT(get, HasSubstr(s));
  }
  EXPECT_THAT(HelpText("policy list"), HasSubstr("in_sync, paused"));
  EXPECT_THAT(HelpText("policy update"), HasSubstr("--label replaces every label"));
  EXPECT_THAT(HelpText("policy update"), HasSubstr("ABORTED"));
  EXPECT_THAT(HelpText("policy delete"), HasSubstr("--delete-copies"));
}

// The command lines under "Examples:" / "Example:" in every help text,
// continuation lines joined, without the program name, split like a shell
// would (single quotes only).
std::vector<std::vector<std::string>> HelpExamples(const std::string& help) {
  std::vector<std::vector<std::string>> examples;
  std::vector<std::string> lines = absl::StrSplit(help, '\n');
  bool in_examples = false;
  std::string command;
  for (const std::string& line : lines) {
    if (line == "Examples:" || line == "Example:") {
      in_examples = true;
      continue;
    }
    if (!in_examples) continue;
    if (!absl::StartsWith(line, "  ")) {
      in_examples = false;
      continue;
    }
    command += std::string(absl::StripAsciiWhitespace(line));
    if (!command.empty() && command.back() == '\\') {
      command.pop_back();
      continue;
    }
    std::vector<std::string> words;
    std::string word;
    bool quoted = false;
    for (char c : command) {
      if (c == '\'') {
        quoted = !quoted;
      } else if (c == ' ' && !quoted) {
        if (!word.empty()) words.push_back(word);
        word.clear();
      } else {
        word += c;
      }
    }
    if (!word.empty()) words.push_back(word);
    if (!words.empty() && words[0] == "blueprint-sync") words.erase(words.begin());
    examples.push_back(words);
    command.clear();
  }
  return examples;
}

TEST(ParseCommandLineTest, OutputShortFormAndValues) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"list", "-o", "json"},
                                             {"-o", "json", "list"},
                                             {"list", "-ojson"},
                                             {"list", "-o=json"},
                                             {"list", "--output", "json"},
                                             {"--output=json", "list"}}) {
    auto o = Parse(args);
    ASSERT_TRUE(o.ok()) << absl::StrJoin(args, " ") << ": " << o.status();
    EXPECT_EQ(o->output, OutputFormat::kJson) << absl::StrJoin(args, " ");
  }
  auto name = Parse({"list", "-o", "name"});
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->output, OutputFormat::kName);
  auto wide = Parse({"list", "-o", "wide"});
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_EQ(wide->output, OutputFormat::kWide);
  // A flag's value that looks like -o stays that flag's value.
  auto filter = Parse({"list", "--filter", "-o"});
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_EQ(filter->filter, "-o");
  EXPECT_EQ(filter->output, OutputFormat::kText);
  EXPECT_THAT(ErrorOf({"list", "-o", "jsn"}), HasSubstr("did you mean \"json\"?"));
  EXPECT_THAT(ErrorOf({"list", "-o"}), HasSubstr("--output"));
}

TEST(ParseCommandLineTest, DidYouMeanForCommandsSubcommandsAndFlags) {
  EXPECT_THAT(ErrorOf({"lsit"}), HasSubstr("unknown command \"lsit\"; did you mean \"list\"?"));
  EXPECT_THAT(ErrorOf({"polcy", "list"}), HasSubstr("did you mean \"policy\"?"));
  EXPECT_THAT(ErrorOf({"policy", "craete", "x"}),
              HasSubstr("unknown subcommand \"craete\"; did you mean \"create\"?"));
  EXPECT_THAT(ErrorOf({"sync", "--source-regoin", "ap-guangzhou"}),
              HasSubstr("unknown flag --source-regoin for sync; did you mean "
                        "\"--source-region\"?"));
  EXPECT_THAT(ErrorOf({"get", "x", "--outptu", "json"}),
              HasSubstr("unknown flag --outptu for get; did you mean \"--output\"?"));
  EXPECT_THAT(ErrorOf({"--sevrer", "h:1", "list"}),
              HasSubstr("unknown flag --sevrer; did you mean \"--server\"?"));
  EXPECT_THAT(ErrorOf({"policy", "list", "--all-pages"}), HasSubstr("unknown flag --all-pages"));
  // Nothing close: no guess.
  EXPECT_THAT(ErrorOf({"frobnicate"}), Not(HasSubstr("did you mean")));
}

TEST(ParseCommandLineTest, VersionAndCompletion) {
  auto v = Parse({"--version"});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->command, Command::kVersion);
  auto c = Parse({"completion", "bash"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->command, Command::kCompletion);
  EXPECT_EQ(c->completion_shell, "bash");
  EXPECT_THAT(ErrorOf({"completion", "fish"}),
              HasSubstr("completion: expects one SHELL, bash or zsh"));
  EXPECT_THAT(ErrorOf({"completion"}), HasSubstr("completion: expects one SHELL"));
}

TEST(ParseCommandLineTest, TlsFlagsAndEnvironment) {
  auto o = Parse({"list", "--cacert", "/ca.pem", "--cert", "/c.pem", "--key", "/k.pem",
                  "--server-name", "bps.test"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->tls.cacert, "/ca.pem");
  EXPECT_EQ(o->tls.cert, "/c.pem");
  EXPECT_EQ(o->tls.key, "/k.pem");
  EXPECT_EQ(o->tls.server_name, "bps.test");
  EXPECT_TRUE(o->tls.enabled());
  auto env = Parse({"list"}, {{"BLUEPRINT_SYNC_CACERT", "/e/ca.pem"},
                              {"BLUEPRINT_SYNC_CERT", "/e/c.pem"},
                              {"BLUEPRINT_SYNC_KEY", "/e/k.pem"},
                              {"BLUEPRINT_SYNC_SERVER_NAME", "e.test"},
                              {"BLUEPRINT_SYNC_TLS", "true"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->tls.cacert, "/e/ca.pem");
  EXPECT_EQ(env->tls.key, "/e/k.pem");
  EXPECT_EQ(env->tls.server_name, "e.test");
  EXPECT_TRUE(env->tls.tls);
  auto plain = Parse({"list"});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->tls.enabled());
  auto tls = Parse({"--tls", "list"});
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE(tls->tls.enabled());
}

bool IsMainland(const std::string& region) {
  static const std::set<std::string> kMainland = {"ap-guangzhou", "ap-shanghai",  "ap-beijing",
                                                  "ap-chengdu",   "ap-chongqing", "ap-nanjing"};
  return kMainland.count(region) > 0;
}

TEST(HelpTextTest, EveryExampleParsesAndStaysOnOneSideOfTheBorder) {
  int count = 0;
  for (const char* topic :
       {"", "sync", "get", "list", "watch", "cancel", "retry", "delete", "policy", "policy create",
        "policy get", "policy list", "policy update", "policy delete"}) {
    for (const auto& args : HelpExamples(HelpText(topic))) {
      ++count;
      auto o = Parse(args);
      ASSERT_TRUE(o.ok()) << topic << ": " << absl::StrJoin(args, " ") << ": " << o.status();
      EXPECT_NE(o->command, Command::kHelp) << absl::StrJoin(args, " ");
      if (o->command != Command::kSync && o->command != Command::kPolicyCreate) continue;
      for (const std::string& d : o->destinations) {
        EXPECT_EQ(IsMainland(d), IsMainland(o->source_region))
            << "the service rejects " << o->source_region << " -> " << d << " in "
            << absl::StrJoin(args, " ");
      }
    }
  }
  EXPECT_GE(count, 19);
}

}  // namespace
}  // namespace blueprintsync::cli
