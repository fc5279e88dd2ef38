#pragma once

// The project's one URL type: scheme://host[:port][/path] for a network endpoint (the MQTT
// broker, the console). Parsing is Boost.URL's RFC 3986 grammar plus the project's stricter
// rules below. Pure.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge {

// A scheme a caller accepts and its default port.
struct UrlScheme {
  std::string_view name;  // lower case, without "://"
  uint16_t default_port;
};

struct Url {
  std::string scheme;         // one of the accepted schemes, lower case
  std::string host;           // a name, an IPv4 address or an IPv6 address without brackets
  uint16_t port = 0;          // the port written, or the scheme's default
  bool port_written = false;  // the URL named a port
  std::string path;           // "" or "/..." as written

  bool IsIpv6() const { return host.find(':') != std::string::npos; }
  // The host, bracketed if it is an IPv6 address: what goes before ":port".
  std::string BracketedHost() const;
  // BracketedHost() + ":" + port.
  std::string HostPort() const;
};

// The part of a URL that ParseUrl refused, for callers that word their own error.
enum class UrlPart {
  kNone,    // parsed
  kText,    // whitespace or control characters, or not a URL at all
  kScheme,  // no scheme, or one the caller does not accept
  kUserInfo,
  kQuery,  // a query or a fragment
  kHost,
  kPort,  // empty, not a number, or out of range
  kPath,  // junk after the host or port
};

// Parses `text` as scheme://host[:port][/path] with one of `schemes` (case-insensitive).
// The host is a name of [A-Za-z0-9._-], an IPv4 address or a bracketed IPv6 address; the port
// is 1..65535 (0 only when `allow_port_zero`). Rejects whitespace and control characters, user
// info, a query and a fragment. Errors (kInvalidArgument) read "<what> has no host",
// "<what>: bad port '123456'" and so on, `what` naming the URL for the reader ("console URL");
// `refused` (optional) receives the part at fault (kNone on success).
Result<Url> ParseUrl(std::string_view text, std::span<const UrlScheme> schemes,
                     std::string_view what, bool allow_port_zero = false,
                     UrlPart* refused = nullptr);

}  // namespace edge
