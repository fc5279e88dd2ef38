#pragma once

// A block of the readings ring being built, and the statement that writes one
// (reading_block.h has the encoding). Internal to the store.

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "edge/agent/reading_block.h"

namespace edge::agent::store_impl {

// A sensor block being built (reading_block.h).
struct BlockBuilder {
  std::string data;
  int64_t prev_ts = 0;
  int64_t min_ts = INT64_MAX;
  int64_t max_ts = INT64_MIN;
  int64_t n = 0;

  void Add(int64_t ts_ms, double value) {
    AppendBlockReading(data, prev_ts, ts_ms, value);
    min_ts = std::min(min_ts, ts_ms);
    max_ts = std::max(max_ts, ts_ms);
    ++n;
  }
};

// Blocks are written in kBlockFormat (bound as the `format` column).
inline constexpr const char* kInsertBlock =
    "INSERT INTO reading_blocks(sensor, min_ts, max_ts, n, data, format) "
    "VALUES (?, ?, ?, ?, ?, ?)";

// Binds and steps a prepared kInsertBlock; returns the step's result code.
inline int InsertBlock(sqlite3_stmt* ins, int64_t sensor, const BlockBuilder& b) {
  sqlite3_bind_int64(ins, 1, sensor);
  sqlite3_bind_int64(ins, 2, b.min_ts);
  sqlite3_bind_int64(ins, 3, b.max_ts);
  sqlite3_bind_int64(ins, 4, b.n);
  sqlite3_bind_blob(ins, 5, b.data.data(), static_cast<int>(b.data.size()), SQLITE_STATIC);
  sqlite3_bind_int(ins, 6, static_cast<int>(kBlockFormat));
  const int rc = sqlite3_step(ins);
  sqlite3_reset(ins);
  return rc;
}

}  // namespace edge::agent::store_impl
