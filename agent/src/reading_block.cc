#include "edge/agent/reading_block.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace edge::agent {
namespace {

void PutVarint(std::string& out, uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

void PutDouble(std::string& out, double value) {
  uint64_t bits = std::bit_cast<uint64_t>(value);
  char buf[8];
  for (char& c : buf) {
    c = static_cast<char>(bits & 0xff);
    bits >>= 8;
  }
  out.append(buf, 8);
}

constexpr double kPow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
constexpr uint64_t kRawValueTag = 7;
constexpr double kMaxScaled = 9007199254740992.0;  // 2^53

// kDecimal (reading_block.h).
void PutValue(std::string& out, double value) {
  for (uint64_t k = 0; k < std::size(kPow10); ++k) {
    const double scaled = std::nearbyint(value * kPow10[k]);
    if (!(std::fabs(scaled) < kMaxScaled)) break;  // also NaN
    // Decoded as the integer over 10^k: -0 comes back as +0, so it is not taken.
    const auto s = static_cast<int64_t>(scaled);
    const double back = static_cast<double>(s) / kPow10[k];
    if (std::bit_cast<uint64_t>(back) == std::bit_cast<uint64_t>(value)) {
      PutVarint(out, ZigZag(s) << 3 | k);
      return;
    }
  }
  PutVarint(out, kRawValueTag);
  PutDouble(out, value);
}

// Reads from a block; every read checks the end.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  bool done() const { return p_ == end_; }

  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const auto byte = static_cast<unsigned char>(*p_++);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;  // more than ten bytes
  }

  bool Double(double& v) {
    if (end_ - p_ < 8) return false;
    uint64_t bits = 0;
    for (int i = 7; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(p_[i]);
    p_ += 8;
    v = std::bit_cast<double>(bits);
    return true;
  }

  bool Value(BlockFormat format, double& v) {
    if (format == BlockFormat::kDouble) return Double(v);
    if (format != BlockFormat::kDecimal) return false;
    uint64_t x = 0;
    if (!Varint(x)) return false;
    const uint64_t k = x & 7;
    if (k == kRawValueTag) return Double(v);
    if (k >= std::size(kPow10)) return false;
    v = static_cast<double>(UnZigZag(x >> 3)) / kPow10[k];
    return true;
  }

  // Timestamp as a difference from `prev` (wrapping, as it was encoded).
  bool Ts(int64_t& prev) {
    uint64_t z = 0;
    if (!Varint(z)) return false;
    prev = static_cast<int64_t>(static_cast<uint64_t>(prev) + static_cast<uint64_t>(UnZigZag(z)));
    return true;
  }

 private:
  const char* p_;
  const char* end_;
};

int64_t WrappingDiff(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

}  // namespace

void AppendBlockReading(std::string& block, int64_t& prev_ts, int64_t ts_ms, double value) {
  PutVarint(block, ZigZag(WrappingDiff(ts_ms, prev_ts)));
  PutValue(block, value);
  prev_ts = ts_ms;
}

void AppendJournalReading(std::string& block, int64_t& prev_ts, int64_t sensor, int64_t ts_ms,
                          double value) {
  PutVarint(block, static_cast<uint64_t>(sensor));
  AppendBlockReading(block, prev_ts, ts_ms, value);
}

bool DecodeBlock(std::string_view block, BlockFormat format, std::vector<BlockReading>& out) {
  Cursor c(block);
  int64_t ts = 0;
  while (!c.done()) {
    BlockReading r;
    if (!c.Ts(ts) || !c.Value(format, r.value)) return false;
    r.ts_ms = ts;
    out.push_back(r);
  }
  return true;
}

bool DecodeJournal(std::string_view block, BlockFormat format, std::vector<JournalReading>& out) {
  Cursor c(block);
  int64_t ts = 0;
  while (!c.done()) {
    JournalReading r;
    uint64_t sensor = 0;
    if (!c.Varint(sensor) || !c.Ts(ts) || !c.Value(format, r.value)) return false;
    r.sensor = static_cast<int64_t>(sensor);
    r.ts_ms = ts;
    out.push_back(r);
  }
  return true;
}

}  // namespace edge::agent
