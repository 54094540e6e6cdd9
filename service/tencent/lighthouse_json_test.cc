#include "service/tencent/lighthouse_json.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tencent/api_envelope.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::tencent::json {
namespace {

using ::testing::HasSubstr;

// --- Encoding ---

TEST(EncodeTest, SyncBlueprintMatchesDocumentedFields) {
  SyncBlueprintRequest request;
  request.region = "ap-guangzhou";  // goes into X-TC-Region, not the body
  request.blueprint_id = "lhbp-ls883feh";
  request.destination_regions = {"ap-singapore", "ap-hongkong"};
  EXPECT_EQ(
      EncodeSyncBlueprint(request),
      R"({"BlueprintId":"lhbp-ls883feh","DestinationRegions":["ap-singapore","ap-hongkong"]})");
}

TEST(EncodeTest, SyncBlueprintEscapesStrings) {
  SyncBlueprintRequest request;
  request.blueprint_id = std::string("a\"b\\c\n\x01", 7);
  request.destination_regions = {};
  EXPECT_EQ(EncodeSyncBlueprint(request),
            R"({"BlueprintId":"a\"b\\c\n\u0001","DestinationRegions":[]})");
}

TEST(EncodeTest, DescribeBlueprintsOmitsAbsentFields) {
  DescribeBlueprintsRequest request;
  request.region = "ap-singapore";
  EXPECT_EQ(EncodeDescribeBlueprints(request), "{}");
}

TEST(EncodeTest, DescribeBlueprintsWithIdsOffsetLimit) {
  DescribeBlueprintsRequest request;
  request.blueprint_ids = {"lhbp-aaaaaaaa", "lhbp-bbbbbbbb"};
  request.offset = 0;
  request.limit = 100;
  EXPECT_EQ(EncodeDescribeBlueprints(request),
            R"({"BlueprintIds":["lhbp-aaaaaaaa","lhbp-bbbbbbbb"],"Offset":0,"Limit":100})");
}

TEST(EncodeTest, DescribeBlueprintsWithFilters) {
  DescribeBlueprintsRequest request;
  request.filters = {{"blueprint-type", {"PRIVATE"}}, {"blueprint-state", {"NORMAL", "SYNCING"}}};
  request.limit = 20;
  EXPECT_EQ(EncodeDescribeBlueprints(request),
            R"({"Filters":[{"Name":"blueprint-type","Values":["PRIVATE"]},)"
            R"({"Name":"blueprint-state","Values":["NORMAL","SYNCING"]}],"Limit":20})");
}

TEST(EncodeTest, DescribeRegionsIsEmptyObject) { EXPECT_EQ(EncodeDescribeRegions(), "{}"); }

TEST(EncodeTest, DeleteBlueprintsSendsTheIdsInOrder) {
  DeleteBlueprintsRequest request;
  request.region = "ap-guangzhou";  // a header, never in the body
  request.blueprint_ids = {"lhbp-b0000002", "lhbp-a0000001"};
  EXPECT_EQ(EncodeDeleteBlueprints(request),
            R"({"BlueprintIds":["lhbp-b0000002","lhbp-a0000001"]})");
}

// --- Decoding successes ---

// The output example of the SyncBlueprint API page, verbatim.
constexpr char kSyncBlueprintDocExample[] = R"({
    "Response": {
        "DestinationRegionBlueprintSet": [
            {
                "Region": "ap-singapore",
                "BlueprintId": "lhbp-lf3gjs2f"
            },
            {
                "Region": "ap-hongkong",
                "BlueprintId": "lhbp-lfle246l"
            }
        ],
        "RequestId": "e35a5b7b-4dfa-49f8-8729-ba5c504807e0"
    }
})";

TEST(DecodeSyncBlueprintTest, DocumentationExample) {
  absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(kSyncBlueprintDocExample);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "e35a5b7b-4dfa-49f8-8729-ba5c504807e0");
  ASSERT_EQ(r->destinations.size(), 2u);
  EXPECT_EQ(r->destinations[0].region, "ap-singapore");
  EXPECT_EQ(r->destinations[0].blueprint_id, "lhbp-lf3gjs2f");
  EXPECT_EQ(r->destinations[1].region, "ap-hongkong");
  EXPECT_EQ(r->destinations[1].blueprint_id, "lhbp-lfle246l");
}

