#include "edge/rules/engine.h"

#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>

#include "edge/rules/detector.h"
#include "edge/rules/pattern.h"

namespace edge::rules {
namespace {

// True if `to` - `from` >= `span`. Timestamps come from the network and may be anywhere in
// the int64 range, so the difference is taken in unsigned arithmetic, where it cannot
// overflow for to >= from.
bool ElapsedAtLeast(int64_t from, int64_t to, int64_t span) {
  if (span <= 0) return true;
  if (to < from) return false;
  return static_cast<uint64_t>(to) - static_cast<uint64_t>(from) >= static_cast<uint64_t>(span);
}

enum class Phase : uint8_t { kIdle, kPending, kFiring };

// Lifecycle of one rule on one sensor. Kept to a few words: there is one per matching pair.
struct RuleState {
  uint32_t rule = 0;  // index into Policy::rules
  Phase phase = Phase::kIdle;
  bool resolved_before = false;
  int64_t run_start_ms = 0;  // kPending, kFiring: ts of the first reading of the condition run
  int64_t resolved_ms = 0;   // ts of the last resolve, if resolved_before
  DetectorState detector;
};
// Memory per (rule, sensor) pair must stay small (target: well under 1 KiB); a kind whose
// state is large should keep it compact or bounded.
static_assert(sizeof(RuleState) <= 256, "per sensor-rule state grew too large");

// The last `capacity` readings of a sensor. Grows to its capacity on demand, then
// overwrites the oldest entry.
class ContextRing {
 public:
  explicit ContextRing(size_t capacity) : capacity_(capacity) {}

  void Push(int64_t ts_ms, double value) {
    if (capacity_ == 0) return;
    if (items_.size() < capacity_) {
      items_.emplace_back(ts_ms, value);
      return;
    }
    items_[next_] = {ts_ms, value};
    next_ = (next_ + 1) % capacity_;
  }

  // Oldest first.
  std::vector<std::pair<int64_t, double>> Snapshot() const {
    std::vector<std::pair<int64_t, double>> out;
    out.reserve(items_.size());
    for (size_t i = 0; i < items_.size(); ++i) out.push_back(items_[(next_ + i) % items_.size()]);
    return out;
  }

 private:
  size_t capacity_;
  size_t next_ = 0;  // once full: index of the oldest entry
  std::vector<std::pair<int64_t, double>> items_;
};

struct SensorState {
  explicit SensorState(size_t context_size) : context(context_size) {}

  std::vector<RuleState> rules;  // in policy order; empty if no rule matches the sensor
  bool seen = false;             // whether last_ts_ms holds a reading's ts
  int64_t last_ts_ms = 0;
  ContextRing context;
};

// Lets the sensor map be searched with a string_view, without building a std::string per
// reading.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

std::string_view ToString(AlertState state) {
  switch (state) {
    case AlertState::kFiring:
      return "firing";
    case AlertState::kResolved:
      return "resolved";
  }
  return "unknown";
}

struct Engine::Impl {
  explicit Impl(Policy p) : policy(std::move(p)) {}

  SensorState& Sensor(const std::string& sensor) {
    auto it = sensors.find(std::string_view(sensor));
    if (it != sensors.end()) return it->second;
    SensorState state(policy.context_size);
    for (size_t i = 0; i < policy.rules.size(); ++i) {
      const RuleSpec& spec = policy.rules[i];
      if (!TopicMatches(spec.match, sensor)) continue;
      RuleState rs;
      rs.rule = static_cast<uint32_t>(i);
      rs.detector = MakeDetectorState(spec.params);
      state.rules.push_back(std::move(rs));
    }
    return sensors.emplace(sensor, std::move(state)).first->second;
  }

  void Emit(const RuleSpec& spec, const RuleState& rs, const SensorState& s, const Reading& r,
            AlertState state, std::vector<AlertEvent>& out) const {
    AlertEvent e;
    e.rule_id = spec.id;
    e.sensor = r.sensor;
    e.severity = spec.severity;
    e.state = state;
    e.value = r.value;
    e.ts_ms = r.ts_ms;
    e.started_ms = rs.run_start_ms;
    e.context = s.context.Snapshot();
    out.push_back(std::move(e));
  }

  void Step(RuleState& rs, const SensorState& s, const Reading& r,
            std::vector<AlertEvent>& out) const {
    const RuleSpec& spec = policy.rules[rs.rule];
    const bool firing = rs.phase == Phase::kFiring;
    const bool holds = ConditionHolds(spec.params, rs.detector, r.ts_ms, r.value, firing);
    if (firing) {
      if (holds) return;  // dedupe: one firing event per episode
      Emit(spec, rs, s, r, AlertState::kResolved, out);
      rs.phase = Phase::kIdle;
      rs.resolved_before = true;
      rs.resolved_ms = r.ts_ms;
      return;
    }
    if (!holds) {
      rs.phase = Phase::kIdle;  // cancels a pending run
      return;
    }
    if (rs.phase == Phase::kIdle) {
      rs.phase = Phase::kPending;
      rs.run_start_ms = r.ts_ms;
    }
    if (!ElapsedAtLeast(rs.run_start_ms, r.ts_ms, HoldMs(spec.params))) return;
    if (rs.resolved_before && !ElapsedAtLeast(rs.resolved_ms, r.ts_ms, spec.cooldown_ms)) return;
    rs.phase = Phase::kFiring;
    Emit(spec, rs, s, r, AlertState::kFiring, out);
  }

  Policy policy;
  std::unordered_map<std::string, SensorState, StringHash, std::equal_to<>> sensors;
  uint64_t out_of_order = 0;
  uint64_t nan_readings = 0;
};

Engine::Engine(Policy policy) : impl_(std::make_unique<Impl>(std::move(policy))) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

void Engine::Process(const Reading& r, std::vector<AlertEvent>& out) {
  SensorState& s = impl_->Sensor(r.sensor);
  if (s.rules.empty()) return;
  if (std::isnan(r.value)) {
    ++impl_->nan_readings;
    return;
  }
  if (s.seen && r.ts_ms < s.last_ts_ms) {
    ++impl_->out_of_order;
    return;
  }
  s.seen = true;
  s.last_ts_ms = r.ts_ms;
  s.context.Push(r.ts_ms, r.value);
  for (RuleState& rs : s.rules) impl_->Step(rs, s, r, out);
}

const Policy& Engine::policy() const { return impl_->policy; }

size_t Engine::sensors_tracked() const { return impl_->sensors.size(); }

uint64_t Engine::out_of_order() const { return impl_->out_of_order; }

uint64_t Engine::nan_readings() const { return impl_->nan_readings; }

}  // namespace edge::rules
