#include "edge/console/auth_throttle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "edge/common/strings.h"

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

namespace {

// Fills `out` (4 or 16 bytes) from an address literal; IPv4-mapped IPv6 becomes IPv4.
bool ParseAddress(const std::string& text, bool* v6, unsigned char* out) {
  if (inet_pton(AF_INET, text.c_str(), out) == 1) {
    *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out) != 1) return false;
  const bool mapped = std::all_of(out, out + 10, [](unsigned char b) { return b == 0; }) &&
                      out[10] == 0xff && out[11] == 0xff;
  if (mapped) {
    std::copy(out + 12, out + 16, out);
    *v6 = false;
    return true;
  }
  *v6 = true;
  return true;
}

}  // namespace

std::optional<IpRange> ParseIpRange(std::string_view text) {
  IpRange range;
  const size_t slash = text.find('/');
  if (!ParseAddress(std::string(text.substr(0, slash)), &range.v6, range.bytes)) {
    return std::nullopt;
  }
  const unsigned max_prefix = range.v6 ? 128 : 32;
  range.prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    unsigned prefix = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + static_cast<unsigned>(c - '0');
    }
    if (prefix > max_prefix) return std::nullopt;
    range.prefix = prefix;
  }
  return range;
}

bool InRange(const IpRange& range, std::string_view address) {
  bool v6 = false;
  unsigned char bytes[16] = {};
  if (!ParseAddress(std::string(address), &v6, bytes) || v6 != range.v6) return false;
  unsigned bits = range.prefix;
  for (size_t i = 0; bits > 0; ++i) {
    const unsigned take = std::min(bits, 8u);
    const auto mask = static_cast<unsigned char>(0xff << (8 - take));
    if ((bytes[i] & mask) != (range.bytes[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

std::optional<std::string> ForwardedClientKey(std::string_view x_forwarded_for) {
  const std::string_view last = TrimBlanks(x_forwarded_for.substr(x_forwarded_for.rfind(',') + 1));
  if (last.empty() || last.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string text(last);
  std::array<unsigned char, 16> scratch{};
  if (inet_pton(AF_INET, text.c_str(), scratch.data()) != 1 &&
      inet_pton(AF_INET6, text.c_str(), scratch.data()) != 1) {
    return std::nullopt;
  }
  return ClientKey(text);
}

}  // namespace edge::console
