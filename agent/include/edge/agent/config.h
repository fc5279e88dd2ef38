#pragma once

// The agent's configuration: defaults, a YAML file, EDGE_AGENT_* environment variables and
// command-line overrides, in that order of precedence (main applies them in turn). Every
// key is listed once in ConfigKeys(), which drives the file parser, the environment
// names, overrides, --help and docs/configuration.md.
//
// Parsing is strict: an unknown key, a value of the wrong type, a bad duration or an
// out-of-range value is an error that names the key and, for files, the position as
// "file:line:col: message" (1-based). None of these functions throws.
//
// Values that need no other key are checked as they are set (type and range). Validate
// checks the finished configuration as a whole, including what one key requires of
// another (console.token_file when console.url is set, a node_id at all).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/agent/modbus.h"
#include "edge/common/status.h"

namespace edge::agent {

struct MqttConfig {
  // tcp://HOST:PORT or ssl://HOST:PORT; mqtt:// and mqtts:// are accepted when setting
  // and stored as tcp:// and ssl://.
  std::string url = "tcp://127.0.0.1:1883";
  // MQTT client implementation: "native" (mqtt_codec.h over Boost.Asio) or "paho".
  std::string client = "native";
  std::vector<std::string> topics{"#"};  // subscriptions, MQTT wildcards allowed
  std::string client_id;                 // empty: MqttClientId() derives one from node_id
  int qos = 1;                           // 0..2
  std::string username;                  // empty: anonymous
  std::string username_file;             // file holding the user name (instead of username)
  std::string password_file;             // file holding the password; empty: none
  std::string ca_file;                   // PEM CA bundle for ssl://; empty: system CAs
  std::string cert_file;                 // client certificate (PEM) for ssl://; empty: none
  std::string key_file;                  // its private key (PEM); set with cert_file
  size_t max_payload_bytes = 65536;      // larger messages are rejected (too_large)
  int64_t keepalive_ms = 30000;          // whole seconds, 1s..65535s
  int64_t read_pause_ms = 2;             // native client: pause after a small read, 0..50 ms
  // false: a persistent session, so the broker keeps QoS 1 and 2 messages while the agent is
  // away (restarts, upgrades), within its queue limits.
  bool clean_session = false;
  int64_t backoff_max_ms = 10'000;  // cap of the reconnect delay (the first is within 100 ms)
  // When QoS 1/2 messages are acknowledged: "commit" (native client: once their readings
  // are committed), "receipt", or empty: commit with the native client, receipt with Paho.
  std::string ack;
  bool AckAfterCommit() const { return ack == "commit" || (ack.empty() && client != "paho"); }
};

struct StoreConfig {
  std::string path = "/var/lib/edge-agent/edge-agent.db";
  int64_t commit_interval_ms = 100;         // group-commit window: readings lost on a crash
  int64_t alert_commit_window_ms = 10;      // least time between outbox commits (syncs)
  int64_t max_bytes = int64_t{256} << 20;   // outbox + readings ring + dead letters; 0: none
  double readings_share = 0.5;              // of max_bytes for the readings ring
  int64_t retention_ms = 24 * 3600 * 1000;  // readings ring retention
  int64_t rollup_interval_ms = 60'000;      // per-sensor rollups into the outbox
  int64_t max_pages = 0;                    // PRAGMA max_page_count (test knob); 0: none
};

struct HttpConfig {
  std::string listen = "0.0.0.0:9102";     // HOST:PORT for /metrics, /healthz, /readyz
  int64_t header_timeout_ms = 5000;        // a connection's request headers must arrive by then
  size_t max_connections = 64;             // open connections in all
  size_t max_connections_per_client = 16;  // open connections per client IP address
  // File holding the bearer token of GET /v1/readings; empty: loopback clients only.
  std::string readings_token_file;
};

struct ConsoleConfig {
  std::string url;         // http(s)://HOST[:PORT][/PATH]; empty: uplink disabled
  std::string token_file;  // bearer token file; required when url is set
  std::string ca_file;     // PEM CA bundle for https://; empty: system CAs
  std::string cert_file;   // client certificate (PEM) for mutual TLS; empty: none
  std::string key_file;    // its private key (PEM); set with cert_file
  size_t batch_max_items = 500;
  int64_t timeout_ms = 10000;  // per request
  int64_t backoff_initial_ms = 500;
  int64_t backoff_max_ms = 30000;
  int64_t linger_ms = 20;  // wait for more rows after an idle spell or a partial batch
  // Refuse to start with an http:// url to a non-loopback host (otherwise: a warning).
  bool require_tls = false;
};

struct SyncConfig {
  int64_t status_interval_ms = 60000;  // status heartbeat to the console
  // PEM Ed25519 public key that console policies must be signed with; empty: the policy
  // channel is off and the local policy file is the only policy.
  std::string policy_key;
  int64_t policy_poll_interval_ms = 30000;  // policy polling when the WebSocket is refused
};

struct Config {
  std::string node_id;  // [A-Za-z0-9_.-]+, required
  // Node labels for console policy selectors, "k=v,k2=v2" (cloudsync::ParseLabels).
  std::map<std::string, std::string> labels;
  MqttConfig mqtt;
  StoreConfig store;
  HttpConfig http;
  ConsoleConfig console;
  SyncConfig sync;
  std::string policy_file;               // local policy file; empty: none
  std::string log_level = "info";        // trace|debug|info|warn|error
  size_t queue_capacity = 65536;         // ingest queue, in messages
  int64_t queue_max_bytes = 16 << 20;    // ingest queue, in topic + payload bytes
  size_t max_sensors = 10'000;           // sensors the rules engine tracks
  int64_t sensor_idle_ms = 10 * 60'000;  // idle sensors are forgotten after this
  size_t sparkplug_max_nodes = 1024;     // Sparkplug B edge nodes holding a birth
  size_t sparkplug_max_metrics = 4096;   // metric definitions per Sparkplug B edge node
  std::vector<ModbusDevice> modbus;      // devices polled over Modbus TCP (config file only)
};

// Parses a YAML configuration. Keys not in the text keep their defaults; an empty text
// gives the defaults. All errors are reported, one per line, each as
// "<source_name>:<line>:<col>: <message>"; an unknown key suggests the closest known one:
// "unknown key 'nod_id' (did you mean 'node_id'?)". Does not call Validate.
Result<Config> ParseConfig(std::string_view yaml_text, const std::string& source_name);

// Reads and parses a file. A read error is "<path>: cannot read: <strerror>".
Result<Config> LoadConfigFile(const std::string& path);

// Largest configuration file LoadConfigFile reads.
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Reads a whole file of at most `max_bytes`. Errors: "<path>: cannot read: <strerror>",
// "<path>: larger than <max_bytes> bytes".
Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes);

