#include "edge/rules/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace edge::rules {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kFullExample = R"(# boiler room
version: "2026-11-26.1"
context: 20
rules:
  - id: boiler-overheat
    match: "plant/+/temp"
    kind: threshold
    above: 90
    clear: 85
    for: 30s
    severity: critical
    cooldown: 5m
  - id: freezer.warm_1
    match: cold/#
    kind: threshold
    below: -30.5
    clear: -25
  - id: humidity-band
    match: plant/hall/humidity
    kind: threshold
    above: 80
    below: 20
    severity: info
    for: 1h30m
)";

Policy ParseOk(std::string_view text) {
  Result<Policy> p = ParsePolicy(text, "policy.yaml");
  EXPECT_TRUE(p.ok()) << p.error();
  return p.ok() ? std::move(p).value() : Policy{};
}

// The error message for `text`, which must fail to parse.
std::string ParseError(std::string_view text) {
  Result<Policy> p = ParsePolicy(text, "p.yaml");
  EXPECT_FALSE(p.ok()) << "parsed unexpectedly: " << text;
  return p.error();
}

ThresholdParams Threshold(const RuleSpec& rule) { return std::get<ThresholdParams>(rule.params); }

ThresholdParams MakeThreshold(std::optional<double> above, std::optional<double> below,
                              int64_t for_ms = 0, std::optional<double> clear = std::nullopt) {
  ThresholdParams t;
  t.above = above;
  t.below = below;
  t.for_ms = for_ms;
  t.clear = clear;
  return t;
}

// ---- Happy paths ----

TEST(ParsePolicy, ReadsFullYamlExample) {
  const Policy p = ParseOk(kFullExample);
  EXPECT_EQ(p.version, "2026-11-26.1");
  EXPECT_EQ(p.context_size, 20u);
  ASSERT_EQ(p.rules.size(), 3u);

  const RuleSpec& boiler = p.rules[0];
  EXPECT_EQ(boiler.id, "boiler-overheat");
  EXPECT_EQ(boiler.match, "plant/+/temp");
  EXPECT_EQ(boiler.Kind(), "threshold");
  EXPECT_EQ(boiler.severity, Severity::kCritical);
  EXPECT_EQ(boiler.cooldown_ms, 300'000);
  EXPECT_EQ(Threshold(boiler), MakeThreshold(90, std::nullopt, 30'000, 85));

  const RuleSpec& freezer = p.rules[1];
  EXPECT_EQ(freezer.id, "freezer.warm_1");
  EXPECT_EQ(freezer.match, "cold/#");
  EXPECT_EQ(Threshold(freezer), MakeThreshold(std::nullopt, -30.5, 0, -25));

  const RuleSpec& band = p.rules[2];
  EXPECT_EQ(band.severity, Severity::kInfo);
  EXPECT_EQ(Threshold(band), MakeThreshold(80, 20, 5'400'000));
}

TEST(ParsePolicy, ReadsJson) {
  const Policy p = ParseOk(R"({
  "version": "7",
  "context": 3,
  "rules": [
    {"id": "hot", "match": "plant/+/temp", "kind": "threshold", "above": 90.5,
     "clear": 85, "for": "30s", "severity": "critical", "cooldown": "5m"},
    {"id": "cold", "match": "#", "kind": "threshold", "below": -1e1}
  ]
})");
  EXPECT_EQ(p.version, "7");
  EXPECT_EQ(p.context_size, 3u);
  ASSERT_EQ(p.rules.size(), 2u);
  RuleSpec hot;
  hot.id = "hot";
  hot.match = "plant/+/temp";
  hot.severity = Severity::kCritical;
  hot.cooldown_ms = 300'000;
  hot.params = MakeThreshold(90.5, std::nullopt, 30'000, 85);
  EXPECT_EQ(p.rules[0], hot);
  RuleSpec cold;
  cold.id = "cold";
  cold.match = "#";
  cold.params = MakeThreshold(std::nullopt, -10);
  EXPECT_EQ(p.rules[1], cold);
}

TEST(ParsePolicy, JsonAndYamlOfTheSameRuleAreEqual) {
  const Policy yaml = ParseOk("rules:\n  - {id: a, match: x/y, kind: threshold, above: 1}\n");
  const Policy json =
      ParseOk(R"({"rules":[{"id":"a","match":"x/y","kind":"threshold","above":1}]})");
  ASSERT_EQ(yaml.rules.size(), 1u);
  EXPECT_EQ(yaml.rules, json.rules);
}

TEST(ParsePolicy, AppliesDefaults) {
  const Policy p = ParseOk("rules:\n  - id: a\n    match: x\n    kind: threshold\n    above: 1\n");
  EXPECT_EQ(p.version, "");
  EXPECT_EQ(p.context_size, 10u);
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].severity, Severity::kWarning);
  EXPECT_EQ(p.rules[0].cooldown_ms, 0);
  EXPECT_EQ(Threshold(p.rules[0]), MakeThreshold(1, std::nullopt));
}

TEST(ParsePolicy, AcceptsNumericVersion) {
  EXPECT_EQ(ParseOk("version: 3\nrules: []\n").version, "3");
  EXPECT_EQ(ParseOk("version: 2026.5\nrules: []\n").version, "2026.5");
}

TEST(ParsePolicy, AcceptsEmptyRuleList) { EXPECT_TRUE(ParseOk("rules: []\n").rules.empty()); }

TEST(ParsePolicy, AcceptsContextBounds) {
  EXPECT_EQ(ParseOk("context: 0\nrules: []\n").context_size, 0u);
  EXPECT_EQ(ParseOk("context: 1000\nrules: []\n").context_size, 1000u);
}

TEST(ParsePolicy, AcceptsQuotedDurationsAndZero) {
  const Policy p = ParseOk(
      "rules:\n  - {id: a, match: x, kind: threshold, above: 1, for: \"250ms\", cooldown: 0}\n");
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(Threshold(p.rules[0]).for_ms, 250);
  EXPECT_EQ(p.rules[0].cooldown_ms, 0);
}

TEST(ParsePolicy, AcceptsNumberNotations) {
  const Policy p =
      ParseOk("rules:\n  - {id: a, match: x, kind: threshold, above: +1.5e2, below: -.5}\n");
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(Threshold(p.rules[0]), MakeThreshold(150, -0.5));
}

TEST(ParsePolicy, KeepsRuleOrder) {
  const Policy p = ParseOk(
      "rules:\n"
      "  - {id: z, match: x, kind: threshold, above: 1}\n"
      "  - {id: a, match: x, kind: threshold, above: 1}\n");
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].id, "z");
  EXPECT_EQ(p.rules[1].id, "a");
}

