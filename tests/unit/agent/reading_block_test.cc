#include "edge/agent/reading_block.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace edge::agent {
namespace {

TEST(ReadingBlock, RoundTripsTimestampsInAnyOrderAndExactValues) {
  const std::vector<BlockReading> in = {
      {1'764'166'980'000, 21.375},
      {1'764'166'981'000, -0.0},
      {1'764'166'979'500, 1e300},  // out of order
      {std::numeric_limits<int64_t>::max(), std::numeric_limits<double>::denorm_min()},
      {std::numeric_limits<int64_t>::min(), -3.5},
      {0, std::numeric_limits<double>::max()},
      {5, 0.1},
      {6, 21.37},
      {7, -123456.789012},
      {8, 1e-7},  // seven places: kept as a double
      {9, 9007199254740993.0},
      {10, std::numeric_limits<double>::quiet_NaN()},
      {11, -std::numeric_limits<double>::infinity()},
      {12, 0.30000000000000004},
  };
  std::string block;
  int64_t prev = 0;
  for (const BlockReading& r : in) AppendBlockReading(block, prev, r.ts_ms, r.value);
  std::vector<BlockReading> out;
  ASSERT_TRUE(DecodeBlock(block, kBlockFormat, out));
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].ts_ms, in[i].ts_ms) << i;
    EXPECT_EQ(std::bit_cast<uint64_t>(out[i].value), std::bit_cast<uint64_t>(in[i].value)) << i;
  }
}

TEST(ReadingBlock, AOneHertzSensorOfDecimalsCostsFourBytesAReading) {
  std::string block;
  int64_t prev = 0;
  AppendBlockReading(block, prev, 1'764'166'980'000, 21.5);
  const size_t first = block.size();
  // A 1,000 ms step is a two-byte varint; 21.37 to 21.66 (two places) two more.
  for (int i = 1; i <= 30; ++i) {  // as a payload's "21.37" parses
    const double value = std::strtod(("21." + std::to_string(36 + i)).c_str(), nullptr);
    AppendBlockReading(block, prev, 1'764'166'980'000 + i * 1000, value);
  }
  EXPECT_LE(block.size() - first, 30u * 5);  // a 10-byte reading before
  block.clear();
  prev = 0;
  for (int i = 0; i < 30; ++i) AppendBlockReading(block, prev, 5 + i * 10, i % 8);
  EXPECT_EQ(block.size(), 30u * 2);  // steps under 64 ms and integers under 8 take a byte each
  block.clear();
  prev = 0;
  AppendBlockReading(block, prev, 5, 1.0 / 3);
  EXPECT_EQ(block.size(), 1u + 1 + 8);  // not a short decimal: a tag and the double
}

TEST(ReadingBlock, BlocksOfTheOldFormatStillDecode) {
  // kDouble: the timestamp difference, then the value's 8 bytes, little-endian.
  std::string block = {'\x14'};  // zigzag(10)
  const uint64_t bits = std::bit_cast<uint64_t>(21.375);
  for (int i = 0; i < 8; ++i) block.push_back(static_cast<char>(bits >> (8 * i)));
  std::vector<BlockReading> out;
  ASSERT_TRUE(DecodeBlock(block, BlockFormat::kDouble, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ts_ms, 10);
  EXPECT_EQ(out[0].value, 21.375);
  out.clear();
  EXPECT_FALSE(DecodeBlock(block, static_cast<BlockFormat>(9), out));  // unknown format
}

TEST(ReadingBlock, JournalKeepsSensorIds) {
  std::string block;
  int64_t prev = 0;
  AppendJournalReading(block, prev, 1, 1000, 1.5);
  AppendJournalReading(block, prev, 70'000, 999, 2.5);
  AppendJournalReading(block, prev, 1, 1001, 3.5);
  std::vector<JournalReading> out;
  ASSERT_TRUE(DecodeJournal(block, kBlockFormat, out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].sensor, 70'000);
  EXPECT_EQ(out[1].ts_ms, 999);
  EXPECT_EQ(out[2].sensor, 1);
  EXPECT_EQ(out[2].value, 3.5);
}

TEST(ReadingBlock, MalformedBlocksAreRefusedNotOverread) {
  std::string block;
  int64_t prev = 0;
  AppendBlockReading(block, prev, 1000, 0.5);
  const size_t first = block.size();
  AppendBlockReading(block, prev, 2000, 1.0 / 3);  // a tag and a raw double
  for (size_t cut = 1; cut < block.size(); ++cut) {
    std::vector<BlockReading> out;
    const bool ok = DecodeBlock(std::string_view(block).substr(0, cut), kBlockFormat, out);
    // Only a cut exactly after the first reading is a valid (shorter) block.
    EXPECT_EQ(ok, cut == first) << cut;
  }
  std::vector<BlockReading> out;
  EXPECT_FALSE(DecodeBlock(std::string(11, '\xff'), kBlockFormat, out));  // an endless varint
  std::vector<JournalReading> jout;
  EXPECT_FALSE(DecodeJournal(std::string(3, '\x01'), BlockFormat::kDouble, jout));
  EXPECT_TRUE(DecodeBlock("", kBlockFormat, out));
}

}  // namespace
}  // namespace edge::agent
