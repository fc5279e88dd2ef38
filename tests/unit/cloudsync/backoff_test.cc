#include "edge/cloudsync/backoff.h"

#include <gtest/gtest.h>

#include <set>

namespace edge::cloudsync {
namespace {

TEST(Backoff, CeilingDoublesFromInitialUntilCapped) {
  Backoff backoff(100, 1'000, 1);
  EXPECT_EQ(backoff.CeilingMs(0), 100);
  EXPECT_EQ(backoff.CeilingMs(1), 200);
  EXPECT_EQ(backoff.CeilingMs(2), 400);
  EXPECT_EQ(backoff.CeilingMs(3), 800);
  EXPECT_EQ(backoff.CeilingMs(4), 1'000);
  EXPECT_EQ(backoff.CeilingMs(5000), 1'000);
}

TEST(Backoff, CeilingNeverOverflowsWithHugeCap) {
  Backoff backoff(1, INT64_MAX, 1);
  EXPECT_EQ(backoff.CeilingMs(62), int64_t{1} << 62);
  EXPECT_EQ(backoff.CeilingMs(10'000), INT64_MAX);
}

TEST(Backoff, DelaysStayWithinFullJitterBounds) {
  Backoff backoff(50, 2'000, 7);
  for (int i = 0; i < 200; ++i) {
    const int64_t ceiling = backoff.CeilingMs(backoff.attempt());
    const int64_t delay = backoff.NextDelayMs();
    EXPECT_GE(delay, 0);
    EXPECT_LE(delay, ceiling);
  }
  EXPECT_EQ(backoff.attempt(), 200);
}

TEST(Backoff, JitterSpreadsDelaysAcrossTheWholeRange) {
  Backoff backoff(1'000, 1'000, 42);
  std::set<int64_t> buckets;
  int64_t lowest = 1'000;
  int64_t highest = 0;
  for (int i = 0; i < 500; ++i) {
    const int64_t delay = backoff.NextDelayMs();
    buckets.insert(delay / 100);
    lowest = std::min(lowest, delay);
    highest = std::max(highest, delay);
  }
  EXPECT_GE(buckets.size(), 10u);  // every tenth of [0, 1000] is hit
  EXPECT_LT(lowest, 100);
  EXPECT_GT(highest, 900);
}

TEST(Backoff, SameSeedGivesSameSequence) {
  Backoff a(10, 10'000, 99);
  Backoff b(10, 10'000, 99);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.NextDelayMs(), b.NextDelayMs());
}

TEST(Backoff, ResetStartsFromInitialCeilingAgain) {
  Backoff backoff(10, 10'000, 3);
  for (int i = 0; i < 8; ++i) (void)backoff.NextDelayMs();
  backoff.Reset();
  EXPECT_EQ(backoff.attempt(), 0);
  EXPECT_LE(backoff.NextDelayMs(), 10);
}

TEST(Backoff, RetryAfterIsALowerBoundCappedAtMax) {
  Backoff backoff(1, 5'000, 5);
  EXPECT_EQ(backoff.NextDelayMs(3'000), 3'000);   // jitter ceiling is 2 ms here
  EXPECT_EQ(backoff.NextDelayMs(60'000), 5'000);  // capped
  EXPECT_LE(backoff.NextDelayMs(0), backoff.CeilingMs(2));
  EXPECT_LE(backoff.NextDelayMs(-5), backoff.CeilingMs(3));
}

TEST(Backoff, NormalisesNonsenseLimits) {
  Backoff backoff(0, -1, 1);
  EXPECT_EQ(backoff.initial_ms(), 1);
  EXPECT_EQ(backoff.max_ms(), 1);
  EXPECT_LE(backoff.NextDelayMs(), 1);
}

TEST(RetryAfter, ParsesDeltaSeconds) {
  EXPECT_EQ(ParseRetryAfterMs("0"), 0);
  EXPECT_EQ(ParseRetryAfterMs("120"), 120'000);
  EXPECT_EQ(ParseRetryAfterMs(" 7\t"), 7'000);
}

TEST(RetryAfter, RejectsDatesAndJunk) {
  EXPECT_FALSE(ParseRetryAfterMs(""));
  EXPECT_FALSE(ParseRetryAfterMs("  "));
  EXPECT_FALSE(ParseRetryAfterMs("-1"));
  EXPECT_FALSE(ParseRetryAfterMs("1.5"));
  EXPECT_FALSE(ParseRetryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT"));
  EXPECT_FALSE(ParseRetryAfterMs("12abc"));
}

TEST(RetryAfter, SaturatesHugeValues) {
  const auto ms = ParseRetryAfterMs("99999999999999999999999999999");
  ASSERT_TRUE(ms);
  EXPECT_GT(*ms, int64_t{1} << 40);
}

}  // namespace
}  // namespace edge::cloudsync
