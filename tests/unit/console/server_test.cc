// Runs the real HTTP server in-process on 127.0.0.1:0 and talks to it over loopback.

#include "edge/console/server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "../wait_for.h"
#include "edge/console/api.h"
#include "edge/console/codec.h"

namespace edge::console {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kClientTimeout = 5s;

struct Reply {
  int status = 0;
  std::string body;
  bool keep_alive = false;
};

// A blocking HTTP/1.1 client whose every operation has a deadline.
class TestClient {
 public:
  explicit TestClient(uint16_t port) : stream_(ioc_) {
    stream_.expires_after(kClientTimeout);
    stream_.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [this](beast::error_code ec) { ec_ = ec; });
    RunLoop();
  }

  bool connected() const { return !ec_; }

  std::optional<Reply> Send(http::request<http::string_body> request) {
    request.prepare_payload();
    stream_.expires_after(kClientTimeout);
    http::async_write(stream_, request, [this](beast::error_code ec, size_t) { ec_ = ec; });
    RunLoop();
    if (ec_) return std::nullopt;
    return Receive();
  }

  std::optional<Reply> SendRaw(const std::string& bytes) {
    stream_.expires_after(kClientTimeout);
    asio::async_write(stream_, asio::buffer(bytes),
                      [this](beast::error_code ec, size_t) { ec_ = ec; });
    RunLoop();
    if (ec_) return std::nullopt;
    return Receive();
  }

  std::optional<Reply> Receive() {
    http::response<http::string_body> response;
    stream_.expires_after(kClientTimeout);
    http::async_read(stream_, buffer_, response,
                     [this](beast::error_code ec, size_t) { ec_ = ec; });
    RunLoop();
    if (ec_) return std::nullopt;
    return Reply{static_cast<int>(response.result_int()), response.body(), response.keep_alive()};
  }

  // True when the server closed the connection (EOF) within the client timeout.
  bool ClosedByPeer() {
    char byte;
    stream_.expires_after(kClientTimeout);
    stream_.async_read_some(asio::buffer(&byte, 1),
                            [this](beast::error_code ec, size_t) { ec_ = ec; });
    RunLoop();
    return ec_ == asio::error::eof || ec_ == asio::error::connection_reset;
  }

 private:
  void RunLoop() {
    ioc_.restart();
    ioc_.run();
  }

  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  beast::error_code ec_;
};

http::request<http::string_body> Request(http::verb verb, const std::string& target,
                                         const std::string& token, std::string body = {}) {
  http::request<http::string_body> r{verb, target, 11};
  r.set(http::field::host, "127.0.0.1");
  if (!token.empty()) r.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) r.set(http::field::content_type, "application/json");
  r.body() = std::move(body);
  r.keep_alive(true);
  return r;
}

std::string OneAlertBatch(const std::string& node, const std::string& id) {
  return json{{"node", node},
              {"sent_ms", 1},
              {"items",
               {{{"id", id},
                 {"kind", "alert"},
                 {"created_ms", 2},
                 {"payload",
                  {{"rule", "r1"},
                   {"sensor", "s1"},
                   {"severity", "warning"},
                   {"state", "firing"},
                   {"ts_ms", 3}}}}}}}
      .dump();
}

// Passes requests on and counts the request heads it was shown: a test can wait until the
// server has read a request's headers.
class HeadCountingHandler : public RequestHandler {
 public:
  explicit HeadCountingHandler(RequestHandler& inner) : inner_(inner) {}
  HeadVerdict CheckHead(const HttpRequest& head) override {
    HeadVerdict verdict = inner_.CheckHead(head);
    ++heads_;
    return verdict;
  }
  HttpResponse Handle(const HttpRequest& request) override { return inner_.Handle(request); }
  int heads() const { return heads_.load(); }

 private:
  RequestHandler& inner_;
  std::atomic<int> heads_{0};
};

class ConsoleServerTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("console_server_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto tokens = TokenTable::Parse("node-1 tok-n1\nnode-2 tok-n2\nadmin tok-admin\n", "tokens");
    ASSERT_TRUE(tokens.ok()) << tokens.error();
    tokens_ = std::make_unique<TokenTable>(std::move(tokens.value()));
    auto store = OpenSqliteConsoleStore((dir_ / "console.db").string());
    ASSERT_TRUE(store.ok()) << store.error();
    store_ = std::move(store.value());
    api_ = std::make_unique<ConsoleApi>(*tokens_, *store_, clock_, log_);
  }

  // Serves with `handler` (default: the ConsoleApi).
  void StartServer(RequestHandler* handler = nullptr) {
    auto server = CreateServer(options_, handler != nullptr ? *handler : *api_, log_);
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(server.value());
    ASSERT_NE(server_->port(), 0);
    thread_ = std::thread([this] { server_->Run(); });
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    api_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  SystemClock clock_;
  NullLog log_;
  ServerOptions options_;
  std::unique_ptr<TokenTable> tokens_;
  std::unique_ptr<ConsoleStore> store_;
  std::unique_ptr<ConsoleApi> api_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(ConsoleServerTest, PostAndGetOverOneKeepAliveConnection) {
  StartServer();
  TestClient client(server_->port());
  ASSERT_TRUE(client.connected());

  auto posted = client.Send(
      Request(http::verb::post, "/v1/batches", "tok-n1", OneAlertBatch("node-1", "node-1:e:1")));
  ASSERT_TRUE(posted.has_value());
  EXPECT_EQ(posted->status, 200) << posted->body;
  EXPECT_TRUE(posted->keep_alive);
  EXPECT_EQ(json::parse(posted->body)["acked"], json({"node-1:e:1"}));

  auto again = client.Send(
      Request(http::verb::post, "/v1/batches", "tok-n1", OneAlertBatch("node-1", "node-1:e:1")));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(json::parse(again->body)["duplicates"], 1);

  auto alerts = client.Send(Request(http::verb::get, "/v1/alerts?node=node-1", "tok-admin"));
  ASSERT_TRUE(alerts.has_value());
  EXPECT_EQ(alerts->status, 200);
  const json list = json::parse(alerts->body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], "node-1:e:1");
}

TEST_F(ConsoleServerTest, AuthAndValidationErrorsOverLoopback) {
  StartServer();
  TestClient client(server_->port());
  ASSERT_TRUE(client.connected());
  const std::string batch = OneAlertBatch("node-1", "node-1:e:1");

  {
    // Refused from its headers: the body is never read, so the connection is closed.
    TestClient first(server_->port());
    auto no_token = first.Send(Request(http::verb::post, "/v1/batches", "", batch));
    ASSERT_TRUE(no_token.has_value());
    EXPECT_EQ(no_token->status, 401);
    EXPECT_FALSE(no_token->keep_alive);
  }

  auto wrong_node = client.Send(Request(http::verb::post, "/v1/batches", "tok-n2", batch));
  ASSERT_TRUE(wrong_node.has_value());
  EXPECT_EQ(wrong_node->status, 403);

  auto node_on_admin = client.Send(Request(http::verb::get, "/v1/nodes", "tok-n1"));
  ASSERT_TRUE(node_on_admin.has_value());
  EXPECT_EQ(node_on_admin->status, 403);

  auto malformed = client.Send(Request(http::verb::post, "/v1/batches", "tok-n1", "{\"node\":"));
  ASSERT_TRUE(malformed.has_value());
  EXPECT_EQ(malformed->status, 400);
  EXPECT_TRUE(json::parse(malformed->body)["error"].is_string());

  // The connection is still usable after the errors.
  auto health = client.Send(Request(http::verb::get, "/healthz", ""));
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->status, 200);
}

TEST_F(ConsoleServerTest, GzipBodyOverLoopback) {
  StartServer();
  TestClient client(server_->port());
  auto request = Request(http::verb::post, "/v1/batches", "tok-n1",
                         Gzip(OneAlertBatch("node-1", "node-1:e:7")));
  request.set(http::field::content_encoding, "gzip");
  auto reply = client.Send(std::move(request));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200) << reply->body;
  EXPECT_EQ(json::parse(reply->body)["accepted"], 1);
}

