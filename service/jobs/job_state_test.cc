// Exhaustive tests of the pure job-state rules in job_state.h.
#include "service/jobs/job_state.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tencent/api_error.h"
#include "service/tencent/crypto.h"

namespace blueprintsync::jobs {
namespace {

using ::testing::HasSubstr;

struct StateCase {
  const char* upstream;
  v1::Destination::State expected;
};

class DestinationStateForTest : public ::testing::TestWithParam<StateCase> {};

TEST_P(DestinationStateForTest, MapsUpstreamState) {
  EXPECT_EQ(DestinationStateFor(GetParam().upstream), GetParam().expected)
      << "BlueprintState \"" << GetParam().upstream << "\"";
}

INSTANTIATE_TEST_SUITE_P(AllStates, DestinationStateForTest,
                         ::testing::Values(
                             // The states DescribeBlueprints documents and the README rules.
                             StateCase{"NORMAL", v1::Destination::SUCCEEDED},
                             StateCase{"SYNCING", v1::Destination::SYNCING},
                             StateCase{"SYNCING_FAILED", v1::Destination::FAILED},
                             StateCase{"CREATEFAILED", v1::Destination::FAILED},
                             StateCase{"OFFLINE", v1::Destination::FAILED},
                             StateCase{"ISOLATING", v1::Destination::FAILED},
                             StateCase{"ISOLATED", v1::Destination::FAILED},
                             StateCase{"DELETING", v1::Destination::FAILED},
                             StateCase{"DESTROYING", v1::Destination::FAILED},
                             // ISOLAT*/DELET* variants.
                             StateCase{"ISOLATE_FAILED", v1::Destination::FAILED},
                             StateCase{"DELETED", v1::Destination::FAILED},
                             // Unknown, undocumented or empty: pending until the job deadline.
                             StateCase{"CREATING", v1::Destination::SYNCING},
                             StateCase{"PENDING", v1::Destination::SYNCING},
                             StateCase{"", v1::Destination::SYNCING},
                             StateCase{"normal", v1::Destination::SYNCING},
                             StateCase{"NORMAL ", v1::Destination::SYNCING},
                             StateCase{"SYNCING_FAILED_X", v1::Destination::SYNCING}));

TEST(IsTerminalTest, JobStates) {
  EXPECT_FALSE(IsTerminal(v1::SyncJob::STATE_UNSPECIFIED));
  EXPECT_FALSE(IsTerminal(v1::SyncJob::QUEUED));
  EXPECT_FALSE(IsTerminal(v1::SyncJob::RUNNING));
  EXPECT_TRUE(IsTerminal(v1::SyncJob::SUCCEEDED));
  EXPECT_TRUE(IsTerminal(v1::SyncJob::FAILED));
}

TEST(IsTerminalTest, DestinationStates) {
  EXPECT_FALSE(IsTerminal(v1::Destination::STATE_UNSPECIFIED));
  EXPECT_FALSE(IsTerminal(v1::Destination::PENDING));
  EXPECT_FALSE(IsTerminal(v1::Destination::SYNCING));
  EXPECT_TRUE(IsTerminal(v1::Destination::SUCCEEDED));
  EXPECT_TRUE(IsTerminal(v1::Destination::FAILED));
}

v1::SyncJob JobWith(const std::vector<v1::Destination::State>& states) {
  v1::SyncJob job;
  job.set_state(v1::SyncJob::RUNNING);
  for (auto s : states) job.add_destinations()->set_state(s);
  return job;
}

TEST(DeriveSubmittedJobStateTest, Table) {
  using D = v1::Destination;
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::SUCCEEDED})), v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::SUCCEEDED, D::SUCCEEDED})), v1::SyncJob::SUCCEEDED);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::FAILED})), v1::SyncJob::FAILED);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::SUCCEEDED, D::FAILED})), v1::SyncJob::FAILED);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::FAILED, D::SUCCEEDED})), v1::SyncJob::FAILED);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::SYNCING})), v1::SyncJob::RUNNING);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::PENDING})), v1::SyncJob::RUNNING);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::FAILED, D::SYNCING})), v1::SyncJob::RUNNING);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::SUCCEEDED, D::PENDING})), v1::SyncJob::RUNNING);
  EXPECT_EQ(DeriveSubmittedJobState(JobWith({D::SUCCEEDED, D::SUCCEEDED, D::SYNCING})),
            v1::SyncJob::RUNNING);
}

