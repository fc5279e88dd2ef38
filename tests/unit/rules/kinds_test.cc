// Rule kinds beyond threshold, through the Engine: rate, zscore (window and EWMA), stale,
// flatline, range. Time is event time; stale gets its time from Advance (a fake clock).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
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

// ---- rate ----

TEST(RateRule, FiresWhenChangePerSecondExceedsMaxRate) {
  Engine engine(PolicyOf({Rule("fast", Rate(10 * kSec, 1.0))}));
  EXPECT_THAT(Feed(engine, 0, 20), IsEmpty());
  EXPECT_THAT(Feed(engine, 5 * kSec, 24), IsEmpty());  // 0.8 /s
  const auto events = Feed(engine, 10 * kSec, 31);     // (31 - 20) / 10 s = 1.1 /s
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kFiring);
  EXPECT_EQ(events[0].started_ms, 10 * kSec);
}

TEST(RateRule, RateEqualToMaxDoesNotFire) {
  Engine engine(PolicyOf({Rule("fast", Rate(10 * kSec, 1.0))}));
  Feed(engine, 0, 0);
  EXPECT_THAT(Feed(engine, 10 * kSec, 10), IsEmpty());
}

TEST(RateRule, ReferenceIsOldestReadingInsideWindow) {
  Engine engine(PolicyOf({Rule("fast", Rate(10 * kSec, 1.0))}));
  Feed(engine, 0, 0);
  Feed(engine, 10 * kSec, 5);
  Feed(engine, 15 * kSec, 10);
  // At 21 s the window starts at 11 s: the reference is (15 s, 10), not (0 s, 0) or (10 s, 5).
  EXPECT_THAT(Feed(engine, 21 * kSec, 15.5), IsEmpty());  // 5.5 / 6 s < 1
  EXPECT_EQ(Feed(engine, 22 * kSec, 18.5).size(), 1u);    // 8.5 / 7 s > 1
}

TEST(RateRule, SparseReadingsUseThePreviousReading) {
  Engine engine(PolicyOf({Rule("fast", Rate(10 * kSec, 1.0))}));
  Feed(engine, 0, 0);
  EXPECT_THAT(Feed(engine, 100 * kSec, 50), IsEmpty());  // 0.5 /s over 100 s
  EXPECT_EQ(Feed(engine, 200 * kSec, 200).size(), 1u);   // 1.5 /s over 100 s
}

TEST(RateRule, StaysUndecidedUntilReadingsSpanHalfTheWindow) {
  // Noise of 0.5 between readings half a second apart is 1 /s over that span, but the rule
  // asks about change over a minute: no decision before 30 s of readings.
  Engine engine(PolicyOf({Rule("drift", Rate(kMin, 0.05))}));
  Feed(engine, 0, 20);
  EXPECT_THAT(Feed(engine, 500, 20.5), IsEmpty());
  EXPECT_THAT(Feed(engine, 29 * kSec, 21.4), IsEmpty());  // 1.4 / 29 s > 0.05, still undecided
  EXPECT_EQ(Feed(engine, 30 * kSec, 21.6).size(), 1u);    // 1.6 / 30 s > 0.05: decided
}

TEST(RateRule, DirectionUpIgnoresFalls) {
  Engine engine(PolicyOf({Rule("up", Rate(kSec, 1.0, Direction::kUp))}));
  Feed(engine, 0, 100);
  EXPECT_THAT(Feed(engine, kSec, 50), IsEmpty());
  EXPECT_EQ(Feed(engine, 2 * kSec, 100).size(), 1u);
}

TEST(RateRule, DirectionDownIgnoresRises) {
  Engine engine(PolicyOf({Rule("down", Rate(kSec, 1.0, Direction::kDown))}));
  Feed(engine, 0, 0);
  EXPECT_THAT(Feed(engine, kSec, 50), IsEmpty());
  EXPECT_EQ(Feed(engine, 2 * kSec, 0).size(), 1u);
}

