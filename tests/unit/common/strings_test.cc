#include "edge/common/strings.h"

#include <gtest/gtest.h>

namespace edge {
namespace {

TEST(Strings, TrimRemovesAsciiWhitespace) {
  EXPECT_EQ(Trim(" \t\r\n\v\fx y \n"), "x y");
  EXPECT_EQ(Trim("   "), "");
  EXPECT_EQ(Trim(""), "");
}

TEST(Strings, TrimBlanksKeepsLineBreaks) {
  EXPECT_EQ(TrimBlanks(" \tchunked\t "), "chunked");
  EXPECT_EQ(TrimBlanks("\nx\n"), "\nx\n");
}

TEST(Strings, IEqualsIgnoresAsciiCaseOnly) {
  static_assert(IEquals("GZip", "gzip"));
  EXPECT_TRUE(IEquals("Basic", "bASIC"));
  EXPECT_FALSE(IEquals("gzip", "gzip "));
  EXPECT_FALSE(IEquals("\xc3\x84", "\xc3\xa4"));  // not Unicode case folding
}

TEST(Strings, PrintableExcerptEscapesAndCuts) {
  EXPECT_EQ(PrintableExcerpt("abc", 10), "abc");
  EXPECT_EQ(PrintableExcerpt(std::string_view("a\0\n\\\xff", 5), 10), "a\\x00\\x0a\\x5c\\xff");
  EXPECT_EQ(PrintableExcerpt("abcdef", 3), "abc...");
}

}  // namespace
}  // namespace edge
