#pragma once

// Exponential backoff with full jitter: after the n-th consecutive failure the delay is
// uniform in [0, min(max, initial * 2^n)]. Full jitter spreads a fleet's retries so that a
// console coming back is not hit by every node at once. Not thread-safe; one per retry loop.

#include <algorithm>
#include <cstdint>
#include <random>

namespace edge {

class Backoff {
 public:
  Backoff(int64_t initial_ms, int64_t max_ms, uint64_t seed = std::random_device{}())
      : initial_ms_(std::max<int64_t>(1, initial_ms)),
        max_ms_(std::max(max_ms, std::max<int64_t>(1, initial_ms))),
        rng_(seed) {}

  // Delay before the next attempt, in ms; advances the failure count.
  int64_t Next() {
    const int64_t ceiling = Ceiling();
    if (failures_ < 62) ++failures_;
    std::uniform_int_distribution<int64_t> dist(0, ceiling);
    return dist(rng_);
  }

  // Upper bound of the next delay (without jitter).
  int64_t Ceiling() const {
    int64_t c = initial_ms_;
    for (int i = 0; i < failures_ && c < max_ms_; ++i) c *= 2;
    return std::min(c, max_ms_);
  }

  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  int failures_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace edge
