// LD_PRELOAD shim for diagnosis only (bench/grpc_front_bench.cc): turns off
// Abseil's mutex deadlock detection in an unmodified blueprint-syncd, to
// measure what that detection costs. Debian's libabsl is built without
// NDEBUG, so the detection is on by default and runs on every absl::Mutex
// lock and destruction, including gRPC's per-call mutexes.
#include "absl/synchronization/mutex.h"

namespace {

__attribute__((constructor)) void TurnOffDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace
