#pragma once

// Private to tools/console/src: the Beast server behind CreateServer (server.h), one class
// whose members are defined in three files, one job each:
//   http_server.cc  - listening, connection admission (the request pool, per-address limit),
//                     refusal logging, shutdown, ParseListenAddress, CreateServer;
//   http_session.cc - one HTTP connection: requests read under the header/body limits and
//                     timeouts, the framing guard, the auth throttle, replies;
//   ws_channel.cc   - the WebSocket policy channel: upgrade, the channel pool, reader and
//                     writer, the tick.
// One io_context, run by the thread that calls Run(); every member is touched only on that
// thread except where noted. Beast and Asio stay inside tools/console/src.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "edge/console/server.h"

namespace edge::console::internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

inline constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

inline int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// At most one line per reason per second; the next line says how many were left out.
class RefusalLog {
 public:
  explicit RefusalLog(Log& log) : log_(log) {}

  void Write(std::string_view reason, std::string_view message, LogFields fields);

 private:
  struct State {
    int64_t last_ms = 0;
    int64_t suppressed = 0;
  };
  Log& log_;
  std::map<std::string, State> states_;  // one per reason: a handful
};

// One open WebSocket channel. Its reader runs in the connection's coroutine, its writer in
// a coroutine of its own; both hold it by shared_ptr. Defined in ws_channel.cc.
class WsChannel final : public ChannelPeer {
 public:
  WsChannel(beast::tcp_stream&& stream, asio::io_context& ioc, const ServerOptions& options);

  void Send(std::string message) override;
  void Close(uint16_t code, std::string reason) override;
  // Ends the connection at once; pending operations complete with errors.
  void Drop();

  websocket::stream<beast::tcp_stream> ws;
  asio::steady_timer wake;  // the writer waits on it; Send and Close cancel it
  asio::steady_timer hello_timer;
  std::deque<std::string> queue;  // bounded by the channel_queue_* options
  size_t queued_bytes = 0;
  bool got_message = false;
  bool closing = false;  // a close frame is to be sent after the queue
  bool closed = false;   // the socket is closed or closing; nothing more is sent
  bool overflowed = false;
  bool opened = false;  // between ChannelHandler::OnOpen and OnClose
  websocket::close_reason close_reason;
  // Set while a write or close is in flight; the tick drops the channel past it.
  std::optional<std::chrono::steady_clock::time_point> write_deadline;

 private:
  const ServerOptions& options_;
};

class BeastServer final : public Server {
 public:
  BeastServer(const ServerOptions& options, RequestHandler& handler, Log& log,
              ChannelHandler* channels, ServerMetrics* metrics);

  Status Bind();
  uint16_t port() const override { return port_; }
  void Run() override;
  // Thread-safe: only posts to the loop.
  void Stop() override;

 private:
  struct Connection {
    Connection(tcp::socket socket, std::string client_key)
        : stream(std::move(socket)), client(std::move(client_key)) {}
    beast::tcp_stream stream;
    std::string client;      // ClientKey of the peer's address
    bool via_proxy = false;  // the peer is one of ServerOptions::trusted_proxies
    // Counted in request_connections_ and per_address_ (until it becomes a channel).
    bool in_request_pool = true;
    // Set while waiting for the next request; lets shutdown tell idle connections from
    // ones that are part-way through receiving a request.
    bool idle = false;
    http::request_parser<http::string_body>* parser = nullptr;
    // Whether a channel of this connection holds its principal's place in by_principal_.
    bool in_channel_pool = false;
    std::string principal;
    // Set once the connection became a WebSocket channel; `stream` was moved into it and
    // must not be used any more.
    std::shared_ptr<WsChannel> channel;
  };

  // http_server.cc: admission, pools, shutdown.
  void LogFault(std::exception_ptr e, const char* where);
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Serve(std::shared_ptr<Connection> connection);
  void UpdateGauges();
  void LeaveRequestPool(Connection& c);
  void LeaveChannelPool(Connection& c);
  void BeginShutdown();

  // http_session.cc: the requests of one connection.
  void RecordAuthFailure(const std::string& who);
  asio::awaitable<void> ServeRequests(Connection& c);
  asio::awaitable<std::tuple<beast::error_code>> WriteResponse(Connection& c, HttpResponse out,
                                                               unsigned version, bool keep_alive);
  // Answers a request whose body is not going to be read, then closes the connection; with
  // `drain` the unread body is read and discarded for a moment first (see kDrainTime).
  asio::awaitable<void> WriteAndClose(Connection& c, HttpResponse out, unsigned version,
                                      bool drain);
  asio::awaitable<void> Drain(Connection& c);
  // Answers a request that could not be read completely, then closes the connection.
  asio::awaitable<void> WriteError(Connection& c, int status, const std::string& reason);

  // ws_channel.cc: the policy channel.
  // A WebSocket channel on an admitted upgrade request, until either side closes it.
  asio::awaitable<void> ServeChannel(Connection& c, http::request<http::string_body> request,
                                     std::string principal);
  // Sends queued messages in order, a ping every channel_ping_interval, and the close
  // frame last. Pings go through here so that only one write is ever in flight.
  asio::awaitable<void> WriteChannel(std::shared_ptr<WsChannel> ch);
  // Tells the handler the channel is gone, once.
  void CloseChannel(WsChannel& ch);
  // Calls the channel handler's tick and drops channels whose write is overdue.
  asio::awaitable<void> TickLoop();
  // Counts and logs a policy channel refused because the channel pool is full.
  void RefuseChannel(const Connection& c);

  const ServerOptions options_;
  RequestHandler& handler_;
  Log& log_;
  ChannelHandler* channels_;   // may be null: no WebSocket channels
  ServerMetrics own_metrics_;  // used when the caller gave none
  ServerMetrics& metrics_;
  RefusalLog refusal_log_;
  AuthThrottle throttle_;  // bounded by options_.auth_throttle.max_addresses
  size_t request_connections_ = 0;
  // Request connections per ClientKey; entries are erased at zero, so it holds at most
  // max_connections entries.
  std::map<std::string, size_t> per_address_;
  // The connection holding each principal's open channel (at most one); at most max_channels
  // entries, its size is the number of open channels. An entry is erased (LeaveChannelPool)
  // before its connection leaves connections_.
  std::map<std::string, Connection*> by_principal_;
  // Declared before everything that does I/O through it, so it is destroyed last.
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::steady_timer grace_timer_;
  asio::steady_timer tick_timer_;
  std::set<std::shared_ptr<Connection>> connections_;
  bool stopping_ = false;
  uint16_t port_ = 0;  // written by Bind() before any other thread can see the server
};

}  // namespace edge::console::internal
