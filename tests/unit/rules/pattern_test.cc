#include "edge/rules/pattern.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace edge::rules {
namespace {

using ::testing::HasSubstr;

TEST(TopicMatches, ExactTopicMatchesItself) {
  EXPECT_TRUE(TopicMatches("plant/boiler1/temp", "plant/boiler1/temp"));
}

TEST(TopicMatches, DifferentLevelDoesNotMatch) {
  EXPECT_FALSE(TopicMatches("plant/boiler1/temp", "plant/boiler2/temp"));
}

TEST(TopicMatches, LiteralPatternDoesNotMatchLongerOrShorterTopic) {
  EXPECT_FALSE(TopicMatches("plant/boiler1", "plant/boiler1/temp"));
  EXPECT_FALSE(TopicMatches("plant/boiler1/temp", "plant/boiler1"));
}

TEST(TopicMatches, LevelsCompareWholeNotByPrefix) {
  EXPECT_FALSE(TopicMatches("plant/boil", "plant/boiler"));
  EXPECT_FALSE(TopicMatches("plant/boiler", "plant/boil"));
}

TEST(TopicMatches, PlusMatchesExactlyOneLevel) {
  EXPECT_TRUE(TopicMatches("plant/+/temp", "plant/boiler1/temp"));
  EXPECT_FALSE(TopicMatches("plant/+/temp", "plant/a/b/temp"));
  EXPECT_FALSE(TopicMatches("plant/+/temp", "plant/temp"));
}

TEST(TopicMatches, PlusMatchesEmptyLevel) {
  EXPECT_TRUE(TopicMatches("plant/+/temp", "plant//temp"));
  EXPECT_TRUE(TopicMatches("plant/+", "plant/"));
  EXPECT_TRUE(TopicMatches("+/+", "/"));
}

TEST(TopicMatches, PlusDoesNotMatchMissingLevel) { EXPECT_FALSE(TopicMatches("plant/+", "plant")); }

TEST(TopicMatches, TrailingPlusMatchesLastLevelOnly) {
  EXPECT_TRUE(TopicMatches("plant/boiler1/+", "plant/boiler1/temp"));
  EXPECT_FALSE(TopicMatches("plant/boiler1/+", "plant/boiler1/temp/raw"));
}

TEST(TopicMatches, HashAloneMatchesEverything) {
  EXPECT_TRUE(TopicMatches("#", "a"));
  EXPECT_TRUE(TopicMatches("#", "a/b/c"));
  EXPECT_TRUE(TopicMatches("#", "/"));
  EXPECT_TRUE(TopicMatches("#", ""));
}

TEST(TopicMatches, HashMatchesAllDeeperLevels) {
  EXPECT_TRUE(TopicMatches("plant/#", "plant/boiler1"));
  EXPECT_TRUE(TopicMatches("plant/#", "plant/boiler1/temp/raw"));
  EXPECT_FALSE(TopicMatches("plant/#", "office/boiler1"));
}

TEST(TopicMatches, HashMatchesParentLevel) {
  EXPECT_TRUE(TopicMatches("a/#", "a"));
  EXPECT_TRUE(TopicMatches("a/#", "a/"));
  EXPECT_FALSE(TopicMatches("a/#", "ab"));
}

TEST(TopicMatches, PlusAndHashCombine) {
  EXPECT_TRUE(TopicMatches("+/boiler1/#", "plant/boiler1"));
  EXPECT_TRUE(TopicMatches("+/boiler1/#", "plant/boiler1/temp"));
  EXPECT_FALSE(TopicMatches("+/boiler1/#", "plant/boiler2/temp"));
}

TEST(TopicMatches, LeadingSlashIsAnEmptyFirstLevel) {
  EXPECT_TRUE(TopicMatches("/a", "/a"));
  EXPECT_TRUE(TopicMatches("+/a", "/a"));
  EXPECT_FALSE(TopicMatches("a", "/a"));
}

TEST(TopicMatches, InvalidPatternMatchesNothing) {
  EXPECT_FALSE(TopicMatches("", ""));
  EXPECT_FALSE(TopicMatches("a/#/b", "a/x/b"));
  EXPECT_FALSE(TopicMatches("a+/b", "a+/b"));
  EXPECT_FALSE(TopicMatches("a/b#", "a/b#"));
}

TEST(ValidatePattern, AcceptsLiteralAndWildcardPatterns) {
  EXPECT_TRUE(ValidatePattern("plant/boiler1/temp").ok());
  EXPECT_TRUE(ValidatePattern("plant/+/temp").ok());
  EXPECT_TRUE(ValidatePattern("plant/#").ok());
  EXPECT_TRUE(ValidatePattern("#").ok());
  EXPECT_TRUE(ValidatePattern("+").ok());
  EXPECT_TRUE(ValidatePattern("+/+/#").ok());
  EXPECT_TRUE(ValidatePattern("/").ok());
}

TEST(ValidatePattern, RejectsEmptyPattern) {
  const Status st = ValidatePattern("");
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("empty"));
}

TEST(ValidatePattern, RejectsHashBeforeLastLevel) {
  const Status st = ValidatePattern("a/#/b");
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("'a/#/b'"));
  EXPECT_THAT(st.message(), HasSubstr("last level"));
}

TEST(ValidatePattern, RejectsHashInsideALevel) {
  EXPECT_FALSE(ValidatePattern("a/b#").ok());
  EXPECT_FALSE(ValidatePattern("a/#b").ok());
  EXPECT_FALSE(ValidatePattern("##").ok());
}

TEST(ValidatePattern, RejectsPlusInsideALevel) {
  const Status st = ValidatePattern("plant/boiler+/temp");
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("whole level"));
  EXPECT_FALSE(ValidatePattern("++").ok());
}

TEST(ValidatePattern, RejectsNulCharacter) {
  using namespace std::string_view_literals;
  EXPECT_FALSE(ValidatePattern("a\0b"sv).ok());
}

}  // namespace
}  // namespace edge::rules
