// End-to-end: every example the CLI's help shows (the general help and each
// command's) and every `build/bin/blueprint-sync` line of README.md's console
// blocks is run, as a user would paste it, by a real bash (zsh for the zsh
// completion example) against a real blueprint-syncd and the emulator, and
// must exit 0. Placeholders (<id>, <etag>) and the sample job ids become
// real ones; before each example the test makes the state it needs (a job
// that can be cancelled or retried, a policy that exists or does not), so
// an example that the service would reject fails this test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/cli_options.h"
#include "google/protobuf/empty.pb.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

#define BPS_RETURN_IF_ERROR(expr)              \
  do {                                         \
    const absl::Status bps_status_ = (expr);   \
    if (!bps_status_.ok()) return bps_status_; \
  } while (false)

struct Example {
  std::string where;  // "help sync", "README.md:23"
  std::string text;   // shell text, continuation lines joined
};

// The lines under "Examples:"/"Example:" that start a command, with their
// backslash continuations.
std::vector<Example> HelpExamples(const std::string& topic, const std::string& help) {
  std::vector<Example> out;
  bool in_examples = false;
  std::string text;
  for (absl::string_view line : absl::StrSplit(help, '\n')) {
    if (line == "Examples:" || line == "Example:") {
      in_examples = true;
      continue;
    }
    if (!in_examples) continue;
    if (!absl::StartsWith(line, "  ")) {
      in_examples = false;
      continue;
    }
    absl::StrAppend(&text, absl::StripAsciiWhitespace(line), "\n");
    if (absl::EndsWith(absl::StripTrailingAsciiWhitespace(line), "\\")) continue;
    out.push_back({absl::StrCat("help ", topic.empty() ? "(general)" : topic), text});
    text.clear();
  }
  return out;
}

// README.md's "$ build/bin/blueprint-sync ..." and "$ build-run/bin/..." (the
// quick start's build) lines in console blocks, with continuations.
std::vector<Example> ReadmeExamples(const std::string& readme) {
  std::vector<Example> out;
  std::vector<std::string> lines = absl::StrSplit(readme, '\n');
  bool in_console = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (absl::StartsWith(lines[i], "```")) {
      in_console = lines[i] == "```console";
      continue;
    }
    if (!in_console || !(absl::StartsWith(lines[i], "$ build/bin/blueprint-sync") ||
                         absl::StartsWith(lines[i], "$ build-run/bin/blueprint-sync"))) {
      continue;
    }
    Example e{absl::StrCat("README.md:", i + 1), ""};
    std::string line = lines[i].substr(2);
    while (true) {
      absl::StrAppend(&e.text, line, "\n");
      if (!absl::EndsWith(absl::StripTrailingAsciiWhitespace(line), "\\") ||
          i + 1 >= lines.size()) {
        break;
      }
      line = lines[++i];
    }
    out.push_back(std::move(e));
  }
  return out;
}

// The command words of an example ("sync", "policy create", ...), skipping
// global flags and their values.
std::string CommandOf(const std::string& text) {
  std::vector<std::string> words = absl::StrSplit(
      absl::StrReplaceAll(text, {{"\\\n", " "}, {"\n", " "}}), ' ', absl::SkipEmpty());
  std::string command;
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "#") break;
    if (w == "-o" || w == "--output" || w == "--server" || w == "--timeout") {
      ++i;
      continue;
    }
    if (absl::StartsWith(w, "-")) continue;
    if (command.empty()) {
      command = w;
      if (command != "policy") break;
    } else {
      return absl::StrCat(command, " ", w);
    }
  }
  return command;
}

// The policy an example names: the word after "policy SUBCOMMAND".
std::string PolicyIdOf(const std::string& text) {
  std::smatch m;
  static const std::regex kPolicy("policy (create|get|update|delete) (syncPolicies/)?([a-z0-9-]+)");
  if (!std::regex_search(text, m, kPolicy)) return "";
  return m[3];
}