TEST(DecodeSyncBlueprintTest, ToleratesUnknownFields) {
  absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(
      R"({"Response":{"DeprecatedWarning":null,"DestinationRegionBlueprintSet":)"
      R"([{"Region":"ap-tokyo","BlueprintId":"lhbp-11111111","Extra":{"a":[1,2]}}],)"
      R"("RequestId":"r-1","Future":[true]},"Other":1})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "r-1");
  ASSERT_EQ(r->destinations.size(), 1u);
  EXPECT_EQ(r->destinations[0].region, "ap-tokyo");
}

TEST(DecodeSyncBlueprintTest, DoesNotNeedNulTermination) {
  const std::string text = std::string(kSyncBlueprintDocExample) + "garbage";
  std::string_view view(text.data(), text.size() - 7);
  EXPECT_TRUE(DecodeSyncBlueprint(view).ok());
  EXPECT_FALSE(DecodeSyncBlueprint(text).ok());
}

constexpr char kDescribeBlueprintsBody[] = R"({"Response":{
  "TotalCount": 2,
  "BlueprintSet": [
    {"BlueprintId":"lhbp-ls883feh","DisplayTitle":"my image","DisplayVersion":"",
     "Description":null,"OsName":"Ubuntu Server 22.04 LTS 64bit","Platform":"UBUNTU",
     "PlatformType":"LINUX_UNIX","BlueprintType":"PRIVATE","ImageUrl":"",
     "RequiredSystemDiskSize":40,"BlueprintState":"NORMAL","CreatedTime":"2025-06-20T08:00:00Z",
     "BlueprintName":"web \u4e2d\u6587 \ud83d\ude00","SupportAutomationTools":true,
     "RequiredMemorySize":2,"ImageId":null,"CommunityUrl":"","GuideUrl":"","SceneIdSet":[],
     "DockerVersion":null,"BlueprintShared":false,"Tags":[{"Key":"k","Value":"v"}]},
    {"BlueprintId":"lhbp-lf3gjs2f","BlueprintState":"SYNCING","Description":"copy",
     "CreatedTime":null,"BlueprintName":null}
  ],
  "RequestId": "6ef60bec-0242-43af-bb20-270359fb54a7"}})";

TEST(DecodeDescribeBlueprintsTest, FullAndSparseEntries) {
  absl::StatusOr<DescribeBlueprintsResponse> r = DecodeDescribeBlueprints(kDescribeBlueprintsBody);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total_count, 2);
  EXPECT_EQ(r->request_id, "6ef60bec-0242-43af-bb20-270359fb54a7");
  ASSERT_EQ(r->blueprints.size(), 2u);
  const Blueprint& a = r->blueprints[0];
  EXPECT_EQ(a.blueprint_id, "lhbp-ls883feh");
  EXPECT_EQ(a.blueprint_state, "NORMAL");
  EXPECT_EQ(a.blueprint_type, "PRIVATE");
  EXPECT_EQ(a.platform_type, "LINUX_UNIX");
  EXPECT_EQ(a.os_name, "Ubuntu Server 22.04 LTS 64bit");
  EXPECT_EQ(a.description, "");
  EXPECT_EQ(a.created_time, "2025-06-20T08:00:00Z");
  EXPECT_EQ(a.required_system_disk_size, 40);
  // \u escapes, including a surrogate pair, decode to UTF-8.
  EXPECT_EQ(a.blueprint_name, "web \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80");
  const Blueprint& b = r->blueprints[1];
  EXPECT_EQ(b.blueprint_id, "lhbp-lf3gjs2f");
  EXPECT_EQ(b.blueprint_state, "SYNCING");
  EXPECT_EQ(b.description, "copy");
  EXPECT_EQ(b.created_time, "");
  EXPECT_EQ(b.blueprint_name, "");
  EXPECT_EQ(b.required_system_disk_size, 0);
}

TEST(DecodeDescribeBlueprintsTest, EmptySet) {
  absl::StatusOr<DescribeBlueprintsResponse> r = DecodeDescribeBlueprints(
      R"({"Response":{"TotalCount":0,"BlueprintSet":[],"RequestId":"x"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total_count, 0);
  EXPECT_TRUE(r->blueprints.empty());
}

// An escaped NUL parses, but free text never keeps a control character
// (it would end up in logs and job records): it becomes U+FFFD.
TEST(DecodeDescribeBlueprintsTest, EscapedNulInsideFreeTextIsReplaced) {
  absl::StatusOr<DescribeBlueprintsResponse> r = DecodeDescribeBlueprints(
      R"({"Response":{"TotalCount":1,"BlueprintSet":[{"BlueprintId":"lhbp-00000001","BlueprintState":"NORMAL","Description":"a\u0000b"}],"RequestId":"x"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->blueprints[0].description, "a\xEF\xBF\xBD" "b");
}

TEST(DecodeDescribeRegionsTest, DocumentedShape) {
  absl::StatusOr<DescribeRegionsResponse> r = DecodeDescribeRegions(R"json({"Response":{
    "TotalCount":2,
    "RegionSet":[
      {"Region":"ap-beijing","RegionName":"\u534e\u5317\u5730\u533a(\u5317\u4eac)","RegionState":"AVAILABLE","IsChinaMainland":true},
      {"Region":"ap-hongkong","RegionName":"Hong Kong","RegionState":"AVAILABLE","IsChinaMainland":false}
    ],
    "RequestId":"req-9"}})json");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total_count, 2);
  EXPECT_EQ(r->request_id, "req-9");
  ASSERT_EQ(r->regions.size(), 2u);
  EXPECT_EQ(r->regions[0].region, "ap-beijing");
  EXPECT_EQ(r->regions[0].region_name,
            "\xE5\x8D\x8E\xE5\x8C\x97\xE5\x9C\xB0\xE5\x8C\xBA(\xE5\x8C\x97\xE4\xBA\xAC)");
  EXPECT_TRUE(r->regions[0].is_china_mainland);
  EXPECT_EQ(r->regions[1].region, "ap-hongkong");
  EXPECT_FALSE(r->regions[1].is_china_mainland);
}

