#include "edge/rules/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace edge::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr int64_t kSec = 1000;

struct RuleBuilder {
  RuleSpec spec;

  explicit RuleBuilder(std::string id, std::string match = "plant/+/temp") {
    spec.id = std::move(id);
    spec.match = std::move(match);
    spec.params = ThresholdParams{};
  }
  ThresholdParams& t() { return std::get<ThresholdParams>(spec.params); }
  RuleBuilder& Above(double v) {
    t().above = v;
    return *this;
  }
  RuleBuilder& Below(double v) {
    t().below = v;
    return *this;
  }
  RuleBuilder& Clear(double v) {
    t().clear = v;
    return *this;
  }
  RuleBuilder& For(int64_t ms) {
    t().for_ms = ms;
    return *this;
  }
  RuleBuilder& Cooldown(int64_t ms) {
    spec.cooldown_ms = ms;
    return *this;
  }
  RuleBuilder& WithSeverity(Severity s) {
    spec.severity = s;
    return *this;
  }
  operator RuleSpec() const { return spec; }  // NOLINT: builder
};

Policy MakePolicy(std::vector<RuleSpec> rules, size_t context_size = 10) {
  Policy p;
  p.version = "test";
  p.context_size = context_size;
  p.rules = std::move(rules);
  return p;
}

// Feeds one reading and returns the events it produced.
std::vector<AlertEvent> Feed(Engine& engine, const std::string& sensor, int64_t ts_ms,
                             double value) {
  std::vector<AlertEvent> out;
  engine.Process(Reading{sensor, ts_ms, value}, out);
  return out;
}

constexpr char kBoiler[] = "plant/boiler1/temp";

// ---- Threshold: firing and resolving ----

TEST(ThresholdRule, FiresWhenValueExceedsAbove) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).WithSeverity(Severity::kCritical)}));
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 1000, 95.5);
  ASSERT_EQ(events.size(), 1u);
  const AlertEvent& e = events[0];
  EXPECT_EQ(e.rule_id, "hot");
  EXPECT_EQ(e.sensor, kBoiler);
  EXPECT_EQ(e.severity, Severity::kCritical);
  EXPECT_EQ(e.state, AlertState::kFiring);
  EXPECT_EQ(e.value, 95.5);
  EXPECT_EQ(e.ts_ms, 1000);
  EXPECT_EQ(e.started_ms, 1000);
}

TEST(ThresholdRule, ValueAtAboveLevelIsNotBad) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  EXPECT_THAT(Feed(engine, kBoiler, 0, 90), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 1, 89), IsEmpty());
}

TEST(ThresholdRule, FiresWhenValueDropsUnderBelow) {
  Engine engine(MakePolicy({RuleBuilder("cold").Below(5)}));
  EXPECT_THAT(Feed(engine, kBoiler, 0, 5), IsEmpty());
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 1, 4.9);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kFiring);
}

TEST(ThresholdRule, BandRuleFiresOnEitherSide) {
  Engine engine(MakePolicy({RuleBuilder("band").Above(80).Below(20)}));
  ASSERT_EQ(Feed(engine, kBoiler, 0, 81).size(), 1u);
  ASSERT_EQ(Feed(engine, kBoiler, 1, 50).size(), 1u);  // resolved
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 2, 19);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kFiring);
}

TEST(ThresholdRule, ResolvesOnFirstGoodReadingWithoutClear) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 0, 95);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 5 * kSec, 90);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
  EXPECT_EQ(events[0].value, 90);
  EXPECT_EQ(events[0].ts_ms, 5 * kSec);
}

TEST(ThresholdRule, FiresOncePerEpisode) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  EXPECT_EQ(Feed(engine, kBoiler, 0, 95).size(), 1u);
  EXPECT_THAT(Feed(engine, kBoiler, 1 * kSec, 99), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 2 * kSec, 91), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 3 * kSec, 120), IsEmpty());
}

TEST(ThresholdRule, ResolvedEventCarriesEpisodeStart) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 7 * kSec, 95);
  Feed(engine, kBoiler, 8 * kSec, 96);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 9 * kSec, 20);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].started_ms, 7 * kSec);
  EXPECT_EQ(events[0].ts_ms, 9 * kSec);
}

