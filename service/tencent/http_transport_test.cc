// Runs the libcurl transport against a local cpp-httplib server on
// 127.0.0.1 (port 0), since what matters here (headers on the wire,
// connection reuse, how failures are classified) only shows with real sockets.
#include "service/tencent/http_transport.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::tencent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct SeenRequest {
  std::multimap<std::string, std::string> headers;
  std::string body;
  int remote_port = -1;
};

class HttpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The transport honours proxy variables, as it should in production;
    // the tests talk to 127.0.0.1 directly.
    for (const char* name :
         {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      unsetenv(name);
    }
    server_.Post("/", [this](const httplib::Request& req, httplib::Response& res) {
      {
        absl::MutexLock lock(&mu_);
        seen_.push_back({{req.headers.begin(), req.headers.end()}, req.body, req.remote_port});
      }
      res.status = 200;
      res.set_content("echo:" + req.body, "application/json");
    });
    server_.Post("/status/503", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("<html>unavailable</html>", "text/html");
    });
    server_.Post("/huge", [](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      // Over the 4 MiB cap (upstream_bounds.h), under libcurl's own limits.
      res.set_content(std::string(5 * 1024 * 1024, 'x'), "application/json");
    });
    server_.Post("/slow", [this](const httplib::Request&, httplib::Response& res) {
      absl::MutexLock lock(&mu_);
      ++slow_requests_;
      // Held until the test releases it (bounded, so a failing test ends).
      mu_.AwaitWithTimeout(absl::Condition(&release_slow_), absl::Seconds(10));
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }

  void TearDown() override {
    {
      absl::MutexLock lock(&mu_);
      release_slow_ = true;
    }
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string Url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  HttpRequest Request(const std::string& path = "/") const {
    HttpRequest r;
    r.url = Url(path);
    r.headers = {{"Content-Type", "application/json"},
                 {"Host", "lighthouse.tencentcloudapi.com"},
                 {"X-TC-Action", "DescribeRegions"}};
    r.body = "{}";
    return r;
  }

  std::vector<SeenRequest> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mu_;
  std::vector<SeenRequest> seen_ ABSL_GUARDED_BY(mu_);
  int slow_requests_ ABSL_GUARDED_BY(mu_) = 0;
  bool release_slow_ ABSL_GUARDED_BY(mu_) = false;
};

ApiError ErrorOf(const absl::Status& status) {
  std::optional<ApiError> e = GetApiError(status);
  EXPECT_TRUE(e.has_value()) << status;
  return e.value_or(ApiError{});
}

TEST_F(HttpTransportTest, SendsHeadersAndBinaryBodyExactly) {
  auto transport = MakeCurlTransport();
  HttpRequest request = Request();
  // Over 1 MiB: the size at which libcurl would otherwise send
  // "Expect: 100-continue".
  request.body = std::string("{\"a\":\"\0\xff\x01\"}", 11) + std::string(1536 * 1024, 'z');
  request.headers.emplace_back("X-TC-Token", "tok");
  absl::StatusOr<HttpResponse> r = transport->Post(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->body, "echo:" + request.body);

  ASSERT_EQ(seen().size(), 1u);
  const SeenRequest s = seen()[0];
  EXPECT_EQ(s.body, request.body);
  EXPECT_EQ(s.headers.count("Content-Type"), 1u);
  EXPECT_EQ(s.headers.find("Content-Type")->second, "application/json");
  EXPECT_EQ(s.headers.count("Host"), 1u);
  EXPECT_EQ(s.headers.find("Host")->second, "lighthouse.tencentcloudapi.com");
  EXPECT_EQ(s.headers.find("X-TC-Action")->second, "DescribeRegions");
  EXPECT_EQ(s.headers.find("X-TC-Token")->second, "tok");
  EXPECT_EQ(s.headers.find("Content-Length")->second, std::to_string(request.body.size()));
  EXPECT_EQ(s.headers.count("Expect"), 0u);
  EXPECT_EQ(s.headers.count("Accept"), 0u);
}

TEST_F(HttpTransportTest, NoContentTypeUnlessGiven) {
  auto transport = MakeCurlTransport();
  HttpRequest request = Request();
  request.headers = {{"X-Only", "1"}};
  ASSERT_TRUE(transport->Post(request).ok());
  ASSERT_EQ(seen().size(), 1u);
  EXPECT_EQ(seen()[0].headers.count("Content-Type"), 0u);
}

TEST_F(HttpTransportTest, NonSuccessStatusIsAnAnswer) {
  absl::StatusOr<HttpResponse> r = MakeCurlTransport()->Post(Request("/status/503"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->content_type, "text/html");
  EXPECT_EQ(r->body, "<html>unavailable</html>");
}

TEST_F(HttpTransportTest, ReusesConnectionsUnlessFresh) {
  auto transport = MakeCurlTransport();
  ASSERT_TRUE(transport->Post(Request()).ok());
  ASSERT_TRUE(transport->Post(Request()).ok());
  HttpRequest fresh = Request();
  fresh.fresh_connection = true;
  ASSERT_TRUE(transport->Post(fresh).ok());
  ASSERT_TRUE(transport->Post(Request()).ok());
  const std::vector<SeenRequest> s = seen();
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].remote_port, s[1].remote_port);  // keep-alive reuse
  EXPECT_NE(s[2].remote_port, s[1].remote_port);  // fresh connection
  EXPECT_NE(s[3].remote_port, s[2].remote_port);
}