class CliExamplesE2eTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (HasFailure()) return;
    ASSERT_TRUE(StartEmulator({"--sync-duration-ms", "300"}).ok());
    // The blueprints the examples name: lhbp-ls883feh (the documentation's
    // sample) in the regions the examples copy it from, and the families.
    ASSERT_TRUE(
        admin()
            .PutBlueprints(
                R"({"blueprints":[)"
                R"({"BlueprintId":"lhbp-ls883feh","Region":"ap-guangzhou","BlueprintName":"docs"},)"
                R"({"BlueprintId":"lhbp-ls883feh","Region":"ap-singapore","BlueprintName":"docs"},)"
                R"({"BlueprintId":"lhbp-wgold001","Region":"ap-guangzhou","BlueprintName":"web-golden"}]})")
            .ok());
    ASSERT_TRUE(StartServer({"--poll-interval", "200ms", "--policy-interval", "1s",
                             "--policy-backoff-max", "4s"})
                    .ok());
  }

  absl::StatusOr<RunResult> Shell(const std::string& shell, const std::string& text) {
    ChildProcessOptions o;
    o.argv = {shell, "-c", text};
    const std::string cli = BLUEPRINT_SYNC_CLI;
    o.env = {{"PATH", absl::StrCat(cli.substr(0, cli.rfind('/')), ":/usr/bin:/bin")},
             {"BLUEPRINT_SYNC_SERVER", server_address()}};
    o.unset_env = {"BLUEPRINT_SYNC_*", "TENCENTCLOUD_*", "http_proxy",
                   "https_proxy",      "grpc_proxy",     "COLUMNS"};
    return RunToCompletion(std::move(o), absl::Seconds(120));
  }

  // A job started through the API, followed until `done`.
  absl::StatusOr<v1::SyncJob> MakeJob(const std::string& blueprint,
                                      const std::vector<std::string>& to,
                                      const std::function<bool(const v1::SyncJob&)>& done) {
    v1::SyncJob job;
    grpc::Status s = Sync(MakeRequest("ap-guangzhou", blueprint, to), &job);
    if (!s.ok()) return absl::InternalError(s.error_message());
    return WaitForJob(job.name(), done, absl::Seconds(60));
  }

  // Makes the state `command` needs; returns the text with placeholders
  // and sample ids replaced by real ones.
  absl::StatusOr<std::string> Prepare(const std::string& command, std::string text) {
    std::string job_name;
    if (command == "get" || command == "watch" || command == "delete") {
      auto job = MakeJob("lhbp-gzbase01", {"ap-beijing"},
                         [](const v1::SyncJob& j) { return IsTerminalJobState(j.state()); });
      if (!job.ok()) return job.status();
      job_name = job->name();
    } else if (command == "cancel") {
      // A job QUEUED behind a long one on the same source: cancelled at
      // once, whatever the machine's speed. One blocker serves every cancel.
      if (!blocker_started_) {
        BPS_RETURN_IF_ERROR(admin().UpdateConfig(R"({"sync_duration_ms":600000})"));
        auto blocker = MakeJob("lhbp-gzbase02", {"ap-chengdu"}, [](const v1::SyncJob& j) {
          return j.state() == v1::SyncJob::RUNNING;
        });
        BPS_RETURN_IF_ERROR(admin().UpdateConfig(R"({"sync_duration_ms":300})"));
        if (!blocker.ok()) return blocker.status();
        blocker_started_ = true;
      }
      auto queued = MakeJob("lhbp-gzbase02", {"ap-nanjing"},
                            [](const v1::SyncJob& j) { return j.state() == v1::SyncJob::QUEUED; });
      if (!queued.ok()) return queued.status();
      job_name = queued->name();
    } else if (command == "retry") {
      BPS_RETURN_IF_ERROR(admin().UpdateConfig(R"({"fail_regions":["ap-shanghai"]})"));
      auto failed = MakeJob("lhbp-gzbase01", {"ap-shanghai"},
                            [](const v1::SyncJob& j) { return IsTerminalJobState(j.state()); });
      BPS_RETURN_IF_ERROR(admin().UpdateConfig(R"({"fail_regions":[]})"));
      if (!failed.ok()) return failed.status();
      if (failed->state() != v1::SyncJob::FAILED) {
        return absl::InternalError(absl::StrCat("retry's job ended ", failed->ShortDebugString()));
      }
      job_name = failed->name();
    }
    if (!job_name.empty()) {
      const std::string id = job_name.substr(job_name.find('/') + 1);
      // The help's sample job id and the README's placeholder.
      text =
          absl::StrReplaceAll(text, {{"<id>", id}, {"0b7e2c52-6f0e-4a55-9d1e-5b7c3f1e2a90", id}});
    }
    if (absl::StartsWith(command, "policy ") && command != "policy list") {
      const std::string id = PolicyIdOf(text);
      if (id.empty()) return absl::InternalError("no policy id in the example");
      BPS_RETURN_IF_ERROR(PreparePolicy(command, "syncPolicies/" + id, &text));
    }
    return text;
  }

  absl::Status PreparePolicy(const std::string& command, const std::string& name,
                             std::string* text) {
    auto policy = GetPolicy(name);
    const bool exists = policy.ok();
    if (command == "policy create") {
      if (!exists || absl::StrContains(*text, "--validate-only")) return absl::OkStatus();
      v1::DeleteSyncPolicyRequest request;
      request.set_name(name);
      google::protobuf::Empty empty;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      grpc::Status s = stub().DeleteSyncPolicy(&context, request, &empty);
      if (!s.ok()) return absl::InternalError(s.error_message());
      return WaitForPolicyGone(name);
    }
    if (!exists) {
      v1::CreateSyncPolicyRequest request;
      request.set_sync_policy_id(name.substr(name.find('/') + 1));
      v1::SyncPolicy& p = *request.mutable_sync_policy();
      p.set_source_region("ap-guangzhou");
      p.set_blueprint_name("web-base");
      p.add_destination_regions("ap-shanghai");
      p.add_destination_regions("ap-beijing");
      v1::SyncPolicy created;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      grpc::Status s = stub().CreateSyncPolicy(&context, request, &created);
      if (!s.ok()) return absl::InternalError(s.error_message());
      policy = created;
    }
    if (command == "policy get" && policy->paused()) {
      // A paused policy never gets in sync: `get --wait` would wait forever.
      v1::UpdateSyncPolicyRequest request;
      request.mutable_sync_policy()->set_name(name);
      request.mutable_sync_policy()->set_paused(false);
      request.mutable_update_mask()->add_paths("paused");
      v1::SyncPolicy updated;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      grpc::Status s = stub().UpdateSyncPolicy(&context, request, &updated);
      if (!s.ok()) return absl::InternalError(s.error_message());
      policy = updated;
    }
    *text = absl::StrReplaceAll(*text, {{"<etag>", policy->etag()}});
    return absl::OkStatus();
  }

  absl::StatusOr<v1::SyncPolicy> GetPolicy(const std::string& name) {
    v1::GetSyncPolicyRequest request;
    request.set_name(name);
    v1::SyncPolicy policy;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    grpc::Status s = stub().GetSyncPolicy(&context, request, &policy);
    if (!s.ok()) return absl::NotFoundError(s.error_message());
    return policy;
  }

  absl::Status WaitForPolicyGone(const std::string& name) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      if (!GetPolicy(name).ok()) return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(200));
    }
    return absl::DeadlineExceededError(absl::StrCat(name, " still there after 60s"));
  }

  bool blocker_started_ = false;

  // Runs every example in order; each must exit 0.
  void RunAll(const std::vector<Example>& examples) {
    for (const Example& e : examples) {
      SCOPED_TRACE(absl::StrCat(e.where, ": ", e.text));
      std::string text =
          absl::StrReplaceAll(e.text, {{"build-run/bin/blueprint-sync", "blueprint-sync"},
                                      {"build/bin/blueprint-sync", "blueprint-sync"}});
      const std::string command = CommandOf(text);
      auto prepared = Prepare(command, text);
      ASSERT_TRUE(prepared.ok()) << prepared.status();
      const std::string shell =
          absl::StrContains(*prepared, "completion zsh") ? "/usr/bin/zsh" : "/bin/bash";
      auto run = Shell(shell, *prepared);
      ASSERT_TRUE(run.ok()) << run.status();
      EXPECT_EQ(run->status, ExitedWith(0))
          << run->status.ToString() << "\nran: " << *prepared << "stdout:\n"
          << run->out << "\nstderr:\n"
          << run->err;
      EXPECT_THAT(run->err, Not(HasSubstr("error:"))) << *prepared;
    }
  }
};