TEST(ThresholdRule, NewEpisodeFiresAgainAfterResolve) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 0, 95);
  Feed(engine, kBoiler, 1 * kSec, 50);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 2 * kSec, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kFiring);
  EXPECT_EQ(events[0].started_ms, 2 * kSec);
}

TEST(ThresholdRule, InfiniteValueIsDroppedNotBad) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  EXPECT_THAT(Feed(engine, kBoiler, 0, std::numeric_limits<double>::infinity()), IsEmpty());
  EXPECT_EQ(engine.non_finite(), 1u);
}

// ---- Threshold: hysteresis ----

TEST(ThresholdRule, ClearsOnlyBelowClearLevel) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).Clear(85)}));
  ASSERT_EQ(Feed(engine, kBoiler, 0, 95).size(), 1u);
  EXPECT_THAT(Feed(engine, kBoiler, 1, 89), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 2, 85.01), IsEmpty());
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 3, 84);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
}

TEST(ThresholdRule, ValueAtClearLevelResolves) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).Clear(85)}));
  Feed(engine, kBoiler, 0, 95);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 1, 85);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
}

TEST(ThresholdRule, BelowRuleClearsOnlyAboveClearLevel) {
  Engine engine(MakePolicy({RuleBuilder("cold").Below(10).Clear(15)}));
  ASSERT_EQ(Feed(engine, kBoiler, 0, 5).size(), 1u);
  EXPECT_THAT(Feed(engine, kBoiler, 1, 12), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 2, 14.99), IsEmpty());
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 3, 15);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
}

TEST(ThresholdRule, ValueBetweenClearAndAboveDoesNotStartAnEpisode) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).Clear(85)}));
  EXPECT_THAT(Feed(engine, kBoiler, 0, 88), IsEmpty());
  Feed(engine, kBoiler, 1, 95);
  Feed(engine, kBoiler, 2, 80);  // resolved
  EXPECT_THAT(Feed(engine, kBoiler, 3, 88), IsEmpty());
  EXPECT_EQ(Feed(engine, kBoiler, 4, 90.5).size(), 1u);
}

// ---- Threshold: `for` ----

TEST(ThresholdRule, ForDelaysFiringUntilConditionHeldLongEnough) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).For(30 * kSec)}));
  EXPECT_THAT(Feed(engine, kBoiler, 100 * kSec, 95), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 110 * kSec, 95), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 129 * kSec, 95), IsEmpty());
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 130 * kSec, 96);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].started_ms, 100 * kSec);
  EXPECT_EQ(events[0].ts_ms, 130 * kSec);
  EXPECT_EQ(events[0].value, 96);
}

TEST(ThresholdRule, ForInterruptedByGoodReadingStartsOver) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).For(30 * kSec)}));
  Feed(engine, kBoiler, 0, 95);
  EXPECT_THAT(Feed(engine, kBoiler, 10 * kSec, 50), IsEmpty());
  Feed(engine, kBoiler, 20 * kSec, 95);
  EXPECT_THAT(Feed(engine, kBoiler, 40 * kSec, 95), IsEmpty());
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 50 * kSec, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].started_ms, 20 * kSec);
}

TEST(ThresholdRule, ForFiresOnFirstBadReadingPastTheDuration) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).For(30 * kSec)}));
  Feed(engine, kBoiler, 0, 95);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 10 * 60 * kSec, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].started_ms, 0);
}

TEST(ThresholdRule, PendingRunThatEndsProducesNoEvent) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).For(30 * kSec)}));
  Feed(engine, kBoiler, 0, 95);
  EXPECT_THAT(Feed(engine, kBoiler, 40 * kSec, 10), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 50 * kSec, 95), IsEmpty());
}

TEST(ThresholdRule, ForUsesPlainConditionNotClearLevel) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).Clear(80).For(30 * kSec)}));
  Feed(engine, kBoiler, 0, 95);
  EXPECT_THAT(Feed(engine, kBoiler, 10 * kSec, 85), IsEmpty());  // not firing: cancels
  EXPECT_THAT(Feed(engine, kBoiler, 30 * kSec, 95), IsEmpty());
}

// ---- Cooldown ----

