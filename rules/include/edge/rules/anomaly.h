#pragma once

// The detector behind `kind: anomaly` (policy.h, docs/policy.md): an untuned, online,
// one-pass scorer of how unusual each reading of one sensor is. For each reading it gives
// the deviation from the sensor's baseline in units of its spread, and how rare a deviation
// that large has been for this sensor. The rule's decision (deviation >= kMinDeviation and
// rarity <= kAlpha x sensitivity) is the caller's, in detector.cc.
//
// The baseline is the median of the last kRing readings, with a spread that is the larger of
// the scaled median and mean absolute deviations from it (the mean keeps count series, whose
// median deviation is often 0, from scoring every change as infinite); both are recomputed
// every kRefresh readings by selection. Beside it, kSlots hour-of-day baselines (UTC), each
// an outlier-clamped exponentially weighted mean and mean absolute deviation with about
// kSeasonDays of memory: once a slot has seen kSeasonMinDays days, a reading's deviation is
// the smaller of the two, so a daily pattern is not an anomaly. The rarity is read off a
// histogram of the sensor's past deviations (kHistBins bins of log2 deviation, decaying with
// a half-life of kHistHalfLife readings).
//
// Memory is fixed: sizeof(AnomalyDetector) <= 2 KiB, no allocation. O(1) amortized per
// reading: a selection over the ring (O(kRing)) every kRefresh readings, a partial sum over
// the histogram, the rest constant. Values are kept as float32 relative to the median, which
// the detector follows, so a large offset keeps its precision (1e9 plus noise of 10, then
// 2e9); a spread below 1e-9 of the median counts as 1e-9 of it.
// Timestamps are event time in ms since the epoch, in order; any finite value is accepted.
// Pure; not thread-safe: one owner.

#include <array>
#include <cstddef>
#include <cstdint>

namespace edge::rules {

namespace anomaly {
inline constexpr uint16_t kRing = 200;          // readings in the baseline
inline constexpr uint8_t kRefresh = 8;          // baseline recomputed every kRefresh scores
inline constexpr uint16_t kMinBaseline = 32;    // readings before the first score
inline constexpr uint32_t kWarmupScores = 100;  // scores before the first decision
inline constexpr size_t kSlots = 24;            // hour-of-day baselines
inline constexpr double kSeasonDays = 7;        // their memory, days
inline constexpr double kSeasonMinDays = 2;     // days a slot must have seen to be used
inline constexpr double kClamp = 3;             // slot updates clamp to mean +- kClamp spreads
inline constexpr size_t kHistBins = 64;         // of log2(deviation), from kHistLo up
inline constexpr double kHistLo = -6;
inline constexpr double kHistStep = 0.25;
inline constexpr double kHistHalfLife = 4000;  // readings
inline constexpr double kMinDeviation = 3;     // a reading less deviant is never bad
inline constexpr double kAlpha = 0.003;        // rarity at or below which it is, at sensitivity 1
inline constexpr double kClearFactor = 10;     // a firing alert clears above kClearFactor x alpha
}  // namespace anomaly

// What the detector made of one reading.
struct AnomalyScore {
  // False until the detector has scored anomaly::kWarmupScores readings (the first
  // kMinBaseline readings only fill the baseline): deviation and rarity mean nothing yet.
  bool ready = false;
  double deviation = 0;  // |value - baseline| / spread, >= 0 (infinite or NaN never)
  // Decayed share of the sensor's earlier scored readings whose deviation fell in this one's
  // histogram bin or above, in [0, 1]; 1 while there are none.
  double rarity = 1;
};

class AnomalyDetector {
 public:
  // Scores the reading against the state before it, then learns from it.
  AnomalyScore Update(int64_t ts_ms, double value);

 private:
  struct Slot {
    float mean = 0;   // relative to origin_
    float dev = 0;    // mean absolute deviation
    float count = 0;  // readings seen
  };

  // Median and spread of the ring; moves origin_ to the median.
  void Refresh();
  // The reading relative to origin_, bounded so that differences stay finite in float.
  float Relative(double value) const;
  // Folds the reading into its hour-of-day slot and returns the deviation to use: `dev`, or
  // the slot's when that is smaller in magnitude and the slot has seen enough days.
  double Seasonal(int64_t ts_ms, float x, double dev);
  // Rarity of a deviation in histogram bin `bin`, then counts it there.
  double RarityThenLearn(size_t bin);

  double origin_ = 0;      // the baseline's median; ring and slot means are relative to it
  double scale_ = 1;       // the baseline's spread, > 0
  double hist_gain_ = 1;   // weight of the next reading in hist_ (decay applied lazily)
  double hist_total_ = 0;  // sum of hist_, same units
  int64_t last_ts_ms_ = 0;
  float dt_ms_ = 0;  // smoothed reporting interval; 0 until two timestamps differ
  float mad_ = 0;    // the baseline's median absolute deviation
  uint32_t scored_ = 0;
  uint16_t head_ = 0;   // next ring index to write
  uint16_t count_ = 0;  // readings in the ring, <= kRing
  uint8_t since_refresh_ = anomaly::kRefresh;
  bool has_ts_ = false;
  std::array<float, anomaly::kRing> ring_{};
  std::array<Slot, anomaly::kSlots> slots_{};
  std::array<float, anomaly::kHistBins> hist_{};
};
static_assert(sizeof(AnomalyDetector) <= 2048, "anomaly state per sensor-rule is at most 2 KiB");

}  // namespace edge::rules
