#include "client/printable.h"

#include <gtest/gtest.h>

#include <string>

namespace blueprintsync::cli {
namespace {

TEST(PrintableTest, KeepsOrdinaryTextAndUtf8) {
  EXPECT_EQ(Printable("lhbp-ls883feh"), "lhbp-ls883feh");
  EXPECT_EQ(Printable("r\xC3\xA9gion \xE5\xB9\xBF\xE5\xB7\x9E"),
            "r\xC3\xA9gion \xE5\xB9\xBF\xE5\xB7\x9E");
}

TEST(PrintableTest, ReplacesControlCharactersAndEscapes) {
  EXPECT_EQ(Printable("a\x1b[2Jb\nc\rd\te\x7f"), "a?[2Jb?c?d?e?");
  EXPECT_EQ(Printable(std::string("nul\0x", 5)), "nul?x");
  // U+009B, the 8-bit CSI.
  EXPECT_EQ(Printable("x\xC2\x9B"
                      "31m"),
            "x?31m");
  // U+00A0 is not a control and stays.
  EXPECT_EQ(Printable("\xC2\xA0"), "\xC2\xA0");
}

TEST(PrintableTest, CutsLongTextWithoutSplittingACharacter) {
  EXPECT_EQ(Printable("abcdef", 4), "abcd...");
  EXPECT_EQ(Printable("abcd", 4), "abcd");
  // "ab" + 2-byte char: a cut after its first byte drops the whole character.
  EXPECT_EQ(Printable("ab\xC3\xA9z", 3), "ab...");
  EXPECT_EQ(Printable("ab\xC3\xA9z", 4), "ab\xC3\xA9...");
  // 3-byte char cut after two of its bytes.
  EXPECT_EQ(Printable("a\xE5\xB9\xBFz", 3), "a...");
  EXPECT_EQ(Printable(std::string(5000, 'x')).size(), kMaxPrintedBytes + 3);
}

}  // namespace
}  // namespace blueprintsync::cli
