// Runs the real lighthouse-emulator binary: the announced address, a signed
// call against the system clock, request logging without secrets, clean exit
// on SIGTERM, and exit status 2 on bad flags.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/emulator/emulator_test_client.h"

namespace blueprintsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
};

// Starts the binary with stdout on a pipe and stderr into `stderr_path`.
Child Spawn(const std::vector<std::string>& args, const std::string& stderr_path) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(err, STDERR_FILENO);
    close(fds[0]);
    std::vector<char*> argv;
    std::string binary = LIGHTHOUSE_EMULATOR_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempPath(const char* name) {
  return ::testing::TempDir() + "/" + name + std::to_string(getpid());
}

TEST(EmulatorCliTest, AnnouncesPortServesAndStopsOnSigterm) {
  const std::string err_path = TempPath("emu_stderr");
  Child c = Spawn({"--listen", "127.0.0.1:0", "--sync-duration-ms", "100"}, err_path);
  ASSERT_GT(c.pid, 0);
  ASSERT_NE(c.out, nullptr);
  char line[256] = {0};
  ASSERT_NE(fgets(line, sizeof(line), c.out), nullptr);
  const std::string first(line);
  const std::string prefix = "lighthouse-emulator listening on http://127.0.0.1:";
  ASSERT_EQ(first.rfind(prefix, 0), 0u) << first;
  ASSERT_EQ(first.back(), '\n') << first;
  const std::string port_text = first.substr(prefix.size(), first.size() - prefix.size() - 1);
  ASSERT_FALSE(port_text.empty());
  ASSERT_EQ(port_text.find_first_not_of("0123456789"), std::string::npos) << first;
  const int port = std::stoi(port_text);
  ASSERT_GT(port, 0);

  SignSpec s;
  s.action = "DescribeBlueprints";
  s.region = "ap-tokyo";
  s.timestamp = static_cast<int64_t>(std::time(nullptr));
  s.host = "127.0.0.1:" + std::to_string(port);
  Reply r = CallApi(port, s, R"({"BlueprintIds":["lhbp-ls883feh"]})");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.error_code(), "") << r.body;
  EXPECT_EQ(r.response()["TotalCount"].GetInt(), 1);
  EXPECT_STREQ(r.response()["BlueprintSet"][0]["BlueprintName"].GetString(), "doc-example");

  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  EXPECT_EQ(WaitExit(c.pid), 0);
  fclose(c.out);
  const std::string log = ReadFile(err_path);
  EXPECT_THAT(log, HasSubstr("action=DescribeBlueprints region=ap-tokyo code=OK"));
  EXPECT_THAT(log, Not(HasSubstr(s.secret_key)));
  EXPECT_THAT(log, Not(HasSubstr("Signature")));
  std::remove(err_path.c_str());
}

TEST(EmulatorCliTest, SeedFileAndKeysFromFlags) {
  const std::string seed_path = TempPath("emu_seed");
  {
    std::ofstream seed(seed_path);
    seed
        << R"({"blueprints":[{"Region":"ap-seoul","BlueprintId":"lhbp-fromfile","BlueprintName":"f"}]})";
  }
  const std::string err_path = TempPath("emu_stderr2");
  Child c = Spawn({"--listen=127.0.0.1:0", "--quiet", "--no-default-keys", "--seed", seed_path,
                   "--key", "AKIDflag:flagsecret:flagtoken", "--rate-limit", "DescribeBlueprints=1",
                   "--rate-limit", "DeleteBlueprints=1"},
                  err_path);
  ASSERT_GT(c.pid, 0);
  char line[256] = {0};
  ASSERT_NE(fgets(line, sizeof(line), c.out), nullptr);
  const std::string first(line);
  const int port = std::stoi(first.substr(first.rfind(':') + 1));

  SignSpec s;
  s.action = "DescribeBlueprints";
  s.region = "ap-seoul";
  s.timestamp = static_cast<int64_t>(std::time(nullptr));
  EXPECT_EQ(CallApi(port, s, "{}").error_code(), "AuthFailure.SecretIdNotFound");
  s.secret_id = "AKIDflag";
  s.secret_key = "flagsecret";
  s.token = "flagtoken";
  Reply r = CallApi(port, s, "{}");
  ASSERT_EQ(r.error_code(), "") << r.body;
  EXPECT_EQ(r.response()["TotalCount"].GetInt(), 1);
  EXPECT_EQ(CallApi(port, s, "{}").error_code(), "RequestLimitExceeded");
  SignSpec d = s;
  d.action = "DeleteBlueprints";
  const std::string del = R"({"BlueprintIds":["lhbp-fromfile"]})";
  EXPECT_EQ(CallApi(port, d, del).error_code(), "");
  EXPECT_EQ(CallApi(port, d, del).error_code(), "RequestLimitExceeded");

  ASSERT_EQ(kill(c.pid, SIGINT), 0);
  EXPECT_EQ(WaitExit(c.pid), 0);
  fclose(c.out);
  EXPECT_EQ(ReadFile(err_path), "");  // --quiet
  std::remove(seed_path.c_str());
  std::remove(err_path.c_str());
}

TEST(EmulatorCliTest, BadFlagsExitWithStatus2) {
  const std::string err_path = TempPath("emu_stderr3");
  const std::vector<std::vector<std::string>> bad = {
      {"--listen", "127.0.0.1:0", "--bogus"},
      {"--listen", "nohostport"},
      {"--listen", "127.0.0.1:0", "--sync-duration-ms", "soon"},
      {"--listen", "127.0.0.1:0", "--rate-limit", "Nope=3"},
      {"--listen", "127.0.0.1:0", "--fail-region", "ap-mars"},
      {"--listen", "127.0.0.1:0", "--key", "onlyid"},
      {"--listen", "127.0.0.1:0", "--seed", "/nonexistent/seed.json"},
      {"--listen"},
  };
  for (const auto& args : bad) {
    Child c = Spawn(args, err_path);
    ASSERT_GT(c.pid, 0);
    EXPECT_EQ(WaitExit(c.pid), 2) << args.back();
    fclose(c.out);
    EXPECT_THAT(ReadFile(err_path), HasSubstr("lighthouse-emulator: ")) << args.back();
  }
  std::remove(err_path.c_str());
}

}  // namespace
}  // namespace blueprintsync::testing
