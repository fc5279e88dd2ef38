#pragma once

// The connection layer's first step: one byte stream to the console, plain TCP for an
// http:// URL or TLS over TCP for https:// (peer chain and host name verified, SNI for
// host names). Used by the HTTP client (http_connection.h) and the WebSocket client
// (websocket_connection.h); private to cloud-sync/src.
//
// Timeouts: Connect() bounds resolve, TCP connect and TLS handshake together by one
// deadline. The system resolver cannot be interrupted, so a hung lookup costs a late
// callback, never a stuck coroutine.
//
// Threading: one coroutine at a time on the stream's executor; Close() may be called from
// another coroutine or handler on the same executor to abort what is in flight.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "client_common.h"
#include "edge/cloudsync/console_url.h"
#include "edge/cloudsync/tls_context.h"

namespace edge::cloudsync::internal {

using TcpStream = boost::beast::tcp_stream;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

class ConsoleStream {
 public:
  // `tls` (not owned, may be null) must outlive the stream; null makes https fail. Each
  // https Connect() takes its current context (renewed files take effect at the next one).
  ConsoleStream(boost::asio::any_io_executor ex, TlsContextSource* tls)
      : ex_(std::move(ex)), tls_source_(tls) {}

  // Drops any previous stream, then resolves, connects and, for https, completes the TLS
  // handshake, all before `deadline`. Returns "" or an error text for the log; on error
  // the stream is left closed. An abort by Close() during the lookup also ends it.
  boost::asio::awaitable<std::string> Connect(const ConsoleUrl& url, SteadyTime deadline);

  bool IsOpen() const;
  bool IsTls() const { return tls_.has_value(); }

  // Aborts whatever is in flight (its completion reports an error) and closes the socket.
  // TLS sessions are not shut down politely: the console must cope with that anyway.
  void Close();

  // Close(), then forgets the stream.
  void Reset();

  // The open stream, TCP or TLS; only while IsOpen() or right after Connect() succeeded.
  TcpStream& Tcp() { return *tcp_; }
  TlsStream& Tls() { return *tls_; }
  // The TCP layer, for timeouts; null before Connect().
  TcpStream* Lowest();

  // Moves the open stream out (for a WebSocket, which owns its next layer); leaves this
  // object empty.
  std::optional<TcpStream> TakeTcp() { return std::exchange(tcp_, std::nullopt); }
  std::optional<TlsStream> TakeTls() { return std::exchange(tls_, std::nullopt); }

 private:
  boost::asio::awaitable<std::string> Resolve(
      const ConsoleUrl& url, SteadyTime deadline,
      std::optional<boost::asio::ip::tcp::resolver::results_type>& out);

  boost::asio::any_io_executor ex_;
  TlsContextSource* tls_source_;                             // not owned; null for http
  std::shared_ptr<boost::asio::ssl::context> tls_context_;   // of the last https Connect()
  std::optional<TcpStream> tcp_;                             // http
  std::optional<TlsStream> tls_;                             // https
  std::shared_ptr<boost::asio::steady_timer> resolve_wake_;  // set while a lookup runs
  bool aborted_ = false;                                     // Close() was called during Connect()
};

// Shuts the socket under `stream` down and closes it, ignoring errors: whatever is in
// flight on it completes with an error.
void CloseSocket(TcpStream& stream);

}  // namespace edge::cloudsync::internal
