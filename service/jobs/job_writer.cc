#include "service/jobs/job_writer.h"

#include <map>
#include <memory>

#include "service/common/log.h"

namespace blueprintsync::jobs {
namespace {
absl::Status NotOurs(const std::string& name) {
  return absl::AbortedError(name + " is no longer run by this replica");
}
}  // namespace

absl::Status JobWriter::Write(const std::string& name, uint64_t generation, bool publish,
                              uint64_t* handled) {
  std::shared_ptr<absl::Mutex> write_mu = table_->Locked([&](TableState& s) {
    JobEntry* e = s.FindAny(name, generation);
    return e ? e->write_mu : nullptr;
  });
  if (write_mu == nullptr) return NotOurs(name);
  absl::MutexLock one_writer(write_mu.get());
  JobRecord snapshot;
  uint64_t version = 0;
  bool gone = false;
  const bool due = table_->Locked([&](TableState& s) {
    JobEntry* e = s.FindAny(name, generation);
    gone = e == nullptr;
    if (gone) return false;
    if (e->written_version >= e->version) {
      // Written already, perhaps by a write that did not publish (the
      // SUBMITTING mark): a caller that asks to publish gets it published.
      if (publish && e->written_version > e->published_version) {
        e->published_version = e->written_version;
        e->published = e->rec.job();
        s.Publish(e->published);
      }
      if (handled != nullptr) *handled = e->version;
      return false;
    }
    snapshot = e->rec;
    version = e->version;
    ++s.writes_in_flight;
    return true;
  });
  if (!due) return gone ? NotOurs(name) : absl::OkStatus();
  const absl::Status written = store_->UpdateJob(snapshot);
  if (!written.ok()) {
    log::Error("could not persist job", {{"job", name}, {"error", written.message()}});
  }
  gone = table_->Locked([&](TableState& s) {
    --s.writes_in_flight;
    JobEntry* e = s.FindAny(name, generation);
    if (e == nullptr) return true;
    e->unpersisted = !written.ok();
    if (written.ok()) e->written_version = version;
    if (publish && version > e->published_version) {
      e->published_version = version;
      e->published = snapshot.job();
      s.Publish(e->published);
    }
    if (handled != nullptr) *handled = version;
    return false;
  });
  // Leadership changed while writing: whatever was written, nothing may
  // follow from it here (the new leader reads the store after this write).
  if (gone) return NotOurs(name);
  return written;
}

void JobWriter::RetryUnpersisted() {
  std::map<std::string, JobRecord> pending =
      table_->Locked([](TableState& s) { return s.unpersisted; });
  for (const auto& [name, rec] : pending) {
    table_->Locked([](TableState& t) { ++t.writes_in_flight; });
    const absl::Status s = store_->UpdateJob(rec);
    table_->Locked([](TableState& t) { --t.writes_in_flight; });
    // Written, or no longer this replica's to write (another leads).
    if (s.ok() || s.code() == absl::StatusCode::kNotFound ||
        s.code() == absl::StatusCode::kFailedPrecondition) {
      if (s.ok()) log::Info("final state of job written", {{"job", name}});
      table_->Locked([&](TableState& t) {
        t.unpersisted.erase(name);
        // A list of unfinished jobs read before this write may still show
        // it unfinished: it must not be adopted from that list.
        t.MarkFinishedHere(name);
      });
    }
  }
}

}  // namespace blueprintsync::jobs
