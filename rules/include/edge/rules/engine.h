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

// What the engine decided about one reading, for the caller's storage. `accepted` is false
// for a reading a filter rejected (non-finite, outside valid_range): nothing should keep it.
// `store` is false also for a reading the filter's deadband or downsample thins out, and for
// a duplicate: the rules saw it, the readings store and the uplink need not.
//
// `refused` is true (and `accepted` false) for the first reading of a sensor when the engine
// already tracks its sensor limit (Engine::SetSensorLimit): the sensor gets no state.
//
// `sensor` and `caller_words` point into the engine's entry for the reading's sensor (null
// when refused), valid until the next ForgetIdle call or the engine's end: `sensor` is the
// sensor id, to keep instead of a copy of Reading::sensor; `caller_words` are kCallerWords
// words the engine keeps for its caller per sensor, zero at the sensor's first reading and
// never read by the engine (the pipeline keeps the sensor's rollup slot and its store id
// there, to skip lookups by name).
inline constexpr size_t kCallerWords = 2;
struct ReadingVerdict {
  bool accepted = true;
  bool store = true;
  bool refused = false;
  const std::string* sensor = nullptr;
  uint64_t* caller_words = nullptr;
};

// A firing episode, as saved across restarts: enough to restore the rule to firing without
// a second firing event, so that the next clearing reading resolves it.
struct Episode {
  std::string rule_id;
  std::string sensor;
  int64_t started_ms = 0;  // the episode's started_ms
  int64_t last_ts_ms = 0;  // ts of the newest reading of the sensor known to the saver
  double last_value = 0;
  bool operator==(const Episode&) const = default;
};

// Lifecycle per (rule, sensor), for every kind:
// - The condition (see detector.h) starts a pending run at the first reading where it holds.
//   The rule fires on a reading where it still holds and ts - run start >= `for`; a reading
//   where it does not hold cancels the run. A detector that cannot tell yet (kUnknown)
//   leaves the rule where it is.
// - One firing event per episode; later readings that keep the condition add nothing.
// - While firing, the first reading where the condition no longer holds (after hysteresis)
//   resolves the alert; the resolved event carries the episode's started_ms.
// - After a resolve, the rule does not fire again for that sensor until `cooldown` of event
//   time has passed since the resolving reading. A run may start during the cooldown; it
//   fires on the first reading past the cooldown, with started_ms = the run's start.
// - `stale` fires from Advance(now_ms) when now_ms - the sensor's newest ts >= `after`, with
//   started_ms = newest ts + after and the newest reading's value; a reading resolves it.
// - Filters (policy.h) run first, for every sensor: a non-finite value, or one outside the
//   sensor's valid_range, is dropped (counted by non_finite() / out_of_range()).
// - For a sensor some rule matches: a reading older than the newest one already seen is out
//   of order: every rule ignores it, it joins no context, and out_of_order() counts it.
//   Equal timestamps are in order, except a reading equal in timestamp and value to the
//   newest, which is a duplicate: ignored, not stored, counted by duplicates().
// Readings of a sensor no rule or filter matches pass through uncounted.
class Engine {
 public:
  explicit Engine(Policy policy);
  ~Engine();
  // A moved-from Engine may only be destroyed or assigned to.
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Filters the reading, runs every rule whose pattern matches r.sensor and appends their
  // firing and resolved events to `out` (in policy order). The rules and filter matching a
  // sensor are found once, at its first reading, and cached; later readings cost O(matching
  // rules), amortized O(1) each.
  ReadingVerdict Process(const Reading& r, std::vector<AlertEvent>& out);

  // Gives clock-driven rules (stale) the time: now_ms on the same scale as reading
  // timestamps (ms since the epoch). Appends the firing events to `out`. O(stale
  // rule-sensor pairs); call it about once a second, or in replay as event time advances.
  void Advance(int64_t now_ms, std::vector<AlertEvent>& out);

  // Takes every sensor whose id starts with `prefix` offline at now_ms (a Sparkplug B death
  // certificate says so): each of its stale rules that is not firing fires at once, without
  // waiting for `after` (a cooldown still holds it back), with started_ms = now_ms and the
  // newest reading's value; the sensor's next reading resolves it as usual. Appends the
  // firing events to `out` and returns how many. O(stale rule-sensor pairs).
  size_t MarkOffline(std::string_view prefix, int64_t now_ms, std::vector<AlertEvent>& out);

  // Replaces the policy between readings. A rule whose RuleSpec is equal in both policies
  // (same id and definition) keeps its state for every sensor: windows, pending runs,
  // firing episodes, cooldowns. A rule removed or changed starts afresh; its firing
  // episodes end with a resolved event (value and ts of the sensor's newest reading)
  // appended to `out`. Sensors' newest readings, context and stored-reading marks survive.
  void SwapPolicy(Policy policy, std::vector<AlertEvent>& out);

  // The firing episodes, for saving. O(sensors x matching rules).
  std::vector<Episode> FiringEpisodes() const;

  // Puts saved episodes back: each whose rule id exists and matches its sensor becomes
  // firing with its started_ms, without an event; the sensor's newest reading becomes
  // (last_ts_ms, last_value) unless a newer one is known. Others are skipped. Returns how
  // many were restored. Call before the first reading, or at least before the sensor's.
  size_t RestoreEpisodes(const std::vector<Episode>& episodes);

  const Policy& policy() const;

  // Distinct sensors tracked, including those no rule matches (each is cached).
  size_t sensors_tracked() const;

  // Sensor bound. With a limit > 0 the engine tracks at most `max_sensors` sensors: the
  // first reading of another sensor is refused (ReadingVerdict::refused) until ForgetIdle
  // makes room. 0 (the default): no limit. A lower limit than the sensors tracked forgets
  // none; it only refuses new ones.
  void SetSensorLimit(size_t max_sensors);

  // The caller's time (any monotonic scale, ms) that Process stamps on each sensor it
  // touches, for ForgetIdle. Event time stays the readings' own; this is only the sensor's
  // last activity. Starts at 0.
  void SetActivityTime(int64_t now_ms);

  // Forgets every sensor last touched before `idle_before_ms` (SetActivityTime's scale) on
  // which no rule is firing: its rule state, context, filter marks and caller words go, as
  // if it had never been seen (a later reading starts it afresh). A sensor with a firing
  // rule is kept, so that its resolve is not lost. Returns how many were forgotten. When it
  // forgets any, every pointer of an earlier ReadingVerdict is invalid afterwards (kept
  // sensors move); their caller words move with them. O(sensors tracked).
  size_t ForgetIdle(int64_t idle_before_ms);

  // Readings ignored because they were older than the sensor's newest reading.
  uint64_t out_of_order() const;

  // Readings ignored because they repeated the sensor's newest reading exactly.
  uint64_t duplicates() const;

  // Readings dropped because their value was NaN or infinite.
  uint64_t non_finite() const;
  uint64_t nan_readings() const { return non_finite(); }  // older name

  // Readings dropped because they lay outside their filter's valid_range.
  uint64_t out_of_range() const;

  // Approximate memory held for rule state: per sensor-rule state, context rings, the
  // sensor table and, with `include_windows`, the window buffers of rate and zscore rules and
  // the detectors of anomaly rules.
  // For capacity planning and the benchmark.
  size_t ApproxStateBytes(bool include_windows = true) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge::rules