TEST(RateRule, ResolvesWhenRateFallsBack) {
  Engine engine(PolicyOf({Rule("fast", Rate(kSec, 1.0))}));
  Feed(engine, 0, 0);
  ASSERT_EQ(Feed(engine, kSec, 10).size(), 1u);
  const auto events = Feed(engine, 2 * kSec, 10.5);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
  EXPECT_EQ(events[0].started_ms, kSec);
}

TEST(RateRule, FirstReadingAndEqualTimestampsGiveNoRate) {
  Engine engine(PolicyOf({Rule("fast", Rate(kSec, 1.0))}));
  EXPECT_THAT(Feed(engine, 0, 0), IsEmpty());
  EXPECT_THAT(Feed(engine, 0, 1000), IsEmpty());
}

TEST(RateRule, ForRequiresTheRateToPersist) {
  RateParams p = Rate(kSec, 1.0);
  p.for_ms = 2 * kSec;
  Engine engine(PolicyOf({Rule("fast", p)}));
  Feed(engine, 0, 0);
  EXPECT_THAT(Feed(engine, kSec, 10), IsEmpty());
  EXPECT_THAT(Feed(engine, 2 * kSec, 20), IsEmpty());
  EXPECT_EQ(Feed(engine, 3 * kSec, 30).size(), 1u);
}

// ---- zscore, rolling window ----

// Alternates 9 and 11: mean 10, sample stddev about 1.
void FeedNoise(Engine& engine, int64_t from_s, int64_t to_s) {
  for (int64_t t = from_s; t < to_s; ++t) Feed(engine, t * kSec, t % 2 == 0 ? 9.0 : 11.0);
}

TEST(ZScoreRule, FiresOnOutlierAgainstRollingWindow) {
  Engine engine(PolicyOf({Rule("z", ZWindow(kMin, 3, 10))}));
  FeedNoise(engine, 0, 30);
  EXPECT_THAT(Feed(engine, 30 * kSec, 12), IsEmpty());  // z about 2
  const auto events = Feed(engine, 31 * kSec, 20);      // z about 10
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kFiring);
  EXPECT_EQ(events[0].value, 20);
}

TEST(ZScoreRule, NegativeOutlierFiresToo) {
  Engine engine(PolicyOf({Rule("z", ZWindow(kMin, 3, 10))}));
  FeedNoise(engine, 0, 30);
  EXPECT_EQ(Feed(engine, 30 * kSec, 0).size(), 1u);
}

TEST(ZScoreRule, UndecidedUntilMinSamples) {
  Engine engine(PolicyOf({Rule("z", ZWindow(kMin, 3, 10))}));
  FeedNoise(engine, 0, 9);
  EXPECT_THAT(Feed(engine, 9 * kSec, 1000), IsEmpty());  // 9 samples in the baseline
}

TEST(ZScoreRule, OldReadingsLeaveTheWindow) {
  Engine engine(PolicyOf({Rule("z", ZWindow(10 * kSec, 3, 5))}));
  FeedNoise(engine, 0, 10);
  // 100 s later the window is empty again: no baseline, no verdict.
  EXPECT_THAT(Feed(engine, 110 * kSec, 1000), IsEmpty());
}

