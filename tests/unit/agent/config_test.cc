#include "edge/agent/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace edge::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

Config Parsed(std::string_view yaml) {
  Result<Config> c = ParseConfig(yaml, "cfg.yaml");
  EXPECT_TRUE(c.ok()) << c.error();
  return c.ok() ? *c : Config{};
}

std::string ParseError(std::string_view yaml) {
  Result<Config> c = ParseConfig(yaml, "cfg.yaml");
  EXPECT_FALSE(c.ok());
  return c.error();
}

Config ValidBase() {
  Config c;
  c.node_id = "node-1";
  return c;
}

std::function<std::optional<std::string>(const std::string&)> FakeEnv(
    std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ConfigParse, EmptyTextGivesDefaults) {
  const Config c = Parsed("");
  EXPECT_EQ(c.node_id, "");
  EXPECT_EQ(c.mqtt.url, "tcp://127.0.0.1:1883");
  EXPECT_THAT(c.mqtt.topics, ElementsAre("#"));
  EXPECT_EQ(c.mqtt.client_id, "");
  EXPECT_EQ(c.mqtt.qos, 1);
  EXPECT_EQ(c.mqtt.max_payload_bytes, 65536u);
  EXPECT_EQ(c.mqtt.keepalive_ms, 30000);
  EXPECT_EQ(c.store.path, "/var/lib/edge-agent/edge-agent.db");
  EXPECT_EQ(c.store.commit_interval_ms, 100);
  EXPECT_EQ(c.http.listen, "0.0.0.0:9102");
  EXPECT_EQ(c.console.url, "");
  EXPECT_EQ(c.console.batch_max_items, 500u);
  EXPECT_EQ(c.console.timeout_ms, 10000);
  EXPECT_EQ(c.console.backoff_initial_ms, 500);
  EXPECT_EQ(c.console.backoff_max_ms, 30000);
  EXPECT_EQ(c.policy_file, "");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.queue_capacity, 65536u);
}

TEST(ConfigParse, CommentOnlyFileGivesDefaults) {
  EXPECT_EQ(Parsed("# nothing here\n").mqtt.url, "tcp://127.0.0.1:1883");
}

TEST(ConfigParse, ReadsEveryKey) {
  const Config c = Parsed(R"(
node_id: edge-7
mqtt:
  url: ssl://broker.local:8883
  topics: [zigbee2mqtt/#, "tele/+/SENSOR"]
  client_id: agent-7
  qos: 2
  username: agent
  password_file: /run/secrets/mqtt-password
  ca_file: /etc/ssl/broker-ca.pem
  max_payload_bytes: 4096
  keepalive: 1m
store:
  path: /data/agent.db
  commit_interval: 250ms
http:
  listen: 127.0.0.1:9200
console:
  url: https://console.example.com/api
  token_file: /run/secrets/token
  ca_file: /etc/ssl/console-ca.pem
  batch_max_items: 50
  timeout: 5s
  backoff_initial: 1s
  backoff_max: 2m
policy: /etc/edge-agent/policy.yaml
log:
  level: debug
queue:
  capacity: 1024
)");
  EXPECT_EQ(c.node_id, "edge-7");
  EXPECT_EQ(c.mqtt.url, "ssl://broker.local:8883");
  EXPECT_THAT(c.mqtt.topics, ElementsAre("zigbee2mqtt/#", "tele/+/SENSOR"));
  EXPECT_EQ(c.mqtt.client_id, "agent-7");
  EXPECT_EQ(c.mqtt.qos, 2);
  EXPECT_EQ(c.mqtt.username, "agent");
  EXPECT_EQ(c.mqtt.password_file, "/run/secrets/mqtt-password");
  EXPECT_EQ(c.mqtt.ca_file, "/etc/ssl/broker-ca.pem");
  EXPECT_EQ(c.mqtt.max_payload_bytes, 4096u);
  EXPECT_EQ(c.mqtt.keepalive_ms, 60000);
  EXPECT_EQ(c.store.path, "/data/agent.db");
  EXPECT_EQ(c.store.commit_interval_ms, 250);
  EXPECT_EQ(c.http.listen, "127.0.0.1:9200");
  EXPECT_EQ(c.console.url, "https://console.example.com/api");
  EXPECT_EQ(c.console.token_file, "/run/secrets/token");
  EXPECT_EQ(c.console.ca_file, "/etc/ssl/console-ca.pem");
  EXPECT_EQ(c.console.batch_max_items, 50u);
  EXPECT_EQ(c.console.timeout_ms, 5000);
  EXPECT_EQ(c.console.backoff_initial_ms, 1000);
  EXPECT_EQ(c.console.backoff_max_ms, 120000);
  EXPECT_EQ(c.policy_file, "/etc/edge-agent/policy.yaml");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.queue_capacity, 1024u);
}