TEST(Severity, HasLowercaseNames) {
  EXPECT_EQ(ToString(Severity::kInfo), "info");
  EXPECT_EQ(ToString(Severity::kWarning), "warning");
  EXPECT_EQ(ToString(Severity::kCritical), "critical");
}

// ---- Malformed input: every error names source, line and column ----

TEST(ParsePolicyError, YamlSyntaxErrorHasPosition) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n     match: x\n"), "p.yaml:3:11: illegal map value");
}

TEST(ParsePolicyError, TabIndentation) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n\tmatch: x\n"),
            "p.yaml:3:1: illegal tab when looking for indentation");
}

TEST(ParsePolicyError, UnclosedFlowSequence) {
  EXPECT_EQ(ParseError("rules: [\n  {id: a}\n"), "p.yaml:3:1: end of sequence flow not found");
}

TEST(ParsePolicyError, TruncatedJson) {
  EXPECT_EQ(ParseError("{\"rules\": [{\"id\": \"a\""), "p.yaml:1:1: end of map flow not found");
}

TEST(ParsePolicyError, EmptyText) {
  EXPECT_THAT(ParseError(""), StartsWith("p.yaml:1:1: policy is empty"));
  EXPECT_THAT(ParseError("# only a comment\n"), StartsWith("p.yaml:1:1: policy is empty"));
}

TEST(ParsePolicyError, RootIsNotAMapping) {
  const std::string err = ParseError("\n- a\n- b\n");
  EXPECT_THAT(err, StartsWith("p.yaml:2:1: "));
  EXPECT_THAT(err, HasSubstr("policy must be a mapping"));
}

TEST(ParsePolicyError, RootIsAScalar) {
  EXPECT_EQ(ParseError("just text"), "p.yaml:1:1: policy must be a mapping");
}

TEST(ParsePolicyError, SeveralDocuments) {
  EXPECT_EQ(ParseError("rules: []\n---\nrules: []\n"),
            "p.yaml:2:1: policy must be a single YAML document");
}

