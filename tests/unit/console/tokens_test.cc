#include "edge/console/tokens.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

namespace edge::console {
namespace {

constexpr const char* kGood =
    "# node-id  token\n"
    "node-1     tok-node-1-0123456789\n"
    "\n"
    "  node-2\ttok-node-2-0123456789   # comment after entry\n"
    "admin      tok-admin-0123456789\n";

TEST(TokenTable, ParsesEntriesIgnoringCommentsAndBlankLines) {
  auto table = TokenTable::Parse(kGood, "tokens.txt");
  ASSERT_TRUE(table.ok()) << table.error();
  EXPECT_EQ(table->Nodes(), (std::vector<std::string>{"node-1", "node-2"}));
  EXPECT_TRUE(table->has_admin());
}

TEST(TokenTable, AuthenticatesNodeTokenAsItsNode) {
  auto table = TokenTable::Parse(kGood, "tokens.txt");
  ASSERT_TRUE(table.ok());
  auto who = table->Authenticate("tok-node-2-0123456789");
  ASSERT_TRUE(who.has_value());
  EXPECT_EQ(who->node, "node-2");
  EXPECT_FALSE(who->admin);
}

TEST(TokenTable, AuthenticatesAdminToken) {
  auto table = TokenTable::Parse(kGood, "tokens.txt");
  ASSERT_TRUE(table.ok());
  auto who = table->Authenticate("tok-admin-0123456789");
  ASSERT_TRUE(who.has_value());
  EXPECT_TRUE(who->admin);
}

TEST(TokenTable, RejectsUnknownEmptyAndPrefixTokens) {
  auto table = TokenTable::Parse(kGood, "tokens.txt");
  ASSERT_TRUE(table.ok());
  EXPECT_FALSE(table->Authenticate("nope").has_value());
  EXPECT_FALSE(table->Authenticate("").has_value());
  EXPECT_FALSE(table->Authenticate("tok-node-1-012345678").has_value());
  EXPECT_FALSE(table->Authenticate("tok-node-1-01234567890").has_value());
}

TEST(TokenTable, LineWithOneFieldIsAnErrorNamingFileAndLine) {
  auto table = TokenTable::Parse("node-1 tok-aaaaaaaaaaaaaaaa\n# c\nnode-2\n", "/etc/t.txt");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().rfind("/etc/t.txt:3: ", 0), 0u) << table.error();
}

TEST(TokenTable, LineWithThreeFieldsIsAnError) {
  auto table = TokenTable::Parse("node-1 tok-a extra\n", "t");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().rfind("t:1: ", 0), 0u) << table.error();
}

TEST(TokenTable, AThirdFieldBindsTheNodesLabels) {
  auto table = TokenTable::Parse("node-1 tok-a site=plant-1,line=*\nnode-2 tok-b\n", "t");
  ASSERT_TRUE(table.ok()) << table.error();
  const LabelBinding* bound = table->LabelBindingOf("node-1");
  ASSERT_NE(bound, nullptr);
  EXPECT_EQ(bound->Apply({{"line", "a"}}).labels, (Labels{{"site", "plant-1"}, {"line", "a"}}));
  EXPECT_EQ(table->LabelBindingOf("node-2"), nullptr);
  EXPECT_EQ(table->LabelBindingOf("node-3"), nullptr);
}

TEST(TokenTable, BadLabelsOrAFourthFieldAreErrorsNamingTheLine) {
  auto bad = TokenTable::Parse("node-1 tok-a\nnode-2 tok-b site=\"x\"\n", "t");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().rfind("t:2: labels: ", 0), 0u) << bad.error();
  auto four = TokenTable::Parse("node-1 tok-a site=a more\n", "t");
  ASSERT_FALSE(four.ok());
  EXPECT_EQ(four.error().rfind("t:1: ", 0), 0u) << four.error();
}

TEST(LabelBinding, FixedLabelsWinAndUnlistedClaimsAreRefused) {
  auto binding = LabelBinding::Parse("site=plant-1,line=*");
  ASSERT_TRUE(binding.ok()) << binding.error();
  const auto out = binding->Apply({{"site", "secret"}, {"line", "b"}, {"role", "admin"}});
  EXPECT_EQ(out.labels, (Labels{{"site", "plant-1"}, {"line", "b"}}));
  EXPECT_EQ(out.refused, (std::vector<std::string>{"role=admin", "site=secret"}));
  const auto honest = binding->Apply({{"site", "plant-1"}});
  EXPECT_EQ(honest.labels, (Labels{{"site", "plant-1"}}));
  EXPECT_TRUE(honest.refused.empty());
}

TEST(LabelBinding, AnEmptyBindingGivesNoLabels) {
  auto none = LabelBinding::Parse("");
  ASSERT_TRUE(none.ok()) << none.error();
  const auto out = none->Apply({{"site", "a"}});
  EXPECT_TRUE(out.labels.empty());
  EXPECT_EQ(out.refused, (std::vector<std::string>{"site=a"}));
}

