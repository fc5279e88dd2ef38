#include "edge/cloudsync/backoff.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace edge::cloudsync {

Backoff::Backoff(int64_t initial_ms, int64_t max_ms, uint64_t seed)
    : initial_ms_(std::max<int64_t>(1, initial_ms)),
      max_ms_(std::max(initial_ms_, max_ms)),
      rng_(seed) {}

int64_t Backoff::CeilingMs(int attempt) const {
  int64_t ceiling = initial_ms_;
  // Doubling until the cap keeps this free of overflow for any attempt count.
  for (int i = 0; i < attempt && ceiling < max_ms_; ++i) {
    ceiling = ceiling > max_ms_ / 2 ? max_ms_ : ceiling * 2;
  }
  return std::min(ceiling, max_ms_);
}

int64_t Backoff::NextDelayMs() {
  std::uniform_int_distribution<int64_t> dist(0, CeilingMs(attempt_));
  const int64_t delay = dist(rng_);
  if (attempt_ < std::numeric_limits<int>::max()) ++attempt_;
  return delay;
}

int64_t Backoff::NextDelayMs(int64_t retry_after_ms) {
  const int64_t jittered = NextDelayMs();
  const int64_t server = std::clamp<int64_t>(retry_after_ms, 0, max_ms_);
  return std::max(jittered, server);
}

std::optional<int64_t> ParseRetryAfterMs(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  constexpr int64_t kSaturateSeconds = std::numeric_limits<int64_t>::max() / 1000 / 10;
  int64_t seconds = 0;
  for (char c : value) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    if (seconds < kSaturateSeconds) seconds = seconds * 10 + (c - '0');
  }
  return std::min(seconds, kSaturateSeconds) * 1000;
}

}  // namespace edge::cloudsync