TEST_F(CliExamplesE2eTest, EveryHelpExampleRuns) {
  std::vector<Example> examples;
  for (const std::string& topic : cli::HelpTopics()) {
    std::vector<std::string> args = {"help"};
    for (absl::string_view w : absl::StrSplit(topic, ' ', absl::SkipEmpty())) args.emplace_back(w);
    ChildProcessOptions o;
    o.argv = {BLUEPRINT_SYNC_CLI};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    auto help = RunToCompletion(std::move(o), absl::Seconds(30));
    ASSERT_TRUE(help.ok()) << help.status();
    ASSERT_EQ(help->status, ExitedWith(0)) << topic;
    std::vector<Example> found = HelpExamples(topic, help->out);
    EXPECT_FALSE(found.empty()) << "help " << topic << " shows no example";
    examples.insert(examples.end(), found.begin(), found.end());
  }
  EXPECT_GE(examples.size(), 24u);
  RunAll(examples);
}

TEST_F(CliExamplesE2eTest, EveryReadmeExampleRuns) {
  std::ifstream in(PROJECT_README);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<Example> examples = ReadmeExamples(ss.str());
  EXPECT_GE(examples.size(), 15u);
  RunAll(examples);
}

// The bash completion script, sourced in a real bash and driven as bash
// drives it: COMP_WORDS/COMP_CWORD set, the function called, COMPREPLY read.
TEST(CliCompletionTest, BashCompletesCommandsSubcommandsFlagsAndValues) {
  ChildProcessOptions o;
  o.argv = {BLUEPRINT_SYNC_CLI, "completion", "bash"};
  auto script = RunToCompletion(std::move(o), absl::Seconds(30));
  ASSERT_TRUE(script.ok()) << script.status();
  ASSERT_EQ(script->status, ExitedWith(0)) << script->err;

  const std::string driver = absl::StrCat(
      script->out,
      "complete -p blueprint-sync\n"
      "c() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=();\n"
      "      _blueprint_sync; echo \"$*|${COMPREPLY[*]}\"; }\n"
      "c blueprint-sync li\n"
      "c blueprint-sync pol\n"
      "c blueprint-sync policy ''\n"
      "c blueprint-sync policy cr\n"
      "c blueprint-sync sync --so\n"
      "c blueprint-sync --server h:1 sync --wa\n"
      "c blueprint-sync -o json policy get web --poll\n"
      "c blueprint-sync list -o ''\n"
      "c blueprint-sync list --output j\n"
      "c blueprint-sync get x --ver\n"
      "c blueprint-sync completion ''\n"
      "c blueprint-sync list --cac\n"
      "c blueprint-sync delete --wa\n");
  ChildProcessOptions b;
  b.argv = {"/bin/bash", "--norc", "--noprofile", "-c", driver};
  auto run = RunToCompletion(std::move(b), absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->status, ExitedWith(0)) << run->err;
  EXPECT_EQ(run->err, "");
  std::vector<std::string> lines = absl::StrSplit(run->out, '\n', absl::SkipEmpty());
  EXPECT_THAT(
      lines,
      ::testing::ElementsAre(
          "complete -F _blueprint_sync blueprint-sync", "blueprint-sync li|list",
          "blueprint-sync pol|policy", "blueprint-sync policy |create get list update delete",
          "blueprint-sync policy cr|create", "blueprint-sync sync --so|--source-region",
          "blueprint-sync --server h:1 sync --wa|--wait",
          "blueprint-sync -o json policy get web --poll|--poll-interval",
          "blueprint-sync list -o |text json name wide", "blueprint-sync list --output j|json",
          "blueprint-sync get x --ver|--version", "blueprint-sync completion |bash zsh",
          "blueprint-sync list --cac|--cacert",
          // delete takes no --wait: not offered.
          "blueprint-sync delete --wa|"));
}

// zsh loads the same function through bashcompinit.
TEST(CliCompletionTest, ZshLoadsTheCompletion) {
  ChildProcessOptions o;
  const std::string cli = BLUEPRINT_SYNC_CLI;
  o.argv = {"/usr/bin/zsh", "-f", "-c",
            absl::StrCat("source <(", cli,
                         " completion zsh) && (( $+functions[_blueprint_sync] )) && "
                         "echo loaded")};
  auto run = RunToCompletion(std::move(o), absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status, ExitedWith(0)) << run->err;
  EXPECT_EQ(run->out, "loaded\n") << run->err;
}

}  // namespace
}  // namespace blueprintsync::testing
