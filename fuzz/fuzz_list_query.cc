// Fuzz target: ListSyncJobs request parsing (service/server/list_query.h
// ParseListRequest: the filter language, page size, page tokens), whose
// input is the gRPC caller's request. FuzzedDataProvider splits the input
// into page_size, filter and page_token; the token is raw bytes, a token the
// service issued for this filter (MakePageToken), or one issued for another
// filter. Checked:
//   - errors are InvalidArgument naming filter, page_size or page_token (the
//     field/rule payload), with a message of at most kMaxMessage bytes;
//   - a parsed query has a page size of 1..1000, a known state if any, and a
//     positive before_sequence when a token was given;
//   - a page token the service issues for an accepted filter is accepted
//     with that filter (the next page can be fetched) and gives back its
//     sequence; with any other filter it is rejected;
//   - parsing is deterministic.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "fuzz/fuzz_check.h"
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
  FUZZ_CHECK(rule->field == "filter" || rule->field == "page_size" || rule->field == "page_token",
             "errors name a request field");
  FUZZ_CHECK(!rule->rule.empty(), "errors have a rule");
}

bool SameQuery(const jobs::JobQuery& a, const jobs::JobQuery& b) {
  return a.state == b.state && a.blueprint_id == b.blueprint_id &&
         a.source_region == b.source_region && a.page_size == b.page_size &&
         a.before_sequence == b.before_sequence;
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
  const int token_kind = fdp.ConsumeIntegralInRange(0, 2);
  const int64_t sequence = fdp.ConsumeIntegralInRange<int64_t>(1, INT64_MAX);
  const std::string other_filter = fdp.ConsumeRandomLengthString(64);
  std::string raw_token = fdp.ConsumeRandomLengthString(1200);
  request.set_filter(fdp.ConsumeRemainingBytesAsString());
  switch (token_kind) {
    case 0:
      request.set_page_token(raw_token);
      break;
    case 1:
      request.set_page_token(server::MakePageToken(sequence, request.filter()));
      break;
    default:
      request.set_page_token(server::MakePageToken(sequence, other_filter));
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
    if (!request.page_token().empty()) {
      FUZZ_CHECK(query->before_sequence > 0,
                 "a token gives a positive sequence");
    }
  }

  // Tokens the service issues for an accepted filter must work on the next
  // page, and only with that filter.
  v1::ListSyncJobsRequest first;
  first.set_filter(request.filter());
  if (server::ParseListRequest(first).ok()) {
    v1::ListSyncJobsRequest next = first;
    next.set_page_token(server::MakePageToken(sequence, first.filter()));
    absl::StatusOr<jobs::JobQuery> next_query = server::ParseListRequest(next);
    FUZZ_CHECK_SHOW(next_query.ok(), "a token issued for an accepted filter is accepted",
                    absl::StrCat(next_query.status().ToString(), " (filter of ",
                                 first.filter().size(), " bytes, token of ",
                                 next.page_token().size(), " bytes)"));
    FUZZ_CHECK(next_query->before_sequence == sequence, "the token gives back its sequence");
    if (other_filter != first.filter()) {
      v1::ListSyncJobsRequest mismatched = first;
      mismatched.set_page_token(server::MakePageToken(sequence, other_filter));
      absl::StatusOr<jobs::JobQuery> mismatch = server::ParseListRequest(mismatched);
      FUZZ_CHECK(!mismatch.ok(), "a token issued for another filter is rejected");
      CheckError(mismatch.status());
    }
  }
  return 0;
}
