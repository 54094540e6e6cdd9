#include "service/server/grpc_core_log.h"

#include <grpc/support/log.h>

#include <algorithm>

#include "absl/base/const_init.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/common/log.h"

namespace blueprintsync::server {
namespace {

absl::Mutex g_mu(absl::kConstInit);
LogRateLimiter* g_limiter ABSL_GUARDED_BY(g_mu) = nullptr;

log::Level LevelOf(gpr_log_severity severity) {
  switch (severity) {
    case GPR_LOG_SEVERITY_DEBUG:
      return log::Level::kDebug;
    case GPR_LOG_SEVERITY_INFO:
      return log::Level::kInfo;
    case GPR_LOG_SEVERITY_ERROR:
      return log::Level::kWarn;
  }
  return log::Level::kWarn;
}

// gRPC's paths are its build tree's; the file name is what identifies it.
absl::string_view BaseName(const char* file) {
  if (file == nullptr) return "";
  absl::string_view path(file);
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

void WriteCoreLine(gpr_log_func_args* args) {
  const log::Level level = LevelOf(args->severity);
  if (!log::Enabled(level)) return;
  uint64_t dropped = 0;
  {
    absl::MutexLock lock(&g_mu);
    if (g_limiter == nullptr || !g_limiter->Admit(absl::Now(), &dropped)) return;
  }
  const absl::string_view message = args->message == nullptr ? "" : args->message;
  const absl::string_view file = BaseName(args->file);
  // "dropped" only on the line after a gap, as before.
  if (dropped == 0) {
    log::Write(level, message, {{"source", "grpc"}, {"file", file}, {"line", args->line}});
  } else {
    log::Write(level, message,
               {{"source", "grpc"}, {"file", file}, {"line", args->line}, {"dropped", dropped}});
  }
}

}  // namespace

LogRateLimiter::LogRateLimiter(CoreLogLimit limit)
    : limit_(limit), tokens_(std::max(1, limit.burst)) {}

bool LogRateLimiter::Admit(absl::Time now, uint64_t* dropped) {
  if (last_ != absl::InfinitePast() && now > last_) {
    tokens_ = std::min<double>(std::max(1, limit_.burst),
                               tokens_ + absl::ToDoubleSeconds(now - last_) * limit_.per_second);
  }
  if (now > last_) last_ = now;
  if (tokens_ < 1) {
    ++dropped_;
    return false;
  }
  tokens_ -= 1;
  *dropped = dropped_;
  dropped_ = 0;
  return true;
}

void RouteGrpcCoreLogs(CoreLogLimit limit) {
  {
    absl::MutexLock lock(&g_mu);
    delete g_limiter;
    g_limiter = new LogRateLimiter(limit);
  }
  gpr_set_log_function(WriteCoreLine);
}

}  // namespace blueprintsync::server
