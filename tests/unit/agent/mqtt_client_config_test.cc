// mqtt.client: which MQTT client the agent runs, native or paho (docs/configuration.md).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "edge/agent/config.h"

namespace edge::agent {
namespace {

using ::testing::HasSubstr;

TEST(MqttClientConfig, DefaultsToNative) {
  Result<Config> c = ParseConfig("", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->mqtt.client, "native");
}

TEST(MqttClientConfig, PahoIsReadFromTheMqttSection) {
  Result<Config> c = ParseConfig("node_id: n1\nmqtt:\n  client: paho\n", "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->mqtt.client, "paho");
  EXPECT_TRUE(Validate(*c).ok());
}

TEST(MqttClientConfig, AnUnknownClientIsAnErrorWithItsPosition) {
  Result<Config> c = ParseConfig("node_id: n1\nmqtt:\n  client: mosquitto\n", "cfg.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error(), HasSubstr("cfg.yaml:3:"));
  EXPECT_THAT(c.error(), HasSubstr("mqtt.client"));
  EXPECT_THAT(c.error(), HasSubstr("expected native or paho, got 'mosquitto'"));
}

TEST(MqttClientConfig, ComesFromTheEnvironmentAndFlagsOverride) {
  Config c;
  c.node_id = "n1";
  const Status env = ApplyEnvironment(c, [](const std::string& name) -> std::optional<std::string> {
    if (name == "EDGE_AGENT_MQTT_CLIENT") return "paho";
    return std::nullopt;
  });
  ASSERT_TRUE(env.ok()) << env.message();
  EXPECT_EQ(c.mqtt.client, "paho");
  ASSERT_TRUE(ApplyOverride(c, "mqtt.client", "native").ok());
  EXPECT_EQ(c.mqtt.client, "native");
  EXPECT_FALSE(ApplyOverride(c, "mqtt.client", "Native").ok());
  EXPECT_EQ(c.mqtt.client, "native");
}

TEST(MqttClientConfig, ValidateRefusesAnUnknownClientSetDirectly) {
  Config c;
  c.node_id = "n1";
  c.mqtt.client = "other";
  const Status s = Validate(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("mqtt.client: expected native or paho"));
}

}  // namespace
}  // namespace edge::agent
