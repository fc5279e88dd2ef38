#pragma once

// Retry delays for the uplink: exponential backoff with full jitter
// (delay = uniform(0, min(max, initial * 2^attempt))). Pure and deterministic for a given
// seed. Not thread-safe: owned by the uplink loop.

#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace edge::cloudsync {

class Backoff {
 public:
  // initial_ms is raised to at least 1 and max_ms to at least initial_ms.
  Backoff(int64_t initial_ms, int64_t max_ms, uint64_t seed);

  // Upper bound of the delay for a given attempt number (0-based), saturating at max.
  int64_t CeilingMs(int attempt) const;

  // Delay before the next retry, uniform in [0, CeilingMs(attempt())]; then counts the
  // attempt.
  int64_t NextDelayMs();

  // As NextDelayMs(), but never shorter than the server's Retry-After, which itself is
  // capped at max.
  int64_t NextDelayMs(int64_t retry_after_ms);

  // After a success: the next delay starts from the initial ceiling again.
  void Reset() { attempt_ = 0; }

  int attempt() const { return attempt_; }
  int64_t initial_ms() const { return initial_ms_; }
  int64_t max_ms() const { return max_ms_; }

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

// Parses a Retry-After header given in delta-seconds ("120") into milliseconds. HTTP-date
// values, negative or malformed input give nullopt. Huge values saturate (callers cap).
std::optional<int64_t> ParseRetryAfterMs(std::string_view value);

}  // namespace edge::cloudsync
