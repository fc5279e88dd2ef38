#include "edge/rules/detector.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace edge::rules {
namespace {

// True if `to` is more than `span` after `from`. Timestamps come from the network and may be
// anywhere in the int64 range, so the difference is taken in unsigned arithmetic, as is the
// span (a window plus a bucket width may exceed int64).
bool OlderThan(int64_t from, int64_t to, uint64_t span) {
  if (to < from) return false;
  return static_cast<uint64_t>(to) - static_cast<uint64_t>(from) > span;
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
  if (s.window_ms != p.window_ms) s = RateState{{}, {0, 0}, false, p.window_ms};
  // Older than the newest reading seen (the caller did not filter it): it decides nothing and
  // leaves the state as it was.
  if (s.has_prev && ts < s.prev.ts_ms) return kUnknown;
  BucketRing<RateState::Sample>& firsts = s.firsts;
  while (!firsts.empty() &&
         OlderThan(firsts.front().ts_ms, ts, static_cast<uint64_t>(p.window_ms))) {
    firsts.PopFront();
  }
  // The reference: the oldest bucket start within the window; if none is left, the reading
  // before this one, so sparse data still gives a rate (over a longer span).
  const RateState::Sample* ref = nullptr;
  if (!firsts.empty()) {
    ref = &firsts.front();
  } else if (s.has_prev) {
    ref = &s.prev;
  }
  Verdict v = kUnknown;
  // Until the reference is half a window old, sensor noise divided by a short span would look
  // like a steep rate (every sensor "drifting" right after start): undecided.
  if (ref != nullptr && ref->ts_ms < ts &&
      static_cast<uint64_t>(ts) - static_cast<uint64_t>(ref->ts_ms) >=
          static_cast<uint64_t>(p.window_ms / 2)) {
    const double rate = (value - ref->value) / SecondsBetween(ref->ts_ms, ts);
    switch (p.direction) {
      case Direction::kUp:
        v = Holds(rate > p.max_rate);
        break;
      case Direction::kDown:
        v = Holds(rate < -p.max_rate);
        break;
      case Direction::kBoth:
        v = Holds(std::abs(rate) > p.max_rate);
        break;
    }
  }
  // The reading opens a bucket if it is at least a width after the newest bucket's start
  // (an older one, or one as old, joins that bucket: only its first reading is kept).
  if (firsts.empty() ||
      OlderThan(firsts.back().ts_ms, ts, static_cast<uint64_t>(BucketWidthMs(p.window_ms)) - 1)) {
    firsts.PushBack({ts, value});
  }
  s.prev = {ts, value};
  s.has_prev = true;
  return v;
}

int64_t HoldFor(const RateParams& p) { return p.for_ms; }

// ---- zscore ----
ZScoreState StateFor(const ZScoreParams&) { return {}; }

Verdict EvalWindow(const ZScoreParams& p, ZScoreState& s, int64_t ts, double value) {
  WindowStats& w = s.window;
  if (w.window_ms() != p.window_ms) w.Reset(p.window_ms);
  if (w.count() > 0 && ts < w.newest_ms()) return kUnknown;  // as for rate
  w.Expire(ts);
  Verdict v = kUnknown;
  if (w.count() >= p.min_samples) {
    v = Holds(std::abs(ZScore(value - w.shift(), w.mean_from_shift(), w.variance())) > p.z);
  }
  w.Add(ts, value);
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

// ---- anomaly ----
AnomalyState StateFor(const AnomalyParams&) { return {}; }

Verdict Eval(const AnomalyParams& p, AnomalyState& s, int64_t ts, double value, bool firing) {
  if (!s.detector) s.detector = std::make_unique<AnomalyDetector>();
  const AnomalyScore score = s.detector->Update(ts, value);
  if (!score.ready) return kUnknown;
  const double alpha = anomaly::kAlpha * p.sensitivity;
  // Hysteresis, as a clear level: a firing alert holds until deviations this large are no
  // longer rare, so that one episode gives one alert. The 12 h hold-off after it is the
  // rule's cooldown (kAnomalyCooldownMs).
  if (firing) return Holds(score.rarity <= anomaly::kClearFactor * alpha);
  return Holds(score.deviation >= anomaly::kMinDeviation && score.rarity <= alpha);
}

int64_t HoldFor(const AnomalyParams& p) { return p.for_ms; }

// ---- heap bytes ----
size_t Heap(const RateState& s) { return s.firsts.HeapBytes(); }
size_t Heap(const ZScoreState& s) { return s.window.HeapBytes(); }
size_t Heap(const AnomalyState& s) { return s.detector ? sizeof(AnomalyDetector) : 0; }
template <typename T>
size_t Heap(const T&) {
  return 0;
}

}  // namespace

void WindowStats::Reset(int64_t window_ms) {
  buckets_.Clear();
  total_ = {};
  shift_ = 0;
  window_ms_ = window_ms;
}

void WindowStats::Expire(int64_t ts_ms) {
  // A bucket stays while its newest reading is in the window: with at most one reading per
  // bucket the window is exact, and otherwise no reading more than `window` old is counted
  // unless a newer reading of its bucket is not.
  const uint64_t span = static_cast<uint64_t>(window_ms_);
  bool dropped = false;
  while (!buckets_.empty() && OlderThan(buckets_.front().last_ms, ts_ms, span)) {
    buckets_.PopFront();
    dropped = true;
  }
  if (dropped) Rebuild();
}

void WindowStats::Rebuild() {
  // From the buckets rather than by subtracting those that left (no cancellation): the mean
  // first, then M2 as a sum of non-negative terms. The shift moves to the window's mean so
  // that later values stay close to it; the delta applied is what the shift actually moved
  // by, so the buckets' values change only by the rounding of their (small) means.
  int64_t n = 0;
  double sum = 0;
  for (uint32_t i = 0; i < buckets_.size(); ++i) {
    const Moments& m = buckets_[i].moments;
    n += m.count;
    sum += static_cast<double>(m.count) * m.mean;
  }
  total_ = {};
  if (n == 0) return;
  const double mean = sum / static_cast<double>(n);
  const double next_shift = shift_ + mean;
  const double delta = next_shift - shift_;
  shift_ = next_shift;
  total_.count = n;
  total_.mean = mean - delta;
  for (uint32_t i = 0; i < buckets_.size(); ++i) {
    Moments& m = buckets_[i].moments;
    m.mean -= delta;
    const double d = m.mean - total_.mean;
    total_.m2 += m.m2 + static_cast<double>(m.count) * d * d;
  }
}

void WindowStats::Add(int64_t ts_ms, double value) {
  if (buckets_.empty()) {
    total_ = {};
    shift_ = value;
  }
  if (buckets_.empty() || OlderThan(buckets_.back().start_ms, ts_ms,
                                    static_cast<uint64_t>(BucketWidthMs(window_ms_)) - 1)) {
    if (buckets_.full()) {
      // Not reached with readings in event-time order (kWindowSlots covers the span); if it
      // were, the oldest bucket would leave early and the total must follow.
      buckets_.PopFront();
      Rebuild();
    }
    buckets_.PushBack(Bucket{ts_ms, ts_ms, {}});
  }
  Bucket& b = buckets_.back();
  b.last_ms = std::max(b.last_ms, ts_ms);
  const double x = value - shift_;
  b.moments.Add(x);
  total_.Add(x);
}

double WindowStats::variance() const {
  if (total_.count < 2) return 0;
  return std::max(0.0, total_.m2 / static_cast<double>(total_.count - 1));
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
