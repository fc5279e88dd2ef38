// The anomaly kind on synthetic series, through the Engine: readings every 5 minutes of event
// time from a UTC midnight, noise from a seeded generator, so every run sees the same values.
// Uniform noise on [-1, 1] has a spread of about 0.74 (1.4826 x its median absolute
// deviation of 0.5) and never deviates 3 spreads from its median: on it the rule can only
// fire on what the test adds.
#include "edge/rules/anomaly.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "edge/rules/engine.h"
#include "rule_builders.h"

namespace edge::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using namespace ::edge::rules::test_util;

constexpr int64_t kStep = 5 * kMin;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kPerDay = kDay / kStep;   // 288 readings
constexpr int64_t kT0 = 1'700'006'400'000;  // 2023-11-15 00:00 UTC
// Readings before the rule decides: 32 to fill the baseline, 100 scores of warm-up.
constexpr int64_t kUndecided = anomaly::kMinBaseline + anomaly::kWarmupScores - 1;

int64_t Ts(int64_t i) { return kT0 + i * kStep; }

RuleSpec AnomalyRule(std::string id = "odd", double sensitivity = 1.0) {
  return Rule(std::move(id), AnomalyParams{sensitivity, 0}, kAnomalyCooldownMs);
}

// Uniform on [-1, 1), from the standard-specified mt19937 sequence.
class Noise {
 public:
  explicit Noise(uint32_t seed) : rng_(seed) {}
  double operator()() { return static_cast<double>(rng_()) / 2147483648.0 - 1.0; }
  uint32_t Bits() { return static_cast<uint32_t>(rng_()); }

 private:
  std::mt19937 rng_;
};

// Feeds readings first..last-1, value(i) at Ts(i), and returns their events in order.
std::vector<AlertEvent> FeedRange(Engine& engine, int64_t first, int64_t last,
                                  const std::function<double(int64_t)>& value) {
  std::vector<AlertEvent> events;
  for (int64_t i = first; i < last; ++i) engine.Process(Reading{kSensor, Ts(i), value(i)}, events);
  return events;
}

// The reading indexes of the events in `state`.
std::vector<int64_t> Indexes(const std::vector<AlertEvent>& events, AlertState state,
                             const std::string& rule = "odd") {
  std::vector<int64_t> out;
  for (const AlertEvent& e : events) {
    if (e.state == state && e.rule_id == rule) out.push_back((e.ts_ms - kT0) / kStep);
  }
  return out;
}
std::vector<int64_t> Firings(const std::vector<AlertEvent>& events,
                             const std::string& rule = "odd") {
  return Indexes(events, AlertState::kFiring, rule);
}

TEST(AnomalyRule, ASpikeFiresOnceAndTheNextOrdinaryReadingResolvesIt) {
  Engine engine(PolicyOf({AnomalyRule()}));
  Noise noise(1);
  const auto level = [&](int64_t) { return 100 + noise(); };
  EXPECT_THAT(FeedRange(engine, 0, 1000, level), IsEmpty());
  const auto events = FeedRange(engine, 1000, 1300, [&](int64_t i) {
    return i == 1000 ? 120.0 : level(i);  // 27 spreads
  });
  EXPECT_THAT(Firings(events), ElementsAre(1000));
  EXPECT_THAT(Indexes(events, AlertState::kResolved), ElementsAre(1001));
  EXPECT_EQ(events[0].value, 120);
}

TEST(AnomalyRule, NothingIsDecidedBeforeTheBaselineAndWarmUp) {
  Engine engine(PolicyOf({AnomalyRule()}));
  Noise noise(2);
  const auto spikes = [&](int64_t i) { return i % 40 == 39 ? 150.0 : 100 + noise(); };
  EXPECT_THAT(FeedRange(engine, 0, kUndecided, spikes), IsEmpty());
  // The first decided reading may fire: a spike larger than those before does.
  EXPECT_THAT(Firings(FeedRange(engine, kUndecided, kUndecided + 1, [](int64_t) { return 1e4; })),
              ElementsAre(kUndecided));
}

