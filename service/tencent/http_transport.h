// HttpTransport: sends one HTTPS/HTTP POST and returns the answer. The only
// place that touches libcurl. Implementations are thread-safe.
//
// Failures come back as absl::Status values built by MakeStatus(ApiError):
//   kTransport       nothing was sent (DNS, connect, TLS handshake failed)
//   kOutcomeUnknown  the request was (possibly) sent but no complete answer
//                    came back (timeout, reset, connection closed)
// Any complete HTTP response, whatever its status, is a success here; the
// Lighthouse client interprets status and body.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_HTTP_TRANSPORT_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_HTTP_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace blueprintsync::tencent {

// The moment upstream calls are abandoned: shutdown sets it to the drain
// deadline, so that no call can hold the process past it. From then on a
// transfer under way ends within kCutoffPoll as a failure with code
// ClientError.Abandoned (kOutcomeUnknown once anything was sent: the call may
// have executed; kTransport if nothing was), and no new transfer starts.
// Thread-safe; the cutoff only ever moves earlier.
class CallCutoff {
 public:
  void AbandonAt(absl::Time at);
  absl::Time at() const;
  bool Passed() const;

 private:
  std::atomic<int64_t> at_unix_nanos_{INT64_MAX};
};

// The cutoff of every transport and getter made without one of its own: one
// per process, because shutdown is.
CallCutoff& ProcessCallCutoff();

// The code of a call cut off by its CallCutoff.
inline constexpr char kAbandonedCode[] = "ClientError.Abandoned";
// How late a transfer under way may notice that the cutoff has passed.
inline constexpr absl::Duration kCutoffPoll = absl::Milliseconds(100);

struct HttpRequest {
  std::string url;  // "https://lighthouse.tencentcloudapi.com/" or "http://127.0.0.1:PORT/"
  std::vector<std::pair<std::string, std::string>> headers;  // sent exactly as given
  std::string body;
  // Non-idempotent calls must not be replayed by the HTTP library: libcurl
  // silently resends a request whose reused keep-alive connection turns out
  // dead. With fresh_connection the request always goes on a new connection,
  // so that can never happen.
  bool fresh_connection = false;
  // Total time for this request; the transport's own timeout applies when
  // zero. The smaller of the two wins.
  absl::Duration timeout = absl::ZeroDuration();
};

struct HttpResponse {
  long status = 0;
  std::string content_type;
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual absl::StatusOr<HttpResponse> Post(const HttpRequest& request) = 0;
};

struct CurlTransportOptions {
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration total_timeout = absl::Seconds(30);
  std::string ca_file;  // CURLOPT_CAINFO when non-empty
  std::string ca_path;  // CURLOPT_CAPATH when non-empty
  // Proxies come from the standard environment variables (https_proxy,
  // HTTPS_PROXY, http_proxy, no_proxy/NO_PROXY, all_proxy), as libcurl reads
  // them; an explicit proxy overrides them when non-empty.
  std::string proxy;
  // Idle connections kept per handle are closed after this long (Tencent's
  // servers drop idle keep-alive connections after 60 s).
  absl::Duration max_idle = absl::Seconds(30);
  // When calls are abandoned (shutdown); never null.
  CallCutoff* cutoff = &ProcessCallCutoff();
};

std::shared_ptr<HttpTransport> MakeCurlTransport(CurlTransportOptions options = {});

// HTTP GET, for the instance metadata service (credentials), which the
// POST-only HttpTransport does not offer. Same failure convention as HttpTransport
// (kTransport: nothing sent, e.g. connection refused or DNS failure).
class HttpGetter {
 public:
  virtual ~HttpGetter() = default;
  virtual absl::StatusOr<HttpResponse> Get(const std::string& url, absl::Duration connect_timeout,
                                           absl::Duration timeout) = 0;
};

// libcurl GET that never uses a proxy: the metadata service is only reachable
// directly from the instance, and a cluster-wide https_proxy/http_proxy must
// not capture it.
std::shared_ptr<HttpGetter> MakeCurlGetter(CallCutoff* cutoff = &ProcessCallCutoff());

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_HTTP_TRANSPORT_H_