TEST_F(HttpTransportTest, FreshConnectionIsNotKeptForReuse) {
  auto transport = MakeCurlTransport();
  HttpRequest fresh = Request();
  fresh.fresh_connection = true;
  ASSERT_TRUE(transport->Post(fresh).ok());
  ASSERT_TRUE(transport->Post(Request()).ok());
  const std::vector<SeenRequest> s = seen();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_NE(s[1].remote_port, s[0].remote_port);
}

TEST_F(HttpTransportTest, ConnectionRefusedIsNothingSent) {
  // A port that was free a moment ago and has no listener.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  HttpRequest request = Request();
  request.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";
  absl::StatusOr<HttpResponse> r = MakeCurlTransport()->Post(request);
  ASSERT_FALSE(r.ok());
  ApiError e = ErrorOf(r.status());
  EXPECT_EQ(e.kind, ErrorKind::kTransport);
  EXPECT_EQ(e.code, "ClientError.NetworkError");
  EXPECT_EQ(e.http_status, 0);
  EXPECT_FALSE(e.MayHaveExecuted());
}

TEST_F(HttpTransportTest, TimeoutAfterSendingIsOutcomeUnknown) {
  auto transport = MakeCurlTransport();
  HttpRequest request = Request("/slow");
  request.headers.emplace_back("X-TC-Token", "secret-token-value");
  request.body = "{\"BlueprintId\":\"body-marker\"}";
  request.timeout = absl::Milliseconds(300);
  absl::StatusOr<HttpResponse> r = transport->Post(request);
  ASSERT_FALSE(r.ok());
  ApiError e = ErrorOf(r.status());
  EXPECT_EQ(e.kind, ErrorKind::kOutcomeUnknown);
  EXPECT_EQ(e.code, "ClientError.NetworkError");
  EXPECT_THAT(e.message, HasSubstr("Timeout"));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr("secret-token-value")));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr("body-marker")));
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(slow_requests_, 1);
}

TEST_F(HttpTransportTest, CutoffAbandonsACallUnderWayAsOutcomeUnknown) {
  CallCutoff cutoff;
  CurlTransportOptions options;
  options.cutoff = &cutoff;
  auto transport = MakeCurlTransport(options);
  const absl::Time at = absl::Now() + absl::Milliseconds(300);
  cutoff.AbandonAt(at);
  absl::StatusOr<HttpResponse> r = transport->Post(Request("/slow"));  // held 10 s
  const absl::Time returned = absl::Now();
  ASSERT_FALSE(r.ok());
  ApiError e = ErrorOf(r.status());
  EXPECT_EQ(e.kind, ErrorKind::kOutcomeUnknown);
  EXPECT_EQ(e.code, kAbandonedCode);
  EXPECT_TRUE(e.MayHaveExecuted());
  EXPECT_GE(returned, at);
  // The bound shutdown relies on (generous: a loaded, sanitized build).
  EXPECT_LT(returned - at, absl::Seconds(1)) << "abandoned " << (returned - at) << " late";
  // And nothing is sent once the cutoff has passed.
  absl::StatusOr<HttpResponse> after = transport->Post(Request("/"));
  ASSERT_FALSE(after.ok());
  ApiError not_sent = ErrorOf(after.status());
  EXPECT_EQ(not_sent.kind, ErrorKind::kTransport);
  EXPECT_EQ(not_sent.code, kAbandonedCode);
  EXPECT_TRUE(seen().empty());
}

TEST_F(HttpTransportTest, CutoffOnlyMovesEarlier) {
  CallCutoff cutoff;
  EXPECT_EQ(cutoff.at(), absl::InfiniteFuture());
  EXPECT_FALSE(cutoff.Passed());
  const absl::Time soon = absl::Now() + absl::Hours(1);
  cutoff.AbandonAt(soon);
  cutoff.AbandonAt(soon + absl::Hours(1));
  EXPECT_EQ(cutoff.at(), soon);
}

TEST_F(HttpTransportTest, OversizedBodyIsOutcomeUnknown) {
  absl::StatusOr<HttpResponse> r = MakeCurlTransport()->Post(Request("/huge"));
  ASSERT_FALSE(r.ok());
  ApiError e = ErrorOf(r.status());
  EXPECT_EQ(e.kind, ErrorKind::kOutcomeUnknown);
  EXPECT_EQ(e.http_status, 200);
  EXPECT_THAT(e.message, HasSubstr("response too large"));
  EXPECT_THAT(e.message, HasSubstr("4194304-byte limit"));
}

TEST_F(HttpTransportTest, HeaderInjectionRejectedBeforeSending) {
  HttpRequest request = Request();
  request.headers.emplace_back("X-TC-Token", "abc\r\nX-Evil: 1");
  absl::StatusOr<HttpResponse> r = MakeCurlTransport()->Post(request);
  ASSERT_FALSE(r.ok());
  ApiError e = ErrorOf(r.status());
  EXPECT_EQ(e.kind, ErrorKind::kLocal);
  EXPECT_THAT(e.message, HasSubstr("X-TC-Token"));
  EXPECT_THAT(e.message, Not(HasSubstr("abc")));
  EXPECT_TRUE(seen().empty());
}

TEST_F(HttpTransportTest, ConcurrentRequests) {
  auto transport = MakeCurlTransport();
  constexpr int kThreads = 6;
  constexpr int kPerThread = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        HttpRequest request = Request();
        request.body = std::to_string(t) + "-" + std::to_string(i);
        request.fresh_connection = (i % 3 == 0);
        absl::StatusOr<HttpResponse> r = transport->Post(request);
        if (r.ok() && r->body == "echo:" + request.body) ++ok;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(seen().size(), static_cast<size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace blueprintsync::tencent