TEST(DecodeDeleteBlueprintsTest, RequestIdIsTheWholeAnswer) {
  absl::StatusOr<DeleteBlueprintsResponse> r =
      DecodeDeleteBlueprints(R"({"Response":{"RequestId":"del-1","Extra":[1]}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "del-1");
}

TEST(DecodeDeleteBlueprintsTest, MissingRequestIdIsMalformed) {
  for (const char* body : {R"({"Response":{}})", R"({"Response":{"RequestId":""}})", "{"}) {
    absl::StatusOr<DeleteBlueprintsResponse> r = DecodeDeleteBlueprints(body);
    ASSERT_FALSE(r.ok()) << body;
    std::optional<ApiError> e = GetApiError(r.status());
    ASSERT_TRUE(e.has_value()) << body;
    EXPECT_EQ(e->kind, ErrorKind::kMalformedResponse) << body;
    EXPECT_EQ(e->action, "DeleteBlueprints") << body;
  }
}

TEST(DecodeDeleteBlueprintsTest, ErrorEnvelopesKeepTheirCanonicalCodes) {
  const std::pair<const char*, absl::StatusCode> cases[] = {
      {"ResourceNotFound.PrivateBlueprintNotFound", absl::StatusCode::kNotFound},
      {"UnsupportedOperation.BlueprintCurStateInvalid", absl::StatusCode::kFailedPrecondition},
      {"UnsupportedOperation.BlueprintOccupied", absl::StatusCode::kFailedPrecondition},
  };
  for (const auto& [code, want] : cases) {
    absl::StatusOr<DeleteBlueprintsResponse> r =
        DecodeDeleteBlueprints(std::string(R"({"Response":{"Error":{"Code":")") + code +
                               R"(","Message":"no"},"RequestId":"rid-d"}})");
    ASSERT_FALSE(r.ok()) << code;
    std::optional<ApiError> e = GetApiError(r.status());
    ASSERT_TRUE(e.has_value()) << code;
    EXPECT_EQ(e->kind, ErrorKind::kApi);
    EXPECT_EQ(e->code, code);
    EXPECT_EQ(e->request_id, "rid-d");
    EXPECT_EQ(e->action, "DeleteBlueprints");
    EXPECT_EQ(r.status().code(), want) << code;
  }
}

// --- Error envelopes ---

TEST(DecodeErrorTest, EnvelopeBecomesApiError) {
  constexpr char kBody[] = R"({"Response":{"Error":{"Code":"InvalidParameterValue.Duplicated",)"
                           R"("Message":"duplicate region \u0061p-tokyo"},"RequestId":"rid-7"}})";
  absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(kBody);
  ASSERT_FALSE(r.ok());
  std::optional<ApiError> e = GetApiError(r.status());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, ErrorKind::kApi);
  EXPECT_EQ(e->code, "InvalidParameterValue.Duplicated");
  EXPECT_EQ(e->message, "duplicate region ap-tokyo");
  EXPECT_EQ(e->request_id, "rid-7");
  EXPECT_EQ(e->action, "SyncBlueprint");
  EXPECT_EQ(e->http_status, 200);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DecodeErrorTest, EnvelopeWinsOverMissingSuccessFields) {
  absl::StatusOr<DescribeBlueprintsResponse> r = DecodeDescribeBlueprints(
      R"({"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"slow down"},"RequestId":"q"}})");
  ASSERT_FALSE(r.ok());
  std::optional<ApiError> e = GetApiError(r.status());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, ErrorKind::kApi);
  EXPECT_EQ(e->code, "RequestLimitExceeded");
  EXPECT_EQ(e->action, "DescribeBlueprints");
}

