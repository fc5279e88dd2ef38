#pragma once

// What the uplink's batch loop (uplink.cc) and its status heartbeat (status_heartbeat.cc)
// share to POST to the console: the URL, the TLS context, the bearer token, compression
// (edge-zdict, gzip after a 415), one fresh retry of a kept-alive connection found closed,
// the bytes counter, the per-request deadline and the authorized flag. Private to
// cloud-sync/src.
//
// Threading: everything but Authorized() runs on the uplink's io_context thread.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bearer_token.h"
#include "client_common.h"
#include "console_transport.h"
#include "edge/cloudsync/console_url.h"
#include "edge/cloudsync/tls_context.h"
#include "edge/cloudsync/uplink.h"
#include "edge/common/clock.h"
#include "edge/common/metrics.h"

namespace edge::cloudsync::internal {

class UplinkClient {
 public:
  // `options` must outlive the client; `bytes` counts request body bytes written.
  UplinkClient(const UplinkOptions& options, Clock& clock, CounterHandle& bytes);

  // Null when the console URL does not parse (logged once here): every request fails.
  const ConsoleUrl* url() const { return url_ ? &*url_ : nullptr; }

  // A connection of its own for one loop (batches, heartbeats).
  std::unique_ptr<ConsoleTransport> NewConnection(boost::asio::any_io_executor ex);

  // Compresses `body` in place when compression is on, the body is at least 256 bytes and
  // compressing makes it smaller. Returns the Content-Encoding: `edge-zdict` (the wire
  // dictionary) unless the console refused it, then gzip; "" for a body sent as it is.
  std::string_view MaybeCompress(std::string& body) const;

  // POSTs `body` to `target` on `conn` with the token, re-read first when older than a
  // minute. A 401 marks the client unauthorized, is logged (naming the request as
  // `request_kind`, e.g. " for a status report", "" for a batch) and forces a re-read of the
  // token file; callers count it in their own metric. A kept-alive connection
  // the console closed while idle is retried once, fresh. A console that answers 415 to
  // `edge-zdict` (one that predates it) gets the body again as gzip, and gzip from then
  // on; `body` is left as last sent. Requires url().
  boost::asio::awaitable<HttpReply> Post(ConsoleTransport& conn, const std::string& target,
                                         std::string& body, std::string_view encoding,
                                         SteadyTime deadline, std::string_view request_kind);

  // Now plus timeout_ms; after LimitDeadlines() never past that time.
  SteadyTime RequestDeadline() const;
  void LimitDeadlines(SteadyTime stop_deadline) { stop_deadline_ = stop_deadline; }

  // Records whether the console accepted the token; logs when it does again.
  void MarkAuthorized(bool value);
  bool Authorized() const { return authorized_.load(); }  // thread-safe

 private:
  const UplinkOptions& options_;
  std::optional<ConsoleUrl> url_;
  TlsContextSource tls_;  // the TLS context of https connections
  BearerToken token_;
  CounterHandle& bytes_;
  std::optional<SteadyTime> stop_deadline_;
  std::atomic<bool> authorized_{true};
  std::atomic<bool> dict_refused_{false};  // the console answered 415 to edge-zdict
};

}  // namespace edge::cloudsync::internal