TEST(AnomalyRule, ALevelShiftFiresOnceAndTheNewLevelBecomesTheNorm) {
  Engine engine(PolicyOf({AnomalyRule()}));
  Noise noise(3);
  FeedRange(engine, 0, 1000, [&](int64_t) { return 100 + noise(); });
  // 20 units up for good: one alert, resolved once shifted readings are no longer rare, and
  // none after that while the baseline moves to the new level (longer than the hold-off).
  const auto shifted = FeedRange(engine, 1000, 1600, [&](int64_t) { return 120 + noise(); });
  EXPECT_THAT(Firings(shifted), ElementsAre(1000));
  ASSERT_THAT(Indexes(shifted, AlertState::kResolved).size(), 1u);
  // Spikes are still found, now measured from the new level (one larger than the shift:
  // the shift's own deviations are in the histogram).
  EXPECT_THAT(Firings(FeedRange(engine, 1600, 1601, [](int64_t) { return 180.0; })),
              ElementsAre(1600));
}

TEST(AnomalyRule, ASecondAnomalyDuringTheHoldOffDoesNotFire) {
  Engine engine(PolicyOf({AnomalyRule()}));
  Noise noise(4);
  const auto with_spikes = [&](int64_t i) {
    return i == 1000 || i == 1100 || i == 1200 ? 130.0 : 100 + noise();
  };
  const auto events = FeedRange(engine, 0, 1300, with_spikes);
  // 1100 is 8 h 15 min after the resolve at 1001: held off. 1200 is 16.6 h after: fires.
  EXPECT_THAT(Firings(events), ElementsAre(1000, 1200));
}

// A plateau from 10:00 to 14:00 UTC every day, 100 units above the night.
double Workday(int64_t i, Noise& noise) {
  const int64_t hour = (i % kPerDay) * kStep / kHour;
  return (hour >= 10 && hour < 14 ? 200 : 100) + noise();
}

TEST(AnomalyRule, ADailyPatternStaysQuietOnceLearnt) {
  Engine engine(PolicyOf({AnomalyRule()}));
  Noise noise(5);
  // The first repeat of the plateau may fire: the hour-of-day baselines need two days.
  FeedRange(engine, 0, 2 * kPerDay, [&](int64_t i) { return Workday(i, noise); });
  EXPECT_THAT(
      FeedRange(engine, 2 * kPerDay, 28 * kPerDay, [&](int64_t i) { return Workday(i, noise); }),
      IsEmpty());
}

TEST(AnomalyRule, ThePatternAtTheWrongHourFires) {
  Engine engine(PolicyOf({AnomalyRule()}));
  Noise noise(6);
  FeedRange(engine, 0, 28 * kPerDay, [&](int64_t i) { return Workday(i, noise); });
  // Day 28 at 06:00, the daytime level: usual for the day, not for the morning.
  const int64_t six = 28 * kPerDay + 6 * kHour / kStep;
  const auto events = FeedRange(engine, 28 * kPerDay, six + 6, [&](int64_t i) {
    return i >= six ? 200 + noise() : Workday(i, noise);
  });
  EXPECT_THAT(Firings(events), ElementsAre(six));
}

TEST(AnomalyDetector, AfterTwoDaysTheHourOfDayBaselineExplainsTheDailyStep) {
  AnomalyDetector detector;
  Noise noise(7);
  const int64_t ten = 10 * kHour / kStep + 1;  // 10:05, the second reading of the plateau
  std::vector<double> at_ten;                  // deviation at 10:05, per day
  for (int64_t i = 0; i < 5 * kPerDay; ++i) {
    const AnomalyScore score = detector.Update(Ts(i), Workday(i, noise));
    if (i % kPerDay == ten) at_ten.push_back(score.deviation);
  }
  ASSERT_EQ(at_ten.size(), 5u);
  // Days 0 and 1: the step is 100 units against a quiet night. From day 2 the 10:00 slot
  // has seen two days of the plateau.
  EXPECT_GT(at_ten[0], 10);
  EXPECT_GT(at_ten[1], 10);
  EXPECT_LT(at_ten[2], 3);
  EXPECT_LT(at_ten[4], 3);
}

TEST(AnomalyRule, ANoiseBurstFiresOnceAndResolvesWhenItEnds) {
  Engine engine(PolicyOf({AnomalyRule()}));
  Noise noise(8);
  FeedRange(engine, 0, 2000, [&](int64_t) { return 100 + noise(); });
  // An hour of readings 10 to 15 units off, either way.
  const auto events = FeedRange(engine, 2000, 2100, [&](int64_t i) {
    if (i >= 2012) return 100 + noise();
    const double off = 10 + 5 * (noise() + 1) / 2;
    return i % 2 == 0 ? 100 + off : 100 - off;
  });
  EXPECT_THAT(Firings(events), ElementsAre(2000));
  EXPECT_THAT(Indexes(events, AlertState::kResolved), ElementsAre(2012));
}

