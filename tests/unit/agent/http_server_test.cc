#include "edge/agent/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <thread>

namespace edge::agent {
namespace {

namespace asio = boost::asio;

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

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = StartHttpServer(
        io_, {"127.0.0.1:0", 2000, 8}, [](std::string_view method, std::string_view target) {
          if (target == "/boom") throw std::runtime_error("boom");
          return HttpResponse{200, "text/plain", std::string(method) + " " + std::string(target)};
        });
    ASSERT_TRUE(s.ok()) << s.error();
    server_ = std::move(*s);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    server_->Stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpServerTest, ServesTheHandlersResponse) {
  auto res = RawRequest(server_->port(),
                        "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
  EXPECT_NE(res.find("GET /metrics?x=1"), std::string::npos) << res;
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
  auto a = StartHttpServer(io, {"127.0.0.1:0", 1000, 4}, [](auto, auto) { return HttpResponse{}; });
  ASSERT_TRUE(a.ok());
  auto b = StartHttpServer(io, {"127.0.0.1:" + std::to_string((*a)->port()), 1000, 4},
                           [](auto, auto) { return HttpResponse{}; });
  EXPECT_FALSE(b.ok());
}

}  // namespace
}  // namespace edge::agent
