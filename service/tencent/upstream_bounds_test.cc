#include "service/tencent/upstream_bounds.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace blueprintsync::tencent::bounds {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(BoundTextTest, ShortCleanTextIsKeptAsIs) {
  EXPECT_EQ(BoundText("", 64), "");
  EXPECT_EQ(BoundText("The image ID is malformed.", 64), "The image ID is malformed.");
  EXPECT_EQ(BoundText("镜像不存在", 64), "镜像不存在");
}

TEST(BoundTextTest, LongTextIsCutWithAMarkerNamingTheOriginalSize) {
  const std::string huge(2 * 1024 * 1024, 'a');
  const std::string out = BoundText(huge, kMaxMessageBytes);
  EXPECT_LE(out.size(), kMaxMessageBytes);
  EXPECT_THAT(out, EndsWith("\xE2\x80\xA6[cut: 2097152 bytes]"));
  EXPECT_EQ(out.substr(0, 100), std::string(100, 'a'));
  EXPECT_TRUE(IsValidUtf8(out));
}

TEST(BoundTextTest, CutNeverSplitsAMultiByteCharacter) {
  // Every cut position against 3- and 4-byte characters.
  for (size_t max = 32; max < 80; ++max) {
    for (const std::string unit : {"错", "😀", "é"}) {
      std::string text;
      while (text.size() < 200) text += unit;
      const std::string out = BoundText(text, max);
      EXPECT_LE(out.size(), max);
      EXPECT_TRUE(IsValidUtf8(out)) << "max " << max;
      EXPECT_THAT(out, HasSubstr("[cut: "));
    }
  }
}

TEST(BoundTextTest, ControlCharactersAndInvalidUtf8BecomeReplacementCharacters) {
  constexpr char kText[] = "a\0b\nc\x7f" "d\xC2\x85" "e\xFF" "f\xC0\xAF" "g\xED\xA0\x80" "h";
  const std::string text(kText, sizeof(kText) - 1);
  const std::string out = BoundText(text, 256);
  EXPECT_TRUE(IsValidUtf8(out));
  EXPECT_EQ(out.find('\0'), std::string::npos);
  EXPECT_EQ(out.find('\n'), std::string::npos);
  EXPECT_EQ(out.find('\x7f'), std::string::npos);
  EXPECT_THAT(out, HasSubstr("a\xEF\xBF\xBD" "b"));
  EXPECT_THAT(out, HasSubstr("e\xEF\xBF\xBD" "f"));  // a stray byte
  EXPECT_THAT(out, EndsWith("h"));
}

TEST(BoundTextTest, TruncatedSequenceAtTheEndIsReplaced) {
  const std::string out = BoundText("ok\xE9\x94", 64);  // "错" missing its last byte
  EXPECT_TRUE(IsValidUtf8(out));
  EXPECT_THAT(out, HasSubstr("ok\xEF\xBF\xBD"));
}

