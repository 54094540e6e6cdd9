// ListSyncJobs and ListSyncPolicies request handling: the filter language,
// order_by, page size rules and opaque page tokens (AIP-158, AIP-160
// subset, AIP-132 order_by). Both methods share the grammar, the page size
// rules and how a token is bound to its filter.
//
// Job filter: conditions joined by AND (case-insensitive keyword). Each is
// `field = value` on state, blueprint_id, source_region, request_id,
// creator, destination_region, retry_of, policy (the job's
// "syncPolicies/{id}"; "" for jobs asked for directly) or labels.<key> (a
// Kubernetes label key), or `create_time OP time` with OP one of = != < <= > >= and an
// RFC 3339 time. Values bare or in double quotes. Each field at most once,
// except create_time and labels with distinct keys.
//
// Policy filter: the same grammar; `field = value` on in_sync or paused
// (true or false), source_region or labels.<key>; each field at most once,
// except labels with distinct keys.
//
// order_by (jobs only): "" or "create_time desc" (newest first),
// "create_time" or "create_time asc" (oldest first); keywords
// case-insensitive.
//
// Page tokens are a serialized PageToken (PolicyPageToken) proto in
// base64url; a token only works with the filter (and order) it was issued
// for.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_LIST_QUERY_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_LIST_QUERY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "service/jobs/job_store.h"
#include "service/policies/policy_store.h"

namespace blueprintsync::server {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;
inline constexpr size_t kMaxFilterBytes = 1024;

// Errors are INVALID_ARGUMENT naming page_size, filter, order_by or
// page_token (checked in that order).
absl::StatusOr<jobs::JobQuery> ParseListRequest(const v1::ListSyncJobsRequest& request);

// The next_page_token of a page of `request` (one ParseListRequest
// accepted) that ended at `cursor` (JobPage::next_cursor): bound to the
// request's filter and order.
std::string MakePageToken(int64_t cursor, const v1::ListSyncJobsRequest& request);

// As ParseListRequest, for ListSyncPolicies: errors name page_size, filter
// or page_token.
absl::StatusOr<policies::PolicyQuery> ParsePolicyListRequest(
    const v1::ListSyncPoliciesRequest& request);

// The next_page_token of a page of `request` (one ParsePolicyListRequest
// accepted) that ended after `after_name` (PolicyListPage::next_after).
std::string MakePolicyPageToken(const std::string& after_name,
                                const v1::ListSyncPoliciesRequest& request);

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_LIST_QUERY_H_
