#pragma once

// What the uplink (uplink.cc) and the policy channel (policy_channel.cc) share as clients
// of the console: the bearer token file, the TLS client context, log excerpts of untrusted
// replies and deadline arithmetic. Private to cloud-sync/src.

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::cloudsync::internal {

// The token file's rules (docs/protocol.md, "Authentication"): at most 64 KiB, surrounding
// whitespace trimmed, not empty, one line without control characters.
Result<std::string> ReadTokenFile(const std::string& path);

// Client TLS context for https consoles: peer verification against ca_file, or against the
// system trust store when ca_file is empty; TLS 1.2 or newer.
Result<std::unique_ptr<boost::asio::ssl::context>> MakeTlsContext(const std::string& ca_file);

// Printable excerpt (at most 200 bytes, "..." when cut) of an untrusted reply for a log line.
std::string Snippet(std::string_view body);

// Time left until `deadline`, never negative.
std::chrono::milliseconds Remaining(std::chrono::steady_clock::time_point deadline);

}  // namespace edge::cloudsync::internal
