#pragma once

// The policy model: a versioned list of alert rules, and its parser. The file format is
// documented in docs/policy.md. Value types only; parsing is pure and thread-safe.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "edge/common/status.h"

namespace edge::rules {

enum class Severity { kInfo, kWarning, kCritical };

// "info" | "warning" | "critical".
std::string_view ToString(Severity severity);

// `kind: threshold`. A reading is bad if value > above or value < below. Without `clear`, a
// firing alert resolves on the first reading that is not bad; with it, only once the value
// crosses the clear level (value <= clear for `above`, value >= clear for `below`).
struct ThresholdParams {
  std::optional<double> above;
  std::optional<double> below;
  int64_t for_ms = 0;  // the condition must hold this long (event time) before firing
  std::optional<double> clear;
  bool operator==(const ThresholdParams&) const = default;
};

// `kind: rate`. The rate is (v - v_ref) / (t - t_ref) in units per second, where the
// reference is the oldest reading of the sensor at most `window` older than the current one,
// or, if there is none besides the current reading, the one before it. The condition holds
// when the rate exceeds `max_rate` in the watched direction.
enum class Direction { kUp, kDown, kBoth };
std::string_view ToString(Direction direction);  // "up" | "down" | "both"

struct RateParams {
  int64_t window_ms = 0;  // > 0
  double max_rate = 0;    // > 0, units per second
  Direction direction = Direction::kBoth;
  int64_t for_ms = 0;
  bool operator==(const RateParams&) const = default;
};

// `kind: zscore`. z = (value - mean) / stddev of the baseline before the reading. The
// baseline is either a rolling time window (`window`: the readings at most that old, sample
// standard deviation) or, with `alpha` or `half_life` instead, an exponentially weighted mean
// and variance. The condition holds when |z| > z; it is undecided until the baseline holds
// `min_samples` readings. A baseline with zero variance gives z = 0 for a value equal to its
// mean and an infinite z otherwise.
struct ZScoreParams {
  int64_t window_ms = 0;     // rolling window; 0 when an EWMA is used
  double alpha = 0;          // EWMA weight of each new reading, (0, 1]; 0 if unused
  int64_t half_life_ms = 0;  // EWMA by event time: weight halves every half_life; 0 if unused
  double z = 3;              // > 0
  int64_t min_samples = 10;  // >= 2
  int64_t for_ms = 0;
  bool operator==(const ZScoreParams&) const = default;
};

// `kind: stale`. Fires when no reading of a sensor arrived for `after`, judged by
// Engine::Advance from the caller's time; the next reading resolves it. Only sensors the
// engine has seen (or restored) can go stale.
struct StaleParams {
  int64_t after_ms = 0;  // > 0
  bool operator==(const StaleParams&) const = default;
};

// `kind: flatline`. Fires when every reading of the sensor for at least `window` lay within
// a band of width `epsilon` (max - min <= epsilon): a stuck sensor. A reading outside the band
// resolves it and starts a new run.
struct FlatlineParams {
  double epsilon = 0;     // >= 0
  int64_t window_ms = 0;  // > 0
  bool operator==(const FlatlineParams&) const = default;
};

// `kind: range`. A reading outside the physical range [min, max] of the sensor means a
// sensor fault; the first reading back inside resolves it.
struct RangeParams {
  std::optional<double> min;
  std::optional<double> max;
  int64_t for_ms = 0;
  bool operator==(const RangeParams&) const = default;
};

// `kind: anomaly`. An untuned, one-pass detector of unusual readings: a reading is bad when
// it deviates from the sensor's robust baseline (the median and spread of its last 200
// readings, or of its hour of the day when that is closer) by at least 3 spreads and the
// sensor has deviated that much at most 0.003 x sensitivity of the time. A firing alert
// resolves once the deviation is no rarer than 10 times that. Higher sensitivity fires on
// smaller, more common deviations. Undecided for its first 131 readings. The algorithm is
// in docs/policy.md and anomaly.h; a rule of this kind has a 12 h `cooldown` by default.
struct AnomalyParams {
  double sensitivity = 1.0;  // kMinSensitivity..kMaxSensitivity
  int64_t for_ms = 0;
  bool operator==(const AnomalyParams&) const = default;
};
inline constexpr double kMinSensitivity = 0.1;
inline constexpr double kMaxSensitivity = 10;
// The cooldown of an anomaly rule without a `cooldown` key: one alert per episode, however
// long the sensor takes to settle.
inline constexpr int64_t kAnomalyCooldownMs = 12 * 3600 * 1000;

// One alternative per rule kind.
using RuleParams = std::variant<ThresholdParams, RateParams, ZScoreParams, StaleParams,
                                FlatlineParams, RangeParams, AnomalyParams>;

struct RuleSpec {
  std::string id;     // [A-Za-z0-9_.-]+, unique within a policy
  std::string match;  // wildcard pattern over sensor ids, see pattern.h
  Severity severity = Severity::kWarning;
  // After a resolve, no new firing for this sensor+rule this long. ParsePolicy defaults it to
  // kAnomalyCooldownMs for an anomaly rule, to 0 for the other kinds.
  int64_t cooldown_ms = 0;
  RuleParams params;

  // The `kind` key of the rule: "threshold", "rate", "zscore", "stale", "flatline", "range",
  // "anomaly".
  std::string_view Kind() const;
  bool operator==(const RuleSpec&) const = default;
};

// The index in RuleParams of the kind whose `kind` key is `name` (RuleSpec::Kind() of that
// alternative returns `name`); nullopt for any other name, which ParsePolicy rejects as an
// unknown kind: no kind is a fallback. ParsePolicy and Kind() read the same table of kinds.
std::optional<size_t> RuleKindIndex(std::string_view name);

// Applied to each reading before the rules, by the first filter whose pattern matches the
// sensor (later filters are not consulted). Non-finite values are always dropped, with or
// without a filter. `valid_range` rejects the reading: neither rules nor the store see it.
// `deadband` and `downsample` only thin out what is stored and uplinked: the rules still see
// every reading. A reading is stored when it is the sensor's first, or when both hold: its
// value differs from the last stored one by more than `deadband`, and its timestamp is at
// least `downsample` after the last stored one.
struct FilterSpec {
  std::string match;
  std::optional<double> valid_min;
  std::optional<double> valid_max;
  double deadband = 0;        // >= 0; 0: every change is stored
  int64_t downsample_ms = 0;  // >= 0; 0: no interval
  bool operator==(const FilterSpec&) const = default;
};

struct Policy {
  std::string version;       // as written; empty if absent
  size_t context_size = 10;  // readings of context attached to each alert, 0..1000
  std::vector<FilterSpec> filters;
  std::vector<RuleSpec> rules;
};

// Largest policy text ParsePolicy accepts.
inline constexpr size_t kMaxPolicyBytes = 1 << 20;

// Parses a policy written in YAML or JSON. Strict: an unknown key, a value of the wrong
// type, a bad duration, an unknown kind, an invalid pattern, a duplicate key or rule id, a
// missing required key of a kind, or a value out of its allowed range is an error. The error
// message reads "<source_name>:<line>:<column>: <message>", with the 1-based position of the
// offending node. Never throws.
Result<Policy> ParsePolicy(std::string_view text, const std::string& source_name);

}  // namespace edge::rules