TEST(ParsePolicyError, LoneCommaIsAnErrorNotAHang) {
  EXPECT_EQ(ParseError(","), "p.yaml:1:1: unexpected ','");
}

TEST(ParsePolicyError, StrayCommaAfterBlockList) {
  EXPECT_EQ(ParseError("- a\n,\n"), "p.yaml:2:1: unexpected ','");
}

TEST(ParsePolicyError, UnknownTopLevelKey) {
  const std::string err = ParseError("rules: []\nfilter: []\n");
  EXPECT_THAT(err, StartsWith("p.yaml:2:1: unknown key 'filter' in policy"));
}

TEST(ParsePolicyError, DuplicateTopLevelKey) {
  EXPECT_THAT(ParseError("rules: []\ncontext: 1\nrules: []\n"),
              StartsWith("p.yaml:3:1: duplicate key 'rules' in policy (first at line 1)"));
}

TEST(ParsePolicyError, MissingRules) {
  EXPECT_EQ(ParseError("version: 1\n"), "p.yaml:1:1: policy has no 'rules' key");
}

TEST(ParsePolicyError, RulesIsNotAList) {
  EXPECT_EQ(ParseError("rules:\n  id: a\n"), "p.yaml:2:3: 'rules' must be a list");
}

TEST(ParsePolicyError, RulesHasNoValue) {
  EXPECT_EQ(ParseError("version: 1\nrules:\n"), "p.yaml:2:1: 'rules' must be a list");
}

TEST(ParsePolicyError, RuleIsNotAMapping) {
  EXPECT_EQ(ParseError("rules:\n  - boiler\n"), "p.yaml:2:5: rule must be a mapping");
}

TEST(ParsePolicyError, VersionIsNotAScalar) {
  EXPECT_EQ(ParseError("version: [1, 2]\nrules: []\n"),
            "p.yaml:1:10: 'version' must be a string or number");
}

TEST(ParsePolicyError, VersionIsNull) {
  EXPECT_EQ(ParseError("version: ~\nrules: []\n"),
            "p.yaml:1:1: 'version' must be a string or number");
}

TEST(ParsePolicyError, ContextTooLarge) {
  EXPECT_EQ(ParseError("context: 1001\nrules: []\n"),
            "p.yaml:1:10: 'context' must be an integer from 0 to 1000");
}

TEST(ParsePolicyError, ContextNegative) {
  EXPECT_THAT(ParseError("rules: []\ncontext: -1\n"), StartsWith("p.yaml:2:10: 'context'"));
}

TEST(ParsePolicyError, ContextNotAnInteger) {
  EXPECT_THAT(ParseError("context: 2.5\nrules: []\n"), StartsWith("p.yaml:1:10: 'context'"));
  EXPECT_THAT(ParseError("context: \"5\"\nrules: []\n"), StartsWith("p.yaml:1:10: 'context'"));
}

TEST(ParsePolicyError, UnknownRuleKey) {
  const std::string err = ParseError(
      "rules:\n"
      "  - id: a\n"
      "    match: x\n"
      "    kind: threshold\n"
      "    above: 1\n"
      "    abvoe: 2\n");
  EXPECT_THAT(err, StartsWith("p.yaml:6:5: unknown key 'abvoe' in threshold rule"));
}

TEST(ParsePolicyError, DuplicateRuleKey) {
  EXPECT_EQ(ParseError("rules:\n"
                       "  - id: a\n"
                       "    match: x\n"
                       "    kind: threshold\n"
                       "    above: 1\n"
                       "    above: 2\n"),
            "p.yaml:6:5: duplicate key 'above' in rule (first at line 5)");
}

TEST(ParsePolicyError, NonScalarKey) {
  EXPECT_EQ(ParseError("rules:\n  - {[a]: 1}\n"), "p.yaml:2:6: keys must be strings");
}

TEST(ParsePolicyError, MissingKind) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n    match: x\n    above: 1\n"),
            "p.yaml:2:5: rule has no 'kind'");
}

TEST(ParsePolicyError, UnknownKind) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n    match: x\n    kind: treshold\n"),
            "p.yaml:4:11: unknown kind 'treshold' (expected threshold, rate, zscore, stale, "
            "flatline, range, anomaly)");
}

TEST(ParsePolicyError, KindIsNotAString) {
  EXPECT_EQ(ParseError("rules:\n  - {id: a, match: x, kind: [threshold]}\n"),
            "p.yaml:2:29: 'kind' must be a string");
}