TEST(ConfigParse, MqttSchemeAliasesAreStoredAsPahoSchemes) {
  EXPECT_EQ(Parsed("mqtt: {url: 'mqtt://broker:1883'}").mqtt.url, "tcp://broker:1883");
  EXPECT_EQ(Parsed("mqtt: {url: 'mqtts://broker:8883'}").mqtt.url, "ssl://broker:8883");
}

TEST(ConfigParse, TopicsAsScalarAreCommaSeparated) {
  EXPECT_THAT(Parsed("mqtt:\n  topics: a/#, b/+\n").mqtt.topics, ElementsAre("a/#", "b/+"));
}

TEST(ConfigParse, EmptyValueClearsAStringKey) {
  EXPECT_EQ(Parsed("http:\nconsole:\n  url:\n").console.url, "");
}

TEST(ConfigParse, MisspelledTopLevelKeySuggestsClosestWithPosition) {
  EXPECT_EQ(ParseError("mqtt:\n  qos: 1\nnod_id: n1\n"),
            "cfg.yaml:3:1: unknown key 'nod_id' (did you mean 'node_id'?)");
}

TEST(ConfigParse, MisspelledNestedKeySuggestsClosestWithPosition) {
  EXPECT_EQ(ParseError("node_id: n1\nmqtt:\n  qso: 1\n"),
            "cfg.yaml:3:3: unknown key 'qso' in 'mqtt' (did you mean 'qos'?)");
}

TEST(ConfigParse, UnknownKeyFarFromAnyKnownOneHasNoSuggestion) {
  EXPECT_EQ(ParseError("frobnicate: yes\n"), "cfg.yaml:1:1: unknown key 'frobnicate'");
}

TEST(ConfigParse, NonIntegerQosIsAnErrorAtTheValue) {
  EXPECT_EQ(ParseError("mqtt:\n  url: tcp://b:1883\n  qos: high\n"),
            "cfg.yaml:3:8: mqtt.qos: expected an integer from 0 to 2, got 'high'");
}

TEST(ConfigParse, OutOfRangeQosIsAnError) {
  EXPECT_THAT(ParseError("mqtt:\n  qos: 3\n"), StartsWith("cfg.yaml:2:8: mqtt.qos:"));
}

TEST(ConfigParse, BadDurationIsAnErrorAtTheValue) {
  const std::string error = ParseError("store:\n  commit_interval: 5 minutes\n");
  EXPECT_THAT(error, StartsWith("cfg.yaml:2:20: store.commit_interval: "));
  EXPECT_THAT(error, HasSubstr("invalid duration '5 minutes'"));
}

TEST(ConfigParse, DurationOutOfRangeIsAnError) {
  EXPECT_THAT(ParseError("store:\n  commit_interval: 2m\n"),
              StartsWith("cfg.yaml:2:20: store.commit_interval: must be from 1ms to 1m"));
}

TEST(ConfigParse, KeepaliveMustBeWholeSeconds) {
  EXPECT_THAT(ParseError("mqtt:\n  keepalive: 1500ms\n"), HasSubstr("whole seconds"));
}

