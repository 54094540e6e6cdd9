// How the CLI shows replication policies: the text views of the `policy`
// commands, the progress lines of `policy get --wait` and the summary that
// ends it. JSON output is the message itself (ToJsonLine in job_format.h).
// Pure functions of the protos, so tests pin the output.
#ifndef BLUEPRINTSYNC_CLIENT_POLICY_FORMAT_H_
#define BLUEPRINTSYNC_CLIENT_POLICY_FORMAT_H_

#include <string>
#include <utility>
#include <vector>

#include "blueprintsync/v1/blueprint_sync.pb.h"

namespace blueprintsync::cli {

std::string PolicyRegionStateName(blueprintsync::v1::SyncPolicyRegion::State state);

// "family web-golden in ap-guangzhou" or "lhbp-ls883feh in ap-guangzhou".
std::string PolicySourceText(const blueprintsync::v1::SyncPolicy& policy);

// Regions IN_SYNC, as "2/4".
std::string InSyncCount(const blueprintsync::v1::SyncPolicy& policy);

// One block: the policy's fields and status, then a table of its regions
// (state, serving copy and the source it was made from, copies kept, last
// job, when last confirmed) and each region's last error. Ends with '\n'.
std::string FormatPolicyText(const blueprintsync::v1::SyncPolicy& policy);

// The answer to `policy create --validate-only`: "valid: would keep ... in
// R1, R2 (...)" and a line saying nothing was created.
std::string FormatPolicyValidateOnlyText(const blueprintsync::v1::SyncPolicy& policy);

// One FormatPolicyText block per policy, separated by blank lines; "no sync
// policies" when empty; then the next page token, if any.
std::string FormatPolicyListText(const blueprintsync::v1::ListSyncPoliciesResponse& response);

// What `policy get --wait` says about each part of a policy, keyed "" for
// the policy as a whole and by region for each region, in region order. A
// progress line is printed when the text for a key changes.
std::vector<std::pair<std::string, std::string>> PolicyProgressItems(
    const blueprintsync::v1::SyncPolicy& policy);

// The end of `policy get --wait`: "policy syncPolicies/x in sync: lhbp-... in
// 4/4 regions\n", or "policy syncPolicies/x not in sync (2/4 regions)\n"
// followed by one line per region that is not IN_SYNC, with its error when
// it has one: "  ap-tokyo: FAILED: FAILED_PRECONDITION (9): ... (tencent
// code X, request id Y)".
std::string FormatPolicySummary(const blueprintsync::v1::SyncPolicy& policy);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_POLICY_FORMAT_H_
