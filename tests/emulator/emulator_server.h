// EmulatorServer: puts a LighthouseEmulator on a real HTTP listener
// (cpp-httplib). POST / is the Tencent API; /_emulator/* is the unsigned admin
// surface tests use to configure and observe the emulator. Used by the
// lighthouse-emulator binary and, in-process, by tests.
#ifndef BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_SERVER_H_
#define BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "tests/emulator/lighthouse_emulator.h"

namespace httplib {
class Server;
}

namespace blueprintsync::emulator {

class EmulatorServer {
 public:
  // `emulator` must outlive the server.
  explicit EmulatorServer(LighthouseEmulator* emulator);
  ~EmulatorServer();

  EmulatorServer(const EmulatorServer&) = delete;
  EmulatorServer& operator=(const EmulatorServer&) = delete;

  // Binds host:port (port 0 = any free port) and serves on a background
  // thread. Returns the bound port.
  absl::StatusOr<int> Start(const std::string& host, int port);
  // Stops accepting, waits for the serving thread. Idempotent.
  void Stop();

 private:
  void InstallRoutes();

  LighthouseEmulator* const emulator_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
};

}  // namespace blueprintsync::emulator

#endif  // BLUEPRINTSYNC_TESTS_EMULATOR_EMULATOR_SERVER_H_
