// ChildProcess (tests/testing_util/process.h) against /bin/sh: the harness
// the end-to-end tests rely on must itself be right.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "tests/testing_util/process.h"

namespace blueprintsync::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ChildProcessOptions Shell(const std::string& script) {
  ChildProcessOptions o;
  o.argv = {"/bin/sh", "-c", script};
  return o;
}

TEST(ChildProcessTest, CapturesOutputAndExitCode) {
  auto r =
      RunToCompletion(Shell("echo one; echo two >&2; printf three; exit 7"), absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, ExitedWith(7));
  EXPECT_EQ(r->out, "one\nthree");
  EXPECT_EQ(r->err, "two\n");
}

TEST(ChildProcessTest, SetsAndUnsetsEnvironment) {
  setenv("BPS_PROCESS_TEST_DROP_ME", "x", 1);
  setenv("BPS_PROCESS_TEST_KEEP", "kept", 1);
  ChildProcessOptions o = Shell(
      "echo \"a=${BPS_PROCESS_TEST_A-unset} drop=${BPS_PROCESS_TEST_DROP_ME-unset} "
      "keep=${BPS_PROCESS_TEST_KEEP-unset}\"");
  o.env = {{"BPS_PROCESS_TEST_A", "1"}};
  o.unset_env = {"BPS_PROCESS_TEST_DROP*"};
  auto r = RunToCompletion(o, absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "a=1 drop=unset keep=kept\n");
}

TEST(ChildProcessTest, WaitsForALineAndTimesOut) {
  auto p = ChildProcess::Start(Shell("echo starting; sleep 0.2; echo ready at 42; sleep 30"));
  ASSERT_TRUE(p.ok()) << p.status();
  auto line = (*p)->WaitForStdoutLine(
      [](absl::string_view l) { return absl::StartsWith(l, "ready"); }, absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "ready at 42");
  auto never = (*p)->WaitForStdoutLine([](absl::string_view l) { return l == "never"; },
                                       absl::Milliseconds(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(never.status())) << never.status();
  EXPECT_FALSE((*p)->TryWait().has_value());
  ASSERT_TRUE((*p)->Signal(SIGTERM).ok());
  auto exit = (*p)->WaitForExit(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, KilledBy(SIGTERM));
  EXPECT_FALSE((*p)->Signal(SIGTERM).ok()) << "signalled a reaped pid";
}

TEST(ChildProcessTest, ReportsExitBeforeTheLine) {
  auto p = ChildProcess::Start(Shell("echo bye; exit 2"));
  ASSERT_TRUE(p.ok()) << p.status();
  auto line =
      (*p)->WaitForStdoutLine([](absl::string_view l) { return l == "ready"; }, absl::Seconds(10));
  EXPECT_TRUE(absl::IsFailedPrecondition(line.status())) << line.status();
  auto exit = (*p)->WaitForExit(absl::Seconds(10));
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(*exit, ExitedWith(2));
  EXPECT_THAT((*p)->StdoutLines(), ElementsAre("bye"));
}

TEST(ChildProcessTest, UnblocksSignalsInTheChild) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  auto p = ChildProcess::Start(Shell("echo up; sleep 30"));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(
      (*p)->WaitForStdoutLine([](absl::string_view l) { return l == "up"; }, absl::Seconds(10))
          .ok());
  ASSERT_TRUE((*p)->Signal(SIGTERM).ok());
  auto exit = (*p)->WaitForExit(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status() << " (SIGTERM stayed blocked in the child?)";
  EXPECT_EQ(*exit, KilledBy(SIGTERM));
}

TEST(ChildProcessTest, DestructorKillsTheChild) {
  pid_t pid;
  {
    auto p = ChildProcess::Start(Shell("exec sleep 60"));
    ASSERT_TRUE(p.ok()) << p.status();
    pid = (*p)->pid();
    ASSERT_EQ(kill(pid, 0), 0);
  }
  // Reaped by the destructor: the pid no longer exists (or is someone
  // else's, which kill(…, 0) cannot tell apart; a fresh pid is unlikely).
  EXPECT_NE(kill(pid, 0), 0);
}

// Dead, or a zombie waiting for whoever inherited it.
bool Gone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && line.size() > paren + 2 && line[paren + 2] == 'Z';
}

TEST(ChildProcessTest, DestructorKillsGrandchildrenAndDoesNotWaitForTheirPipes) {
  pid_t grandchild = 0;
  const absl::Time start = absl::Now();
  {
    auto p = ChildProcess::Start(Shell("sleep 60 & echo $!; wait"));
    ASSERT_TRUE(p.ok()) << p.status();
    auto line = (*p)->WaitForStdoutLine([](absl::string_view) { return true; }, absl::Seconds(10));
    ASSERT_TRUE(line.ok()) << line.status();
    ASSERT_TRUE(absl::SimpleAtoi(*line, &grandchild)) << *line;
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(30)) << "the destructor waited for sleep 60";
  bool gone = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       !(gone = Gone(grandchild)) && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived";
}

TEST(ChildProcessTest, OutputOfAnEndedChildIsCompleteEvenIfAGrandchildHoldsThePipe) {
  const std::string pid_file = ::testing::TempDir() + "/bps_grandchild_" + std::to_string(getpid());
  auto r = RunToCompletion(Shell("sleep 60 & echo $! > " + pid_file + "; echo done; exit 0"),
                           absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, ExitedWith(0));
  EXPECT_EQ(r->out, "done\n");
  // And the grandchild did not outlive the run.
  std::ifstream in(pid_file);
  pid_t grandchild = 0;
  ASSERT_TRUE(in >> grandchild);
  std::remove(pid_file.c_str());
  bool gone = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       !(gone = Gone(grandchild)) && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived";
}

TEST(ChildProcessTest, ExecFailureIsAnError) {
  ChildProcessOptions o;
  o.argv = {"/nonexistent/binary"};
  auto p = ChildProcess::Start(o);
  EXPECT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("/nonexistent/binary"));
}

TEST(ChildProcessTest, RunsInTheWorkingDirectory) {
  ChildProcessOptions o = Shell("pwd");
  o.working_dir = "/";
  auto r = RunToCompletion(o, absl::Seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "/\n");
}

TEST(ChildProcessTest, RunToCompletionKillsOnTimeout) {
  auto r = RunToCompletion(Shell("echo partial; exec sleep 60"), absl::Seconds(2));
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("partial"));
}

}  // namespace
}  // namespace blueprintsync::testing
