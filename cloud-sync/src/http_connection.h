#pragma once

// The connection layer's HTTP/1.1 transport (Beast): one request at a time on a
// ConsoleStream, kept alive between requests when both sides agree, reopened on demand.
// Private to cloud-sync/src.
//
// Timeouts: every step of a request (connect when needed, write, read) is bounded by the
// request's deadline. Replies are untrusted: a body larger than the limit given at
// construction fails the read.
//
// Threading: used by one coroutine at a time on the executor it was built with; Close()
// may be called from other handlers on that executor to abort the request in flight.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>

#include "console_stream.h"
#include "console_transport.h"
#include "edge/cloudsync/console_url.h"

namespace edge::cloudsync::internal {

class HttpConnection final : public ConsoleTransport {
 public:
  // `tls`: see ConsoleStream. `max_reply_body_bytes` bounds every reply body.
  HttpConnection(boost::asio::any_io_executor ex, TlsContextSource* tls,
                 size_t max_reply_body_bytes)
      : stream_(std::move(ex), tls), max_reply_body_bytes_(max_reply_body_bytes) {}

  // POSTs `request` to the console at `url`, reusing the open connection if there is one.
  // Never throws for network conditions: every failure is in the reply. The connection
  // is dropped after any error and when either side does not keep it alive.
  boost::asio::awaitable<HttpReply> Post(const ConsoleUrl& url, const HttpRequest& request,
                                         SteadyTime deadline) override;

  // Aborts the request in flight (its reply reports the error) and closes the socket.
  void Close() override { stream_.Close(); }

 private:
  template <typename Stream>
  boost::asio::awaitable<void> Exchange(Stream& stream, const ConsoleUrl& url,
                                        const HttpRequest& request, bool reused,
                                        SteadyTime deadline, HttpReply& reply);
  void Drop();

  ConsoleStream stream_;
  size_t max_reply_body_bytes_;
  boost::beast::flat_buffer buffer_;  // bytes read past a reply on a kept-alive connection
};

}  // namespace edge::cloudsync::internal
