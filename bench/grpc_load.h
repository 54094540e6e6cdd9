// A closed-loop unary gRPC load generator for the benchmarks: N calls kept
// in flight on one channel with the callback API, each slot starting its next
// call from the previous call's completion, for a fixed time. Every method
// goes through the same generic (byte buffer) stub, so the client-side cost
// is identical whichever RPC is measured and ratios between RPCs compare the
// server alone.
#ifndef BLUEPRINTSYNC_BENCH_GRPC_LOAD_H_
#define BLUEPRINTSYNC_BENCH_GRPC_LOAD_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace blueprintsync::bench {

struct LoadResult {
  int64_t ok = 0;
  int64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  std::vector<double> latencies_us;  // successful calls only
  double qps() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
  double p50_us() const;
  double p99_us() const;
  void Merge(const LoadResult& other);
};

// `method`: "/package.Service/Method"; `request`: the serialized request.
// `check_response`, if set, is called once with the first successful
// response's bytes and must return true (a benchmark that measures the wrong
// answer is worse than none).
LoadResult RunUnaryLoad(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                        const std::string& request, int outstanding, absl::Duration duration,
                        const std::function<bool(const std::string&)>& check_response = nullptr);

// An insecure channel of its own (a separate TCP connection) to `address`.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);

}  // namespace blueprintsync::bench

#endif  // BLUEPRINTSYNC_BENCH_GRPC_LOAD_H_
