#include "service/common/executor.h"

#include "absl/time/clock.h"

namespace blueprintsync {

Executor::Executor(int threads) {
  if (threads < 1) threads = 1;
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

Executor::~Executor() { Shutdown(); }

bool Executor::Post(Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  ready_.push(std::move(task));
  return true;
}

bool Executor::PostAt(absl::Time when, Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  delayed_.push(Delayed{when, seq_++, std::move(task)});
  ++generation_;
  return true;
}

size_t Executor::pending() const {
  absl::MutexLock lock(&mu_);
  return ready_.size() + delayed_.size();
}

void Executor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    // Delayed work that is not due yet is abandoned; its owners persist state
    // before scheduling, so a restart picks it up again.
    while (!delayed_.empty() && delayed_.top().when > absl::Now()) delayed_.pop();
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

bool Executor::WorkOrNewTimer(WaitArgs* args) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Executor* self = args->self;
  return !self->ready_.empty() || self->stopping_ || self->generation_ != args->generation;
}

void Executor::Run() {
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      for (;;) {
        const absl::Time now = absl::Now();
        while (!delayed_.empty() && delayed_.top().when <= now) {
          // priority_queue::top is const; the task is moved out via a copy of
          // the element, which is cheap for std::function's small buffers.
          ready_.push(delayed_.top().task);
          delayed_.pop();
        }
        if (!ready_.empty()) {
          task = std::move(ready_.front());
          ready_.pop();
          break;
        }
        if (stopping_ && (delayed_.empty() || delayed_.top().when > now)) return;
        const absl::Time wake = delayed_.empty() ? absl::InfiniteFuture() : delayed_.top().when;
        WaitArgs args{this, generation_};
        mu_.AwaitWithDeadline(absl::Condition(&WorkOrNewTimer, &args), wake);
      }
    }
    task();
  }
}

}  // namespace blueprintsync
