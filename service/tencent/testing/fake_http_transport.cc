#include "service/tencent/testing/fake_http_transport.h"

#include <utility>

#include "gtest/gtest.h"

namespace blueprintsync::testing {

using tencent::ApiError;
using tencent::MakeStatus;

HttpResponse Answer(long status, std::string body, std::string content_type) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

absl::Status TransportFailure(ErrorKind kind) {
  ApiError e;
  e.kind = kind;
  e.code = "ClientError.NetworkError";
  e.message = kind == ErrorKind::kTransport ? "Couldn't connect to server" : "Timeout was reached";
  return MakeStatus(e);
}

absl::StatusOr<HttpResponse> FakeHttpTransport::Post(const HttpRequest& request) {
  absl::MutexLock lock(&mu_);
  requests_.push_back(request);
  if (clock_ != nullptr) times_.push_back(clock_->Now());
  if (!script_.empty()) {
    absl::StatusOr<HttpResponse> next = std::move(script_.front());
    script_.pop_front();
    return next;
  }
  if (always_.has_value()) return *always_;
  ADD_FAILURE() << "unexpected request #" << requests_.size();
  return TransportFailure(ErrorKind::kTransport);
}

void FakeHttpTransport::Push(absl::StatusOr<HttpResponse> answer) {
  absl::MutexLock lock(&mu_);
  script_.push_back(std::move(answer));
}

void FakeHttpTransport::PushN(int n, const absl::StatusOr<HttpResponse>& answer) {
  for (int i = 0; i < n; ++i) Push(answer);
}

void FakeHttpTransport::AnswerAlways(absl::StatusOr<HttpResponse> answer) {
  absl::MutexLock lock(&mu_);
  always_ = std::move(answer);
}

std::vector<HttpRequest> FakeHttpTransport::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

std::vector<absl::Time> FakeHttpTransport::times() const {
  absl::MutexLock lock(&mu_);
  return times_;
}

size_t FakeHttpTransport::remaining() const {
  absl::MutexLock lock(&mu_);
  return script_.size();
}

}  // namespace blueprintsync::testing
