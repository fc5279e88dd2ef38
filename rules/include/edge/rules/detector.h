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
// detector in event-time order with finite values (the Engine filters the rest).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <variant>

#include "edge/rules/policy.h"

namespace edge::rules {

// Most readings a rolling window (rate, zscore) keeps per (rule, sensor); past this the
// oldest readings leave the window early. 16384 readings of 16 bytes: 256 KiB at most.
inline constexpr uint32_t kMaxWindowSamples = 16384;

// The readings of a rolling window, oldest first: a ring that grows by doubling up to
// kMaxWindowSamples. Move-only.
class SampleWindow {
 public:
  struct Sample {
    int64_t ts_ms;
    double value;
  };

  SampleWindow() = default;
  SampleWindow(SampleWindow&&) noexcept = default;
  SampleWindow& operator=(SampleWindow&&) noexcept = default;

  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == kMaxWindowSamples; }
  const Sample& front() const { return buf_[head_]; }
  const Sample& operator[](uint32_t i) const { return buf_[(head_ + i) & (cap_ - 1)]; }
  void PopFront() {
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
  }
  // Requires !full().
  void PushBack(int64_t ts_ms, double value);
  // Heap bytes held by the buffer.
  size_t HeapBytes() const { return static_cast<size_t>(cap_) * sizeof(Sample); }

 private:
  std::unique_ptr<Sample[]> buf_;
  uint32_t cap_ = 0;  // 0 or a power of two
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};

// Threshold and range are stateless: the reading and the firing flag decide.
struct ThresholdState {};
struct RangeState {};
// Stale keeps nothing of its own: the Engine tracks each sensor's last reading.
struct StaleState {};

struct RateState {
  SampleWindow window;  // readings within `window`, plus at most one older reference
};

struct ZScoreState {
  // Rolling window: sums of (value - shift) over `window`, for a numerically stable
  // variance; recomputed from the buffer now and then to shed rounding drift.
  SampleWindow window;
  double shift = 0;
  double sum = 0;
  double sum_sq = 0;
  uint32_t removed = 0;  // removals since the last recompute
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

using DetectorState =
    std::variant<ThresholdState, RateState, ZScoreState, StaleState, FlatlineState, RangeState>;

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

// Heap bytes a state holds beyond its own size (window buffers).
size_t HeapBytes(const DetectorState& state);

}  // namespace edge::rules