v1::SyncBlueprintRequest Req(const std::string& src, const std::string& bp,
                             const std::vector<std::string>& dests) {
  v1::SyncBlueprintRequest r;
  r.set_source_region(src);
  r.set_blueprint_id(bp);
  for (const auto& d : dests) r.add_destination_regions(d);
  return r;
}

TEST(RequestFingerprintTest, EqualForEqualRequestsIgnoringRequestIdAndValidateOnly) {
  auto a = Req("ap-guangzhou", "lhbp-ls883feh", {"ap-singapore", "ap-tokyo"});
  auto b = a;
  b.set_request_id("3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c");
  b.set_validate_only(true);
  EXPECT_EQ(RequestFingerprint(a), RequestFingerprint(b));
  EXPECT_FALSE(RequestFingerprint(a).empty());
}

TEST(RequestFingerprintTest, IgnoresTheOrderOfDestinations) {
  EXPECT_EQ(RequestFingerprint(Req("ap-guangzhou", "lhbp-ls883feh", {"ap-singapore", "ap-tokyo"})),
            RequestFingerprint(Req("ap-guangzhou", "lhbp-ls883feh", {"ap-tokyo", "ap-singapore"})));
}

TEST(RequestFingerprintTest, DiffersForAnyDifferenceInWhatIsAsked) {
  const auto base = Req("ap-guangzhou", "lhbp-ls883feh", {"ap-singapore", "ap-tokyo"});
  const std::vector<v1::SyncBlueprintRequest> others = {
      Req("ap-shanghai", "lhbp-ls883feh", {"ap-singapore", "ap-tokyo"}),
      Req("ap-guangzhou", "lhbp-ls883fei", {"ap-singapore", "ap-tokyo"}),
      Req("ap-guangzhou", "lhbp-ls883feh", {"ap-singapore"}),
      Req("ap-guangzhou", "lhbp-ls883feh", {"ap-singapore", "ap-tokyo", "ap-seoul"}),
      Req("ap-guangzhou", "lhbp-ls883feh", {"ap-singapore", "ap-seoul"}),
  };
  std::set<std::string> seen = {RequestFingerprint(base)};
  for (const auto& o : others) {
    EXPECT_TRUE(seen.insert(RequestFingerprint(o)).second) << o.DebugString();
  }
}

// Fingerprints stored before policies existed must still match requests
// without one; a policy makes a different request.
TEST(RequestFingerprintTest, APolicyChangesItOnlyWhenSet) {
  const auto r = Req("ap-guangzhou", "lhbp-ls883feh", {"ap-singapore", "ap-tokyo"});
  EXPECT_EQ(RequestFingerprint(r, "", ""), RequestFingerprint(r));
  EXPECT_EQ(RequestFingerprint(r, "syncJobs/a", ""), RequestFingerprint(r, "syncJobs/a"));
  // Pinned: the v2 fingerprint of this request as recorded before policies.
  EXPECT_EQ(RequestFingerprint(r),
            "v2:" + tencent::crypto::Sha256Hex("12:ap-guangzhou;13:lhbp-ls883feh;1:2;"
                                               "12:ap-singapore;8:ap-tokyo;1:0;0:;0:;0:;"));
  const std::string web = RequestFingerprint(r, "", "syncPolicies/web");
  EXPECT_NE(web, RequestFingerprint(r));
  EXPECT_NE(web, RequestFingerprint(r, "", "syncPolicies/db"));
  // Not the same as the policy's name given as the retried job.
  EXPECT_NE(web, RequestFingerprint(r, "syncPolicies/web"));
  EXPECT_TRUE(FingerprintMatches(web, r, "", "syncPolicies/web"));
  EXPECT_FALSE(FingerprintMatches(web, r));
  EXPECT_FALSE(FingerprintMatches(RequestFingerprint(r), r, "", "syncPolicies/web"));
}

