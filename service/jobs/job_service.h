// JobService: what the gRPC handlers (service/server) need of the job
// engine, and nothing more. Every call returns at once: answers come through
// callbacks, from memory on the calling thread or after a store read on one
// of the engine's own threads, so a gRPC callback thread never waits for the
// store or for Tencent Cloud. JobEngine implements it; handler tests use a
// fake.
//
// Callbacks may run under the service's internal lock: they must be quick
// and must not call back into the service.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_SERVICE_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_SERVICE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "service/jobs/job_store.h"

namespace blueprintsync::jobs {

// What a caller is told when the service cannot take the call because it is
// shutting down.
inline absl::Status ServiceShuttingDown() {
  return absl::UnavailableError("the service is shutting down; retry on another replica");
}

class JobService {
 public:
  using JobCallback = std::function<void(absl::StatusOr<v1::SyncJob>)>;
  using PageCallback = std::function<void(absl::StatusOr<JobPage>)>;
  // Each version of a watched job, in order, starting with the job as it
  // stands; no call after a terminal version. A non-OK status ends the watch
  // and is the last call (NotFound: no such job; Unavailable: the service is
  // shutting down or cannot read the job).
  using WatchCallback = std::function<void(absl::StatusOr<v1::SyncJob>)>;

  virtual ~JobService() = default;

  // Records a job for `request` (already validated) and answers exactly once:
  // with the job (QUEUED, or RUNNING with its destination ids), or with the
  // error that rejected it. A submission not answered by `reply_by` is
  // answered with the job as it stands then.
  virtual void Submit(const v1::SyncBlueprintRequest& request, absl::Time reply_by,
                      JobCallback done) = 0;

  // The job as it stands. NotFound if there is no such job.
  virtual void GetJob(const std::string& name, JobCallback done) = 0;

  // One page of recorded jobs, newest first.
  virtual void ListJobs(const JobQuery& query, PageCallback done) = 0;

  // Starts following `name`; `callback` may run before this returns. The id
  // is for Unwatch, which must be called once the caller is done (also after
  // a terminal version or an error); once Unwatch returns, `callback` is not
  // running and will not run again.
  virtual uint64_t WatchJob(const std::string& name, WatchCallback callback) = 0;
  virtual void Unwatch(uint64_t watch_id) = 0;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_SERVICE_H_
