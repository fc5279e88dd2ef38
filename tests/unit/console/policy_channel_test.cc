// The policy channel end to end over loopback: the real server, PolicyApi and SQLite
// stores in-process, a Beast WebSocket client and the console's own HTTP client.

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "../wait_for.h"
#include "edge/cloudsync/policy_message.h"
#include "edge/console/api.h"
#include "edge/console/client.h"
#include "edge/console/policy_api.h"
#include "edge/console/policy_service.h"
#include "edge/console/policy_store.h"
#include "edge/console/server.h"

namespace edge::console {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kClientTimeout = 5s;

constexpr const char* kValidPolicy = R"(rules:
  - id: hot
    match: "sensors/+/temperature"
    kind: threshold
    above: 80
)";

// A WebSocket client whose every operation has a deadline.
class WsClient {
 public:
  // Returns the HTTP status of the upgrade (101 on success, 0 if no answer).
  int Connect(uint16_t port, const std::string& token) {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).expires_after(kClientTimeout);
    beast::get_lowest_layer(ws_).async_connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
        [&](beast::error_code e) { ec = e; });
    if (!Run() || ec) return 0;
    ws_.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
      if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    }));
    websocket::response_type response;
    ws_.async_handshake(response, "127.0.0.1", std::string(kPolicyChannelPath),
                        [&](beast::error_code e) { ec = e; });
    if (!Run()) return 0;
    beast::get_lowest_layer(ws_).expires_never();
    return static_cast<int>(response.result_int());
  }

  bool Write(const std::string& text) {
    beast::error_code ec;
    ws_.text(true);
    ws_.async_write(asio::buffer(text), [&](beast::error_code e, size_t) { ec = e; });
    return Run() && !ec;
  }

  // The next message, or nullopt when the channel ended (close_code() says how).
  std::optional<std::string> Read() {
    beast::error_code ec;
    buffer_.consume(buffer_.size());
    ws_.async_read(buffer_, [&](beast::error_code e, size_t) { ec = e; });
    if (!Run() || ec) return std::nullopt;
    return beast::buffers_to_string(buffer_.data());
  }

  uint16_t close_code() const { return ws_.reason().code; }

  // Reads for `d` and counts the pings that arrive meanwhile. Leaves a read pending.
  int PingsWithin(std::chrono::milliseconds d) {
    int pings = 0;
    ws_.control_callback([&pings](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::ping) ++pings;
    });
    buffer_.consume(buffer_.size());
    ws_.async_read(buffer_, [](beast::error_code, size_t) {});
    ioc_.restart();
    ioc_.run_for(d);
    return pings;
  }

 private:
  bool Run() {
    ioc_.restart();
    ioc_.run_for(kClientTimeout);
    return ioc_.stopped();
  }

  asio::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_{ioc_};
  beast::flat_buffer buffer_;
};

std::string HelloText(const std::string& node, const json& applied = nullptr) {
  return json{{"type", "hello"},
              {"node", node},
              {"labels", {{"site", "plant-1"}, {"line", "a"}}},
              {"agent_version", "test"},
              {"applied", applied}}
      .dump();
}

class PolicyChannelTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("policy_channel_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string priv = (dir_ / "key.pem").string();
    const std::string pub = (dir_ / "key.pub").string();
    ASSERT_TRUE(cloudsync::GenerateKeyPair(priv, pub).ok());
    auto key = cloudsync::LoadSigningKey(priv);
    ASSERT_TRUE(key.ok()) << key.error();
    key_ = std::move(*key);
    auto verify = cloudsync::LoadVerifyKey(pub);
    ASSERT_TRUE(verify.ok()) << verify.error();
    verify_ = std::move(*verify);
    // The nodes' labels are bound in the token file, as their hellos claim them.
    auto tokens = TokenTable::Parse(
        "node-1 tok-n1 site=plant-1,line=a\nnode-2 tok-n2 site=plant-1,line=*\nadmin tok-admin\n",
        "tokens");
    ASSERT_TRUE(tokens.ok()) << tokens.error();
    tokens_ = std::make_unique<TokenTable>(std::move(tokens.value()));
    const std::string db = (dir_ / "console.db").string();
    auto store = OpenSqliteConsoleStore(db);
    ASSERT_TRUE(store.ok()) << store.error();
    store_ = std::move(*store);
    auto policy_store = OpenSqlitePolicyStore(db);
    ASSERT_TRUE(policy_store.ok()) << policy_store.error();
    policy_store_ = std::move(*policy_store);
    service_ = std::make_unique<PolicyService>(*policy_store_, clock_, log_, key_.get());
    ASSERT_TRUE(service_->Load().ok());
    policy_api_ = std::make_unique<PolicyApi>(*tokens_, *service_, log_);
    api_ = std::make_unique<ConsoleApi>(*tokens_, *store_, clock_, log_, ApiOptions{},
                                        policy_api_.get());
  }

  void StartServer() {
    auto server = CreateServer(options_, *api_, log_, policy_api_.get());
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(server.value());
    base_.host = "127.0.0.1";
    base_.port = std::to_string(server_->port());
    thread_ = std::thread([this] { server_->Run(); });
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    api_.reset();
    policy_api_.reset();
    service_.reset();
    policy_store_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  ClientReply Call(const char* method, const std::string& path, const std::string& token,
                   const std::string& body = {}) {
    auto reply = HttpCall(base_, method, path, token, body, 5000ms);
    EXPECT_TRUE(reply.ok()) << reply.error();
    return reply.ok() ? *reply : ClientReply{};
  }

  void PushPolicy(const std::string& selector = "all") {
    const ClientReply r = Call("PUT", "/v1/policies/boilers", "tok-admin",
                               json{{"body", kValidPolicy}, {"selector", selector}}.dump());
    ASSERT_EQ(r.status, 201) << r.body;
  }

  // node-1's entry in GET /v1/policies/boilers, once `pred` holds for it (or the last one).
  json NodeStatus(const std::function<bool(const json&)>& pred) {
    json last;
    edge::testutil::WaitFor(
        [&] {
          const ClientReply r = Call("GET", "/v1/policies/boilers", "tok-admin");
          const json view = json::parse(r.body, nullptr, false);
          if (view.is_object() && view.contains("nodes")) {
            for (const json& n : view["nodes"]) {
              if (n.value("node", "") == "node-1") last = n;
            }
          }
          return !last.is_null() && pred(last);
        },
        2s, "node-1's policy status");
    return last;
  }

  // True once edge_console_policy_channels reads `n` (hellos are handled asynchronously).
  bool WaitForChannels(int n) {
    const std::string line = "edge_console_policy_channels " + std::to_string(n) + "\n";
    return edge::testutil::WaitFor(
        [&] { return Call("GET", "/metrics", "").body.find(line) != std::string::npos; }, 5s,
        "edge_console_policy_channels " + std::to_string(n));
  }

  std::filesystem::path dir_;
  SystemClock clock_;
  NullLog log_;
  ServerOptions options_;
  std::unique_ptr<cloudsync::SigningKey> key_;
  std::unique_ptr<cloudsync::VerifyKey> verify_;
  std::unique_ptr<TokenTable> tokens_;
  std::unique_ptr<ConsoleStore> store_;
  std::unique_ptr<PolicyStore> policy_store_;
  std::unique_ptr<PolicyService> service_;
  std::unique_ptr<PolicyApi> policy_api_;
  std::unique_ptr<ConsoleApi> api_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  BaseUrl base_;
};

