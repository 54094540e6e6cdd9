// Leadership: whether this engine may call Tencent Cloud, and under which
// lease. A single replica always leads; with several replicas on a shared
// store only the holder of the lease (an epoch, see leader_elector.h) leads.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_LEADERSHIP_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_LEADERSHIP_H_

#include <cstdint>

namespace blueprintsync::jobs {

class Leadership {
 public:
  // The only replica: leads for as long as it runs, under no lease.
  static Leadership Single() { return Leadership(Mode::kSingle, 0); }
  // Another replica (or none) leads.
  static Leadership Following() { return Leadership(Mode::kFollowing, 0); }
  // Holds the lease with this epoch (> 0).
  static Leadership Leading(int64_t epoch) { return Leadership(Mode::kLeading, epoch); }
  // From an elector's Term(): 0 means not holding the lease.
  static Leadership FromTerm(int64_t term) { return term == 0 ? Following() : Leading(term); }

  bool leading() const { return mode_ != Mode::kFollowing; }
  bool single() const { return mode_ == Mode::kSingle; }
  // Acts under a lease that can run out (so calls are bounded by it).
  bool leased() const { return mode_ == Mode::kLeading; }
  int64_t epoch() const { return epoch_; }
  // For metrics: -1 single replica, 0 following, else the epoch.
  int64_t term_for_stats() const { return single() ? -1 : epoch_; }

  bool operator==(const Leadership& o) const { return mode_ == o.mode_ && epoch_ == o.epoch_; }
  bool operator!=(const Leadership& o) const { return !(*this == o); }

 private:
  enum class Mode { kSingle, kFollowing, kLeading };
  Leadership(Mode mode, int64_t epoch) : mode_(mode), epoch_(epoch) {}
  Mode mode_;
  int64_t epoch_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_LEADERSHIP_H_
