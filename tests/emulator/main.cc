// lighthouse-emulator: a local Tencent Cloud Lighthouse API endpoint for
// integration and end-to-end tests. See `lighthouse-emulator --help`.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/emulator/emulator_regions.h"
#include "tests/emulator/emulator_server.h"
#include "tests/emulator/lighthouse_emulator.h"

namespace {

using ::blueprintsync::emulator::EmulatorOptions;
using ::blueprintsync::emulator::EmulatorServer;
using ::blueprintsync::emulator::LighthouseEmulator;

constexpr char kUsage[] =
    "usage: lighthouse-emulator --listen HOST:PORT [--seed FILE.json]\n"
    "         [--key ID:KEY[:TOKEN]]... [--no-default-keys] [--sync-duration-ms N]\n"
    "         [--fail-region REGION]... [--rate-limit ACTION=N]... [--fault-seed N] [--quiet]\n"
    "Serves the Lighthouse API 3.0 (2020-03-24) on POST / and an unsigned admin API\n"
    "under /_emulator/ (stats, reset-stats, config, blueprints, keys, faults).\n"
    "PORT 0 picks a free port; the first stdout line names the bound address.\n";

[[noreturn]] void UsageError(const std::string& message) {
  std::cerr << "lighthouse-emulator: " << message << "\n" << kUsage;
  std::exit(2);
}

struct Flags {
  std::string host = "127.0.0.1";
  int port = 0;
  bool listen_given = false;
  bool quiet = false;
  EmulatorOptions options;
};

int64_t ParseNonNegative(const std::string& flag, const std::string& value) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < 0) {
    UsageError(absl::StrCat(flag, " needs a non-negative integer, got \"", value, "\""));
  }
  return n;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  bool default_keys = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline_value = false;
    if (arg.rfind("--", 0) == 0) {
      if (size_t eq = arg.find('='); eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline_value = true;
      }
    }
    auto need_value = [&]() -> std::string {
      if (has_inline_value) return value;
      if (i + 1 >= argc) UsageError(absl::StrCat(arg, " needs a value"));
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--listen") {
      const std::string v = need_value();
      const size_t colon = v.rfind(':');
      if (colon == std::string::npos || colon == 0) UsageError("--listen needs HOST:PORT");
      f.host = v.substr(0, colon);
      if (f.host.size() > 2 && f.host.front() == '[' && f.host.back() == ']') {
        f.host = f.host.substr(1, f.host.size() - 2);
      }
      const int64_t port = ParseNonNegative("--listen port", v.substr(colon + 1));
      if (port > 65535) UsageError("--listen port must be at most 65535");
      f.port = static_cast<int>(port);
      f.listen_given = true;
    } else if (arg == "--seed") {
      const std::string path = need_value();
      std::ifstream in(path);
      if (!in) UsageError(absl::StrCat("cannot read seed file ", path));
      std::stringstream ss;
      ss << in.rdbuf();
      auto seed = blueprintsync::emulator::ParseSeedJson(ss.str(), absl::Now());
      if (!seed.ok()) UsageError(absl::StrCat(path, ": ", seed.status().message()));
      f.options.seed = *std::move(seed);
    } else if (arg == "--key") {
      const std::vector<std::string> parts = absl::StrSplit(need_value(), absl::MaxSplits(':', 2));
      if (parts.size() < 2 || parts[0].empty() || parts[1].empty()) {
        UsageError("--key needs ID:KEY or ID:KEY:TOKEN");
      }
      blueprintsync::emulator::EmulatorKey key{parts[0], parts[1], std::nullopt, std::nullopt};
      if (parts.size() == 3) key.token = parts[2];
      f.options.keys.push_back(std::move(key));
    } else if (arg == "--no-default-keys") {
      default_keys = false;
    } else if (arg == "--sync-duration-ms") {
      f.options.config.sync_duration_ms = ParseNonNegative(arg, need_value());
    } else if (arg == "--fail-region") {
      const std::string region = need_value();
      if (blueprintsync::emulator::FindEmulatedRegion(region) == nullptr) {
        UsageError(absl::StrCat("--fail-region: unknown region ", region));
      }
      f.options.config.fail_regions.insert(region);
    } else if (arg == "--rate-limit") {
      const std::string v = need_value();
      const size_t eq = v.find('=');
      if (eq == std::string::npos) UsageError("--rate-limit needs ACTION=N");
      const std::string action = v.substr(0, eq);
      if (!blueprintsync::emulator::IsEmulatedAction(action)) {
        UsageError(absl::StrCat("--rate-limit: unknown action ", action));
      }
      f.options.config.rate_limits[action] = ParseNonNegative(arg, v.substr(eq + 1));
    } else if (arg == "--fault-seed") {
      f.options.fault_seed = static_cast<uint64_t>(ParseNonNegative(arg, need_value()));
    } else if (arg == "--quiet") {
      f.quiet = true;
    } else {
      UsageError(absl::StrCat("unknown argument \"", arg, "\""));
    }
  }
  if (!f.listen_given) UsageError("--listen HOST:PORT is required");
  f.options.default_keys = default_keys;
  f.options.log_requests = !f.quiet;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);

  // Block the stop signals before any thread exists so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  LighthouseEmulator emulator(std::move(flags.options));
  EmulatorServer server(&emulator);
  absl::StatusOr<int> port = server.Start(flags.host, flags.port);
  if (!port.ok()) {
    std::cerr << "lighthouse-emulator: " << port.status().message() << "\n";
    return 1;
  }
  const std::string shown_host =
      flags.host.find(':') != std::string::npos ? absl::StrCat("[", flags.host, "]") : flags.host;
  std::printf("lighthouse-emulator listening on http://%s:%d\n", shown_host.c_str(), *port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (!flags.quiet) std::fprintf(stderr, "lighthouse-emulator: signal %d, stopping\n", sig);
  server.Stop();
  return 0;
}