TEST(ConfigParse, ReadPauseIsADurationUpTo50ms) {
  Config c;
  EXPECT_TRUE(ApplyOverride(c, "mqtt.read_pause", "5ms").ok());
  EXPECT_EQ(c.mqtt.read_pause_ms, 5);
  EXPECT_TRUE(ApplyOverride(c, "mqtt.read_pause", "0").ok());
  EXPECT_EQ(c.mqtt.read_pause_ms, 0);
  EXPECT_THAT(ParseError("mqtt:\n  read_pause: 60ms\n"),
              StartsWith("cfg.yaml:2:15: mqtt.read_pause: must be from 0s to 50ms, got 60ms"));
}

TEST(ConfigParse, BadMqttUrlIsAnError) {
  EXPECT_THAT(ParseError("mqtt:\n  url: http://broker:1883\n"),
              StartsWith("cfg.yaml:2:8: mqtt.url: expected tcp://HOST:PORT"));
}

TEST(ConfigParse, BadLogLevelIsAnError) {
  EXPECT_THAT(ParseError("log:\n  level: verbose\n"),
              StartsWith("cfg.yaml:2:10: log.level: expected one of"));
}

TEST(ConfigParse, InvalidTopicFilterIsAnErrorAtTheListItem) {
  EXPECT_THAT(ParseError("mqtt:\n  topics:\n    - a/#\n    - a/#/b\n"),
              StartsWith("cfg.yaml:4:7: mqtt.topics: invalid topic filter 'a/#/b'"));
}

TEST(ConfigParse, MissingValueForNumberIsAnErrorAtTheKey) {
  EXPECT_EQ(ParseError("queue:\n  capacity:\n"), "cfg.yaml:2:3: queue.capacity: missing value");
}

TEST(ConfigParse, ListForSingleValueKeyIsAnError) {
  EXPECT_EQ(ParseError("node_id: [a, b]\n"),
            "cfg.yaml:1:10: node_id: expected a single value, got a list");
}

TEST(ConfigParse, SectionThatIsNotAMappingIsAnError) {
  EXPECT_EQ(ParseError("mqtt: tcp://broker:1883\n"),
            "cfg.yaml:1:7: 'mqtt' must be a mapping of keys");
}

TEST(ConfigParse, DuplicateKeyIsAnError) {
  EXPECT_EQ(ParseError("node_id: a\nnode_id: b\n"), "cfg.yaml:2:1: duplicate key 'node_id'");
}

TEST(ConfigParse, TopLevelListIsAnError) {
  EXPECT_THAT(ParseError("- node_id\n"), HasSubstr("expected a mapping"));
}

TEST(ConfigParse, YamlSyntaxErrorHasLineAndColumn) {
  EXPECT_THAT(ParseError("node_id: n1\nmqtt: [tcp://a:1\n"), StartsWith("cfg.yaml:3:1: "));
}

TEST(ConfigParse, SeveralDocumentsAreAnError) {
  EXPECT_THAT(ParseError("node_id: a\n---\nnode_id: b\n"), HasSubstr("expected one YAML document"));
}

TEST(ConfigParse, ReportsEveryErrorOnItsOwnLine) {
  EXPECT_EQ(ParseError("nod_id: a\nmqtt:\n  qos: x\n"),
            "cfg.yaml:1:1: unknown key 'nod_id' (did you mean 'node_id'?)\n"
            "cfg.yaml:3:8: mqtt.qos: expected an integer from 0 to 2, got 'x'");
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("edge-config-test-" + std::to_string(::getpid()) + "-" +
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

using ConfigFile = TempDir;

TEST_F(ConfigFile, LoadsAndNamesTheFileInErrors) {
  const std::string path = Write("agent.yaml", "node_id: n1\nmqtt:\n  qos: 9\n");
  Result<Config> c = LoadConfigFile(path);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error(), StartsWith(path + ":3:8: mqtt.qos:"));
}

TEST_F(ConfigFile, LoadsAValidFile) {
  Result<Config> c = LoadConfigFile(Write("agent.yaml", "node_id: n1\n"));
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->node_id, "n1");
}