// Sets one key from text, as a command-line flag would: `key` is the dotted name
// ("mqtt.url", "console.timeout"), `value` as written in the file ("10s"); mqtt.topics
// takes a comma-separated list. An error names the key. On error `c` is unchanged.
Status ApplyOverride(Config& c, std::string_view key, std::string_view value);

// For each key, reads EDGE_AGENT_<KEY> ('.' -> '_', upper case: EDGE_AGENT_MQTT_URL,
// EDGE_AGENT_POLICY) through `getenv` and applies the ones that are set (a set but
// empty variable sets an empty value). Errors name the variable; all are reported.
Status ApplyEnvironment(
    Config& c, const std::function<std::optional<std::string>(const std::string&)>& getenv);

// Checks the whole configuration; all problems are reported, separated by "; ".
Status Validate(const Config& c);

// True when `console_url` is http:// to a host other than localhost, 127.0.0.0/8 or ::1:
// the node's token and its alerts would cross the network in clear text. False for
// https://, loopback hosts and an empty url.
bool IsCleartextRemoteUrl(std::string_view console_url);

// Warnings about a valid but risky configuration (an http:// console off this host), one
// sentence each, for the agent to log at start. Validate turns them into errors where the
// configuration asks for that (console.require_tls).
std::vector<std::string> ConfigWarnings(const Config& c);

// The MQTT client id to use: mqtt.client_id, or "edge-agent-<node_id>" when it is empty.
std::string MqttClientId(const Config& c);

struct ConfigKey {
  std::string_view key;            // dotted, as in ApplyOverride: "mqtt.url"
  std::string_view env;            // "EDGE_AGENT_MQTT_URL"
  std::string_view default_value;  // as it would be written in the file; may be empty
  std::string_view description;
};

// Every configuration key, in file order. The views point to static storage.
const std::vector<ConfigKey>& ConfigKeys();

}  // namespace edge::agent
