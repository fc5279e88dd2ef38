#pragma once

// The condition each rule kind watches. A detector only answers "does the condition hold
// for this reading of this sensor?"; the alert lifecycle around it (pending for `for`, one
// firing per episode, resolving, cooldown, out-of-order readings) belongs to the Engine and
// is the same for every kind. `stale` is the exception that proves the rule: its condition
// is the absence of readings, so the Engine fires it from Advance(now) and a reading only
// ever clears it.
//
// State is per (rule, sensor) and kept small: DetectorState has one alternative per kind,
// parallel to RuleParams. A new kind adds a params struct to RuleParams, a state struct
// here, and an overload set in detector.cc. Pure; no I/O, no clock. Readings reach a
// detector in event-time order with finite values (the Engine filters the rest); a rate or
// rolling-window zscore detector given a reading older than its newest one returns kUnknown
// and keeps its state.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <variant>

#include "edge/rules/anomaly.h"
#include "edge/rules/policy.h"

namespace edge::rules {

// A rolling window (rate, zscore) is cut into kWindowBuckets buckets of event time, each
// BucketWidthMs(window) wide, so that its memory is fixed whatever the reporting rate. A
// bucket opens at the first reading at least one width after the previous bucket's start,
// so its start is a real reading's timestamp, and it leaves as a whole: the window's edge is
// exact to within one bucket width (docs/policy.md, "Rolling windows").
inline constexpr uint32_t kWindowBuckets = 32;
// Buckets a window keeps at most: starts at least a width apart within a span of at most
// window + width - 1 ms (< 33 widths), the newest reading's bucket included.
inline constexpr uint32_t kWindowSlots = kWindowBuckets + 1;

// ceil(window_ms / kWindowBuckets), at least 1; window_ms > 0.
constexpr int64_t BucketWidthMs(int64_t window_ms) {
  const int64_t width = window_ms / kWindowBuckets + (window_ms % kWindowBuckets != 0 ? 1 : 0);
  return width > 1 ? width : 1;
}

// A ring of at most kWindowSlots items, oldest first. Its buffer is allocated once, at its
// full size, on the first PushBack, and kept until destruction. Move-only.
template <typename T>
class BucketRing {
 public:
  BucketRing() = default;
  BucketRing(BucketRing&&) noexcept = default;
  BucketRing& operator=(BucketRing&&) noexcept = default;

  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == kWindowSlots; }
  // Require !empty(); i < size().
  T& front() { return buf_[head_]; }
  const T& front() const { return buf_[head_]; }
  T& back() { return (*this)[size_ - 1]; }
  T& operator[](uint32_t i) { return buf_[(head_ + i) % kWindowSlots]; }
  const T& operator[](uint32_t i) const { return buf_[(head_ + i) % kWindowSlots]; }
  void PopFront() {
    head_ = (head_ + 1) % kWindowSlots;
    --size_;
  }
  // Appends `item`; when full, the oldest item leaves first.
  void PushBack(const T& item) {
    if (!buf_) buf_ = std::make_unique<T[]>(kWindowSlots);
    if (full()) PopFront();
    buf_[(head_ + size_) % kWindowSlots] = item;
    ++size_;
  }
  void Clear() {
    head_ = 0;
    size_ = 0;
  }
  // Heap bytes held: 0 before the first PushBack, the full buffer after.
  size_t HeapBytes() const { return buf_ ? kWindowSlots * sizeof(T) : 0; }

 private:
  std::unique_ptr<T[]> buf_;
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};

// Count, mean and sum of squared deviations from the mean (M2) of some readings. Add is
// Welford's update, which does not cancel; sets are merged as in Chan et al. (the sum of
// their M2 plus count x squared distance of each mean from the merged mean).
struct Moments {
  int64_t count = 0;
  double mean = 0;
  double m2 = 0;

  void Add(double x) {
    ++count;
    const double delta = x - mean;
    mean += delta / static_cast<double>(count);
    m2 += delta * (x - mean);
  }
};

// Mean and sample variance of the readings of a rolling window of `window` ms, in bucketed
// form: each bucket keeps the Moments of its readings relative to a per-window shift, which
// follows the window's mean, so that values with a large offset (1e9 + noise) keep their
// precision. A bucket leaves once its newest reading is more than `window` older than the
// current one, so the window holds every reading at most `window` old (ts - reading's ts <=
// window) and, besides, the older readings that share a bucket with one of them: at most
// width - 1 ms older than `window`. With readings at least a width apart it is exact.
// Readings come in event-time order; one older than the newest bucket's start joins that
// bucket. O(1) per Add; an Expire that drops buckets costs O(kWindowSlots). Heap: one buffer
// of kWindowSlots buckets, allocated at the first Add. Move-only.
class WindowStats {
 public:
  struct Bucket {
    int64_t start_ms;  // ts of its first reading
    int64_t last_ms;   // ts of its newest reading
    Moments moments;   // of value - shift()
  };

