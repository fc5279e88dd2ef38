#pragma once

// The console URL option, scheme://host[:port][/base], as the uplink uses it: a view of
// edge::Url (edge/common/url.h) for http and https. Pure.

#include <cstdint>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::cloudsync {

struct ConsoleUrl {
  bool tls = false;  // https
  std::string host;  // without brackets for IPv6 literals
  uint16_t port = 0;
  std::string base_path;  // "" or "/base" (no trailing slash)

  // Request target for an API path such as "/v1/batches".
  std::string Target(std::string_view path) const { return base_path + std::string(path); }
  // Value of the Host header: host, bracketed if IPv6, with ":port" unless it is the default.
  std::string HostHeader() const;
};

// Accepts http and https (case-insensitive), a host name, IPv4 or bracketed IPv6 literal, an
// optional port 1..65535 and an optional path. Rejects user info, query, fragment,
// whitespace and control characters.
Result<ConsoleUrl> ParseConsoleUrl(std::string_view url);

}  // namespace edge::cloudsync
