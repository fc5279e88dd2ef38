#pragma once

// Waiting on a condition another thread (or process) brings about, for the unit tests of
// every module: a test waits for what it needs, not for a guessed number of milliseconds.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <source_location>
#include <string_view>
#include <thread>

namespace edge::testutil {

// Polls `done` until it returns true or `timeout` passes; returns whether it held (it is
// asked once more at the deadline). Between polls it yields, then, after the first few,
// sleeps 1 ms so that a long wait leaves the cores to the threads it waits for. Silent on a
// timeout: for a wait whose timeout is an expected outcome (something that must not happen).
inline bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int polls = 0; std::chrono::steady_clock::now() < deadline; ++polls) {
    if (done()) return true;
    if (polls < 100) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return done();
}

// As PollUntil, and a timeout fails the test (non-fatally) with a message naming `what` and
// the caller's line. Returns whether `done` held, for a caller that cannot go on without it.
inline bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                    std::string_view what,
                    std::source_location where = std::source_location::current()) {
  if (PollUntil(done, timeout)) return true;
  ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line()))
      << "timed out after " << timeout.count() << " ms waiting for " << what;
  return false;
}

}  // namespace edge::testutil