TEST(IsValidUtf8Test, RejectsOverlongSurrogatesAndOutOfRange) {
  EXPECT_TRUE(IsValidUtf8("plain, 错, 😀"));
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // a UTF-16 surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

TEST(CheckErrorCodeTest, AcceptsTencentCodes) {
  for (const char* code :
       {"InternalError", "AuthFailure.SignatureExpire", "InvalidParameterValue.BlueprintIdMalformed",
        "UnsupportedOperation.BlueprintLatestOperationUnfinished", "LimitExceeded",
        "FailedOperation.Code_2"}) {
    EXPECT_TRUE(CheckErrorCode("Response.Error.Code", code).ok()) << code;
  }
}

TEST(CheckErrorCodeTest, RejectsWhatNoTencentCodeLooksLike) {
  const std::string huge = "FailedOperation." + std::string(100 * 1024, 'X');
  for (const std::string& code :
       {std::string(), huge, std::string("Failed Operation"), std::string("Failed\nOperation"),
        std::string(".Failed"), std::string("Failed."), std::string("Failed..Op"),
        std::string("9Failed"), std::string("Failed\0Op", 9), std::string("错误")}) {
    const absl::Status s = CheckErrorCode("Response.Error.Code", code);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << code.substr(0, 40);
    EXPECT_THAT(s.message(), HasSubstr("Response.Error.Code: not an error code"));
    // The message quotes a short escaped prefix, never the whole value.
    EXPECT_LT(s.message().size(), 300u);
    EXPECT_TRUE(IsValidUtf8(std::string(s.message())));
  }
}

TEST(CheckBlueprintIdTest, OnlyTheDocumentedFormat) {
  EXPECT_TRUE(CheckBlueprintId("p", "lhbp-ls883feh").ok());
  std::string nul_id = "lhbp-";
  nul_id.push_back('\0');
  nul_id += std::string(5 * 1024, 'a');
  for (const std::string& id :
       {std::string(), std::string("lhbp-"), std::string("lhbp-LS883FEH"),
        std::string("lhbp-ls883fe"), std::string("lhbp-ls883feh0"), std::string("img-ls883feh"),
        std::string("lhbp-ls88\0feh", 13), nul_id}) {
    const absl::Status s = CheckBlueprintId("Response.BlueprintSet[0].BlueprintId", id);
    EXPECT_FALSE(s.ok()) << id.substr(0, 20);
    EXPECT_THAT(s.message(), HasSubstr("Response.BlueprintSet[0].BlueprintId: not a blueprint id"));
    EXPECT_LT(s.message().size(), 300u);
  }
}

TEST(CheckRegionTest, RegionIdsPassGarbageDoesNot) {
  for (const char* r : {"ap-guangzhou", "na-siliconvalley", "eu-frankfurt", "ap-shenzhen-fsi"}) {
    EXPECT_TRUE(CheckRegion("Region", r).ok()) << r;
  }
  for (const std::string& r :
       {std::string(), std::string("AP-GUANGZHOU"), std::string("ap guangzhou"),
        std::string("-ap"), std::string(33, 'a'), std::string("ap-\0x", 5)}) {
    EXPECT_FALSE(CheckRegion("Region", r).ok()) << r;
  }
}

TEST(CheckEnumWordTest, UpperSnakeOnly) {
  EXPECT_TRUE(CheckEnumWord("s", "NORMAL").ok());
  EXPECT_TRUE(CheckEnumWord("s", "SYNCING_FAILED").ok());
  EXPECT_FALSE(CheckEnumWord("s", "").ok());
  EXPECT_FALSE(CheckEnumWord("s", "normal").ok());
  EXPECT_FALSE(CheckEnumWord("s", std::string("NORMAL\0\nBAD", 11)).ok());
  EXPECT_FALSE(CheckEnumWord("s", std::string(65, 'A')).ok());
}

TEST(CheckNameTest, BoundedPrintableUtf8) {
  EXPECT_TRUE(CheckName("n", "web-golden 镜像", kMaxBlueprintNameBytes).ok());
  EXPECT_TRUE(CheckName("n", std::string(256, 'a'), kMaxBlueprintNameBytes).ok());
  EXPECT_THAT(CheckName("n", std::string(257, 'a'), kMaxBlueprintNameBytes).message(),
              HasSubstr("n: longer than 256 bytes"));
  EXPECT_THAT(CheckName("n", "a\tb", kMaxBlueprintNameBytes).message(),
              HasSubstr("control character"));
  EXPECT_THAT(CheckName("n", "a\xFF", kMaxBlueprintNameBytes).message(),
              HasSubstr("not valid UTF-8"));
}

TEST(CheckTimeTest, Iso8601Only) {
  EXPECT_TRUE(CheckTime("t", "2024-01-15T08:00:00Z").ok());
  EXPECT_TRUE(CheckTime("t", "2024-01-15T08:00:00.123+08:00").ok());
  EXPECT_FALSE(CheckTime("t", "").ok());
  EXPECT_FALSE(CheckTime("t", "yesterday").ok());
  EXPECT_FALSE(CheckTime("t", std::string("2024-01-15T08:00:00Z\0", 21)).ok());
  EXPECT_FALSE(CheckTime("t", std::string(41, '1')).ok());
  EXPECT_THAT(CheckTime("t", "x").message(), Not(HasSubstr("\n")));
}

}  // namespace
}  // namespace blueprintsync::tencent::bounds
