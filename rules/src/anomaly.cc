#include "edge/rules/anomaly.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace edge::rules {
namespace {

using namespace anomaly;

constexpr int64_t kDayMs = 86'400'000;
// Relative values are bounded so that a difference of two stays finite in float.
constexpr double kMaxRelative = 1e30;
// The histogram's decay per reading, applied by growing the weight of new readings instead;
// past kRenormalizeGain the bins are scaled back down (once every 80,000 readings).
const double kHistGrowth = std::exp2(1.0 / kHistHalfLife);
constexpr double kRenormalizeGain = 1 << 20;

// Consistency constants of the scale estimators for a normal distribution: sigma =
// 1.4826 x MAD = 1.2533 x mean absolute deviation.
constexpr double kMadToSigma = 1.4826;
constexpr double kMeanAdToSigma = 1.2533;

// Distinct values SelectNear walks before it gives up on its guess.
constexpr int kMaxWalk = 12;

// The k-th smallest (0-based) of a[0..m), k < m. Between two refreshes only kRefresh of the
// kRing values change, so the median and the median deviation move by a few ranks: from the
// previous one as `guess`, a count and a few walks to the next distinct value, each a
// branch-free pass the compiler vectorizes, cost a fraction of a selection, whose comparisons
// are unpredictable. Further than kMaxWalk values from the guess it falls back to
// nth_element on `scratch` (which may be `a`). The result is the same either way.
float SelectNear(const float* a, size_t m, size_t k, float guess, float* scratch) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  uint32_t below = 0;
  uint32_t equal = 0;
  for (size_t i = 0; i < m; ++i) {
    below += a[i] < guess;
    equal += a[i] == guess;
  }
  if (k >= below && k < below + equal) return guess;
  const bool up = k >= below + equal;
  size_t rank = up ? below + equal : below;  // up: values <= cur; down: values < cur
  float cur = guess;
  for (int step = 0; step < kMaxWalk; ++step) {
    float next = up ? kInf : -kInf;
    if (up) {
      for (size_t i = 0; i < m; ++i) {
        const float x = a[i] > cur ? a[i] : kInf;
        next = x < next ? x : next;
      }
    } else {
      for (size_t i = 0; i < m; ++i) {
        const float x = a[i] < cur ? a[i] : -kInf;
        next = x > next ? x : next;
      }
    }
    if (std::isinf(next)) break;  // not reached for k < m
    uint32_t n = 0;
    for (size_t i = 0; i < m; ++i) n += a[i] == next;
    if (up) {
      rank += n;
      if (k < rank) return next;
    } else {
      rank -= n;
      if (k >= rank) return next;
    }
    cur = next;
  }
  if (scratch != a) std::copy_n(a, m, scratch);
  std::nth_element(scratch, scratch + k, scratch + m);
  return scratch[k];
}

size_t Bin(double deviation) {
  const double b = std::floor((std::log2(deviation) - kHistLo) / kHistStep);
  if (!(b > 0)) return 0;  // also deviation 0 (log2 = -inf)
  if (b >= static_cast<double>(kHistBins - 1)) return kHistBins - 1;
  return static_cast<size_t>(b);
}

}  // namespace

float AnomalyDetector::Relative(double value) const {
  return static_cast<float>(std::clamp(value - origin_, -kMaxRelative, kMaxRelative));
}

void AnomalyDetector::Refresh() {
  std::array<float, kRing> scratch;
  const size_t m = count_;  // the first m of ring_ are the readings
  // Values are relative to the previous median: 0 is the guess.
  const float med = SelectNear(ring_.data(), m, m / 2, 0, scratch.data());
  float sum = 0;
  for (size_t i = 0; i < m; ++i) {
    scratch[i] = std::abs(ring_[i] - med);
    sum += scratch[i];
  }
  mad_ = SelectNear(scratch.data(), m, m / 2, mad_, scratch.data());
  const double mad = mad_;
  // The median becomes the origin: every value kept moves by the same float, so the ring's
  // order and spread are unchanged and values stay small relative to their spread.
  origin_ += med;
  for (size_t i = 0; i < m; ++i) ring_[i] -= med;
  for (Slot& slot : slots_) slot.mean -= med;
  scale_ = std::max({kMadToSigma * mad, kMeanAdToSigma * sum / static_cast<double>(m),
                     1e-9 * std::max(1.0, std::abs(origin_))});
}

