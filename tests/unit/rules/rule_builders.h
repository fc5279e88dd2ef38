#pragma once

// Builders the rule-kind tests share: a rule on plant/#, a policy of rules, feeding one
// reading or a clock tick through an Engine, and the parameters of the windowed kinds.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "edge/rules/detector.h"
#include "edge/rules/engine.h"

namespace edge::rules::test_util {

inline constexpr int64_t kSec = 1000;
inline constexpr int64_t kMin = 60 * kSec;
inline constexpr char kSensor[] = "plant/boiler1/temp";

inline RuleSpec Rule(std::string id, RuleParams params, int64_t cooldown_ms = 0) {
  RuleSpec r;
  r.id = std::move(id);
  r.match = "plant/#";
  r.params = std::move(params);
  r.cooldown_ms = cooldown_ms;
  return r;
}

inline Policy PolicyOf(std::vector<RuleSpec> rules) {
  Policy p;
  p.rules = std::move(rules);
  return p;
}

inline std::vector<AlertEvent> Feed(Engine& e, int64_t ts, double v,
                                    const std::string& sensor = kSensor) {
  std::vector<AlertEvent> out;
  e.Process(Reading{sensor, ts, v}, out);
  return out;
}

inline std::vector<AlertEvent> Tick(Engine& e, int64_t now) {
  std::vector<AlertEvent> out;
  e.Advance(now, out);
  return out;
}

inline RateParams Rate(int64_t window_ms, double max_rate, Direction d = Direction::kBoth) {
  RateParams p;
  p.window_ms = window_ms;
  p.max_rate = max_rate;
  p.direction = d;
  return p;
}

inline ZScoreParams ZWindow(int64_t window_ms, double z, int64_t min_samples) {
  ZScoreParams p;
  p.window_ms = window_ms;
  p.z = z;
  p.min_samples = min_samples;
  return p;
}

}  // namespace edge::rules::test_util
