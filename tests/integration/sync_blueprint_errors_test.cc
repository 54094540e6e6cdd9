// Every error code the SyncBlueprint API reference page documents (its
// "Error Codes" section), produced by the
// emulator over real HTTP and surfaced by the production client as a typed
// ApiError with the canonical code of the README "Errors" table. Codes the
// emulator models come from its business rules; the rest from its "error"
// fault rule. The expected canonical codes are written out here from the
// README, not computed with CanonicalCode(), so a drift in either shows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/integration/integration_harness.h"

namespace blueprintsync::testing {
namespace {

using tencent::ErrorKind;
using tencent::SyncBlueprintRequest;

constexpr char kSource[] = "ap-guangzhou";
constexpr char kSourceId[] = "lhbp-gzbase01";

struct SyncErrorCase {
  std::string code;
  absl::StatusCode canonical;
  // How the emulator is made to answer with `code`: via its business rules
  // (natural) or via an "error" fault rule.
  bool natural = true;
  std::function<absl::Status(emulator::LighthouseEmulator&)> setup;
  SyncBlueprintRequest request{kSource, kSourceId, {"ap-shanghai"}};
  // Successful SyncBlueprint calls the setup makes before the one under test.
  int prior_syncs = 0;
  ErrorKind kind = ErrorKind::kApi;
};

std::function<absl::Status(emulator::LighthouseEmulator&)> Config(std::string json) {
  return [json](emulator::LighthouseEmulator& e) { return e.UpdateConfig(json); };
}

std::function<absl::Status(emulator::LighthouseEmulator&)> Blueprints(std::string json) {
  return [json](emulator::LighthouseEmulator& e) { return e.PutBlueprints(json); };
}

SyncErrorCase Injected(std::string code, absl::StatusCode canonical) {
  SyncErrorCase c;
  c.code = code;
  c.canonical = canonical;
  c.natural = false;
  c.setup = [code](emulator::LighthouseEmulator& e) {
    return e.SetFaults(absl::StrCat(R"({"rules":[{"action":"SyncBlueprint","fault":"error",)",
                                    R"("code":")", code, R"(","count":1}]})"));
  };
  return c;
}

SyncErrorCase Natural(std::string code, absl::StatusCode canonical,
                      std::function<absl::Status(emulator::LighthouseEmulator&)> setup,
                      SyncBlueprintRequest request = {kSource, kSourceId, {"ap-shanghai"}}) {
  SyncErrorCase c;
  c.code = std::move(code);
  c.canonical = canonical;
  c.setup = std::move(setup);
  c.request = std::move(request);
  return c;
}

std::vector<SyncErrorCase> Cases() {
  using C = absl::StatusCode;
  const auto none = [](emulator::LighthouseEmulator&) { return absl::OkStatus(); };
  std::vector<SyncErrorCase> cases;
  cases.push_back(Injected("AuthFailure", C::kInternal));
  cases.push_back(Natural("FailedOperation.BalanceInsufficient", C::kFailedPrecondition,
                          Config(R"({"balance_insufficient":true})")));
  cases.push_back(Injected("FailedOperation.DescribeBlueprintQuotaFailed", C::kUnavailable));
  cases.push_back(Injected("FailedOperation.NumLimitError", C::kResourceExhausted));
  cases.push_back(Injected("FailedOperation.RequestError", C::kUnavailable));
  cases.push_back(Natural(
      "FailedOperation.UnableToSyncBlueprint", C::kFailedPrecondition,
      Blueprints(
          R"({"blueprints":[{"Region":"ap-guangzhou","BlueprintId":"lhbp-nosync01","Syncable":false}]})"),
      {kSource, "lhbp-nosync01", {"ap-shanghai"}}));
  {
    // Tencent's InternalError does not say whether SyncBlueprint ran, so the
    // client reports it as outcome-unknown (code and RequestId kept); the
    // canonical code of kOutcomeUnknown is UNKNOWN. Injected before
    // execution, so the emulator shows it did not run.
    SyncErrorCase c;
    c.code = "InternalError";
    c.canonical = C::kUnknown;
    c.natural = false;
    c.kind = ErrorKind::kOutcomeUnknown;
    c.setup = [](emulator::LighthouseEmulator& e) {
      return e.SetFaults(
          R"({"rules":[{"action":"SyncBlueprint","fault":"internal_error","count":1}]})");
    };
    cases.push_back(std::move(c));
  }
  cases.push_back(Natural("InvalidParameterValue.BlueprintIdMalformed", C::kInvalidArgument, none,
                          {kSource, "lhbp-NOT_OK!", {"ap-shanghai"}}));
  cases.push_back(Natural("InvalidParameterValue.DestinationRegionSameAsSourceRegion",
                          C::kInvalidArgument, none,
                          {kSource, kSourceId, {"ap-shanghai", "ap-guangzhou"}}));
  cases.push_back(Natural("InvalidParameterValue.Duplicated", C::kInvalidArgument, none,
                          {kSource, kSourceId, {"ap-shanghai", "ap-beijing", "ap-shanghai"}}));
  cases.push_back(Natural("InvalidParameterValue.NotSupportCrossBorderSyncBlueprint",
                          C::kInvalidArgument, none, {kSource, kSourceId, {"ap-singapore"}}));
  cases.push_back(Natural("InvalidParameterValue.UnavailableRegion", C::kInvalidArgument, none,
                          {kSource, kSourceId, {"ap-atlantis"}}));
  // The client refuses more than 10 destinations before sending anything, so
  // the emulator's own >10 answer cannot be reached through it.
  cases.push_back(Injected("LimitExceeded", C::kResourceExhausted));
  // ap-shanghai already holds one custom image (lhbp-shbase01).
  cases.push_back(Natural("LimitExceeded.SyncBlueprintQuotaLimitExceeded", C::kResourceExhausted,
                          Config(R"({"quota_per_region":1})")));
  {
    SyncErrorCase c = Natural("OperationDenied.BlueprintOperationInProgress", C::kAborted,
                              Config(R"({"sync_duration_ms":600000})"));
    c.prior_syncs = 1;  // the first sync leaves the source SYNCING
    cases.push_back(std::move(c));
  }
  cases.push_back(Natural("ResourceNotFound.PrivateBlueprintNotFound", C::kNotFound, none,
                          {kSource, "lhbp-zz999999", {"ap-shanghai"}}));
  cases.push_back(Natural("UnauthorizedOperation.CertificationNeedUpgrade", C::kFailedPrecondition,
                          Config(R"({"certification":"needs_upgrade"})")));
  cases.push_back(Natural("UnauthorizedOperation.NoPermission", C::kInternal,
                          Config(absl::StrCat(R"({"no_permission_secret_ids":[")",
                                              emulator::kDefaultSecretId, R"("]})"))));
  cases.push_back(Natural("UnauthorizedOperation.NotCertification", C::kFailedPrecondition,
                          Config(R"({"certification":"none"})")));
  // lhbp-gzfail01 is seeded in state CREATEFAILED.
  cases.push_back(Natural("UnsupportedOperation.BlueprintCurStateInvalid", C::kFailedPrecondition,
                          none, {kSource, "lhbp-gzfail01", {"ap-shanghai"}}));
  cases.push_back(Natural(
      "UnsupportedOperation.BlueprintLatestOperationUnfinished", C::kAborted,
      Blueprints(
          R"({"blueprints":[{"Region":"ap-guangzhou","BlueprintId":"lhbp-unfini01","LatestOperationUnfinished":true}]})"),
      {kSource, "lhbp-unfini01", {"ap-shanghai"}}));
  return cases;
}

// Keeps test names (and ctest's, which show the parameter) readable.
void PrintTo(const SyncErrorCase& c, std::ostream* os) { *os << c.code; }

class SyncBlueprintErrorTest : public ::testing::TestWithParam<SyncErrorCase> {};

TEST_P(SyncBlueprintErrorTest, SurfacesAsTypedApiError) {
  const SyncErrorCase& c = GetParam();
  EmulatorHarness emu;
  ASSERT_TRUE(emu.Start().ok());
  ASSERT_TRUE(c.setup(emu.emulator()).ok());
  auto client = emu.Client();

  for (int i = 0; i < c.prior_syncs; ++i) {
    auto prior = client->SyncBlueprint(c.request);
    ASSERT_TRUE(prior.ok()) << prior.status();
  }
  auto r = client->SyncBlueprint(c.request);
  ASSERT_FALSE(r.ok()) << "SyncBlueprint succeeded; expected " << c.code;
  auto e = ApiErrorOf(r);
  ASSERT_TRUE(e.has_value()) << "no ApiError payload: " << r.status();
  EXPECT_EQ(e->code, c.code) << r.status();
  EXPECT_EQ(e->kind, c.kind) << tencent::ErrorKindName(e->kind);
  EXPECT_EQ(e->action, "SyncBlueprint");
  EXPECT_FALSE(e->request_id.empty());
  EXPECT_EQ(e->http_status, 200);
  EXPECT_FALSE(e->message.empty());
  EXPECT_EQ(r.status().code(), c.canonical) << r.status();
  EXPECT_EQ(tencent::CanonicalCode(*e), c.canonical);
  EXPECT_EQ(e->MayHaveExecuted(), c.kind == ErrorKind::kOutcomeUnknown);

  auto stats = emu.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const EmulatorActionStats sync = stats->Action("SyncBlueprint");
  // Sent exactly once (none of these is retried) and not executed.
  EXPECT_EQ(sync.received, c.prior_syncs + 1);
  EXPECT_EQ(sync.executed, c.prior_syncs);
  EXPECT_EQ(sync.errors, 1);
  EXPECT_EQ(sync.throttled, 0);
  EXPECT_EQ(stats->sync_submissions.size(), static_cast<size_t>(c.prior_syncs));
  // The fault route was taken only where the table says so.
  EXPECT_EQ(stats->TotalFaults(), c.natural ? 0 : 1);
}

INSTANTIATE_TEST_SUITE_P(DocumentedCodes, SyncBlueprintErrorTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<SyncErrorCase>& param) {
                           return absl::StrReplaceAll(param.param.code, {{".", "_"}});
                         });

// Every code on the reference page has a row above (guards against a row
// being dropped while the page keeps the code).
TEST(SyncBlueprintErrorTableTest, CoversEveryDocumentedCode) {
  const std::vector<std::string> documented = {
      "AuthFailure",
      "FailedOperation.BalanceInsufficient",
      "FailedOperation.DescribeBlueprintQuotaFailed",
      "FailedOperation.NumLimitError",
      "FailedOperation.RequestError",
      "FailedOperation.UnableToSyncBlueprint",
      "InternalError",
      "InvalidParameterValue.BlueprintIdMalformed",
      "InvalidParameterValue.DestinationRegionSameAsSourceRegion",
      "InvalidParameterValue.Duplicated",
      "InvalidParameterValue.NotSupportCrossBorderSyncBlueprint",
      "InvalidParameterValue.UnavailableRegion",
      "LimitExceeded",
      "LimitExceeded.SyncBlueprintQuotaLimitExceeded",
      "OperationDenied.BlueprintOperationInProgress",
      "ResourceNotFound.PrivateBlueprintNotFound",
      "UnauthorizedOperation.CertificationNeedUpgrade",
      "UnauthorizedOperation.NoPermission",
      "UnauthorizedOperation.NotCertification",
      "UnsupportedOperation.BlueprintCurStateInvalid",
      "UnsupportedOperation.BlueprintLatestOperationUnfinished",
  };
  std::vector<std::string> covered;
  for (const SyncErrorCase& c : Cases()) covered.push_back(c.code);
  EXPECT_THAT(covered, ::testing::UnorderedElementsAreArray(documented));
}

}  // namespace
}  // namespace blueprintsync::testing
