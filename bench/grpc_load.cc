#include "bench/grpc_load.h"

#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <chrono>
#include <functional>

#include "absl/synchronization/mutex.h"
#include "bench/bench_util.h"

namespace blueprintsync::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// Shared by all slots of one run.
class LoadRun {
 public:
  LoadRun(const std::shared_ptr<grpc::Channel>& channel, std::string method,
          const std::string& request, SteadyClock::time_point end,
          const std::function<bool(const std::string&)>& check)
      : stub_(channel), method_(std::move(method)), end_(end), check_(check) {
    grpc::Slice slice(request);
    request_ = grpc::ByteBuffer(&slice, 1);
  }

  struct Slot {
    std::unique_ptr<grpc::ClientContext> context;
    grpc::ByteBuffer response;
    SteadyClock::time_point start;
    LoadResult result;
  };

  void Run(std::vector<Slot>& slots) {
    {
      absl::MutexLock lock(&mu_);
      active_ = static_cast<int>(slots.size());
    }
    for (Slot& s : slots) Issue(&s);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &active_));
  }

 private:
  void Issue(Slot* slot) {
    slot->context = std::make_unique<grpc::ClientContext>();
    slot->context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    slot->response.Clear();
    slot->start = SteadyClock::now();
    stub_.UnaryCall(slot->context.get(), method_, grpc::StubOptions(), &request_, &slot->response,
                    [this, slot](grpc::Status status) { Done(slot, status); });
  }

  void Done(Slot* slot, const grpc::Status& status) {
    const SteadyClock::time_point now = SteadyClock::now();
    if (status.ok()) {
      if (check_ && !checked_.exchange(true) && !check_(ToString(slot->response))) {
        ++slot->result.errors;
        if (slot->result.first_error.empty()) slot->result.first_error = "unexpected response";
      } else {
        ++slot->result.ok;
        slot->result.latencies_us.push_back(
            std::chrono::duration<double, std::micro>(now - slot->start).count());
      }
    } else {
      ++slot->result.errors;
      if (slot->result.first_error.empty()) {
        slot->result.first_error =
            std::to_string(status.error_code()) + " " + status.error_message();
      }
    }
    if (now < end_) {
      Issue(slot);  // starting the next call from a completion is allowed in the callback API
      return;
    }
    absl::MutexLock lock(&mu_);
    --active_;
  }

  grpc::GenericStub stub_;
  const std::string method_;
  grpc::ByteBuffer request_;
  const SteadyClock::time_point end_;
  const std::function<bool(const std::string&)>& check_;
  std::atomic<bool> checked_{false};
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

double LoadResult::p50_us() const { return Percentile(latencies_us, 50); }
double LoadResult::p99_us() const { return Percentile(latencies_us, 99); }

void LoadResult::Merge(const LoadResult& other) {
  ok += other.ok;
  errors += other.errors;
  if (first_error.empty()) first_error = other.first_error;
  seconds += other.seconds;
  latencies_us.insert(latencies_us.end(), other.latencies_us.begin(), other.latencies_us.end());
}

LoadResult RunUnaryLoad(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                        const std::string& request, int outstanding, absl::Duration duration,
                        const std::function<bool(const std::string&)>& check_response) {
  const SteadyClock::time_point start = SteadyClock::now();
  const SteadyClock::time_point end = start + absl::ToChronoNanoseconds(duration);
  LoadRun run(channel, method, request, end, check_response);
  std::vector<LoadRun::Slot> slots(static_cast<size_t>(outstanding));
  run.Run(slots);
  // Measured to the last completion: the slots' final calls overrun `end`.
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  LoadResult total;
  for (LoadRun::Slot& s : slots) total.Merge(s.result);
  total.seconds = seconds;
  return total;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // Separate channels must not share one subchannel/connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace blueprintsync::bench