TEST(DecodeErrorTest, EnvelopeWithoutMessageOrRequestId) {
  absl::StatusOr<DescribeRegionsResponse> r =
      DecodeDescribeRegions(R"({"Response":{"Error":{"Code":"InternalError","Message":null}}})");
  ASSERT_FALSE(r.ok());
  std::optional<ApiError> e = GetApiError(r.status());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, ErrorKind::kApi);
  EXPECT_EQ(e->code, "InternalError");
  EXPECT_EQ(e->message, "");
  EXPECT_EQ(e->request_id, "");
}

// --- Malformed inputs ---

struct MalformedCase {
  const char* name;
  std::string body;
  const char* message_part;  // a fragment the error message must contain
};

std::vector<MalformedCase> MalformedSyncCases() {
  const std::string ok_item = R"({"Region":"ap-tokyo","BlueprintId":"lhbp-00000001"})";
  auto with_set = [](const std::string& set) {
    return R"({"Response":{"DestinationRegionBlueprintSet":)" + set + R"(,"RequestId":"r"}})";
  };
  auto with_item = [&with_set](const std::string& item) { return with_set("[" + item + "]"); };
  return {
      {"empty", "", "empty body"},
      {"whitespace", "   \n", "invalid JSON"},
      {"truncated", std::string(kSyncBlueprintDocExample).substr(0, 80), "invalid JSON"},
      {"null", "null", "expected an object, got null"},
      {"top-level array", "[]", "expected an object, got an array"},
      {"top-level string", R"("Response")", "expected an object, got a string"},
      {"top-level number", "42", "expected an object, got a number"},
      {"trailing garbage", R"({"Response":{}} x)", "invalid JSON"},
      {"two documents", R"({"Response":{}}{"Response":{}})", "invalid JSON"},
      {"raw NUL after document", std::string(R"({"Response":{}})") + '\0' + "junk", "NUL"},
      {"no Response", R"({"response":{}})", "Response: required field missing"},
      {"Response null", R"({"Response":null})", "Response: expected an object, got null"},
      {"Response array", R"({"Response":[]})", "Response: expected an object, got an array"},
      {"Response string", R"({"Response":"ok"})", "Response: expected an object"},
      {"Error not object", R"({"Response":{"Error":"InternalError","RequestId":"r"}})",
       "Response.Error: expected an object"},
      {"Error null", R"({"Response":{"Error":null,"RequestId":"r"}})",
       "Response.Error: expected an object, got null"},
      {"Error without Code", R"({"Response":{"Error":{"Message":"m"},"RequestId":"r"}})",
       "Response.Error.Code: required field missing"},
      {"Error Code number", R"({"Response":{"Error":{"Code":7},"RequestId":"r"}})",
       "Response.Error.Code: expected a string"},
      {"Error Code empty", R"({"Response":{"Error":{"Code":""},"RequestId":"r"}})",
       "Response.Error.Code: empty"},
      {"Error Message number", R"({"Response":{"Error":{"Code":"X","Message":1}}})",
       "Response.Error.Message: expected a string"},
      {"RequestId missing", R"({"Response":{"DestinationRegionBlueprintSet":[]}})",
       "Response.RequestId: required field missing"},
      {"RequestId null", R"({"Response":{"DestinationRegionBlueprintSet":[],"RequestId":null}})",
       "Response.RequestId: expected a string, got null"},
      {"RequestId number", R"({"Response":{"DestinationRegionBlueprintSet":[],"RequestId":5}})",
       "Response.RequestId: expected a string"},
      {"RequestId empty", R"({"Response":{"DestinationRegionBlueprintSet":[],"RequestId":""}})",
       "Response.RequestId: empty"},
      {"set missing", R"({"Response":{"RequestId":"r"}})",
       "DestinationRegionBlueprintSet: required field missing"},
      {"set null", with_set("null"), "DestinationRegionBlueprintSet: expected an array, got null"},
      {"set object", with_set(ok_item), "DestinationRegionBlueprintSet: expected an array"},
      {"item string", with_item(R"("ap-tokyo")"),
       "DestinationRegionBlueprintSet[0]: expected an object"},
      {"item null", with_set("[" + ok_item + ",null]"),
       "DestinationRegionBlueprintSet[1]: expected an object, got null"},
      {"item Region missing", with_item(R"({"BlueprintId":"lhbp-00000001"})"),
       "DestinationRegionBlueprintSet[0].Region: required field missing"},
      {"item Region null", with_item(R"({"Region":null,"BlueprintId":"lhbp-00000001"})"),
       "DestinationRegionBlueprintSet[0].Region: expected a string, got null"},
      {"item BlueprintId number", with_item(R"({"Region":"ap-tokyo","BlueprintId":12345678})"),
       "DestinationRegionBlueprintSet[0].BlueprintId: expected a string, got a number"},
      {"item BlueprintId bool", with_item(R"({"Region":"ap-tokyo","BlueprintId":true})"),
       "BlueprintId: expected a string, got a boolean"},
      {"item BlueprintId empty", with_item(R"({"Region":"ap-tokyo","BlueprintId":""})"),
       "BlueprintId: not a blueprint id"},
      {"invalid UTF-8 in string", with_item("{\"Region\":\"ap-\xff\xfe\",\"BlueprintId\":\"x\"}"),
       "invalid JSON"},
      {"overlong UTF-8", with_item("{\"Region\":\"\xc0\xaf\",\"BlueprintId\":\"x\"}"),
       "invalid JSON"},
      {"lone surrogate escape", with_item(R"({"Region":"\ud800","BlueprintId":"x"})"),
       "invalid JSON"},
      {"bad escape", with_item(R"({"Region":"\q","BlueprintId":"x"})"), "invalid JSON"},
      {"control char in string", with_item("{\"Region\":\"a\x01\",\"BlueprintId\":\"x\"}"),
       "invalid JSON"},
      {"single quotes", R"({'Response':{}})", "invalid JSON"},
      {"unquoted key", R"({Response:{}})", "invalid JSON"},
      {"trailing comma", R"({"Response":{"RequestId":"r",}})", "invalid JSON"},
      {"comment", R"({"Response":{} /* c */})", "invalid JSON"},
      {"NaN", R"({"Response":{"X":NaN}})", "invalid JSON"},
      {"huge exponent", R"({"Response":{"X":1e400}})", "invalid JSON"},
      {"deep arrays", std::string(100000, '['), "invalid JSON"},
      {"deep objects",
       [] {
         std::string s;
         for (int i = 0; i < 100000; ++i) s += R"({"a":)";
         return s;
       }(),
       "invalid JSON"},
      {"deep but closed",
       "{\"Response\":" + std::string(100000, '[') + std::string(100000, ']') + "}",
       "Response: expected an object, got an array"},
  };
}

