#pragma once

// Counters the HTTP server keeps about connections it refused or closed early and about
// failed authentication, for GET /metrics (docs/metrics.md). The server writes them and
// ConsoleApi renders them, both on the server's event-loop thread: not thread-safe.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace edge::console {

// Reasons of edge_console_connections_refused_total.
inline constexpr std::string_view kRefusedSlotsFull = "slots_full";
inline constexpr std::string_view kRefusedPerAddress = "per_address";
inline constexpr std::string_view kRefusedHeaderTimeout = "header_timeout";
inline constexpr std::string_view kRefusedChannelsFull = "channels_full";
// Reasons of edge_console_requests_refused_total.
inline constexpr std::string_view kRequestBadFraming = "bad_framing";
inline constexpr std::string_view kRequestUnauthenticated = "unauthenticated";
inline constexpr std::string_view kRequestThrottled = "auth_throttled";

class ServerMetrics {
 public:
  // A connection closed at accept or before it sent complete headers, by reason above.
  void ConnectionRefused(std::string_view reason) { ++connections_refused_[std::string(reason)]; }
  // A request answered before its body was read (or refused for its framing).
  void RequestRefused(std::string_view reason) { ++requests_refused_[std::string(reason)]; }
  // A policy channel closed because a newer one of the same node opened.
  void ChannelReplaced() { ++channels_replaced_; }
  void SetOpen(int64_t request_connections, int64_t channels) {
    request_connections_ = request_connections;
    channels_ = channels;
  }

  // Prometheus text of every counter (zero values included).
  std::string Text() const;

 private:
  std::map<std::string, int64_t> connections_refused_;
  std::map<std::string, int64_t> requests_refused_;
  int64_t channels_replaced_ = 0;
  int64_t request_connections_ = 0;
  int64_t channels_ = 0;
};

}  // namespace edge::console
