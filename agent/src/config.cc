#include "edge/agent/config.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <set>
#include <system_error>

#include "edge/cloudsync/policy_message.h"
#include "edge/rules/duration.h"
#include "edge/rules/yaml_document.h"

namespace edge::agent {
namespace {

// Ranges shared by the setters and Validate.
constexpr int64_t kMaxPayloadLimit = 268'435'455;  // largest MQTT packet
constexpr int64_t kMinKeepaliveMs = 1'000;
constexpr int64_t kMaxKeepaliveMs = 65'535'000;  // MQTT keepalive is a 16-bit second count
constexpr int64_t kMaxCommitIntervalMs = 60'000;
constexpr int64_t kMaxReadPauseMs = 50;
constexpr int64_t kMaxStoreBytes = int64_t{1} << 50;
constexpr int64_t kMaxRetentionMs = int64_t{365} * 86'400'000;
constexpr int64_t kMaxRollupIntervalMs = 86'400'000;
constexpr int64_t kMaxPages = 4'294'967'294;
constexpr int64_t kMaxBatchItems = 100'000;
constexpr int64_t kMaxTimeoutMs = 3'600'000;
constexpr int64_t kMaxBackoffMs = 86'400'000;
constexpr int64_t kMaxLingerMs = 10'000;
constexpr int64_t kMinStatusIntervalMs = 1'000;
constexpr int64_t kMaxStatusIntervalMs = 86'400'000;
constexpr int64_t kMinPolicyPollIntervalMs = 1'000;
constexpr int64_t kMaxPolicyPollIntervalMs = 86'400'000;
constexpr int64_t kMaxQueueCapacity = 16'777'216;
constexpr int64_t kMinHeaderTimeoutMs = 100;
constexpr int64_t kMaxHeaderTimeoutMs = 60'000;
constexpr int64_t kMaxHttpConnections = 10'000;
// The ingest queue's byte bound holds at least a few of the largest messages.
constexpr int64_t kMinQueueBytes = 1 << 20;
constexpr int64_t kMaxQueueBytes = int64_t{4} << 30;
constexpr int64_t kMaxSensors = 10'000'000;
constexpr int64_t kMinSensorIdleMs = 1'000;
constexpr int64_t kMaxSensorIdleMs = 30LL * 86'400'000;
constexpr size_t kMaxNodeIdLength = 253;  // a Kubernetes node name fits
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

std::string Quoted(std::string_view v) { return "'" + std::string(v) + "'"; }

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ---- value checks, used both when a value is set and by Validate ----

Result<int64_t> IntInRange(std::string_view text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || v < lo || v > hi) {
    return Status::Error("expected an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi) + ", got " + Quoted(text));
  }
  return v;
}

Status CheckDurationRange(int64_t ms, int64_t lo, int64_t hi) {
  if (ms < lo || ms > hi) {
    return Status::Error("must be from " + rules::FormatDuration(lo) + " to " +
                         rules::FormatDuration(hi) + ", got " + rules::FormatDuration(ms));
  }
  return Status::Ok();
}

Result<int64_t> DurationInRange(std::string_view text, int64_t lo, int64_t hi) {
  Result<int64_t> ms = rules::ParseDuration(text);
  if (!ms.ok()) return ms.status();
  if (Status s = CheckDurationRange(*ms, lo, hi); !s.ok()) return s;
  return *ms;
}

// Bytes: an integer with an optional unit B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB.
Result<int64_t> ParseBytes(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    int64_t factor;
  };
  constexpr Unit kUnits[] = {{"KiB", 1 << 10}, {"MiB", 1 << 20},  {"GiB", 1 << 30},
                             {"KB", 1'000},    {"MB", 1'000'000}, {"GB", 1'000'000'000},
                             {"B", 1}};
  std::string_view digits = text;
  int64_t factor = 1;
  for (const Unit& u : kUnits) {
    if (digits.size() > u.suffix.size() && digits.ends_with(u.suffix)) {
      digits.remove_suffix(u.suffix.size());
      factor = u.factor;
      break;
    }
  }
  Result<int64_t> n = IntInRange(TrimSpaces(digits), 0, kMaxStoreBytes);
  if (!n.ok() || *n > kMaxStoreBytes / factor) {
    return Status::Error("expected a size such as 256MiB (B, KB, MB, GB, KiB, MiB, GiB) up to " +
                         std::to_string(kMaxStoreBytes) + " bytes, got " + Quoted(text));
  }
  return *n * factor;
}

Status CheckShare(double share) {
  if (!(share >= 0.0 && share <= 0.95)) {
    return Status::Error("must be from 0 to 0.95, got " + std::to_string(share));
  }
  return Status::Ok();
}

Status CheckKeepalive(int64_t ms) {
  if (Status s = CheckDurationRange(ms, kMinKeepaliveMs, kMaxKeepaliveMs); !s.ok()) return s;
  if (ms % 1000 != 0) return Status::Error("must be whole seconds (MQTT keepalive resolution)");
  return Status::Ok();
}

Status CheckNodeId(std::string_view id) {
  if (id.empty()) return Status::Error("is required (set node_id or EDGE_AGENT_NODE_ID)");
  const bool charset_ok = std::all_of(id.begin(), id.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
  });
  if (!charset_ok || id.size() > kMaxNodeIdLength) {
    return Status::Error("must be 1 to 253 of [A-Za-z0-9_.-], got " + Quoted(id));
  }
  return Status::Ok();
}

