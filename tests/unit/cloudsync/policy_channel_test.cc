// The policy channel client against a scripted console on 127.0.0.1 (Beast, in this
// process, one thread per connection). Timers are real: options use milliseconds.

#include "edge/cloudsync/policy_channel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace edge::cloudsync {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;
using std::chrono::milliseconds;

class FakeCounter final : public CounterHandle {
 public:
  void Inc(double by) override { value_ = value_ + by; }
  double Value() const override { return value_; }

 private:
  std::atomic<double> value_{0};
};

class FakeGauge final : public GaugeHandle {
 public:
  void Set(double v) override { value_ = v; }
  void Add(double by) override { value_ = value_ + by; }
  double Value() const override { return value_; }

 private:
  std::atomic<double> value_{0};
};

class FakeMetrics final : public Metrics {
 public:
  CounterHandle& Counter(const std::string& name, const std::string&,
                         const Labels& labels) override {
    std::lock_guard lock(mu_);
    auto& slot = counters_[Key(name, labels)];
    if (!slot) slot = std::make_unique<FakeCounter>();
    return *slot;
  }
  GaugeHandle& Gauge(const std::string& name, const std::string&, const Labels& labels) override {
    std::lock_guard lock(mu_);
    auto& slot = gauges_[Key(name, labels)];
    if (!slot) slot = std::make_unique<FakeGauge>();
    return *slot;
  }

 private:
  static std::string Key(const std::string& name, const Labels& labels) {
    std::string key = name;
    for (const auto& [k, v] : labels) key += "|" + k + "=" + v;
    return key;
  }
  std::mutex mu_;  // guards both maps
  std::map<std::string, std::unique_ptr<FakeCounter>> counters_;
  std::map<std::string, std::unique_ptr<FakeGauge>> gauges_;
};

// What the scripted console saw, in order.
struct Seen {
  std::string what;    // "upgrade", "hello", "report", "poll", "report-post"
  std::string detail;  // the message, or the Authorization header for "upgrade"
};

// A console on 127.0.0.1 that runs `script` on each accepted connection, in a thread of
// its own; the connection number (0-based) is passed along.
class ScriptedConsole {
 public:
  using Script = std::function<void(ScriptedConsole&, tcp::socket, int)>;

  explicit ScriptedConsole(Script script) : script_(std::move(script)) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] {
      for (int n = 0;; ++n) {
        beast::error_code ec;
        tcp::socket socket(io_);
        acceptor_.accept(socket, ec);
        if (ec || closing_) return;
        std::lock_guard lock(mu_);
        threads_.emplace_back([this, s = std::move(socket), n]() mutable {
          try {
            script_(*this, std::move(s), n);
          } catch (const std::exception&) {
            // The client went away mid-script: that is what several tests do.
          }
        });
      }
    });
  }

  ~ScriptedConsole() {
    closing_ = true;
    beast::error_code ignored;
    // Wakes the blocking accept.
    tcp::socket poke(io_);
    poke.connect({asio::ip::make_address("127.0.0.1"), port_}, ignored);
    accept_thread_.join();
    std::lock_guard lock(mu_);
    for (auto& t : threads_) t.join();
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/base"; }

  void Record(std::string what, std::string detail) {
    std::lock_guard lock(seen_mu_);
    seen_.push_back({std::move(what), std::move(detail)});
    seen_cv_.notify_all();
  }

  // Waits until `count` events named `what` were seen; returns them all.
  std::vector<Seen> WaitFor(const std::string& what, size_t count,
                            milliseconds timeout = milliseconds(5000)) {
    std::unique_lock lock(seen_mu_);
    std::vector<Seen> matching;
    seen_cv_.wait_for(lock, timeout, [&] {
      matching.clear();
      for (const Seen& s : seen_) {
        if (s.what == what) matching.push_back(s);
      }
      return matching.size() >= count;
    });
    return matching;
  }

  size_t Count(const std::string& what) {
    std::lock_guard lock(seen_mu_);
    size_t n = 0;
    for (const Seen& s : seen_) n += s.what == what ? 1 : 0;
    return n;
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  unsigned short port_ = 0;
  Script script_;
  std::atomic<bool> closing_{false};
  std::thread accept_thread_;
  std::mutex mu_;  // guards threads_
  std::vector<std::thread> threads_;
  std::mutex seen_mu_;  // guards seen_
  std::condition_variable seen_cv_;
  std::vector<Seen> seen_;
};

// Reads the upgrade request, records it and accepts the WebSocket.
websocket::stream<tcp::socket> Accept(ScriptedConsole& console, tcp::socket socket) {
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  http::read(socket, buffer, req);
  console.Record("upgrade",
                 std::string(req[http::field::authorization]) + " " + std::string(req.target()));
  websocket::stream<tcp::socket> ws(std::move(socket));
  ws.accept(req);
  return ws;
}

std::string ReadText(websocket::stream<tcp::socket>& ws) {
  beast::flat_buffer buffer;
  ws.read(buffer);
  return beast::buffers_to_string(buffer.data());
}

void SendText(websocket::stream<tcp::socket>& ws, const std::string& text) {
  ws.text(true);
  ws.write(asio::buffer(text));
}

// Blocks until the client closes the connection.
void WaitForClose(websocket::stream<tcp::socket>& ws) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (!ec) ws.read(buffer, ec);
}

