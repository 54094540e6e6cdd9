// What the three JobStore implementations share so that they answer
// ListJobs and DeleteJob alike: which filters are columns and which are
// checked on the record, how a page is cut from the rows read (the scan
// bound of job_store.h), and DeleteJob's error for an open job. Used only
// by the stores.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_STORE_QUERY_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_STORE_QUERY_H_

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "service/jobs/job_store.h"

namespace blueprintsync::jobs::store {

// InvalidArgument for a page_size or cursor ListJobs does not accept.
absl::Status ValidateQuery(const JobQuery& query);

// The filters the SQL stores keep in indexed columns: state, blueprint_id,
// source_region, request_id, creator, retry_of. (The memory store checks
// them here, so that it counts the same rows against the scan bound.)
bool MatchesColumnFilters(const JobQuery& query, const v1::SyncJob& job);

// The filters checked on each record read: labels, destination_region,
// policy, create_time.
bool HasRecordFilters(const JobQuery& query);
bool MatchesRecordFilters(const JobQuery& query, const v1::SyncJob& job);

// Cuts a ListJobs page from the rows that match the column filters, offered
// in the query's order: read at most row_limit() rows (the SQL LIMIT), call
// Offer for each until it returns false, then take the page.
class PageScan {
 public:
  explicit PageScan(const JobQuery& query);

  // One more than the rows that may be examined, so that reading the extra
  // row tells that more exist.
  int64_t row_limit() const { return static_cast<int64_t>(examine_limit_) + 1; }

  // What to do with the next row read.
  enum class Verdict {
    kTake,  // on the page
    kSkip,  // examined, not on the page (a record filter does not match)
    kDone,  // the page is decided: read no further
  };
  // Decides on the next row (`job` is only looked at when the query has
  // record filters) and counts it as taken when the answer is kTake.
  // For callers that build the page themselves (ListJobsInto).
  Verdict Decide(int64_t sequence, const v1::SyncJob& job);

  // Where the next page starts once Decide said kDone, or the rows ran out.
  std::optional<int64_t> next_cursor() const { return next_cursor_; }

  // Takes the next row; false once the page is decided (read no further).
  bool Offer(JobRecord record);

  // ListJobsInto's Offer: decides on the row with this sequence and, when
  // it is on the page, appends its job to `jobs`; false once the page is
  // decided. `parse` fills a record from the row (with the store's checks).
  // Without record filters a row is parsed only once it is known to be on
  // the page, and straight onto `jobs`' arena (no copy); with them, into a
  // scratch record that is reused, so skipped rows leave nothing behind.
  using RowParser = std::function<absl::Status(JobRecord*)>;
  // Offer for a row that `parse` reads (ListJobs of the SQL stores): the
  // row is parsed only when the decision needs it, as in OfferInto.
  absl::StatusOr<bool> OfferRow(int64_t sequence, const RowParser& parse);
  absl::StatusOr<bool> OfferInto(int64_t sequence, const RowParser& parse,
                                 google::protobuf::RepeatedPtrField<v1::SyncJob>* jobs);

  JobPage TakePage() {
    page_.next_cursor = next_cursor_;
    return std::move(page_);
  }

 private:
  const JobQuery& query_;
  const bool check_records_;
  const int examine_limit_;
  int examined_ = 0;
  int64_t last_examined_ = 0;
  int taken_ = 0;
  int64_t last_taken_ = 0;
  std::optional<int64_t> next_cursor_;
  JobPage page_;        // Offer's page
  JobRecord scratch_;   // OfferInto's, with record filters
};

// DeleteJob's FailedPrecondition for an open job: names it and says why
// (not finished, or copies still being deleted).
absl::Status OpenJobError(const v1::SyncJob& job);

// Microseconds since the epoch, as the stores' *_time_us columns hold them.
std::optional<int64_t> Micros(bool has, const google::protobuf::Timestamp& t);

}  // namespace blueprintsync::jobs::store

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_STORE_QUERY_H_