TEST(ParsePolicyError, MissingId) {
  EXPECT_EQ(ParseError("rules:\n  - match: x\n    kind: threshold\n    above: 1\n"),
            "p.yaml:2:5: rule has no 'id'");
}

TEST(ParsePolicyError, IdWithForbiddenCharacters) {
  EXPECT_THAT(ParseError("rules:\n  - {id: \"boiler overheat\", match: x, kind: threshold, "
                         "above: 1}\n"),
              StartsWith("p.yaml:2:10: invalid rule id 'boiler overheat'"));
}

TEST(ParsePolicyError, EmptyId) {
  EXPECT_THAT(ParseError("rules:\n  - {id: \"\", match: x, kind: threshold, above: 1}\n"),
              StartsWith("p.yaml:2:10: invalid rule id ''"));
}

TEST(ParsePolicyError, DuplicateRuleId) {
  EXPECT_EQ(ParseError("rules:\n"
                       "  - {id: a, match: x, kind: threshold, above: 1}\n"
                       "  - {id: b, match: x, kind: threshold, above: 1}\n"
                       "  - {id: a, match: y, kind: threshold, below: 1}\n"),
            "p.yaml:4:10: duplicate rule id 'a' (first at line 2)");
}

TEST(ParsePolicyError, MissingMatch) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n    kind: threshold\n    above: 1\n"),
            "p.yaml:2:5: rule 'a' has no 'match'");
}

TEST(ParsePolicyError, InvalidMatchPattern) {
  const std::string err =
      ParseError("rules:\n  - id: a\n    match: plant/#/temp\n    kind: threshold\n    above: 1\n");
  EXPECT_THAT(err, StartsWith("p.yaml:3:12: invalid pattern 'plant/#/temp'"));
}

TEST(ParsePolicyError, EmptyMatchPattern) {
  EXPECT_THAT(ParseError("rules:\n  - {id: a, match: \"\", kind: threshold, above: 1}\n"),
              StartsWith("p.yaml:2:20: invalid pattern ''"));
}

TEST(ParsePolicyError, QuotedNumber) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n    match: x\n    kind: threshold\n    above: \"90\"\n"),
            "p.yaml:5:12: 'above' must be a number");
}

TEST(ParsePolicyError, WordInsteadOfNumber) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n    match: x\n    kind: threshold\n    below: low\n"),
            "p.yaml:5:12: 'below' must be a number, got 'low'");
}

TEST(ParsePolicyError, NumberWithTrailingGarbage) {
  EXPECT_THAT(ParseError("rules:\n  - {id: a, match: x, kind: threshold, above: 9O}\n"),
              StartsWith("p.yaml:2:47: 'above' must be a number"));
}

TEST(ParsePolicyError, NonFiniteNumber) {
  EXPECT_THAT(ParseError("rules:\n  - {id: a, match: x, kind: threshold, above: .inf}\n"),
              StartsWith("p.yaml:2:47: 'above' must be a number"));
  EXPECT_THAT(ParseError("rules:\n  - {id: a, match: x, kind: threshold, above: nan}\n"),
              StartsWith("p.yaml:2:47: 'above' must be a number"));
  EXPECT_THAT(ParseError("rules:\n  - {id: a, match: x, kind: threshold, above: 1e999}\n"),
              StartsWith("p.yaml:2:47: 'above' must be a number"));
}

TEST(ParsePolicyError, NumberWithoutValue) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n    match: x\n    kind: threshold\n    above:\n"),
            "p.yaml:5:5: 'above' must be a number");
}

TEST(ParsePolicyError, DurationInWords) {
  EXPECT_THAT(ParseError("rules:\n"
                         "  - id: a\n"
                         "    match: x\n"
                         "    kind: threshold\n"
                         "    above: 1\n"
                         "    for: 5 minutes\n"),
              StartsWith("p.yaml:6:10: 'for': invalid duration '5 minutes'"));
}

TEST(ParsePolicyError, BareNumberDuration) {
  EXPECT_THAT(ParseError("rules:\n  - {id: a, match: x, kind: threshold, above: 1, for: 30}\n"),
              StartsWith("p.yaml:2:55: 'for': invalid duration '30'"));
}

