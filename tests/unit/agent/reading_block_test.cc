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
  };
  std::string block;
  int64_t prev = 0;
  for (const BlockReading& r : in) AppendBlockReading(block, prev, r.ts_ms, r.value);
  std::vector<BlockReading> out;
  ASSERT_TRUE(DecodeBlock(block, out));
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].ts_ms, in[i].ts_ms) << i;
    EXPECT_EQ(std::bit_cast<uint64_t>(out[i].value), std::bit_cast<uint64_t>(in[i].value)) << i;
  }
}

TEST(ReadingBlock, AOneHertzSensorCostsTenBytesAReading) {
  std::string block;
  int64_t prev = 0;
  AppendBlockReading(block, prev, 1'764'166'980'000, 1);
  const size_t first = block.size();
  for (int i = 1; i <= 30; ++i) AppendBlockReading(block, prev, 1'764'166'980'000 + i * 1000, i);
  EXPECT_EQ(block.size() - first, 30u * 10);  // a 1,000 ms step is a two-byte varint
  block.clear();
  prev = 0;
  for (int i = 0; i < 30; ++i) AppendBlockReading(block, prev, 5 + i * 10, i);
  EXPECT_EQ(block.size(), 30u * 9);  // steps under 64 ms take one byte
}

TEST(ReadingBlock, JournalKeepsSensorIds) {
  std::string block;
  int64_t prev = 0;
  AppendJournalReading(block, prev, 1, 1000, 1.5);
  AppendJournalReading(block, prev, 70'000, 999, 2.5);
  AppendJournalReading(block, prev, 1, 1001, 3.5);
  std::vector<JournalReading> out;
  ASSERT_TRUE(DecodeJournal(block, out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].sensor, 70'000);
  EXPECT_EQ(out[1].ts_ms, 999);
  EXPECT_EQ(out[2].sensor, 1);
  EXPECT_EQ(out[2].value, 3.5);
}

TEST(ReadingBlock, MalformedBlocksAreRefusedNotOverread) {
  std::string block;
  int64_t prev = 0;
  AppendBlockReading(block, prev, 1000, 1.0);
  AppendBlockReading(block, prev, 2000, 2.0);
  for (size_t cut = 1; cut < block.size(); ++cut) {
    std::vector<BlockReading> out;
    const bool ok = DecodeBlock(std::string_view(block).substr(0, cut), out);
    // Only a cut exactly after the first reading is a valid (shorter) block.
    EXPECT_EQ(ok, cut == block.size() / 2) << cut;
  }
  std::vector<BlockReading> out;
  EXPECT_FALSE(DecodeBlock(std::string(11, '\xff'), out));  // an endless varint
  std::vector<JournalReading> jout;
  EXPECT_FALSE(DecodeJournal(std::string(3, '\x01'), jout));
  EXPECT_TRUE(DecodeBlock("", out));
}

}  // namespace
}  // namespace edge::agent
