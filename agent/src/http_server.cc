// Beast lives here (and in cloud-sync's uplink) only.
#include "edge/agent/http_server.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <list>

namespace edge::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kRejectLogInterval = std::chrono::seconds(10);

enum class Reject { kHeaderTimeout, kClientLimit, kTotalLimit };
constexpr size_t kRejectKinds = 3;
constexpr std::string_view kRejectLabels[kRejectKinds] = {"header_timeout", "client_limit",
                                                          "total_limit"};

bool IsLoopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  return a.is_v6() && a.to_v6().is_v4_mapped() &&
         asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
}

// One accepted connection. Lives in BeastHttpServer::conns_ (a std::list: stable addresses)
// from accept until its session ends.
struct Connection {
  explicit Connection(tcp::socket&& s, asio::ip::address a)
      : stream(std::move(s)), peer(std::move(a)) {}
  beast::tcp_stream stream;
  asio::ip::address peer;
  bool waiting = true;   // waiting for a request's headers (evictable)
  bool closing = false;  // closed by a bound; the session is about to end
  SteadyClock::time_point waiting_since = SteadyClock::now();
};

class BeastHttpServer final : public HttpServer,
                              public std::enable_shared_from_this<BeastHttpServer> {
 public:
  BeastHttpServer(asio::io_context& io, HttpServerOptions options, HttpHandler handler,
                  Metrics& metrics)
      : io_(io), acceptor_(io), options_(std::move(options)), handler_(std::move(handler)) {
    for (size_t i = 0; i < kRejectKinds; ++i) {
      rejected_[i] = &metrics.Counter(
          "edge_agent_http_connections_rejected_total",
          "HTTP connections closed by a bound of the HTTP port: no complete request headers "
          "within http.header_timeout, or over http.max_connections_per_client / "
          "http.max_connections",
          {{"reason", std::string(kRejectLabels[i])}});
    }
  }

  Status Bind(const std::string& host, uint16_t port) {
    beast::error_code ec;
    auto addr = asio::ip::make_address(host == "*" ? "0.0.0.0" : host, ec);
    if (ec) return Status::Error("http listen address '" + host + "': " + ec.message());
    tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Error("http listen on " + host + ":" + std::to_string(port) + ": " +
                           ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    return Status::Ok();
  }

  void Start() { asio::co_spawn(io_, Accept(shared_from_this()), asio::detached); }

  uint16_t port() const override { return port_; }

  void Stop() override {
    asio::post(io_, [self = shared_from_this()] {
      self->stopped_ = true;
      beast::error_code ec;
      self->acceptor_.close(ec);
      for (Connection& c : self->conns_) {
        c.closing = true;
        c.stream.socket().close(ec);
      }
    });
  }

 private:
  using ConnIt = std::list<Connection>::iterator;

  static asio::awaitable<void> Accept(std::shared_ptr<BeastHttpServer> self) {
    while (!self->stopped_) {
      auto [ec, socket] =
          co_await self->acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (self->stopped_ || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("http accept failed: {}", ec.message());
        continue;
      }
      beast::error_code pec;
      const tcp::endpoint peer = socket.remote_endpoint(pec);
      if (pec) {  // already reset by the client
        socket.close(pec);
        continue;
      }
      if (!self->MakeRoom(peer.address())) {
        beast::error_code ignore;
        socket.close(ignore);
        continue;
      }
      self->conns_.emplace_back(std::move(socket), peer.address());
      asio::co_spawn(self->io_, Session(self, std::prev(self->conns_.end())), asio::detached);
    }
  }

  // Makes room for one more connection from `peer` by closing the oldest connection that
  // waits for request headers (of `peer` at the per-client bound, of anyone at the total
  // bound). False when a bound is reached and no connection waits: refuse the new one.
  bool MakeRoom(const asio::ip::address& peer) {
    size_t live = 0;
    size_t of_peer = 0;
    for (const Connection& c : conns_) {
      if (c.closing) continue;
      ++live;
      if (c.peer == peer) ++of_peer;
    }
    if (of_peer >= options_.max_connections_per_client) {
      if (!CloseOldestWaiting(&peer)) {
        Rejected(Reject::kClientLimit, peer);
        return false;
      }
      Rejected(Reject::kClientLimit, peer);
      --live;
    }
    if (live >= options_.max_connections) {
      if (!CloseOldestWaiting(nullptr)) {
        Rejected(Reject::kTotalLimit, peer);
        return false;
      }
      Rejected(Reject::kTotalLimit, peer);
    }
    return true;
  }

  bool CloseOldestWaiting(const asio::ip::address* peer) {
    Connection* oldest = nullptr;
    for (Connection& c : conns_) {
      if (c.closing || !c.waiting || (peer != nullptr && c.peer != *peer)) continue;
      if (oldest == nullptr || c.waiting_since < oldest->waiting_since) oldest = &c;
    }
    if (oldest == nullptr) return false;
    oldest->closing = true;
    beast::error_code ignore;
    oldest->stream.socket().shutdown(tcp::socket::shutdown_both, ignore);
    oldest->stream.socket().close(ignore);  // the session's pending read ends
    return true;
  }

  // Counts every close, logs a summary at most every kRejectLogInterval.
  void Rejected(Reject why, const asio::ip::address& peer) {
    const auto i = static_cast<size_t>(why);
    rejected_[i]->Inc();
    ++unlogged_[i];
    const auto now = SteadyClock::now();
    if (now - last_log_ < kRejectLogInterval) return;
    last_log_ = now;
    spdlog::warn(
        "http: closed connections to bound the port: {} header_timeout, {} client_limit, {} "
        "total_limit (latest from {})",
        unlogged_[0], unlogged_[1], unlogged_[2], peer.to_string());
    unlogged_ = {};
  }

  static asio::awaitable<void> Session(std::shared_ptr<BeastHttpServer> self, ConnIt conn) {
    struct Guard {
      BeastHttpServer* s;
      ConnIt it;
      ~Guard() { s->conns_.erase(it); }
    } guard{self.get(), conn};
    beast::tcp_stream& stream = conn->stream;
    const bool loopback = IsLoopback(conn->peer);
    bool served_any = false;
    try {
      beast::flat_buffer buffer(8192);
      while (!self->stopped_ && !conn->closing) {
        http::request_parser<http::empty_body> parser;
        parser.header_limit(8 * 1024);
        parser.body_limit(0);
        conn->waiting = true;
        conn->waiting_since = SteadyClock::now();
        stream.expires_after(std::chrono::milliseconds(self->options_.header_timeout_ms));
        auto [ec, n] =
            co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        (void)n;
        conn->waiting = false;
        if (ec == beast::error::timeout) {
          // An idle keep-alive connection that sent nothing more is an ordinary close.
          if (!served_any || buffer.size() > 0 || parser.got_some()) {
            self->Rejected(Reject::kHeaderTimeout, conn->peer);
          }
          break;
        }
        if (conn->closing || ec == http::error::end_of_stream ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
          break;
        }
        http::response<http::string_body> res;
        bool keep_alive = false;
        if (ec) {
          res.result(http::status::bad_request);
          res.set(http::field::content_type, "text/plain; charset=utf-8");
          res.body() = "bad request: " + ec.message() + "\n";
        } else {
          const auto& req = parser.get();
          keep_alive = req.keep_alive();
          res.version(req.version());
          HttpResponse out;
          try {
            HttpRequest in;
            in.method = std::string_view(req.method_string());
            in.target = std::string_view(req.target());
            in.authorization = std::string_view(req[http::field::authorization]);
            in.peer_is_loopback = loopback;
            out = self->handler_(in);
          } catch (const std::exception& e) {
            spdlog::error("http handler failed: {}", e.what());
            out = HttpResponse{500, "text/plain; charset=utf-8", "internal error\n", {}};
          }
          res.result(static_cast<unsigned>(out.status));
          res.set(http::field::content_type, out.content_type);
          for (const auto& [name, value] : out.headers) res.set(name, value);
          res.body() = std::move(out.body);
          if (req.method() == http::verb::head) res.body().clear();
        }
        res.set(http::field::server, "edge-agent");
        res.keep_alive(keep_alive);
        res.prepare_payload();
        stream.expires_after(std::chrono::milliseconds(self->options_.write_timeout_ms));
        auto [wec, wn] =
            co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        (void)wn;
        served_any = true;
        if (wec || !keep_alive) break;
      }
    } catch (const std::exception& e) {
      spdlog::warn("http session ended: {}", e.what());
    }
    beast::error_code ignore;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignore);
    stream.socket().close(ignore);
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  HttpServerOptions options_;
  HttpHandler handler_;
  std::array<CounterHandle*, kRejectKinds> rejected_{};
  uint16_t port_ = 0;
  // Touched on the io_context thread only.
  bool stopped_ = false;
  std::list<Connection> conns_;
  std::array<uint64_t, kRejectKinds> unlogged_{};
  SteadyClock::time_point last_log_ = SteadyClock::now() - kRejectLogInterval;
};

// Stop() may be called after the owner dropped its handle; the shared state keeps the
// acceptor alive until the io_context has run the posted close.
class ServerHandle final : public HttpServer {
 public:
  explicit ServerHandle(std::shared_ptr<BeastHttpServer> s) : s_(std::move(s)) {}
  ~ServerHandle() override { s_->Stop(); }
  uint16_t port() const override { return s_->port(); }
  void Stop() override { s_->Stop(); }

 private:
  std::shared_ptr<BeastHttpServer> s_;
};

}  // namespace

Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= listen.size()) {
    return Status::Error("'" + std::string(listen) + "' is not HOST:PORT");
  }
  std::string host(listen.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  auto port_text = listen.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return Status::Error("'" + std::string(listen) + "': port must be 0..65535");
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

bool BearerTokenMatches(std::string_view authorization, std::string_view token) {
  if (token.empty()) return false;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char ch = authorization[i];
    if ((ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch) != kScheme[i]) {
      return false;
    }
  }
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && (given.front() == ' ' || given.front() == '\t')) given.remove_prefix(1);
  while (!given.empty() && (given.back() == ' ' || given.back() == '\t')) given.remove_suffix(1);
  // Digests of equal length, so neither the length nor a matching prefix shows in the time.
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), b);
  return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