bool IsHostChar(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '.' || ch == '_';
}

// HOST:PORT with a name or IPv4 host, or [IPv6]:PORT. Port 1..65535, or 0 where the
// caller allows it (listen on any free port).
Status CheckHostPort(std::string_view text, bool allow_port_zero = false) {
  const Status bad = Status::Error("expected HOST:PORT, got " + Quoted(text));
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    const bool v6_ok = std::all_of(host.begin(), host.end(), [](char ch) {
      return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
             ch == ':' || ch == '.';
    });
    if (host.empty() || !v6_ok) return bad;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), IsHostChar)) return bad;
  }
  const int64_t min_port = allow_port_zero ? 0 : 1;
  if (!IntInRange(port, min_port, 65535).ok()) {
    return Status::Error("port must be from " + std::to_string(min_port) + " to 65535 in " +
                         Quoted(text));
  }
  return Status::Ok();
}

// tcp:// and ssl:// as Paho spells them; mqtt:// and mqtts:// become those.
Result<std::string> NormalizeMqttUrl(std::string_view url) {
  struct Scheme {
    std::string_view written;
    std::string_view stored;
  };
  constexpr Scheme kSchemes[] = {
      {"tcp://", "tcp://"}, {"ssl://", "ssl://"}, {"mqtt://", "tcp://"}, {"mqtts://", "ssl://"}};
  for (const Scheme& scheme : kSchemes) {
    if (url.substr(0, scheme.written.size()) != scheme.written) continue;
    const std::string_view rest = url.substr(scheme.written.size());
    if (Status s = CheckHostPort(rest); !s.ok()) {
      return Status::Error("expected tcp://HOST:PORT or ssl://HOST:PORT, got " + Quoted(url));
    }
    return std::string(scheme.stored) + std::string(rest);
  }
  return Status::Error(
      "expected tcp://HOST:PORT or ssl://HOST:PORT (mqtt://, mqtts:// also "
      "accepted), got " +
      Quoted(url));
}

// Empty, or http(s)://HOST[:PORT][/PATH].
Status CheckConsoleUrl(std::string_view url) {
  if (url.empty()) return Status::Ok();
  const Status bad =
      Status::Error("expected http://HOST[:PORT][/PATH] or https://..., got " + Quoted(url));
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    rest = url.substr(8);
  } else {
    return bad;
  }
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view path =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (std::any_of(path.begin(), path.end(),
                  [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; })) {
    return bad;
  }
  const bool has_port =
      authority.find(':') != std::string_view::npos &&
      (authority.front() != '[' || authority.find("]:") != std::string_view::npos);
  if (has_port) return CheckHostPort(authority).ok() ? Status::Ok() : bad;
  if (authority.empty()) return bad;
  if (authority.front() == '[') return authority.back() == ']' ? Status::Ok() : bad;
  return std::all_of(authority.begin(), authority.end(), IsHostChar) ? Status::Ok() : bad;
}

