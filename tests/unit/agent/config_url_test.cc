// The agent configuration's URLs go through the one URL parser (edge::ParseUrl): what the
// config accepts is what the uplink and the MQTT client can use.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edge/agent/config.h"

namespace edge::agent {
namespace {

using ::testing::StartsWith;

TEST(ConfigUrl, SchemeCaseDoesNotHideCleartext) {
  EXPECT_TRUE(IsCleartextRemoteUrl("HTTP://edge-console:8080"));
  EXPECT_TRUE(IsCleartextRemoteUrl("Http://10.1.2.3"));
  EXPECT_FALSE(IsCleartextRemoteUrl("HTTP://LOCALHOST:8080"));
  EXPECT_FALSE(IsCleartextRemoteUrl("HTTPS://edge-console"));
}

TEST(ConfigUrl, ConsoleUrlTheUplinkWouldRefuseIsRefusedAtLoad) {
  Config c;
  for (const char* bad : {"http://console/?q=1", "http://console#f", "http://user@console",
                          "http://console:80x", "http://[::1]x"}) {
    EXPECT_THAT(ApplyOverride(c, "console.url", bad).message(),
                StartsWith("console.url: expected http://HOST[:PORT][/PATH]"))
        << bad;
  }
  EXPECT_TRUE(ApplyOverride(c, "console.url", "HTTPS://console:8443/edge").ok());
}

TEST(ConfigUrl, MqttUrlIsNormalized) {
  Config c;
  ASSERT_TRUE(ApplyOverride(c, "mqtt.url", "MQTTS://[::1]:8883").ok());
  EXPECT_EQ(c.mqtt.url, "ssl://[::1]:8883");
  EXPECT_THAT(ApplyOverride(c, "mqtt.url", "tcp://broker:1883/x").message(),
              StartsWith("mqtt.url: expected tcp://HOST:PORT or ssl://HOST:PORT, got"));
  EXPECT_THAT(ApplyOverride(c, "mqtt.url", "tcp://broker:0").message(),
              StartsWith("mqtt.url: expected tcp://HOST:PORT"));
}

}  // namespace
}  // namespace edge::agent