PolicyDocument Doc(const std::string& name, int64_t version) {
  PolicyDocument doc;
  doc.name = name;
  doc.version = version;
  doc.body = "rules: []\n";
  doc.signature = std::string(86, 'A') + "==";
  doc.created_ms = 1'764'167'000'123;
  return doc;
}

class PolicyChannelTest : public ::testing::Test {
 protected:
  PolicyChannelTest() {
    std::filesystem::create_directories(dir_);
    std::ofstream(token_path_) << "secret-token\n";
    options_.node_id = "node-1";
    options_.token_file = token_path_;
    options_.labels = {{"site", "plant-1"}, {"line", "a"}};
    options_.agent_version = "9.9.9";
    options_.timeout_ms = 2000;
    options_.backoff_initial_ms = 10;
    options_.backoff_max_ms = 40;
    options_.poll_interval_ms = 20;
    options_.jitter_seed = 7;
  }

  ~PolicyChannelTest() override {
    if (channel_) {
      std::promise<void> stopped;
      channel_->Stop([&stopped] { stopped.set_value(); });
      stopped.get_future().wait_for(milliseconds(3000));
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    channel_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The console outlives the channel: the fixture stops the channel first.
  ScriptedConsole& Serve(ScriptedConsole::Script script) {
    console_ = std::make_unique<ScriptedConsole>(std::move(script));
    return *console_;
  }

  void Start(const ScriptedConsole& console) {
    options_.console_url = console.Url();
    channel_ = CreatePolicyChannel(
        io_, options_,
        [this](const PolicyDocument& doc) {
          std::lock_guard lock(mu_);
          judged_.push_back(doc);
          PolicyReport report{doc.name, doc.version, "applied", "", ""};
          if (doc.name == "bad") report = {doc.name, doc.version, "rejected", "invalid", "x:1:1"};
          return report;
        },
        [] { return std::make_optional(std::make_pair(std::string("boilers"), int64_t{7})); },
        metrics_, clock_);
    thread_ = std::thread([this] { io_.run(); });
    channel_->Start();
  }

  size_t Judged() {
    std::lock_guard lock(mu_);
    return judged_.size();
  }

  double Malformed() {
    return metrics_.Counter("edge_agent_policy_channel_malformed_total", "", {}).Value();
  }

  std::string dir_ = (std::filesystem::temp_directory_path() /
                      ("policy-channel-test-" + std::to_string(::getpid()) + "-" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                         .string();
  std::string token_path_ = dir_ + "/token";
  PolicyChannelOptions options_;
  FakeMetrics metrics_;
  FakeClock clock_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread thread_;
  std::unique_ptr<PolicyChannel> channel_;
  std::unique_ptr<ScriptedConsole> console_;
  std::mutex mu_;  // guards judged_
  std::vector<PolicyDocument> judged_;
};

TEST_F(PolicyChannelTest, SendsHelloWithNodeLabelsVersionAndApplied) {
  ScriptedConsole& server = Serve([](ScriptedConsole& console, tcp::socket socket, int) {
    auto ws = Accept(console, std::move(socket));
    console.Record("hello", ReadText(ws));
    WaitForClose(ws);
  });
  Start(server);
  auto upgrades = server.WaitFor("upgrade", 1);
  ASSERT_EQ(upgrades.size(), 1u);
  EXPECT_EQ(upgrades[0].detail, "Bearer secret-token /base/v1/policy/channel");
  auto hellos = server.WaitFor("hello", 1);
  ASSERT_EQ(hellos.size(), 1u);
  const Json hello = Json::parse(hellos[0].detail);
  EXPECT_EQ(hello["type"], "hello");
  EXPECT_EQ(hello["node"], "node-1");
  EXPECT_EQ(hello["labels"], Json({{"site", "plant-1"}, {"line", "a"}}));
  EXPECT_EQ(hello["agent_version"], "9.9.9");
  EXPECT_EQ(hello["applied"], Json({{"name", "boilers"}, {"version", 7}}));
  EXPECT_TRUE(channel_->Connected());
  EXPECT_EQ(metrics_.Gauge("edge_agent_policy_channel_connected", "", {}).Value(), 1);
}

TEST_F(PolicyChannelTest, JudgesEachPolicyAndSendsTheReportBack) {
  ScriptedConsole& server = Serve([](ScriptedConsole& console, tcp::socket socket, int) {
    auto ws = Accept(console, std::move(socket));
    (void)ReadText(ws);
    SendText(ws, EncodePolicyDocument(Doc("boilers", 8)));
    console.Record("report", ReadText(ws));
    SendText(ws, EncodePolicyDocument(Doc("bad", 1)));
    console.Record("report", ReadText(ws));
    WaitForClose(ws);
  });
  Start(server);
  auto reports = server.WaitFor("report", 2);
  ASSERT_EQ(reports.size(), 2u);
  auto first = DecodePolicyReport(reports[0].detail);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(first->name, "boilers");
  EXPECT_EQ(first->version, 8);
  EXPECT_EQ(first->state, "applied");
  auto second = DecodePolicyReport(reports[1].detail);
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_EQ(second->state, "rejected");
  EXPECT_EQ(second->reason, "invalid");
  EXPECT_EQ(Judged(), 2u);
}

TEST_F(PolicyChannelTest, ReconnectsAfterTheConsoleDropsTheConnection) {
  ScriptedConsole& server = Serve([](ScriptedConsole& console, tcp::socket socket, int n) {
    auto ws = Accept(console, std::move(socket));
    console.Record("hello", ReadText(ws));
    if (n == 0) return;  // drops the TCP connection without a close frame
    WaitForClose(ws);
  });
  Start(server);
  EXPECT_EQ(server.WaitFor("hello", 2).size(), 2u);
}

TEST_F(PolicyChannelTest, ReconnectsWhenNothingArrivesWithinTheIdleTimeout) {
  options_.idle_timeout_ms = 150;
  ScriptedConsole& server = Serve([](ScriptedConsole& console, tcp::socket socket, int) {
    auto ws = Accept(console, std::move(socket));
    console.Record("hello", ReadText(ws));
    WaitForClose(ws);  // silent: no pings
  });
  const auto t0 = std::chrono::steady_clock::now();
  Start(server);
  EXPECT_EQ(server.WaitFor("hello", 2).size(), 2u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(150));
}

TEST_F(PolicyChannelTest, PingsKeepAnIdleChannelOpen) {
  options_.idle_timeout_ms = 300;
  ScriptedConsole& server = Serve([](ScriptedConsole& console, tcp::socket socket, int) {
    auto ws = Accept(console, std::move(socket));
    console.Record("hello", ReadText(ws));
    for (int i = 0; i < 8; ++i) {
      std::this_thread::sleep_for(milliseconds(100));
      beast::error_code ec;
      ws.ping({}, ec);
      if (ec) return;
    }
    console.Record("done", "");
    WaitForClose(ws);
  });
  Start(server);
  ASSERT_EQ(server.WaitFor("done", 1).size(), 1u);
  EXPECT_EQ(server.Count("hello"), 1u);  // 800 ms without a message, but pings: no redial
}

TEST_F(PolicyChannelTest, FallsBackToPollingWhenTheUpgradeIsRefused) {
  options_.polls_per_websocket_try = 3;
  ScriptedConsole& server = Serve([](ScriptedConsole& console, tcp::socket socket, int) {
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req);
    http::response<http::string_body> res;
    res.version(11);
    res.keep_alive(false);
    if (req.target() == "/base/v1/policy/channel") {
      console.Record("upgrade", std::string(req.target()));
      res.result(http::status::not_found);
      res.body() = "not found";
    } else if (req.target() == "/base/v1/policy/poll") {
      const bool first = console.Count("poll") == 0;
      console.Record("poll", req.body());
      if (first) {
        res.result(http::status::ok);
        res.body() = EncodePolicyDocument(Doc("boilers", 9));
      } else {
        res.result(http::status::no_content);
      }
    } else if (req.target() == "/base/v1/policy/report") {
      console.Record("report", req.body());
      res.result(http::status::no_content);
    } else {
      res.result(http::status::bad_request);
    }
    res.prepare_payload();
    http::write(socket, res);
  });
  Start(server);
  auto reports = server.WaitFor("report", 1);
  ASSERT_EQ(reports.size(), 1u);
  auto report = DecodePolicyReport(reports[0].detail);
  ASSERT_TRUE(report.ok()) << report.error();
  EXPECT_EQ(report->version, 9);
  EXPECT_EQ(report->state, "applied");
  auto polls = server.WaitFor("poll", 1);
  ASSERT_FALSE(polls.empty());
  EXPECT_EQ(Json::parse(polls[0].detail)["node"], "node-1");
  // After every third poll (this test's setting) the WebSocket is tried again.
  EXPECT_GE(server.WaitFor("upgrade", 3).size(), 3u);
  EXPECT_GE(server.Count("poll"), 6u);
  EXPECT_FALSE(channel_->Connected());
}

TEST_F(PolicyChannelTest, RetriesAfterA401WithTheTokenReadAgain) {
  ScriptedConsole& server = Serve([this](ScriptedConsole& console, tcp::socket socket, int n) {
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req);
    console.Record("upgrade", std::string(req[http::field::authorization]));
    if (n == 0) {
      std::ofstream(token_path_) << "new-token\n";
      http::response<http::string_body> res{http::status::unauthorized, 11};
      res.prepare_payload();
      http::write(socket, res);
      return;
    }
    websocket::stream<tcp::socket> ws(std::move(socket));
    ws.accept(req);
    WaitForClose(ws);
  });
  Start(server);
  auto upgrades = server.WaitFor("upgrade", 2);
  ASSERT_EQ(upgrades.size(), 2u);
  EXPECT_EQ(upgrades[0].detail, "Bearer secret-token");
  EXPECT_EQ(upgrades[1].detail, "Bearer new-token");
}

TEST_F(PolicyChannelTest, OversizedBinaryAndGarbageMessagesDoNotStopIt) {
  options_.max_message_bytes = 1024;
  ScriptedConsole& server = Serve([](ScriptedConsole& console, tcp::socket socket, int n) {
    auto ws = Accept(console, std::move(socket));
    console.Record("hello", ReadText(ws));
    if (n == 0) {
      SendText(ws, "not json at all {");
      ws.binary(true);
      ws.write(asio::buffer(std::string("\x01\x02\x03", 3)));
      SendText(ws, R"({"type":"policy","name":"x"})");
      SendText(ws, R"({"type":"unknown-kind"})");
      SendText(ws, std::string(4096, 'x'));  // over the limit: the client drops the channel
      WaitForClose(ws);
      return;
    }
    SendText(ws, EncodePolicyDocument(Doc("boilers", 3)));
    console.Record("report", ReadText(ws));
    WaitForClose(ws);
  });
  Start(server);
  auto reports = server.WaitFor("report", 1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(Json::parse(reports[0].detail)["version"], 3);
  EXPECT_EQ(Malformed(), 3);  // garbage, binary, policy without its fields
  EXPECT_EQ(Judged(), 1u);
}

TEST_F(PolicyChannelTest, StopEndsTheLoopAndRunsTheCallback) {
  ScriptedConsole& server = Serve([](ScriptedConsole& console, tcp::socket socket, int) {
    auto ws = Accept(console, std::move(socket));
    console.Record("hello", ReadText(ws));
    WaitForClose(ws);
  });
  Start(server);
  ASSERT_EQ(server.WaitFor("hello", 1).size(), 1u);
  std::promise<void> stopped;
  channel_->Stop([&stopped] { stopped.set_value(); });
  EXPECT_EQ(stopped.get_future().wait_for(milliseconds(2000)), std::future_status::ready);
  EXPECT_FALSE(channel_->Connected());
}

TEST(PolicyChannelOptions, ValidationNamesTheProblem) {
  PolicyChannelOptions options;
  options.console_url = "ftp://x";
  EXPECT_FALSE(ValidatePolicyChannelOptions(options).ok());
  options.console_url = "http://127.0.0.1:1";
  options.node_id = "n";
  options.token_file = "/nonexistent/token";
  const Status s = ValidatePolicyChannelOptions(options);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("token"), std::string::npos);
}

}  // namespace
}  // namespace edge::cloudsync
