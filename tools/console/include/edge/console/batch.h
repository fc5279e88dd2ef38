#pragma once

// Validation of an uploaded batch (docs/protocol.md, "Upload a batch"). The body is
// untrusted network input: ParseBatch never throws and reports the first problem found as a
// message suitable for the {"error": ...} reply of a 400.
//
// ParseBatch streams the body through Boost.JSON's parser without building a JSON tree: it
// accepts what nlohmann::json::parse accepts (the parser the console used before) and,
// where a repeated key differs, reads the last one.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/common/status.h"

namespace edge::console {

// Columns extracted from an alert payload for queries.
struct AlertFields {
  std::string rule;
  std::string sensor;
  std::string severity;
  std::string state;  // "firing" or "resolved"
  int64_t ts_ms = 0;
};

// Columns of a rollup payload: one sensor's readings over [start_ms, end_ms).
struct RollupFields {
  std::string sensor;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  int64_t count = 0;
  double min = 0;
  double max = 0;
  double mean = 0;
  double last = 0;
};

struct BatchItem {
  std::string id;  // "NODE:STORE_EPOCH:SEQUENCE"; starts with the batch's node and ':'
  std::string kind;
  int64_t created_ms = 0;
  // The payload object written out compactly: the same JSON value as sent (members in the
  // order sent, numbers as sent, strings escaped only where JSON requires it).
  std::string payload_json;
  std::optional<AlertFields> alert;    // set exactly when kind == "alert"
  std::optional<RollupFields> rollup;  // set exactly when kind == "rollup"
};

struct Batch {
  std::string node;
  int64_t sent_ms = 0;
  std::vector<BatchItem> items;
};

// Limits applied by ParseBatch.
inline constexpr size_t kMaxJsonDepth = 64;
inline constexpr size_t kMaxIdBytes = 256;
inline constexpr size_t kMaxNameBytes = 1024;         // node, kind and alert string fields
inline constexpr size_t kMaxStatusBytes = 64 * 1024;  // a status object, serialized

// Parses and validates a batch. Requires node (non-empty string), sent_ms (integer) and
// items (array); each item needs id, kind (non-empty strings), created_ms (integer) and
// payload (object). An alert payload needs rule, sensor, severity (strings), state
// ("firing"/"resolved") and ts_ms (integer); its optional "node" must equal the batch's. A
// rollup payload needs sensor (string), start_ms <= end_ms (integers), count (integer >= 0)
// and min, max, mean, last (numbers); its optional "node" must equal the batch's.
Result<Batch> ParseBatch(std::string_view json);

// A status heartbeat (docs/protocol.md, "Status heartbeat").
struct StatusReport {
  std::string node;
  int64_t sent_ms = 0;
  std::string status_json;  // the status object, re-serialized compactly
};

// Parses and validates POST /v1/status: node (non-empty string), sent_ms (integer) and
// status (an object). The members of the status object are the agent's business and are
// kept as they are; the caller enforces kMaxStatusBytes on status_json.
Result<StatusReport> ParseStatusReport(std::string_view json);

}  // namespace edge::console
