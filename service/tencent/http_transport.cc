#include "service/tencent/http_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/tencent/api_error.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::tencent {

void CallCutoff::AbandonAt(absl::Time at) {
  const int64_t nanos = absl::ToUnixNanos(at);
  int64_t current = at_unix_nanos_.load();
  while (nanos < current && !at_unix_nanos_.compare_exchange_weak(current, nanos)) {
  }
}

absl::Time CallCutoff::at() const {
  const int64_t nanos = at_unix_nanos_.load();
  return nanos == INT64_MAX ? absl::InfiniteFuture() : absl::FromUnixNanos(nanos);
}

bool CallCutoff::Passed() const { return absl::Now() >= at(); }

CallCutoff& ProcessCallCutoff() {
  static CallCutoff* const cutoff = new CallCutoff();
  return *cutoff;
}

namespace {

// Tencent answers are a few KiB; anything this large is not a usable answer
// and must not be buffered without bound (upstream_bounds.h).
constexpr size_t kMaxResponseBody = bounds::kMaxResponseBodyBytes;
constexpr char kNetworkError[] = "ClientError.NetworkError";

absl::Status Failure(ErrorKind kind, std::string code, std::string message) {
  ApiError error;
  error.kind = kind;
  error.code = std::move(code);
  error.message = std::move(message);
  return MakeStatus(error);
}

absl::Status InitCurlOnce() {
  // curl_global_init is not guaranteed thread-safe; a function-local static
  // runs it exactly once even when the first requests race.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    return Failure(ErrorKind::kTransport, kNetworkError,
                   absl::StrCat("curl_global_init failed: ", curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

long ClampMillis(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  // 0 would mean "no timeout" to libcurl; a request whose budget is almost
  // used up must still time out.
  return static_cast<long>(std::clamp<int64_t>(ms, 1, LONG_MAX));
}

long ClampSeconds(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  return static_cast<long>(std::clamp<int64_t>(s, 1, LONG_MAX));
}

bool HasLineBreakOrNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

absl::Status OutOfMemory() {
  return Failure(ErrorKind::kTransport, kNetworkError, "out of memory building the request");
}

struct BodySink {
  std::string* body;
  size_t limit = kMaxResponseBody;
  bool too_large = false;
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<BodySink*>(userdata);
  const size_t n = size * nmemb;
  if (sink->body->size() + n > sink->limit) {
    sink->too_large = true;
    return 0;  // makes libcurl abort the transfer with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
using Multi = std::unique_ptr<CURLM, MultiDeleter>;

// curl_easy_perform, through `multi` so that the transfer can be given up at
// `cutoff` (libcurl's progress callback can come a second late; this loop
// looks at least every kCutoffPoll). `*abandoned` tells that apart from
// libcurl's own failures.
CURLcode PerformUntilCutoff(CURL* easy, CURLM* multi, const CallCutoff& cutoff, bool* abandoned) {
  *abandoned = false;
  if (cutoff.Passed()) {
    *abandoned = true;
    return CURLE_ABORTED_BY_CALLBACK;
  }
  if (curl_multi_add_handle(multi, easy) != CURLM_OK) return CURLE_FAILED_INIT;
  CURLcode result = CURLE_OK;
  for (;;) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      result = CURLE_FAILED_INIT;
      break;
    }
    if (running == 0) {
      result = CURLE_GOT_NOTHING;  // replaced by the transfer's own result
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) result = msg->data.result;
      }
      break;
    }
    const absl::Time now = absl::Now();
    const absl::Time at = cutoff.at();
    if (now >= at) {
      *abandoned = true;
      result = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    // libcurl wakes earlier for its own timers (timeouts included).
    const int64_t wait_ms = std::clamp<int64_t>(
        absl::ToInt64Milliseconds(std::min(at - now, kCutoffPoll)) + 1, 1, 1000);
    if (curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait_ms), nullptr) != CURLM_OK) {
      result = CURLE_FAILED_INIT;
      break;
    }
  }
  // Removing a transfer that is under way closes its connection.
  curl_multi_remove_handle(multi, easy);
  return result;
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(CurlTransportOptions options) : options_(std::move(options)) {}

