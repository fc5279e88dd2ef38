#include "edge/agent/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <chrono>
#include <thread>

#include "../wait_for.h"
#include "edge/agent/prometheus_metrics.h"

namespace edge::agent {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

// Sends a raw request over loopback and returns the whole response text.
std::string RawRequest(uint16_t port, const std::string& request) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(s, asio::buffer(request));
  std::string out;
  boost::system::error_code ec;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

// True when the server closes `s` (EOF or reset) within `timeout`.
bool ClosedWithin(asio::ip::tcp::socket& s, milliseconds timeout) {
  s.non_blocking(true);
  char buf[256];
  return edge::testutil::PollUntil(
      [&] {
        boost::system::error_code ec;
        s.read_some(asio::buffer(buf), ec);
        return ec && ec != asio::error::would_block;
      },
      timeout);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options) {
    auto s = StartHttpServer(
        io_, options,
        [](const HttpRequest& r) {
          if (r.target == "/boom") throw std::runtime_error("boom");
          std::string body = std::string(r.method) + " " + std::string(r.target);
          if (!r.authorization.empty()) body += " auth=" + std::string(r.authorization);
          if (r.peer_is_loopback) body += " loopback";
          return HttpResponse{200, "text/plain", body, {{"X-Extra", "1"}}};
        },
        metrics_);
    ASSERT_TRUE(s.ok()) << s.error();
    server_ = std::move(*s);
    thread_ = std::thread([this] { io_.run(); });
  }
  void SetUp() override {
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.header_timeout_ms = 500;
    o.max_connections = 8;
    o.max_connections_per_client = 4;
    Start(o);
  }
  void TearDown() override {
    server_->Stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  asio::ip::tcp::socket Connect() {
    asio::ip::tcp::socket s(client_io_);
    s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    return s;
  }

  double Rejected(const std::string& reason) {
    return metrics_.Counter("edge_agent_http_connections_rejected_total", "", {{"reason", reason}})
        .Value();
  }

  PrometheusMetrics metrics_;
  asio::io_context io_;
  asio::io_context client_io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpServerTest, ServesTheHandlersResponse) {
  auto res = RawRequest(server_->port(),
                        "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
  EXPECT_NE(res.find("GET /metrics?x=1"), std::string::npos) << res;
  EXPECT_NE(res.find("X-Extra: 1"), std::string::npos) << res;
}

TEST_F(HttpServerTest, PassesTheAuthorizationHeaderAndWhetherThePeerIsLoopback) {
  auto res = RawRequest(
      server_->port(), "GET /x HTTP/1.1\r\nAuthorization: Bearer abc\r\nConnection: close\r\n\r\n");
  EXPECT_NE(res.find("GET /x auth=Bearer abc loopback"), std::string::npos) << res;
}

TEST_F(HttpServerTest, GarbageRequestGets400) {
  auto res = RawRequest(server_->port(), "\x01\x02 nonsense\r\n\r\n");
  EXPECT_NE(res.find("HTTP/1.1 400"), std::string::npos) << res;
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500AndServerKeepsServing) {
  auto res = RawRequest(server_->port(), "GET /boom HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_NE(res.find("HTTP/1.1 500"), std::string::npos) << res;
  auto again = RawRequest(server_->port(), "GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_NE(again.find("HTTP/1.1 200"), std::string::npos) << again;
}

TEST_F(HttpServerTest, RequestWithABodyIsRejectedNotBuffered) {
  auto res = RawRequest(server_->port(),
                        "POST / HTTP/1.1\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n" +
                            std::string(1000, 'a'));
  EXPECT_NE(res.find("HTTP/1.1 400"), std::string::npos) << res;
}

TEST_F(HttpServerTest, ConnectionWithoutCompleteHeadersIsClosedAtTheHeaderDeadline) {
  auto idle = Connect();
  auto slow = Connect();
  asio::write(slow, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n")));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedWithin(idle, milliseconds(5000)));
  EXPECT_TRUE(ClosedWithin(slow, milliseconds(5000)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(400));
  // The server counts a close right after the socket is shut, so the client may see the
  // close first.
  (void)edge::testutil::PollUntil([&] { return Rejected("header_timeout") >= 2; },
                                  milliseconds(5000));
  EXPECT_EQ(Rejected("header_timeout"), 2);
}

TEST_F(HttpServerTest, ClientOverItsLimitClosesItsOldestIdleConnectionAndIsServed) {
  std::vector<asio::ip::tcp::socket> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(Connect());
  // The fifth is served at once, although the four before it are still open and idle.
  auto res = RawRequest(server_->port(), "GET /probe HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
  EXPECT_TRUE(ClosedWithin(idle[0], milliseconds(1000)));
  EXPECT_FALSE(ClosedWithin(idle[3], milliseconds(100)));
  EXPECT_GE(Rejected("client_limit"), 1);
  EXPECT_EQ(Rejected("header_timeout"), 0);
}

TEST_F(HttpServerTest, ManyIdleConnectionsDoNotKeepAProbeOut) {
  std::vector<asio::ip::tcp::socket> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(Connect());
  for (int i = 0; i < 5; ++i) {
    auto res = RawRequest(server_->port(), "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << i << ": " << res;
  }
}

class HttpServerTotalLimitTest : public HttpServerTest {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.max_connections = 3;
    o.max_connections_per_client = 100;
    Start(o);
  }
};

TEST_F(HttpServerTotalLimitTest, ANewConnectionOverTheTotalClosesTheOldestIdleOne) {
  std::vector<asio::ip::tcp::socket> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(Connect());
  auto res = RawRequest(server_->port(), "GET /probe HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
  EXPECT_TRUE(ClosedWithin(idle[0], milliseconds(1000)));
  EXPECT_GE(Rejected("total_limit"), 1);
}

TEST(BearerTokenMatches, AcceptsOnlyTheExactToken) {
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("bearer  s3cret ", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cretx", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer ", ""));
}

class TokenOrLoopbackGateTest : public ::testing::Test {
 protected:
  TokenOrLoopbackGate Gate(std::string token) {
    return TokenOrLoopbackGate(std::move(token), unauthorized_, not_loopback_);
  }
  static HttpRequest Request(std::string_view authorization, bool loopback) {
    HttpRequest r;
    r.method = "GET";
    r.target = "/v1/readings?sensor=a";
    r.authorization = authorization;
    r.peer_is_loopback = loopback;
    return r;
  }

  PrometheusMetrics metrics_;
  CounterHandle& unauthorized_ = metrics_.Counter("refused", "", {{"reason", "unauthorized"}});
  CounterHandle& not_loopback_ = metrics_.Counter("refused", "", {{"reason", "not_loopback"}});
};

TEST_F(TokenOrLoopbackGateTest, WithoutATokenOnlyLoopbackClientsPass) {
  const auto gate = Gate("");
  EXPECT_FALSE(gate.Check(Request("", /*loopback=*/true)).has_value());
  const auto refused = gate.Check(Request("Bearer anything", /*loopback=*/false));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 403);
  EXPECT_EQ(not_loopback_.Value(), 1);
  EXPECT_EQ(unauthorized_.Value(), 0);
}

TEST_F(TokenOrLoopbackGateTest, WithATokenEveryClientNeedsIt) {
  const auto gate = Gate("s3cret");
  EXPECT_FALSE(gate.Check(Request("Bearer s3cret", /*loopback=*/false)).has_value());
  for (const bool loopback : {true, false}) {
    for (const std::string_view auth : {"", "Bearer wrong", "Bearer s3cre"}) {
      const auto refused = gate.Check(Request(auth, loopback));
      ASSERT_TRUE(refused.has_value()) << auth;
      EXPECT_EQ(refused->status, 401);
    }
  }
  EXPECT_EQ(unauthorized_.Value(), 6);
  EXPECT_EQ(not_loopback_.Value(), 0);
}

TEST(SplitHostPort, ParsesHostAndPort) {
  auto hp = SplitHostPort("127.0.0.1:9102");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "127.0.0.1");
  EXPECT_EQ(hp->second, 9102);
  auto v6 = SplitHostPort("[::1]:80");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(SplitHostPort(":80")->first, "0.0.0.0");
}

TEST(SplitHostPort, RejectsMissingOrBadPort) {
  EXPECT_FALSE(SplitHostPort("localhost").ok());
  EXPECT_FALSE(SplitHostPort("localhost:").ok());
  EXPECT_FALSE(SplitHostPort("localhost:99999").ok());
  EXPECT_FALSE(SplitHostPort("localhost:12ab").ok());
}

TEST(StartHttpServer, PortInUseIsAnError) {
  asio::io_context io;
  PrometheusMetrics metrics;
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  auto a = StartHttpServer(
      io, o, [](const HttpRequest&) { return HttpResponse{}; }, metrics);
  ASSERT_TRUE(a.ok());
  o.listen = "127.0.0.1:" + std::to_string((*a)->port());
  auto b = StartHttpServer(
      io, o, [](const HttpRequest&) { return HttpResponse{}; }, metrics);
  EXPECT_FALSE(b.ok());
}

}  // namespace
}  // namespace edge::agent
