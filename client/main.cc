// blueprint-sync: command-line client of the blueprint-sync service. All
// logic is in client/cli.cc; this only binds it to the process.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "client/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  blueprintsync::cli::CliEnvironment env;
  const char* term = std::getenv("TERM");
  env.stdout_is_terminal =
      isatty(STDOUT_FILENO) == 1 && !(term != nullptr && std::strcmp(term, "dumb") == 0);
  return blueprintsync::cli::RunCli(args, env);
}
