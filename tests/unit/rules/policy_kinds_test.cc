// Parsing of the rule kinds beyond threshold, and of filters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "edge/rules/policy.h"

namespace edge::rules {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

Policy Ok(std::string_view text) {
  Result<Policy> p = ParsePolicy(text, "p.yaml");
  EXPECT_TRUE(p.ok()) << p.error();
  return p.ok() ? std::move(p).value() : Policy{};
}

std::string Err(std::string_view text) {
  Result<Policy> p = ParsePolicy(text, "p.yaml");
  EXPECT_FALSE(p.ok()) << "parsed unexpectedly: " << text;
  return p.error();
}

std::string OneRule(std::string_view body) {
  return "rules:\n  - id: r\n    match: plant/#\n" + std::string(body);
}

constexpr std::string_view kEveryKind = R"(
filters:
  - match: plant/+/temp
    valid_range: {min: -40, max: 125}
    deadband: 0.1
    downsample: 1m
  - match: "#"
rules:
  - {id: t, match: "#", kind: threshold, above: 1}
  - {id: rise, match: "#", kind: rate, window: 5m, max_rate: 0.5, direction: up, for: 1m}
  - {id: z, match: "#", kind: zscore, window: 1h, z: 4, min_samples: 30}
  - {id: e, match: "#", kind: zscore, half_life: 10m}
  - {id: a, match: "#", kind: zscore, alpha: 0.05}
  - {id: quiet, match: "#", kind: stale, after: 10m, severity: critical, cooldown: 1h}
  - {id: stuck, match: "#", kind: flatline, window: 30m, epsilon: 0.01}
  - {id: fault, match: "#", kind: range, min: -40, max: 125}
)";