TEST(ZScoreRule, ResolvesWhenValueReturnsToBaseline) {
  Engine engine(PolicyOf({Rule("z", ZWindow(kMin, 3, 10))}));
  FeedNoise(engine, 0, 30);
  ASSERT_EQ(Feed(engine, 30 * kSec, 20).size(), 1u);
  const auto events = Feed(engine, 31 * kSec, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
}

TEST(ZScoreRule, ConstantBaselineFiresOnAnyChangeButNotOnItself) {
  Engine engine(PolicyOf({Rule("z", ZWindow(kMin, 3, 5))}));
  for (int i = 0; i < 10; ++i) EXPECT_THAT(Feed(engine, i * kSec, 7.25), IsEmpty());
  EXPECT_EQ(Feed(engine, 10 * kSec, 7.5).size(), 1u);
}

TEST(ZScoreRule, LargeOffsetDoesNotLosePrecision) {
  Engine engine(PolicyOf({Rule("z", ZWindow(kMin, 3, 10))}));
  for (int64_t t = 0; t < 40; ++t) Feed(engine, t * kSec, 1e9 + (t % 2 == 0 ? -1.0 : 1.0));
  EXPECT_THAT(Feed(engine, 40 * kSec, 1e9 + 1.5), IsEmpty());
  EXPECT_EQ(Feed(engine, 41 * kSec, 1e9 + 10).size(), 1u);
}

TEST(ZScoreRule, LongRunStaysAccurate) {
  // Many window turnovers: the running sums are recomputed, so no drift builds up.
  Engine engine(PolicyOf({Rule("z", ZWindow(10 * kSec, 3, 5))}));
  for (int64_t t = 0; t < 100'000; ++t) {
    ASSERT_THAT(
        Feed(engine, t * 100, 50.0 + (t % 2 == 0 ? -0.5 : 0.5) + static_cast<double>(t % 7) * 1e-3),
        IsEmpty())
        << t;
  }
  EXPECT_EQ(Feed(engine, 100'000 * 100, 60).size(), 1u);
}

// ---- zscore, EWMA ----

TEST(ZScoreEwma, FiresOnOutlierWithAlpha) {
  ZScoreParams p;
  p.alpha = 0.1;
  p.z = 4;
  p.min_samples = 10;
  Engine engine(PolicyOf({Rule("ewma", p)}));
  FeedNoise(engine, 0, 50);
  EXPECT_THAT(Feed(engine, 50 * kSec, 11.5), IsEmpty());
  EXPECT_EQ(Feed(engine, 51 * kSec, 25).size(), 1u);
}

TEST(ZScoreEwma, HalfLifeWeighsByEventTime) {
  ZScoreParams p;
  p.half_life_ms = 10 * kSec;
  p.z = 4;
  p.min_samples = 10;
  Engine engine(PolicyOf({Rule("ewma", p)}));
  FeedNoise(engine, 0, 50);
  EXPECT_EQ(Feed(engine, 50 * kSec, 25).size(), 1u);
  // Back to normal: resolves.
  const auto events = Feed(engine, 51 * kSec, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
}

TEST(ZScoreEwma, UndecidedUntilMinSamples) {
  ZScoreParams p;
  p.alpha = 0.5;
  p.min_samples = 20;
  Engine engine(PolicyOf({Rule("ewma", p)}));
  FeedNoise(engine, 0, 19);
  EXPECT_THAT(Feed(engine, 19 * kSec, 1e6), IsEmpty());
}

// ---- stale ----

StaleParams Stale(int64_t after_ms) {
  StaleParams p;
  p.after_ms = after_ms;
  return p;
}

TEST(StaleRule, FiresFromTheClockWithoutAnyMessage) {
  Engine engine(PolicyOf({Rule("quiet", Stale(5 * kMin))}));
  Feed(engine, 1000 * kSec, 21.5);
  EXPECT_THAT(Tick(engine, 1000 * kSec + 5 * kMin - 1), IsEmpty());
  const auto events = Tick(engine, 1000 * kSec + 5 * kMin);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kFiring);
  EXPECT_EQ(events[0].sensor, kSensor);
  EXPECT_EQ(events[0].value, 21.5);  // the last value seen
  EXPECT_EQ(events[0].started_ms, 1000 * kSec + 5 * kMin);
  EXPECT_EQ(events[0].ts_ms, 1000 * kSec + 5 * kMin);
}

TEST(StaleRule, FiresOncePerSilence) {
  Engine engine(PolicyOf({Rule("quiet", Stale(kMin))}));
  Feed(engine, 0, 1);
  EXPECT_EQ(Tick(engine, kMin).size(), 1u);
  EXPECT_THAT(Tick(engine, 2 * kMin), IsEmpty());
  EXPECT_THAT(Tick(engine, 60 * kMin), IsEmpty());
}

TEST(StaleRule, NextReadingResolves) {
  Engine engine(PolicyOf({Rule("quiet", Stale(kMin))}));
  Feed(engine, 0, 1);
  Tick(engine, 2 * kMin);
  const auto events = Feed(engine, 3 * kMin, 2);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
  EXPECT_EQ(events[0].started_ms, kMin);
}

TEST(StaleRule, ReadingsKeepItQuiet) {
  Engine engine(PolicyOf({Rule("quiet", Stale(kMin))}));
  for (int64_t t = 0; t < 10 * kMin; t += 30 * kSec) {
    Feed(engine, t, 1);
    EXPECT_THAT(Tick(engine, t + 30 * kSec - 1), IsEmpty());
  }
}

TEST(StaleRule, NeverSeenSensorIsNotStale) {
  Engine engine(PolicyOf({Rule("quiet", Stale(kMin))}));
  EXPECT_THAT(Tick(engine, 100 * kMin), IsEmpty());
}

TEST(StaleRule, CooldownDelaysTheNextFiring) {
  Engine engine(PolicyOf({Rule("quiet", Stale(kMin), 10 * kMin)}));
  Feed(engine, 0, 1);
  ASSERT_EQ(Tick(engine, kMin).size(), 1u);
  ASSERT_EQ(Feed(engine, 2 * kMin, 1).size(), 1u);  // resolved at 2 min
  EXPECT_THAT(Tick(engine, 5 * kMin), IsEmpty());   // stale again, but cooling down
  EXPECT_EQ(Tick(engine, 12 * kMin).size(), 1u);
}

TEST(StaleRule, EachSensorOnItsOwn) {
  Engine engine(PolicyOf({Rule("quiet", Stale(kMin))}));
  Feed(engine, 0, 1, "plant/a");
  Feed(engine, 50 * kSec, 1, "plant/b");
  const auto events = Tick(engine, 70 * kSec);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].sensor, "plant/a");
}

TEST(StaleRule, MarkOfflineFiresAtOnceForTheSensorsUnderThePrefix) {
  Engine engine(PolicyOf({Rule("quiet", Stale(10 * kMin))}));
  Feed(engine, 0, 1, "plant/line1/a");
  Feed(engine, 0, 2, "plant/line1/b");
  Feed(engine, 0, 3, "plant/line2/a");
  std::vector<AlertEvent> out;
  EXPECT_EQ(engine.MarkOffline("plant/line1/", 5 * kSec, out), 2u);
  ASSERT_EQ(out.size(), 2u);
  for (const AlertEvent& e : out) {
    EXPECT_EQ(e.state, AlertState::kFiring);
    EXPECT_TRUE(e.sensor.starts_with("plant/line1/")) << e.sensor;
    EXPECT_EQ(e.ts_ms, 5 * kSec);
    EXPECT_EQ(e.started_ms, 5 * kSec);
  }
  // Already firing: neither a second death nor the clock fires them again; line2 waits
  // for its `after` as before.
  out.clear();
  EXPECT_EQ(engine.MarkOffline("plant/line1/", 6 * kSec, out), 0u);
  const auto ticked = Tick(engine, 10 * kMin);
  ASSERT_EQ(ticked.size(), 1u);
  EXPECT_EQ(ticked[0].sensor, "plant/line2/a");
  // The next reading (a birth) resolves it.
  const auto back = Feed(engine, 11 * kMin, 1, "plant/line1/a");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].state, AlertState::kResolved);
}

