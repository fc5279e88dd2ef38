// The connection layer (cloud-sync/src: console_stream, http_connection,
// websocket_connection) against a server on 127.0.0.1 in the same io_context. The
// uplink's and the policy channel's tests cover it through the loops; these pin down what
// the layer itself promises.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "../../../cloud-sync/src/console_stream.h"
#include "../../../cloud-sync/src/http_connection.h"
#include "../../../cloud-sync/src/websocket_connection.h"
#include "edge/cloudsync/console_url.h"

namespace edge::cloudsync::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Serves every request on each accepted connection with `reply`, keeping connections
// alive; counts connections and requests.
class LoopbackServer {
 public:
  using Reply = std::function<http::response<http::string_body>()>;

  LoopbackServer(asio::io_context& io, Reply reply)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        reply_(std::move(reply)) {
    asio::co_spawn(io, Accept(), asio::detached);
  }

  ConsoleUrl Url() const {
    return ParseConsoleUrl("http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()))
        .value();
  }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  void Close() { acceptor_.close(); }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) co_return;
      ++connections_;
      asio::co_spawn(acceptor_.get_executor(), Serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [rec, read] = co_await http::async_read(socket, buffer, req, kUseTuple);
      if (rec) co_return;
      ++requests_;
      http::response<http::string_body> res = reply_();
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, written] = co_await http::async_write(socket, res, kUseTuple);
      if (wec || !req.keep_alive()) co_return;
    }
  }

  tcp::acceptor acceptor_;
  Reply reply_;
  int connections_ = 0;
  int requests_ = 0;
};

http::response<http::string_body> Answer(http::status status, std::string body) {
  http::response<http::string_body> res{status, 11};
  res.body() = std::move(body);
  return res;
}

SteadyTime InASecond() { return std::chrono::steady_clock::now() + std::chrono::seconds(1); }

// Runs `test` as a coroutine on `io` until it returns.
void RunTest(asio::io_context& io, std::function<asio::awaitable<void>()> test) {
  bool done = false;
  asio::co_spawn(io, test(), [&](std::exception_ptr e) {
    done = true;
    io.stop();
    if (e) std::rethrow_exception(e);
  });
  io.run_for(std::chrono::seconds(5));
  ASSERT_TRUE(done) << "the test coroutine did not finish";
}

HttpRequest Request(std::string_view body) {
  HttpRequest request;
  request.target = "/v1/batches";
  request.body = body;
  return request;
}

TEST(HttpConnection, KeptAliveConnectionServesTheNextRequest) {
  asio::io_context io;
  LoopbackServer server(io, [] { return Answer(http::status::ok, "{}"); });
  HttpConnection conn(io.get_executor(), nullptr, 1 << 20);
  RunTest(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 2; ++i) {
      const HttpReply reply = co_await conn.Post(server.Url(), Request("[]"), InASecond());
      EXPECT_TRUE(reply.transport_ok) << reply.error;
      EXPECT_EQ(reply.status, 200u);
    }
  });
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpConnection, RequestWithoutKeepAliveLeavesNoConnectionOpen) {
  asio::io_context io;
  LoopbackServer server(io, [] { return Answer(http::status::no_content, ""); });
  HttpConnection conn(io.get_executor(), nullptr, 1 << 20);
  RunTest(io, [&]() -> asio::awaitable<void> {
    HttpRequest request = Request("{}");
    request.keep_alive = false;
    for (int i = 0; i < 2; ++i) {
      const HttpReply reply = co_await conn.Post(server.Url(), request, InASecond());
      EXPECT_EQ(reply.status, 204u) << reply.error;
    }
  });
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpConnection, ReplyBodyOverTheLimitFailsTheRead) {
  asio::io_context io;
  LoopbackServer server(io, [] { return Answer(http::status::ok, std::string(100, 'x')); });
  HttpConnection conn(io.get_executor(), nullptr, 16);
  RunTest(io, [&]() -> asio::awaitable<void> {
    const HttpReply reply = co_await conn.Post(server.Url(), Request("[]"), InASecond());
    EXPECT_FALSE(reply.transport_ok);
    EXPECT_TRUE(reply.wrote_request);
    EXPECT_EQ(reply.error.rfind("read: ", 0), 0u) << reply.error;
  });
}

TEST(HttpConnection, RefusedConnectionIsAnErrorInTheReply) {
  asio::io_context io;
  LoopbackServer server(io, [] { return Answer(http::status::ok, "{}"); });
  const ConsoleUrl url = server.Url();
  server.Close();  // nobody listens on the port any more
  HttpConnection conn(io.get_executor(), nullptr, 1 << 20);
  RunTest(io, [&]() -> asio::awaitable<void> {
    const HttpReply reply = co_await conn.Post(url, Request("[]"), InASecond());
    EXPECT_FALSE(reply.transport_ok);
    EXPECT_FALSE(reply.wrote_request);
    EXPECT_EQ(reply.error.rfind("connect to 127.0.0.1:", 0), 0u) << reply.error;
  });
}

TEST(WebSocketConnection, DeclinedUpgradeReportsTheStatusAndBody) {
  asio::io_context io;
  LoopbackServer server(io, [] { return Answer(http::status::not_found, "no channel here"); });
  WebSocketConnection ws(io.get_executor(), nullptr);
  RunTest(io, [&]() -> asio::awaitable<void> {
    WebSocketOpenOptions options;
    options.target = "/v1/policy/channel";
    options.max_message_bytes = 1 << 10;
    const WebSocketOpenResult opened = co_await ws.Open(server.Url(), options, InASecond());
    EXPECT_EQ(opened.kind, WebSocketOpenResult::Kind::kDeclined) << opened.error;
    EXPECT_EQ(opened.status, 404u);
    EXPECT_EQ(opened.body, "no channel here");
  });
}

TEST(ConsoleStream, HttpsWithoutATlsContextIsAnError) {
  asio::io_context io;
  LoopbackServer server(io, [] { return Answer(http::status::ok, "{}"); });
  const ConsoleUrl url =
      ParseConsoleUrl("https://127.0.0.1:" + std::to_string(server.Url().port)).value();
  ConsoleStream stream(io.get_executor(), nullptr);
  RunTest(io, [&]() -> asio::awaitable<void> {
    const std::string error = co_await stream.Connect(url, InASecond());
    EXPECT_EQ(error, "https requested but no TLS context");
    EXPECT_FALSE(stream.IsOpen());
  });
}

}  // namespace
}  // namespace edge::cloudsync::internal