TEST(RequestFingerprintTest, FieldBoundariesCannotBeForged) {
  EXPECT_NE(RequestFingerprint(Req("s", "b", {"a,b"})),
            RequestFingerprint(Req("s", "b", {"a", "b"})));
  EXPECT_NE(RequestFingerprint(Req("s", "b", {"a;b"})),
            RequestFingerprint(Req("s", "b", {"a", "b"})));
  EXPECT_NE(RequestFingerprint(Req("ab", "c", {"d"})), RequestFingerprint(Req("a", "bc", {"d"})));
  EXPECT_NE(RequestFingerprint(Req("s", "b", {"x"})), RequestFingerprint(Req("s", "bx", {})));
  EXPECT_NE(RequestFingerprint(Req("s", "b", {""})), RequestFingerprint(Req("s", "b", {})));
  EXPECT_NE(RequestFingerprint(Req("s", "1:x;", {})), RequestFingerprint(Req("s", "", {"x"})));
}

TEST(SyncErrorTest, PlainStatus) {
  const v1::SyncError e = ToSyncError(absl::DeadlineExceededError("too late"));
  EXPECT_EQ(e.code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(e.message(), "too late");
  EXPECT_EQ(e.tencent_code(), "");
  EXPECT_EQ(e.tencent_request_id(), "");
  const absl::Status back = FromSyncError(e);
  EXPECT_EQ(back.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(back.message(), "too late");
  EXPECT_FALSE(tencent::GetApiError(back).has_value());
}

TEST(SyncErrorTest, TencentErrorRoundTrip) {
  tencent::ApiError api;
  api.kind = tencent::ErrorKind::kApi;
  api.code = "ResourceNotFound.PrivateBlueprintNotFound";
  api.message = "no such blueprint";
  api.request_id = "6ad8d2b3-0000-4b8e-9d3e-1a2b3c4d5e6f";
  api.action = "SyncBlueprint";
  const absl::Status original = tencent::MakeStatus(api);
  const v1::SyncError e = ToSyncError(original);
  EXPECT_EQ(e.code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(e.tencent_code(), api.code);
  EXPECT_EQ(e.tencent_request_id(), api.request_id);
  EXPECT_EQ(e.message(), std::string(original.message()));

  const absl::Status back = FromSyncError(e);
  EXPECT_EQ(back.code(), original.code());
  EXPECT_EQ(back.message(), original.message());
  auto back_api = tencent::GetApiError(back);
  ASSERT_TRUE(back_api.has_value());
  EXPECT_EQ(back_api->code, api.code);
  EXPECT_EQ(back_api->request_id, api.request_id);
  EXPECT_EQ(back_api->kind, tencent::ErrorKind::kApi);
  // And once more: the stored form is stable.
  const v1::SyncError again = ToSyncError(back);
  EXPECT_EQ(again.SerializeAsString(), e.SerializeAsString());
}

TEST(SyncErrorTest, ClientErrorsKeepRequestIdButAreNotTencentCodes) {
  tencent::ApiError api;
  api.kind = tencent::ErrorKind::kOutcomeUnknown;
  api.code = "ClientError.OutcomeUnknown";
  api.message = "connection reset";
  api.request_id = "req-1";
  const v1::SyncError e = ToSyncError(tencent::MakeStatus(api));
  EXPECT_EQ(e.tencent_code(), "");
  EXPECT_EQ(e.tencent_request_id(), "req-1");
}

// The last line of defence: whatever built the status (an upstream answer
// that escaped the decoders' bounds, a message cut mid-character), the
// stored error is bounded, valid UTF-8 and serializes.
TEST(SyncErrorTest, StoredErrorIsBoundedAndValidUtf8) {
  tencent::ApiError api;
  api.kind = tencent::ErrorKind::kApi;
  api.code = "FailedOperation." + std::string(100 * 1024, 'X');
  api.request_id = std::string(100 * 1024, 'r');
  std::string message = "bad\n";
  while (message.size() < 2 * 1024 * 1024) message += "\xE9\x94\x99";
  message += "\xE9";  // cut mid-character
  api.message = message;
  const v1::SyncError e = ToSyncError(tencent::MakeStatus(api));
  EXPECT_LE(e.message().size(), kMaxStoredErrorBytes);
  EXPECT_THAT(e.message(), HasSubstr("[cut: "));
  EXPECT_LE(e.tencent_code().size(), 128u);
  EXPECT_LE(e.tencent_request_id().size(), 128u);
  std::string wire;
  EXPECT_TRUE(e.SerializeToString(&wire)) << "a stored error must serialize";
  v1::SyncError back;
  EXPECT_TRUE(back.ParseFromString(wire));
}

TEST(SyncErrorTest, OkCodeIsNeverAnsweredAsSuccess) {
  v1::SyncError e;
  e.set_message("stored without a code");
  const absl::Status s = FromSyncError(e);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
}

TEST(TimestampTest, RoundTrip) {
  const std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::FromUnixSeconds(1700000000),
      absl::FromUnixNanos(1700000000123456789),
      absl::FromUnixSeconds(-1) + absl::Milliseconds(250),
      absl::FromUnixNanos(-1),
  };
  for (absl::Time t : times) {
    const google::protobuf::Timestamp ts = ToProto(t);
    EXPECT_GE(ts.nanos(), 0) << t;
    EXPECT_LT(ts.nanos(), 1000000000) << t;
    EXPECT_EQ(FromProto(ts), t) << t;
  }
  const auto ts = ToProto(absl::FromUnixNanos(-1));
  EXPECT_EQ(ts.seconds(), -1);
  EXPECT_EQ(ts.nanos(), 999999999);
  const auto ts2 = ToProto(absl::FromUnixNanos(1700000000123456789));
  EXPECT_EQ(ts2.seconds(), 1700000000);
  EXPECT_EQ(ts2.nanos(), 123456789);
}

TEST(FieldRuleTest, RoundTrip) {
  const absl::Status s =
      InvalidField("destination_regions[2]", "DESTINATION_DUPLICATED", "ap-tokyo is listed twice");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "destination_regions[2]: ap-tokyo is listed twice");
  auto rule = GetFieldRule(s);
  ASSERT_TRUE(rule.has_value());
  EXPECT_EQ(rule->field, "destination_regions[2]");
  EXPECT_EQ(rule->rule, "DESTINATION_DUPLICATED");
  EXPECT_FALSE(GetFieldRule(absl::InvalidArgumentError("plain")).has_value());
  EXPECT_FALSE(GetFieldRule(absl::OkStatus()).has_value());
}

TEST(IsUuidTest, Table) {
  EXPECT_TRUE(IsUuid("3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c"));
  EXPECT_TRUE(IsUuid("3F1C0A5E-8F1E-4C1B-9A57-0B1E2F3A4B5C"));
  EXPECT_TRUE(IsUuid("00000000-0000-0000-0000-000000000000"));
  EXPECT_TRUE(IsUuid("3f1c0a5e-8f1e-1c1b-0a57-0b1e2f3a4b5c"));  // any version/variant
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("3f1c0a5e8f1e4c1b9a570b1e2f3a4b5c"));
  EXPECT_FALSE(IsUuid("3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5"));
  EXPECT_FALSE(IsUuid("3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c0"));
  EXPECT_FALSE(IsUuid("{3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5}"));
  EXPECT_FALSE(IsUuid("3f1c0a5e-8f1e-4c1b-9a57_0b1e2f3a4b5c"));
  EXPECT_FALSE(IsUuid("3f1c0a5g-8f1e-4c1b-9a57-0b1e2f3a4b5c"));
  EXPECT_FALSE(IsUuid("3f1c0a5e-8f1e-4c1b-9a570-b1e2f3a4b5c"));
  EXPECT_FALSE(IsUuid("3f1c0a5e -8f1e-4c1b-9a57-0b1e2f3a4b5"));
  EXPECT_FALSE(IsUuid(std::string("3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5\0", 36)));
}

TEST(NewJobNameTest, FormatIsSyncJobsSlashLowercaseUuidV4) {
  for (int i = 0; i < 200; ++i) {
    const std::string name = NewJobName();
    ASSERT_TRUE(absl::StartsWith(name, "syncJobs/")) << name;
    const std::string id = name.substr(9);
    ASSERT_TRUE(IsUuid(id)) << name;
    EXPECT_EQ(id[14], '4') << name;                                               // version
    EXPECT_THAT(std::string("89ab"), HasSubstr(std::string(1, id[19]))) << name;  // variant
    for (char c : id) EXPECT_FALSE(c >= 'A' && c <= 'Z') << name;
  }
}

TEST(NewJobNameTest, Unique) {
  std::set<std::string> names;
  for (int i = 0; i < 10000; ++i) names.insert(NewJobName());
  EXPECT_EQ(names.size(), 10000u);
}

}  // namespace
}  // namespace blueprintsync::jobs