TEST(DecodeMalformedTest, SyncBlueprintTable) {
  const std::vector<MalformedCase> cases = MalformedSyncCases();
  ASSERT_GE(cases.size(), 25u);
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(c.body);
    ASSERT_FALSE(r.ok());
    std::optional<ApiError> e = GetApiError(r.status());
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->kind, ErrorKind::kMalformedResponse);
    EXPECT_EQ(e->code, "ClientError.ParseJsonError");
    EXPECT_EQ(e->action, "SyncBlueprint");
    EXPECT_EQ(e->http_status, 200);
    EXPECT_THAT(e->message, HasSubstr(c.message_part));
    // The envelope reader agrees that none of these is an error envelope.
    EXPECT_FALSE(DecodeErrorEnvelope("SyncBlueprint", c.body).has_value());
  }
}

TEST(DecodeMalformedTest, DescribeBlueprintsTable) {
  auto with = [](const std::string& response_fields) {
    return R"({"Response":{)" + response_fields + R"(,"RequestId":"r"}})";
  };
  auto with_item = [&with](const std::string& item) {
    return with(R"("TotalCount":1,"BlueprintSet":[)" + item + "]");
  };
  const std::vector<MalformedCase> cases = {
      {"TotalCount missing", with(R"("BlueprintSet":[])"), "TotalCount: required field missing"},
      {"TotalCount null", with(R"("TotalCount":null,"BlueprintSet":[])"),
       "TotalCount: expected an integer, got null"},
      {"TotalCount string", with(R"("TotalCount":"1","BlueprintSet":[])"),
       "TotalCount: expected an integer, got a string"},
      {"TotalCount fraction", with(R"("TotalCount":1.5,"BlueprintSet":[])"), "int64 range"},
      {"TotalCount beyond int64", with(R"("TotalCount":9223372036854775808,"BlueprintSet":[])"),
       "int64 range"},
      {"TotalCount beyond uint64",
       with(R"("TotalCount":123456789012345678901234567890,"BlueprintSet":[])"), "int64 range"},
      {"TotalCount negative", with(R"("TotalCount":-1,"BlueprintSet":[])"), "negative"},
      {"BlueprintSet missing", with(R"("TotalCount":0)"), "BlueprintSet: required field missing"},
      {"BlueprintSet null", with(R"("TotalCount":0,"BlueprintSet":null)"),
       "BlueprintSet: expected an array, got null"},
      {"item array", with_item("[]"), "BlueprintSet[0]: expected an object, got an array"},
      {"BlueprintId missing", with_item(R"({"BlueprintState":"NORMAL"})"),
       "BlueprintSet[0].BlueprintId: required field missing"},
      {"BlueprintId null", with_item(R"({"BlueprintId":null,"BlueprintState":"NORMAL"})"),
       "BlueprintSet[0].BlueprintId: expected a string, got null"},
      {"BlueprintState null", with_item(R"({"BlueprintId":"lhbp-00000001","BlueprintState":null})"),
       "BlueprintSet[0].BlueprintState: expected a string, got null"},
      {"BlueprintState object", with_item(R"({"BlueprintId":"lhbp-00000001","BlueprintState":{}})"),
       "BlueprintState: expected a string, got an object"},
      {"Description number",
       with_item(R"({"BlueprintId":"lhbp-00000001","BlueprintState":"NORMAL","Description":3})"),
       "BlueprintSet[0].Description: expected a string, got a number"},
      {"CreatedTime number",
       with_item(R"({"BlueprintId":"lhbp-00000001","BlueprintState":"NORMAL","CreatedTime":1700000000})"),
       "CreatedTime: expected a string"},
      {"disk size string",
       with_item(
           R"({"BlueprintId":"lhbp-00000001","BlueprintState":"NORMAL","RequiredSystemDiskSize":"40"})"),
       "RequiredSystemDiskSize: expected an integer, got a string"},
      {"disk size huge",
       with_item(
           R"({"BlueprintId":"lhbp-00000001","BlueprintState":"NORMAL","RequiredSystemDiskSize":1e30})"),
       "RequiredSystemDiskSize: not an integer in the int64 range"},
  };
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<DescribeBlueprintsResponse> r = DecodeDescribeBlueprints(c.body);
    ASSERT_FALSE(r.ok());
    std::optional<ApiError> e = GetApiError(r.status());
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->kind, ErrorKind::kMalformedResponse);
    EXPECT_EQ(e->code, "ClientError.ParseJsonError");
    EXPECT_EQ(e->action, "DescribeBlueprints");
    EXPECT_THAT(e->message, HasSubstr(c.message_part));
  }
}

