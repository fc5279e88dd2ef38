#include "config_values.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <system_error>

#include "broker_url.h"
#include "edge/cloudsync/console_url.h"
#include "edge/cloudsync/policy_message.h"
#include "edge/common/strings.h"
#include "edge/common/url.h"
#include "edge/rules/duration.h"

namespace edge::agent {
namespace config_internal {

std::string Quoted(std::string_view v) { return "'" + std::string(v) + "'"; }

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
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
  Result<int64_t> n = IntInRange(TrimBlanks(digits), 0, kMaxStoreBytes);
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

// HOST:PORT with a name or IPv4 host, or [IPv6]:PORT. Port 1..65535, or 0 where the
// caller allows it (listen on any free port).
Status CheckHostPort(std::string_view text, bool allow_port_zero) {
  static constexpr UrlScheme kScheme[] = {{"tcp", 0}};
  UrlPart refused = UrlPart::kNone;
  const Result<Url> url =
      ParseUrl("tcp://" + std::string(text), kScheme, "address", allow_port_zero, &refused);
  if (url.ok() && url->port_written && url->path.empty()) return Status::Ok();
  if (refused == UrlPart::kPort) {
    return Status::Error("port must be from " + std::to_string(allow_port_zero ? 0 : 1) +
                         " to 65535 in " + Quoted(text));
  }
  return Status::Error("expected HOST:PORT, got " + Quoted(text));
}

Result<std::string> NormalizeMqttUrl(std::string_view url) {
  UrlPart refused = UrlPart::kNone;
  const Result<BrokerUrl> broker = ParseBrokerUrl(url, &refused);
  if (broker.ok() && broker->url.port_written && broker->url.path.empty()) {
    return std::string(broker->tls ? "ssl://" : "tcp://") + broker->url.HostPort();
  }
  if (refused == UrlPart::kScheme) {
    return Status::Error(
        "expected tcp://HOST:PORT or ssl://HOST:PORT (mqtt://, mqtts:// also "
        "accepted), got " +
        Quoted(url));
  }
  return Status::Error("expected tcp://HOST:PORT or ssl://HOST:PORT, got " + Quoted(url));
}

Status CheckConsoleUrl(std::string_view url) {
  if (url.empty()) return Status::Ok();
  if (cloudsync::ParseConsoleUrl(url).ok()) return Status::Ok();
  return Status::Error("expected http://HOST[:PORT][/PATH] or https://..., got " + Quoted(url));
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

Status AssignDuration(std::string_view text, int64_t lo, int64_t hi, int64_t& field) {
  Result<int64_t> v = DurationInRange(text, lo, hi);
  if (!v.ok()) return v.status();
  field = *v;
  return Status::Ok();
}

Status AssignBool(std::string_view text, bool& field) {
  const std::string_view t = TrimBlanks(text);
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
  if (!TrimBlanks(text).empty()) {
    size_t start = 0;
    while (true) {
      const size_t comma = text.find(',', start);
      topics.emplace_back(TrimBlanks(text.substr(start, comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  return AssignTopicList(std::move(topics), c);
}

Status CheckConfig(const Config& c) {
  std::vector<std::string> errors;
  auto check = [&errors](std::string_view key, const Status& s) {
    if (!s.ok()) errors.push_back(std::string(key) + ": " + s.message());
  };
  // A client certificate needs its key and the key its certificate.
  auto check_pair = [&check](const std::string& section, const std::string& cert,
                             const std::string& key) {
    if (cert.empty() == key.empty()) return;
    const std::string cert_key = section + ".cert_file";
    const std::string key_key = section + ".key_file";
    check(cert.empty() ? cert_key : key_key,
          Status::Error("must be set with " + (cert.empty() ? key_key : cert_key)));
  };
  auto range = [](int64_t v, int64_t lo, int64_t hi) {
    if (v >= lo && v <= hi) return Status::Ok();
    return Status::Error("must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
                         ", got " + std::to_string(v));
  };
  check("node_id", CheckNodeId(c.node_id));
  const Result<std::string> mqtt_url = NormalizeMqttUrl(c.mqtt.url);
  check("mqtt.url", mqtt_url.status());
  check("mqtt.client", CheckMqttClient(c.mqtt.client));
  check("mqtt.topics", CheckTopics(c.mqtt.topics));
  check("mqtt.qos", range(c.mqtt.qos, 0, 2));
  check("mqtt.max_payload_bytes",
        c.mqtt.max_payload_bytes > static_cast<size_t>(kMaxPayloadLimit)
            ? Status::Error("must be at most " + std::to_string(kMaxPayloadLimit))
            : range(static_cast<int64_t>(c.mqtt.max_payload_bytes), 1, kMaxPayloadLimit));
  check("mqtt.keepalive", CheckKeepalive(c.mqtt.keepalive_ms));
  check("mqtt.read_pause", CheckDurationRange(c.mqtt.read_pause_ms, 0, kMaxReadPauseMs));
  check("mqtt.backoff_max",
        CheckDurationRange(c.mqtt.backoff_max_ms, kMqttFirstRetryMs, kMaxMqttBackoffMs));
  if (!c.mqtt.username.empty() && !c.mqtt.username_file.empty()) {
    check("mqtt.username_file", Status::Error("set either mqtt.username or mqtt.username_file"));
  }
  if (c.mqtt.client == "paho" && c.mqtt.ack == "commit") {
    check("mqtt.ack", Status::Error("commit needs mqtt.client: native (Paho acknowledges a "
                                    "message on receipt)"));
  }
  check_pair("mqtt", c.mqtt.cert_file, c.mqtt.key_file);
  check_pair("console", c.console.cert_file, c.console.key_file);
  if (!c.mqtt.cert_file.empty()) {
    if (mqtt_url.ok() && !mqtt_url->starts_with("ssl://")) {
      check("mqtt.cert_file", Status::Error("needs an ssl:// mqtt.url (a client certificate is "
                                            "only sent over TLS), got " +
                                            Quoted(c.mqtt.url)));
    }
  }
  check("store.path", c.store.path.empty() ? Status::Error("must not be empty") : Status::Ok());
  check("store.commit_interval",
        CheckDurationRange(c.store.commit_interval_ms, 1, kMaxCommitIntervalMs));
  check("store.alert_commit_window",
        CheckDurationRange(c.store.alert_commit_window_ms, 0, kMaxAlertCommitWindowMs));
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

}  // namespace config_internal

Status Validate(const Config& c) { return config_internal::CheckConfig(c); }

bool IsCleartextRemoteUrl(std::string_view console_url) {
  const Result<cloudsync::ConsoleUrl> url = cloudsync::ParseConsoleUrl(console_url);
  if (!url.ok()) return console_url.substr(0, 7) == "http://";  // Validate reports it
  if (url->tls) return false;
  const std::string& host = url->host;
  if (IEquals(host, "localhost") || IEquals(host, "localhost.")) return false;
  unsigned char addr[16];
  if (inet_pton(AF_INET, host.c_str(), addr) == 1) return addr[0] != 127;
  if (inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    static constexpr unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                     0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(addr, kLoopback6, sizeof(addr)) != 0;
  }
  return true;  // any other name
}

}  // namespace edge::agent