TEST(Cooldown, SuppressesFiringAfterResolveUntilElapsed) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).Cooldown(60 * kSec)}));
  Feed(engine, kBoiler, 0, 95);
  Feed(engine, kBoiler, 10 * kSec, 50);  // resolved at 10 s
  EXPECT_THAT(Feed(engine, kBoiler, 30 * kSec, 95), IsEmpty());
  EXPECT_THAT(Feed(engine, kBoiler, 69 * kSec, 95), IsEmpty());
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 70 * kSec, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kFiring);
  EXPECT_EQ(events[0].started_ms, 30 * kSec);
}

TEST(Cooldown, DoesNotDelayFirstFiring) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).Cooldown(60 * kSec)}));
  EXPECT_EQ(Feed(engine, kBoiler, 0, 95).size(), 1u);
}

TEST(Cooldown, ConditionEndingDuringCooldownPreventsFiring) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).Cooldown(60 * kSec)}));
  Feed(engine, kBoiler, 0, 95);
  Feed(engine, kBoiler, 10 * kSec, 50);
  Feed(engine, kBoiler, 20 * kSec, 95);
  Feed(engine, kBoiler, 30 * kSec, 50);
  EXPECT_THAT(Feed(engine, kBoiler, 80 * kSec, 50), IsEmpty());
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 90 * kSec, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].started_ms, 90 * kSec);
}

TEST(Cooldown, IsPerSensor) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).Cooldown(60 * kSec)}));
  Feed(engine, kBoiler, 0, 95);
  Feed(engine, kBoiler, 10 * kSec, 50);
  EXPECT_EQ(Feed(engine, "plant/boiler2/temp", 20 * kSec, 95).size(), 1u);
}

TEST(Cooldown, CombinesWithFor) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).For(30 * kSec).Cooldown(60 * kSec)}));
  Feed(engine, kBoiler, 0, 95);
  Feed(engine, kBoiler, 30 * kSec, 95);  // fires
  Feed(engine, kBoiler, 40 * kSec, 50);  // resolves; cooldown until 100 s
  Feed(engine, kBoiler, 50 * kSec, 95);  // run starts
  EXPECT_THAT(Feed(engine, kBoiler, 90 * kSec, 95), IsEmpty());
  EXPECT_EQ(Feed(engine, kBoiler, 100 * kSec, 95).size(), 1u);
}

// ---- Out-of-order and invalid readings ----

TEST(OutOfOrder, OlderReadingIsIgnoredAndCounted) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 100 * kSec, 95);
  EXPECT_THAT(Feed(engine, kBoiler, 50 * kSec, 10), IsEmpty());  // would resolve if in order
  EXPECT_EQ(engine.out_of_order(), 1u);
  EXPECT_EQ(Feed(engine, kBoiler, 101 * kSec, 10).size(), 1u);
}

TEST(OutOfOrder, OlderBadReadingDoesNotFire) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 100 * kSec, 10);
  EXPECT_THAT(Feed(engine, kBoiler, 99 * kSec, 95), IsEmpty());
  EXPECT_EQ(engine.out_of_order(), 1u);
}

TEST(OutOfOrder, EqualTimestampIsInOrder) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 100 * kSec, 10);
  EXPECT_EQ(Feed(engine, kBoiler, 100 * kSec, 95).size(), 1u);
  EXPECT_EQ(engine.out_of_order(), 0u);
}

TEST(OutOfOrder, IsTrackedPerSensor) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 100 * kSec, 10);
  EXPECT_EQ(Feed(engine, "plant/boiler2/temp", 50 * kSec, 95).size(), 1u);
  EXPECT_EQ(engine.out_of_order(), 0u);
}

TEST(OutOfOrder, CountsAReadingOnceWhateverTheNumberOfRules) {
  Engine engine(MakePolicy({RuleBuilder("a").Above(90), RuleBuilder("b").Below(0)}));
  Feed(engine, kBoiler, 100, 10);
  Feed(engine, kBoiler, 50, 10);
  EXPECT_EQ(engine.out_of_order(), 1u);
}

TEST(OutOfOrder, ReadingOfUnmatchedSensorIsNotCounted) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, "office/humidity", 100, 10);
  Feed(engine, "office/humidity", 50, 10);
  EXPECT_EQ(engine.out_of_order(), 0u);
}

