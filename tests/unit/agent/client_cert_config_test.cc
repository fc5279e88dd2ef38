// mqtt.cert_file/key_file and console.cert_file/key_file: the agent's client certificates
// for the broker and the console; mqtt.username_file and password_file (docs/configuration.md).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "edge/agent/config.h"

namespace edge::agent {
namespace {

using ::testing::HasSubstr;

Config WithBroker(const std::string& url) {
  Config c;
  c.node_id = "n1";
  c.mqtt.url = url;
  return c;
}

TEST(MqttCertConfig, AreReadFromTheMqttSection) {
  Result<Config> c = ParseConfig(
      "node_id: n1\nmqtt:\n  url: ssl://broker:8883\n  cert_file: /etc/n1.pem\n"
      "  key_file: /etc/n1.key\n",
      "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->mqtt.cert_file, "/etc/n1.pem");
  EXPECT_EQ(c->mqtt.key_file, "/etc/n1.key");
  EXPECT_TRUE(Validate(*c).ok()) << Validate(*c).message();
}

TEST(MqttCertConfig, ACertificateNeedsItsKeyAndTheKeyItsCertificate) {
  Config c = WithBroker("ssl://broker:8883");
  c.mqtt.cert_file = "/etc/n1.pem";
  EXPECT_THAT(Validate(c).message(), HasSubstr("mqtt.key_file: must be set with mqtt.cert_file"));
  c.mqtt.cert_file.clear();
  c.mqtt.key_file = "/etc/n1.key";
  EXPECT_THAT(Validate(c).message(), HasSubstr("mqtt.cert_file: must be set with mqtt.key_file"));
}

TEST(MqttCertConfig, ACertificateNeedsATlsBroker) {
  Config c = WithBroker("tcp://broker:1883");
  c.mqtt.cert_file = "/etc/n1.pem";
  c.mqtt.key_file = "/etc/n1.key";
  EXPECT_THAT(Validate(c).message(), HasSubstr("mqtt.cert_file: needs an ssl:// mqtt.url"));
  c.mqtt.url = "mqtts://broker:8883";
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).message();
}

TEST(MqttCredentialFiles, AreReadAndTheUserNameComesFromOnePlace) {
  Result<Config> c = ParseConfig(
      "node_id: n1\nmqtt:\n  username_file: /run/secrets/user\n"
      "  password_file: /run/secrets/password\n",
      "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->mqtt.username_file, "/run/secrets/user");
  EXPECT_TRUE(Validate(*c).ok());
  Config both = *c;
  both.mqtt.username = "node-1";
  EXPECT_THAT(Validate(both).message(),
              HasSubstr("mqtt.username_file: set either mqtt.username or mqtt.username_file"));
}

TEST(ConsoleCertConfig, AreReadAndNeedEachOther) {
  Result<Config> c = ParseConfig(
      "node_id: n1\nconsole:\n  url: https://console:8443\n  token_file: /t\n"
      "  cert_file: /etc/n1.pem\n  key_file: /etc/n1.key\n",
      "cfg.yaml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->console.cert_file, "/etc/n1.pem");
  EXPECT_EQ(c->console.key_file, "/etc/n1.key");
  EXPECT_TRUE(Validate(*c).ok()) << Validate(*c).message();
  c->console.key_file.clear();
  EXPECT_THAT(Validate(*c).message(),
              HasSubstr("console.key_file: must be set with console.cert_file"));
}

}  // namespace
}  // namespace edge::agent
