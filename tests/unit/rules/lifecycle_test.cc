// Filters, duplicates, policy swaps and episode restore, through the Engine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "edge/rules/engine.h"

namespace edge::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kSec = 1000;
constexpr char kSensor[] = "plant/boiler1/temp";

RuleSpec Above(std::string id, double level, std::string match = "plant/#") {
  RuleSpec r;
  r.id = std::move(id);
  r.match = std::move(match);
  ThresholdParams t;
  t.above = level;
  r.params = t;
  return r;
}

RuleSpec WithFor(RuleSpec r, int64_t for_ms) {
  std::get<ThresholdParams>(r.params).for_ms = for_ms;
  return r;
}

Policy PolicyOf(std::vector<RuleSpec> rules, std::vector<FilterSpec> filters = {}) {
  Policy p;
  p.rules = std::move(rules);
  p.filters = std::move(filters);
  return p;
}

FilterSpec Filter(std::string match) {
  FilterSpec f;
  f.match = std::move(match);
  return f;
}

struct Fed {
  ReadingVerdict verdict;
  std::vector<AlertEvent> events;
};

Fed Feed(Engine& e, int64_t ts, double v, const std::string& s = kSensor) {
  Fed f;
  f.verdict = e.Process(Reading{s, ts, v}, f.events);
  return f;
}

// ---- filters ----

TEST(Filters, NonFiniteValuesAreDroppedForEverySensor) {
  Engine engine(PolicyOf({Above("hot", 90)}));
  const Fed nan = Feed(engine, 0, std::nan(""));
  const Fed inf = Feed(engine, 1, -std::numeric_limits<double>::infinity(), "office/x");
  EXPECT_FALSE(nan.verdict.accepted);
  EXPECT_FALSE(nan.verdict.store);
  EXPECT_FALSE(inf.verdict.accepted);
  EXPECT_EQ(engine.non_finite(), 2u);
}

TEST(Filters, ValidRangeRejectsBeforeRulesAndCounts) {
  FilterSpec f = Filter("plant/#");
  f.valid_min = -40;
  f.valid_max = 125;
  Engine engine(PolicyOf({Above("hot", 90)}, {f}));
  const Fed bad = Feed(engine, 0, 850);  // a typical sensor error code
  EXPECT_FALSE(bad.verdict.accepted);
  EXPECT_THAT(bad.events, IsEmpty());
  EXPECT_EQ(engine.out_of_range(), 1u);
  const Fed edge = Feed(engine, 1, 125);  // the bound itself is valid
  EXPECT_TRUE(edge.verdict.accepted);
  EXPECT_EQ(edge.events.size(), 1u);
}

TEST(Filters, RejectedReadingJoinsNoContext) {
  FilterSpec f = Filter("#");
  f.valid_max = 1000;
  Engine engine(PolicyOf({Above("hot", 90)}, {f}));
  Feed(engine, 0, 10);
  Feed(engine, 1, 5000);
  const Fed fired = Feed(engine, 2, 95);
  ASSERT_EQ(fired.events.size(), 1u);
  EXPECT_EQ(fired.events[0].context.size(), 2u);
}

TEST(Filters, FirstMatchingFilterWins) {
  FilterSpec narrow = Filter("plant/boiler1/#");
  narrow.valid_max = 1000;
  FilterSpec wide = Filter("plant/#");
  wide.valid_max = 10;
  Engine engine(PolicyOf({}, {narrow, wide}));
  EXPECT_TRUE(Feed(engine, 0, 500).verdict.accepted);
  EXPECT_FALSE(Feed(engine, 0, 500, "plant/boiler2/temp").verdict.accepted);
}

TEST(Filters, DownsampleThinsStorageButRulesSeeEveryReading) {
  FilterSpec f = Filter("plant/#");
  f.downsample_ms = 10 * kSec;
  Engine engine(PolicyOf({Above("hot", 90)}, {f}));
  std::vector<bool> stored;
  for (int64_t t = 0; t <= 20; t += 2) stored.push_back(Feed(engine, t * kSec, 20).verdict.store);
  EXPECT_THAT(stored, ElementsAre(true, false, false, false, false, true, false, false, false,
                                  false, true));
  const Fed hot = Feed(engine, 21 * kSec, 95);  // not stored, still fires
  EXPECT_FALSE(hot.verdict.store);
  EXPECT_EQ(hot.events.size(), 1u);
}