TEST(ParseKinds, EveryKindAndFilter) {
  const Policy p = Ok(kEveryKind);
  ASSERT_EQ(p.filters.size(), 2u);
  EXPECT_EQ(p.filters[0].match, "plant/+/temp");
  EXPECT_EQ(p.filters[0].valid_min, -40);
  EXPECT_EQ(p.filters[0].valid_max, 125);
  EXPECT_EQ(p.filters[0].deadband, 0.1);
  EXPECT_EQ(p.filters[0].downsample_ms, 60'000);
  FilterSpec all;
  all.match = "#";
  EXPECT_EQ(p.filters[1], all);
  ASSERT_EQ(p.rules.size(), 8u);

  EXPECT_EQ(p.rules[1].Kind(), "rate");
  const auto& rate = std::get<RateParams>(p.rules[1].params);
  EXPECT_EQ(rate, (RateParams{300'000, 0.5, Direction::kUp, 60'000}));

  const auto& z = std::get<ZScoreParams>(p.rules[2].params);
  EXPECT_EQ(z.window_ms, 3'600'000);
  EXPECT_EQ(z.z, 4);
  EXPECT_EQ(z.min_samples, 30);
  const auto& e = std::get<ZScoreParams>(p.rules[3].params);
  EXPECT_EQ(e.half_life_ms, 600'000);
  EXPECT_EQ(e.window_ms, 0);
  EXPECT_EQ(e.z, 3);  // default
  EXPECT_EQ(e.min_samples, 10);
  EXPECT_EQ(std::get<ZScoreParams>(p.rules[4].params).alpha, 0.05);

  EXPECT_EQ(p.rules[5].Kind(), "stale");
  EXPECT_EQ(std::get<StaleParams>(p.rules[5].params).after_ms, 600'000);
  EXPECT_EQ(p.rules[5].severity, Severity::kCritical);
  EXPECT_EQ(p.rules[5].cooldown_ms, 3'600'000);
  EXPECT_EQ(std::get<FlatlineParams>(p.rules[6].params), (FlatlineParams{0.01, 1'800'000}));
  const auto& range = std::get<RangeParams>(p.rules[7].params);
  EXPECT_EQ(range.min, -40);
  EXPECT_EQ(range.max, 125);
}

TEST(ParseKinds, RateDirectionDefaultsToBoth) {
  const Policy p = Ok(OneRule("    kind: rate\n    window: 30s\n    max_rate: 2\n"));
  EXPECT_EQ(std::get<RateParams>(p.rules[0].params).direction, Direction::kBoth);
}

TEST(ParseKinds, FlatlineEpsilonDefaultsToZero) {
  const Policy p = Ok(OneRule("    kind: flatline\n    window: 1h\n"));
  EXPECT_EQ(std::get<FlatlineParams>(p.rules[0].params).epsilon, 0);
}

TEST(ParseKinds, AnomalyDefaultsToSensitivityOneNoForAndATwelveHourCooldown) {
  const Policy p = Ok(OneRule("    kind: anomaly\n"));
  EXPECT_EQ(p.rules[0].Kind(), "anomaly");
  EXPECT_EQ(std::get<AnomalyParams>(p.rules[0].params), (AnomalyParams{1.0, 0}));
  EXPECT_EQ(p.rules[0].cooldown_ms, 12 * 3'600'000);
}

TEST(ParseKinds, AnomalyTakesSensitivityForAndCooldown) {
  const Policy p =
      Ok(OneRule("    kind: anomaly\n    sensitivity: 0.1\n    for: 5m\n    cooldown: 0\n"));
  EXPECT_EQ(std::get<AnomalyParams>(p.rules[0].params), (AnomalyParams{0.1, 300'000}));
  EXPECT_EQ(p.rules[0].cooldown_ms, 0);
  EXPECT_EQ(std::get<AnomalyParams>(
                Ok(OneRule("    kind: anomaly\n    sensitivity: 10\n")).rules[0].params)
                .sensitivity,
            10);
}

TEST(ParseKinds, OtherKindsKeepNoCooldownByDefault) {
  EXPECT_EQ(Ok(OneRule("    kind: range\n    max: 1\n")).rules[0].cooldown_ms, 0);
}

TEST(ParseKinds, JsonWorksToo) {
  const Policy p = Ok(R"({"filters": [{"match": "#", "valid_range": {"max": 10}}],
    "rules": [{"id": "s", "match": "#", "kind": "stale", "after": "90s"}]})");
  EXPECT_EQ(p.filters[0].valid_max, 10);
  EXPECT_EQ(std::get<StaleParams>(p.rules[0].params).after_ms, 90'000);
}

// ---- errors, each with its position ----

TEST(ParseKindsError, UnknownKeyNamesTheKindsKeys) {
  EXPECT_EQ(Err(OneRule("    kind: rate\n    window: 1m\n    max_rate: 1\n    above: 3\n")),
            "p.yaml:7:5: unknown key 'above' in rate rule (expected id, match, kind, severity, "
            "cooldown, window, max_rate, direction, for)");
  EXPECT_THAT(Err(OneRule("    kind: stale\n    after: 1m\n    for: 1m\n")),
              StartsWith("p.yaml:6:5: unknown key 'for' in stale rule"));
  EXPECT_THAT(Err(OneRule("    kind: flatline\n    window: 1m\n    for: 1m\n")),
              StartsWith("p.yaml:6:5: unknown key 'for' in flatline rule"));
  EXPECT_THAT(Err(OneRule("    kind: range\n    max: 1\n    clear: 0\n")),
              StartsWith("p.yaml:6:5: unknown key 'clear' in range rule"));
  EXPECT_THAT(Err(OneRule("    kind: zscore\n    window: 1m\n    max: 0\n")),
              StartsWith("p.yaml:6:5: unknown key 'max' in zscore rule"));
}

TEST(ParseKindsError, UnknownKeyListsEveryKeyOfTheKindInOrder) {
  const std::string common = "(expected id, match, kind, severity, cooldown, ";
  EXPECT_THAT(Err(OneRule("    kind: threshold\n    above: 1\n    x: 1\n")),
              EndsWith(common + "above, below, clear, for)"));
  EXPECT_THAT(Err(OneRule("    kind: zscore\n    window: 1m\n    x: 1\n")),
              EndsWith(common + "window, alpha, half_life, z, min_samples, for)"));
  EXPECT_THAT(Err(OneRule("    kind: stale\n    after: 1m\n    x: 1\n")),
              EndsWith(common + "after)"));
  EXPECT_THAT(Err(OneRule("    kind: flatline\n    window: 1m\n    x: 1\n")),
              EndsWith(common + "window, epsilon)"));
  EXPECT_THAT(Err(OneRule("    kind: range\n    max: 1\n    x: 1\n")),
              EndsWith(common + "min, max, for)"));
  EXPECT_THAT(Err(OneRule("    kind: anomaly\n    x: 1\n")),
              EndsWith(common + "sensitivity, for)"));
}

TEST(ParseKindsError, AnomalySensitivityFromATenthToTen) {
  EXPECT_EQ(Err(OneRule("    kind: anomaly\n    sensitivity: 0.09\n")),
            "p.yaml:5:18: 'sensitivity' must be from 0.1 to 10");
  EXPECT_EQ(Err(OneRule("    kind: anomaly\n    sensitivity: 10.5\n")),
            "p.yaml:5:18: 'sensitivity' must be from 0.1 to 10");
  EXPECT_EQ(Err(OneRule("    kind: anomaly\n    sensitivity: 0\n")),
            "p.yaml:5:18: 'sensitivity' must be from 0.1 to 10");
  EXPECT_EQ(Err(OneRule("    kind: anomaly\n    sensitivity: high\n")),
            "p.yaml:5:18: 'sensitivity' must be a number, got 'high'");
  EXPECT_EQ(Err(OneRule("    kind: anomaly\n    window: 1h\n")),
            "p.yaml:5:5: unknown key 'window' in anomaly rule (expected id, match, kind, "
            "severity, cooldown, sensitivity, for)");
}

TEST(ParseKindsError, RateNeedsWindowAndMaxRate) {
  EXPECT_EQ(Err(OneRule("    kind: rate\n    max_rate: 1\n")),
            "p.yaml:2:5: rate rule needs 'window'");
  EXPECT_EQ(Err(OneRule("    kind: rate\n    window: 1m\n")),
            "p.yaml:2:5: rate rule needs 'max_rate'");
  EXPECT_EQ(Err(OneRule("    kind: rate\n    window: 0\n    max_rate: 1\n")),
            "p.yaml:5:13: 'window' must be greater than 0");
  EXPECT_EQ(Err(OneRule("    kind: rate\n    window: 1m\n    max_rate: -1\n")),
            "p.yaml:6:15: 'max_rate' must be greater than 0");
  EXPECT_EQ(Err(OneRule("    kind: rate\n    window: 1m\n    max_rate: 1\n    direction: left\n")),
            "p.yaml:7:16: unknown direction 'left' (expected up, down, both)");
  EXPECT_EQ(Err(OneRule("    kind: rate\n    window: 5 minutes\n    max_rate: 1\n")),
            "p.yaml:5:13: 'window': invalid duration '5 minutes' (expected e.g. 250ms, 30s, "
            "5m, 1h, 1h30m)");
}

TEST(ParseKindsError, ZScoreBaselineExactlyOne) {
  EXPECT_EQ(Err(OneRule("    kind: zscore\n")),
            "p.yaml:2:5: zscore rule needs one of 'window', 'alpha' or 'half_life'");
  EXPECT_EQ(Err(OneRule("    kind: zscore\n    window: 1h\n    alpha: 0.1\n")),
            "p.yaml:6:5: zscore rule takes only one of 'window', 'alpha' or 'half_life'");
  EXPECT_EQ(Err(OneRule("    kind: zscore\n    alpha: 1.5\n")),
            "p.yaml:5:12: 'alpha' must be greater than 0 and at most 1");
  EXPECT_EQ(Err(OneRule("    kind: zscore\n    half_life: 0\n")),
            "p.yaml:5:16: 'half_life' must be greater than 0");
  EXPECT_EQ(Err(OneRule("    kind: zscore\n    window: 1h\n    z: 0\n")),
            "p.yaml:6:8: 'z' must be greater than 0");
  EXPECT_EQ(Err(OneRule("    kind: zscore\n    window: 1h\n    min_samples: 1\n")),
            "p.yaml:6:18: 'min_samples' must be an integer from 2 to 1000000");
  EXPECT_EQ(Err(OneRule("    kind: zscore\n    window: 1h\n    min_samples: 2.5\n")),
            "p.yaml:6:18: 'min_samples' must be an integer from 2 to 1000000");
  EXPECT_EQ(Err(OneRule("    kind: zscore\n    window: 1h\n    z: \"3\"\n")),
            "p.yaml:6:8: 'z' must be a number");
}

TEST(ParseKindsError, StaleFlatlineRangeRequiredKeys) {
  EXPECT_EQ(Err(OneRule("    kind: stale\n")), "p.yaml:2:5: stale rule needs 'after'");
  EXPECT_EQ(Err(OneRule("    kind: stale\n    after: 0\n")),
            "p.yaml:5:12: 'after' must be greater than 0");
  EXPECT_EQ(Err(OneRule("    kind: flatline\n    epsilon: 1\n")),
            "p.yaml:2:5: flatline rule needs 'window'");
  EXPECT_EQ(Err(OneRule("    kind: flatline\n    window: 1m\n    epsilon: -1\n")),
            "p.yaml:6:14: 'epsilon' must not be negative");
  EXPECT_EQ(Err(OneRule("    kind: range\n")), "p.yaml:2:5: range rule needs 'min' or 'max'");
  EXPECT_EQ(Err(OneRule("    kind: range\n    min: 5\n    max: 5\n")),
            "p.yaml:6:10: 'max' must be greater than 'min'");
}

TEST(ParseKindsError, Filters) {
  EXPECT_EQ(Err("filters: {match: x}\nrules: []\n"), "p.yaml:1:10: 'filters' must be a list");
  EXPECT_EQ(Err("filters:\n  - deadband: 1\nrules: []\n"), "p.yaml:2:5: filter has no 'match'");
  EXPECT_THAT(Err("filters:\n  - {match: \"a/#/b\"}\nrules: []\n"), StartsWith("p.yaml:2:13: "));
  EXPECT_EQ(Err("filters:\n  - {match: x, deadband: -1}\nrules: []\n"),
            "p.yaml:2:26: 'deadband' must not be negative");
  EXPECT_EQ(Err("filters:\n  - {match: x, downsample: 10}\nrules: []\n"),
            "p.yaml:2:28: 'downsample': invalid duration '10' (expected e.g. 250ms, 30s, 5m, "
            "1h, 1h30m)");
  EXPECT_EQ(Err("filters:\n  - {match: x, valid_range: {min: 5, max: 1}}\nrules: []\n"),
            "p.yaml:2:43: 'max' must be greater than 'min'");
  EXPECT_EQ(Err("filters:\n  - {match: x, valid_range: {}}\nrules: []\n"),
            "p.yaml:2:29: 'valid_range' needs 'min' or 'max'");
  EXPECT_EQ(Err("filters:\n  - {match: x, valid_range: [1, 2]}\nrules: []\n"),
            "p.yaml:2:29: 'valid_range' must be a mapping");
  EXPECT_THAT(Err("filters:\n  - {match: x, valid_range: {low: 1}}\nrules: []\n"),
              StartsWith("p.yaml:2:30: unknown key 'low' in valid_range (expected min, max)"));
  EXPECT_THAT(Err("filters:\n  - {match: x, drop: nan}\nrules: []\n"),
              HasSubstr("unknown key 'drop' in filter (expected match, valid_range, deadband, "
                        "downsample)"));
}

// The kind lookup the parser dispatches through: below ParsePolicy, which rejects an unknown
// kind before it dispatches, so a fallback kind could not be seen through ParsePolicy.
TEST(RuleKinds, ANameThatIsNoKindFindsNothingNotRange) {
  for (const std::string_view name : {"bogus", "", "Range", "range ", "ranges", "thresholds"}) {
    EXPECT_EQ(RuleKindIndex(name), std::nullopt) << "'" << name << "'";
  }
  EXPECT_EQ(RuleKindIndex("range"), RuleParams(RangeParams{}).index());
}

TEST(ParseKindsError, AnUnknownKindNamesEveryKind) {
  EXPECT_EQ(Err(OneRule("    kind: ranges\n    min: 1\n")),
            "p.yaml:4:11: unknown kind 'ranges' (expected threshold, rate, zscore, stale, "
            "flatline, range, anomaly)");
}

}  // namespace
}  // namespace edge::rules
