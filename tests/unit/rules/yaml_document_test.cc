#include "edge/rules/yaml_document.h"

#include <gtest/gtest.h>

namespace edge::rules {
namespace {

TEST(CountYamlDocuments, LoneCommaIsASyntaxErrorNotAnEndlessLoop) {
  auto r = CountYamlDocuments(",", "f.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind("f.yaml:1:1:", 0), 0u) << r.error();
}

TEST(CountYamlDocuments, CountsZeroOneAndMany) {
  EXPECT_EQ(CountYamlDocuments("", "f")->count, 0);
  EXPECT_EQ(CountYamlDocuments("a: 1\n", "f")->count, 1);
  auto many = CountYamlDocuments("a: 1\n---\nb: 2\n---\nc: 3\n", "f");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->count, 2);
  EXPECT_EQ(many->second_line, 2);  // the `---` line
}

TEST(CountYamlDocuments, SyntaxErrorNamesLineAndColumn) {
  auto r = CountYamlDocuments("a: 1\nb: [1, 2\n", "f.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind("f.yaml:", 0), 0u) << r.error();
}

}  // namespace
}  // namespace edge::rules