double AnomalyDetector::Seasonal(int64_t ts_ms, float x, double dev) {
  const int64_t time_of_day = (ts_ms % kDayMs + kDayMs) % kDayMs;
  Slot& slot = slots_[static_cast<size_t>(time_of_day * int64_t{kSlots} / kDayMs)];
  const double per_day = static_cast<double>(kDayMs) / kSlots / dt_ms_;  // readings per slot
  if (slot.count >= kSeasonMinDays * per_day) {
    const double spread =
        std::max({kMeanAdToSigma * slot.dev, scale_ / 4, 1e-9 * std::max(1.0, std::abs(origin_))});
    const double slot_dev = (x - slot.mean) / spread;
    if (std::abs(slot_dev) < std::abs(dev)) dev = slot_dev;
  }
  slot.count += 1;
  if (slot.count == 1) {
    slot.mean = x;
    slot.dev = static_cast<float>(scale_);
    return dev;
  }
  // The weight never drops below a week's worth of readings, and never exceeds 1 (a sensor
  // reporting less than about 7 times a day would otherwise overshoot).
  const double w = std::min(1.0, std::max(1.0 / slot.count, 1.0 / (kSeasonDays * per_day)));
  const double limit = kClamp * slot.dev;
  const double xc =
      std::min(std::max(static_cast<double>(x), slot.mean - limit), slot.mean + limit);
  slot.dev = static_cast<float>(slot.dev + w * (std::abs(xc - slot.mean) - slot.dev));
  slot.mean = static_cast<float>(slot.mean + w * (xc - slot.mean));
  return dev;
}

double AnomalyDetector::RarityThenLearn(size_t bin) {
  double rarity = 1;
  if (hist_total_ > 0) {
    double tail = 0;
    for (size_t i = bin; i < kHistBins; ++i) tail += hist_[i];
    rarity = std::min(1.0, tail / hist_total_);
  }
  hist_gain_ *= kHistGrowth;
  hist_[bin] = static_cast<float>(hist_[bin] + hist_gain_);
  hist_total_ += hist_gain_;
  if (hist_gain_ > kRenormalizeGain) {
    for (float& h : hist_) h = static_cast<float>(h / hist_gain_);
    hist_total_ /= hist_gain_;
    hist_gain_ = 1;
  }
  return rarity;
}

AnomalyScore AnomalyDetector::Update(int64_t ts_ms, double value) {
  if (has_ts_ && ts_ms > last_ts_ms_) {
    const double d =
        static_cast<double>(static_cast<uint64_t>(ts_ms) - static_cast<uint64_t>(last_ts_ms_));
    dt_ms_ =
        static_cast<float>(dt_ms_ == 0 ? d : dt_ms_ + 0.05 * (std::min(d, 4.0 * dt_ms_) - dt_ms_));
  }
  last_ts_ms_ = ts_ms;
  has_ts_ = true;
  if (count_ == 0) origin_ = value;

  AnomalyScore score;
  if (count_ >= kMinBaseline) {
    if (since_refresh_ >= kRefresh) {
      Refresh();
      since_refresh_ = 0;
    }
    ++since_refresh_;
    const float x = Relative(value);
    double dev = x / scale_;
    if (dt_ms_ > 0) dev = Seasonal(ts_ms, x, dev);
    const double s = std::abs(dev);
    score.deviation = std::isfinite(s) ? s : std::numeric_limits<double>::max();
    score.rarity = RarityThenLearn(Bin(score.deviation));
    if (scored_ < std::numeric_limits<uint32_t>::max()) ++scored_;
    score.ready = scored_ >= kWarmupScores;
  }

  ring_[head_] = Relative(value);
  head_ = static_cast<uint16_t>((head_ + 1) % kRing);
  if (count_ < kRing) ++count_;
  return score;
}

}  // namespace edge::rules
