#include "service/jobs/store_query.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "service/common/error_reason.h"

namespace blueprintsync::jobs {

int ListScanLimit(int page_size) {
  constexpr int kFactor = 10;
  constexpr int kMin = 100;
  constexpr int kMax = 5000;
  const int64_t wanted = static_cast<int64_t>(page_size) * kFactor;
  return std::max(page_size, static_cast<int>(std::clamp<int64_t>(wanted, kMin, kMax)));
}

namespace store {
namespace {

absl::Time CreateTime(const v1::SyncJob& job) {
  return absl::FromUnixSeconds(job.create_time().seconds()) +
         absl::Nanoseconds(job.create_time().nanos());
}

bool Holds(const TimeCondition& c, absl::Time t) {
  switch (c.op) {
    case TimeCondition::Op::kEq:
      return t == c.time;
    case TimeCondition::Op::kNe:
      return t != c.time;
    case TimeCondition::Op::kLt:
      return t < c.time;
    case TimeCondition::Op::kLe:
      return t <= c.time;
    case TimeCondition::Op::kGt:
      return t > c.time;
    case TimeCondition::Op::kGe:
      return t >= c.time;
  }
  return false;
}

bool HasDestination(const v1::SyncJob& job, const std::string& region) {
  for (const auto& d : job.destinations()) {
    if (d.region() == region) return true;
  }
  return false;
}

}  // namespace

absl::Status ValidateQuery(const JobQuery& query) {
  if (query.page_size <= 0) {
    return absl::InvalidArgumentError("ListJobs: page_size must be positive");
  }
  if (query.cursor < 0) {
    return absl::InvalidArgumentError("ListJobs: cursor must not be negative");
  }
  return absl::OkStatus();
}

bool MatchesColumnFilters(const JobQuery& q, const v1::SyncJob& job) {
  return (!q.state.has_value() || job.state() == *q.state) &&
         (!q.blueprint_id.has_value() || job.blueprint_id() == *q.blueprint_id) &&
         (!q.source_region.has_value() || job.source_region() == *q.source_region) &&
         (!q.request_id.has_value() || job.request_id() == *q.request_id) &&
         (!q.creator.has_value() || job.creator() == *q.creator) &&
         (!q.retry_of.has_value() || job.retry_of() == *q.retry_of);
}

bool HasRecordFilters(const JobQuery& q) {
  return q.destination_region.has_value() || q.policy.has_value() || !q.labels.empty() ||
         !q.create_time.empty();
}

bool MatchesRecordFilters(const JobQuery& q, const v1::SyncJob& job) {
  if (q.destination_region.has_value() && !HasDestination(job, *q.destination_region)) {
    return false;
  }
  if (q.policy.has_value() && job.policy() != *q.policy) return false;
  for (const auto& [key, value] : q.labels) {
    auto it = job.labels().find(key);
    if (it == job.labels().end() || it->second != value) return false;
  }
  if (!q.create_time.empty()) {
    if (!job.has_create_time()) return false;
    const absl::Time t = CreateTime(job);
    for (const TimeCondition& c : q.create_time) {
      if (!Holds(c, t)) return false;
    }
  }
  return true;
}

PageScan::PageScan(const JobQuery& query)
    : query_(query),
      check_records_(HasRecordFilters(query)),
      // Without record filters every row read is on the page, so a page and
      // one row more tell everything.
      examine_limit_(check_records_ ? ListScanLimit(query.page_size) : query.page_size) {}

PageScan::Verdict PageScan::Decide(int64_t sequence, const v1::SyncJob& job) {
  if (examined_ == examine_limit_) {
    // More rows exist beyond the examined ones: continue after the last
    // examined (those skipped did not match).
    next_cursor_ = last_examined_;
    return Verdict::kDone;
  }
  ++examined_;
  last_examined_ = sequence;
  if (check_records_ && !MatchesRecordFilters(query_, job)) return Verdict::kSkip;
  if (taken_ == query_.page_size) {
    next_cursor_ = last_taken_;
    return Verdict::kDone;
  }
  ++taken_;
  last_taken_ = sequence;
  return Verdict::kTake;
}

bool PageScan::Offer(JobRecord record) {
  switch (Decide(record.sequence(), record.job())) {
    case Verdict::kTake:
      if (page_.records.empty()) page_.records.reserve(query_.page_size);
      page_.records.push_back(std::move(record));
      return true;
    case Verdict::kSkip:
      return true;
    case Verdict::kDone:
      return false;
  }
  return false;
}

absl::StatusOr<bool> PageScan::OfferRow(int64_t sequence, const RowParser& parse) {
  if (check_records_) {
    JobRecord record;
    if (absl::Status s = parse(&record); !s.ok()) return s;
    return Offer(std::move(record));
  }
  // No record filters: as in OfferInto, a row is parsed only once it is on
  // the page, so the look-ahead row (the next page's first) is not: ListJobs
  // and ListJobsInto fail on the same page, the one holding a bad row.
  if (Decide(sequence, v1::SyncJob::default_instance()) == Verdict::kDone) return false;
  if (page_.records.empty()) page_.records.reserve(query_.page_size);
  JobRecord& record = page_.records.emplace_back();
  if (absl::Status s = parse(&record); !s.ok()) return s;
  return true;
}

absl::StatusOr<bool> PageScan::OfferInto(int64_t sequence, const RowParser& parse,
                                         google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs) {
  if (check_records_) {
    if (absl::Status s = parse(&scratch_); !s.ok()) return s;
    switch (Decide(sequence, scratch_.job())) {
      case Verdict::kTake:
        // A copy when `jobs` is on an arena; filtered pages are the rare ones.
        *jobs->Add() = std::move(*scratch_.mutable_job());
        return true;
      case Verdict::kSkip:
        return true;
      case Verdict::kDone:
        return false;
    }
    return false;
  }
  // No record filters: the decision needs only the sequence.
  if (Decide(sequence, v1::SyncJob::default_instance()) == Verdict::kDone) return false;
  google::protobuf::Arena* const arena = jobs->GetArena();
  if (arena == nullptr) {
    JobRecord record;
    if (absl::Status s = parse(&record); !s.ok()) return s;
    record.mutable_job();  // never hand over null
    jobs->AddAllocated(record.release_job());
    return true;
  }
  // The record, and so its job, on the arena: the job is handed over
  // without a copy; the rest of the record is freed with the arena.
  auto* record = google::protobuf::Arena::CreateMessage<JobRecord>(arena);
  if (absl::Status s = parse(record); !s.ok()) return s;
  record->mutable_job();  // never hand over null
  jobs->UnsafeArenaAddAllocated(record->unsafe_arena_release_job());
  return true;
}

absl::Status OpenJobError(const v1::SyncJob& job) {
  const std::string& state = v1::SyncJob::State_Name(job.state());
  if (job.state() == v1::SyncJob::SUCCEEDED || job.state() == v1::SyncJob::FAILED ||
      job.state() == v1::SyncJob::CANCELLED) {
    return WithReason(absl::FailedPreconditionError(absl::StrCat(
                          job.name(), " is ", state,
                          " but copies of it are still being deleted; delete it later")),
                      reason::kJobCopiesBeingDeleted);
  }
  return WithReason(
      absl::FailedPreconditionError(absl::StrCat(job.name(), " is not finished (", state, ")")),
      reason::kJobNotFinished);
}

std::optional<int64_t> Micros(bool has, const google::protobuf::Timestamp& t) {
  if (!has) return std::nullopt;
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

}  // namespace store
}  // namespace blueprintsync::jobs
