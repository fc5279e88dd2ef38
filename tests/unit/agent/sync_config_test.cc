// sync.status_interval: the status heartbeat's interval (docs/configuration.md).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

#include "edge/agent/config.h"

namespace edge::agent {
namespace {

using ::testing::HasSubstr;

TEST(SyncStatusInterval, DefaultsToOneMinute) {
  Result<Config> c = ParseConfig("", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->sync.status_interval_ms, 60'000);
  EXPECT_EQ(Config{}.sync.status_interval_ms, 60'000);
}

TEST(SyncStatusInterval, IsReadFromTheSyncSection) {
  Result<Config> c = ParseConfig("node_id: n1\nsync:\n  status_interval: 1m30s\n", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->sync.status_interval_ms, 90'000);
  EXPECT_TRUE(Validate(*c).ok());
}

TEST(SyncStatusInterval, ComesFromTheEnvironmentAndOverrides) {
  Config c;
  const Status env = ApplyEnvironment(c, [](const std::string& name) -> std::optional<std::string> {
    if (name == "EDGE_AGENT_SYNC_STATUS_INTERVAL") return "10s";
    return std::nullopt;
  });
  ASSERT_TRUE(env.ok()) << env.message();
  EXPECT_EQ(c.sync.status_interval_ms, 10'000);
  ASSERT_TRUE(ApplyOverride(c, "sync.status_interval", "2m").ok());
  EXPECT_EQ(c.sync.status_interval_ms, 120'000);
}

TEST(SyncStatusInterval, RejectsValuesOutsideOneSecondToOneDay) {
  for (const char* bad : {"500ms", "0", "2d", "soon", "-5s"}) {
    Result<Config> c =
        ParseConfig(std::string("sync:\n  status_interval: ") + bad + "\n", "cfg.yaml");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_THAT(c.error(), HasSubstr("sync.status_interval")) << bad;
    EXPECT_THAT(c.error(), HasSubstr("cfg.yaml:2:")) << bad;
  }
  Config c;
  c.node_id = "n1";
  c.sync.status_interval_ms = 10;
  const Status s = Validate(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("sync.status_interval"));
}

TEST(SyncStatusInterval, IsListedInTheKeyTable) {
  bool found = false;
  for (const ConfigKey& k : ConfigKeys()) {
    if (k.key != "sync.status_interval") continue;
    found = true;
    EXPECT_EQ(k.env, "EDGE_AGENT_SYNC_STATUS_INTERVAL");
    EXPECT_EQ(k.default_value, "60s");
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace edge::agent
