// Fuzz target: ListSyncJobs request parsing (service/server/list_query.h
// ParseListRequest: the filter language, order_by, page size, page tokens),
// whose input is the gRPC caller's request. FuzzedDataProvider splits the
// input into page_size, order_by, filter and page_token; the token is raw
// bytes, a token the service issued for this request (MakePageToken), one
// issued for another filter, or one issued for the other order. Checked:
//   - errors are InvalidArgument naming page_size, filter, order_by or
//     page_token (the field/rule payload), with a message of at most
//     kMaxMessage bytes;
//   - a parsed query has a page size of 1..1000, a known state if any, label
//     keys of a plausible size, and a positive cursor when a token was given;
//   - a page token the service issues for an accepted request is accepted
//     with that request (the next page can be fetched) and gives back its
//     cursor; with any other filter or the other order it is rejected;
//   - parsing is deterministic.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "service/jobs/job_state.h"
#include "service/jobs/job_store.h"
#include "service/server/list_query.h"

namespace {

namespace server = blueprintsync::server;
namespace jobs = blueprintsync::jobs;
namespace v1 = blueprintsync::v1;

constexpr size_t kMaxMessage = 512;

void CheckError(const absl::Status& s) {
  FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "errors are InvalidArgument");
  FUZZ_CHECK_SHOW(s.message().size() <= kMaxMessage, "error messages are bounded", s.message());
  std::optional<jobs::FieldRule> rule = jobs::GetFieldRule(s);
  FUZZ_CHECK(rule.has_value(), "errors carry a field and rule");
  FUZZ_CHECK(rule->field == "filter" || rule->field == "page_size" || rule->field == "order_by" ||
                 rule->field == "page_token",
             "errors name a request field");
  FUZZ_CHECK(!rule->rule.empty(), "errors have a rule");
}

bool SameTimes(const std::vector<jobs::TimeCondition>& a,
               const std::vector<jobs::TimeCondition>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].op != b[i].op || a[i].time != b[i].time) return false;
  }
  return true;
}

bool SameQuery(const jobs::JobQuery& a, const jobs::JobQuery& b) {
  return a.state == b.state && a.blueprint_id == b.blueprint_id &&
         a.source_region == b.source_region && a.request_id == b.request_id &&
         a.creator == b.creator && a.retry_of == b.retry_of &&
         a.destination_region == b.destination_region && a.labels == b.labels &&
         SameTimes(a.create_time, b.create_time) && a.newest_first == b.newest_first &&
         a.page_size == b.page_size && a.cursor == b.cursor;
}

// The order a request with this order_by lists in (newest first when it
// does not parse: such a request is rejected anyway).
bool NewestFirst(const std::string& order_by) {
  v1::ListSyncJobsRequest r;
  r.set_order_by(order_by);
  absl::StatusOr<jobs::JobQuery> q = server::ParseListRequest(r);
  return !q.ok() || q->newest_first;
}

// `request` asking for the other order.
v1::ListSyncJobsRequest OtherOrder(v1::ListSyncJobsRequest request) {
  request.set_order_by(NewestFirst(request.order_by()) ? "create_time" : "create_time desc");
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // Invalid UTF-8 in string fields is logged by protobuf on every attempt;
  // that is expected here and would drown libFuzzer's output.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  v1::ListSyncJobsRequest request;
  request.set_page_size(fdp.ConsumeIntegral<int32_t>());
  const int token_kind = fdp.ConsumeIntegralInRange(0, 3);
  const int64_t sequence = fdp.ConsumeIntegralInRange<int64_t>(1, INT64_MAX);
  request.set_order_by(fdp.ConsumeRandomLengthString(32));
  const std::string other_filter = fdp.ConsumeRandomLengthString(64);
  std::string raw_token = fdp.ConsumeRandomLengthString(1200);
  request.set_filter(fdp.ConsumeRemainingBytesAsString());
  v1::ListSyncJobsRequest other = request;
  other.set_filter(other_filter);
  switch (token_kind) {
    case 0:
      request.set_page_token(raw_token);
      break;
    case 1:
      request.set_page_token(server::MakePageToken(sequence, request));
      break;
    case 2:
      request.set_page_token(server::MakePageToken(sequence, other));
      break;
    default:
      request.set_page_token(server::MakePageToken(sequence, OtherOrder(request)));
      break;
  }

  // Only what gRPC can deliver: the request as parsed from the wire, which
  // rejects invalid UTF-8 in proto3 string fields.
  {
    v1::ListSyncJobsRequest wire;
    if (!wire.ParseFromString(request.SerializeAsString())) return 0;
  }

  absl::StatusOr<jobs::JobQuery> query = server::ParseListRequest(request);
  absl::StatusOr<jobs::JobQuery> again = server::ParseListRequest(request);
  FUZZ_CHECK(query.ok() == again.ok(), "parsing is deterministic");
  if (!query.ok()) {
    CheckError(query.status());
    FUZZ_CHECK(query.status() == again.status(), "parsing is deterministic");
  } else {
    FUZZ_CHECK(SameQuery(*query, *again), "parsing is deterministic");
    FUZZ_CHECK(query->page_size >= 1 && query->page_size <= server::kMaxPageSize,
               "page size 1..1000");
    if (query->state.has_value()) {
      FUZZ_CHECK(*query->state != v1::SyncJob::STATE_UNSPECIFIED &&
                     v1::SyncJob::State_IsValid(*query->state),
                 "filtered state is a real state");
    }
    for (const auto& [key, value] : query->labels) {
      FUZZ_CHECK_SHOW(!key.empty() && key.size() <= 253 + 1 + 63, "label keys have a valid size",
                      key);
    }
    FUZZ_CHECK(query->newest_first == NewestFirst(request.order_by()),
               "the order is the order_by's");
    if (!request.page_token().empty()) {
      FUZZ_CHECK(query->cursor > 0, "a token gives a positive cursor");
    }
  }

  // Tokens the service issues for an accepted request must work on the next
  // page, and only with that filter and order.
  v1::ListSyncJobsRequest first = request;
  first.clear_page_token();
  if (server::ParseListRequest(first).ok()) {
    v1::ListSyncJobsRequest next = first;
    next.set_page_token(server::MakePageToken(sequence, first));
    absl::StatusOr<jobs::JobQuery> next_query = server::ParseListRequest(next);
    FUZZ_CHECK_SHOW(
        next_query.ok(), "a token issued for an accepted request is accepted",
        absl::StrCat(next_query.status().ToString(), " (filter of ", first.filter().size(),
                     " bytes, token of ", next.page_token().size(), " bytes)"));
    FUZZ_CHECK(next_query->cursor == sequence, "the token gives back its cursor");
    if (other_filter != first.filter()) {
      v1::ListSyncJobsRequest mismatched = first;
      mismatched.set_page_token(server::MakePageToken(sequence, other));
      absl::StatusOr<jobs::JobQuery> mismatch = server::ParseListRequest(mismatched);
      FUZZ_CHECK(!mismatch.ok(), "a token issued for another filter is rejected");
      CheckError(mismatch.status());
    }
    v1::ListSyncJobsRequest reordered = first;
    reordered.set_page_token(server::MakePageToken(sequence, OtherOrder(first)));
    absl::StatusOr<jobs::JobQuery> reorder = server::ParseListRequest(reordered);
    FUZZ_CHECK(!reorder.ok(), "a token issued for the other order is rejected");
    CheckError(reorder.status());
  }
  return 0;
}
