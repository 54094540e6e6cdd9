// Executor: the service's own worker threads. gRPC callback handlers must
// never block, so everything slow (SQLite commits, upstream calls, waits for
// rate-limit capacity, backoff) is posted here instead. Delayed tasks
// (PostAt) drive retries, deadlines and reply timers.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_EXECUTOR_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_EXECUTOR_H_

#include <functional>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace blueprintsync {

class Executor {
 public:
  using Task = std::function<void()>;

  explicit Executor(int threads);
  ~Executor();  // Shutdown()
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs `task` on a worker as soon as one is free. Returns false (and drops
  // the task) after Shutdown().
  bool Post(Task task);
  // Runs `task` at or after `when` (real time). Dropped if still waiting at
  // Shutdown(); returns false if dropped at once.
  bool PostAt(absl::Time when, Task task);
  // Stops accepting tasks, drops delayed tasks that are not due, lets running
  // and due tasks finish, joins the threads. Idempotent.
  void Shutdown();

  size_t pending() const;

 private:
  struct Delayed {
    absl::Time when;
    uint64_t seq;
    Task task;
    bool operator>(const Delayed& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };
  void Run();
  struct WaitArgs {
    Executor* self;
    uint64_t generation;
  };
  static bool WorkOrNewTimer(WaitArgs* args);

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by PostAt so sleeping workers re-check the earliest timer.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::queue<Task> ready_ ABSL_GUARDED_BY(mu_);
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<Delayed>> delayed_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace blueprintsync

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_EXECUTOR_H_