TEST(Filters, DeadbandStoresOnlyChangesBeyondIt) {
  FilterSpec f = Filter("#");
  f.deadband = 0.5;
  Engine engine(PolicyOf({}, {f}));
  std::vector<bool> stored;
  for (double v : {20.0, 20.3, 20.5, 20.6, 20.0, 19.9}) {
    stored.push_back(Feed(engine, 0, v).verdict.store);
  }
  // 20.0 stored; 20.3, 20.5 within 0.5; 20.6 beyond; 20.0 within of 20.6? no: 0.6 -> stored;
  // 19.9 within 0.1 of 20.0.
  EXPECT_THAT(stored, ElementsAre(true, false, false, true, true, false));
}

TEST(Filters, NoFilterStoresEverything) {
  Engine engine(PolicyOf({}));
  EXPECT_TRUE(Feed(engine, 0, 1).verdict.store);
  EXPECT_TRUE(Feed(engine, 0, 1).verdict.store);
}

// ---- duplicates ----

TEST(Duplicates, SameTimestampAndValueIsIgnoredAndCounted) {
  Engine engine(PolicyOf({Above("hot", 90)}));
  ASSERT_EQ(Feed(engine, 5, 95).events.size(), 1u);
  ASSERT_EQ(Feed(engine, 6, 10).events.size(), 1u);
  const Fed dup = Feed(engine, 6, 10);
  EXPECT_THAT(dup.events, IsEmpty());
  EXPECT_FALSE(dup.verdict.store);
  EXPECT_EQ(engine.duplicates(), 1u);
  EXPECT_EQ(engine.out_of_order(), 0u);
}

// ---- SwapPolicy ----

TEST(SwapPolicy, UnchangedRuleKeepsItsFiringEpisode) {
  Engine engine(PolicyOf({Above("hot", 90), Above("warm", 50)}));
  ASSERT_EQ(Feed(engine, 0, 95).events.size(), 2u);
  std::vector<AlertEvent> out;
  engine.SwapPolicy(PolicyOf({Above("warm", 50), Above("hot", 90), Above("new", 99)}), out);
  EXPECT_THAT(out, IsEmpty());
  // Still firing: no second firing for hot or warm; the new rule starts afresh.
  const Fed next = Feed(engine, 1, 96);
  EXPECT_THAT(next.events, IsEmpty());
  const Fed resolve = Feed(engine, 2, 10);
  ASSERT_EQ(resolve.events.size(), 2u);
  EXPECT_EQ(resolve.events[0].rule_id, "warm");
  EXPECT_EQ(resolve.events[0].started_ms, 0);
  EXPECT_EQ(resolve.events[1].rule_id, "hot");
}

TEST(SwapPolicy, UnchangedRuleKeepsItsPendingRun) {
  Engine engine(PolicyOf({WithFor(Above("hot", 90), 10 * kSec)}));
  Feed(engine, 0, 95);
  std::vector<AlertEvent> out;
  engine.SwapPolicy(PolicyOf({WithFor(Above("hot", 90), 10 * kSec), Above("other", 1000)}), out);
  const Fed fired = Feed(engine, 10 * kSec, 95);
  ASSERT_EQ(fired.events.size(), 1u);
  EXPECT_EQ(fired.events[0].started_ms, 0);
}

TEST(SwapPolicy, ChangedRuleResolvesAndStartsAfresh) {
  Engine engine(PolicyOf({Above("hot", 90)}));
  Feed(engine, 0, 95);
  std::vector<AlertEvent> out;
  engine.SwapPolicy(PolicyOf({Above("hot", 80)}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].state, AlertState::kResolved);
  EXPECT_EQ(out[0].rule_id, "hot");
  EXPECT_EQ(out[0].ts_ms, 0);
  EXPECT_EQ(out[0].value, 95);
  const Fed again = Feed(engine, 1, 95);
  ASSERT_EQ(again.events.size(), 1u);
  EXPECT_EQ(again.events[0].state, AlertState::kFiring);
  EXPECT_EQ(again.events[0].started_ms, 1);
}

TEST(SwapPolicy, RemovedRuleResolves) {
  Engine engine(PolicyOf({Above("hot", 90)}));
  Feed(engine, 0, 95);
  std::vector<AlertEvent> out;
  engine.SwapPolicy(PolicyOf({}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].state, AlertState::kResolved);
  EXPECT_THAT(Feed(engine, 1, 95).events, IsEmpty());
}

TEST(SwapPolicy, NewPatternReachesKnownSensors) {
  Engine engine(PolicyOf({Above("hot", 90, "other/#")}));
  Feed(engine, 0, 10);
  std::vector<AlertEvent> out;
  engine.SwapPolicy(PolicyOf({Above("hot", 90, "plant/#")}), out);
  EXPECT_EQ(Feed(engine, 1, 95).events.size(), 1u);
  EXPECT_EQ(engine.policy().rules[0].match, "plant/#");
}