TEST_F(ConfigFile, MissingFileIsAReadError) {
  const std::string path = (dir_ / "absent.yaml").string();
  Result<Config> c = LoadConfigFile(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), path + ": cannot read: No such file or directory");
}

TEST_F(ConfigFile, DirectoryIsAReadError) {
  Result<Config> c = LoadConfigFile(dir_.string());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), dir_.string() + ": cannot read: Is a directory");
}

TEST(ConfigOverride, SetsAScalarKey) {
  Config c;
  ASSERT_TRUE(ApplyOverride(c, "mqtt.url", "tcp://10.0.0.2:1884").ok());
  EXPECT_EQ(c.mqtt.url, "tcp://10.0.0.2:1884");
}

TEST(ConfigOverride, TopicsAreCommaSeparated) {
  Config c;
  ASSERT_TRUE(ApplyOverride(c, "mqtt.topics", "a/#, b/+/c").ok());
  EXPECT_THAT(c.mqtt.topics, ElementsAre("a/#", "b/+/c"));
}

TEST(ConfigOverride, DurationIsParsed) {
  Config c;
  ASSERT_TRUE(ApplyOverride(c, "console.timeout", "10s").ok());
  EXPECT_EQ(c.console.timeout_ms, 10000);
}

TEST(ConfigOverride, UnknownKeySuggestsClosest) {
  Config c;
  EXPECT_EQ(ApplyOverride(c, "mqtt.qoss", "1").message(),
            "unknown key 'mqtt.qoss' (did you mean 'mqtt.qos'?)");
}

TEST(ConfigOverride, BadValueNamesTheKeyAndLeavesConfigUnchanged) {
  Config c;
  const Status s = ApplyOverride(c, "queue.capacity", "lots");
  EXPECT_THAT(s.message(), StartsWith("queue.capacity: expected an integer"));
  EXPECT_EQ(c.queue_capacity, 65536u);
}

TEST(ConfigEnvironment, UnsetVariablesKeepValues) {
  Config c;
  c.node_id = "from-file";
  ASSERT_TRUE(ApplyEnvironment(c, FakeEnv({})).ok());
  EXPECT_EQ(c.node_id, "from-file");
}

TEST(ConfigEnvironment, SetVariablesOverrideValues) {
  Config c;
  c.node_id = "from-file";
  ASSERT_TRUE(ApplyEnvironment(c, FakeEnv({{"EDGE_AGENT_NODE_ID", "from-env"},
                                           {"EDGE_AGENT_MQTT_URL", "mqtt://b:1883"},
                                           {"EDGE_AGENT_MQTT_TOPICS", "x/#,y"},
                                           {"EDGE_AGENT_STORE_PATH", "/tmp/a.db"},
                                           {"EDGE_AGENT_CONSOLE_TOKEN_FILE", "/t"},
                                           {"EDGE_AGENT_CONSOLE_BACKOFF_MAX", "1m"},
                                           {"EDGE_AGENT_POLICY", "/p.yaml"}}))
                  .ok());
  EXPECT_EQ(c.node_id, "from-env");
  EXPECT_EQ(c.mqtt.url, "tcp://b:1883");
  EXPECT_THAT(c.mqtt.topics, ElementsAre("x/#", "y"));
  EXPECT_EQ(c.store.path, "/tmp/a.db");
  EXPECT_EQ(c.console.token_file, "/t");
  EXPECT_EQ(c.console.backoff_max_ms, 60000);
  EXPECT_EQ(c.policy_file, "/p.yaml");
}

TEST(ConfigEnvironment, EmptyVariableSetsEmptyString) {
  Config c;
  c.console.url = "https://console:443";
  ASSERT_TRUE(ApplyEnvironment(c, FakeEnv({{"EDGE_AGENT_CONSOLE_URL", ""}})).ok());
  EXPECT_EQ(c.console.url, "");
}