TEST(OutOfOrder, ExtremeTimestampsDoNotOverflow) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90).For(30 * kSec).Cooldown(kSec)}));
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_THAT(Feed(engine, kBoiler, kMin, 95), IsEmpty());
  EXPECT_EQ(Feed(engine, kBoiler, kMax, 95).size(), 1u);
  EXPECT_EQ(Feed(engine, kBoiler, kMax, 10).size(), 1u);
}

TEST(InvalidValue, NanReadingIsIgnoredAndCounted) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 0, 95);
  EXPECT_THAT(Feed(engine, kBoiler, 1, std::nan("")), IsEmpty());
  EXPECT_EQ(engine.nan_readings(), 1u);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 2, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].context, ElementsAre(Pair(0, 95.0), Pair(2, 10.0)));
}

// ---- Context ----

TEST(Context, EndsWithTriggeringReadingOldestFirst) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 1, 10);
  Feed(engine, kBoiler, 2, 20);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 3, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].context, ElementsAre(Pair(1, 10.0), Pair(2, 20.0), Pair(3, 95.0)));
}

TEST(Context, KeepsOnlyTheLastContextSizeReadings) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}, 3));
  for (int64_t i = 1; i <= 7; ++i) Feed(engine, kBoiler, i, static_cast<double>(i));
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 8, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].context, ElementsAre(Pair(6, 6.0), Pair(7, 7.0), Pair(8, 95.0)));
}

TEST(Context, WrapsAroundRepeatedly) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}, 2));
  for (int64_t i = 1; i <= 100; ++i) Feed(engine, kBoiler, i, 1);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 101, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].context, ElementsAre(Pair(100, 1.0), Pair(101, 95.0)));
}

TEST(Context, ZeroSizeGivesEmptyContext) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}, 0));
  Feed(engine, kBoiler, 1, 10);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 2, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].context, IsEmpty());
}

TEST(Context, HoldsOnlyTheAlertingSensorsReadings) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 1, 10);
  Feed(engine, "plant/boiler2/temp", 2, 20);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 3, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].context, ElementsAre(Pair(1, 10.0), Pair(3, 95.0)));
}

TEST(Context, LeavesOutOutOfOrderReadings) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 10, 10);
  Feed(engine, kBoiler, 5, 20);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 11, 95);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].context, ElementsAre(Pair(10, 10.0), Pair(11, 95.0)));
}

TEST(Context, ResolvedEventEndsWithResolvingReading) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}, 2));
  Feed(engine, kBoiler, 1, 95);
  Feed(engine, kBoiler, 2, 96);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 3, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].context, ElementsAre(Pair(2, 96.0), Pair(3, 10.0)));
}

// ---- Several rules and sensors ----

TEST(Engine, RulesOnOneSensorEmitInPolicyOrder) {
  Engine engine(MakePolicy({RuleBuilder("warm").Above(50).WithSeverity(Severity::kInfo),
                            RuleBuilder("cold").Below(0),
                            RuleBuilder("hot").Above(90).WithSeverity(Severity::kCritical)}));
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 0, 95);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].rule_id, "warm");
  EXPECT_EQ(events[0].severity, Severity::kInfo);
  EXPECT_EQ(events[1].rule_id, "hot");
  EXPECT_EQ(events[1].severity, Severity::kCritical);
}

TEST(Engine, RulesOnOneSensorKeepSeparateEpisodes) {
  Engine engine(MakePolicy({RuleBuilder("warm").Above(50), RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 0, 95);
  const std::vector<AlertEvent> events = Feed(engine, kBoiler, 1, 60);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rule_id, "hot");
  EXPECT_EQ(events[0].state, AlertState::kResolved);
}

TEST(Engine, EachSensorHasItsOwnEpisode) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  ASSERT_EQ(Feed(engine, "plant/boiler1/temp", 0, 95).size(), 1u);
  const std::vector<AlertEvent> second = Feed(engine, "plant/boiler2/temp", 1, 95);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].sensor, "plant/boiler2/temp");
  const std::vector<AlertEvent> resolved = Feed(engine, "plant/boiler1/temp", 2, 10);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].sensor, "plant/boiler1/temp");
  EXPECT_THAT(Feed(engine, "plant/boiler2/temp", 3, 95), IsEmpty());  // still firing
}

