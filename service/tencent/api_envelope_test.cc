#include "service/tencent/api_envelope.h"

#include <optional>
#include <string_view>

#include "gtest/gtest.h"

namespace blueprintsync::tencent::json {
namespace {

TEST(DecodeErrorEnvelopeTest, RecognizesEnvelope) {
  std::optional<ApiError> e = DecodeErrorEnvelope(
      "SyncBlueprint",
      R"({"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"bad"},"RequestId":"r"}})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, ErrorKind::kApi);
  EXPECT_EQ(e->code, "AuthFailure.SignatureFailure");
  EXPECT_EQ(e->message, "bad");
  EXPECT_EQ(e->request_id, "r");
  EXPECT_EQ(e->action, "SyncBlueprint");
}

TEST(DecodeErrorEnvelopeTest, NonEnvelopes) {
  for (std::string_view body : {
           std::string_view(""),
           std::string_view("<html>502 Bad Gateway</html>"),
           std::string_view(R"({"Response":{"RequestId":"r"}})"),
           std::string_view(R"({"Response":{"Error":{"Message":"no code"}}})"),
           std::string_view(R"({"Response":{"Error":"InternalError"}})"),
           std::string_view(R"({"Error":{"Code":"X"}})"),
           std::string_view(R"([{"Response":{"Error":{"Code":"X"}}}])"),
           // The service's own codes, which it acts on (an abandoned call
           // is left for reconciliation): no answer may pass for one.
           std::string_view(
               R"({"Response":{"Error":{"Code":"ClientError.Abandoned"},"RequestId":"r"}})"),
           std::string_view(
               R"({"Response":{"Error":{"Code":"ClientError.NetworkError"},"RequestId":"r"}})"),
       }) {
    EXPECT_FALSE(DecodeErrorEnvelope("SyncBlueprint", body).has_value()) << body;
  }
}

}  // namespace
}  // namespace blueprintsync::tencent::json
