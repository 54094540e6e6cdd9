// Shared setup for the integration tests: a LighthouseEmulator served over
// real HTTP on 127.0.0.1:0 in this process, production Lighthouse clients
// (libcurl transport, rate limiter, retry policy) pointed at it, and the
// emulator's counters parsed into numbers (by the reader the end-to-end
// tests use too), so each test reads as "what the client returned" next to
// "what Tencent saw".
#ifndef BLUEPRINTSYNC_TESTS_INTEGRATION_INTEGRATION_HARNESS_H_
#define BLUEPRINTSYNC_TESTS_INTEGRATION_INTEGRATION_HARNESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/tencent/api_error.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/lighthouse_client.h"
#include "tests/emulator/emulator_server.h"
#include "tests/emulator/lighthouse_emulator.h"
#include "tests/testing_util/emulator_admin.h"

namespace blueprintsync::testing {

// How a test's client is built. The defaults are the production ones except
// for faster backoff and shorter timeouts, so failing paths stay quick.
struct ClientSetup {
  tencent::Credentials credentials{emulator::kDefaultSecretId, emulator::kDefaultSecretKey, "",
                                   absl::InfiniteFuture()};
  tencent::RateLimits rate_limits;  // production defaults (20/s sync, 10/s describe)
  tencent::RetryOptions retry = FastRetry();
  tencent::CurlTransportOptions transport = ShortTimeouts();
  Clock* clock = nullptr;  // nullptr: the system clock
  // Wraps the libcurl transport (e.g. to hold a request up on its way, as a
  // loaded host or a slow handshake does); none when empty.
  std::function<std::shared_ptr<tencent::HttpTransport>(std::shared_ptr<tencent::HttpTransport>)>
      wrap_transport;

  static tencent::RetryOptions FastRetry() {
    tencent::RetryOptions r;
    r.max_attempts = 6;
    r.initial_backoff = absl::Milliseconds(20);
    r.max_backoff = absl::Milliseconds(200);
    r.min_backoff = absl::Milliseconds(5);
    return r;
  }
  static tencent::CurlTransportOptions ShortTimeouts() {
    tencent::CurlTransportOptions t;
    t.connect_timeout = absl::Seconds(2);
    t.total_timeout = absl::Seconds(5);
    return t;
  }
};

// The emulator on 127.0.0.1:0. Construct, then ASSERT_OK(Start()).
class EmulatorHarness {
 public:
  explicit EmulatorHarness(emulator::EmulatorOptions options = {})
      : emulator_(std::move(options)), server_(&emulator_) {}
  ~EmulatorHarness() { server_.Stop(); }

  absl::Status Start() {
    absl::StatusOr<int> port = server_.Start("127.0.0.1", 0);
    if (!port.ok()) return port.status();
    port_ = *port;
    return absl::OkStatus();
  }

  int port() const { return port_; }
  std::string endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }
  emulator::LighthouseEmulator& emulator() { return emulator_; }

  absl::StatusOr<EmulatorStats> Stats() { return ParseEmulatorStats(emulator_.StatsJson()); }

  // The stats once `done` holds for them, or the last ones after `timeout`.
  // For calls the client gave up on (latency faults): the emulator updates
  // its counters only when its delayed answer is finally written.
  template <typename Predicate>
  absl::StatusOr<EmulatorStats> StatsWhen(Predicate done,
                                          absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time give_up = absl::Now() + timeout;
    absl::StatusOr<EmulatorStats> stats = Stats();
    while (stats.ok() && !done(*stats) && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(20));
      stats = Stats();
    }
    return stats;
  }

  std::unique_ptr<tencent::LighthouseClient> Client(const ClientSetup& setup = {}) {
    tencent::LighthouseClientOptions options;
    options.endpoint = endpoint();
    options.rate_limits = setup.rate_limits;
    options.retry = setup.retry;
    std::shared_ptr<tencent::HttpTransport> transport = tencent::MakeCurlTransport(setup.transport);
    if (setup.wrap_transport) transport = setup.wrap_transport(std::move(transport));
    return tencent::MakeLighthouseClient(
        options, std::make_shared<tencent::StaticCredentialProvider>(setup.credentials),
        std::move(transport), nullptr, setup.clock);
  }

 private:
  emulator::LighthouseEmulator emulator_;
  emulator::EmulatorServer server_;
  int port_ = 0;
};

// The ApiError a failed call carries (nullopt on success or when missing).
template <typename T>
std::optional<tencent::ApiError> ApiErrorOf(const absl::StatusOr<T>& result) {
  if (result.ok()) return std::nullopt;
  return tencent::GetApiError(result.status());
}

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_INTEGRATION_INTEGRATION_HARNESS_H_
