#pragma once

// What the delivery loops see of the connection layer for requests: a transport that
// POSTs one request at a time to the console and returns its reply. The loops hold it by
// this interface, so a new transport is one new file implementing it (HTTP/1.1 over TCP or
// TLS: http_connection.h). No Beast or OpenSSL here. Private to cloud-sync/src.

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>

#include "client_common.h"
#include "edge/cloudsync/console_url.h"

namespace edge::cloudsync::internal {

struct HttpRequest {
  std::string target;         // path and query, e.g. url.Target("/v1/batches")
  std::string authorization;  // the Authorization header; "" for none
  std::string_view body;      // sent as application/json
  std::string_view encoding;  // Content-Encoding; "" for none
  bool keep_alive = true;
};

struct HttpReply {
  bool transport_ok = false;
  std::string error;              // when !transport_ok
  bool stale_connection = false;  // a reused keep-alive connection was found closed
  bool wrote_request = false;
  unsigned status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, "" when absent
};

// Threading: one request at a time, on the io_context the transport was built for;
// Close() may be called from other handlers there to abort the request in flight.
class ConsoleTransport {
 public:
  virtual ~ConsoleTransport() = default;

  // POSTs `request` to the console at `url`, every step bounded by `deadline`. Never
  // throws for network conditions: every failure is in the reply, and the connection is
  // then dropped (the next request opens a new one).
  virtual boost::asio::awaitable<HttpReply> Post(const ConsoleUrl& url, const HttpRequest& request,
                                                 SteadyTime deadline) = 0;

  // Aborts the request in flight (its reply reports the error) and closes the connection.
  virtual void Close() = 0;
};

}  // namespace edge::cloudsync::internal
