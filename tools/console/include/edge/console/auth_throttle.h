#pragma once

// Failed-authentication throttling per client address (docs/operations.md, "Security").
// After `max_failures` failed authentications from one address within `window`, requests
// from that address that need a token are refused (429) until the window that began with
// the first of those failures has passed. Pure logic: the caller passes the monotonic time.
//
// Memory is bounded: at most `max_addresses` addresses are tracked; when the table is full
// the entry whose window started first is forgotten to make room. Not thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace edge::console {

struct AuthThrottleOptions {
  size_t max_failures = 10;  // 0: no throttling
  std::chrono::milliseconds window{60'000};
  size_t max_addresses = 4096;
};

class AuthThrottle {
 public:
  explicit AuthThrottle(AuthThrottleOptions options) : options_(options) {}

  // Milliseconds until `address` may try again; 0 if it is not throttled now.
  int64_t BlockedForMs(std::string_view address, int64_t now_ms);
  // Records one failed authentication from `address`.
  void RecordFailure(std::string_view address, int64_t now_ms);
  size_t tracked() const { return entries_.size(); }

 private:
  struct Entry {
    int64_t window_start_ms = 0;
    size_t failures = 0;
  };
  void MakeRoom(int64_t now_ms);

  AuthThrottleOptions options_;
  std::unordered_map<std::string, Entry> entries_;  // at most options_.max_addresses
};

// The key a client address is counted under for per-address limits: the address itself for
// IPv4 (and IPv4-mapped IPv6), the /64 prefix for IPv6, since one host usually holds a
// whole /64. `address` is a literal as printed by the socket layer.
std::string ClientKey(std::string_view address);

// An IPv4 or IPv6 network, "10.42.0.0/16", "fd00::/8", or one address ("10.0.0.5").
struct IpRange {
  bool v6 = false;
  unsigned char bytes[16] = {};
  unsigned prefix = 0;  // bits
};
std::optional<IpRange> ParseIpRange(std::string_view text);
// Whether the address literal `address` (IPv4-mapped IPv6 counts as IPv4) is in `range`.
bool InRange(const IpRange& range, std::string_view address);

// The ClientKey of the client a trusted reverse proxy forwarded for: the last entry of an
// X-Forwarded-For value (the one the proxy itself appended), if it is an IP literal;
// nullopt otherwise.
std::optional<std::string> ForwardedClientKey(std::string_view x_forwarded_for);

}  // namespace edge::console
