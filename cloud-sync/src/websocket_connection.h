#pragma once

// The connection layer's WebSocket client: dials the console on a ConsoleStream, performs
// the upgrade and then carries text messages. Private to cloud-sync/src; the Beast
// WebSocket headers stay in its .cc.
//
// Timeouts: Open() bounds resolve, connect, TLS and the upgrade by one deadline. Reads
// and writes wait as long as the session lasts: the caller bounds them by closing the
// connection (its idle and write deadlines are protocol policy, not transport).
//
// Untrusted input: a message larger than max_message_bytes fails the read.
//
// Threading: one reader and one writer coroutine at most, on the executor it was built
// with; Close() may be called from any handler on that executor.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "console_stream.h"
#include "edge/cloudsync/console_url.h"

namespace edge::cloudsync::internal {

struct WebSocketOpenOptions {
  std::string target;         // e.g. url.Target("/v1/policy/channel")
  std::string authorization;  // the Authorization header of the upgrade; "" for none
  size_t max_message_bytes = 0;
  // Called for every ping, pong and close frame received (liveness).
  std::function<void()> on_control;
};

struct WebSocketOpenResult {
  enum class Kind {
    kOpen,      // upgraded; Read() and WriteText() may follow
    kFailed,    // transport error or timeout: `error` says where, for the log
    kDeclined,  // the console answered the upgrade with another HTTP status
  };
  Kind kind = Kind::kFailed;
  std::string error;
  unsigned status = 0;  // kDeclined: the HTTP status and body of the answer
  std::string body;
};

struct WebSocketMessage {
  bool ok = false;
  bool closed = false;  // !ok: the console closed the channel (close_code, close_reason)
  int close_code = 0;
  std::string close_reason;
  std::string error;  // !ok && !closed
  bool text = false;  // ok: a text message (else binary)
  std::string data;
};

class WebSocketConnection {
 public:
  // `tls`: see ConsoleStream.
  WebSocketConnection(boost::asio::any_io_executor ex, TlsContextSource* tls);
  ~WebSocketConnection();
  WebSocketConnection(const WebSocketConnection&) = delete;
  WebSocketConnection& operator=(const WebSocketConnection&) = delete;

  // Connects and upgrades before `deadline`. On kFailed or kDeclined the connection is
  // closed.
  boost::asio::awaitable<WebSocketOpenResult> Open(const ConsoleUrl& url,
                                                   const WebSocketOpenOptions& options,
                                                   SteadyTime deadline);

  // The next message, whole.
  boost::asio::awaitable<WebSocketMessage> Read();

  // Sends one text message. Returns "" or the error text.
  boost::asio::awaitable<std::string> WriteText(std::string text);

  // Aborts whatever is in flight (its completion reports an error) and closes the socket.
  void Close();

 private:
  struct Session;  // the upgraded stream, plain or TLS

  ConsoleStream stream_;
  std::unique_ptr<Session> session_;
};

}  // namespace edge::cloudsync::internal
