// JobWriter: writes a job's newest version to the store, outside the job
// table's lock, then publishes that version to its watchers. Writes of one
// job are serialized (JobEntry::write_mu), so the store only moves forward
// even when two parts change the same job at once.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_JOB_WRITER_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_JOB_WRITER_H_

#include <string>

#include "absl/status/status.h"
#include "service/jobs/job_store.h"
#include "service/jobs/job_table.h"

namespace blueprintsync::jobs {

class JobWriter {
 public:
  JobWriter(JobTable* table, JobStore* store) : table_(table), store_(store) {}

  // Makes the job's newest version durable, then tells its watchers. OK
  // when that version (or a newer one) is in the store; Aborted when the job
  // is no longer this replica's under `generation` (nothing was written);
  // the store's error otherwise (the job is then marked unpersisted: memory
  // stays authoritative, watchers are told, and the next write retries).
  // `publish` false: a change callers cannot see (the SUBMITTING mark)
  // is not sent to watchers.
  // *handled (if given) is the version now in the store (or whose write
  // failed): a newer change is still on its way if memory is past it.
  absl::Status Write(const std::string& name, uint64_t generation, bool publish = true,
                     uint64_t* handled = nullptr);

  // Retries the final writes of finished jobs that failed.
  void RetryUnpersisted();

  // Flushes to disk every write made so far (JobStore::Sync): before a
  // caller is answered about a new job whose record may not be flushed yet.
  absl::Status Sync() { return store_->Sync(); }

 private:
  JobTable* const table_;
  JobStore* const store_;
};

}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_JOB_WRITER_H_
