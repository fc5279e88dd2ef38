#pragma once

// What the uplink and the policy channel share as clients of the console: the bearer token
// file, the console URL, log excerpts of untrusted replies, the end of a loop (exceptions,
// stop callbacks), deadline arithmetic and the completion token. Private to cloud-sync/src.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/cloudsync/console_url.h"
#include "edge/cloudsync/tls_context.h"
#include "edge/common/status.h"

namespace edge::cloudsync::internal {

// The token file's rules (docs/protocol.md, "Authentication"): at most 64 KiB, surrounding
// whitespace trimmed, not empty, one line without control characters.
Result<std::string> ReadTokenFile(const std::string& path);

// The console URL parsed and, for https, a TLS context made once from `tls` (so that a
// missing or mismatched file is an error at start, not at the first connection).
Result<ConsoleUrl> CheckConsoleLink(const std::string& console_url, const TlsFiles& tls);

// The console URL, or nullopt after logging why it does not parse ("<who>: <error>").
std::optional<ConsoleUrl> ParseUrlOrLog(const std::string& text, std::string_view who);

// Logs "<who>: <what>: <exception text>" for the exception of a finished coroutine.
void LogException(std::string_view who, std::string_view what, std::exception_ptr e);

// Printable excerpt (at most 200 bytes, "..." when cut) of an untrusted reply for a log line.
std::string Snippet(std::string_view body);

// Runs and clears `callbacks` (a stopped loop's completion callbacks); one that throws is
// logged as "<who>: stop callback threw: ..." and the others still run.
void RunStopCallbacks(std::vector<std::function<void()>>& callbacks, std::string_view who);

using SteadyTime = std::chrono::steady_clock::time_point;

// Completion token of every awaited operation in cloud-sync: errors come back as values.
inline constexpr auto kUseTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

// Time left until `deadline`, never negative.
std::chrono::milliseconds Remaining(SteadyTime deadline);

}  // namespace edge::cloudsync::internal