TEST(DecodeMalformedTest, DescribeRegionsTable) {
  auto with_item = [](const std::string& item) {
    return R"({"Response":{"TotalCount":1,"RegionSet":[)" + item + R"(],"RequestId":"r"}})";
  };
  const std::vector<MalformedCase> cases = {
      {"RegionSet missing", R"({"Response":{"TotalCount":0,"RequestId":"r"}})",
       "RegionSet: required field missing"},
      {"IsChinaMainland missing", with_item(R"({"Region":"ap-beijing"})"),
       "RegionSet[0].IsChinaMainland: required field missing"},
      {"IsChinaMainland string", with_item(R"({"Region":"ap-beijing","IsChinaMainland":"true"})"),
       "IsChinaMainland: expected a boolean, got a string"},
      {"IsChinaMainland null", with_item(R"({"Region":"ap-beijing","IsChinaMainland":null})"),
       "IsChinaMainland: expected a boolean, got null"},
      {"Region number", with_item(R"({"Region":1,"IsChinaMainland":true})"),
       "RegionSet[0].Region: expected a string"},
      {"RegionName array",
       with_item(R"({"Region":"ap-beijing","RegionName":[],"IsChinaMainland":true})"),
       "RegionSet[0].RegionName: expected a string, got an array"},
  };
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<DescribeRegionsResponse> r = DecodeDescribeRegions(c.body);
    ASSERT_FALSE(r.ok());
    std::optional<ApiError> e = GetApiError(r.status());
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->kind, ErrorKind::kMalformedResponse);
    EXPECT_EQ(e->action, "DescribeRegions");
    EXPECT_THAT(e->message, HasSubstr(c.message_part));
  }
}

// --- Hostile answers (issue #16): bounded, or malformed ---

// A JSON string literal of `bytes` bytes: `prefix`, an escaped NUL, a line
// break, then "错" repeated.
std::string HostileLiteral(const std::string& prefix, size_t bytes) {
  std::string s = prefix + "\\u0000\\n";
  while (s.size() < bytes) s += "\xE9\x94\x99";
  return "\"" + s + "\"";
}

TEST(HostileAnswerTest, HugeErrorMessageAndRequestIdAreCutTheCodeIsKept) {
  const std::string body = R"({"Response":{"Error":{"Code":"FailedOperation.UnableToSyncBlueprint",)"
                           R"("Message":)" + HostileLiteral("bad", 2 * 1024 * 1024) +
                           R"(},"RequestId":)" + HostileLiteral("req", 100 * 1024) + "}}";
  absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(body);
  ASSERT_FALSE(r.ok());
  std::optional<ApiError> e = GetApiError(r.status());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, ErrorKind::kApi);
  EXPECT_EQ(e->code, "FailedOperation.UnableToSyncBlueprint");
  EXPECT_LE(e->message.size(), bounds::kMaxMessageBytes);
  EXPECT_THAT(e->message, HasSubstr("[cut: "));
  EXPECT_EQ(e->message.find('\0'), std::string::npos);
  EXPECT_EQ(e->message.find('\n'), std::string::npos);
  EXPECT_TRUE(bounds::IsValidUtf8(e->message));
  EXPECT_LE(e->request_id.size(), bounds::kMaxRequestIdBytes);
  EXPECT_TRUE(bounds::IsValidUtf8(e->request_id));
  // The whole status (what logs and gRPC answers show) is bounded too.
  EXPECT_LE(r.status().message().size(), 1400u);
}

