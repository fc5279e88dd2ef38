#pragma once
// Recorded readings for the offline commands (`edge-agent replay`, `edge-agent suggest`):
// files of readings (CSV or JSON lines, see replay.h for the formats) or the readings ring
// of an agent's database, loaded into memory ordered by timestamp.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "edge/rules/engine.h"

namespace edge::agent {

struct RecordedRow {
  int64_t ts_ms = 0;
  double value = 0;
  uint32_t sensor = 0;  // index into RecordedReadings::sensors
};

struct RecordedReadings {
  std::vector<std::string> sensors;
  std::unordered_map<std::string, uint32_t> sensor_index;
  std::vector<RecordedRow> rows;  // oldest first (stable: equal timestamps keep input order)
  int64_t skipped = 0;            // unreadable rows
  int reported = 0;               // of them, reported one by one

  uint32_t Sensor(const std::string& name) {
    auto [it, inserted] = sensor_index.emplace(name, static_cast<uint32_t>(sensors.size()));
    if (inserted) sensors.push_back(name);
    return it->second;
  }
};

// Reads `paths` (a file without a sensor column or key gives its rows to `default_sensor`,
// or, when that is empty, to the file's base name). Unreadable rows are skipped, counted and
// the first few reported on `err` with file:line. False (reported on `err`) when a file
// cannot be read or a CSV header names no timestamp and value columns.
bool LoadRecordedFiles(const std::vector<std::string>& paths, const std::string& default_sensor,
                       RecordedReadings& out, std::ostream& err);

// Reads the readings ring of the agent database at `db_path` (read-only use of a second
// connection, safe while the agent runs): every sensor's readings with ts >= since_ms.
// False (reported on `err`) when the database cannot be opened or read.
bool LoadStoredReadings(const std::string& db_path, int64_t since_ms, RecordedReadings& out,
                        std::ostream& err);

// Runs `rows` (of `in`, oldest first) through `engine` in event time, as the live agent would:
// clock-driven rules (stale) get Advance(ts) whenever event time has moved on by a second or
// more since the last time, so gaps inside a recording are found. After each row
// `on_events(row, events)` gets the events the row caused (cleared after the call).
using RowEvents = std::function<void(const RecordedRow&, std::vector<rules::AlertEvent>&)>;
void RunRows(rules::Engine& engine, const RecordedReadings& in, std::span<const RecordedRow> rows,
             const RowEvents& on_events);

}  // namespace edge::agent
