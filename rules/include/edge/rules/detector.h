#pragma once

// The condition each rule kind watches. A detector only answers "does the condition hold
// for this reading of this sensor?"; the alert lifecycle around it (pending for `for`, one
// firing per episode, resolving, cooldown, out-of-order readings) belongs to the Engine and
// is the same for every kind.
//
// State is per (rule, sensor) and kept small: DetectorState has one alternative per kind,
// parallel to RuleParams. A new kind adds a params struct to RuleParams, a state struct
// here, and an overload in detector.cc. Pure; no I/O, no clock.

#include <cstdint>
#include <variant>

#include "edge/rules/policy.h"

namespace edge::rules {

// A threshold is stateless: the reading and the firing flag decide.
struct ThresholdState {};

using DetectorState = std::variant<ThresholdState>;

// A fresh state for a rule with these params.
DetectorState MakeDetectorState(const RuleParams& params);

// Feeds one reading, in event-time order, of one sensor to the rule's detector and returns
// whether the condition holds. `firing` tells whether the rule currently fires for this
// sensor, so a kind with a clear level can apply hysteresis: while firing, "holds" means
// "has not cleared yet". A state that does not belong to `params` is reset first.
bool ConditionHolds(const RuleParams& params, DetectorState& state, int64_t ts_ms, double value,
                    bool firing);

// How long, in ms of event time, the condition must hold before the rule fires (`for`).
int64_t HoldMs(const RuleParams& params);

}  // namespace edge::rules