TEST(HostileAnswerTest, HugeErrorCodeIsMalformed) {
  const std::string body = R"({"Response":{"Error":{"Code":")" + std::string(100 * 1024, 'X') +
                           R"(","Message":"m"},"RequestId":"r"}})";
  absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(body);
  ASSERT_FALSE(r.ok());
  std::optional<ApiError> e = GetApiError(r.status());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, ErrorKind::kMalformedResponse);
  EXPECT_THAT(e->message, HasSubstr("Response.Error.Code: not an error code"));
  EXPECT_LE(r.status().message().size(), 400u);
  EXPECT_FALSE(DecodeErrorEnvelope("SyncBlueprint", body).has_value());
}

TEST(HostileAnswerTest, GarbledDestinationIdIsMalformed) {
  for (const std::string& id :
       {HostileLiteral("lhbp-", 5 * 1024), std::string(R"("lhbp-ABCDEFGH")"),
        std::string(R"("lhbp-abc")"), std::string(R"("LHBP-abcdefgh")")}) {
    const std::string body =
        R"({"Response":{"DestinationRegionBlueprintSet":[{"Region":"ap-tokyo","BlueprintId":)" +
        id + R"(}],"RequestId":"r"}})";
    absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(body);
    ASSERT_FALSE(r.ok()) << id.substr(0, 30);
    std::optional<ApiError> e = GetApiError(r.status());
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->kind, ErrorKind::kMalformedResponse);
    EXPECT_THAT(e->message,
                HasSubstr("DestinationRegionBlueprintSet[0].BlueprintId: not a blueprint id"));
    EXPECT_LE(e->message.size(), 300u);
  }
}

TEST(HostileAnswerTest, GarbledDestinationRegionIsMalformed) {
  const std::string body =
      R"({"Response":{"DestinationRegionBlueprintSet":[{"Region":)" + HostileLiteral("ap-", 5000) +
      R"(,"BlueprintId":"lhbp-abcdefgh"}],"RequestId":"r"}})";
  absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(body);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(GetApiError(r.status())->message,
              HasSubstr("DestinationRegionBlueprintSet[0].Region: not a region"));
}

TEST(HostileAnswerTest, HugeSuccessRequestIdIsCut) {
  const std::string body =
      R"({"Response":{"DestinationRegionBlueprintSet":[{"Region":"ap-tokyo","BlueprintId":"lhbp-abcdefgh"}],"RequestId":)" +
      HostileLiteral("req", 100 * 1024) + "}}";
  absl::StatusOr<SyncBlueprintResponse> r = DecodeSyncBlueprint(body);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->request_id.size(), bounds::kMaxRequestIdBytes);
  EXPECT_EQ(r->request_id.find('\0'), std::string::npos);
  EXPECT_TRUE(bounds::IsValidUtf8(r->request_id));
  EXPECT_EQ(r->destinations[0].blueprint_id, "lhbp-abcdefgh");
}

TEST(HostileAnswerTest, TooManyDestinationsOrBlueprintsIsMalformed) {
  std::string set;
  for (int i = 0; i < 11; ++i) {
    set += std::string(i ? "," : "") + R"({"Region":"ap-tokyo","BlueprintId":"lhbp-abcdefgh"})";
  }
  absl::StatusOr<SyncBlueprintResponse> sync = DecodeSyncBlueprint(
      R"({"Response":{"DestinationRegionBlueprintSet":[)" + set + R"(],"RequestId":"r"}})");
  ASSERT_FALSE(sync.ok());
  EXPECT_THAT(GetApiError(sync.status())->message, HasSubstr("11 entries, more than the 10"));

  std::string blueprints;
  for (int i = 0; i < 101; ++i) {
    blueprints += std::string(i ? "," : "") +
                  R"({"BlueprintId":"lhbp-abcdefgh","BlueprintState":"NORMAL"})";
  }
  absl::StatusOr<DescribeBlueprintsResponse> describe = DecodeDescribeBlueprints(
      R"({"Response":{"TotalCount":101,"BlueprintSet":[)" + blueprints + R"(],"RequestId":"r"}})");
  ASSERT_FALSE(describe.ok());
  EXPECT_THAT(GetApiError(describe.status())->message, HasSubstr("101 entries, more than the 100"));
}

