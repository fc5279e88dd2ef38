// Beast adapter for the console's server side (HTTP and the WebSocket policy channel). One
// io_context, run by the thread that calls Run(); every member below is touched only on
// that thread except where noted.

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <csignal>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "edge/console/server.h"

namespace edge::console {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// After a 413/431/400 the peer may still be sending; reading (and discarding) for a moment
// lets it see our reply instead of a connection reset.
constexpr std::chrono::milliseconds kDrainTime{1000};
constexpr size_t kMaxDrainBytes = 8 * 1024 * 1024;

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Refusal {
  int status;
  const char* reason;
};

// Request smuggling guard (RFC 9112 6.1, 6.3): the only transfer coding accepted is a single
// `chunked`, and never together with Content-Length. Beast alone reads some of these by the
// length.
template <class Fields>
std::optional<Refusal> CheckFraming(const http::header<true, Fields>& head) {
  size_t te_fields = 0;
  std::string_view te;
  for (const auto& field : head) {
    if (field.name() == http::field::transfer_encoding) {
      ++te_fields;
      te = field.value();
    }
  }
  if (te_fields == 0) return std::nullopt;
  if (head.count(http::field::content_length) > 0) {
    return Refusal{400, "Transfer-Encoding together with Content-Length"};
  }
  if (te_fields > 1 || !beast::iequals(TrimOws(te), "chunked")) {
    return Refusal{501, "unsupported Transfer-Encoding (only a single 'chunked' is accepted)"};
  }
  return std::nullopt;
}

// Entries that do not parse are skipped (main checks them before the server starts).
std::vector<IpRange> TrustedProxyRanges(const std::vector<std::string>& texts) {
  std::vector<IpRange> ranges;
  for (const std::string& text : texts) {
    if (auto range = ParseIpRange(text)) ranges.push_back(*range);
  }
  return ranges;
}

// At most one line per reason per second; the next line says how many were left out.
class RefusalLog {
 public:
  explicit RefusalLog(Log& log) : log_(log) {}

  void Write(std::string_view reason, std::string_view message, LogFields fields) {
    State& state = states_[std::string(reason)];
    const int64_t now = SteadyMs();
    if (state.last_ms != 0 && now - state.last_ms < 1000) {
      ++state.suppressed;
      return;
    }
    fields.emplace_back("reason", std::string(reason));
    if (state.suppressed > 0) fields.emplace_back("suppressed", state.suppressed);
    log_.Write(LogLevel::kWarn, message, fields);
    state.last_ms = now;
    state.suppressed = 0;
  }

 private:
  struct State {
    int64_t last_ms = 0;
    int64_t suppressed = 0;
  };
  Log& log_;
  std::map<std::string, State> states_;  // one per reason: a handful
};

// One open WebSocket channel. Its reader runs in the connection's coroutine, its writer in
// a coroutine of its own; both hold it by shared_ptr.
class WsChannel final : public ChannelPeer {
 public:
  WsChannel(beast::tcp_stream&& stream, asio::io_context& ioc, const ServerOptions& options)
      : ws(std::move(stream)), wake(ioc), hello_timer(ioc), options_(options) {}

  void Send(std::string message) override {
    if (closing || closed) return;
    if (queue.size() >= options_.channel_queue_messages ||
        queued_bytes + message.size() > options_.channel_queue_bytes) {
      overflowed = true;
      Drop();
      return;
    }
    queued_bytes += message.size();
    queue.push_back(std::move(message));
    wake.cancel();
  }

  void Close(uint16_t code, std::string reason) override {
    if (closing || closed) return;
    closing = true;
    close_reason.code = code;
    // A close frame's reason has room for 123 bytes.
    const std::string_view text = std::string_view(reason).substr(0, 120);
    close_reason.reason.assign(text.data(), text.size());
    wake.cancel();
  }

