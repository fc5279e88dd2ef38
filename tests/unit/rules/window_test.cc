// The bucketed rolling windows of the rate and zscore kinds: bucket widths and expiry, the
// statistics against an exact computation, precision with a large offset, fixed memory
// whatever the reporting rate, and timestamps that repeat, go back or leap.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "edge/rules/detector.h"
#include "edge/rules/engine.h"
#include "rule_builders.h"

namespace edge::rules {
namespace {

using ::testing::IsEmpty;

using namespace ::edge::rules::test_util;

struct Exact {
  int64_t count = 0;
  double mean = 0;
  double variance = 0;
};

// Two-pass mean and sample variance in long double, of the values of readings from `from_ms`
// on.
Exact ExactStats(const std::vector<std::pair<int64_t, double>>& readings, int64_t from_ms) {
  long double sum = 0;
  int64_t n = 0;
  for (const auto& [ts, v] : readings) {
    if (ts < from_ms) continue;
    sum += v;
    ++n;
  }
  if (n == 0) return {};
  const long double mean = sum / static_cast<long double>(n);
  long double ss = 0;
  for (const auto& [ts, v] : readings) {
    if (ts >= from_ms) ss += (v - mean) * (v - mean);
  }
  const long double var = n < 2 ? 0 : ss / static_cast<long double>(n - 1);
  return {n, static_cast<double>(mean), static_cast<double>(var)};
}

double RelativeError(double got, double want) {
  return std::abs(got - want) / std::max(std::abs(want), std::numeric_limits<double>::min());
}

// ---- widths ----

TEST(BucketWidth, IsTheWindowOverThirtyTwoRoundedUpToWholeMilliseconds) {
  EXPECT_EQ(BucketWidthMs(5 * kMin), 9'375);
  EXPECT_EQ(BucketWidthMs(kMin), 1'875);
  EXPECT_EQ(BucketWidthMs(10 * kSec), 313);  // 312.5 rounded up
  EXPECT_EQ(BucketWidthMs(33), 2);
  EXPECT_EQ(BucketWidthMs(32), 1);
  EXPECT_EQ(BucketWidthMs(1), 1);
  const int64_t max = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(BucketWidthMs(max), max / 32 + 1);
}

// ---- WindowStats ----

TEST(WindowStats, MatchesExactStatisticsWhileEverythingIsInTheWindow) {
  WindowStats w;
  w.Reset(3600 * kSec);  // buckets of 112.5 s: the readings below fill about 20 of them
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> step(1, 4000);
  std::normal_distribution<double> noise(50.0, 3.0);
  std::vector<std::pair<int64_t, double>> readings;
  int64_t ts = 1'700'000'000'000;
  for (int i = 0; i < 1000; ++i) {
    ts += step(rng);
    const double v = noise(rng);
    w.Expire(ts);
    w.Add(ts, v);
    readings.emplace_back(ts, v);
    const Exact exact = ExactStats(readings, readings.front().first);
    ASSERT_EQ(w.count(), exact.count);
    ASSERT_LE(RelativeError(w.mean(), exact.mean), 1e-9) << i;
    if (i > 0) {
      ASSERT_LE(RelativeError(w.variance(), exact.variance), 1e-9) << i;
    }
  }
  EXPECT_GT(w.buckets(), 10u);
  EXPECT_EQ(w.oldest_ms(), readings.front().first);
}

TEST(WindowStats, LargeOffsetKeepsPrecisionThroughManyTurnovers) {
  // 1e9 plus noise of 1e-3: sums of squares of the raw values would cancel to nothing.
  WindowStats w;
  w.Reset(10 * kSec);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0.0, 1e-3);
  std::vector<std::pair<int64_t, double>> readings;
  for (int64_t ts = 0; ts < 120 * kSec; ts += 37) {
    const double v = 1e9 + noise(rng);
    w.Expire(ts);
    w.Add(ts, v);
    readings.emplace_back(ts, v);
    const Exact exact = ExactStats(readings, w.oldest_ms());
    ASSERT_EQ(w.count(), exact.count) << ts;
    if (exact.count < 2) continue;
    ASSERT_NEAR(w.mean(), exact.mean, 1e-6) << ts;  // a few ulps of 1e9
    ASSERT_LE(RelativeError(w.variance(), exact.variance), 1e-9) << ts;
  }
}

TEST(WindowStats, WholeBucketsLeaveOnceTheirNewestReadingIsOutOfTheWindow) {
  WindowStats w;
  w.Reset(32 * kSec);  // buckets of 1 s
  for (int64_t ts = 0; ts < 40 * kSec; ts += 250) {
    w.Expire(ts);
    w.Add(ts, 1.0);
  }
  // Buckets of four readings: 8.0 .. 8.75 s, 9.0 .. 9.75 s, and so on. At 40.5 s the
  // readings of 8.0 and 8.25 s are more than 32 s old, but 8.5 s is not: the bucket stays
  // whole, so the window holds two readings up to a width older than 32 s.
  w.Expire(40 * kSec + 500);
  EXPECT_EQ(w.oldest_ms(), 8 * kSec);
  EXPECT_EQ(w.count(), 32 * 4);
  EXPECT_EQ(w.buckets(), 32u);
  // Once 8.75 s is more than 32 s old, the bucket leaves with all four readings.
  w.Expire(40 * kSec + 750);
  EXPECT_EQ(w.count(), 32 * 4);
  w.Expire(40 * kSec + 751);
  EXPECT_EQ(w.oldest_ms(), 9 * kSec);
  EXPECT_EQ(w.count(), 31 * 4);
}

TEST(WindowStats, ReadingsAWidthApartGiveTheExactWindow) {
  WindowStats w;
  w.Reset(10 * kSec);  // buckets of 313 ms, a reading every second: one per bucket
  for (int64_t ts = 0; ts <= 100 * kSec; ts += kSec) {
    w.Expire(ts);
    // The readings at most 10 s old: ts - 10 s .. ts - 1 s (the current one is not added).
    if (ts >= 10 * kSec) {
      ASSERT_EQ(w.count(), 10) << ts;
      ASSERT_EQ(w.oldest_ms(), ts - 10 * kSec);
    }
    w.Add(ts, static_cast<double>(ts));
  }
}

TEST(WindowStats, AGapLongerThanTheWindowEmptiesItAndItStartsAfresh) {
  WindowStats w;
  w.Reset(kMin);
  for (int64_t ts = 0; ts < kMin; ts += kSec) w.Add(ts, 1e6);
  w.Expire(10 * kMin);
  EXPECT_EQ(w.count(), 0);
  EXPECT_EQ(w.buckets(), 0u);
  w.Add(10 * kMin, 5);
  w.Add(10 * kMin + kSec, 7);
  EXPECT_EQ(w.count(), 2);
  EXPECT_DOUBLE_EQ(w.mean(), 6);
  EXPECT_DOUBLE_EQ(w.variance(), 2);
}

TEST(WindowStats, EqualTimestampsShareABucket) {
  WindowStats w;
  w.Reset(kMin);
  for (int i = 0; i < 1000; ++i) w.Add(5 * kSec, i % 2 == 0 ? 1.0 : 3.0);
  EXPECT_EQ(w.buckets(), 1u);
  EXPECT_EQ(w.count(), 1000);
  EXPECT_DOUBLE_EQ(w.mean(), 2.0);
}

TEST(WindowStats, AnOlderReadingJoinsTheNewestBucketAndExpiresNothing) {
  WindowStats w;
  w.Reset(10 * kSec);
  w.Add(0, 1);
  w.Expire(8 * kSec);
  w.Add(8 * kSec, 3);
  w.Expire(-100 * kSec);  // the clock went back: nothing leaves
  w.Add(2 * kSec, 5);     // joins the bucket of 8 s, whose newest reading stays 8 s
  EXPECT_EQ(w.count(), 3);
  EXPECT_EQ(w.buckets(), 2u);
  EXPECT_EQ(w.oldest_ms(), 0);
  EXPECT_EQ(w.newest_ms(), 8 * kSec);
  w.Expire(15 * kSec);  // forward again: (0 s) leaves; (8 s) and (2 s, joined to it) stay
  EXPECT_EQ(w.count(), 2);
  EXPECT_DOUBLE_EQ(w.mean(), 4);
}

TEST(WindowStats, TimestampsAtTheEndsOfTheRangeDoNotOverflow) {
  const int64_t lo = std::numeric_limits<int64_t>::min();
  const int64_t hi = std::numeric_limits<int64_t>::max();
  WindowStats w;
  w.Reset(hi);  // the widest window
  w.Add(lo, 1);
  w.Expire(hi);
  w.Add(hi, 3);
  EXPECT_EQ(w.count(), 1);  // hi - lo > window: the first reading left
  EXPECT_EQ(w.oldest_ms(), hi);
  WindowStats narrow;
  narrow.Reset(1);
  narrow.Add(lo, 1);
  narrow.Expire(hi);
  EXPECT_EQ(narrow.count(), 0);
}

// ---- memory ----

constexpr char kWindowsPolicySensor[] = "plant/line1/temp";

Policy WindowsPolicy() {
  RuleSpec rate;
  rate.id = "climb";
  rate.match = "plant/#";
  RateParams r;
  r.window_ms = kMin;
  r.max_rate = 0.5;
  rate.params = r;
  RuleSpec z;
  z.id = "outlier";
  z.match = "plant/#";
  ZScoreParams p;
  p.window_ms = 5 * kMin;
  p.z = 6;
  p.min_samples = 30;
  z.params = p;
  Policy policy;
  policy.rules = {rate, z};
  return policy;
}

struct Bytes {
  size_t all;
  size_t windows;  // the window buffers' share
};

// What the engine accounts for after `seconds` of a sensor reporting `per_s` times a second.
Bytes StateBytesAfter(int64_t seconds, int per_s) {
  Engine engine(WindowsPolicy());
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(50.0, 0.3);
  std::vector<AlertEvent> out;
  for (int64_t i = 0; i < seconds * per_s; ++i) {
    engine.Process(Reading{kWindowsPolicySensor, i * 1000 / per_s, noise(rng)}, out);
  }
  return {engine.ApproxStateBytes(true),
          engine.ApproxStateBytes(true) - engine.ApproxStateBytes(false)};
}

TEST(WindowMemory, StateIsTheSameAtOneAndAHundredReadingsPerSecond) {
  // A 1-minute rate and a 5-minute zscore, after ten minutes.
  const Bytes slow = StateBytesAfter(600, 1);
  const Bytes fast = StateBytesAfter(600, 100);
  EXPECT_EQ(fast.all, slow.all);
  EXPECT_EQ(fast.windows, slow.windows);
  EXPECT_EQ(slow.windows, kWindowSlots * (sizeof(RateState::Sample) + sizeof(WindowStats::Bucket)));
  // The buffers are whole from the first reading on.
  EXPECT_EQ(StateBytesAfter(1, 1).windows, slow.windows);
}

TEST(WindowMemory, BuffersAreOneFixedArrayPerRuleAndSensor) {
  const RuleParams z = WindowsPolicy().rules[1].params;
  DetectorState zs = MakeDetectorState(z);
  EXPECT_EQ(HeapBytes(zs), 0u);
  for (int64_t ts = 0; ts < 600 * kSec; ts += 10) Evaluate(z, zs, ts, 1.0, false);
  EXPECT_EQ(HeapBytes(zs), kWindowSlots * sizeof(WindowStats::Bucket));
  EXPECT_LE(std::get<ZScoreState>(zs).window.buckets(), kWindowSlots);

  const RuleParams rate = WindowsPolicy().rules[0].params;
  DetectorState rs = MakeDetectorState(rate);
  for (int64_t ts = 0; ts < 600 * kSec; ts += 10) Evaluate(rate, rs, ts, 1.0, false);
  EXPECT_EQ(HeapBytes(rs), kWindowSlots * sizeof(RateState::Sample));
  EXPECT_LE(std::get<RateState>(rs).firsts.size(), kWindowSlots);
}

TEST(WindowMemory, AnEwmaZScoreHoldsNoBuffer) {
  ZScoreParams p;
  p.half_life_ms = kMin;
  const RuleParams params = p;
  DetectorState s = MakeDetectorState(params);
  for (int64_t ts = 0; ts < 100 * kSec; ts += kSec) Evaluate(params, s, ts, 1.0, false);
  EXPECT_EQ(HeapBytes(s), 0u);
}

// ---- detectors ----

TEST(RateWindow, ReferenceIsARealReadingLessThanAWidthAndAReadingIntervalInsideTheWindow) {
  const RuleParams params = Rate(10 * kSec, 1.0);
  const int64_t width = BucketWidthMs(10 * kSec);
  DetectorState s = MakeDetectorState(params);
  for (int64_t ts = 0; ts < 60 * kSec; ts += 100) {
    Evaluate(params, s, ts, static_cast<double>(ts) * 2, false);
    if (ts < 11 * kSec) continue;
    // The reference this reading was measured against: the oldest bucket start at most 10 s
    // before it. Buckets open at the first reading a width after the previous start.
    const RateState::Sample& ref = std::get<RateState>(s).firsts.front();
    ASSERT_GE(ref.ts_ms, ts - 10 * kSec) << ts;
    ASSERT_LT(ref.ts_ms, ts - 10 * kSec + width + 100) << ts;
    ASSERT_EQ(ref.ts_ms % 100, 0);
    ASSERT_EQ(ref.value, static_cast<double>(ref.ts_ms) * 2);
  }
}

TEST(RateWindow, DenseRampGivesItsSlope) {
  // 3 units/s sampled every 10 ms: whatever reading is the reference, the rate is 3.
  const RuleParams below = Rate(kMin, 3.0 + 1e-9);
  const RuleParams above = Rate(kMin, 3.0 - 1e-9);
  DetectorState sb = MakeDetectorState(below);
  DetectorState sa = MakeDetectorState(above);
  for (int64_t ts = 0; ts < 5 * kMin; ts += 10) {
    const double v = 3.0 * static_cast<double>(ts) / 1000.0;
    const Condition b = Evaluate(below, sb, ts, v, false).condition;
    const Condition a = Evaluate(above, sa, ts, v, false).condition;
    if (ts < 30 * kSec) {
      ASSERT_EQ(b, Condition::kUnknown) << ts;
      continue;
    }
    ASSERT_EQ(b, Condition::kClear) << ts;
    ASSERT_EQ(a, Condition::kHolds) << ts;
  }
}

TEST(RateWindow, AnOlderReadingDecidesNothingAndChangesNothing) {
  const RuleParams params = Rate(10 * kSec, 1.0);
  DetectorState s = MakeDetectorState(params);
  Evaluate(params, s, 0, 0, false);
  EXPECT_EQ(Evaluate(params, s, 10 * kSec, 5, false).condition, Condition::kClear);
  EXPECT_EQ(Evaluate(params, s, 5 * kSec, 1000, false).condition, Condition::kUnknown);
  // Against (10 s, 5), as if the older reading had not come: 20 / 10 s.
  EXPECT_EQ(Evaluate(params, s, 20 * kSec, 25, false).condition, Condition::kHolds);
  EXPECT_EQ(std::get<RateState>(s).prev.ts_ms, 20 * kSec);
}

TEST(ZScoreWindowDetector, AnOlderReadingDecidesNothingAndChangesNothing) {
  const RuleParams params = ZWindow(kMin, 3, 5);
  DetectorState s = MakeDetectorState(params);
  for (int64_t t = 0; t < 10; ++t) Evaluate(params, s, t * kSec, t % 2 == 0 ? 9.0 : 11.0, false);
  EXPECT_EQ(Evaluate(params, s, 5 * kSec, 1000, false).condition, Condition::kUnknown);
  EXPECT_EQ(std::get<ZScoreState>(s).window.count(), 10);
  EXPECT_EQ(Evaluate(params, s, 10 * kSec, 10, false).condition, Condition::kClear);
}

TEST(RateWindow, AfterAGapBeyondTheWindowThePreviousReadingIsTheReference) {
  const RuleParams params = Rate(10 * kSec, 1.0);
  DetectorState s = MakeDetectorState(params);
  for (int64_t ts = 0; ts <= 10 * kSec; ts += kSec) Evaluate(params, s, ts, 0, false);
  // An hour later: 1795 units over 3590 s from (10 s, 0) is 0.5 /s.
  EXPECT_EQ(Evaluate(params, s, 3600 * kSec, 1795, false).condition, Condition::kClear);
  // The reading of 3600 s opened a bucket: the reference, once half a window old.
  EXPECT_EQ(Evaluate(params, s, 3604 * kSec, 1800, false).condition, Condition::kUnknown);
  EXPECT_EQ(Evaluate(params, s, 3605 * kSec, 1801, false).condition, Condition::kHolds);
}

TEST(RateWindow, TimestampsAtTheEndsOfTheRangeDoNotOverflow) {
  const RuleParams params = Rate(kSec, 1.0);
  DetectorState s = MakeDetectorState(params);
  Evaluate(params, s, std::numeric_limits<int64_t>::min(), 0, false);
  EXPECT_EQ(Evaluate(params, s, std::numeric_limits<int64_t>::max(), 1, false).condition,
            Condition::kClear);
}

// ---- through the engine ----

TEST(ZScoreWindow, LargeOffsetWithSmallNoiseStillFindsOutliers) {
  Policy policy;
  policy.rules = {Rule("z", ZWindow(kMin, 4, 30))};
  Engine engine(std::move(policy));
  // Ten window turnovers of 1e9 +- 1e-3.
  for (int64_t t = 0; t < 6000; ++t) {
    ASSERT_THAT(Feed(engine, t * 100, 1e9 + (t % 2 == 0 ? -1e-3 : 1e-3)), IsEmpty()) << t;
  }
  EXPECT_THAT(Feed(engine, 600 * kSec, 1e9 + 2e-3), IsEmpty());  // z about 2
  EXPECT_EQ(Feed(engine, 600 * kSec + 100, 1e9 + 1e-2).size(), 1u);
}

TEST(ZScoreWindow, ReadingsFromTheClocksPastAreIgnoredAndTheWindowCarriesOn) {
  Policy policy;
  policy.rules = {Rule("z", ZWindow(kMin, 3, 10)), Rule("r", Rate(kMin, 0.1))};
  Engine engine(std::move(policy));
  for (int64_t t = 0; t < 120; ++t) Feed(engine, t * kSec, t % 2 == 0 ? 9.0 : 11.0);
  const size_t bytes = engine.ApproxStateBytes();
  // The sensor's clock jumps back an hour: the engine drops those readings, windows intact.
  for (int64_t t = 0; t < 10; ++t)
    EXPECT_THAT(Feed(engine, t * kSec - 3600 * kSec, 1e6), IsEmpty());
  EXPECT_EQ(engine.out_of_order(), 10u);
  EXPECT_EQ(engine.ApproxStateBytes(), bytes);
  EXPECT_THAT(Feed(engine, 120 * kSec, 10), IsEmpty());
  // Both rules fire: z about 19, and 19 units over the 60 s since (61 s, 11).
  EXPECT_EQ(Feed(engine, 121 * kSec, 30).size(), 2u);
}

}  // namespace
}  // namespace edge::rules