TokenOrLoopbackGate::TokenOrLoopbackGate(std::string token, CounterHandle& unauthorized,
                                         CounterHandle& not_loopback)
    : token_(std::move(token)), unauthorized_(&unauthorized), not_loopback_(&not_loopback) {}

std::optional<HttpResponse> TokenOrLoopbackGate::Check(const HttpRequest& request) const {
  if (!token_.empty()) {
    if (BearerTokenMatches(request.authorization, token_)) return std::nullopt;
    unauthorized_->Inc();
    return HttpResponse{401,
                        "text/plain; charset=utf-8",
                        "missing or wrong bearer token\n",
                        {{"WWW-Authenticate", "Bearer realm=\"edge-agent\""}}};
  }
  if (request.peer_is_loopback) return std::nullopt;
  not_loopback_->Inc();
  return HttpResponse{403, "text/plain; charset=utf-8",
                      "answered to loopback clients only (no token is configured)\n"};
}

Result<std::unique_ptr<HttpServer>> StartHttpServer(asio::io_context& io,
                                                    const HttpServerOptions& options,
                                                    HttpHandler handler, Metrics& metrics) {
  auto hp = SplitHostPort(options.listen);
  if (!hp.ok()) return Status::Error("http.listen " + hp.error());
  auto server = std::make_shared<BeastHttpServer>(io, options, std::move(handler), metrics);
  if (Status s = server->Bind(hp->first, hp->second); !s) return s;
  server->Start();
  return std::unique_ptr<HttpServer>(std::make_unique<ServerHandle>(server));
}

}  // namespace edge::agent