TEST(HostileAnswerTest, GarbledBlueprintFieldsAreMalformed) {
  auto body = [](const std::string& key, const std::string& literal) {
    std::string item = R"({"BlueprintId":"lhbp-abcdefgh","BlueprintState":"NORMAL")";
    item += ",\"" + key + "\":" + literal + "}";
    // A later duplicate key would be ignored by the reader: replace instead.
    if (key == "BlueprintId" || key == "BlueprintState") {
      item = R"({"BlueprintId":"lhbp-abcdefgh","BlueprintState":"NORMAL"})";
      const std::string field = "\"" + key + "\":\"";
      const size_t at = item.find(field);
      const size_t end = item.find('"', at + field.size());
      item = item.substr(0, at) + "\"" + key + "\":" + literal + item.substr(end + 1);
    }
    return R"({"Response":{"TotalCount":1,"BlueprintSet":[)" + item + R"(],"RequestId":"r"}})";
  };
  const struct {
    std::string key;
    std::string literal;
    const char* message_part;
  } cases[] = {
      {"BlueprintId", HostileLiteral("lhbp-", 5 * 1024), "BlueprintId: not a blueprint id"},
      {"BlueprintState", HostileLiteral("NORMAL", 5 * 1024), "BlueprintState: not an UPPER_SNAKE"},
      {"BlueprintState", R"("normal")", "BlueprintState: not an UPPER_SNAKE"},
      {"BlueprintName", HostileLiteral("web", 5 * 1024), "BlueprintName: longer than 256 bytes"},
      {"BlueprintName", R"("web\u0000golden")", "BlueprintName: holds a control character"},
      {"BlueprintType", R"("PRIVATE\n")", "BlueprintType: not an UPPER_SNAKE"},
      {"PlatformType", HostileLiteral("LINUX", 100), "PlatformType: not an UPPER_SNAKE"},
      {"CreatedTime", HostileLiteral("2024-01-01T00:00:00Z", 5 * 1024),
       "CreatedTime: not an ISO-8601 time"},
      {"CreatedTime", R"("yesterday")", "CreatedTime: not an ISO-8601 time"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key + " " + c.literal.substr(0, 20));
    absl::StatusOr<DescribeBlueprintsResponse> r = DecodeDescribeBlueprints(body(c.key, c.literal));
    ASSERT_FALSE(r.ok());
    std::optional<ApiError> e = GetApiError(r.status());
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->kind, ErrorKind::kMalformedResponse);
    EXPECT_THAT(e->message, HasSubstr("Response.BlueprintSet[0]." + std::string(c.message_part)));
    EXPECT_LE(e->message.size(), 300u);
  }
}

TEST(HostileAnswerTest, FreeTextFieldsAreKeptButBounded) {
  const std::string body =
      R"({"Response":{"TotalCount":1,"BlueprintSet":[{"BlueprintId":"lhbp-abcdefgh",)"
      R"("BlueprintState":"NORMAL","Description":)" + HostileLiteral("d", 1024 * 1024) +
      R"(,"OsName":)" + HostileLiteral("os", 5000) + R"(}],"RequestId":"r"}})";
  absl::StatusOr<DescribeBlueprintsResponse> r = DecodeDescribeBlueprints(body);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const std::string* text : {&r->blueprints[0].description, &r->blueprints[0].os_name}) {
    EXPECT_LE(text->size(), bounds::kMaxFreeTextBytes);
    EXPECT_THAT(*text, HasSubstr("[cut: "));
    EXPECT_TRUE(bounds::IsValidUtf8(*text));
  }
}

TEST(HostileAnswerTest, BodyOverTheLimitIsMalformed) {
  std::string body = R"({"Response":{"RequestId":"r"}})";
  body.resize(bounds::kMaxResponseBodyBytes + 1, ' ');
  absl::StatusOr<DeleteBlueprintsResponse> r = DecodeDeleteBlueprints(body);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(GetApiError(r.status())->message, HasSubstr("-byte limit"));
}

TEST(HostileAnswerTest, GarbledRegionListIsMalformed) {
  absl::StatusOr<DescribeRegionsResponse> r = DecodeDescribeRegions(
      R"({"Response":{"TotalCount":1,"RegionSet":[{"Region":"AP GUANGZHOU","IsChinaMainland":true}],"RequestId":"r"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(GetApiError(r.status())->message, HasSubstr("RegionSet[0].Region: not a region"));
}

TEST(DecodeMalformedTest, MessageDoesNotEchoTheBody) {
  absl::StatusOr<SyncBlueprintResponse> r =
      DecodeSyncBlueprint(R"({"Response":{"SecretThing":"do-not-echo-me","RequestId":"r"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::Not(HasSubstr("do-not-echo-me")));
}

}  // namespace
}  // namespace blueprintsync::tencent::json