TEST(ParsePolicyError, NegativeCooldown) {
  EXPECT_THAT(ParseError("rules:\n"
                         "  - id: a\n"
                         "    match: x\n"
                         "    kind: threshold\n"
                         "    above: 1\n"
                         "    cooldown: -1s\n"),
              StartsWith("p.yaml:6:15: 'cooldown': invalid duration '-1s'"));
}

TEST(ParsePolicyError, DurationIsAList) {
  EXPECT_EQ(ParseError("rules:\n  - {id: a, match: x, kind: threshold, above: 1, for: [1s]}\n"),
            "p.yaml:2:55: 'for' must be a duration");
}

TEST(ParsePolicyError, UnknownSeverity) {
  EXPECT_EQ(ParseError("rules:\n"
                       "  - id: a\n"
                       "    match: x\n"
                       "    kind: threshold\n"
                       "    above: 1\n"
                       "    severity: fatal\n"),
            "p.yaml:6:15: unknown severity 'fatal' (expected info, warning, critical)");
}

TEST(ParsePolicyError, ThresholdWithoutBounds) {
  EXPECT_EQ(ParseError("rules:\n  - id: a\n    match: x\n    kind: threshold\n    for: 1s\n"),
            "p.yaml:2:5: threshold rule needs 'above' or 'below'");
}

TEST(ParsePolicyError, BelowNotUnderAbove) {
  EXPECT_EQ(ParseError("rules:\n  - {id: a, match: x, kind: threshold, above: 5, below: 5}\n"),
            "p.yaml:2:57: 'below' must be less than 'above'");
}

TEST(ParsePolicyError, ClearAboveTheAboveLevel) {
  EXPECT_EQ(ParseError("rules:\n"
                       "  - id: a\n"
                       "    match: x\n"
                       "    kind: threshold\n"
                       "    above: 90\n"
                       "    clear: 95\n"),
            "p.yaml:6:12: 'clear' must be less than 'above'");
}

TEST(ParsePolicyError, ClearEqualToTheAboveLevel) {
  EXPECT_EQ(ParseError("rules:\n  - {id: a, match: x, kind: threshold, above: 90, clear: 90}\n"),
            "p.yaml:2:58: 'clear' must be less than 'above'");
}

TEST(ParsePolicyError, ClearBelowTheBelowLevel) {
  EXPECT_EQ(ParseError("rules:\n"
                       "  - id: a\n"
                       "    match: x\n"
                       "    kind: threshold\n"
                       "    below: 10\n"
                       "    clear: 5\n"),
            "p.yaml:6:12: 'clear' must be greater than 'below'");
}

TEST(ParsePolicyError, ClearWithBothBounds) {
  EXPECT_EQ(ParseError("rules:\n"
                       "  - id: a\n"
                       "    match: x\n"
                       "    kind: threshold\n"
                       "    above: 90\n"
                       "    below: 10\n"
                       "    clear: 50\n"),
            "p.yaml:7:12: 'clear' needs exactly one of 'above' or 'below'");
}

TEST(ParsePolicyError, ErrorInLaterRuleNamesItsLine) {
  const std::string err = ParseError(std::string(kFullExample) +
                                     "  - id: bad\n"
                                     "    match: x\n"
                                     "    kind: threshold\n"
                                     "    above: 1\n"
                                     "    severity: loud\n");
  EXPECT_THAT(err, StartsWith("p.yaml:29:15: unknown severity 'loud'"));
}

TEST(ParsePolicyError, JsonErrorHasPosition) {
  EXPECT_EQ(
      ParseError(
          "{\"rules\": [\n"
          "  {\"id\": \"a\", \"match\": \"x\", \"kind\": \"threshold\", \"above\": \"high\"}\n"
          "]}\n"),
      "p.yaml:2:59: 'above' must be a number");
}

TEST(ParsePolicyError, TooLarge) {
  const std::string text = "rules: []\n" + std::string(kMaxPolicyBytes, '#');
  EXPECT_THAT(ParseError(text), StartsWith("p.yaml:1:1: policy is larger than"));
}

TEST(ParsePolicyError, DeepNestingIsAnErrorNotACrash) {
  const std::string text = "rules: " + std::string(100'000, '[');
  EXPECT_EQ(ParseError(text), "p.yaml:1:1: nesting too deep");
}

TEST(ParsePolicyError, UsesTheGivenSourceName) {
  Result<Policy> p = ParsePolicy("rules: 1\n", "console:v42");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error(), "console:v42:1:8: 'rules' must be a list");
}

}  // namespace
}  // namespace edge::rules