// An MQTT subscription filter: '#' only as the whole last level, '+' only as a whole level.
Status CheckTopic(std::string_view topic) {
  if (topic.empty()) return Status::Error("a topic must not be empty");
  if (topic.size() > 65535 || topic.find('\0') != std::string_view::npos) {
    return Status::Error("invalid topic " + Quoted(topic));
  }
  for (size_t i = 0; i < topic.size(); ++i) {
    const char ch = topic[i];
    if (ch != '#' && ch != '+') continue;
    const bool level_start = i == 0 || topic[i - 1] == '/';
    const bool level_end = i + 1 == topic.size() || topic[i + 1] == '/';
    if (!level_start || !level_end || (ch == '#' && i + 1 != topic.size())) {
      return Status::Error("invalid topic filter " + Quoted(topic) +
                           " ('+' must be a whole level, '#' the whole last level)");
    }
  }
  return Status::Ok();
}

Status CheckTopics(const std::vector<std::string>& topics) {
  if (topics.empty()) return Status::Error("at least one topic is required");
  for (const std::string& t : topics) {
    if (Status s = CheckTopic(t); !s.ok()) return s;
  }
  return Status::Ok();
}

Status CheckMqttClient(std::string_view client) {
  if (client == "native" || client == "paho") return Status::Ok();
  return Status::Error("expected native or paho, got " + Quoted(client));
}

Status CheckLogLevel(std::string_view level) {
  for (std::string_view known : kLogLevels) {
    if (level == known) return Status::Ok();
  }
  return Status::Error("expected one of trace, debug, info, warn, error, got " + Quoted(level));
}

// ---- setters: parse text, check it, and assign only when it is valid ----

template <typename T>
Status AssignInt(std::string_view text, int64_t lo, int64_t hi, T& field) {
  Result<int64_t> v = IntInRange(text, lo, hi);
  if (!v.ok()) return v.status();
  field = static_cast<T>(*v);
  return Status::Ok();
}

Status AssignDuration(std::string_view text, int64_t lo, int64_t hi, int64_t& field) {
  Result<int64_t> v = DurationInRange(text, lo, hi);
  if (!v.ok()) return v.status();
  field = *v;
  return Status::Ok();
}

Status AssignBool(std::string_view text, bool& field) {
  const std::string_view t = TrimSpaces(text);
  if (t == "true") {
    field = true;
  } else if (t == "false") {
    field = false;
  } else {
    return Status::Error("expected true or false, got " + Quoted(text));
  }
  return Status::Ok();
}

Status AssignTopicList(std::vector<std::string> topics, Config& c) {
  if (Status s = CheckTopics(topics); !s.ok()) return s;
  c.mqtt.topics = std::move(topics);
  return Status::Ok();
}

