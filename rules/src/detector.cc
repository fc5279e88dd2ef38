#include "edge/rules/detector.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace edge::rules {
namespace {

// True if `to` is more than `span` after `from`. Timestamps come from the network and may be
// anywhere in the int64 range, so the difference is taken in unsigned arithmetic.
bool OlderThan(int64_t from, int64_t to, int64_t span) {
  if (to < from) return false;
  return static_cast<uint64_t>(to) - static_cast<uint64_t>(from) > static_cast<uint64_t>(span);
}

// Seconds from `from` to `to` (to >= from), as a double.
double SecondsBetween(int64_t from, int64_t to) {
  return static_cast<double>(static_cast<uint64_t>(to) - static_cast<uint64_t>(from)) / 1000.0;
}

Verdict Holds(bool holds) { return {holds ? Condition::kHolds : Condition::kClear, kNoSince}; }
constexpr Verdict kUnknown{Condition::kUnknown, kNoSince};

// The z-score of `x` against a mean and variance. A zero variance (a constant baseline) gives
// 0 for the constant itself and infinity for anything else; "zero" allows for the rounding of
// values around `mean`.
double ZScore(double x, double mean, double var) {
  const double scale = std::max(std::abs(mean), std::abs(x));
  const double tiny = scale * 1e-12;
  if (!(var > tiny * tiny)) {
    return std::abs(x - mean) <= tiny ? 0 : std::numeric_limits<double>::infinity();
  }
  return (x - mean) / std::sqrt(var);
}

// ---- threshold ----
ThresholdState StateFor(const ThresholdParams&) { return {}; }

Verdict Eval(const ThresholdParams& p, ThresholdState&, int64_t, double value, bool firing) {
  if (firing && p.clear) {
    // Hysteresis: once firing, stay firing until the value crosses the clear level, which
    // sits on the good side of the single bound it belongs to.
    if (p.above) return Holds(value > *p.clear);
    if (p.below) return Holds(value < *p.clear);
  }
  return Holds((p.above && value > *p.above) || (p.below && value < *p.below));
}

int64_t HoldFor(const ThresholdParams& p) { return p.for_ms; }

// ---- range ----
RangeState StateFor(const RangeParams&) { return {}; }

Verdict Eval(const RangeParams& p, RangeState&, int64_t, double value, bool) {
  return Holds((p.min && value < *p.min) || (p.max && value > *p.max));
}

int64_t HoldFor(const RangeParams& p) { return p.for_ms; }

// ---- stale: a reading is the opposite of stale ----
StaleState StateFor(const StaleParams&) { return {}; }

Verdict Eval(const StaleParams&, StaleState&, int64_t, double, bool) { return Holds(false); }

int64_t HoldFor(const StaleParams&) { return 0; }

// ---- rate ----
RateState StateFor(const RateParams&) { return {}; }

Verdict Eval(const RateParams& p, RateState& s, int64_t ts, double value, bool) {
  SampleWindow& w = s.window;
  if (w.full()) w.PopFront();
  w.PushBack(ts, value);
  // Keep the readings within the window; if none but the current one is left, keep the one
  // before it as the reference, so sparse data still gives a rate (over a longer span).
  while (w.size() > 2 && OlderThan(w.front().ts_ms, ts, p.window_ms)) w.PopFront();
  const SampleWindow::Sample& ref = w.front();
  if (w.size() < 2 || ref.ts_ms >= ts) return kUnknown;
  // Until the readings span half the window, sensor noise divided by a short span would
  // look like a steep rate (every sensor "drifting" right after start): undecided.
  if (ts - ref.ts_ms < p.window_ms / 2) return kUnknown;
  const double rate = (value - ref.value) / SecondsBetween(ref.ts_ms, ts);
  switch (p.direction) {
    case Direction::kUp:
      return Holds(rate > p.max_rate);
    case Direction::kDown:
      return Holds(rate < -p.max_rate);
    case Direction::kBoth:
      return Holds(std::abs(rate) > p.max_rate);
  }
  return Holds(false);
}

int64_t HoldFor(const RateParams& p) { return p.for_ms; }

// ---- zscore ----
ZScoreState StateFor(const ZScoreParams&) { return {}; }

void Recompute(ZScoreState& s) {
  s.shift = s.window.empty() ? 0 : s.window.front().value;
  s.sum = 0;
  s.sum_sq = 0;
  for (uint32_t i = 0; i < s.window.size(); ++i) {
    const double d = s.window[i].value - s.shift;
    s.sum += d;
    s.sum_sq += d * d;
  }
  s.removed = 0;
}

void RemoveOldest(ZScoreState& s) {
  const double d = s.window.front().value - s.shift;
  s.sum -= d;
  s.sum_sq -= d * d;
  s.window.PopFront();
  ++s.removed;
}

Verdict EvalWindow(const ZScoreParams& p, ZScoreState& s, int64_t ts, double value) {
  while (!s.window.empty() && OlderThan(s.window.front().ts_ms, ts, p.window_ms)) {
    RemoveOldest(s);
  }
  if (s.window.empty()) {
    s.shift = value;
    s.sum = 0;
    s.sum_sq = 0;
    s.removed = 0;
  } else if (s.removed >= std::max<uint32_t>(s.window.size(), 64)) {
    Recompute(s);  // amortized O(1): at most once per window's worth of removals
  }
  Verdict v = kUnknown;
  const uint32_t n = s.window.size();
  if (n >= static_cast<uint64_t>(p.min_samples)) {
    const double dn = static_cast<double>(n);
    const double mean_d = s.sum / dn;
    const double var = std::max(0.0, (s.sum_sq - s.sum * mean_d) / (dn - 1));
    v = Holds(std::abs(ZScore(value - s.shift, mean_d, var)) > p.z);
  }
  if (s.window.full()) RemoveOldest(s);
  s.window.PushBack(ts, value);
  const double d = value - s.shift;
  s.sum += d;
  s.sum_sq += d * d;
  return v;
}

Verdict EvalEwma(const ZScoreParams& p, ZScoreState& s, int64_t ts, double value) {
  if (s.count == 0) {
    s.mean = value;
    s.var = 0;
    s.count = 1;
    s.last_ts_ms = ts;
    return kUnknown;
  }
  Verdict v = kUnknown;
  if (s.count >= p.min_samples) v = Holds(std::abs(ZScore(value, s.mean, s.var)) > p.z);
  double a = p.alpha;
  if (p.half_life_ms > 0) {
    // Weight by the event time since the last reading: a baseline halves its pull every
    // half_life, however often the sensor reports.
    const double dt = ts > s.last_ts_ms ? SecondsBetween(s.last_ts_ms, ts) : 0.0;
    a = 1.0 - std::exp2(-dt * 1000.0 / static_cast<double>(p.half_life_ms));
  }
  const double diff = value - s.mean;
  const double incr = a * diff;
  s.mean += incr;
  s.var = (1 - a) * (s.var + diff * incr);
  if (s.count < std::numeric_limits<int64_t>::max()) ++s.count;
  s.last_ts_ms = ts;
  return v;
}

Verdict Eval(const ZScoreParams& p, ZScoreState& s, int64_t ts, double value, bool) {
  return p.window_ms > 0 ? EvalWindow(p, s, ts, value) : EvalEwma(p, s, ts, value);
}

int64_t HoldFor(const ZScoreParams& p) { return p.for_ms; }

// ---- flatline ----
FlatlineState StateFor(const FlatlineParams&) { return {}; }

Verdict Eval(const FlatlineParams& p, FlatlineState& s, int64_t ts, double value, bool) {
  if (s.has_run) {
    const double lo = std::min(s.min, value);
    const double hi = std::max(s.max, value);
    if (hi - lo <= p.epsilon) {
      s.min = lo;
      s.max = hi;
      if (!OlderThan(s.run_start_ms, ts, p.window_ms - 1)) {
        // Too short to call yet. A run this state saw from its start after a break is known
        // not to be flat for long enough; one that began with the state is not known.
        return s.broken ? Holds(false) : kUnknown;
      }
      return {Condition::kHolds, s.run_start_ms};
    }
    s.broken = true;
  }
  s.has_run = true;
  s.run_start_ms = ts;
  s.min = value;
  s.max = value;
  return s.broken ? Holds(false) : kUnknown;
}

int64_t HoldFor(const FlatlineParams&) { return 0; }

// ---- heap bytes ----
size_t Heap(const RateState& s) { return s.window.HeapBytes(); }
size_t Heap(const ZScoreState& s) { return s.window.HeapBytes(); }
template <typename T>
size_t Heap(const T&) {
  return 0;
}

}  // namespace