TEST(StaleRule, MarkOfflineRespectsTheCooldown) {
  Engine engine(PolicyOf({Rule("quiet", Stale(kMin), 10 * kMin)}));
  Feed(engine, 0, 1);
  ASSERT_EQ(Tick(engine, kMin).size(), 1u);
  ASSERT_EQ(Feed(engine, 2 * kMin, 1).size(), 1u);  // resolved at 2 min
  std::vector<AlertEvent> out;
  EXPECT_EQ(engine.MarkOffline("plant/", 3 * kMin, out), 0u);
  EXPECT_EQ(engine.MarkOffline("plant/", 12 * kMin, out), 1u);
}

// ---- flatline ----

FlatlineParams Flat(double epsilon, int64_t window_ms) {
  FlatlineParams p;
  p.epsilon = epsilon;
  p.window_ms = window_ms;
  return p;
}

TEST(FlatlineRule, FiresWhenValueStuckForWindow) {
  Engine engine(PolicyOf({Rule("stuck", Flat(0.01, 10 * kMin))}));
  Feed(engine, 0, 20.0);
  Feed(engine, kMin, 20.5);  // moving: the run starts here
  for (int64_t t = 2 * kMin; t < 11 * kMin; t += kMin) {
    EXPECT_THAT(Feed(engine, t, 20.5 + static_cast<double>(t % 2) * 0.005), IsEmpty()) << t;
  }
  const auto events = Feed(engine, 11 * kMin, 20.5);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kFiring);
  EXPECT_EQ(events[0].started_ms, kMin);
}

