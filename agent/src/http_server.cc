// Beast lives here (and in cloud-sync's uplink) only.
#include "edge/agent/http_server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

namespace edge::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class BeastHttpServer final : public HttpServer,
                              public std::enable_shared_from_this<BeastHttpServer> {
 public:
  BeastHttpServer(asio::io_context& io, HttpServerOptions options, HttpHandler handler)
      : io_(io), acceptor_(io), options_(std::move(options)), handler_(std::move(handler)) {}

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
    });
  }

 private:
  static asio::awaitable<void> Accept(std::shared_ptr<BeastHttpServer> self) {
    while (!self->stopped_) {
      auto [ec, socket] =
          co_await self->acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (self->stopped_ || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("http accept failed: {}", ec.message());
        continue;
      }
      if (self->connections_ >= self->options_.max_connections) {
        beast::error_code ignore;
        socket.close(ignore);
        continue;
      }
      asio::co_spawn(self->io_, Session(self, beast::tcp_stream(std::move(socket))),
                     asio::detached);
    }
  }

  static asio::awaitable<void> Session(std::shared_ptr<BeastHttpServer> self,
                                       beast::tcp_stream stream) {
    ++self->connections_;
    struct Guard {
      std::shared_ptr<BeastHttpServer> s;
      ~Guard() { --s->connections_; }
    } guard{self};
    try {
      beast::flat_buffer buffer(8192);
      while (!self->stopped_) {
        http::request_parser<http::empty_body> parser;
        parser.header_limit(8 * 1024);
        parser.body_limit(0);
        stream.expires_after(std::chrono::milliseconds(self->options_.read_timeout_ms));
        auto [ec, n] =
            co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        (void)n;
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
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
            out = self->handler_(std::string_view(req.method_string()),
                                 std::string_view(req.target()));
          } catch (const std::exception& e) {
            spdlog::error("http handler failed: {}", e.what());
            out = HttpResponse{500, "text/plain; charset=utf-8", "internal error\n"};
          }
          res.result(static_cast<unsigned>(out.status));
          res.set(http::field::content_type, out.content_type);
          res.body() = std::move(out.body);
          if (req.method() == http::verb::head) res.body().clear();
        }
        res.set(http::field::server, "edge-agent");
        res.keep_alive(keep_alive);
        res.prepare_payload();
        stream.expires_after(std::chrono::milliseconds(self->options_.read_timeout_ms));
        auto [wec, wn] =
            co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        (void)wn;
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
  uint16_t port_ = 0;
  bool stopped_ = false;    // touched on the io_context thread only
  size_t connections_ = 0;  // touched on the io_context thread only
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

Result<std::unique_ptr<HttpServer>> StartHttpServer(asio::io_context& io,
                                                    const HttpServerOptions& options,
                                                    HttpHandler handler) {
  auto hp = SplitHostPort(options.listen);
  if (!hp.ok()) return Status::Error("http.listen " + hp.error());
  auto server = std::make_shared<BeastHttpServer>(io, options, std::move(handler));
  if (Status s = server->Bind(hp->first, hp->second); !s) return s;
  server->Start();
  return std::unique_ptr<HttpServer>(std::make_unique<ServerHandle>(server));
}

}  // namespace edge::agent