TEST_F(PolicyChannelTest, HelloGetsTheSignedReleasedPolicyAndReportShowsInStatus) {
  StartServer();
  PushPolicy("site=plant-1");
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  ASSERT_TRUE(ws.Write(HelloText("node-1")));
  const auto message = ws.Read();
  ASSERT_TRUE(message.has_value());
  auto doc = cloudsync::DecodePolicyDocument(*message);
  ASSERT_TRUE(doc.ok()) << doc.error();
  EXPECT_EQ(doc->name, "boilers");
  EXPECT_EQ(doc->version, 1);
  EXPECT_EQ(doc->body, kValidPolicy);
  EXPECT_TRUE(cloudsync::VerifyDocument(*verify_, *doc).ok());

  const json pending = NodeStatus([](const json& n) { return n["connected"] == true; });
  EXPECT_EQ(pending["state"], "pending");
  EXPECT_EQ(pending["released_version"], 1);
  ASSERT_TRUE(ws.Write(cloudsync::EncodePolicyReport({"boilers", 1, "applied", "", ""})));
  const json applied = NodeStatus([](const json& n) { return n["state"] == "applied"; });
  EXPECT_EQ(applied["state"], "applied");
  EXPECT_EQ(applied["applied_version"], 1);
  EXPECT_EQ(applied["labels"]["line"], "a");

  const ClientReply metrics = Call("GET", "/metrics", "");
  EXPECT_NE(metrics.body.find("edge_console_policy_channels 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("edge_console_policy_reports_total{state=\"applied\"} 1"),
            std::string::npos);
}

TEST_F(PolicyChannelTest, NewVersionIsPushedToAnOpenChannel) {
  StartServer();
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  ASSERT_TRUE(ws.Write(HelloText("node-1")));
  ASSERT_TRUE(WaitForChannels(1));
  PushPolicy();
  const auto message = ws.Read();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(cloudsync::DecodePolicyDocument(*message)->version, 1);
}

TEST_F(PolicyChannelTest, HelloNamingTheReleasedVersionGetsNothing) {
  StartServer();
  PushPolicy();
  PushPolicy();
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  ASSERT_TRUE(ws.Write(HelloText("node-1", {{"name", "boilers"}, {"version", 2}})));
  const json n = NodeStatus([](const json& s) { return s["connected"] == true; });
  EXPECT_EQ(n["state"], "applied");
  PushPolicy();
  const auto message = ws.Read();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(cloudsync::DecodePolicyDocument(*message)->version, 3) << "v2 was not re-sent";
}

TEST_F(PolicyChannelTest, HelloForAnotherNodeIsClosedWith1008) {
  StartServer();
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  ASSERT_TRUE(ws.Write(HelloText("node-2")));
  EXPECT_FALSE(ws.Read().has_value());
  EXPECT_EQ(ws.close_code(), 1008);
}

TEST_F(PolicyChannelTest, MalformedFirstMessageIsClosedWith1008) {
  StartServer();
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  ASSERT_TRUE(ws.Write("{\"type\":\"report\",\"name\":\"x\""));
  EXPECT_FALSE(ws.Read().has_value());
  EXPECT_EQ(ws.close_code(), 1008);
}

TEST_F(PolicyChannelTest, SilentChannelIsClosedAfterTheHelloTimeout) {
  options_.channel_hello_timeout = 200ms;
  StartServer();
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(ws.Read().has_value());
  EXPECT_EQ(ws.close_code(), 1008);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(PolicyChannelTest, ServerPingsOnItsInterval) {
  options_.channel_ping_interval = 50ms;
  StartServer();
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  ASSERT_TRUE(ws.Write(HelloText("node-1")));
  EXPECT_GE(ws.PingsWithin(500ms), 3);
}

TEST_F(PolicyChannelTest, OversizedMessageClosesTheChannel) {
  options_.channel_max_message = 1024;
  StartServer();
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  ASSERT_TRUE(ws.Write(HelloText("node-1")));
  ASSERT_TRUE(WaitForChannels(1));
  ws.Write(std::string(4096, 'x'));
  EXPECT_FALSE(ws.Read().has_value());
  EXPECT_EQ(ws.close_code(), 1009);
  EXPECT_TRUE(WaitForChannels(0));
}

TEST_F(PolicyChannelTest, OutgoingQueueOverflowDropsTheChannel) {
  options_.channel_queue_messages = 0;  // the first message already overflows
  StartServer();
  PushPolicy();
  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "tok-n1"), 101);
  ASSERT_TRUE(ws.Write(HelloText("node-1")));
  EXPECT_FALSE(ws.Read().has_value());
  EXPECT_EQ(ws.close_code(), 0) << "dropped, not closed politely";
  EXPECT_TRUE(WaitForChannels(0));
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200) << "the console serves on";
}