  ~CurlTransport() override {
    absl::MutexLock lock(&mu_);
    for (const Pooled& p : free_) {
      curl_multi_cleanup(p.multi);
      curl_easy_cleanup(p.easy);
    }
  }

  absl::StatusOr<HttpResponse> Post(const HttpRequest& request) override;

 private:
  // An easy handle and the multi handle it runs in (PerformUntilCutoff).
  // The multi handle holds the connection cache, so the pair goes back to
  // the pool together: that is what makes keep-alive reuse work across
  // requests.
  struct Pooled {
    CURL* easy = nullptr;
    CURLM* multi = nullptr;
  };
  class HandleLease {
   public:
    HandleLease(CurlTransport* owner, Pooled handle) : owner_(owner), handle_(handle) {}
    HandleLease(const HandleLease&) = delete;
    HandleLease& operator=(const HandleLease&) = delete;
    ~HandleLease() { owner_->Release(handle_); }
    CURL* get() const { return handle_.easy; }
    CURLM* multi() const { return handle_.multi; }

   private:
    CurlTransport* owner_;
    Pooled handle_;
  };

  // Both handles, or nullopt when libcurl cannot make them.
  std::optional<Pooled> Acquire() {
    {
      absl::MutexLock lock(&mu_);
      if (!free_.empty()) {
        Pooled handle = free_.back();
        free_.pop_back();
        return handle;
      }
    }
    Pooled made{curl_easy_init(), curl_multi_init()};
    if (made.easy != nullptr && made.multi != nullptr) return made;
    if (made.easy != nullptr) curl_easy_cleanup(made.easy);
    if (made.multi != nullptr) curl_multi_cleanup(made.multi);
    return std::nullopt;
  }

  void Release(Pooled handle) {
    // Drops every option (and so every pointer into this request's buffers)
    // but keeps live connections and caches.
    curl_easy_reset(handle.easy);
    absl::MutexLock lock(&mu_);
    free_.push_back(handle);
  }

  absl::Status Configure(CURL* h, const HttpRequest& request, curl_slist* headers, BodySink* sink,
                         char* error_buffer) const;

  const CurlTransportOptions options_;
  absl::Mutex mu_;
  std::vector<Pooled> free_ ABSL_GUARDED_BY(mu_);
};

absl::Status CurlTransport::Configure(CURL* h, const HttpRequest& request, curl_slist* headers,
                                      BodySink* sink, char* error_buffer) const {
  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode r) {
    if (rc == CURLE_OK) rc = r;
  };
  set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer));
  set(curl_easy_setopt(h, CURLOPT_URL, request.url.c_str()));
#if LIBCURL_VERSION_NUM >= 0x075500
  set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"));
