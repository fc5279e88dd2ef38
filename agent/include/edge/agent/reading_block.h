#pragma once

// The byte encodings of the readings ring (docs/architecture.md, "Readings ring").
//
// A sensor block holds readings of one sensor in arrival order: per reading the timestamp
// as a zigzag varint difference from the previous one (from 0 for the first), then the
// value. A journal block holds the readings of one commit, of any sensors: per reading the
// sensor id as a varint, then the same timestamp difference and value.
//
// Values, by BlockFormat (the row's `format` column):
// - kDouble (databases before schema 7): 8 bytes, IEEE-754 double, little-endian;
// - kDecimal (written since): a value that is a decimal of at most 6 places whose scaled
//   integer s = value * 10^k fits in 53 bits, and that s / 10^k gives back bit for bit,
//   is the varint of zigzag(s) * 8 + k (k = 0..6); any other (NaN, infinities, -0, long
//   fractions) is the varint 7 and the 8 bytes above. Sensors send decimals ("21.37",
//   "20", "1"): a reading of a steady 1 Hz sensor costs 4 bytes ("20") or 5 ("21.37")
//   instead of 10, so the ring holds twice the readings in the same bytes and the agent
//   writes half as much to flash (docs/performance.md, "Flash wear").
// Decoding gives back exactly the double that was encoded.
//
// Decoding is bounds-checked: a truncated or corrupt block yields false, never a read past
// its end.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edge::agent {

enum class BlockFormat : int { kDouble = 0, kDecimal = 1 };
// What blocks are written in.
inline constexpr BlockFormat kBlockFormat = BlockFormat::kDecimal;

struct BlockReading {
  int64_t ts_ms = 0;
  double value = 0;
};

struct JournalReading {
  int64_t sensor = 0;
  int64_t ts_ms = 0;
  double value = 0;
};

// Appends one reading to a sensor block in kBlockFormat; `prev_ts` is the previous
// reading's timestamp (0 for the first) and is updated.
void AppendBlockReading(std::string& block, int64_t& prev_ts, int64_t ts_ms, double value);

// Appends one reading to a journal block; `prev_ts` as above, across sensors.
void AppendJournalReading(std::string& block, int64_t& prev_ts, int64_t sensor, int64_t ts_ms,
                          double value);

// Appends the readings of a sensor block to `out`. False (and `out` partly appended) when
// the block is malformed or the format unknown.
bool DecodeBlock(std::string_view block, BlockFormat format, std::vector<BlockReading>& out);

// Appends the readings of a journal block to `out`. False when the block is malformed or
// the format unknown.
bool DecodeJournal(std::string_view block, BlockFormat format, std::vector<JournalReading>& out);

}  // namespace edge::agent
