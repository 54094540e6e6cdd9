// blueprint-sync: command-line client of the blueprint-sync service. All
// logic is in client/cli.cc; this only binds it to the process.
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

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  blueprintsync::cli::CliEnvironment env;
  const char* term = std::getenv("TERM");
  env.stdout_is_terminal =
      isatty(STDOUT_FILENO) == 1 && !(term != nullptr && std::strcmp(term, "dumb") == 0);
  env.terminal_width = TerminalColumns;
  return blueprintsync::cli::RunCli(args, env);
}