TEST(LabelBinding, RefusesKeysGivenTwiceAndBadSyntax) {
  EXPECT_FALSE(LabelBinding::Parse("a=1,a=*").ok());
  EXPECT_FALSE(LabelBinding::Parse("a=*,a=*").ok());
  EXPECT_FALSE(LabelBinding::Parse("a").ok());
  EXPECT_FALSE(LabelBinding::Parse("a=b c").ok());
  EXPECT_FALSE(LabelBinding::Parse("=*").ok());
}

TEST(TokenTable, DuplicateNodeIsAnError) {
  auto table = TokenTable::Parse("node-1 tok-a\nnode-1 tok-b\n", "t");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().rfind("t:2: ", 0), 0u) << table.error();
}

TEST(TokenTable, DuplicateTokenIsAnError) {
  auto table = TokenTable::Parse("node-1 tok-a\nnode-2 tok-a\n", "t");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().rfind("t:2: ", 0), 0u) << table.error();
}

TEST(TokenTable, NodeNameWithInvalidCharacterIsAnError) {
  EXPECT_FALSE(TokenTable::Parse("node/1 tok-a\n", "t").ok());
  EXPECT_FALSE(TokenTable::Parse("<b> tok-a\n", "t").ok());
  EXPECT_FALSE(TokenTable::Parse(std::string(129, 'n') + " tok-a\n", "t").ok());
}

TEST(TokenTable, TokenWithNonAsciiByteIsAnError) {
  EXPECT_FALSE(TokenTable::Parse("node-1 tok\xc3\xa9\n", "t").ok());
}

TEST(TokenTable, CrLfLineEndingsAreAccepted) {
  auto table = TokenTable::Parse("node-1 tok-a\r\nadmin tok-b\r\n", "t");
  ASSERT_TRUE(table.ok()) << table.error();
  EXPECT_TRUE(table->Authenticate("tok-a").has_value());
}

TEST(TokenTable, ReportsShortTokens) {
  auto table = TokenTable::Parse("node-1 short\nnode-2 0123456789abcdef\n", "t");
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->NodesWithShortTokens(), (std::vector<std::string>{"node-1"}));
}

TEST(TokenTable, LoadsFileFromDisk) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "console_tokens_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "tokens.txt").string();
  std::ofstream(path) << kGood;
  auto table = TokenTable::Load(path);
  ASSERT_TRUE(table.ok()) << table.error();
  EXPECT_EQ(table->Nodes().size(), 2u);
}

TEST(TokenTable, MissingFileIsAnError) {
  auto table = TokenTable::Load("/nonexistent/dir/tokens.txt");
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.error().find("/nonexistent/dir/tokens.txt"), std::string::npos);
}

TEST(TokenTable, FindsEveryEntryOfALargeTableByTokenAndByNode) {
  std::string text = "admin tok-admin-0123456789\n";
  for (int i = 0; i < 2000; ++i) {
    text += "node-" + std::to_string(i) + " tok-" + std::to_string(i) + "-0123456789";
    text += i % 2 == 0 ? " site=s" + std::to_string(i) + "\n" : "\n";
  }
  auto table = TokenTable::Parse(text, "tokens.txt");
  ASSERT_TRUE(table.ok()) << table.error();
  // Moved, as Load and Result move it: the lookups must still find every entry.
  const TokenTable moved = std::move(*table);
  for (int i = 0; i < 2000; ++i) {
    const std::string node = "node-" + std::to_string(i);
    const auto who = moved.Authenticate("tok-" + std::to_string(i) + "-0123456789");
    ASSERT_TRUE(who.has_value()) << node;
    EXPECT_EQ(who->node, node);
    EXPECT_FALSE(who->admin);
    EXPECT_EQ(moved.LabelBindingOf(node) != nullptr, i % 2 == 0) << node;
  }
  EXPECT_TRUE(moved.Authenticate("tok-admin-0123456789")->admin);
  EXPECT_FALSE(moved.Authenticate("tok-2000-0123456789").has_value());
  EXPECT_EQ(moved.LabelBindingOf("node-2000"), nullptr);
  EXPECT_TRUE(moved.has_admin());
}

TEST(TokenTable, RefusesARepeatedNodeOrTokenFarDownTheFile) {
  std::string text;
  for (int i = 0; i < 500; ++i) {
    text += "node-" + std::to_string(i) + " tok-" + std::to_string(i) + "-0123456789\n";
  }
  auto node_again = TokenTable::Parse(text + "node-7 tok-new-0123456789\n", "tokens.txt");
  ASSERT_FALSE(node_again.ok());
  EXPECT_EQ(node_again.error(), "tokens.txt:501: node 'node-7' listed twice");
  auto token_again = TokenTable::Parse(text + "node-new tok-7-0123456789\n", "tokens.txt");
  ASSERT_FALSE(token_again.ok());
  EXPECT_EQ(token_again.error(), "tokens.txt:501: token already used by node 'node-7'");
}

}  // namespace
}  // namespace edge::console