#endif
  set(curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1)));
  set(curl_easy_setopt(h, CURLOPT_POST, 1L));
  // Set size first so the body is used as binary data, not a C string.
  set(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size())));
  set(curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data()));
  set(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers));
  set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ClampMillis(options_.connect_timeout)));
  absl::Duration total = options_.total_timeout;
  if (request.timeout > absl::ZeroDuration()) total = std::min(total, request.timeout);
  set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ClampMillis(total)));
  if (!options_.ca_file.empty()) set(curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str()));
  if (!options_.ca_path.empty()) set(curl_easy_setopt(h, CURLOPT_CAPATH, options_.ca_path.c_str()));
  if (!options_.proxy.empty()) set(curl_easy_setopt(h, CURLOPT_PROXY, options_.proxy.c_str()));
  set(curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, ClampSeconds(options_.max_idle)));
  set(curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L));
  set(curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L));
  set(curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 15L));
  if (request.fresh_connection) {
    // A new connection that is closed afterwards: libcurl never has a stale
    // keep-alive connection to silently replay this request on.
    set(curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L));
    set(curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L));
  }
  set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody));
  set(curl_easy_setopt(h, CURLOPT_WRITEDATA, sink));
  if (rc != CURLE_OK) {
    return Failure(ErrorKind::kTransport, kNetworkError,
                   absl::StrCat("configuring libcurl failed: ", curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> CurlTransport::Post(const HttpRequest& request) {
  if (absl::Status init = InitCurlOnce(); !init.ok()) return init;

  // Built before any connection is made so that a bad header sends nothing.
  // Messages name the header, never its value (it may be a token).
  Slist headers;
  bool has_content_type = false;
  bool has_accept = false;
  auto append = [&headers](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next == nullptr) return false;
    headers.release();
    headers.reset(next);
    return true;
  };
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || HasLineBreakOrNul(name) || HasLineBreakOrNul(value) ||
        name.find(':') != std::string::npos) {
      return Failure(ErrorKind::kLocal, "ClientError.InvalidArgument",
                     absl::StrCat("HTTP header '", HasLineBreakOrNul(name) ? "?" : name,
                                  "' has an invalid name or value; request not sent"));
    }
    if (absl::EqualsIgnoreCase(name, "Content-Type")) has_content_type = true;
    if (absl::EqualsIgnoreCase(name, "Accept")) has_accept = true;
    // "Name:" would make libcurl drop the header; "Name;" sends it empty.
    const std::string line = value.empty() ? name + ";" : absl::StrCat(name, ": ", value);
    if (!append(line)) return OutOfMemory();
  }
  // No "Expect: 100-continue" round trip, and none of libcurl's default
  // headers: above all no Content-Type (application/x-www-form-urlencoded)
  // next to or instead of the caller's, whose value is the signed one.
  if (!append("Expect:")) return OutOfMemory();
  if (!has_content_type && !append("Content-Type:")) return OutOfMemory();
  if (!has_accept && !append("Accept:")) return OutOfMemory();

  std::optional<Pooled> pooled = Acquire();
  if (!pooled) return Failure(ErrorKind::kTransport, kNetworkError, "curl_easy_init failed");
  HandleLease handle(this, *pooled);

  HttpResponse response;
  BodySink sink{&response.body};
  char error_buffer[CURL_ERROR_SIZE];
  error_buffer[0] = '\0';
  if (absl::Status s = Configure(handle.get(), request, headers.get(), &sink, error_buffer);
      !s.ok()) {
    return s;
  }

  bool abandoned = false;
  const CURLcode rc =
      PerformUntilCutoff(handle.get(), handle.multi(), *options_.cutoff, &abandoned);
  long status = 0;
  curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &status);
  if (rc == CURLE_OK) {
    response.status = status;
    char* content_type = nullptr;
    if (curl_easy_getinfo(handle.get(), CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK &&
        content_type != nullptr) {
      response.content_type = content_type;
    }
    return response;
  }

  ApiError error;
  error.http_status = status;
  if (sink.too_large) {
    error.kind = ErrorKind::kOutcomeUnknown;
    error.code = "ClientError.OutcomeUnknown";
    error.message =
        absl::StrCat("POST ", request.url, ": response too large: body over the ",
                     kMaxResponseBody, "-byte limit (HTTP ", status,
                     "); the answer was dropped and the request may have been executed");
    return MakeStatus(error);
  }
  long request_size = 0;
  curl_easy_getinfo(handle.get(), CURLINFO_REQUEST_SIZE, &request_size);
  error.code = abandoned ? kAbandonedCode : kNetworkError;
  std::string detail = abandoned ? "abandoned at shutdown" : curl_easy_strerror(rc);
  if (!abandoned && error_buffer[0] != '\0') absl::StrAppend(&detail, ": ", error_buffer);
  if (request_size == 0) {
    error.kind = ErrorKind::kTransport;
    error.message = absl::StrCat("POST ", request.url, ": ", detail, " (request not sent)");
  } else {
    error.kind = ErrorKind::kOutcomeUnknown;
    error.message = absl::StrCat("POST ", request.url, ": ", detail,
                                 " (after sending the request; it may have been executed)");
  }
  return MakeStatus(error);
}

