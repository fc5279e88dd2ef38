#pragma once

// Runs a policy's rules over a stream of readings and produces alert events. Pure: event
// time comes from the readings, never from a clock. Not thread-safe: one owner (the
// pipeline thread) calls Process.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edge/rules/policy.h"
#include "edge/rules/reading.h"

namespace edge::rules {

enum class AlertState { kFiring, kResolved };

// "firing" | "resolved".
std::string_view ToString(AlertState state);

struct AlertEvent {
  std::string rule_id;
  std::string sensor;
  Severity severity = Severity::kWarning;
  AlertState state = AlertState::kFiring;
  double value = 0;        // value of the reading that fired or resolved the alert
  int64_t ts_ms = 0;       // event time: ts of that reading
  int64_t started_ms = 0;  // start of the episode: ts of the first reading of the condition
                           // run that fired; a resolved event repeats it
  // The sensor's last readings (ts_ms, value), oldest first, at most context_size, ending
  // with the reading that caused this event.
  std::vector<std::pair<int64_t, double>> context;
};

// Lifecycle per (rule, sensor), for every kind:
// - The condition (see detector.h) starts a pending run at the first reading where it holds.
//   The rule fires on a reading where it still holds and ts - run start >= `for`; a reading
//   where it does not hold cancels the run.
// - One firing event per episode; later readings that keep the condition add nothing.
// - While firing, the first reading where the condition no longer holds (after hysteresis)
//   resolves the alert; the resolved event carries the episode's started_ms.
// - After a resolve, the rule does not fire again for that sensor until `cooldown` of event
//   time has passed since the resolving reading. A run may start during the cooldown; it
//   fires on the first reading past the cooldown, with started_ms = the run's start.
// - A reading older than the newest one already seen for the sensor is out of order: every
//   rule ignores it, it joins no context, and out_of_order() counts it. Equal timestamps
//   are in order.
// - A reading with a NaN value is ignored the same way, counted by nan_readings().
// Readings of a sensor no rule matches are dropped uncounted.
class Engine {
 public:
  explicit Engine(Policy policy);
  ~Engine();
  // A moved-from Engine may only be destroyed or assigned to.
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs every rule whose pattern matches r.sensor and appends their firing and resolved
  // events to `out` (in policy order). The rules matching a sensor are found once, at its
  // first reading, and cached; later readings cost O(matching rules).
  void Process(const Reading& r, std::vector<AlertEvent>& out);

  const Policy& policy() const;

  // Distinct sensors seen so far, including those no rule matches (each is cached). The
  // engine forgets no sensor: bound the set of sensor ids upstream.
  size_t sensors_tracked() const;

  // Readings ignored because they were older than the sensor's newest reading.
  uint64_t out_of_order() const;

  // Readings ignored because their value was NaN.
  uint64_t nan_readings() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge::rules
