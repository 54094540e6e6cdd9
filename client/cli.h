// RunCli(): the blueprint-sync command line, from parsed arguments to the exit
// code. Everything the process touches (stdout/stderr, environment, whether
// stdout is a terminal, the clock, how to reach the service) comes in through
// CliEnvironment, so main.cc stays a few lines and tests drive whole
// commands against a fake BlueprintSyncConnection.
#ifndef BLUEPRINTSYNC_CLIENT_CLI_H_
#define BLUEPRINTSYNC_CLIENT_CLI_H_

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/connection.h"
#include "client/grpc_connection.h"
#include "client/job_watcher.h"
#include "client/progress_view.h"
#include "service/common/clock.h"
#include "service/common/flags.h"

namespace blueprintsync::cli {

struct CliEnvironment {
  std::ostream* out = &std::cout;
  std::ostream* err = &std::cerr;
  // Chooses the in-place table for live progress; main() sets it from
  // isatty(1) and TERM.
  bool stdout_is_terminal = false;
  // The terminal's width for the in-place table; nullptr: 80 columns.
  TerminalWidth terminal_width;
  Flags::Getenv getenv;  // nullptr: the process environment
  Clock* clock = SystemClock::Default();
  // nullptr: MakeGrpcConnection.
  std::function<std::unique_ptr<BlueprintSyncConnection>(const ConnectionOptions&)> connect;
  ReconnectPolicy reconnect;
  // How often the terminal table is redrawn to move the elapsed time;
  // zero disables the redraw thread.
  absl::Duration redraw_interval = absl::Seconds(1);
};

// `args` excludes the program name. Returns an ExitCode.
int RunCli(const std::vector<std::string>& args, const CliEnvironment& env);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_CLI_H_
