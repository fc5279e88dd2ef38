#include "edge/console/selector.h"

#include <gtest/gtest.h>

#include <string>

namespace edge::console {
namespace {

bool Match(const std::string& selector, const Labels& labels) {
  auto parsed = Selector::Parse(selector);
  EXPECT_TRUE(parsed.ok()) << selector << ": " << parsed.error();
  return parsed.ok() && parsed->Matches(labels);
}

std::string ErrorOf(const std::string& selector) {
  auto parsed = Selector::Parse(selector);
  EXPECT_FALSE(parsed.ok()) << selector << " parsed as " << parsed->ToString();
  return parsed.error();
}

const Labels kPlantA{{"site", "plant-1"}, {"line", "a"}, {"gpu", ""}};

TEST(Selector, AllMatchesEveryNode) {
  EXPECT_TRUE(Match("all", {}));
  EXPECT_TRUE(Match("  all ", kPlantA));
  EXPECT_TRUE(Selector().Matches(kPlantA));
  EXPECT_EQ(Selector::Parse("all")->ToString(), "all");
}

TEST(Selector, EqualsAndNotEquals) {
  EXPECT_TRUE(Match("site=plant-1", kPlantA));
  EXPECT_FALSE(Match("site=plant-2", kPlantA));
  EXPECT_FALSE(Match("zone=x", kPlantA));
  EXPECT_TRUE(Match("site!=plant-2", kPlantA));
  EXPECT_FALSE(Match("site!=plant-1", kPlantA));
  EXPECT_TRUE(Match("zone!=x", kPlantA)) << "a missing label is not equal to anything";
}

TEST(Selector, InAndNotIn) {
  EXPECT_TRUE(Match("line in (a,b)", kPlantA));
  EXPECT_TRUE(Match("line in ( b , a )", kPlantA));
  EXPECT_FALSE(Match("line in (b,c)", kPlantA));
  EXPECT_FALSE(Match("zone in (a)", kPlantA));
  EXPECT_TRUE(Match("line notin (b,c)", kPlantA));
  EXPECT_FALSE(Match("line notin (a)", kPlantA));
  EXPECT_TRUE(Match("zone notin (a)", kPlantA));
}

TEST(Selector, ExistsAndNotExists) {
  EXPECT_TRUE(Match("gpu", kPlantA)) << "an empty value still is a label";
  EXPECT_FALSE(Match("zone", kPlantA));
  EXPECT_TRUE(Match("!zone", kPlantA));
  EXPECT_FALSE(Match("!site", kPlantA));
}

TEST(Selector, CommaIsAnd) {
  EXPECT_TRUE(Match("site=plant-1,line in (a,b),!zone", kPlantA));
  EXPECT_FALSE(Match("site=plant-1,line=b", kPlantA));
  EXPECT_TRUE(Match(" site = plant-1 , line ", kPlantA));
}

TEST(Selector, ToStringIsCanonicalAndParsesBack) {
  auto parsed = Selector::Parse(" site = plant-1 ,line in ( a,b ),!zone, gpu,x notin (y)");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->ToString(), "site=plant-1,line in (a,b),!zone,gpu,x notin (y)");
  EXPECT_EQ(Selector::Parse(parsed->ToString())->ToString(), parsed->ToString());
}

TEST(Selector, KeysNamedLikeOperatorsStillWork) {
  EXPECT_TRUE(Match("in=x", {{"in", "x"}}));
  EXPECT_TRUE(Match("notin", {{"notin", ""}}));
  EXPECT_TRUE(Match("inside in (x)", {{"inside", "x"}}));
}

TEST(Selector, MalformedSelectorsGiveClearErrors) {
  EXPECT_NE(ErrorOf("").find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf("   ").find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf("a=1,,b").find("column 5"), std::string::npos);
  EXPECT_NE(ErrorOf("a=1,").find("after ','"), std::string::npos);
  EXPECT_NE(ErrorOf("a in (x,y").find("missing ')'"), std::string::npos);
  EXPECT_NE(ErrorOf("a in x").find("expected '('"), std::string::npos);
  EXPECT_NE(ErrorOf("a in ()").find("expected a value"), std::string::npos);
  EXPECT_NE(ErrorOf("a > 3").find("expected =, !=, in, notin"), std::string::npos);
  EXPECT_NE(ErrorOf("=x").find("expected a key"), std::string::npos);
  EXPECT_NE(ErrorOf("!").find("expected a label key"), std::string::npos);
  EXPECT_NE(ErrorOf("a=b c").find("unexpected 'c'"), std::string::npos);
  EXPECT_NE(ErrorOf("a=b=c").find("unexpected '='"), std::string::npos);
  EXPECT_NE(ErrorOf("all,a=1").find("cannot be combined"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string(64, 'k') + "=v").find("longer than 63"), std::string::npos);
  EXPECT_NE(ErrorOf("k=" + std::string(64, 'v')).find("longer than 63"), std::string::npos);
  EXPECT_NE(ErrorOf("k=v/w").find("unexpected '/'"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string(5000, 'a')).find("4096"), std::string::npos);
}

}  // namespace
}  // namespace edge::console
