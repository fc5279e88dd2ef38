#include "edge/rules/detector.h"

#include <type_traits>

namespace edge::rules {
namespace {

// One overload pair per kind: the state it starts with, and the condition.
ThresholdState StateFor(const ThresholdParams&) { return {}; }

bool Holds(const ThresholdParams& p, ThresholdState&, int64_t, double value, bool firing) {
  if (firing && p.clear) {
    // Hysteresis: once firing, stay firing until the value crosses the clear level, which
    // sits on the good side of the single bound it belongs to.
    if (p.above) return value > *p.clear;
    if (p.below) return value < *p.clear;
  }
  return (p.above && value > *p.above) || (p.below && value < *p.below);
}

int64_t HoldFor(const ThresholdParams& p) { return p.for_ms; }

}  // namespace

DetectorState MakeDetectorState(const RuleParams& params) {
  return std::visit([](const auto& p) -> DetectorState { return StateFor(p); }, params);
}

bool ConditionHolds(const RuleParams& params, DetectorState& state, int64_t ts_ms, double value,
                    bool firing) {
  return std::visit(
      [&](const auto& p) {
        using State = decltype(StateFor(p));
        if (!std::holds_alternative<State>(state)) state = StateFor(p);
        return Holds(p, std::get<State>(state), ts_ms, value, firing);
      },
      params);
}

int64_t HoldMs(const RuleParams& params) {
  return std::visit([](const auto& p) { return HoldFor(p); }, params);
}

}  // namespace edge::rules
