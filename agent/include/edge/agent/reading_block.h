#pragma once

// The byte encodings of the readings ring (docs/architecture.md, "Readings ring").
//
// A sensor block holds readings of one sensor in arrival order: per reading the timestamp
// as a zigzag varint difference from the previous one (from 0 for the first), then the
// value as 8 bytes (IEEE-754 double, little-endian). A journal block holds the readings of
// one commit, of any sensors: per reading the sensor id as a varint, then the same
// timestamp difference and value. A reading of a steady 1 Hz sensor costs 10 bytes in a
// sensor block.
//
// Decoding is bounds-checked: a truncated or corrupt block yields false, never a read past
// its end.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edge::agent {

struct BlockReading {
  int64_t ts_ms = 0;
  double value = 0;
};

struct JournalReading {
  int64_t sensor = 0;
  int64_t ts_ms = 0;
  double value = 0;
};

// Appends one reading to a sensor block; `prev_ts` is the previous reading's timestamp
// (0 for the first) and is updated.
void AppendBlockReading(std::string& block, int64_t& prev_ts, int64_t ts_ms, double value);

// Appends one reading to a journal block; `prev_ts` as above, across sensors.
void AppendJournalReading(std::string& block, int64_t& prev_ts, int64_t sensor, int64_t ts_ms,
                          double value);

// Appends the readings of a sensor block to `out`. False (and `out` partly appended) when
// the block is malformed.
bool DecodeBlock(std::string_view block, std::vector<BlockReading>& out);

// Appends the readings of a journal block to `out`. False when the block is malformed.
bool DecodeJournal(std::string_view block, std::vector<JournalReading>& out);

}  // namespace edge::agent
