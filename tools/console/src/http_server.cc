// The console's server: listening, connection admission (the request pool and the
// per-address limit, refusal logging) and shutdown. The class and how its job is split over
// files: beast_server.h.

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <csignal>

#include "beast_server.h"

namespace edge::console {
namespace internal {
void RefusalLog::Write(std::string_view reason, std::string_view message, LogFields fields) {
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

BeastServer::BeastServer(const ServerOptions& options, RequestHandler& handler, Log& log,
                         ChannelHandler* channels, ServerMetrics* metrics)
    : options_(options),
      handler_(handler),
      log_(log),
      channels_(channels),
      metrics_(metrics != nullptr ? *metrics : own_metrics_),
      refusal_log_(log),
      throttle_(options.auth_throttle),
      acceptor_(ioc_),
      signals_(ioc_),
      grace_timer_(ioc_),
      tick_timer_(ioc_) {}

Status BeastServer::Bind() {
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

void BeastServer::Run() {
  if (options_.handle_signals) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](const beast::error_code& ec, int signal) {
      if (ec) return;
      log_.Write(LogLevel::kInfo, "signal received, shutting down", {{"signal", int64_t{signal}}});
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

void BeastServer::Stop() {
  asio::post(ioc_, [this] { BeginShutdown(); });
}

void BeastServer::LogFault(std::exception_ptr e, const char* where) {
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

asio::awaitable<void> BeastServer::AcceptLoop() {
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
        std::any_of(options_.trusted_proxies.begin(), options_.trusted_proxies.end(),
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

asio::awaitable<void> BeastServer::Serve(std::shared_ptr<Connection> connection) {
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

void BeastServer::UpdateGauges() {
  metrics_.SetOpen(static_cast<int64_t>(request_connections_),
                   static_cast<int64_t>(by_principal_.size()));
}

void BeastServer::LeaveRequestPool(Connection& c) {
  if (!c.in_request_pool) return;
  c.in_request_pool = false;
  --request_connections_;
  if (const auto it = per_address_.find(c.client); it != per_address_.end()) {
    if (--it->second == 0) per_address_.erase(it);
  }
  UpdateGauges();
}

void BeastServer::LeaveChannelPool(Connection& c) {
  if (!c.in_channel_pool) return;
  c.in_channel_pool = false;
  if (const auto it = by_principal_.find(c.principal);
      it != by_principal_.end() && it->second == &c) {
    by_principal_.erase(it);
  }
  UpdateGauges();
}

void BeastServer::BeginShutdown() {
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

}  // namespace internal

namespace asio = boost::asio;
namespace beast = boost::beast;

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
    auto server = std::make_unique<internal::BeastServer>(options, handler, log, channels, metrics);
    if (Status s = server->Bind(); !s) return s;
    return std::unique_ptr<Server>(std::move(server));
  } catch (const std::exception& e) {
    return Status::Error(std::string("cannot start the HTTP server: ") + e.what());
  }
}

}  // namespace edge::console