  // Ends the connection at once; pending operations complete with errors.
  void Drop() {
    if (closed) return;
    closed = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws).close();
    wake.cancel();
    hello_timer.cancel();
  }

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
              ChannelHandler* channels, ServerMetrics* metrics)
      : options_(options),
        handler_(handler),
        log_(log),
        channels_(channels),
        metrics_(metrics != nullptr ? *metrics : own_metrics_),
        refusal_log_(log),
        throttle_(options.auth_throttle),
        trusted_proxies_(TrustedProxyRanges(options.trusted_proxies)),
        acceptor_(ioc_),
        signals_(ioc_),
        grace_timer_(ioc_),
        tick_timer_(ioc_) {}

  Status Bind() {
    beast::error_code ec;
    const auto address = asio::ip::make_address(options_.listen.host, ec);
    if (ec) return Status::Error("invalid listen address '" + options_.listen.host + "'");
    const tcp::endpoint endpoint(address, options_.listen.port);
    const auto fail = [&](const char* what) {
      return Status::Error(std::string("cannot ") + what + " " + options_.listen.host + ":" +
                           std::to_string(options_.listen.port) + ": " + ec.message());
    };
    if (acceptor_.open(endpoint.protocol(), ec)) return fail("open socket for");
    if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec)) return fail("configure");
    if (acceptor_.bind(endpoint, ec)) return fail("bind");
    if (acceptor_.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen on");
    port_ = acceptor_.local_endpoint(ec).port();
    if (ec) return fail("query the port of");
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  void Run() override {
    if (options_.handle_signals) {
      signals_.add(SIGINT);
      signals_.add(SIGTERM);
      signals_.async_wait([this](const beast::error_code& ec, int signal) {
        if (ec) return;
        log_.Write(LogLevel::kInfo, "signal received, shutting down",
                   {{"signal", int64_t{signal}}});
        BeginShutdown();
      });
    }
    asio::co_spawn(ioc_, AcceptLoop(), [this](std::exception_ptr e) { LogFault(e, "accept"); });
    if (channels_ != nullptr) {
      asio::co_spawn(ioc_, TickLoop(), [this](std::exception_ptr e) { LogFault(e, "tick"); });
    }
    // run() returns when the acceptor, signals, timers and every connection are done.
    for (;;) {
      try {
        ioc_.run();
        break;
      } catch (...) {
        LogFault(std::current_exception(), "event loop");
      }
    }
  }

  // Thread-safe: only posts to the loop.
  void Stop() override {
    asio::post(ioc_, [this] { BeginShutdown(); });
  }

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
    // Whether a channel of this connection holds a place in channels_open_ / by_principal_.
    bool in_channel_pool = false;
    std::string principal;
    // Set once the connection became a WebSocket channel; `stream` was moved into it and
    // must not be used any more.
    std::shared_ptr<WsChannel> channel;
  };

  void LogFault(std::exception_ptr e, const char* where) {
    if (!e) return;
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
      // `what` already says it was not a std::exception.
    }
    log_.Write(LogLevel::kError, "unexpected fault", {{"where", where}, {"error", what}});
  }

  asio::awaitable<void> AcceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (stopping_) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        refusal_log_.Write("accept_failed", "accept failed", {{"error", ec.message()}});
        // Out of descriptors or similar: back off instead of spinning.
        asio::steady_timer pause(ioc_, std::chrono::milliseconds(100));
        co_await pause.async_wait(kUseTuple);
        continue;
      }
      beast::error_code endpoint_ec;
      const tcp::endpoint peer = socket.remote_endpoint(endpoint_ec);
      if (endpoint_ec) continue;  // already gone
      const std::string peer_address = peer.address().to_string();
      std::string client = ClientKey(peer_address);
      const bool via_proxy =
          std::any_of(trusted_proxies_.begin(), trusted_proxies_.end(),
                      [&](const IpRange& range) { return InRange(range, peer_address); });
      const auto held = per_address_.find(client);
      const size_t from_client = held == per_address_.end() ? 0 : held->second;
      std::string_view refused;
      int64_t limit = 0;
      if (request_connections_ >= options_.max_connections) {
        refused = kRefusedSlotsFull;
        limit = static_cast<int64_t>(options_.max_connections);
      } else if (from_client >= options_.max_connections_per_address && !via_proxy) {
        refused = kRefusedPerAddress;
        limit = static_cast<int64_t>(options_.max_connections_per_address);
      }
      if (!refused.empty()) {
        metrics_.ConnectionRefused(refused);
        refusal_log_.Write(refused, "connection refused", {{"client", client}, {"limit", limit}});
        beast::error_code ignored;
        socket.close(ignored);
        continue;
      }
      ++request_connections_;
      ++per_address_[client];
      UpdateGauges();
      auto connection = std::make_shared<Connection>(std::move(socket), std::move(client));
      connection->via_proxy = via_proxy;
      connections_.insert(connection);
      asio::co_spawn(ioc_, Serve(connection),
                     [this](std::exception_ptr e) { LogFault(e, "connection"); });
    }
  }

  asio::awaitable<void> Serve(std::shared_ptr<Connection> connection) {
    try {
      co_await ServeRequests(*connection);
    } catch (...) {
      LogFault(std::current_exception(), "connection");
    }
    if (connection->channel) {
      connection->channel->Drop();
      // Also when ServeChannel ended by an exception: the handler must forget the peer.
      CloseChannel(*connection->channel);
      LeaveChannelPool(*connection);
    } else {
      beast::error_code ignored;
      connection->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      connection->stream.close();
    }
    LeaveRequestPool(*connection);
    connections_.erase(connection);
    if (stopping_ && connections_.empty()) grace_timer_.cancel();
  }

  void UpdateGauges() {
    metrics_.SetOpen(static_cast<int64_t>(request_connections_),
                     static_cast<int64_t>(channels_open_));
  }

  void LeaveRequestPool(Connection& c) {
    if (!c.in_request_pool) return;
    c.in_request_pool = false;
    --request_connections_;
    if (const auto it = per_address_.find(c.client); it != per_address_.end()) {
      if (--it->second == 0) per_address_.erase(it);
    }
    UpdateGauges();
  }

  void LeaveChannelPool(Connection& c) {
    if (!c.in_channel_pool) return;
    c.in_channel_pool = false;
    --channels_open_;
    if (const auto it = by_principal_.find(c.principal);
        it != by_principal_.end() && it->second == c.channel) {
      by_principal_.erase(it);
    }
    UpdateGauges();
  }

  // Tells the handler the channel is gone, once.
  void CloseChannel(WsChannel& ch) {
    if (!ch.opened) return;
    ch.opened = false;
    try {
      channels_->OnClose(ch);
    } catch (...) {
      LogFault(std::current_exception(), "channel close");
    }
  }

  void RecordAuthFailure(const std::string& who) {
    metrics_.RequestRefused(kRequestUnauthenticated);
    throttle_.RecordFailure(who, SteadyMs());
  }

  HttpRequest HeadOf(const http::request<http::string_body>& request) {
    HttpRequest in;
    in.method = std::string(request.method_string());
    in.target = std::string(request.target());
    in.authorization = std::string(request[http::field::authorization]);
    in.content_encoding = std::string(request[http::field::content_encoding]);
    in.content_type = std::string(request[http::field::content_type]);
    return in;
  }

  asio::awaitable<void> ServeRequests(Connection& c) {
    beast::flat_buffer buffer;
    bool first = true;
    while (!stopping_) {
      if (!first && buffer.size() == 0) {
        // Between kept-alive requests: the next one must start within read_timeout; its
        // headers then get header_timeout like a new connection's.
        c.idle = true;
        c.stream.expires_after(options_.read_timeout);
        auto [idle_ec, n] = co_await c.stream.async_read_some(buffer.prepare(4096), kUseTuple);
        c.idle = false;
        if (idle_ec) co_return;
        buffer.commit(n);
      }
      first = false;
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
      parser.body_limit(options_.max_body_bytes);
      c.parser = &parser;
      c.stream.expires_after(options_.header_timeout);
      auto [ec, bytes] = co_await http::async_read_header(c.stream, buffer, parser, kUseTuple);
      if (ec) {
        c.parser = nullptr;
        if (ec == beast::error::timeout) {
          metrics_.ConnectionRefused(kRefusedHeaderTimeout);
          refusal_log_.Write(kRefusedHeaderTimeout,
                             "connection closed: no complete headers in time",
                             {{"client", c.client}});
          co_return;
        }
        // Resets, the peer closing and our own shutdown end the connection quietly.
        if (!IsHttpParseError(ec) || ec == http::error::end_of_stream) co_return;
        const int status = ec == http::error::body_limit     ? 413
                           : ec == http::error::header_limit ? 431
                                                             : 400;
        if (ec == http::error::bad_transfer_encoding || ec == http::error::bad_content_length) {
          metrics_.RequestRefused(kRequestBadFraming);
        }
        co_await WriteError(c, status, ec.message());
        co_return;
      }
      const http::request<http::string_body>& head = parser.get();
      if (const auto refusal = CheckFraming(head)) {
        c.parser = nullptr;
        metrics_.RequestRefused(kRequestBadFraming);
        refusal_log_.Write(kRequestBadFraming, "request refused",
                           {{"client", c.client}, {"error", refusal->reason}});
        co_await WriteError(c, refusal->status, refusal->reason);
        co_return;
      }
      HttpRequest in = HeadOf(head);
      std::string who = c.client;  // the throttle's key for this request
      if (c.via_proxy) {
        // The last field's last entry is what the proxy appended; earlier ones are the
        // client's own word.
        std::string_view forwarded_for;
        for (auto [it, end] = head.equal_range("X-Forwarded-For"); it != end; ++it) {
          forwarded_for = it->value();
        }
        if (auto forwarded = ForwardedClientKey(forwarded_for)) who = std::move(*forwarded);
      }
      const bool upgrade = channels_ != nullptr && websocket::is_upgrade(head) &&
                           in.target.substr(0, in.target.find('?')) == options_.channel_path;
      HeadVerdict verdict;
      if (upgrade) {
        verdict.needs_token = true;
      } else {
        verdict = handler_.CheckHead(in);
      }
      if (verdict.needs_token) {
        if (const int64_t wait_ms = throttle_.BlockedForMs(who, SteadyMs()); wait_ms > 0) {
          c.parser = nullptr;
          metrics_.RequestRefused(kRequestThrottled);
          refusal_log_.Write(kRequestThrottled, "request refused: too many failed authentications",
                             {{"client", who}});
          HttpResponse r;
          r.status = 429;
          r.body = R"({"error":"too many failed authentications from this address, retry later"})";
          r.headers.emplace_back("Retry-After", std::to_string((wait_ms + 999) / 1000));
          co_await WriteAndClose(c, std::move(r), head.version(), !parser.is_done());
          co_return;
        }
      }
      if (upgrade) {
        c.parser = nullptr;
        if (!parser.is_done()) {
          co_await WriteError(c, 400, "an upgrade request must not have a body");
          co_return;
        }
        std::string principal;
        std::optional<HttpResponse> refusal = channels_->Admit(in, &principal);
        if (!refusal && channels_open_ >= options_.max_channels &&
            by_principal_.count(principal) == 0) {
          metrics_.ConnectionRefused(kRefusedChannelsFull);
          refusal_log_.Write(
              kRefusedChannelsFull, "policy channel refused",
              {{"client", c.client}, {"limit", static_cast<int64_t>(options_.max_channels)}});
          HttpResponse r;
          r.status = 503;
          r.body = R"({"error":"policy channel pool full, retry later"})";
          r.headers.emplace_back("Retry-After", "30");
          refusal = std::move(r);
        }
        if (!refusal) {
          co_await ServeChannel(c, parser.release(), principal);
          co_return;
        }
        if (refusal->status == 401) RecordAuthFailure(who);
        co_await WriteResponse(c, std::move(*refusal), head.version(), false);
        co_return;
      }
      if (verdict.refusal) {
        if (verdict.refusal->status == 401) RecordAuthFailure(who);
        if (!parser.is_done()) {
          // A body was announced: answer without reading it, then close.
          c.parser = nullptr;
          co_await WriteAndClose(c, std::move(*verdict.refusal), head.version(), true);
          co_return;
        }
        c.parser = nullptr;
        const bool keep_alive = head.keep_alive() && !stopping_;
        auto [write_ec] =
            co_await WriteResponse(c, std::move(*verdict.refusal), head.version(), keep_alive);
        if (write_ec || !keep_alive) co_return;
        continue;
      }
      if (!parser.is_done()) {
        c.stream.expires_after(options_.read_timeout);
        auto [body_ec, body_bytes] = co_await http::async_read(c.stream, buffer, parser, kUseTuple);
        if (body_ec) {
          c.parser = nullptr;
          if (!IsHttpParseError(body_ec) || body_ec == http::error::end_of_stream) co_return;
          const int status = body_ec == http::error::body_limit ? 413 : 400;
          co_await WriteError(c, status, body_ec.message());
          co_return;
        }
      }
      c.parser = nullptr;
      http::request<http::string_body> request = parser.release();
      in.body = std::move(request.body());
      HttpResponse out = handler_.Handle(in);
      if (out.status == 401) RecordAuthFailure(who);
      const bool keep_alive = request.keep_alive() && !stopping_;
      auto [write_ec] = co_await WriteResponse(c, std::move(out), request.version(), keep_alive);
      if (write_ec || !keep_alive) co_return;
    }
  }

  asio::awaitable<std::tuple<beast::error_code>> WriteResponse(Connection& c, HttpResponse out,
                                                               unsigned version, bool keep_alive) {
    http::response<http::string_body> response{static_cast<http::status>(out.status), version};
    response.set(http::field::server, "edge-console");
    response.set(http::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) response.set(name, value);
    response.body() = std::move(out.body);
    response.keep_alive(keep_alive);
    response.prepare_payload();
    c.stream.expires_after(options_.write_timeout);
    auto [ec, written] = co_await http::async_write(c.stream, response, kUseTuple);
    co_return std::tuple<beast::error_code>{ec};
  }

  // Answers a request whose body is not going to be read, then closes the connection; with
  // `drain` the unread body is read and discarded for a moment first (see kDrainTime).
  asio::awaitable<void> WriteAndClose(Connection& c, HttpResponse out, unsigned version,
                                      bool drain) {
    auto [ec] = co_await WriteResponse(c, std::move(out), version, false);
    if (ec || !drain) co_return;
    co_await Drain(c);
  }

  asio::awaitable<void> Drain(Connection& c) {
    beast::error_code ignored;
    c.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    c.stream.expires_after(kDrainTime);
    std::array<char, 16 * 1024> scratch;
    size_t drained = 0;
    while (drained < kMaxDrainBytes) {
      auto [read_ec, n] = co_await c.stream.async_read_some(asio::buffer(scratch), kUseTuple);
      if (read_ec) break;
      drained += n;
    }
  }

  // A WebSocket channel on an admitted upgrade request, until either side closes it.
  asio::awaitable<void> ServeChannel(Connection& c, http::request<http::string_body> request,
                                     std::string principal) {
    c.channel = std::make_shared<WsChannel>(std::move(c.stream), ioc_, options_);
    const std::shared_ptr<WsChannel> ch = c.channel;
    // Beast's own WebSocket timeouts replace the stream's deadline from here on.
    beast::get_lowest_layer(ch->ws).expires_never();
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = options_.write_timeout;
    timeouts.idle_timeout = options_.channel_idle_timeout;
    timeouts.keep_alive_pings = false;  // WriteChannel pings on its own schedule
    ch->ws.set_option(timeouts);
    ch->ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "edge-console"); }));
    ch->ws.read_message_max(options_.channel_max_message);
    ch->ws.text(true);
    auto [accept_ec] = co_await ch->ws.async_accept(request, kUseTuple);
    if (accept_ec || stopping_) co_return;

    // The channel leaves the request pool for the channel pool, replacing an older channel
    // of the same principal (most often one whose connection died without a close).
    LeaveRequestPool(c);
    if (const auto old = by_principal_.find(principal); old != by_principal_.end()) {
      const std::shared_ptr<WsChannel> previous = old->second;
      by_principal_.erase(old);
      metrics_.ChannelReplaced();
      log_.Write(LogLevel::kInfo, "policy channel replaced by a newer one of the same node",
                 {{"principal", principal}});
      previous->Drop();
      CloseChannel(*previous);
      for (const auto& other : connections_) {
        if (other->channel == previous) LeaveChannelPool(*other);
      }
    } else if (channels_open_ >= options_.max_channels) {
      metrics_.ConnectionRefused(kRefusedChannelsFull);
      refusal_log_.Write(
          kRefusedChannelsFull, "policy channel refused",
          {{"client", c.client}, {"limit", static_cast<int64_t>(options_.max_channels)}});
      co_return;
    }
    c.in_channel_pool = true;
    c.principal = principal;
    ++channels_open_;
    by_principal_[principal] = ch;
    UpdateGauges();

    ch->opened = true;  // before OnOpen: if it throws, Serve() still calls OnClose
    channels_->OnOpen(*ch, principal);
    asio::co_spawn(ioc_, WriteChannel(ch),
                   [this](std::exception_ptr e) { LogFault(e, "channel"); });
    ch->hello_timer.expires_after(options_.channel_hello_timeout);
    ch->hello_timer.async_wait([ch](const beast::error_code& ec) {
      if (!ec && !ch->got_message) ch->Close(1008, "no hello in time");
    });
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ch->ws.async_read(buffer, kUseTuple);
      if (ec) break;
      const bool text = ch->ws.got_text();
      std::string message = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      if (!ch->got_message) {
        ch->got_message = true;
        ch->hello_timer.cancel();
      }
      if (ch->closing || ch->closed) continue;
      if (!text) {
        ch->Close(1003, "text frames only");
        continue;
      }
      try {
        channels_->OnMessage(*ch, message);
      } catch (...) {
        LogFault(std::current_exception(), "channel message");
      }
    }
    if (ch->overflowed) {
      log_.Write(LogLevel::kWarn, "channel dropped: outgoing queue full",
                 {{"principal", principal}});
    }
    ch->Drop();  // Serve() tells the handler
  }

  // Sends queued messages in order, a ping every channel_ping_interval, and the close
  // frame last. Pings go through here so that only one write is ever in flight.
  asio::awaitable<void> WriteChannel(std::shared_ptr<WsChannel> ch) {
    auto next_ping = std::chrono::steady_clock::now() + options_.channel_ping_interval;
    const websocket::ping_data ping_payload;
    while (!ch->closed) {
      if (!ch->queue.empty()) {
        const std::string message = std::move(ch->queue.front());
        ch->queue.pop_front();
        ch->queued_bytes -= message.size();
        ch->write_deadline = std::chrono::steady_clock::now() + options_.write_timeout;
        auto [ec, n] = co_await ch->ws.async_write(asio::buffer(message), kUseTuple);
        ch->write_deadline.reset();
        if (ec) break;
        continue;
      }
      if (ch->closing) {
        ch->write_deadline = std::chrono::steady_clock::now() + options_.write_timeout;
        auto [ec] = co_await ch->ws.async_close(ch->close_reason, kUseTuple);
        ch->write_deadline.reset();
        if (ec) break;
        co_return;  // the reader sees the end of the channel
      }
      if (std::chrono::steady_clock::now() >= next_ping) {
        ch->write_deadline = std::chrono::steady_clock::now() + options_.write_timeout;
        auto [ec] = co_await ch->ws.async_ping(ping_payload, kUseTuple);
        ch->write_deadline.reset();
        if (ec) break;
        next_ping = std::chrono::steady_clock::now() + options_.channel_ping_interval;
        continue;
      }
      ch->wake.expires_at(next_ping);
      co_await ch->wake.async_wait(kUseTuple);
    }
    ch->Drop();
  }

  // Calls the channel handler's tick and drops channels whose write is overdue.
  asio::awaitable<void> TickLoop() {
    while (!stopping_) {
      tick_timer_.expires_after(options_.tick_interval);
      auto [ec] = co_await tick_timer_.async_wait(kUseTuple);
      if (ec || stopping_) co_return;
      const auto now = std::chrono::steady_clock::now();
      for (const auto& c : connections_) {
        if (c->channel && c->channel->write_deadline && *c->channel->write_deadline < now) {
          log_.Write(LogLevel::kWarn, "channel dropped: write timed out");
          c->channel->Drop();
        }
      }
      try {
        channels_->OnTick();
      } catch (...) {
        LogFault(std::current_exception(), "tick");
      }
    }
  }

  // Answers a request that could not be read completely, then closes the connection.
  asio::awaitable<void> WriteError(Connection& c, int status, const std::string& reason) {
    http::response<http::string_body> response{static_cast<http::status>(status), 11};
    response.set(http::field::server, "edge-console");
    response.set(http::field::content_type, "application/json");
    std::string safe_reason = reason;
    for (char& ch : safe_reason) {
      if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) ch = ' ';
    }
    response.body() = R"({"error":")" + safe_reason + R"("})";
    response.keep_alive(false);
    response.prepare_payload();
    c.stream.expires_after(options_.write_timeout);
    auto [ec, written] = co_await http::async_write(c.stream, response, kUseTuple);
    if (ec) co_return;
    co_await Drain(c);
  }

  void BeginShutdown() {
    if (stopping_) return;
    stopping_ = true;
    beast::error_code ignored;
    acceptor_.close(ignored);
    signals_.cancel(ignored);
    tick_timer_.cancel();
    for (const auto& c : connections_) {
      if (c->channel) {
        c->channel->Close(1001, "console shutting down");
        continue;
      }
      // Idle keep-alive connections close now; the others finish their request first.
      if (c->idle || (c->parser != nullptr && !c->parser->got_some())) c->stream.cancel();
    }
    if (connections_.empty()) return;
    grace_timer_.expires_after(options_.shutdown_grace);
    grace_timer_.async_wait([this](const beast::error_code& ec) {
      if (ec) return;
      if (!connections_.empty()) {
        log_.Write(LogLevel::kWarn, "closing connections still busy after the grace period",
                   {{"connections", static_cast<int64_t>(connections_.size())}});
      }
      for (const auto& c : connections_) {
        if (c->channel) {
          c->channel->Drop();
        } else {
          c->stream.cancel();
        }
      }
    });
  }

  const ServerOptions options_;
  RequestHandler& handler_;
  Log& log_;
  ChannelHandler* channels_;   // may be null: no WebSocket channels
  ServerMetrics own_metrics_;  // used when the caller gave none
  ServerMetrics& metrics_;
  RefusalLog refusal_log_;
  AuthThrottle throttle_;                       // bounded by options_.auth_throttle.max_addresses
  const std::vector<IpRange> trusted_proxies_;  // options_.trusted_proxies
  size_t request_connections_ = 0;
  // Request connections per ClientKey; entries are erased at zero, so it holds at most
  // max_connections entries.
  std::map<std::string, size_t> per_address_;
  size_t channels_open_ = 0;
  // The open channel of each principal (at most one); at most max_channels entries.
  std::map<std::string, std::shared_ptr<WsChannel>> by_principal_;
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

}  // namespace

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::Error("listen address must look like [IPV6]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return Status::Error("listen address must look like ADDR:PORT (IPv6 as [ADDR]:PORT)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) return Status::Error("listen address has no host");
  beast::error_code ec;
  asio::ip::make_address(std::string(host), ec);
  if (ec) return Status::Error("listen host must be an IP address: '" + std::string(host) + "'");
  if (port.empty() || port.size() > 5) return Status::Error("listen port must be 0-65535");
  unsigned value = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') return Status::Error("listen port must be 0-65535");
    value = value * 10 + static_cast<unsigned>(ch - '0');
  }
  if (value > 65535) return Status::Error("listen port must be 0-65535");
  return ListenAddress{std::string(host), static_cast<uint16_t>(value)};
}

Result<std::unique_ptr<Server>> CreateServer(const ServerOptions& options, RequestHandler& handler,
                                             Log& log, ChannelHandler* channels,
                                             ServerMetrics* metrics) {
  try {
    auto server = std::make_unique<BeastServer>(options, handler, log, channels, metrics);
    if (Status s = server->Bind(); !s) return s;
    return std::unique_ptr<Server>(std::move(server));
  } catch (const std::exception& e) {
    return Status::Error(std::string("cannot start the HTTP server: ") + e.what());
  }
}

}  // namespace edge::console
