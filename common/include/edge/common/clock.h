#pragma once

// Injected time. Monotonic time for intervals, timeouts and windows; wall time only for
// timestamps. Tests use FakeClock; production uses SystemClock. Both are thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace edge {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall clock; may jump).
  virtual int64_t WallMs() const = 0;
  // Monotonic milliseconds from an arbitrary origin (never goes back).
  virtual int64_t MonotonicMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t WallMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// Manually advanced clock for tests. Both readings advance together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_ms = 1'700'000'000'000, int64_t mono_ms = 1'000)
      : wall_(wall_ms), mono_(mono_ms) {}
  int64_t WallMs() const override { return wall_.load(); }
  int64_t MonotonicMs() const override { return mono_.load(); }
  void Advance(int64_t ms) {
    wall_ += ms;
    mono_ += ms;
  }
  void SetWallMs(int64_t ms) { wall_ = ms; }

 private:
  std::atomic<int64_t> wall_;
  std::atomic<int64_t> mono_;
};

}  // namespace edge