TEST(SwapPolicy, StaleRulesAreReindexed) {
  RuleSpec stale;
  stale.id = "quiet";
  stale.match = "#";
  stale.params = StaleParams{60 * kSec};
  Engine engine(PolicyOf({}));
  Feed(engine, 0, 1);
  std::vector<AlertEvent> out;
  engine.SwapPolicy(PolicyOf({stale}), out);
  engine.Advance(60 * kSec, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].rule_id, "quiet");
}

TEST(SwapPolicy, ContextSurvivesAResize) {
  Policy p = PolicyOf({Above("hot", 90)});
  p.context_size = 3;
  Engine engine(p);
  Feed(engine, 0, 1);
  Feed(engine, 1, 2);
  Feed(engine, 2, 3);
  std::vector<AlertEvent> out;
  p.context_size = 2;
  engine.SwapPolicy(p, out);
  const Fed fired = Feed(engine, 3, 95);
  ASSERT_EQ(fired.events.size(), 1u);
  EXPECT_EQ(fired.events[0].context.size(), 2u);
  EXPECT_EQ(fired.events[0].context[0].first, 2);
}

// ---- episodes across restarts ----

TEST(Episodes, RestoredEpisodeDoesNotFireAgainAndResolves) {
  Engine before(PolicyOf({Above("hot", 90)}));
  Feed(before, 100, 95);
  const std::vector<Episode> saved = before.FiringEpisodes();
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0], (Episode{"hot", kSensor, 100, 100, 95}));

  Engine after(PolicyOf({Above("hot", 90)}));
  EXPECT_EQ(after.RestoreEpisodes(saved), 1u);
  EXPECT_THAT(Feed(after, 200, 96).events, IsEmpty());  // no duplicate firing
  const Fed resolved = Feed(after, 300, 10);            // no lost resolve
  ASSERT_EQ(resolved.events.size(), 1u);
  EXPECT_EQ(resolved.events[0].state, AlertState::kResolved);
  EXPECT_EQ(resolved.events[0].started_ms, 100);
}

TEST(Episodes, UnknownRuleOrSensorIsSkipped) {
  Engine engine(PolicyOf({Above("hot", 90)}));
  EXPECT_EQ(engine.RestoreEpisodes({{"gone", kSensor, 1, 1, 1}, {"hot", "office/x", 1, 1, 1}}), 0u);
  EXPECT_THAT(engine.FiringEpisodes(), IsEmpty());
}

TEST(Episodes, RestoredReadingOrdersLaterOnes) {
  Engine engine(PolicyOf({Above("hot", 90)}));
  engine.RestoreEpisodes({{"hot", kSensor, 100, 500, 95}});
  EXPECT_THAT(Feed(engine, 400, 10).events, IsEmpty());  // older than the saved reading
  EXPECT_EQ(engine.out_of_order(), 1u);
}

TEST(Episodes, RestoredStaleEpisodeStaysQuietUntilAReading) {
  RuleSpec stale;
  stale.id = "quiet";
  stale.match = "#";
  stale.params = StaleParams{60 * kSec};
  Engine engine(PolicyOf({stale}));
  engine.RestoreEpisodes({{"quiet", kSensor, 60 * kSec, 0, 1}});
  std::vector<AlertEvent> out;
  engine.Advance(3600 * kSec, out);
  EXPECT_THAT(out, IsEmpty());
  const Fed back = Feed(engine, 3601 * kSec, 1);
  ASSERT_EQ(back.events.size(), 1u);
  EXPECT_EQ(back.events[0].state, AlertState::kResolved);
}

TEST(Episodes, WarmingDetectorKeepsRestoredEpisodeFiring) {
  RuleSpec z;
  z.id = "z";
  z.match = "#";
  ZScoreParams p;
  p.window_ms = 3600 * kSec;
  p.min_samples = 5;
  z.params = p;
  Engine engine(PolicyOf({z}));
  engine.RestoreEpisodes({{"z", kSensor, 1, 1, 100}});
  // The fresh window cannot tell yet: the episode neither resolves nor fires again.
  for (int64_t t = 2; t < 6; ++t) EXPECT_THAT(Feed(engine, t, 10).events, IsEmpty());
}

TEST(Engine, StateBytesPerSensorRuleStaySmall) {
  Engine engine(PolicyOf({Above("a", 1), Above("b", 2), Above("c", 3)}));
  for (int i = 0; i < 1000; ++i) Feed(engine, 0, 0, "plant/s" + std::to_string(i));
  EXPECT_LT(engine.ApproxStateBytes() / 3000, 1024u);
}

}  // namespace
}  // namespace edge::rules