TEST_F(PolicyChannelTest, UpgradeNeedsANodeToken) {
  StartServer();
  EXPECT_EQ(WsClient().Connect(server_->port(), ""), 401);
  EXPECT_EQ(WsClient().Connect(server_->port(), "wrong"), 401);
  EXPECT_EQ(WsClient().Connect(server_->port(), "tok-admin"), 403);
  EXPECT_EQ(Call("GET", std::string(kPolicyChannelPath), "tok-n1").status, 426)
      << "a plain GET is told to upgrade (agents then fall back to polling)";
}

TEST_F(PolicyChannelTest, PollAnswers200Then204AndReportIs204) {
  StartServer();
  EXPECT_EQ(Call("POST", "/v1/policy/poll", "tok-n1", HelloText("node-1")).status, 204);
  PushPolicy();
  const ClientReply first = Call("POST", "/v1/policy/poll", "tok-n1", HelloText("node-1"));
  ASSERT_EQ(first.status, 200);
  auto doc = cloudsync::DecodePolicyDocument(first.body);
  ASSERT_TRUE(doc.ok()) << doc.error();
  EXPECT_TRUE(cloudsync::VerifyDocument(*verify_, *doc).ok());
  EXPECT_EQ(Call("POST", "/v1/policy/poll", "tok-n1",
                 HelloText("node-1", {{"name", "boilers"}, {"version", 1}}))
                .status,
            204);
  EXPECT_EQ(Call("POST", "/v1/policy/report", "tok-n1",
                 cloudsync::EncodePolicyReport(
                     {"boilers", 1, "rejected", "invalid", "console:boilers@1:1:1: bad"}))
                .status,
            204);
  const json n = NodeStatus([](const json& s) { return s["reason"] == "invalid"; });
  EXPECT_EQ(n["reason"], "invalid");
  EXPECT_EQ(n["detail"], "console:boilers@1:1:1: bad");
  EXPECT_EQ(n["connected"], false);

  EXPECT_EQ(Call("POST", "/v1/policy/poll", "tok-n1", HelloText("node-2")).status, 403);
  EXPECT_EQ(Call("POST", "/v1/policy/poll", "tok-n1", "{").status, 400);
  EXPECT_EQ(Call("POST", "/v1/policy/report", "tok-n1", "{\"type\":\"report\"}").status, 400);
  EXPECT_EQ(Call("POST", "/v1/policy/poll", "", HelloText("node-1")).status, 401);
  EXPECT_EQ(Call("GET", "/v1/policy/poll", "tok-n1").status, 405);
}

TEST_F(PolicyChannelTest, AdminApiValidatesAndNeedsTheAdminToken) {
  StartServer();
  EXPECT_EQ(Call("GET", "/v1/policies", "tok-n1").status, 403);
  EXPECT_EQ(Call("GET", "/v1/policies", "").status, 401);
  const ClientReply bad = Call("PUT", "/v1/policies/boilers", "tok-admin",
                               json{{"body", "rules:\n  - id: x\n    kindd: y\n"}}.dump());
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("console:boilers@1:"), std::string::npos) << bad.body;
  EXPECT_EQ(Call("PUT", "/v1/policies/boilers", "tok-admin", "[]").status, 400);
  EXPECT_EQ(Call("PUT", "/v1/policies/bad%20name", "tok-admin", "{}").status, 400);
  EXPECT_EQ(Call("GET", "/v1/policies/none", "tok-admin").status, 404);
  PushPolicy();
  const ClientReply back =
      Call("POST", "/v1/policies/boilers/rollback", "tok-admin", json{{"to", 1}}.dump());
  ASSERT_EQ(back.status, 201) << back.body;
  EXPECT_EQ(json::parse(back.body)["version"], 2);
  const json list = json::parse(Call("GET", "/v1/policies", "tok-admin").body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["version"], 2);
  EXPECT_EQ(list[0]["rollout"], "released");
}

}  // namespace
}  // namespace edge::console