void SampleWindow::PushBack(int64_t ts_ms, double value) {
  if (size_ == cap_) {
    const uint32_t cap = cap_ == 0 ? 4 : std::min(cap_ * 2, kMaxWindowSamples);
    auto buf = std::make_unique<Sample[]>(cap);
    for (uint32_t i = 0; i < size_; ++i) buf[i] = (*this)[i];
    buf_ = std::move(buf);
    cap_ = cap;
    head_ = 0;
  }
  buf_[(head_ + size_) & (cap_ - 1)] = {ts_ms, value};
  ++size_;
}

DetectorState MakeDetectorState(const RuleParams& params) {
  return std::visit([](const auto& p) -> DetectorState { return StateFor(p); }, params);
}

Verdict Evaluate(const RuleParams& params, DetectorState& state, int64_t ts_ms, double value,
                 bool firing) {
  return std::visit(
      [&](const auto& p) {
        using State = decltype(StateFor(p));
        if (!std::holds_alternative<State>(state)) state = StateFor(p);
        return Eval(p, std::get<State>(state), ts_ms, value, firing);
      },
      params);
}

bool ConditionHolds(const RuleParams& params, DetectorState& state, int64_t ts_ms, double value,
                    bool firing) {
  return Evaluate(params, state, ts_ms, value, firing).condition == Condition::kHolds;
}

int64_t HoldMs(const RuleParams& params) {
  return std::visit([](const auto& p) { return HoldFor(p); }, params);
}

size_t HeapBytes(const DetectorState& state) {
  return std::visit([](const auto& s) { return Heap(s); }, state);
}

}  // namespace edge::rules