TEST(Engine, RuleSeesOnlyMatchingSensors) {
  Engine engine(MakePolicy(
      {RuleBuilder("hot", "plant/+/temp").Above(90), RuleBuilder("wet", "plant/#").Above(90)}));
  const std::vector<AlertEvent> humidity = Feed(engine, "plant/hall/humidity", 0, 95);
  ASSERT_EQ(humidity.size(), 1u);
  EXPECT_EQ(humidity[0].rule_id, "wet");
  EXPECT_THAT(Feed(engine, "office/boiler1/temp", 0, 95), IsEmpty());
}

TEST(Engine, AppendsToOutputWithoutClearingIt) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  std::vector<AlertEvent> out;
  engine.Process(Reading{"plant/a/temp", 0, 95}, out);
  engine.Process(Reading{"plant/b/temp", 0, 95}, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].sensor, "plant/a/temp");
  EXPECT_EQ(out[1].sensor, "plant/b/temp");
}

TEST(Engine, CountsDistinctSensorsIncludingUnmatchedOnes) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  EXPECT_EQ(engine.sensors_tracked(), 0u);
  Feed(engine, "plant/a/temp", 0, 1);
  Feed(engine, "plant/a/temp", 1, 1);
  Feed(engine, "plant/b/temp", 0, 1);
  Feed(engine, "office/humidity", 0, 1);
  EXPECT_EQ(engine.sensors_tracked(), 3u);
}

TEST(Engine, EmptyPolicyProducesNothing) {
  Engine engine(MakePolicy({}));
  EXPECT_THAT(Feed(engine, kBoiler, 0, 1e9), IsEmpty());
}

TEST(Engine, ExposesItsPolicy) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}, 7));
  EXPECT_EQ(engine.policy().version, "test");
  EXPECT_EQ(engine.policy().context_size, 7u);
  ASSERT_EQ(engine.policy().rules.size(), 1u);
  EXPECT_EQ(engine.policy().rules[0].id, "hot");
}

TEST(Engine, MovedEngineKeepsState) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  Feed(engine, kBoiler, 0, 95);
  Engine moved(std::move(engine));
  EXPECT_THAT(Feed(moved, kBoiler, 1, 96), IsEmpty());  // still firing: no second event
  EXPECT_EQ(Feed(moved, kBoiler, 2, 10).size(), 1u);
}

TEST(Engine, VerdictPointsAtTheSensorsOwnEntry) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(90)}));
  std::vector<AlertEvent> out;
  const ReadingVerdict first = engine.Process(Reading{kBoiler, 0, 20}, out);
  ASSERT_NE(first.sensor, nullptr);
  ASSERT_NE(first.caller_words, nullptr);
  EXPECT_EQ(*first.sensor, kBoiler);
  for (size_t i = 0; i < kCallerWords; ++i) EXPECT_EQ(first.caller_words[i], 0u);  // at first
  first.caller_words[1] = 42;

  const ReadingVerdict other = engine.Process(Reading{"plant/boiler2/temp", 0, 20}, out);
  EXPECT_NE(other.caller_words, first.caller_words);
  EXPECT_EQ(other.caller_words[1], 0u);
  EXPECT_EQ(*other.sensor, "plant/boiler2/temp");

  // Rejected readings point at the entry too, and the word survives a policy swap.
  engine.SwapPolicy(MakePolicy({RuleBuilder("hot").Above(80)}), out);
  const ReadingVerdict rejected =
      engine.Process(Reading{kBoiler, 1, std::numeric_limits<double>::quiet_NaN()}, out);
  EXPECT_FALSE(rejected.accepted);
  EXPECT_EQ(rejected.sensor, first.sensor);
  EXPECT_EQ(rejected.caller_words, first.caller_words);
  EXPECT_EQ(rejected.caller_words[1], 42u);
}

// ---- Sensor limit and idle sensors ----

