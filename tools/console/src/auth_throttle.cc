#include "edge/console/auth_throttle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace edge::console {

int64_t AuthThrottle::BlockedForMs(std::string_view address, int64_t now_ms) {
  if (options_.max_failures == 0) return 0;
  const auto it = entries_.find(std::string(address));
  if (it == entries_.end()) return 0;
  const int64_t end = it->second.window_start_ms + options_.window.count();
  if (now_ms >= end) {
    entries_.erase(it);
    return 0;
  }
  return it->second.failures >= options_.max_failures ? end - now_ms : 0;
}

void AuthThrottle::RecordFailure(std::string_view address, int64_t now_ms) {
  if (options_.max_failures == 0) return;
  auto it = entries_.find(std::string(address));
  if (it != entries_.end() && now_ms >= it->second.window_start_ms + options_.window.count()) {
    entries_.erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    MakeRoom(now_ms);
    it = entries_.emplace(std::string(address), Entry{now_ms, 0}).first;
  }
  ++it->second.failures;
}

size_t AuthThrottle::ThrottledCount(int64_t now_ms) const {
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(), [&](const auto& e) {
    return e.second.failures >= options_.max_failures &&
           now_ms < e.second.window_start_ms + options_.window.count();
  }));
}

void AuthThrottle::MakeRoom(int64_t now_ms) {
  if (entries_.size() < std::max<size_t>(1, options_.max_addresses)) return;
  // Expired entries first; if none, the oldest window. O(n) only when the table is full.
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now_ms >= it->second.window_start_ms + options_.window.count()) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  while (entries_.size() >= std::max<size_t>(1, options_.max_addresses)) {
    const auto oldest =
        std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
          return a.second.window_start_ms < b.second.window_start_ms;
        });
    entries_.erase(oldest);
  }
}

std::string ClientKey(std::string_view address) {
  const std::string text(address);
  std::array<unsigned char, 16> v6{};
  if (inet_pton(AF_INET6, text.c_str(), v6.data()) != 1) return text;
  const bool mapped =
      std::all_of(v6.begin(), v6.begin() + 10, [](unsigned char b) { return b == 0; }) &&
      v6[10] == 0xff && v6[11] == 0xff;
  char out[INET6_ADDRSTRLEN] = {};
  if (mapped) {
    std::snprintf(out, sizeof(out), "%u.%u.%u.%u", v6[12], v6[13], v6[14], v6[15]);
    return out;
  }
  std::fill(v6.begin() + 8, v6.end(), 0);
  if (inet_ntop(AF_INET6, v6.data(), out, sizeof(out)) == nullptr) return text;
  return std::string(out) + "/64";
}

}  // namespace edge::console
