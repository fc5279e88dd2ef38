// labels, sync.policy_key and sync.policy_poll_interval (docs/configuration.md).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "edge/agent/config.h"
#include "edge/cloudsync/policy_message.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using ::testing::HasSubstr;

Config Minimal() {
  Config c;
  c.node_id = "n1";
  return c;
}

TEST(PolicyConfig, Defaults) {
  Result<Config> c = ParseConfig("", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(c->labels.empty());
  EXPECT_EQ(c->sync.policy_key, "");
  EXPECT_EQ(c->sync.policy_poll_interval_ms, 30'000);
}

TEST(PolicyConfig, LabelsAreParsedFromTheFileAndTheEnvironment) {
  Result<Config> c = ParseConfig("node_id: n1\nlabels: site=plant-1, line=a\n", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->labels, (std::map<std::string, std::string>{{"site", "plant-1"}, {"line", "a"}}));
  Config e;
  ASSERT_TRUE(ApplyEnvironment(e, [](const std::string& name) -> std::optional<std::string> {
                if (name == "EDGE_AGENT_LABELS") return "zone=3";
                return std::nullopt;
              }).ok());
  EXPECT_EQ(e.labels, (std::map<std::string, std::string>{{"zone", "3"}}));
}

TEST(PolicyConfig, BadLabelsNameTheKeyOrVariable) {
  Result<Config> c = ParseConfig("labels: \"site=plant 1\"\n", "cfg.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error(), HasSubstr("cfg.yaml:1:"));
  EXPECT_THAT(c.error(), HasSubstr("labels"));
  Config e;
  const Status s = ApplyEnvironment(e, [](const std::string& name) -> std::optional<std::string> {
    if (name == "EDGE_AGENT_LABELS") return "=novalue";
    return std::nullopt;
  });
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("EDGE_AGENT_LABELS"));
}

TEST(PolicyConfig, PollIntervalIsOneSecondToOneDay) {
  Result<Config> c = ParseConfig("sync:\n  policy_poll_interval: 5m\n", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->sync.policy_poll_interval_ms, 300'000);
  for (const char* bad : {"500ms", "0", "2d", "often"}) {
    Result<Config> b =
        ParseConfig(std::string("sync:\n  policy_poll_interval: ") + bad + "\n", "cfg.yaml");
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_THAT(b.error(), HasSubstr("sync.policy_poll_interval")) << bad;
  }
}

TEST(PolicyConfig, PolicyKeyMustLoadAndNeedsAConsole) {
  testing::TempDir dir;
  ASSERT_TRUE(cloudsync::GenerateKeyPair(dir.File("k.key"), dir.File("k.pub")).ok());

  Config c = Minimal();
  c.sync.policy_key = dir.File("k.pub");
  Status s = Validate(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("sync.policy_key: needs console.url"));

  c.console.url = "http://127.0.0.1:8080";
  c.console.token_file = dir.File("token");
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).message();

  c.sync.policy_key = dir.File("missing.pub");
  s = Validate(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("sync.policy_key"));

  c.sync.policy_key = dir.File("k.key");  // a private key is refused
  EXPECT_FALSE(Validate(c).ok());
}

TEST(PolicyConfig, KeysAreInTheTable) {
  std::map<std::string, std::pair<std::string, std::string>> want = {
      {"labels", {"EDGE_AGENT_LABELS", ""}},
      {"sync.policy_key", {"EDGE_AGENT_SYNC_POLICY_KEY", ""}},
      {"sync.policy_poll_interval", {"EDGE_AGENT_SYNC_POLICY_POLL_INTERVAL", "30s"}},
  };
  for (const ConfigKey& k : ConfigKeys()) {
    auto it = want.find(std::string(k.key));
    if (it == want.end()) continue;
    EXPECT_EQ(k.env, it->second.first);
    EXPECT_EQ(k.default_value, it->second.second);
    want.erase(it);
  }
  EXPECT_TRUE(want.empty());
}

}  // namespace
}  // namespace edge::agent
