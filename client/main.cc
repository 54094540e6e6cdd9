// blueprint-sync: command-line client of the blueprint-sync service. All
// logic is in client/cli.cc; this only binds it to the process.
#include <grpc/support/log.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "client/cli.h"

namespace {

// Columns of the terminal on stdout, asked anew each time (the window may
// have been resized); $COLUMNS when the terminal does not say; 0: unknown.
int TerminalColumns() {
  winsize size{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  const char* columns = std::getenv("COLUMNS");
  if (columns == nullptr) return 0;
  const int n = std::atoi(columns);
  return n > 0 && n < 10000 ? n : 0;
}

// gRPC core writes its own line for a failed TLS handshake ("E1203 ...
// Handshake failed ...") before the call fails; the CLI reports the failure
// itself, with what to check, so core's lines are dropped unless the user
// asked for them with GRPC_VERBOSITY or GRPC_TRACE.
void QuietGrpcCoreLog() {
  if (std::getenv("GRPC_VERBOSITY") != nullptr || std::getenv("GRPC_TRACE") != nullptr) return;
  gpr_set_log_function([](gpr_log_func_args*) {});
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  blueprintsync::cli::CliEnvironment env;
  const char* term = std::getenv("TERM");
  env.stdout_is_terminal =
      isatty(STDOUT_FILENO) == 1 && !(term != nullptr && std::strcmp(term, "dumb") == 0);
  env.terminal_width = TerminalColumns;
  QuietGrpcCoreLog();
  return blueprintsync::cli::RunCli(args, env);
}