TEST(FlatlineRule, MovementBeyondEpsilonResolves) {
  Engine engine(PolicyOf({Rule("stuck", Flat(0.0, kMin))}));
  Feed(engine, 0, 5);
  ASSERT_EQ(Feed(engine, kMin, 5).size(), 1u);
  EXPECT_THAT(Feed(engine, 2 * kMin, 5), IsEmpty());
  const auto events = Feed(engine, 3 * kMin, 5.001);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
}

TEST(FlatlineRule, SlowDriftWithinEpsilonOfRunCounts) {
  // The band is max - min of the whole run, so a slow drift eventually breaks it.
  Engine engine(PolicyOf({Rule("stuck", Flat(1.0, 10 * kMin))}));
  for (int64_t i = 0; i < 20; ++i) {
    EXPECT_THAT(Feed(engine, i * kMin, 0.3 * static_cast<double>(i)), IsEmpty()) << i;
  }
}

// ---- range ----

TEST(RangeRule, OutsidePhysicalRangeIsASensorFault) {
  RangeParams p;
  p.min = -40;
  p.max = 125;
  Engine engine(PolicyOf({Rule("fault", p)}));
  EXPECT_THAT(Feed(engine, 0, 125), IsEmpty());
  EXPECT_THAT(Feed(engine, 1, -40), IsEmpty());
  ASSERT_EQ(Feed(engine, 2, -273).size(), 1u);
  const auto events = Feed(engine, 3, 20);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
  EXPECT_EQ(Feed(engine, 4, 126).size(), 1u);
}

TEST(RangeRule, ForIgnoresSingleGlitches) {
  RangeParams p;
  p.max = 100;
  p.for_ms = 10 * kSec;
  Engine engine(PolicyOf({Rule("fault", p)}));
  EXPECT_THAT(Feed(engine, 0, 1e6), IsEmpty());
  EXPECT_THAT(Feed(engine, kSec, 50), IsEmpty());
  EXPECT_THAT(Feed(engine, 2 * kSec, 1e6), IsEmpty());
  EXPECT_EQ(Feed(engine, 12 * kSec, 1e6).size(), 1u);
}

// ---- detector level ----

TEST(ZScoreRule, VeryLongWindowKeepsFixedState) {
  Engine engine(PolicyOf({Rule("z", ZWindow(1'000'000 * kSec, 3, 10))}));
  // Past the first readings (the alert context ring fills), nothing grows.
  for (int64_t t = 0; t < 100; ++t) Feed(engine, t, t % 2 == 0 ? 9.0 : 11.0);
  const size_t bytes = engine.ApproxStateBytes();
  for (int64_t t = 100; t < 20'000; ++t) Feed(engine, t, t % 2 == 0 ? 9.0 : 11.0);
  EXPECT_EQ(engine.ApproxStateBytes(), bytes);
  EXPECT_EQ(Feed(engine, 20'000, 30).size(), 1u);
}

}  // namespace
}  // namespace edge::rules