TEST(AnomalyRule, ACountSeriesOfMostlyZerosIsQuietUntilACountFarAboveItsOwn) {
  Engine engine(PolicyOf({AnomalyRule()}));
  Noise noise(9);
  // 0 with probability 0.6, 1: 0.25, 2: 0.1, 3: 0.05. The median deviation is 0; the mean
  // deviation (0.6) sets the spread, so a 1 is 1.3 spreads and a 3 is 4.
  const auto counts = [&](int64_t) {
    const uint32_t r = noise.Bits() % 20;
    return r < 12 ? 0.0 : r < 17 ? 1.0 : r < 19 ? 2.0 : 3.0;
  };
  EXPECT_THAT(FeedRange(engine, 0, 20 * kPerDay, counts), IsEmpty());
  const int64_t end = 20 * kPerDay;
  EXPECT_THAT(Firings(FeedRange(engine, end, end + 1, [](int64_t) { return 15.0; })),
              ElementsAre(end));
}

TEST(AnomalyRule, HigherSensitivityFiresOnLessRareDeviations) {
  Engine engine(PolicyOf({AnomalyRule("low", 0.5), AnomalyRule("high", 2)}));
  // Noise that repeats every 8 readings keeps the baseline the same, so that every bump
  // scores the same: 7.7 units up, 6.7 spreads, every 200 readings. After the first, a bump
  // is about 0.3% to 0.5% of the readings: rarer than 0.003 x 2, not rarer than 0.003 x 0.5.
  const double cycle[8] = {-1, -0.75, -0.5, -0.25, 0.25, 0.5, 0.75, 1};
  const auto bumps = [&](int64_t i) { return i % 200 == 199 ? 107.7 : 100 + cycle[i % 8]; };
  const auto events = FeedRange(engine, 0, 4150, bumps);
  EXPECT_EQ(Firings(events, "high").size(), 4150u / 200);  // every bump
  EXPECT_THAT(Firings(events, "low"), ElementsAre(199));   // only the first, never seen before
  // A deviation rare for both fires both (12.5 h after the last bump's alert resolved).
  const auto spike = FeedRange(engine, 4150, 4151, [](int64_t) { return 130.0; });
  EXPECT_THAT(Firings(spike, "low"), ElementsAre(4150));
  EXPECT_THAT(Firings(spike, "high"), ElementsAre(4150));
}

TEST(AnomalyDetector, ALargeOffsetKeepsTheNoiseScaleAfterAShift) {
  // Noise of 10 on 1e9, then on 2e9: float32 values relative to the first reading would be
  // 1e9 apart from it, in steps of 64; relative to the median they keep the noise.
  AnomalyDetector detector;
  Noise noise(11);
  for (int64_t i = 0; i < 1000; ++i) detector.Update(Ts(i), 1e9 + 10 * noise());
  double largest = 0;
  for (int64_t i = 1000; i < 2000; ++i) {
    const AnomalyScore s = detector.Update(Ts(i), 2e9 + 10 * noise());
    if (i >= 1500) largest = std::max(largest, s.deviation);
  }
  EXPECT_LT(largest, 2);
  EXPECT_GT(detector.Update(Ts(2000), 2e9 + 500).deviation, 30);  // 50 noise units
}

TEST(AnomalyDetector, ExtremeValuesGiveFiniteScores) {
  AnomalyDetector detector;
  const double max = std::numeric_limits<double>::max();
  for (int64_t i = 0; i < 400; ++i) {
    const double v = i % 3 == 0 ? max : i % 3 == 1 ? -max : 1e-300;
    const AnomalyScore s = detector.Update(Ts(i), v);
    ASSERT_TRUE(std::isfinite(s.deviation)) << i;
    ASSERT_GE(s.rarity, 0) << i;
    ASSERT_LE(s.rarity, 1) << i;
  }
}

TEST(AnomalyRule, StateIsAtMostTwoKibPerSensorRule) {
  Engine engine(PolicyOf({AnomalyRule()}));
  const size_t before = engine.ApproxStateBytes(/*include_windows=*/true);
  Feed(engine, kT0, 1);
  const size_t detector = engine.ApproxStateBytes(/*include_windows=*/true) -
                          engine.ApproxStateBytes(/*include_windows=*/false);
  EXPECT_EQ(detector, sizeof(AnomalyDetector));
  EXPECT_LE(detector, 2048u);
  EXPECT_GT(engine.ApproxStateBytes(true), before);
}

}  // namespace
}  // namespace edge::rules
