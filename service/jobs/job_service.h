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
#include <memory>
#include <optional>
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

// One version of a job as watchers receive it: built once per change and
// shared, read-only, by every watcher of the job (no copy per watcher).
using JobVersion = std::shared_ptr<const v1::SyncJob>;

// A validated request to create a job, with everything the handler resolved.
struct NewJob {
  v1::SyncBlueprintRequest request;  // validated; labels included
  // Who asks (v1::SyncJob.creator); request_id is unique per creator.
  std::string creator;
  // Set for a job made by Retry: the job it retries.
  std::string retry_of;
  // The job's deadline is its creation time plus this; zero: the engine's
  // job_deadline.
  absl::Duration timeout = absl::ZeroDuration();
  bool keep_failed_copies = false;
  // Set for a job a replication policy starts ("syncPolicies/{id}"): it
  // is recorded on the job (v1::SyncJob.policy) and its upstream calls go
  // at background priority (tencent::CallPriority).
  std::string policy;
  // Set when this replica's region table refuses the request although a
  // replica (or this one, before a refresh) may have accepted it: nothing
  // new is recorded; a job this creator recorded with the request_id answers
  // as a repeat does, and without one the answer is NoRepeatFound().
  bool only_if_repeat = false;
};

// Submit's answer for an only_if_repeat job when no job has its request_id.
absl::Status NoRepeatFound(const std::string& request_id);
bool IsNoRepeatFound(const absl::Status& status);

// The answer of a dry run (validate_only).
struct Preview {
  v1::SyncJob job;  // the job that would be created, without a name
};

class JobService {
 public:
  using JobCallback = std::function<void(absl::StatusOr<v1::SyncJob>)>;
  using StatusCallback = std::function<void(absl::Status)>;
  using PreviewCallback = std::function<void(absl::StatusOr<Preview>)>;
  using PageCallback = std::function<void(absl::StatusOr<JobPage>)>;
  using CursorCallback = std::function<void(absl::StatusOr<std::optional<int64_t>>)>;
  // Versions of a watched job, oldest first and never going back, starting
  // with the job as it stands: the latest version each time, so a watcher
  // whose callback runs late may skip intermediate ones, but the terminal
  // version always arrives and is the last version. A non-OK status ends the
  // watch and is the last call (NotFound: no such job; Unavailable: the
  // service is shutting down or cannot read the job; NotFound also when the
  // job is deleted on another replica before this one saw its terminal
  // version). Callbacks run on the engine's one fan-out thread (or inside
  // WatchJob, or, for a status that ends the watch, on a thread holding the
  // engine's lock): they must be quick and must not call JobService.
  using WatchCallback = std::function<void(absl::StatusOr<JobVersion>)>;

  virtual ~JobService() = default;

  // Records a job for `request` (already validated) and answers exactly once:
  // with the job (QUEUED, or RUNNING with its destination ids), or with the
  // error that rejected it. A submission not answered by `reply_by` is
  // answered with the job as it stands then.
  virtual void Submit(NewJob job, absl::Time reply_by, JobCallback done) = 0;

  // Dry run of Submit: reads the source blueprint upstream (it must exist in
  // the source region, be a custom image and be NORMAL, or SYNCING for jobs
  // of this service ahead of it: NotFound or FailedPrecondition naming
  // blueprint_id otherwise) and counts the unfinished jobs ahead on the
  // same source. Records nothing, never calls
  // SyncBlueprint.
  virtual void PreviewSubmit(NewJob job, PreviewCallback done) = 0;

  // See CancelSyncJob in the proto: answers with the job once the cancel is
  // durable (CANCELLED for a job that was QUEUED, else CANCELLING).
  // NotFound; FailedPrecondition for a SUCCEEDED or FAILED job.
  virtual void Cancel(const std::string& name, JobCallback done) = 0;

  // A new job for the destinations of the finished job `name` that did not
  // succeed (`retry.request`'s destinations are ignored and replaced;
  // `retry.request.request_id`, creator and timeout are used). NotFound;
  // FailedPrecondition if that job is not finished or nothing failed.
  virtual void Retry(const std::string& name, NewJob retry, absl::Time reply_by,
                     JobCallback done) = 0;

  // Deletes the record of a finished job. NotFound; FailedPrecondition if
  // it is not finished.
  virtual void Delete(const std::string& name, StatusCallback done) = 0;

  // The job as it stands. NotFound if there is no such job.
  virtual void GetJob(const std::string& name, JobCallback done) = 0;

  // One page of recorded jobs, newest first.
  virtual void ListJobs(const JobQuery& query, PageCallback done) = 0;

  // ListJobs for ListSyncJobs: appends the page's jobs to `jobs`, which
  // must outlive the call of `done`, and passes `done` the page's
  // next_cursor. When `jobs` is on an arena, the engine parses the stored
  // records straight onto it. The default moves ListJobs' page.
  virtual void ListJobsInto(const JobQuery& query,
                            google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs,
                            CursorCallback done) {
    ListJobs(query, [jobs, done = std::move(done)](absl::StatusOr<JobPage> page) {
      if (!page.ok()) {
        done(page.status());
        return;
      }
      for (JobRecord& record : page->records) *jobs->Add() = std::move(*record.mutable_job());
      done(page->next_cursor);
    });
  }

  // Starts following `name`; `callback` may run before this returns. The id
  // is for Unwatch, which must be called once the caller is done (also after
  // a terminal version or an error); once Unwatch returns, `callback` is not
  // running and will not run again.
  virtual uint64_t WatchJob(const std::string& name, WatchCallback callback) = 0;
  virtual void Unwatch(uint64_t watch_id) = 0;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_SERVICE_H_