TEST(ConfigEnvironment, BadValueNamesTheVariable) {
  Config c;
  const Status s = ApplyEnvironment(c, FakeEnv({{"EDGE_AGENT_MQTT_QOS", "high"}}));
  EXPECT_EQ(s.message(), "EDGE_AGENT_MQTT_QOS: expected an integer from 0 to 2, got 'high'");
}

TEST(ConfigEnvironment, ReportsEveryBadVariable) {
  Config c;
  const Status s = ApplyEnvironment(
      c, FakeEnv({{"EDGE_AGENT_MQTT_QOS", "high"}, {"EDGE_AGENT_CONSOLE_TIMEOUT", "soon"}}));
  EXPECT_THAT(s.message(), HasSubstr("EDGE_AGENT_MQTT_QOS: "));
  EXPECT_THAT(s.message(), HasSubstr("EDGE_AGENT_CONSOLE_TIMEOUT: invalid duration 'soon'"));
}

TEST(ConfigValidate, DefaultsWithNodeIdAreValid) {
  const Status s = Validate(ValidBase());
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(ConfigValidate, NodeIdIsRequired) {
  EXPECT_THAT(Validate(Config{}).message(), StartsWith("node_id: is required"));
}

TEST(ConfigValidate, NodeIdWithSpaceIsRejected) {
  Config c = ValidBase();
  c.node_id = "node 1";
  EXPECT_THAT(Validate(c).message(), StartsWith("node_id: must be"));
}

TEST(ConfigValidate, MqttUrlWithoutPortIsRejected) {
  Config c = ValidBase();
  c.mqtt.url = "tcp://broker";
  EXPECT_THAT(Validate(c).message(), StartsWith("mqtt.url: "));
}

TEST(ConfigValidate, MqttSchemeAliasIsAccepted) {
  Config c = ValidBase();
  c.mqtt.url = "mqtts://broker:8883";
  EXPECT_TRUE(Validate(c).ok());
}

TEST(ConfigValidate, QosOutOfRangeIsRejected) {
  Config c = ValidBase();
  c.mqtt.qos = 3;
  EXPECT_EQ(Validate(c).message(), "mqtt.qos: must be from 0 to 2, got 3");
}

TEST(ConfigValidate, ListenWithoutPortIsRejected) {
  Config c = ValidBase();
  c.http.listen = "0.0.0.0";
  EXPECT_THAT(Validate(c).message(), StartsWith("http.listen: expected HOST:PORT"));
}

TEST(ConfigValidate, ListenOnIpv6IsAccepted) {
  Config c = ValidBase();
  c.http.listen = "[::]:9102";
  EXPECT_TRUE(Validate(c).ok());
}

TEST(ConfigValidate, ConsoleUrlMustBeHttp) {
  Config c = ValidBase();
  c.console.url = "ftp://console";
  c.console.token_file = "/t";
  EXPECT_THAT(Validate(c).message(), StartsWith("console.url: "));
}

TEST(ConfigValidate, ConsoleUrlRequiresTokenFile) {
  Config c = ValidBase();
  c.console.url = "https://console.example.com";
  EXPECT_EQ(Validate(c).message(), "console.token_file: is required when console.url is set");
}

TEST(ConfigValidate, ZeroIntervalIsRejected) {
  Config c = ValidBase();
  c.store.commit_interval_ms = 0;
  EXPECT_THAT(Validate(c).message(), StartsWith("store.commit_interval: must be from"));
}

TEST(ConfigValidate, BackoffMaxBelowInitialIsRejected) {
  Config c = ValidBase();
  c.console.backoff_initial_ms = 5000;
  c.console.backoff_max_ms = 1000;
  EXPECT_EQ(Validate(c).message(),
            "console.backoff_max: must not be less than console.backoff_initial");
}

TEST(ConfigValidate, EmptyTopicListIsRejected) {
  Config c = ValidBase();
  c.mqtt.topics.clear();
  EXPECT_THAT(Validate(c).message(), StartsWith("mqtt.topics: "));
}

TEST(ConfigValidate, ReportsEveryProblem) {
  Config c;
  c.mqtt.qos = -1;
  c.queue_capacity = 0;
  const std::string message = Validate(c).message();
  EXPECT_THAT(message, HasSubstr("node_id: "));
  EXPECT_THAT(message, HasSubstr("; mqtt.qos: "));
  EXPECT_THAT(message, HasSubstr("; queue.capacity: "));
}

TEST(ConfigClientId, DefaultsToEdgeAgentAndNodeId) {
  EXPECT_EQ(MqttClientId(ValidBase()), "edge-agent-node-1");
}

TEST(ConfigClientId, ExplicitClientIdWins) {
  Config c = ValidBase();
  c.mqtt.client_id = "mine";
  EXPECT_EQ(MqttClientId(c), "mine");
}

TEST(ConfigKeyTable, EnvironmentNamesFollowTheKeys) {
  for (const ConfigKey& k : ConfigKeys()) {
    std::string expected = "EDGE_AGENT_";
    for (char ch : k.key) {
      expected += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    EXPECT_EQ(k.env, expected) << k.key;
    EXPECT_FALSE(k.description.empty()) << k.key;
  }
}

TEST(ConfigHttp, BoundsAndTokenFileAreReadFromTheFile) {
  const Config c = Parsed(
      "http:\n  header_timeout: 2s\n  max_connections: 100\n  max_connections_per_client: 4\n"
      "  readings_token_file: /run/secrets/readings\n");
  EXPECT_EQ(c.http.header_timeout_ms, 2000);
  EXPECT_EQ(c.http.max_connections, 100u);
  EXPECT_EQ(c.http.max_connections_per_client, 4u);
  EXPECT_EQ(c.http.readings_token_file, "/run/secrets/readings");
}

TEST(ConfigHttp, OutOfRangeBoundsAreRejected) {
  EXPECT_THAT(ParseError("http:\n  header_timeout: 10ms\n"), HasSubstr("http.header_timeout"));
  EXPECT_THAT(ParseError("http:\n  max_connections: 0\n"), HasSubstr("http.max_connections"));
  Config c = ValidBase();
  c.http.max_connections_per_client = 0;
  EXPECT_THAT(Validate(c).message(), HasSubstr("http.max_connections_per_client: must be"));
}

TEST(ConsoleUrlTls, CleartextUrlToAnotherHostIsFlagged) {
  EXPECT_TRUE(IsCleartextRemoteUrl("http://edge-console.edge.svc:8080"));
  EXPECT_TRUE(IsCleartextRemoteUrl("http://10.0.0.7:8080/base"));
  EXPECT_TRUE(IsCleartextRemoteUrl("http://[fd00::1]:8080"));
  EXPECT_TRUE(IsCleartextRemoteUrl("http://128.0.0.1"));
  EXPECT_TRUE(IsCleartextRemoteUrl("http://localhost.example.com"));
}

TEST(ConsoleUrlTls, LoopbackHttpsAndEmptyAreNotFlagged) {
  EXPECT_FALSE(IsCleartextRemoteUrl(""));
  EXPECT_FALSE(IsCleartextRemoteUrl("https://edge-console.edge.svc:8443"));
  EXPECT_FALSE(IsCleartextRemoteUrl("http://127.0.0.1:8080"));
  EXPECT_FALSE(IsCleartextRemoteUrl("http://127.9.8.7/x"));
  EXPECT_FALSE(IsCleartextRemoteUrl("http://localhost:8080"));
  EXPECT_FALSE(IsCleartextRemoteUrl("http://LOCALHOST"));
  EXPECT_FALSE(IsCleartextRemoteUrl("http://[::1]:8080/base"));
}

TEST(ConsoleUrlTls, RemoteHttpIsAWarningByDefault) {
  Config c = ValidBase();
  c.console.url = "http://edge-console:8080";
  c.console.token_file = "/t";
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).message();
  ASSERT_EQ(ConfigWarnings(c).size(), 1u);
  EXPECT_THAT(ConfigWarnings(c)[0], HasSubstr("clear text"));
  c.console.url = "http://127.0.0.1:8080";
  EXPECT_TRUE(ConfigWarnings(c).empty());
}

TEST(ConsoleUrlTls, RequireTlsRefusesRemoteHttpOnly) {
  Config c = ValidBase();
  c.console.token_file = "/t";
  ASSERT_TRUE(ApplyOverride(c, "console.require_tls", "true").ok());
  c.console.url = "http://edge-console:8080";
  EXPECT_THAT(Validate(c).message(), HasSubstr("console.url: is http:// to a host off this node"));
  c.console.url = "https://edge-console:8443";
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).message();
  c.console.url = "http://localhost:8080";
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).message();
  EXPECT_FALSE(ApplyOverride(c, "console.require_tls", "yes please").ok());
}

