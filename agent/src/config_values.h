#pragma once

// The agent configuration's value checks: setters that parse one value's text, check it and
// assign it only when it is valid (used by the key table, config_fields.cc), and the checks of
// a whole Config (Validate, CheckConfig). Pure.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edge/agent/config.h"
#include "edge/agent/ingest.h"
#include "edge/common/status.h"

namespace edge::agent::config_internal {

// Ranges shared by the setters and Validate.
inline constexpr int64_t kMaxPayloadLimit = 268'435'455;  // largest MQTT packet
inline constexpr int64_t kMinKeepaliveMs = 1'000;
inline constexpr int64_t kMaxKeepaliveMs = 65'535'000;  // MQTT keepalive is a 16-bit second count
inline constexpr int64_t kMaxCommitIntervalMs = 60'000;
inline constexpr int64_t kMaxAlertCommitWindowMs = 1'000;
inline constexpr int64_t kMaxReadPauseMs = 50;
// mqtt.backoff_max: at least the first reconnect delay's ceiling (kMqttFirstRetryMs,
// ingest.h), at most an hour.
inline constexpr int64_t kMaxMqttBackoffMs = 3'600'000;
inline constexpr int64_t kMaxStoreBytes = int64_t{1} << 50;
inline constexpr int64_t kMaxRetentionMs = int64_t{365} * 86'400'000;
inline constexpr int64_t kMaxRollupIntervalMs = 86'400'000;
inline constexpr int64_t kMaxPages = 4'294'967'294;
inline constexpr int64_t kMaxBatchItems = 100'000;
inline constexpr int64_t kMaxTimeoutMs = 3'600'000;
inline constexpr int64_t kMaxBackoffMs = 86'400'000;
inline constexpr int64_t kMaxLingerMs = 10'000;
inline constexpr int64_t kMinStatusIntervalMs = 1'000;
inline constexpr int64_t kMaxStatusIntervalMs = 86'400'000;
inline constexpr int64_t kMinPolicyPollIntervalMs = 1'000;
inline constexpr int64_t kMaxPolicyPollIntervalMs = 86'400'000;
inline constexpr int64_t kMaxQueueCapacity = 16'777'216;
inline constexpr int64_t kMinHeaderTimeoutMs = 100;
inline constexpr int64_t kMaxHeaderTimeoutMs = 60'000;
inline constexpr int64_t kMaxHttpConnections = 10'000;
// The ingest queue's byte bound holds at least a few of the largest messages.
inline constexpr int64_t kMinQueueBytes = 1 << 20;
inline constexpr int64_t kMaxQueueBytes = int64_t{4} << 30;
inline constexpr int64_t kMaxSensors = 10'000'000;
inline constexpr int64_t kMinSensorIdleMs = 1'000;
inline constexpr int64_t kMaxSensorIdleMs = 30LL * 86'400'000;
inline constexpr size_t kMaxNodeIdLength = 253;  // a Kubernetes node name fits
inline constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

// `v` in single quotes, for error messages.
std::string Quoted(std::string_view v);

// `parts` separated by `separator`.
std::string Join(const std::vector<std::string>& parts, std::string_view separator);

// A decimal integer in [lo, hi], or an error naming the range.
Result<int64_t> IntInRange(std::string_view text, int64_t lo, int64_t hi);

// `ms` is within [lo, hi] milliseconds; the error spells the bounds as durations.
Status CheckDurationRange(int64_t ms, int64_t lo, int64_t hi);

// A duration such as 500ms, 5s or 1h, in milliseconds within [lo, hi].
Result<int64_t> DurationInRange(std::string_view text, int64_t lo, int64_t hi);

// Bytes: an integer with an optional unit B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB.
Result<int64_t> ParseBytes(std::string_view text);

// A share of the store from 0 to 0.95.
Status CheckShare(double share);

// An MQTT keepalive: whole seconds within the 16-bit range.
Status CheckKeepalive(int64_t ms);

// A node id: [A-Za-z0-9_.-]+, at most kMaxNodeIdLength characters.
Status CheckNodeId(std::string_view id);

// HOST:PORT with a name or IPv4 host, or [IPv6]:PORT. Port 1..65535, or 0 where the
// caller allows it (listen on any free port).
Status CheckHostPort(std::string_view text, bool allow_port_zero = false);

// tcp:// and ssl:// as Paho spells them; mqtt:// and mqtts:// become those.
Result<std::string> NormalizeMqttUrl(std::string_view url);

// Empty, or http(s)://HOST[:PORT][/PATH].
Status CheckConsoleUrl(std::string_view url);

// An MQTT subscription filter: '#' only as the whole last level, '+' only as a whole level.
Status CheckTopic(std::string_view topic);

// At least one topic, each valid (CheckTopic).
Status CheckTopics(const std::vector<std::string>& topics);

// "native" or "paho".
Status CheckMqttClient(std::string_view client);

// One of kLogLevels.
Status CheckLogLevel(std::string_view level);

// Setters: assign to `field` only when the text is valid.
Status AssignDuration(std::string_view text, int64_t lo, int64_t hi, int64_t& field);

Status AssignBool(std::string_view text, bool& field);

// Checks every topic of a YAML sequence, then assigns mqtt.topics.
Status AssignTopicList(std::vector<std::string> topics, Config& c);

// A comma-separated topic list (environment or --set).
Status SetTopics(Config& c, std::string_view text);

// Validate's work: every value in range and the cross-key rules; errors joined by "; ".
Status CheckConfig(const Config& c);

// An integer in [lo, hi] cast to the field's type.
template <typename T>
Status AssignInt(std::string_view text, int64_t lo, int64_t hi, T& field) {
  Result<int64_t> v = IntInRange(text, lo, hi);
  if (!v.ok()) return v.status();
  field = static_cast<T>(*v);
  return Status::Ok();
}

}  // namespace edge::agent::config_internal
