#pragma once

// Turns one MQTT message into sensor readings. This is the pipeline's hot path and its
// input is untrusted: decoding never throws, never crashes, and its work is bounded by
// DecodeOptions (payload size, JSON nesting depth, readings per message). No DOM is
// built; JSON is read with a streaming (SAX) parser, except a flat object of numbers, the
// most common shape, which a small scanner reads with the same result.
//
// Accepted payloads (docs/payloads.md has the full description with examples):
// - plain number text (`21.5`, ` 21.5\n`, `-3e2`, also a top-level JSON number): one
//   reading, sensor = topic;
// - a JSON object: a top-level `value` that is a number or boolean gives sensor = topic;
//   every other number or boolean leaf gives sensor = topic + "/" + its path, keys and
//   array indexes joined by "/"; booleans are 1/0, strings and nulls are ignored;
//   top-level `ts`, `timestamp` or `time` (any case) is the timestamp of every reading
//   of the message: a number (epoch seconds if < 1e11, else epoch milliseconds), a
//   numeric string, or ISO-8601 text (no zone = UTC);
// - a JSON array: like an object, with the index as the path segment;
// - a top-level JSON boolean: one reading (1/0), sensor = topic.
//
// Thread safety: stateless; safe to call from any thread.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "edge/rules/reading.h"

namespace edge::agent {

// Why a payload produced no readings. Values are stable; ReasonLabel gives the metric
// label for each.
enum class RejectReason {
  kTooLarge,         // payload larger than DecodeOptions::max_payload_bytes
  kEmpty,            // empty or whitespace only
  kNotJson,          // neither a number nor well-formed JSON
  kNoNumbers,        // well-formed, but no number or boolean leaf
  kNonFinite,        // `nan`, `inf`, or a number that overflows a double (1e999)
  kBadTimestamp,     // a timestamp key whose value cannot be read as a time
  kTooDeep,          // JSON nested deeper than DecodeOptions::max_depth
  kTooManyReadings,  // more than DecodeOptions::max_readings readings
  kTopicTooLong,     // the topic, or a sensor id made from it (topic/path), is longer than
                     // DecodeOptions::max_sensor_id_bytes
};

// Every reason, in declaration order (for registering each counter up front).
inline constexpr RejectReason kAllRejectReasons[] = {
    RejectReason::kTooLarge,  RejectReason::kEmpty,           RejectReason::kNotJson,
    RejectReason::kNoNumbers, RejectReason::kNonFinite,       RejectReason::kBadTimestamp,
    RejectReason::kTooDeep,   RejectReason::kTooManyReadings, RejectReason::kTopicTooLong};

// Help of edge_agent_readings_rejected_total, whose series are registered in several places
// (the reasons above, and too_many_sensors, counted per reading by the pipeline).
inline constexpr char kReadingsRejectedHelp[] =
    "MQTT messages (too_many_sensors: readings) refused before the rules, by reason";

// Prometheus label value: "too_large", "empty", "not_json", "no_numbers", "non_finite",
// "bad_timestamp", "too_deep", "too_many_readings", "topic_too_long".
std::string_view ReasonLabel(RejectReason reason);

struct DecodeOptions {
  size_t max_payload_bytes = 64 * 1024;  // larger payloads are rejected before parsing
  size_t max_readings = 256;             // per message
  int max_depth = 8;                     // nested JSON containers; `{"a":1}` is depth 1
  // Longest sensor id, in bytes: what the console accepts (its limit is 1,024). A longer
  // topic is rejected before its payload is read; a payload whose paths make a longer id is
  // rejected whole.
  size_t max_sensor_id_bytes = 1024;
};

// Appends the readings of one message to `out`. `receive_ts_ms` (ms since the epoch) is
// the timestamp of readings whose payload carries none. Returns nullopt on success (at
// least one reading was appended); on reject returns the reason and leaves `out` exactly
// as it was.
std::optional<RejectReason> DecodePayload(std::string_view topic, std::string_view payload,
                                          int64_t receive_ts_ms, const DecodeOptions& options,
                                          std::vector<rules::Reading>& out);

// A timestamp as payloads write it, in ms since the epoch: epoch seconds (< 1e11) or
// milliseconds as number text, or ISO-8601 (`2014-02-07 14:55:00`, `2014-02-07T14:55:00Z`,
// with an optional fraction and offset; no zone = UTC). Surrounding blanks are ignored.
// Used by `edge-agent replay` for recorded files.
std::optional<int64_t> ParseTimestamp(std::string_view text);

namespace internal {

// DecodePayload without its shortcut for flat objects of numbers (`{"value":N,"ts":N}`):
// every JSON payload goes through the streaming parser. Same contract and, for every
// input, the same result; the unit tests and the fuzz target check that it is.
std::optional<RejectReason> DecodePayloadWithParser(std::string_view topic,
                                                    std::string_view payload, int64_t receive_ts_ms,
                                                    const DecodeOptions& options,
                                                    std::vector<rules::Reading>& out);

}  // namespace internal

}  // namespace edge::agent