// The metadata service answers a few hundred bytes; anything much larger is
// not it.
constexpr size_t kMaxGetBody = 64 * 1024;

// One easy handle per call: metadata GETs happen once per credential refresh.
class CurlGetter final : public HttpGetter {
 public:
  explicit CurlGetter(CallCutoff* cutoff) : cutoff_(cutoff) {}

  absl::StatusOr<HttpResponse> Get(const std::string& url, absl::Duration connect_timeout,
                                   absl::Duration timeout) override {
    if (absl::Status s = InitCurlOnce(); !s.ok()) return s;
    std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
    if (h == nullptr) return GetFailure(ErrorKind::kTransport, url, "curl_easy_init failed");
    HttpResponse response;
    BodySink sink{&response.body, kMaxGetBody};
    char error_buffer[CURL_ERROR_SIZE];
    error_buffer[0] = '\0';
    CURLcode rc = CURLE_OK;
    auto set = [&rc](CURLcode r) {
      if (rc == CURLE_OK) rc = r;
    };
    set(curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, error_buffer));
    set(curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str()));
#if LIBCURL_VERSION_NUM >= 0x075500
    set(curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "http,https"));
#endif
    set(curl_easy_setopt(h.get(), CURLOPT_HTTPGET, 1L));
    // The metadata service is reachable only directly from the instance; a
    // cluster-wide http(s)_proxy must not capture it.
    set(curl_easy_setopt(h.get(), CURLOPT_NOPROXY, "*"));
    set(curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L));
    set(curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT_MS, ClampMillis(connect_timeout)));
    set(curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, ClampMillis(timeout)));
    set(curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &WriteBody));
    set(curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &sink));
    if (rc != CURLE_OK) return GetFailure(ErrorKind::kTransport, url, curl_easy_strerror(rc));
    Multi multi(curl_multi_init());
    if (multi == nullptr) return GetFailure(ErrorKind::kTransport, url, "curl_multi_init failed");
    bool abandoned = false;
    rc = PerformUntilCutoff(h.get(), multi.get(), *cutoff_, &abandoned);
    curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &response.status);
    if (rc == CURLE_OK) {
      char* content_type = nullptr;
      if (curl_easy_getinfo(h.get(), CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK &&
          content_type != nullptr) {
        response.content_type = content_type;
      }
      return response;
    }
    if (sink.too_large) {
      return GetFailure(ErrorKind::kOutcomeUnknown, url,
                        absl::StrCat("response larger than ", kMaxGetBody, " bytes"));
    }
    // Same split as for POST: nothing sent means certainly not executed.
    long request_size = 0;
    curl_easy_getinfo(h.get(), CURLINFO_REQUEST_SIZE, &request_size);
    std::string detail = abandoned ? "abandoned at shutdown" : curl_easy_strerror(rc);
    if (!abandoned && error_buffer[0] != '\0') absl::StrAppend(&detail, ": ", error_buffer);
    return GetFailure(request_size == 0 ? ErrorKind::kTransport : ErrorKind::kOutcomeUnknown, url,
                      detail, abandoned ? kAbandonedCode : kNetworkError);
  }

 private:
  static absl::Status GetFailure(ErrorKind kind, const std::string& url, std::string detail,
                                 const char* code = kNetworkError) {
    return Failure(kind, code, absl::StrCat("GET ", url, ": ", detail));
  }

  CallCutoff* const cutoff_;
};

}  // namespace

std::shared_ptr<HttpGetter> MakeCurlGetter(CallCutoff* cutoff) {
  return std::make_shared<CurlGetter>(cutoff);
}

std::shared_ptr<HttpTransport> MakeCurlTransport(CurlTransportOptions options) {
  return std::make_shared<CurlTransport>(std::move(options));
}

}  // namespace blueprintsync::tencent
