#include "edge/rules/engine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edge/common/string_hash.h"
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

// Marks a RuleState whose state SwapPolicy already carried over.
constexpr uint32_t kMovedRule = UINT32_MAX;

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

  size_t HeapBytes() const { return items_.capacity() * sizeof(items_[0]); }

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
  int32_t filter = -1;           // index into Policy::filters, -1 for none
  std::array<uint64_t, kCallerWords> caller_words{};  // ReadingVerdict::caller_words
  bool seen = false;      // whether last_ts_ms/last_value hold a reading's
  bool stored = false;    // whether stored_ts_ms/stored_value hold a stored reading's
  int64_t active_ms = 0;  // Engine::SetActivityTime's time at the sensor's last reading
  int64_t last_ts_ms = 0;
  double last_value = 0;
  int64_t stored_ts_ms = 0;
  double stored_value = 0;
  ContextRing context;
};

// Sensors by id. The entries sit in a deque, where they never move between compactions
// (Retain), so pointers to a key and its state stay valid; an open-addressing index over
// them costs a reading's lookup one slot and one entry, where a node-based hash map
// divides by a prime and chases a bucket, a node and the node's key.
class SensorTable {
 public:
  using Entry = std::pair<const std::string, SensorState>;

  Entry* Find(std::string_view name) {
    if (index_.empty()) return nullptr;
    const uint64_t hash = StringHash{}(name);
    const auto tag = static_cast<uint32_t>(hash >> 32);
    const size_t mask = index_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot slot = index_[i];
      if (slot.entry == 0) return nullptr;
      Entry& e = entries_[slot.entry - 1];
      if (slot.tag == tag && e.first == name) return &e;
    }
  }

  // `name` must not be in the table yet.
  Entry& Insert(const std::string& name, SensorState state) {
    if (2 * (entries_.size() + 1) > index_.size()) {
      Rebuild(std::max<size_t>(64, 2 * index_.size()));
    }
    entries_.emplace_back(name, std::move(state));
    Place(StringHash{}(std::string_view(name)), static_cast<uint32_t>(entries_.size()));
    return entries_.back();
  }

  // Keeps the entries for which keep(entry) is true, in order, and drops the others;
  // returns how many were dropped. When any is dropped, the kept entries move (every
  // pointer into the table is invalid) and the index shrinks to fit them. keep is called
  // once per entry, in order.
  template <typename Keep>
  size_t Retain(Keep keep) {
    auto first_dropped = entries_.begin();
    while (first_dropped != entries_.end() && keep(*first_dropped)) ++first_dropped;
    if (first_dropped == entries_.end()) return 0;
    std::deque<Entry> kept;
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it < first_dropped || (it > first_dropped && keep(*it))) {
        kept.emplace_back(it->first, std::move(it->second));
      }
    }
    const size_t dropped = entries_.size() - kept.size();
    entries_.swap(kept);
    size_t slots = 64;
    while (slots < 2 * (entries_.size() + 1)) slots *= 2;
    index_.clear();
    index_.shrink_to_fit();
    Rebuild(slots);
    return dropped;
  }

  size_t size() const { return entries_.size(); }
  auto begin() { return entries_.begin(); }
  auto end() { return entries_.end(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  size_t IndexBytes() const { return index_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    uint32_t tag = 0;    // the hash's high bits
    uint32_t entry = 0;  // index in entries_ + 1; 0: empty
  };

  void Place(uint64_t hash, uint32_t entry) {
    const size_t mask = index_.size() - 1;
    size_t i = hash & mask;
    while (index_[i].entry != 0) i = (i + 1) & mask;
    index_[i] = {static_cast<uint32_t>(hash >> 32), entry};
  }

  void Rebuild(size_t slots) {
    index_.assign(slots, Slot{});
    for (size_t n = 0; n < entries_.size(); ++n) {
      Place(StringHash{}(std::string_view(entries_[n].first)), static_cast<uint32_t>(n + 1));
    }
  }

  std::deque<Entry> entries_;
  std::vector<Slot> index_;  // a power of two, at least twice entries_.size()
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

  void MatchRules(const std::string& sensor, SensorState& state) const {
    for (size_t i = 0; i < policy.rules.size(); ++i) {
      const RuleSpec& spec = policy.rules[i];
      if (!TopicMatches(spec.match, sensor)) continue;
      RuleState rs;
      rs.rule = static_cast<uint32_t>(i);
      rs.detector = MakeDetectorState(spec.params);
      state.rules.push_back(std::move(rs));
    }
  }

  int32_t MatchFilter(const std::string& sensor) const {
    for (size_t i = 0; i < policy.filters.size(); ++i) {
      if (TopicMatches(policy.filters[i].match, sensor)) return static_cast<int32_t>(i);
    }
    return -1;
  }

  // Table entries do not move, so pointers to a key and its state stay valid.
  void IndexStale(const std::string& sensor, SensorState& state) {
    for (size_t i = 0; i < state.rules.size(); ++i) {
      if (std::holds_alternative<StaleParams>(policy.rules[state.rules[i].rule].params)) {
        stale.push_back({&sensor, &state, static_cast<uint32_t>(i)});
      }
    }
  }

  // The sensor's entry, created at its first reading; null when it is new and the table
  // holds max_sensors already.
  SensorTable::Entry* SensorEntry(const std::string& sensor) {
    if (SensorTable::Entry* e = sensors.Find(sensor)) return e;
    if (max_sensors > 0 && sensors.size() >= max_sensors) return nullptr;
    SensorState state(policy.context_size);
    MatchRules(sensor, state);
    state.filter = MatchFilter(sensor);
    SensorTable::Entry& e = sensors.Insert(sensor, std::move(state));
    IndexStale(e.first, e.second);
    return &e;
  }

  // Whether the reading goes to the store, under the sensor's filter; updates the mark.
  static bool StoreDecision(SensorState& s, const FilterSpec* f, const Reading& r) {
    if (f == nullptr || (f->deadband <= 0 && f->downsample_ms <= 0)) return true;
    if (s.stored) {
      if (f->deadband > 0 && !(std::abs(r.value - s.stored_value) > f->deadband)) return false;
      if (f->downsample_ms > 0 && !ElapsedAtLeast(s.stored_ts_ms, r.ts_ms, f->downsample_ms)) {
        return false;
      }
    }
    s.stored = true;
    s.stored_ts_ms = r.ts_ms;
    s.stored_value = r.value;
    return true;
  }

  void Emit(const RuleSpec& spec, const RuleState& rs, const SensorState& s,
            const std::string& sensor, int64_t ts_ms, double value, AlertState state,
            std::vector<AlertEvent>& out) const {
    AlertEvent e;
    e.rule_id = spec.id;
    e.sensor = sensor;
    e.severity = spec.severity;
    e.state = state;
    e.value = value;
    e.ts_ms = ts_ms;
    e.started_ms = rs.run_start_ms;
    e.context = s.context.Snapshot();
    out.push_back(std::move(e));
  }

  void Step(RuleState& rs, const SensorState& s, const Reading& r,
            std::vector<AlertEvent>& out) const {
    const RuleSpec& spec = policy.rules[rs.rule];
    const bool firing = rs.phase == Phase::kFiring;
    const Verdict v = Evaluate(spec.params, rs.detector, r.ts_ms, r.value, firing);
    if (v.condition == Condition::kUnknown) return;
    const bool holds = v.condition == Condition::kHolds;
    if (firing) {
      if (holds) return;  // dedupe: one firing event per episode
      Emit(spec, rs, s, r.sensor, r.ts_ms, r.value, AlertState::kResolved, out);
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
      rs.run_start_ms = v.since_ms == kNoSince ? r.ts_ms : v.since_ms;
    }
    if (!ElapsedAtLeast(rs.run_start_ms, r.ts_ms, HoldMs(spec.params))) return;
    if (rs.resolved_before && !ElapsedAtLeast(rs.resolved_ms, r.ts_ms, spec.cooldown_ms)) return;
    rs.phase = Phase::kFiring;
    Emit(spec, rs, s, r.sensor, r.ts_ms, r.value, AlertState::kFiring, out);
  }

  Policy policy;
  SensorTable sensors;
  // Every (sensor, index into its rules) of a stale rule, for Advance.
  struct StaleRef {
    const std::string* sensor;
    SensorState* state;
    uint32_t index;
  };
  std::vector<StaleRef> stale;

  // Fires a stale rule at now_ms with the episode starting at started_ms, unless it is
  // firing already, its sensor was never seen, or its cooldown holds. Whether it fired.
  bool FireStale(const StaleRef& ref, int64_t now_ms, int64_t started_ms,
                 std::vector<AlertEvent>& out) const {
    SensorState& s = *ref.state;
    RuleState& rs = s.rules[ref.index];
    if (rs.phase == Phase::kFiring || !s.seen) return false;
    const RuleSpec& spec = policy.rules[rs.rule];
    if (rs.resolved_before && !ElapsedAtLeast(rs.resolved_ms, now_ms, spec.cooldown_ms)) {
      return false;
    }
    rs.phase = Phase::kFiring;
    rs.run_start_ms = started_ms;
    Emit(spec, rs, s, *ref.sensor, now_ms, s.last_value, AlertState::kFiring, out);
    return true;
  }

  uint64_t out_of_order = 0;
  uint64_t duplicates = 0;
  uint64_t non_finite = 0;
  uint64_t out_of_range = 0;
  size_t max_sensors = 0;  // 0: no limit
  int64_t activity_ms = 0;
};

Engine::Engine(Policy policy) : impl_(std::make_unique<Impl>(std::move(policy))) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

ReadingVerdict Engine::Process(const Reading& r, std::vector<AlertEvent>& out) {
  Impl& im = *impl_;
  ReadingVerdict verdict;
  SensorTable::Entry* entry = im.SensorEntry(r.sensor);
  if (entry == nullptr) {
    verdict.accepted = verdict.store = false;
    verdict.refused = true;
    return verdict;
  }
  auto& [name, s] = *entry;
  s.active_ms = im.activity_ms;
  verdict.sensor = &name;
  verdict.caller_words = s.caller_words.data();
  if (!std::isfinite(r.value)) {
    ++im.non_finite;
    verdict.accepted = verdict.store = false;
    return verdict;
  }
  const FilterSpec* f = s.filter < 0 ? nullptr : &im.policy.filters[static_cast<size_t>(s.filter)];
  if (f != nullptr &&
      ((f->valid_min && r.value < *f->valid_min) || (f->valid_max && r.value > *f->valid_max))) {
    ++im.out_of_range;
    verdict.accepted = verdict.store = false;
    return verdict;
  }
  if (s.rules.empty()) {
    // Kept so that a rule a policy swap adds (stale, say) knows the sensor's newest reading.
    if (!s.seen || r.ts_ms >= s.last_ts_ms) {
      s.seen = true;
      s.last_ts_ms = r.ts_ms;
      s.last_value = r.value;
    }
    verdict.store = Impl::StoreDecision(s, f, r);
    return verdict;
  }
  if (s.seen && r.ts_ms < s.last_ts_ms) {
    ++im.out_of_order;
    verdict.store = Impl::StoreDecision(s, f, r);
    return verdict;
  }
  if (s.seen && r.ts_ms == s.last_ts_ms && r.value == s.last_value) {
    ++im.duplicates;
    verdict.store = false;
    return verdict;
  }
  verdict.store = Impl::StoreDecision(s, f, r);
  s.seen = true;
  s.last_ts_ms = r.ts_ms;
  s.last_value = r.value;
  s.context.Push(r.ts_ms, r.value);
  for (RuleState& rs : s.rules) im.Step(rs, s, r, out);
  return verdict;
}

void Engine::Advance(int64_t now_ms, std::vector<AlertEvent>& out) {
  Impl& im = *impl_;
  for (const Impl::StaleRef& ref : im.stale) {
    const SensorState& s = *ref.state;
    if (!s.seen) continue;
    const RuleSpec& spec = im.policy.rules[s.rules[ref.index].rule];
    const int64_t after = std::get<StaleParams>(spec.params).after_ms;
    if (!ElapsedAtLeast(s.last_ts_ms, now_ms, after)) continue;
    im.FireStale(ref, now_ms, s.last_ts_ms + after, out);  // <= now_ms here: no overflow
  }
}

size_t Engine::MarkOffline(std::string_view prefix, int64_t now_ms, std::vector<AlertEvent>& out) {
  Impl& im = *impl_;
  size_t fired = 0;
  for (const Impl::StaleRef& ref : im.stale) {
    if (ref.sensor->starts_with(prefix) && im.FireStale(ref, now_ms, now_ms, out)) ++fired;
  }
  return fired;
}

void Engine::SwapPolicy(Policy next, std::vector<AlertEvent>& out) {
  Impl& im = *impl_;
  Policy old = std::move(im.policy);
  im.policy = std::move(next);
  im.stale.clear();
  for (auto& [sensor, s] : im.sensors) {
    std::vector<RuleState> previous = std::move(s.rules);
    s.rules.clear();
    im.MatchRules(sensor, s);
    for (RuleState& fresh : s.rules) {
      const RuleSpec& spec = im.policy.rules[fresh.rule];
      for (RuleState& prev : previous) {
        if (prev.rule == kMovedRule || !(old.rules[prev.rule] == spec)) continue;
        const uint32_t index = fresh.rule;
        fresh = std::move(prev);
        fresh.rule = index;
        prev.rule = kMovedRule;
        break;
      }
    }
    for (const RuleState& prev : previous) {
      if (prev.rule == kMovedRule || prev.phase != Phase::kFiring) continue;
      im.Emit(old.rules[prev.rule], prev, s, sensor, s.last_ts_ms, s.last_value,
              AlertState::kResolved, out);
    }
    s.filter = im.MatchFilter(sensor);
    if (im.policy.context_size != old.context_size) {
      ContextRing ring(im.policy.context_size);
      for (const auto& [ts, v] : s.context.Snapshot()) ring.Push(ts, v);
      s.context = std::move(ring);
    }
    im.IndexStale(sensor, s);
  }
}

std::vector<Episode> Engine::FiringEpisodes() const {
  std::vector<Episode> episodes;
  for (const auto& [sensor, s] : impl_->sensors) {
    for (const RuleState& rs : s.rules) {
      if (rs.phase != Phase::kFiring) continue;
      episodes.push_back(Episode{impl_->policy.rules[rs.rule].id, sensor, rs.run_start_ms,
                                 s.last_ts_ms, s.last_value});
    }
  }
  return episodes;
}

size_t Engine::RestoreEpisodes(const std::vector<Episode>& episodes) {
  size_t restored = 0;
  for (const Episode& e : episodes) {
    SensorTable::Entry* entry = impl_->SensorEntry(e.sensor);
    if (entry == nullptr) continue;
    SensorState& s = entry->second;
    for (RuleState& rs : s.rules) {
      if (impl_->policy.rules[rs.rule].id != e.rule_id) continue;
      rs.phase = Phase::kFiring;
      rs.run_start_ms = e.started_ms;
      if (!s.seen || e.last_ts_ms > s.last_ts_ms) {
        s.seen = true;
        s.last_ts_ms = e.last_ts_ms;
        s.last_value = e.last_value;
      }
      ++restored;
      break;
    }
  }
  return restored;
}

const Policy& Engine::policy() const { return impl_->policy; }

size_t Engine::sensors_tracked() const { return impl_->sensors.size(); }

void Engine::SetSensorLimit(size_t max_sensors) { impl_->max_sensors = max_sensors; }

void Engine::SetActivityTime(int64_t now_ms) { impl_->activity_ms = now_ms; }

size_t Engine::ForgetIdle(int64_t idle_before_ms) {
  Impl& im = *impl_;
  const size_t forgotten = im.sensors.Retain([idle_before_ms](const SensorTable::Entry& e) {
    const SensorState& s = e.second;
    if (s.active_ms >= idle_before_ms) return true;
    return std::any_of(s.rules.begin(), s.rules.end(),
                       [](const RuleState& rs) { return rs.phase == Phase::kFiring; });
  });
  if (forgotten > 0) {
    // The stale references pointed at entries that moved.
    im.stale.clear();
    im.stale.shrink_to_fit();
    for (auto& [sensor, s] : im.sensors) im.IndexStale(sensor, s);
  }
  return forgotten;
}

uint64_t Engine::out_of_order() const { return impl_->out_of_order; }

uint64_t Engine::duplicates() const { return impl_->duplicates; }

uint64_t Engine::non_finite() const { return impl_->non_finite; }

uint64_t Engine::out_of_range() const { return impl_->out_of_range; }

size_t Engine::ApproxStateBytes(bool include_windows) const {
  size_t bytes = impl_->sensors.IndexBytes();
  for (const auto& [sensor, s] : impl_->sensors) {
    bytes += sizeof(SensorTable::Entry);
    if (sensor.capacity() > 15) bytes += sensor.capacity() + 1;
    bytes += s.context.HeapBytes() + s.rules.capacity() * sizeof(RuleState);
    if (!include_windows) continue;
    for (const RuleState& rs : s.rules) bytes += HeapBytes(rs.detector);
  }
  return bytes + impl_->stale.capacity() * sizeof(Impl::StaleRef);
}

}  // namespace edge::rules
