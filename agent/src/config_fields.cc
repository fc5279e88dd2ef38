#include "config_fields.h"

#include <string>

#include "config_values.h"
#include "edge/cloudsync/policy_message.h"
#include "edge/common/strings.h"
#include "edge/rules/duration.h"

namespace edge::agent {
namespace config_internal {

const std::vector<Field>& Fields() {
  static const std::vector<Field> kFields = {
      {{"node_id", "EDGE_AGENT_NODE_ID", "",
        "Required. This node's id, [A-Za-z0-9_.-]+; in Kubernetes the node name."},
       [](Config& c, std::string_view v) {
         if (!v.empty()) {
           if (Status s = CheckNodeId(v); !s.ok()) return s;
         }
         c.node_id = std::string(v);
         return Status::Ok();
       },
       false},
      {{"labels", "EDGE_AGENT_LABELS", "",
        "Node labels that console policy selectors match, k=v,k2=v2 (sent in the policy "
        "channel's hello and the status heartbeat)."},
       [](Config& c, std::string_view v) {
         auto labels = cloudsync::ParseLabels(v);
         if (!labels.ok()) return labels.status();
         c.labels = std::move(*labels);
         return Status::Ok();
       },
       false},
      {{"mqtt.url", "EDGE_AGENT_MQTT_URL", "tcp://127.0.0.1:1883",
        "Broker address, tcp://HOST:PORT or ssl://HOST:PORT (mqtt://, mqtts:// accepted)."},
       [](Config& c, std::string_view v) {
         Result<std::string> url = NormalizeMqttUrl(v);
         if (!url.ok()) return url.status();
         c.mqtt.url = std::move(*url);
         return Status::Ok();
       },
       false},
      {{"mqtt.client", "EDGE_AGENT_MQTT_CLIENT", "native",
        "MQTT client: native (reads many packets per socket read) or paho (Eclipse Paho)."},
       [](Config& c, std::string_view v) {
         if (Status s = CheckMqttClient(v); !s.ok()) return s;
         c.mqtt.client = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.topics", "EDGE_AGENT_MQTT_TOPICS", "#",
        "Topic filters to subscribe to; a YAML list, or comma-separated in the environment "
        "and on the command line."},
       SetTopics,
       true},
      {{"mqtt.client_id", "EDGE_AGENT_MQTT_CLIENT_ID", "edge-agent-<node_id>",
        "MQTT client id; empty means edge-agent-<node_id>."},
       [](Config& c, std::string_view v) {
         c.mqtt.client_id = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.qos", "EDGE_AGENT_MQTT_QOS", "1", "Subscription QoS, 0, 1 or 2."},
       [](Config& c, std::string_view v) { return AssignInt(v, 0, 2, c.mqtt.qos); },
       false},
      {{"mqtt.username", "EDGE_AGENT_MQTT_USERNAME", "",
        "Broker user name; empty connects anonymously."},
       [](Config& c, std::string_view v) {
         c.mqtt.username = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.username_file", "EDGE_AGENT_MQTT_USERNAME_FILE", "",
        "File holding the broker user name (surrounding whitespace ignored), instead of "
        "mqtt.username: both can come from one Secret."},
       [](Config& c, std::string_view v) {
         c.mqtt.username_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.password_file", "EDGE_AGENT_MQTT_PASSWORD_FILE", "",
        "File holding the broker password (surrounding whitespace ignored)."},
       [](Config& c, std::string_view v) {
         c.mqtt.password_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.ca_file", "EDGE_AGENT_MQTT_CA_FILE", "",
        "PEM CA bundle to verify an ssl:// broker; empty uses the system CAs."},
       [](Config& c, std::string_view v) {
         c.mqtt.ca_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.cert_file", "EDGE_AGENT_MQTT_CERT_FILE", "",
        "Client certificate (PEM chain) for an ssl:// broker that asks for one; with "
        "mqtt.key_file. A changed file is read at the next connect."},
       [](Config& c, std::string_view v) {
         c.mqtt.cert_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.key_file", "EDGE_AGENT_MQTT_KEY_FILE", "",
        "Private key (PEM) of mqtt.cert_file; a changed file is read at the next connect."},
       [](Config& c, std::string_view v) {
         c.mqtt.key_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.max_payload_bytes", "EDGE_AGENT_MQTT_MAX_PAYLOAD_BYTES", "65536",
        "Larger messages are dropped and counted as too_large."},
       [](Config& c, std::string_view v) {
         return AssignInt(v, 1, kMaxPayloadLimit, c.mqtt.max_payload_bytes);
       },
       false},
      {{"mqtt.keepalive", "EDGE_AGENT_MQTT_KEEPALIVE", "30s",
        "MQTT keepalive interval, whole seconds from 1s to 65535s."},
       [](Config& c, std::string_view v) {
         Result<int64_t> ms = rules::ParseDuration(v);
         if (!ms.ok()) return ms.status();
         if (Status s = CheckKeepalive(*ms); !s.ok()) return s;
         c.mqtt.keepalive_ms = *ms;
         return Status::Ok();
       },
       false},
      {{"mqtt.read_pause", "EDGE_AGENT_MQTT_READ_PAUSE", "2ms",
        "Native client: pause after a small socket read, 0 to 50ms; longer costs less CPU "
        "per message and adds up to this much latency."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 0, kMaxReadPauseMs, c.mqtt.read_pause_ms);
       },
       false},
      {{"mqtt.clean_session", "EDGE_AGENT_MQTT_CLEAN_SESSION", "false",
        "false: a persistent session (the broker keeps QoS 1 and 2 messages while the agent "
        "is away, within its queue limits); true: start afresh at every connect."},
       [](Config& c, std::string_view v) { return AssignBool(v, c.mqtt.clean_session); },
       false},
      {{"mqtt.ack", "EDGE_AGENT_MQTT_ACK", "<commit; receipt with paho>",
        "When QoS 1/2 messages are acknowledged: commit (native client only: once their "
        "readings are committed, so a crash loses none the broker handed over) or receipt."},
       [](Config& c, std::string_view v) {
         if (v != "commit" && v != "receipt") {
           return Status::Error("must be commit or receipt, got " + Quoted(v));
         }
         c.mqtt.ack = std::string(v);
         return Status::Ok();
       },
       false},
      {{"mqtt.backoff_max", "EDGE_AGENT_MQTT_BACKOFF_MAX", "10s",
        "Longest delay between reconnect attempts (full jitter; the first is within 100ms), "
        "100ms to 1h."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, kMqttFirstRetryMs, kMaxMqttBackoffMs, c.mqtt.backoff_max_ms);
       },
       false},
      {{"store.path", "EDGE_AGENT_STORE_PATH", "/var/lib/edge-agent/edge-agent.db",
        "SQLite database file (readings ring and outbox)."},
       [](Config& c, std::string_view v) {
         if (v.empty()) return Status::Error("must not be empty");
         c.store.path = std::string(v);
         return Status::Ok();
       },
       false},
      {{"store.commit_interval", "EDGE_AGENT_STORE_COMMIT_INTERVAL", "100ms",
        "Group-commit window, 1ms to 1m; readings of at most this window are lost in a "
        "crash."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 1, kMaxCommitIntervalMs, c.store.commit_interval_ms);
       },
       false},
      {{"store.alert_commit_window", "EDGE_AGENT_STORE_ALERT_COMMIT_WINDOW", "10ms",
        "Least time between two outbox commits (each one sync), 0 to 1s: an alert within "
        "this window of the last commit waits for its end and shares one commit with the "
        "others; a lone alert commits at once. 0: one commit per cycle."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 0, kMaxAlertCommitWindowMs, c.store.alert_commit_window_ms);
       },
       false},
      {{"store.max_bytes", "EDGE_AGENT_STORE_MAX_BYTES", "256MiB",
        "Bound of the database content (outbox, readings ring, dead letters), e.g. 256MiB; "
        "0 disables it. Over it, the oldest lowest-priority rows are evicted, alerts last "
        "(docs/operations.md)."},
       [](Config& c, std::string_view v) {
         Result<int64_t> n = ParseBytes(v);
         if (!n.ok()) return n.status();
         c.store.max_bytes = *n;
         return Status::Ok();
       },
       false},
      {{"store.readings_share", "EDGE_AGENT_STORE_READINGS_SHARE", "0.5",
        "Fraction of store.max_bytes for the raw readings ring, 0 to 0.95; the outbox gets "
        "the rest (and its dead-letter table a tenth of that)."},
       [](Config& c, std::string_view v) {
         const std::string text(TrimBlanks(v));
         char* end = nullptr;
         const double share = std::strtod(text.c_str(), &end);
         if (text.empty() || end != text.c_str() + text.size()) {
           return Status::Error("expected a number from 0 to 0.95, got " + Quoted(v));
         }
         if (Status s = CheckShare(share); !s.ok()) return s;
         c.store.readings_share = share;
         return Status::Ok();
       },
       false},
      {{"store.retention", "EDGE_AGENT_STORE_RETENTION", "24h",
        "How long raw readings are kept in the ring (within its byte share), 1s to 365d."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 1'000, kMaxRetentionMs, c.store.retention_ms);
       },
       false},
      {{"store.rollup_interval", "EDGE_AGENT_STORE_ROLLUP_INTERVAL", "1m",
        "Interval of the per-sensor rollups (count, min, max, mean, last) queued for the "
        "console, 1s to 1d."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 1'000, kMaxRollupIntervalMs, c.store.rollup_interval_ms);
       },
       false},
      {{"store.max_pages", "EDGE_AGENT_STORE_MAX_PAGES", "0",
        "Testing knob: SQLite max_page_count (pages of 4 KiB), to make the database \"full\" "
        "at a chosen size; 0 leaves SQLite's limit."},
       [](Config& c, std::string_view v) { return AssignInt(v, 0, kMaxPages, c.store.max_pages); },
       false},
      {{"http.listen", "EDGE_AGENT_HTTP_LISTEN", "0.0.0.0:9102",
        "HOST:PORT of the /metrics, /healthz and /readyz endpoints; port 0 picks a free "
        "port (logged at start)."},
       [](Config& c, std::string_view v) {
         if (Status s = CheckHostPort(v, /*allow_port_zero=*/true); !s.ok()) return s;
         c.http.listen = std::string(v);
         return Status::Ok();
       },
       false},
      {{"http.header_timeout", "EDGE_AGENT_HTTP_HEADER_TIMEOUT", "5s",
        "A connection to http.listen that has not sent a request's complete headers this long "
        "after it was accepted (or after the previous response) is closed; 100ms to 1m."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, kMinHeaderTimeoutMs, kMaxHeaderTimeoutMs,
                               c.http.header_timeout_ms);
       },
       false},
      {{"http.max_connections", "EDGE_AGENT_HTTP_MAX_CONNECTIONS", "64",
        "Open connections to http.listen in all, 1 to 10000; one more closes the oldest "
        "connection that is waiting for request headers."},
       [](Config& c, std::string_view v) {
         return AssignInt(v, 1, kMaxHttpConnections, c.http.max_connections);
       },
       false},
      {{"http.max_connections_per_client", "EDGE_AGENT_HTTP_MAX_CONNECTIONS_PER_CLIENT", "16",
        "Open connections to http.listen from one client IP address, 1 to 10000; one more "
        "closes that client's oldest connection waiting for request headers."},
       [](Config& c, std::string_view v) {
         return AssignInt(v, 1, kMaxHttpConnections, c.http.max_connections_per_client);
       },
       false},
      {{"http.readings_token_file", "EDGE_AGENT_HTTP_READINGS_TOKEN_FILE", "",
        "File holding the bearer token that GET /v1/readings requires; empty: /v1/readings "
        "answers loopback clients only (403 to others)."},
       [](Config& c, std::string_view v) {
         c.http.readings_token_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"console.url", "EDGE_AGENT_CONSOLE_URL", "",
        "Console base URL, http(s)://HOST[:PORT][/PATH]; empty disables the uplink."},
       [](Config& c, std::string_view v) {
         if (Status s = CheckConsoleUrl(v); !s.ok()) return s;
         c.console.url = std::string(v);
         return Status::Ok();
       },
       false},
      {{"console.require_tls", "EDGE_AGENT_CONSOLE_REQUIRE_TLS", "false",
        "true: refuse to start with an http:// console.url to a host other than localhost, "
        "127.0.0.0/8 or ::1 (false: a warning at start)."},
       [](Config& c, std::string_view v) { return AssignBool(v, c.console.require_tls); },
       false},
      {{"console.token_file", "EDGE_AGENT_CONSOLE_TOKEN_FILE", "",
        "File holding this node's bearer token; required when console.url is set."},
       [](Config& c, std::string_view v) {
         c.console.token_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"console.ca_file", "EDGE_AGENT_CONSOLE_CA_FILE", "",
        "PEM CA bundle to verify an https:// console; empty uses the system CAs."},
       [](Config& c, std::string_view v) {
         c.console.ca_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"console.cert_file", "EDGE_AGENT_CONSOLE_CERT_FILE", "",
        "Client certificate (PEM chain) for an https:// console that asks for one (mutual "
        "TLS); with console.key_file. A changed file is read at the next connection."},
       [](Config& c, std::string_view v) {
         c.console.cert_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"console.key_file", "EDGE_AGENT_CONSOLE_KEY_FILE", "",
        "Private key (PEM) of console.cert_file; a changed file is read at the next connection."},
       [](Config& c, std::string_view v) {
         c.console.key_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"console.batch_max_items", "EDGE_AGENT_CONSOLE_BATCH_MAX_ITEMS", "500",
        "Most outbox rows per upload, 1 to 100000."},
       [](Config& c, std::string_view v) {
         return AssignInt(v, 1, kMaxBatchItems, c.console.batch_max_items);
       },
       false},
      {{"console.timeout", "EDGE_AGENT_CONSOLE_TIMEOUT", "10s",
        "Timeout of each request to the console, 1ms to 1h."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 1, kMaxTimeoutMs, c.console.timeout_ms);
       },
       false},
      {{"console.backoff_initial", "EDGE_AGENT_CONSOLE_BACKOFF_INITIAL", "500ms",
        "First retry delay after a failed upload (full jitter), 1ms to 1d."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 1, kMaxBackoffMs, c.console.backoff_initial_ms);
       },
       false},
      {{"console.backoff_max", "EDGE_AGENT_CONSOLE_BACKOFF_MAX", "30s",
        "Longest retry delay, at least console.backoff_initial, at most 1d."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 1, kMaxBackoffMs, c.console.backoff_max_ms);
       },
       false},
      {{"console.linger", "EDGE_AGENT_CONSOLE_LINGER", "20ms",
        "After an idle spell or a batch that was not full, how long the uplink waits for "
        "more rows before sending, so that alerts raised together share one compressed "
        "batch; 0 to 10s (0: at once)."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, 0, kMaxLingerMs, c.console.linger_ms);
       },
       false},
      {{"sync.status_interval", "EDGE_AGENT_SYNC_STATUS_INTERVAL", "60s",
        "Interval of the status heartbeat to the console (POST /v1/status), 1s to 1d."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, kMinStatusIntervalMs, kMaxStatusIntervalMs,
                               c.sync.status_interval_ms);
       },
       false},
      {{"sync.policy_key", "EDGE_AGENT_SYNC_POLICY_KEY", "",
        "PEM Ed25519 public key file that console policies must be signed with; empty turns "
        "the policy channel off (the local policy file is used). Needs console.url."},
       [](Config& c, std::string_view v) {
         c.sync.policy_key = std::string(v);
         return Status::Ok();
       },
       false},
      {{"sync.policy_poll_interval", "EDGE_AGENT_SYNC_POLICY_POLL_INTERVAL", "30s",
        "Interval of policy polling when the console cannot hold a WebSocket, 1s to 1d."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, kMinPolicyPollIntervalMs, kMaxPolicyPollIntervalMs,
                               c.sync.policy_poll_interval_ms);
       },
       false},
      {{"policy", "EDGE_AGENT_POLICY", "",
        "Local policy file (YAML or JSON) of alert rules; empty: none."},
       [](Config& c, std::string_view v) {
         c.policy_file = std::string(v);
         return Status::Ok();
       },
       false},
      {{"log.level", "EDGE_AGENT_LOG_LEVEL", "info", "trace, debug, info, warn or error."},
       [](Config& c, std::string_view v) {
         if (Status s = CheckLogLevel(v); !s.ok()) return s;
         c.log_level = std::string(v);
         return Status::Ok();
       },
       false},
      {{"queue.capacity", "EDGE_AGENT_QUEUE_CAPACITY", "65536",
        "Ingest queue size in messages, 1 to 16777216; when full the oldest is dropped and "
        "counted."},
       [](Config& c, std::string_view v) {
         return AssignInt(v, 1, kMaxQueueCapacity, c.queue_capacity);
       },
       false},
      {{"queue.max_bytes", "EDGE_AGENT_QUEUE_MAX_BYTES", "16MiB",
        "Ingest queue bound in topic + payload bytes, 1MiB to 4GiB; when full the oldest "
        "messages are dropped and counted (reason queue_full)."},
       [](Config& c, std::string_view v) {
         Result<int64_t> n = ParseBytes(v);
         if (!n.ok()) return n.status();
         if (*n < kMinQueueBytes || *n > kMaxQueueBytes) {
           return Status::Error("must be between 1MiB and 4GiB");
         }
         c.queue_max_bytes = *n;
         return Status::Ok();
       },
       false},
      {{"sensors.max", "EDGE_AGENT_SENSORS_MAX", "10000",
        "Most sensors the rules engine keeps state for, 1 to 10000000; a new sensor beyond it "
        "is refused and counted (reason too_many_sensors) unless an idle one can be "
        "forgotten."},
       [](Config& c, std::string_view v) { return AssignInt(v, 1, kMaxSensors, c.max_sensors); },
       false},
      {{"sparkplug.max_nodes", "EDGE_AGENT_SPARKPLUG_MAX_NODES", "1024",
        "Most Sparkplug B edge nodes whose birth (metric names and aliases) is kept, 1 to "
        "1000000; the birth of one more is refused (too_many_nodes) until a node dies."},
       [](Config& c, std::string_view v) {
         return AssignInt(v, 1, 1'000'000, c.sparkplug_max_nodes);
       },
       false},
      {{"sparkplug.max_metrics", "EDGE_AGENT_SPARKPLUG_MAX_METRICS", "4096",
        "Most metric definitions (and devices) one Sparkplug B edge node may declare in its "
        "births, 1 to 1000000; a birth past it is refused (too_many_metrics)."},
       [](Config& c, std::string_view v) {
         return AssignInt(v, 1, 1'000'000, c.sparkplug_max_metrics);
       },
       false},
      {{"sensors.idle_after", "EDGE_AGENT_SENSORS_IDLE_AFTER", "10m",
        "A sensor without a reading this long (and no firing alert) is forgotten: its rule "
        "state goes, as if never seen. 1s to 30d."},
       [](Config& c, std::string_view v) {
         return AssignDuration(v, kMinSensorIdleMs, kMaxSensorIdleMs, c.sensor_idle_ms);
       },
       false},
  };
  return kFields;
}

const Field* FindField(std::string_view key) {
  for (const Field& f : Fields()) {
    if (f.doc.key == key) return &f;
  }
  return nullptr;
}

}  // namespace config_internal

const std::vector<ConfigKey>& ConfigKeys() {
  static const std::vector<ConfigKey> kKeys = [] {
    std::vector<ConfigKey> keys;
    for (const config_internal::Field& f : config_internal::Fields()) keys.push_back(f.doc);
    return keys;
  }();
  return kKeys;
}

}  // namespace edge::agent
