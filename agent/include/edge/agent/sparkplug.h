#pragma once

// Sparkplug B (Eclipse Sparkplug 3.0) messages into readings. Stateful: births declare each
// edge node's metrics (names, aliases, datatypes), data messages name them by alias or name,
// deaths take a node or device offline. Input is untrusted: decoding never throws, never
// crashes, and the state it keeps is bounded by SparkplugOptions (edge nodes, metric
// definitions per node); a message past a bound is rejected and counted, never stored.
//
// Topics: spBv1.0/<group>/<type>/<edge node>[/<device>]. Each scalar metric becomes a reading
// with the sensor id
//     spBv1.0/<group>/<edge node>/<device>/<metric name>   (device metrics)
//     spBv1.0/<group>/<edge node>/<metric name>            (edge node metrics)
// timestamped by the metric's timestamp, else the payload's, else the receive time. Every
// scalar datatype reads as a number: Int8..Int64 (two's complement; the 8 and 16 bit ones
// width-sized or sign-extended to 32 bits), UInt8..UInt64, Float, Double, Boolean (1/0),
// DateTime (ms since the epoch). Strings, bytes, arrays, datasets, templates and null
// values are skipped and counted per reason; so are `bdSeq` and the `Node Control/` and
// `Device Control/` metrics (commands, not measurements).
//
// Order (per edge node): NBIRTH starts a session (its seq, usually 0, and its bdSeq metric);
// every later DBIRTH, NDATA, DDATA and DDEATH should carry the previous seq + 1 (mod 256). A
// message off that sequence is still decoded and counted as a gap. Data from a node or
// device with no birth since the agent started (or since its death) cannot be resolved and
// is rejected (`before_birth`). An NDEATH whose bdSeq differs from the current birth's is a
// late will of an earlier session and is ignored (`stale_death`); a valid one ends the
// node's session and all its devices'. The death of a node or device with a session returns
// the sensor-id prefix that went offline (SparkplugOutcome::offline_prefix), for
// rules::Engine::MarkOffline; that of one without (never born, already dead) returns none.
// Metrics marked is_historical (store-and-forward backfill) are skipped.
//
// Thread safety: none; one owner (the pipeline) calls Decode.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/rules/reading.h"

namespace edge::agent {

inline constexpr std::string_view kSparkplugNamespace = "spBv1.0/";

// Whether a topic is in the Sparkplug B namespace (and goes to SparkplugDecoder).
inline bool IsSparkplugTopic(std::string_view topic) {
  return topic.substr(0, kSparkplugNamespace.size()) == kSparkplugNamespace;
}

enum class SparkplugType { kNBirth, kNData, kNDeath, kDBirth, kDData, kDDeath, kOther };
inline constexpr size_t kSparkplugTypeCount = 7;

// Why a whole message produced nothing.
enum class SparkplugReject {
  kBadTopic,        // not spBv1.0/<group>/<type>/<node>[/<device>], an unknown type, or a
                    // topic longer than max_sensor_id_bytes
  kNotProtobuf,     // the payload is not a Sparkplug B protobuf Payload
  kBeforeBirth,     // data or device message for a node or device without a birth
  kStaleDeath,      // NDEATH whose bdSeq is not the current birth's
  kTooManyNodes,    // a birth of a new edge node while max_nodes hold a birth
  kTooManyMetrics,  // a birth that would take a node past max_metrics_per_node
};
inline constexpr size_t kSparkplugRejectCount = 6;

// Why one metric of an accepted message made no reading.
enum class SparkplugSkip {
  kString,        // String, Text, UUID
  kBytes,         // Bytes, File
  kArray,         // every *Array datatype
  kDataSet,       // DataSet
  kTemplate,      // Template (UDT)
  kNull,          // is_null, or no value
  kControl,       // bdSeq, Node Control/*, Device Control/*
  kUnknownAlias,  // an alias, or a name, no birth of this node declared
  kUnknownType,   // no datatype, or one the specification does not define
  kBadValue,      // a value that does not fit its datatype
  kNonFinite,     // a NaN or infinite Float or Double
  kIdTooLong,     // the sensor id would be longer than max_sensor_id_bytes
  kHistorical,    // is_historical: store-and-forward backfill, not the current value
};
inline constexpr size_t kSparkplugSkipCount = 13;

// Prometheus label values: "NBIRTH".."DDEATH", "other"; "bad_topic", "not_protobuf",
// "before_birth", "stale_death", "too_many_nodes", "too_many_metrics"; "string", "bytes",
// "array", "dataset", "template", "null", "control", "unknown_alias", "unknown_type",
// "bad_value", "non_finite", "id_too_long", "historical".
std::string_view SparkplugTypeLabel(SparkplugType type);
std::string_view SparkplugRejectLabel(SparkplugReject reason);
std::string_view SparkplugSkipLabel(SparkplugSkip reason);

struct SparkplugOptions {
  // Edge nodes holding a birth at once. When a new node's birth finds them all taken, the
  // node silent longest is forgotten if it has been silent idle_after_ms (its death was
  // missed); otherwise the birth is refused.
  size_t max_nodes = 1024;
  int64_t idle_after_ms = 10 * 60'000;
  // Metric definitions (and, separately, aliases) of one node and its devices.
  size_t max_metrics_per_node = 4096;
  size_t max_sensor_id_bytes = 1024;  // as DecodeOptions::max_sensor_id_bytes
  // Memory for all nodes' state: node keys, metric names and ids, device ids (plus about 128
  // bytes each) and aliases (64 bytes each). A birth that would pass it is refused.
  size_t max_state_bytes = 32 * 1024 * 1024;
};

// What one message did. Readings go to Decode's `out`.
struct SparkplugOutcome {
  SparkplugType type = SparkplugType::kOther;
  std::optional<SparkplugReject> reject;
  bool seq_gap = false;
  std::array<uint32_t, kSparkplugSkipCount> skipped{};  // metrics skipped, by SparkplugSkip
  // For an accepted NDEATH or DDEATH: the sensor-id prefix of everything that went offline,
  // "spBv1.0/<group>/<node>/" or "spBv1.0/<group>/<node>/<device>/". Empty otherwise.
  std::string offline_prefix;
};

class SparkplugDecoder {
 public:
  explicit SparkplugDecoder(SparkplugOptions options = {});
  ~SparkplugDecoder();
  SparkplugDecoder(SparkplugDecoder&&) noexcept;
  SparkplugDecoder& operator=(SparkplugDecoder&&) noexcept;
  SparkplugDecoder(const SparkplugDecoder&) = delete;
  SparkplugDecoder& operator=(const SparkplugDecoder&) = delete;

  // Decodes one message whose topic IsSparkplugTopic. Appends its readings to `out` (none
  // on reject; `out` is then as it was). `receive_ms`: ms since the epoch, for metrics and
  // payloads without a timestamp. NCMD, DCMD and STATE messages are kOther and ignored.
  SparkplugOutcome Decode(std::string_view topic, std::string_view payload, int64_t receive_ms,
                          std::vector<rules::Reading>& out);

  // Edge nodes holding a birth.
  size_t nodes() const;
  // Nodes forgotten so far to make room for a new one (SparkplugOptions::max_nodes).
  uint64_t evicted_nodes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge::agent