Status SetTopics(Config& c, std::string_view text) {
  std::vector<std::string> topics;
  if (!TrimSpaces(text).empty()) {
    size_t start = 0;
    while (true) {
      const size_t comma = text.find(',', start);
      topics.emplace_back(TrimSpaces(text.substr(start, comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  return AssignTopicList(std::move(topics), c);
}

using Setter = Status (*)(Config&, std::string_view);

struct Field {
  ConfigKey doc;
  Setter set;
  bool accepts_list;  // a YAML sequence is allowed (mqtt.topics)
};

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
         const std::string text(TrimSpaces(v));
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
        "After an idle spell, how long the uplink waits for more rows before sending, so "
        "that alerts raised together share one compressed batch; 0 to 10s (0: at once)."},
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

// ---- "did you mean" ----

char LowerAscii(char ch) {
  return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
}

// Optimal string alignment distance, case-insensitive: a swapped pair costs one edit.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = LowerAscii(a[i - 1]) == LowerAscii(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && LowerAscii(a[i - 1]) == LowerAscii(b[j - 2]) &&
          LowerAscii(a[i - 2]) == LowerAscii(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// "unknown key 'qso' in 'mqtt' (did you mean 'qos'?)"; `section` may be empty.
std::string UnknownKey(std::string_view key, const std::vector<std::string>& candidates,
                       std::string_view section = {}) {
  std::string message = "unknown key " + Quoted(key);
  if (!section.empty()) message += " in " + Quoted(section);
  if (key.size() > 200) return message;  // not worth comparing
  const size_t limit = std::max<size_t>(1, (key.size() + 2) / 4);
  const std::string* best = nullptr;
  size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const size_t distance = EditDistance(key, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = &candidate;
    }
  }
  if (best != nullptr) message += " (did you mean " + Quoted(*best) + "?)";
  return message;
}

// Names directly under `section` ("" for the top level), in table order, without duplicates.
std::vector<std::string> NamesIn(std::string_view section) {
  std::vector<std::string> names;
  for (const Field& f : Fields()) {
    std::string_view key = f.doc.key;
    if (!section.empty()) {
      if (key.size() <= section.size() || key.substr(0, section.size()) != section ||
          key[section.size()] != '.') {
        continue;
      }
      key.remove_prefix(section.size() + 1);
    } else {
      key = key.substr(0, key.find('.'));
    }
    if (std::find(names.begin(), names.end(), key) == names.end()) names.emplace_back(key);
  }
  return names;
}

bool IsSection(std::string_view name) {
  for (const Field& f : Fields()) {
    const std::string_view key = f.doc.key;
    if (key.size() > name.size() && key.substr(0, name.size()) == name && key[name.size()] == '.') {
      return true;
    }
  }
  return false;
}

// ---- YAML ----

class YamlReader {
 public:
  YamlReader(const std::string& source, Config& config) : source_(source), config_(config) {}

  void Root(const YAML::Node& root) {
    if (root.IsNull()) return;
    if (!root.IsMap()) {
      Error(root.Mark(), "expected a mapping of configuration keys at the top level");
      return;
    }
    const std::vector<std::string> names = NamesIn("");
    std::set<std::string> seen;
    for (auto it = root.begin(); it != root.end(); ++it) {
      std::string name;
      if (!KeyName(it->first, seen, name)) continue;
      if (const Field* field = FindField(name)) {
        Value(*field, it->first, it->second);
      } else if (IsSection(name)) {
        Section(name, it->second);
      } else {
        Error(it->first.Mark(), UnknownKey(name, names));
      }
    }
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  void Error(const YAML::Mark& mark, const std::string& message) {
    if (mark.is_null() || mark.line < 0 || mark.column < 0) {
      errors_.push_back(source_ + ": " + message);
    } else {
      errors_.push_back(source_ + ":" + std::to_string(mark.line + 1) + ":" +
                        std::to_string(mark.column + 1) + ": " + message);
    }
  }

  // Reads a mapping key as a plain name; reports non-scalar and repeated keys.
  bool KeyName(const YAML::Node& key, std::set<std::string>& seen, std::string& name) {
    if (!key.IsScalar()) {
      Error(key.Mark(), "a key must be a plain name");
      return false;
    }
    name = key.Scalar();
    if (!seen.insert(name).second) {
      Error(key.Mark(), "duplicate key " + Quoted(name));
      return false;
    }
    return true;
  }

  void Section(const std::string& section, const YAML::Node& value) {
    if (value.IsNull()) return;  // `mqtt:` with nothing under it keeps the defaults
    if (!value.IsMap()) {
      Error(value.Mark(), Quoted(section) + " must be a mapping of keys");
      return;
    }
    const std::vector<std::string> names = NamesIn(section);
    std::set<std::string> seen;
    for (auto it = value.begin(); it != value.end(); ++it) {
      std::string name;
      if (!KeyName(it->first, seen, name)) continue;
      if (const Field* field = FindField(section + "." + name)) {
        Value(*field, it->first, it->second);
      } else {
        Error(it->first.Mark(), UnknownKey(name, names, section));
      }
    }
  }

  void Value(const Field& field, const YAML::Node& key, const YAML::Node& value) {
    const std::string prefix = std::string(field.doc.key) + ": ";
    if (value.IsNull()) {
      // A key with nothing after it: an empty string where that is allowed. yaml-cpp puts
      // the mark of a missing value elsewhere, so errors point at the key.
      if (Status s = field.set(config_, ""); !s.ok()) Error(key.Mark(), prefix + "missing value");
      return;
    }
    if (value.IsScalar()) {
      if (Status s = field.set(config_, value.Scalar()); !s.ok()) {
        Error(value.Mark(), prefix + s.message());
      }
      return;
    }
    if (value.IsSequence() && field.accepts_list) {
      std::vector<std::string> items;
      for (const YAML::Node& item : value) {
        if (!item.IsScalar()) {
          Error(item.Mark(), prefix + "expected a list of strings");
          return;
        }
        if (Status s = CheckTopic(item.Scalar()); !s.ok()) {
          Error(item.Mark(), prefix + s.message());
          return;
        }
        items.push_back(item.Scalar());
      }
      if (Status s = AssignTopicList(std::move(items), config_); !s.ok()) {
        Error(value.Mark(), prefix + s.message());
      }
      return;
    }
    Error(value.Mark(), prefix + (value.IsSequence() ? "expected a single value, got a list"
                                                     : "expected a single value, got a mapping"));
  }

  const std::string& source_;
  Config& config_;
  std::vector<std::string> errors_;
};

std::string Position(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

Result<Config> ParseConfig(std::string_view yaml_text, const std::string& source_name) {
  Config config;
  try {
    // Never YAML::LoadAll: see edge/rules/yaml_document.h.
    const std::string text(yaml_text);
    auto documents = rules::CountYamlDocuments(text, source_name);
    if (!documents.ok()) return documents.status();
    if (documents->count > 1) {
      return Status::Error(source_name + ":" + std::to_string(documents->second_line) + ":" +
                           std::to_string(documents->second_column) +
                           ": expected one YAML document, found more");
    }
    if (documents->count == 0) return config;
    YamlReader reader(source_name, config);
    reader.Root(YAML::Load(text));
    if (!reader.errors().empty()) return Status::Error(Join(reader.errors(), "\n"));
  } catch (const YAML::Exception& e) {
    return Status::Error(Position(source_name, e.mark) + ": " + e.msg);
  } catch (const std::exception& e) {
    return Status::Error(source_name + ": " + e.what());
  }
  return config;
}

Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes) {
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) return Status::Error(path + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buffer[16384];
  while (true) {
    const size_t n = std::fread(buffer, 1, sizeof(buffer), file.get());
    text.append(buffer, n);
    if (text.size() > max_bytes) {
      return Status::Error(path + ": larger than " + std::to_string(max_bytes) + " bytes");
    }
    if (n < sizeof(buffer)) {
      if (std::ferror(file.get())) {
        return Status::Error(path + ": cannot read: " + std::strerror(errno));
      }
      break;
    }
  }
  return text;
}

Result<Config> LoadConfigFile(const std::string& path) {
  Result<std::string> text = ReadTextFile(path, kMaxConfigBytes);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path);
}

Status ApplyOverride(Config& c, std::string_view key, std::string_view value) {
  const Field* field = FindField(key);
  if (field == nullptr) {
    std::vector<std::string> keys;
    for (const Field& f : Fields()) keys.emplace_back(f.doc.key);
    return Status::Error(UnknownKey(key, keys));
  }
  if (Status s = field->set(c, value); !s.ok()) {
    return Status::Error(std::string(key) + ": " + s.message());
  }
  return Status::Ok();
}

Status ApplyEnvironment(
    Config& c, const std::function<std::optional<std::string>(const std::string&)>& getenv) {
  std::vector<std::string> errors;
  for (const Field& f : Fields()) {
    const std::string name(f.doc.env);
    const std::optional<std::string> value = getenv(name);
    if (!value) continue;
    if (Status s = f.set(c, *value); !s.ok()) errors.push_back(name + ": " + s.message());
  }
  if (!errors.empty()) return Status::Error(Join(errors, "; "));
  return Status::Ok();
}

Status Validate(const Config& c) {
  std::vector<std::string> errors;
  auto check = [&errors](std::string_view key, const Status& s) {
    if (!s.ok()) errors.push_back(std::string(key) + ": " + s.message());
  };
  auto range = [](int64_t v, int64_t lo, int64_t hi) {
    if (v >= lo && v <= hi) return Status::Ok();
    return Status::Error("must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
                         ", got " + std::to_string(v));
  };
  check("node_id", CheckNodeId(c.node_id));
  check("mqtt.url", NormalizeMqttUrl(c.mqtt.url).status());
  check("mqtt.client", CheckMqttClient(c.mqtt.client));
  check("mqtt.topics", CheckTopics(c.mqtt.topics));
  check("mqtt.qos", range(c.mqtt.qos, 0, 2));
  check("mqtt.max_payload_bytes",
        c.mqtt.max_payload_bytes > static_cast<size_t>(kMaxPayloadLimit)
            ? Status::Error("must be at most " + std::to_string(kMaxPayloadLimit))
            : range(static_cast<int64_t>(c.mqtt.max_payload_bytes), 1, kMaxPayloadLimit));
  check("mqtt.keepalive", CheckKeepalive(c.mqtt.keepalive_ms));
  check("mqtt.read_pause", CheckDurationRange(c.mqtt.read_pause_ms, 0, kMaxReadPauseMs));
  check("store.path", c.store.path.empty() ? Status::Error("must not be empty") : Status::Ok());
  check("store.commit_interval",
        CheckDurationRange(c.store.commit_interval_ms, 1, kMaxCommitIntervalMs));
  check("store.max_bytes", range(c.store.max_bytes, 0, kMaxStoreBytes));
  check("store.readings_share", CheckShare(c.store.readings_share));
  check("store.retention", CheckDurationRange(c.store.retention_ms, 1'000, kMaxRetentionMs));
  check("store.rollup_interval",
        CheckDurationRange(c.store.rollup_interval_ms, 1'000, kMaxRollupIntervalMs));
  check("store.max_pages", range(c.store.max_pages, 0, kMaxPages));
  check("http.listen", CheckHostPort(c.http.listen, /*allow_port_zero=*/true));
  check("http.header_timeout",
        CheckDurationRange(c.http.header_timeout_ms, kMinHeaderTimeoutMs, kMaxHeaderTimeoutMs));
  check(
      "http.max_connections",
      range(static_cast<int64_t>(std::min<size_t>(c.http.max_connections, kMaxHttpConnections + 1)),
            1, kMaxHttpConnections));
  check("http.max_connections_per_client",
        range(static_cast<int64_t>(
                  std::min<size_t>(c.http.max_connections_per_client, kMaxHttpConnections + 1)),
              1, kMaxHttpConnections));
  check("console.url", CheckConsoleUrl(c.console.url));
  if (c.console.require_tls && IsCleartextRemoteUrl(c.console.url)) {
    check("console.url",
          Status::Error("is http:// to a host off this node (" + Quoted(c.console.url) +
                        "): the node token and alerts would travel in clear text; use https:// "
                        "(console.require_tls is on)"));
  }
  if (!c.console.url.empty() && c.console.token_file.empty()) {
    check("console.token_file", Status::Error("is required when console.url is set"));
  }
  check("console.batch_max_items",
        c.console.batch_max_items > static_cast<size_t>(kMaxBatchItems)
            ? Status::Error("must be at most " + std::to_string(kMaxBatchItems))
            : range(static_cast<int64_t>(c.console.batch_max_items), 1, kMaxBatchItems));
  check("console.timeout", CheckDurationRange(c.console.timeout_ms, 1, kMaxTimeoutMs));
  check("console.backoff_initial",
        CheckDurationRange(c.console.backoff_initial_ms, 1, kMaxBackoffMs));
  check("console.backoff_max", CheckDurationRange(c.console.backoff_max_ms, 1, kMaxBackoffMs));
  if (c.console.backoff_max_ms < c.console.backoff_initial_ms) {
    check("console.backoff_max", Status::Error("must not be less than console.backoff_initial"));
  }
  check("sync.status_interval",
        CheckDurationRange(c.sync.status_interval_ms, kMinStatusIntervalMs, kMaxStatusIntervalMs));
  check("sync.policy_poll_interval",
        CheckDurationRange(c.sync.policy_poll_interval_ms, kMinPolicyPollIntervalMs,
                           kMaxPolicyPollIntervalMs));
  if (!c.sync.policy_key.empty()) {
    check("sync.policy_key", cloudsync::LoadVerifyKey(c.sync.policy_key).status());
    if (c.console.url.empty()) {
      check("sync.policy_key", Status::Error("needs console.url (the policy channel's console)"));
    }
  }
  check("log.level", CheckLogLevel(c.log_level));
  check("queue.capacity",
        c.queue_capacity > static_cast<size_t>(kMaxQueueCapacity)
            ? Status::Error("must be at most " + std::to_string(kMaxQueueCapacity))
            : range(static_cast<int64_t>(c.queue_capacity), 1, kMaxQueueCapacity));
  check("queue.max_bytes", range(c.queue_max_bytes, kMinQueueBytes, kMaxQueueBytes));
  check("sensors.max", c.max_sensors > static_cast<size_t>(kMaxSensors)
                           ? Status::Error("must be at most " + std::to_string(kMaxSensors))
                           : range(static_cast<int64_t>(c.max_sensors), 1, kMaxSensors));
  check("sensors.idle_after",
        CheckDurationRange(c.sensor_idle_ms, kMinSensorIdleMs, kMaxSensorIdleMs));
  if (!errors.empty()) return Status::Error(Join(errors, "; "));
  return Status::Ok();
}

bool IsCleartextRemoteUrl(std::string_view console_url) {
  if (console_url.substr(0, 7) != "http://") return false;
  std::string_view rest = console_url.substr(7);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  std::string host;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return true;
    host = std::string(authority.substr(1, close - 1));
  } else {
    host = std::string(authority.substr(0, authority.find(':')));
  }
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (host == "localhost" || host == "localhost.") return false;
  unsigned char addr[16];
  if (inet_pton(AF_INET, host.c_str(), addr) == 1) return addr[0] != 127;
  if (inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    static constexpr unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                     0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(addr, kLoopback6, sizeof(addr)) != 0;
  }
  return true;  // any other name
}

std::vector<std::string> ConfigWarnings(const Config& c) {
  std::vector<std::string> warnings;
  if (IsCleartextRemoteUrl(c.console.url)) {
    warnings.push_back("console.url " + Quoted(c.console.url) +
                       " is http:// to a host off this node: the node token and alerts travel "
                       "in clear text; use https:// (console.require_tls: true refuses this)");
  }
  return warnings;
}

std::string MqttClientId(const Config& c) {
  return c.mqtt.client_id.empty() ? "edge-agent-" + c.node_id : c.mqtt.client_id;
}

const std::vector<ConfigKey>& ConfigKeys() {
  static const std::vector<ConfigKey> kKeys = [] {
    std::vector<ConfigKey> keys;
    for (const Field& f : Fields()) keys.push_back(f.doc);
    return keys;
  }();
  return kKeys;
}

}  // namespace edge::agent
