#include "edge/agent/check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace edge::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPolicyYaml[] = R"(version: "1"
rules:
  - id: overheat
    match: "sensors/+/temperature"
    kind: threshold
    above: 35
)";

class CheckFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("edge-check-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(CheckFileTest, ValidConfigIsOk) {
  const std::string path = Write("agent.yaml", "node_id: n1\nmqtt:\n  url: tcp://broker:1883\n");
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_TRUE(outcome.ok);
  EXPECT_EQ(outcome.kind, "config");
  EXPECT_EQ(outcome.message, path + ": ok (config)");
}

TEST_F(CheckFileTest, ConfigWithoutNodeIdIsOk) {
  EXPECT_TRUE(CheckFile(Write("agent.yaml", "log:\n  level: debug\n")).ok);
}

TEST_F(CheckFileTest, ConfigErrorHasLineAndColumn) {
  const std::string path = Write("agent.yaml", "node_id: n1\nmqtt:\n  qos: high\n");
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.kind, "config");
  EXPECT_THAT(outcome.message, StartsWith(path + ":3:8: mqtt.qos: "));
}

TEST_F(CheckFileTest, ConfigFailingValidationNamesTheFileAndKey) {
  const std::string path = Write("agent.yaml", "console:\n  url: https://console:8443\n");
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.message, path + ": console.token_file: is required when console.url is set");
}

TEST_F(CheckFileTest, YamlWithRulesIsAValidPolicy) {
  const std::string path = Write("policy.yaml", kPolicyYaml);
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_TRUE(outcome.ok) << outcome.message;
  EXPECT_EQ(outcome.kind, "policy");
  EXPECT_EQ(outcome.message, path + ": ok (policy)");
}

TEST_F(CheckFileTest, JsonWithRulesIsAPolicy) {
  const std::string path = Write("policy.json", R"({
	"version": "2",
	"rules": [{"id": "hot", "match": "s/#", "kind": "threshold", "above": 1}]
})");
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_TRUE(outcome.ok) << outcome.message;
  EXPECT_EQ(outcome.kind, "policy");
}

TEST_F(CheckFileTest, PolicyErrorHasLineAndColumn) {
  const std::string path =
      Write("policy.yaml", "rules:\n  - id: x\n    match: a\n    kind: nope\n");
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.kind, "policy");
  EXPECT_THAT(outcome.message, StartsWith(path + ":"));
  EXPECT_THAT(outcome.message, ::testing::ContainsRegex(":[0-9]+:[0-9]+: "));
}

TEST_F(CheckFileTest, BrokenYamlPolicyIsStillCheckedAsPolicy) {
  const std::string path = Write("policy.yaml", "rules:\n  - id: [x\n");
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.kind, "policy");
  EXPECT_THAT(outcome.message, ::testing::ContainsRegex("^" + path + ":[0-9]+:[0-9]+: "));
}

TEST_F(CheckFileTest, YamlSyntaxErrorHasLineAndColumn) {
  const std::string path = Write("agent.yaml", "node_id: n1\nmqtt: {url: x\n");
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.kind, "config");
  EXPECT_THAT(outcome.message, ::testing::ContainsRegex("^" + path + ":[0-9]+:[0-9]+: "));
}

TEST_F(CheckFileTest, UnreadableFileIsAnError) {
  const std::string path = (dir_ / "missing.yaml").string();
  const CheckOutcome outcome = CheckFile(path);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.message, path + ": cannot read: No such file or directory");
}

TEST_F(CheckFileTest, EmptyFileIsADefaultConfig) {
  const CheckOutcome outcome = CheckFile(Write("empty.yaml", ""));
  EXPECT_TRUE(outcome.ok);
  EXPECT_EQ(outcome.kind, "config");
  EXPECT_THAT(outcome.message, HasSubstr("ok (config)"));
}

}  // namespace
}  // namespace edge::agent
