// FakeHttpTransport: the one HttpTransport double for tests of the Tencent
// layer. It records every request (with the time it was sent, when given a
// clock) and answers from a script, then with a fixed answer once the script
// is used up. A request with neither is a test failure, so a test that
// scripts N answers also proves no (N+1)th call went out. Thread-safe.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_TESTING_FAKE_HTTP_TRANSPORT_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_TESTING_FAKE_HTTP_TRANSPORT_H_

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/clock.h"
#include "service/tencent/api_error.h"
#include "service/tencent/http_transport.h"

namespace blueprintsync::testing {

using tencent::ErrorKind;
using tencent::HttpRequest;
using tencent::HttpResponse;
using tencent::HttpTransport;

// A complete HTTP answer.
HttpResponse Answer(long status, std::string body, std::string content_type = "application/json");

// What the transport reports when the request never left (kTransport) or
// may have been sent without a complete answer (kOutcomeUnknown).
absl::Status TransportFailure(ErrorKind kind);

class FakeHttpTransport final : public HttpTransport {
 public:
  // `clock` (optional) stamps each recorded request.
  explicit FakeHttpTransport(Clock* clock = nullptr) : clock_(clock) {}

  absl::StatusOr<HttpResponse> Post(const HttpRequest& request) override;

  // Answers the next request (in order of Push calls).
  void Push(absl::StatusOr<HttpResponse> answer);
  void PushN(int n, const absl::StatusOr<HttpResponse>& answer);
  // Answers every request once the script is used up.
  void AnswerAlways(absl::StatusOr<HttpResponse> answer);

  std::vector<HttpRequest> requests() const;
  std::vector<absl::Time> times() const;  // empty without a clock
  size_t remaining() const;               // scripted answers not used yet

 private:
  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::deque<absl::StatusOr<HttpResponse>> script_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::StatusOr<HttpResponse>> always_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> times_ ABSL_GUARDED_BY(mu_);
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_TESTING_FAKE_HTTP_TRANSPORT_H_