TEST(SensorLimit, RefusesANewSensorBeyondTheLimitAndKeepsTrackedOnes) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(80)}));
  engine.SetSensorLimit(2);
  std::vector<AlertEvent> out;
  EXPECT_FALSE(engine.Process(Reading{"plant/a/temp", 0, 20}, out).refused);
  EXPECT_FALSE(engine.Process(Reading{"plant/b/temp", 0, 20}, out).refused);
  const ReadingVerdict third = engine.Process(Reading{"plant/c/temp", 0, 99}, out);
  EXPECT_TRUE(third.refused);
  EXPECT_FALSE(third.accepted);
  EXPECT_FALSE(third.store);
  EXPECT_EQ(third.sensor, nullptr);
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ(engine.sensors_tracked(), 2u);
  // A tracked sensor still fires.
  EXPECT_EQ(Feed(engine, "plant/a/temp", kSec, 99).size(), 1u);
}

TEST(SensorLimit, ForgetIdleDropsOnlySensorsIdleSinceTheCutoff) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(80)}));
  engine.SetSensorLimit(2);
  std::vector<AlertEvent> out;
  engine.SetActivityTime(100);
  engine.Process(Reading{"plant/a/temp", 0, 20}, out);
  engine.SetActivityTime(200);
  const ReadingVerdict b = engine.Process(Reading{"plant/b/temp", 0, 20}, out);
  b.caller_words[1] = 7;
  EXPECT_EQ(engine.ForgetIdle(150), 1u);
  EXPECT_EQ(engine.sensors_tracked(), 1u);
  // b kept its caller words; a new sensor fits again.
  const ReadingVerdict b2 = engine.Process(Reading{"plant/b/temp", kSec, 20}, out);
  EXPECT_EQ(b2.caller_words[1], 7u);
  EXPECT_FALSE(engine.Process(Reading{"plant/c/temp", 0, 20}, out).refused);
  // The forgotten sensor is a new one again: with b and c tracked it does not fit.
  EXPECT_TRUE(engine.Process(Reading{"plant/a/temp", -5, 20}, out).refused);
  EXPECT_EQ(engine.ForgetIdle(150), 0u);
  EXPECT_EQ(engine.out_of_order(), 0u);
}

TEST(SensorLimit, AForgottenSensorStartsAfresh) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(80)}));
  std::vector<AlertEvent> out;
  engine.SetActivityTime(100);
  ASSERT_TRUE(engine.Process(Reading{"plant/a/temp", kSec, 20}, out).accepted);
  engine.SetActivityTime(200);
  ASSERT_EQ(engine.ForgetIdle(150), 1u);
  // Older than its last reading before it was forgotten: not out of order, since the
  // engine no longer knows that reading.
  const ReadingVerdict again = engine.Process(Reading{"plant/a/temp", -5, 20}, out);
  EXPECT_TRUE(again.accepted);
  EXPECT_FALSE(again.refused);
  EXPECT_EQ(engine.out_of_order(), 0u);
}

TEST(SensorLimit, ForgetIdleKeepsASensorWhoseRuleIsFiring) {
  Engine engine(MakePolicy({RuleBuilder("hot").Above(80)}));
  std::vector<AlertEvent> out;
  engine.SetActivityTime(100);
  ASSERT_EQ(Feed(engine, kBoiler, 0, 99).size(), 1u);
  Feed(engine, "plant/quiet/temp", 0, 20);
  EXPECT_EQ(engine.ForgetIdle(1000), 1u);
  EXPECT_EQ(engine.sensors_tracked(), 1u);
  // Its resolve is not lost.
  const auto events = Feed(engine, kBoiler, kSec, 20);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, AlertState::kResolved);
}

TEST(SensorLimit, StaleRulesStillWorkAfterOtherSensorsAreForgotten) {
  RuleSpec stale;
  stale.id = "quiet";
  stale.match = "plant/+/temp";
  stale.params = StaleParams{10 * kSec};
  Engine engine(MakePolicy({stale}));
  std::vector<AlertEvent> out;
  engine.SetActivityTime(1);
  Feed(engine, "plant/old/temp", 0, 20);
  engine.SetActivityTime(5);
  Feed(engine, kBoiler, 0, 20);
  EXPECT_EQ(engine.ForgetIdle(3), 1u);
  engine.Advance(20 * kSec, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].sensor, kBoiler);
}

TEST(AlertState, HasLowercaseNames) {
  EXPECT_EQ(ToString(AlertState::kFiring), "firing");
  EXPECT_EQ(ToString(AlertState::kResolved), "resolved");
}

}  // namespace
}  // namespace edge::rules