TEST(ConfigKeyTable, DocumentedDefaultsAreTheActualDefaults) {
  Config from_table;
  for (const ConfigKey& k : ConfigKeys()) {
    if (k.default_value.find('<') != std::string_view::npos) continue;  // derived default
    const Status s = ApplyOverride(from_table, k.key, k.default_value);
    EXPECT_TRUE(s.ok()) << k.key << ": " << s.message();
  }
  const Config defaults;
  EXPECT_EQ(from_table.mqtt.url, defaults.mqtt.url);
  EXPECT_EQ(from_table.mqtt.topics, defaults.mqtt.topics);
  EXPECT_EQ(from_table.mqtt.qos, defaults.mqtt.qos);
  EXPECT_EQ(from_table.mqtt.max_payload_bytes, defaults.mqtt.max_payload_bytes);
  EXPECT_EQ(from_table.mqtt.keepalive_ms, defaults.mqtt.keepalive_ms);
  EXPECT_EQ(from_table.mqtt.read_pause_ms, defaults.mqtt.read_pause_ms);
  EXPECT_EQ(from_table.store.path, defaults.store.path);
  EXPECT_EQ(from_table.store.commit_interval_ms, defaults.store.commit_interval_ms);
  EXPECT_EQ(from_table.http.listen, defaults.http.listen);
  EXPECT_EQ(from_table.http.header_timeout_ms, defaults.http.header_timeout_ms);
  EXPECT_EQ(from_table.http.max_connections, defaults.http.max_connections);
  EXPECT_EQ(from_table.http.max_connections_per_client, defaults.http.max_connections_per_client);
  EXPECT_EQ(from_table.http.readings_token_file, defaults.http.readings_token_file);
  EXPECT_EQ(from_table.console.require_tls, defaults.console.require_tls);
  EXPECT_EQ(from_table.console.batch_max_items, defaults.console.batch_max_items);
  EXPECT_EQ(from_table.console.timeout_ms, defaults.console.timeout_ms);
  EXPECT_EQ(from_table.console.backoff_initial_ms, defaults.console.backoff_initial_ms);
  EXPECT_EQ(from_table.console.backoff_max_ms, defaults.console.backoff_max_ms);
  EXPECT_EQ(from_table.console.linger_ms, defaults.console.linger_ms);
  EXPECT_EQ(from_table.sync.status_interval_ms, defaults.sync.status_interval_ms);
  EXPECT_EQ(from_table.log_level, defaults.log_level);
  EXPECT_EQ(from_table.queue_capacity, defaults.queue_capacity);
  EXPECT_EQ(from_table.queue_max_bytes, defaults.queue_max_bytes);
  EXPECT_EQ(from_table.max_sensors, defaults.max_sensors);
  EXPECT_EQ(from_table.sensor_idle_ms, defaults.sensor_idle_ms);
}

