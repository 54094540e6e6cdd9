// ListSyncJobs request handling: the filter language, page size rules and
// opaque page tokens (AIP-158, AIP-160 subset).
//
// Filter: conditions `field = value` joined by AND (case-insensitive
// keyword), fields state, blueprint_id, source_region; values bare or in
// double quotes. Page tokens are a serialized PageToken proto in base64url;
// a token only works with the filter it was issued for.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_LIST_QUERY_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_LIST_QUERY_H_

#include <string>

#include "absl/status/statusor.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "service/jobs/job_store.h"

namespace blueprintsync::server {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;
inline constexpr size_t kMaxFilterBytes = 1024;

// Errors are INVALID_ARGUMENT naming filter, page_size or page_token.
absl::StatusOr<jobs::JobQuery> ParseListRequest(const v1::ListSyncJobsRequest& request);
std::string MakePageToken(int64_t before_sequence, const std::string& filter);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_LIST_QUERY_H_