  // Empties the window and sets its length (> 0). Keeps the buffer.
  void Reset(int64_t window_ms);
  int64_t window_ms() const { return window_ms_; }

  // Drops the buckets that have left the window as of `ts_ms` (the next reading's ts).
  void Expire(int64_t ts_ms);
  void Add(int64_t ts_ms, double value);

  int64_t count() const { return total_.count; }
  double shift() const { return shift_; }
  // Mean of value - shift(); 0 when empty.
  double mean_from_shift() const { return total_.mean; }
  double mean() const { return shift_ + total_.mean; }
  // Sample variance (n - 1 denominator); 0 with fewer than 2 readings.
  double variance() const;
  // Start of the oldest bucket: the readings held are those from it on. Requires count() > 0.
  int64_t oldest_ms() const { return buckets_.front().start_ms; }
  // Newest reading's ts. Requires count() > 0.
  int64_t newest_ms() const { return buckets_[buckets_.size() - 1].last_ms; }
  uint32_t buckets() const { return buckets_.size(); }
  size_t HeapBytes() const { return buckets_.HeapBytes(); }

 private:
  // Recomputes total_ from the buckets and moves the shift to their mean.
  void Rebuild();

  BucketRing<Bucket> buckets_;
  Moments total_;  // of every bucket
  double shift_ = 0;
  int64_t window_ms_ = 0;
};

// Threshold and range are stateless: the reading and the firing flag decide.
struct ThresholdState {};
struct RangeState {};
// Stale keeps nothing of its own: the Engine tracks each sensor's last reading.
struct StaleState {};

struct RateState {
  struct Sample {
    int64_t ts_ms;
    double value;
  };
  // The first reading of each bucket of the window whose first reading is at most `window`
  // old: the reference candidates, oldest first.
  BucketRing<Sample> firsts;
  Sample prev{0, 0};  // the sensor's previous reading, if has_prev
  bool has_prev = false;
  int64_t window_ms = 0;  // the window `firsts` was cut for
};

struct ZScoreState {
  WindowStats window;  // rolling window; empty for an EWMA
  // EWMA.
  double mean = 0;
  double var = 0;
  int64_t count = 0;  // readings folded into the baseline (saturates)
  int64_t last_ts_ms = 0;
};

struct FlatlineState {
  bool has_run = false;
  bool broken = false;  // a reading left the band since this state was made
  int64_t run_start_ms = 0;
  double min = 0;
  double max = 0;
};

// The detector (about 1.4 KiB) lives on the heap, so that the other kinds' states stay a few
// words; allocated at the first reading, fixed size after.
struct AnomalyState {
  std::unique_ptr<AnomalyDetector> detector;
};

using DetectorState = std::variant<ThresholdState, RateState, ZScoreState, StaleState,
                                   FlatlineState, RangeState, AnomalyState>;

// A fresh state for a rule with these params.
DetectorState MakeDetectorState(const RuleParams& params);

// kUnknown: the detector cannot tell yet (a window not warmed up, a state just made), so the
// Engine keeps the rule where it is: firing stays firing, idle stays idle.
enum class Condition : uint8_t { kClear, kHolds, kUnknown };

inline constexpr int64_t kNoSince = std::numeric_limits<int64_t>::min();

struct Verdict {
  Condition condition = Condition::kClear;
  // For kHolds: when the condition started, if the detector knows better than the Engine
  // (flatline: the start of the flat run). kNoSince: the reading's own timestamp.
  int64_t since_ms = kNoSince;
};

// Feeds one reading of one sensor to the rule's detector and returns its verdict. `firing`
// tells whether the rule currently fires for this sensor, so a kind with a clear level can
// apply hysteresis: while firing, "holds" means "has not cleared yet". A state that does not
// belong to `params` is reset first. O(1) amortized for every kind.
Verdict Evaluate(const RuleParams& params, DetectorState& state, int64_t ts_ms, double value,
                 bool firing);

// Compatibility wrapper: Evaluate(...).condition == Condition::kHolds.
bool ConditionHolds(const RuleParams& params, DetectorState& state, int64_t ts_ms, double value,
                    bool firing);

// How long, in ms of event time, the condition must hold before the rule fires (`for`).
int64_t HoldMs(const RuleParams& params);

// Heap bytes a state holds beyond its own size (window buffers, the anomaly detector: fixed
// once allocated).
size_t HeapBytes(const DetectorState& state);

}  // namespace edge::rules