TEST(ConfigOverride, MemoryBoundsOnMqttInputParseAndStayInRange) {
  Config c;
  EXPECT_EQ(c.queue_max_bytes, 16 << 20);
  EXPECT_EQ(c.max_sensors, 10'000u);
  EXPECT_EQ(c.sensor_idle_ms, 600'000);
  ASSERT_TRUE(ApplyOverride(c, "queue.max_bytes", "8MiB").ok());
  ASSERT_TRUE(ApplyOverride(c, "sensors.max", "500").ok());
  ASSERT_TRUE(ApplyOverride(c, "sensors.idle_after", "5m").ok());
  EXPECT_EQ(c.queue_max_bytes, 8 << 20);
  EXPECT_EQ(c.max_sensors, 500u);
  EXPECT_EQ(c.sensor_idle_ms, 300'000);
  EXPECT_THAT(ApplyOverride(c, "queue.max_bytes", "64KiB").message(),
              StartsWith("queue.max_bytes: must be between"));
  EXPECT_THAT(ApplyOverride(c, "sensors.max", "0").message(), StartsWith("sensors.max: expected"));
  EXPECT_THAT(ApplyOverride(c, "sensors.idle_after", "10ms").message(),
              StartsWith("sensors.idle_after: "));
  EXPECT_EQ(c.queue_max_bytes, 8 << 20);
  EXPECT_EQ(c.max_sensors, 500u);
  EXPECT_EQ(c.sensor_idle_ms, 300'000);
  c.max_sensors = 0;
  EXPECT_THAT(Validate(c).message(), HasSubstr("sensors.max: "));
}

TEST(ConfigKeyTable, EveryKeyIsAcceptedInAFile) {
  for (const ConfigKey& k : ConfigKeys()) {
    const size_t dot = k.key.find('.');
    const std::string yaml = dot == std::string_view::npos
                                 ? std::string(k.key) + ": x\n"
                                 : std::string(k.key.substr(0, dot)) + ":\n  " +
                                       std::string(k.key.substr(dot + 1)) + ": x\n";
    Result<Config> c = ParseConfig(yaml, "cfg.yaml");
    // "x" may be a bad value for the key, but the key itself must be known.
    EXPECT_THAT(c.error(), ::testing::Not(HasSubstr("unknown key"))) << k.key;
  }
}

}  // namespace
}  // namespace edge::agent

namespace edge::agent {
namespace {

TEST(ParseConfigHostile, LoneCommaIsAnErrorNotAHang) {
  auto r = ParseConfig(",", "c.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind("c.yaml:1:1:", 0), 0u) << r.error();
}

TEST(ConfigStore, SizesTakeBinaryAndDecimalUnits) {
  Config c;
  ASSERT_TRUE(ApplyOverride(c, "store.max_bytes", "64MiB"));
  EXPECT_EQ(c.store.max_bytes, int64_t{64} << 20);
  ASSERT_TRUE(ApplyOverride(c, "store.max_bytes", "2GB"));
  EXPECT_EQ(c.store.max_bytes, 2'000'000'000);
  ASSERT_TRUE(ApplyOverride(c, "store.max_bytes", "0"));
  EXPECT_EQ(c.store.max_bytes, 0);
  EXPECT_FALSE(ApplyOverride(c, "store.max_bytes", "12 parsecs"));
  EXPECT_FALSE(ApplyOverride(c, "store.max_bytes", "-1MiB"));
}

TEST(ConfigStore, ReadingsShareIsAFractionUpTo95Percent) {
  Config c;
  ASSERT_TRUE(ApplyOverride(c, "store.readings_share", "0.25"));
  EXPECT_DOUBLE_EQ(c.store.readings_share, 0.25);
  EXPECT_FALSE(ApplyOverride(c, "store.readings_share", "0.99"));
  EXPECT_FALSE(ApplyOverride(c, "store.readings_share", "half"));
  EXPECT_DOUBLE_EQ(c.store.readings_share, 0.25);
}

TEST(ConfigStore, RetentionAndRollupIntervalAreDurations) {
  auto r = ParseConfig("store:\n  retention: 2h\n  rollup_interval: 30s\n", "c.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->store.retention_ms, 2 * 3600 * 1000);
  EXPECT_EQ(r->store.rollup_interval_ms, 30'000);
  EXPECT_FALSE(ParseConfig("store:\n  rollup_interval: 10ms\n", "c.yaml").ok());
}

}  // namespace
}  // namespace edge::agent