TEST_F(ConsoleServerTest, BodyOverWireLimitGets413AndClose) {
  options_.max_body_bytes = 1024;
  StartServer();
  TestClient client(server_->port());
  auto reply =
      client.Send(Request(http::verb::post, "/v1/batches", "tok-n1", std::string(4096, ' ')));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 413);
  EXPECT_FALSE(reply->keep_alive);
}

TEST_F(ConsoleServerTest, OversizedHeadersGet431) {
  options_.max_header_bytes = 512;
  StartServer();
  TestClient client(server_->port());
  auto request = Request(http::verb::get, "/healthz", "");
  request.set("X-Padding", std::string(2048, 'p'));
  auto reply = client.Send(std::move(request));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 431);
}

TEST_F(ConsoleServerTest, GarbageRequestGets400) {
  StartServer();
  TestClient client(server_->port());
  auto reply = client.SendRaw("NOT HTTP AT ALL\r\n\r\n");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 400);
}

TEST_F(ConsoleServerTest, SilentConnectionIsClosedAfterHeaderTimeout) {
  options_.header_timeout = 200ms;
  StartServer();
  TestClient client(server_->port());
  ASSERT_TRUE(client.connected());
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(ConsoleServerTest, KeptAliveConnectionIsClosedAfterReadTimeout) {
  options_.read_timeout = 200ms;
  StartServer();
  TestClient client(server_->port());
  auto reply = client.Send(Request(http::verb::get, "/healthz", ""));
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->keep_alive);
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(ConsoleServerTest, StopClosesIdleKeepAliveConnectionsPromptly) {
  StartServer();
  TestClient client(server_->port());
  auto reply = client.Send(Request(http::verb::get, "/healthz", ""));
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->keep_alive);

  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(ConsoleServerTest, StopLetsAPartlyReceivedRequestFinish) {
  HeadCountingHandler handler(*api_);
  StartServer(&handler);
  TestClient client(server_->port());
  const std::string body = OneAlertBatch("node-1", "node-1:e:9");
  const std::string head =
      "POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-n1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  // Headers arrive first; the server is stopped while it waits for the body.
  asio::io_context ioc;
  beast::tcp_stream raw(ioc);
  raw.expires_after(kClientTimeout);
  beast::error_code ec;
  raw.socket().connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()), ec);
  ASSERT_FALSE(ec) << ec.message();
  asio::write(raw.socket(), asio::buffer(head), ec);
  ASSERT_FALSE(ec);
  // The server has read the headers when it shows them to the handler; then stop it.
  ASSERT_TRUE(testutil::WaitFor([&] { return handler.heads() == 1; }, kClientTimeout,
                                "the server to read the request headers"));
  server_->Stop();
  asio::write(raw.socket(), asio::buffer(body), ec);
  ASSERT_FALSE(ec);
  http::response<http::string_body> response;
  beast::flat_buffer buffer;
  http::async_read(raw, buffer, response, [&](beast::error_code e, size_t) { ec = e; });
  ioc.run();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(response.result_int(), 200u) << response.body();
  EXPECT_FALSE(response.keep_alive());
  thread_.join();
}

TEST_F(ConsoleServerTest, SecondServerOnSamePortFailsToBind) {
  StartServer();
  ServerOptions clash = options_;
  clash.listen.port = server_->port();
  auto second = CreateServer(clash, *api_, log_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().find(std::to_string(server_->port())), std::string::npos);
}

TEST(ParseListenAddress, AcceptsIpv4AndBracketedIpv6) {
  auto v4 = ParseListenAddress("0.0.0.0:8080");
  ASSERT_TRUE(v4.ok()) << v4.error();
  EXPECT_EQ(v4->host, "0.0.0.0");
  EXPECT_EQ(v4->port, 8080);
  auto v6 = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(v6.ok()) << v6.error();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
}

TEST(ParseListenAddress, RejectsMalformedAddresses) {
  for (const char* text : {"", "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                           "127.0.0.1:80x", "localhost:80", "::1:80", "[::1]80", ":80"}) {
    EXPECT_FALSE(ParseListenAddress(text).ok()) << text;
  }
}

}  // namespace
}  // namespace edge::console
