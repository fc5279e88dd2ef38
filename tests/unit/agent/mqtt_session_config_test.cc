// mqtt.clean_session and mqtt.backoff_max: the broker session and the reconnect delays
// (docs/configuration.md, docs/operations.md).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "edge/agent/config.h"

namespace edge::agent {
namespace {

using ::testing::HasSubstr;

TEST(MqttSessionConfig, DefaultsToAPersistentSessionAndTenSecondsOfBackoff) {
  Result<Config> c = ParseConfig("", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_FALSE(c->mqtt.clean_session);
  EXPECT_EQ(c->mqtt.backoff_max_ms, 10'000);
  EXPECT_FALSE(Config{}.mqtt.clean_session);
  EXPECT_EQ(Config{}.mqtt.backoff_max_ms, 10'000);
}

TEST(MqttSessionConfig, AreReadFromTheMqttSection) {
  Result<Config> c =
      ParseConfig("node_id: n1\nmqtt:\n  clean_session: true\n  backoff_max: 250ms\n", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(c->mqtt.clean_session);
  EXPECT_EQ(c->mqtt.backoff_max_ms, 250);
  EXPECT_TRUE(Validate(*c).ok());
}

TEST(MqttSessionConfig, ABackoffCapUnderTheFirstDelayIsAnErrorWithItsPosition) {
  Result<Config> c = ParseConfig("node_id: n1\nmqtt:\n  backoff_max: 50ms\n", "cfg.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error(), HasSubstr("cfg.yaml:3:"));
  EXPECT_THAT(c.error(), HasSubstr("mqtt.backoff_max"));
}

TEST(MqttSessionConfig, ANonBooleanCleanSessionIsAnError) {
  Result<Config> c = ParseConfig("node_id: n1\nmqtt:\n  clean_session: maybe\n", "cfg.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error(), HasSubstr("mqtt.clean_session"));
}

TEST(MqttSessionConfig, ComeFromTheEnvironment) {
  Config c;
  c.node_id = "n1";
  const Status env = ApplyEnvironment(c, [](const std::string& name) -> std::optional<std::string> {
    if (name == "EDGE_AGENT_MQTT_CLEAN_SESSION") return "true";
    if (name == "EDGE_AGENT_MQTT_BACKOFF_MAX") return "2s";
    return std::nullopt;
  });
  ASSERT_TRUE(env.ok()) << env.message();
  EXPECT_TRUE(c.mqtt.clean_session);
  EXPECT_EQ(c.mqtt.backoff_max_ms, 2'000);
}

}  // namespace
}  // namespace edge::agent
