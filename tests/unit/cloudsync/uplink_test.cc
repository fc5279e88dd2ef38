// Uplink against a real HTTP server on 127.0.0.1 (Beast, in this process) and an in-memory
// outbox. Timers are real: options use millisecond backoffs so each test stays short.

#include "edge/cloudsync/uplink.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "../wait_for.h"
#include "edge/cloudsync/backoff.h"
#include "edge/cloudsync/gzip.h"
#include "edge/cloudsync/tls_context.h"

namespace edge::cloudsync {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr char kToken[] = "secret-token";

// ---------------------------------------------------------------------------------------
// Test doubles.

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
  double CounterValue(const std::string& name, const Labels& labels = {}) {
    return Counter(name, "", labels).Value();
  }
  double Uploads(const std::string& result) {
    return CounterValue("edge_agent_uploads_total", {{"result", result}});
  }
  double GaugeValue(const std::string& name) { return Gauge(name, "", {}).Value(); }

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

// Priorities as the agent's store uses them: higher is fetched first.
constexpr int kRollupPriority = 1;
constexpr int kAlertPriority = 2;

class FakeOutbox final : public OutboxSource {
 public:
  // Adds `count` rows; returns the sequence number of the first.
  int64_t Add(int count, size_t payload_pad = 0, const std::string& kind = "alert",
              int priority = kAlertPriority) {
    std::lock_guard lock(mu_);
    const int64_t first = next_seq_;
    for (int i = 0; i < count; ++i) {
      const int64_t seq = next_seq_++;
      Row row;
      row.priority = priority;
      row.item.seq = seq;
      row.item.id = "node-1:00ff:" + std::to_string(seq);
      row.item.kind = kind;
      row.item.created_ms = 1'700'000'000'000 + seq;
      row.item.payload_json = R"({"rule":"r1","value":)" + std::to_string(seq) + R"(,"pad":")" +
                              std::string(payload_pad, 'p') + R"("})";
      rows_[seq] = std::move(row);
    }
    return first;
  }
  // Highest priority first, then oldest, like StoreReader::Fetch.
  Result<std::vector<OutboxItem>> Fetch(size_t max_items, size_t max_bytes) override {
    std::lock_guard lock(mu_);
    ++fetches_;
    std::vector<const Row*> order;
    for (const auto& [seq, row] : rows_) order.push_back(&row);
    std::stable_sort(order.begin(), order.end(),
                     [](const Row* a, const Row* b) { return a->priority > b->priority; });
    std::vector<OutboxItem> out;
    size_t bytes = 0;
    for (const Row* row : order) {
      if (out.size() >= max_items) break;
      if (!out.empty() && bytes + row->item.payload_json.size() > max_bytes) break;
      bytes += row->item.payload_json.size();
      out.push_back(row->item);
    }
    return out;
  }
  Status Ack(const std::vector<int64_t>& seqs) override {
    std::lock_guard lock(mu_);
    ack_calls_.push_back(seqs);
    for (int64_t seq : seqs) rows_.erase(seq);
    return Status::Ok();
  }
  Result<int64_t> DeadLetter(const std::vector<int64_t>& seqs, std::string_view reason) override {
    std::lock_guard lock(mu_);
    if (fail_dead_letter_) return Status::Error("disk I/O error");
    int64_t moved = 0;
    for (int64_t seq : seqs) {
      if (rows_.erase(seq) == 1) {
        dead_letters_[seq] = std::string(reason);
        ++moved;
      }
    }
    return moved;
  }
  void FailDeadLetter(bool fail) {
    std::lock_guard lock(mu_);
    fail_dead_letter_ = fail;
  }
  std::map<int64_t, std::string> DeadLetters() {
    std::lock_guard lock(mu_);
    return dead_letters_;
  }
  std::set<int64_t> AckedSeqs() {
    std::lock_guard lock(mu_);
    std::set<int64_t> out;
    for (const auto& call : ack_calls_) out.insert(call.begin(), call.end());
    return out;
  }
  size_t Size() {
    std::lock_guard lock(mu_);
    return rows_.size();
  }
  std::set<int64_t> Seqs() {
    std::lock_guard lock(mu_);
    std::set<int64_t> out;
    for (const auto& [seq, row] : rows_) out.insert(seq);
    return out;
  }
  std::vector<std::vector<int64_t>> AckCalls() {
    std::lock_guard lock(mu_);
    return ack_calls_;
  }
  int Fetches() {
    std::lock_guard lock(mu_);
    return fetches_;
  }

 private:
  struct Row {
    OutboxItem item;
    int priority = 0;
  };
  std::mutex mu_;  // guards everything below
  std::map<int64_t, Row> rows_;
  int64_t next_seq_ = 1;
  std::vector<std::vector<int64_t>> ack_calls_;
  std::map<int64_t, std::string> dead_letters_;  // seq -> reason
  bool fail_dead_letter_ = false;
  int fetches_ = 0;
};

// ---------------------------------------------------------------------------------------
// A small console: real HTTP/1.1 with keep-alive over loopback, on its own thread.

struct ConsoleRequest {
  std::string target;
  std::string authorization;
  std::string content_encoding;
  nlohmann::json json;  // decoded body (discarded if not JSON)
  Steady::time_point at;
};

struct ConsoleReply {
  unsigned status = 200;
  std::string body;
  std::string retry_after;
  bool hang = false;   // read the request, never answer
  bool close = false;  // Connection: close after answering
};

ConsoleReply Reply(unsigned status, std::string body, std::string retry_after = "") {
  ConsoleReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.retry_after = std::move(retry_after);
  return reply;
}

ConsoleReply Hang() {
  ConsoleReply reply;
  reply.hang = true;
  return reply;
}

// Acks every id in the batch, like the real console.
ConsoleReply AckAll(const ConsoleRequest& req) {
  nlohmann::json acked = nlohmann::json::array();
  for (const auto& item : req.json["items"]) acked.push_back(item["id"]);
  return Reply(200, nlohmann::json{{"accepted", acked.size()}, {"acked", acked}}.dump());
}

// A self-signed certificate for 127.0.0.1 and localhost, made fresh for each test.
struct TestCert {
  std::string cert_pem;
  std::string key_pem;
};

TestCert MakeSelfSignedCert(const char* common_name) {
  TestCert out;
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long cert_len = BIO_get_mem_data(bio, &data);
  out.cert_pem.assign(data, static_cast<size_t>(cert_len));
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  const long key_len = BIO_get_mem_data(bio, &data);
  out.key_pem.assign(data, static_cast<size_t>(key_len));
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

class TestConsole {
 public:
  using Handler = std::function<ConsoleReply(const ConsoleRequest&, int index)>;

  // With a certificate the console speaks HTTPS.
  explicit TestConsole(uint16_t port = 0, const TestCert* cert = nullptr) : acceptor_(io_) {
    if (cert != nullptr) {
      tls_.emplace(asio::ssl::context::tls_server);
      tls_->use_certificate_chain(asio::buffer(cert->cert_pem));
      tls_->use_private_key(asio::buffer(cert->key_pem), asio::ssl::context::pem);
    }
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestConsole() {
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  // Mutual TLS: the handshake needs a client certificate that `trusted_pem` verifies. Call
  // before any client connects.
  void RequireClientCert(const std::string& trusted_pem) {
    tls_->add_certificate_authority(asio::buffer(trusted_pem));
    tls_->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }
  void SetHandler(Handler handler) {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
  }
  std::vector<ConsoleRequest> Requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t RequestCount() {
    std::lock_guard lock(mu_);
    return requests_.size();
  }
  int Connections() const { return connections_.load(); }
  int FailedHandshakes() const { return failed_handshakes_.load(); }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) co_return;
      ++connections_;
      if (tls_) {
        asio::co_spawn(io_, ServeTls(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
      }
    }
  }

  asio::awaitable<void> ServeTls(tcp::socket socket) {
    asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kUseTuple);
    if (ec) {
      ++failed_handshakes_;
      co_return;
    }
    co_await Serve(stream);
  }

  asio::awaitable<void> Serve(tcp::socket socket) { co_await Serve<tcp::socket>(socket); }

  template <typename Stream>
  asio::awaitable<void> Serve(Stream& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(socket, buffer, req, kUseTuple);
      if (ec) co_return;
      ConsoleRequest record;
      record.target = std::string(req.target());
      record.authorization = std::string(req[http::field::authorization]);
      record.content_encoding = std::string(req[http::field::content_encoding]);
      record.at = Steady::now();
      std::string body = req.body();
      if (record.content_encoding == "gzip") {
        auto plain = GzipDecompress(body, 64 << 20);
        body = plain.ok() ? plain.value() : std::string();
      } else if (record.content_encoding == kDictEncoding) {
        auto plain = DictDecompress(body, 64 << 20);
        body = plain.ok() ? plain.value() : std::string();
      }
      record.json = nlohmann::json::parse(body, nullptr, false);
      ConsoleReply reply;
      {
        std::lock_guard lock(mu_);
        const int index = static_cast<int>(requests_.size());
        requests_.push_back(record);
        if (record.authorization != std::string("Bearer ") + kToken) {
          reply = Reply(401, R"({"error":"unknown token"})");
        } else if (handler_) {
          reply = handler_(record, index);
        } else if (record.target == "/v1/status") {
          reply = Reply(200, R"({"stored":true})");
        } else {
          reply = AckAll(record);
        }
      }
      if (reply.hang) {
        asio::steady_timer forever(io_, std::chrono::hours(1));
        co_await forever.async_wait(kUseTuple);
        co_return;
      }
      http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
      res.set(http::field::content_type, "application/json");
      if (!reply.retry_after.empty()) res.set(http::field::retry_after, reply.retry_after);
      res.keep_alive(!reply.close && req.keep_alive());
      res.body() = reply.body;
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(socket, res, kUseTuple);
      if (wec || !res.keep_alive()) co_return;
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> connections_{0};
  std::atomic<int> failed_handshakes_{0};
  std::optional<asio::ssl::context> tls_;
  std::mutex mu_;  // guards handler_ and requests_
  Handler handler_;
  std::vector<ConsoleRequest> requests_;
};

// A loopback port with nothing listening (bound once to get a number, then released).
uint16_t ClosedPort() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

// ---------------------------------------------------------------------------------------

class UplinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("uplink_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    WriteToken(std::string("  ") + kToken + "\n");
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (uplink_) {
      std::promise<void> stopped;
      uplink_->Stop(0, [&stopped] { stopped.set_value(); });
      EXPECT_EQ(stopped.get_future().wait_for(std::chrono::seconds(3)), std::future_status::ready);
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    std::filesystem::remove_all(dir_);
  }

  void WriteToken(const std::string& text) {
    std::ofstream(dir_ / "token", std::ios::trunc) << text;
  }

  UplinkOptions Options(uint16_t port) {
    UplinkOptions o;
    o.console_url = "http://127.0.0.1:" + std::to_string(port);
    o.node_id = "node-1";
    o.token_file = (dir_ / "token").string();
    o.timeout_ms = 1'000;
    o.backoff_initial_ms = 10;
    o.backoff_max_ms = 50;
    o.idle_poll_ms = 50;
    o.jitter_seed = 1234;
    return o;
  }

  UplinkOptions MutualTlsOptions(const TestConsole& console, const TestCert& server);
  void WriteClientCert(const TestCert& cert);

  void StartUplink(UplinkOptions options) {
    ASSERT_TRUE(ValidateUplinkOptions(options).ok());
    uplink_ = CreateUplink(io_, std::move(options), outbox_, metrics_, clock_);
    uplink_->Start();
  }

  // Polls a condition until it holds or the timeout passes (2.5 s unless given).
  static bool WaitFor(const std::function<bool()>& condition,
                      milliseconds timeout = milliseconds(2'500)) {
    return edge::testutil::PollUntil(condition, timeout);
  }

  std::filesystem::path dir_;
  FakeOutbox outbox_;
  FakeMetrics metrics_;
  SystemClock clock_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread thread_;
  std::unique_ptr<Uplink> uplink_;
};

TEST_F(UplinkTest, DeliversAllRowsInBatchesOverOneConnection) {
  TestConsole console;
  outbox_.Add(1'200, 40);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(metrics_.Uploads("ok"), 3);  // 500 + 500 + 200
  EXPECT_EQ(metrics_.Uploads("retry"), 0);
  // Rows are deleted before the counter moves: wait for it rather than read it once.
  EXPECT_TRUE(
      WaitFor([&] { return metrics_.CounterValue("edge_agent_uplink_items_total") == 1'200; }));
  EXPECT_GT(metrics_.CounterValue("edge_agent_uplink_bytes_total"), 0);
  EXPECT_EQ(metrics_.GaugeValue("edge_agent_uplink_backoff_seconds"), 0);
  EXPECT_TRUE(uplink_->Authorized());
  EXPECT_EQ(console.Connections(), 1);  // keep-alive reuse

  std::set<std::string> ids;
  for (const ConsoleRequest& req : console.Requests()) {
    EXPECT_EQ(req.target, "/v1/batches");
    EXPECT_EQ(req.authorization, "Bearer secret-token");
    EXPECT_EQ(req.content_encoding, "edge-zdict");
    ASSERT_FALSE(req.json.is_discarded());
    EXPECT_EQ(req.json["node"], "node-1");
    EXPECT_TRUE(req.json["sent_ms"].is_number_integer());
    for (const auto& item : req.json["items"]) {
      EXPECT_TRUE(item["payload"].is_object());
      EXPECT_EQ(item["kind"], "alert");
      ids.insert(item["id"].get<std::string>());
    }
  }
  EXPECT_EQ(ids.size(), 1'200u);
}

TEST_F(UplinkTest, AConsoleThatRefusesTheDictionaryGetsGzipAndNoRowIsLost) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int) {
    if (req.content_encoding == kDictEncoding) {
      return Reply(415, R"({"error":"unsupported Content-Encoding"})");
    }
    if (req.target == "/v1/status") return Reply(200, R"({"stored":true})");
    return AckAll(req);
  });
  outbox_.Add(20);
  StartUplink(Options(console.port()));
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  outbox_.Add(20);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  std::vector<std::string> encodings;
  std::set<std::string> ids;
  for (const ConsoleRequest& req : console.Requests()) {
    if (req.target != "/v1/batches") continue;
    encodings.push_back(req.content_encoding);
    if (req.content_encoding == "gzip") {
      for (const auto& item : req.json["items"]) ids.insert(item["id"].get<std::string>());
    }
  }
  // One refusal, the same batch again as gzip at once, and gzip from then on.
  ASSERT_EQ(encodings.size(), 3u);
  EXPECT_EQ(encodings[0], "edge-zdict");
  EXPECT_EQ(encodings[1], "gzip");
  EXPECT_EQ(encodings[2], "gzip");
  EXPECT_EQ(ids.size(), 40u);
  EXPECT_EQ(metrics_.Uploads("retry"), 0);
  EXPECT_EQ(metrics_.Uploads("rejected"), 0);
}

TEST_F(UplinkTest, SmallBodiesAreSentUncompressedAndGzipCanBeDisabled) {
  TestConsole console;
  outbox_.Add(1);
  UplinkOptions options = Options(console.port());
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(console.Requests().at(0).content_encoding, "");
  // Bytes on the wire equal the plain body here.
  EXPECT_EQ(metrics_.CounterValue("edge_agent_uplink_bytes_total"),
            static_cast<double>(console.Requests().at(0).json.dump().size()));
}

TEST_F(UplinkTest, RetriesServiceUnavailableThenDeliversOnce) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int index) {
    return index < 2 ? Reply(503, "busy") : AckAll(req);
  });
  outbox_.Add(5);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(metrics_.Uploads("retry"), 2);
  EXPECT_EQ(metrics_.Uploads("ok"), 1);
  ASSERT_EQ(outbox_.AckCalls().size(), 1u);
  EXPECT_EQ(outbox_.AckCalls()[0], (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(console.RequestCount(), 3u);
}

TEST_F(UplinkTest, HonoursRetryAfterCappedAtBackoffMax) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int index) {
    return index == 0 ? Reply(429, "slow down", "1") : AckAll(req);
  });
  outbox_.Add(1);
  UplinkOptions options = Options(console.port());
  options.backoff_initial_ms = 1;
  options.backoff_max_ms = 300;  // Retry-After 1 s is capped to 300 ms
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  const auto requests = console.Requests();
  ASSERT_EQ(requests.size(), 2u);
  const auto gap = requests[1].at - requests[0].at;
  EXPECT_GE(gap, milliseconds(290));
  EXPECT_LT(gap, milliseconds(1'500));
  EXPECT_EQ(metrics_.Uploads("retry"), 1);
}

TEST_F(UplinkTest, BacksOffWhileConsoleIsDownThenDrains) {
  const uint16_t port = ClosedPort();
  outbox_.Add(20);
  StartUplink(Options(port));

  ASSERT_TRUE(WaitFor([&] { return metrics_.Uploads("retry") >= 3; }));
  EXPECT_EQ(outbox_.Size(), 20u);
  EXPECT_EQ(metrics_.CounterValue("edge_agent_uplink_bytes_total"), 0);

  TestConsole console(port);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(metrics_.Uploads("ok"), 1);
  EXPECT_TRUE(
      WaitFor([&] { return metrics_.GaugeValue("edge_agent_uplink_backoff_seconds") == 0; }));
}

TEST_F(UplinkTest, ConsoleDownWaitsTheJitteredBackoffBetweenAttempts) {
  outbox_.Add(1);
  UplinkOptions options = Options(ClosedPort());
  options.backoff_initial_ms = 20;
  options.backoff_max_ms = 160;
  // Same seed, same delays: the loop cannot make its fifth attempt before their sum.
  Backoff expected(options.backoff_initial_ms, options.backoff_max_ms, options.jitter_seed);
  int64_t min_total_ms = 0;
  for (int i = 0; i < 4; ++i) min_total_ms += expected.NextDelayMs();

  const auto begin = Steady::now();
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return metrics_.Uploads("retry") >= 5; }));
  EXPECT_GE(Steady::now() - begin, milliseconds(min_total_ms));
  EXPECT_EQ(outbox_.Size(), 1u);
}

TEST_F(UplinkTest, UnauthorizedUntilTheTokenFileIsFixed) {
  TestConsole console;
  WriteToken("wrong-token\n");
  outbox_.Add(3);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return metrics_.Uploads("unauthorized") >= 1; }));
  EXPECT_FALSE(uplink_->Authorized());
  EXPECT_EQ(outbox_.Size(), 3u);
  EXPECT_TRUE(outbox_.AckCalls().empty());

  WriteToken(std::string(kToken) + "\n");  // re-read after the next 401
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_TRUE(uplink_->Authorized());
}

TEST_F(UplinkTest, DeletesOnlyAcknowledgedRows) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int) {
    nlohmann::json acked = {"someone-else:1:1"};
    for (const auto& item : req.json["items"]) {
      const std::string id = item["id"];
      if ((id.back() - '0') % 2 == 0) acked.push_back(id);  // even sequence numbers only
    }
    return Reply(200, nlohmann::json{{"acked", acked}}.dump());
  });
  outbox_.Add(6);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return !outbox_.AckCalls().empty(); }));
  EXPECT_EQ(outbox_.AckCalls()[0], (std::vector<int64_t>{2, 4, 6}));
  EXPECT_EQ(outbox_.Seqs(), (std::set<int64_t>{1, 3, 5}));
  EXPECT_TRUE(WaitFor([&] { return metrics_.CounterValue("edge_agent_uplink_items_total") == 3; }));
  // The rest is offered again, but a batch with nothing acked backs off instead of spinning.
  ASSERT_TRUE(WaitFor([&] { return console.RequestCount() >= 3; }));
  EXPECT_EQ(outbox_.Seqs(), (std::set<int64_t>{1, 3, 5}));
}

TEST_F(UplinkTest, MalformedOkReplyIsRetriedAndDeletesNothing) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int index) {
    if (index == 0) return Reply(200, "<html>proxy</html>");
    if (index == 1) return Reply(200, R"({"acked":"all"})");
    return AckAll(req);
  });
  outbox_.Add(4);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(metrics_.Uploads("retry"), 2);
  EXPECT_EQ(metrics_.Uploads("ok"), 1);
  EXPECT_EQ(outbox_.AckCalls().size(), 1u);
}

TEST_F(UplinkTest, RequestLevelRejectionIsKeptAndBackedOff) {
  TestConsole console;
  // 403 (a batch for another node) and a 400 page from a proxy say nothing about the rows.
  console.SetHandler([](const ConsoleRequest&, int index) {
    return index % 2 == 0 ? Reply(403, R"({"error":"batch node differs"})")
                          : Reply(400, "<html><body>Bad Request</body></html>");
  });
  outbox_.Add(2);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return metrics_.Uploads("rejected") >= 4; }));
  EXPECT_EQ(outbox_.Size(), 2u);
  EXPECT_TRUE(outbox_.DeadLetters().empty());
  for (const ConsoleRequest& req : console.Requests()) EXPECT_EQ(req.json["items"].size(), 2u);
  EXPECT_EQ(metrics_.Uploads("ok"), 0);
  EXPECT_TRUE(uplink_->Authorized());
}

TEST_F(UplinkTest, PayloadTooLargeShrinksTheNextBatch) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int) {
    return req.json["items"].size() > 10 ? Reply(413, "too big") : AckAll(req);
  });
  outbox_.Add(40);
  UplinkOptions options = Options(console.port());
  options.batch_max_items = 40;
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(metrics_.Uploads("rejected"), 2);  // 40 -> 20 -> 10 fits
  EXPECT_TRUE(outbox_.DeadLetters().empty());
}

// Sequence number of a batch item ("node-1:00ff:SEQ").
int64_t ItemSeq(const nlohmann::json& item) {
  const std::string id = item["id"];
  return std::stoll(id.substr(id.rfind(':') + 1));
}

// Answers like the console for a batch holding any of `poison`: 400 in the protocol's shape.
TestConsole::Handler RejectBatchesHolding(std::set<int64_t> poison) {
  return [poison](const ConsoleRequest& req, int) {
    for (const auto& item : req.json["items"]) {
      if (poison.contains(ItemSeq(item))) {
        return Reply(400, R"({"error":"items[0]: alert payload: missing field 'rule'"})");
      }
    }
    return AckAll(req);
  };
}

TEST_F(UplinkTest, PoisonRowIsDeadLetteredAndTheRestIsDelivered) {
  TestConsole console;
  console.SetHandler(RejectBatchesHolding({7}));
  outbox_.Add(10);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  const auto dead = outbox_.DeadLetters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead.begin()->first, 7);
  EXPECT_NE(dead.begin()->second.find("400"), std::string::npos);
  EXPECT_NE(dead.begin()->second.find("missing field"), std::string::npos);
  EXPECT_EQ(outbox_.AckedSeqs(), (std::set<int64_t>{1, 2, 3, 4, 5, 6, 8, 9, 10}));
  EXPECT_TRUE(WaitFor([&] {
    return metrics_.CounterValue("edge_agent_outbox_dead_lettered_total",
                                 {{"kind", "alert"}, {"reason", "malformed"}}) == 1;
  }));
  EXPECT_EQ(metrics_.CounterValue("edge_agent_outbox_dead_lettered_total",
                                  {{"kind", "rollup"}, {"reason", "malformed"}}),
            0);
  // [1-10] -> [1-5] ok, [6-10] -> [6,7] -> [6] ok, [7] dead; [8-10] ok: seven requests.
  EXPECT_EQ(console.RequestCount(), 7u);
  EXPECT_EQ(metrics_.Uploads("rejected"), 4);
}

TEST_F(UplinkTest, SeveralPoisonRowsAreFoundInOneWalk) {
  TestConsole console;
  console.SetHandler(RejectBatchesHolding({2, 3, 16}));
  outbox_.Add(16);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  std::set<int64_t> dead;
  for (const auto& [seq, reason] : outbox_.DeadLetters()) dead.insert(seq);
  EXPECT_EQ(dead, (std::set<int64_t>{2, 3, 16}));
  EXPECT_EQ(outbox_.AckedSeqs().size(), 13u);
  EXPECT_TRUE(WaitFor([&] {
    return metrics_.CounterValue("edge_agent_outbox_dead_lettered_total",
                                 {{"kind", "alert"}, {"reason", "malformed"}}) == 3;
  }));
  // A console that rejects every request would need one request per row and split; a walk
  // that finds three rows among sixteen stays well below that.
  EXPECT_LT(console.RequestCount(), 25u);
}

TEST_F(UplinkTest, RowsAfterThePoisonKeepFlowing) {
  TestConsole console;
  console.SetHandler(RejectBatchesHolding({1}));
  outbox_.Add(1);
  StartUplink(Options(console.port()));
  ASSERT_TRUE(WaitFor([&] { return outbox_.DeadLetters().size() == 1; }));

  outbox_.Add(5);
  uplink_->Notify();
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(outbox_.AckedSeqs(), (std::set<int64_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(console.RequestCount(), 2u);  // the poison alone, then the rest in one batch
}

TEST_F(UplinkTest, SingleRowStillTooLargeIsDeadLettered) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int) {
    for (const auto& item : req.json["items"]) {
      if (ItemSeq(item) == 3) return Reply(413, R"({"error":"body too large"})");
    }
    return AckAll(req);
  });
  outbox_.Add(8);
  UplinkOptions options = Options(console.port());
  options.batch_max_items = 8;
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  ASSERT_EQ(outbox_.DeadLetters().size(), 1u);
  EXPECT_EQ(outbox_.DeadLetters().begin()->first, 3);
  EXPECT_EQ(outbox_.AckedSeqs().size(), 7u);
  EXPECT_TRUE(WaitFor([&] {
    return metrics_.CounterValue("edge_agent_outbox_dead_lettered_total",
                                 {{"kind", "alert"}, {"reason", "too_large"}}) == 1;
  }));
}

TEST_F(UplinkTest, FailedDeadLetterKeepsTheRowAndRetries) {
  TestConsole console;
  console.SetHandler(RejectBatchesHolding({2}));
  outbox_.FailDeadLetter(true);
  outbox_.Add(2);
  StartUplink(Options(console.port()));

  ASSERT_TRUE(WaitFor([&] { return outbox_.AckedSeqs().contains(1); }));
  ASSERT_TRUE(WaitFor([&] { return console.RequestCount() >= 6; }));  // retried after backoff
  EXPECT_EQ(outbox_.Seqs(), (std::set<int64_t>{2}));
  EXPECT_EQ(metrics_.CounterValue("edge_agent_outbox_dead_lettered_total",
                                  {{"kind", "alert"}, {"reason", "malformed"}}),
            0);

  outbox_.FailDeadLetter(false);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(outbox_.DeadLetters().size(), 1u);
}

TEST_F(UplinkTest, LiveAlertIsSentBeforeTheBacklog) {
  TestConsole console;
  std::atomic<int64_t> alert_seq{0};
  outbox_.Add(1'000, 0, "rollup", kRollupPriority);
  // While the second batch of the backlog is in flight, an alert is committed.
  console.SetHandler([&](const ConsoleRequest& req, int index) {
    if (index == 1) alert_seq = outbox_.Add(1, 0, "alert", kAlertPriority);
    return AckAll(req);
  });
  UplinkOptions options = Options(console.port());
  options.batch_max_items = 100;
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  const auto requests = console.Requests();
  ASSERT_EQ(requests.size(), 11u);
  const auto& third = requests[2].json["items"];
  ASSERT_FALSE(third.empty());
  EXPECT_EQ(third[0]["kind"], "alert");
  EXPECT_EQ(ItemSeq(third[0]), alert_seq.load());
  for (size_t i = 1; i < third.size(); ++i) EXPECT_EQ(third[i]["kind"], "rollup");
  // The backlog itself still drains oldest first.
  EXPECT_EQ(ItemSeq(requests[0].json["items"][0]), 1);
  EXPECT_EQ(ItemSeq(requests[1].json["items"][0]), 101);
}

std::vector<ConsoleRequest> StatusRequests(TestConsole& console) {
  std::vector<ConsoleRequest> out;
  for (ConsoleRequest& req : console.Requests()) {
    if (req.target == "/v1/status") out.push_back(std::move(req));
  }
  return out;
}

TEST_F(UplinkTest, StatusHeartbeatIsSentAtStartAndEveryInterval) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int) {
    return req.target == "/v1/status" ? Reply(200, R"({"stored":true})") : AckAll(req);
  });
  std::atomic<int> calls{0};
  UplinkOptions options = Options(console.port());
  options.status_interval_ms = 100;
  options.status_provider = [&calls] {
    return nlohmann::json{{"agent_version", "1.2.3"}, {"calls", ++calls}}.dump();
  };
  const auto begin = Steady::now();
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return StatusRequests(console).size() >= 3; }));
  const auto reports = StatusRequests(console);
  EXPECT_LT(reports[0].at - begin, milliseconds(500));  // the first one does not wait
  for (size_t i = 0; i < reports.size(); ++i) {
    EXPECT_EQ(reports[i].authorization, "Bearer secret-token");
    ASSERT_TRUE(reports[i].json.is_object());
    EXPECT_EQ(reports[i].json["node"], "node-1");
    EXPECT_TRUE(reports[i].json["sent_ms"].is_number_integer());
    EXPECT_EQ(reports[i].json["status"]["agent_version"], "1.2.3");
    EXPECT_EQ(reports[i].json["status"]["calls"], static_cast<int>(i) + 1);
    if (i > 0) {
      EXPECT_GE(reports[i].at - reports[i - 1].at, milliseconds(85));  // 100 ms less 10%
    }
  }
  EXPECT_TRUE(WaitFor([&] {
    return metrics_.CounterValue("edge_agent_status_reports_total", {{"result", "ok"}}) >= 3;
  }));
  EXPECT_EQ(metrics_.CounterValue("edge_agent_status_reports_total", {{"result", "failed"}}), 0);
}

TEST_F(UplinkTest, StatusIsNotHeldUpByABatchInFlight) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int) {
    return req.target == "/v1/status" ? Reply(200, R"({"stored":true})") : Hang();
  });
  outbox_.Add(500);
  UplinkOptions options = Options(console.port());
  options.timeout_ms = 10'000;
  options.status_interval_ms = 50;
  options.status_provider = [] { return std::string(R"({"backlog":{"alert":500}})"); };
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return console.RequestCount() >= 1; }));
  ASSERT_TRUE(WaitFor([&] { return StatusRequests(console).size() >= 3; }, milliseconds(2'000)));
  EXPECT_EQ(StatusRequests(console).back().json["status"]["backlog"]["alert"], 500);
  EXPECT_EQ(outbox_.Size(), 500u);  // the batch still hangs
}

TEST_F(UplinkTest, StatusThatIsNotAJsonObjectIsSkipped) {
  TestConsole console;
  std::atomic<int> calls{0};
  UplinkOptions options = Options(console.port());
  options.status_interval_ms = 20;
  options.status_provider = [&calls]() -> std::string {
    switch (++calls) {
      case 1:
        return "not json";
      case 2:
        return "[1,2]";
      case 3:
        throw std::runtime_error("provider broke");
      default:
        return "{}";
    }
  };
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return StatusRequests(console).size() >= 1; }));
  EXPECT_EQ(metrics_.CounterValue("edge_agent_status_reports_total", {{"result", "failed"}}), 3);
  EXPECT_EQ(StatusRequests(console)[0].json["status"], nlohmann::json::object());
}

TEST_F(UplinkTest, StatusRejectedWithUnauthorizedMarksTheNodeUnready) {
  TestConsole console;
  WriteToken("wrong-token\n");
  UplinkOptions options = Options(console.port());
  options.status_interval_ms = 30;
  options.status_provider = [] { return std::string("{}"); };
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] {
    return metrics_.CounterValue("edge_agent_status_reports_total", {{"result", "unauthorized"}}) >=
           1;
  }));
  EXPECT_FALSE(uplink_->Authorized());
  WriteToken(std::string(kToken) + "\n");
  ASSERT_TRUE(WaitFor([&] { return uplink_->Authorized(); }));
  EXPECT_GE(metrics_.CounterValue("edge_agent_status_reports_total", {{"result", "ok"}}), 1);
}

TEST_F(UplinkTest, StopEndsTheHeartbeatToo) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int) {
    return req.target == "/v1/status" ? Hang() : AckAll(req);
  });
  std::atomic<int> calls{0};
  UplinkOptions options = Options(console.port());
  options.timeout_ms = 10'000;
  options.status_provider = [&calls] {
    ++calls;
    return std::string("{}");
  };
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return StatusRequests(console).size() == 1; }));

  std::promise<void> stopped;
  const auto begin = Steady::now();
  uplink_->Stop(300, [&stopped] { stopped.set_value(); });
  ASSERT_EQ(stopped.get_future().wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_LT(Steady::now() - begin, milliseconds(1'500));
  const int after_stop = calls.load();
  // The io thread runs out of work (its run() returns) only when no heartbeat is left to
  // call the provider: a heartbeat still alive keeps it busy, so this wait times out.
  uplink_.reset();
  work_.reset();
  ASSERT_TRUE(WaitFor([&] { return io_.stopped(); }, milliseconds(5'000)));
  thread_.join();
  EXPECT_EQ(calls.load(), after_stop);  // the provider is not called after the callback
}

TEST_F(UplinkTest, TimeoutCountsAsRetry) {
  TestConsole console;
  console.SetHandler(
      [](const ConsoleRequest& req, int index) { return index == 0 ? Hang() : AckAll(req); });
  outbox_.Add(2);
  UplinkOptions options = Options(console.port());
  options.timeout_ms = 200;
  const auto begin = Steady::now();
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(metrics_.Uploads("retry"), 1);
  const auto requests = console.Requests();
  ASSERT_EQ(requests.size(), 2u);
  // The first request's clock started after `begin`; the retry cannot come before it ran out.
  EXPECT_GE(requests[1].at - begin, milliseconds(200));
  EXPECT_EQ(console.Connections(), 2);  // the timed-out connection is not reused
}

TEST_F(UplinkTest, ReconnectsWhenTheConsoleClosesConnections) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest& req, int) {
    ConsoleReply reply = AckAll(req);
    reply.close = true;
    return reply;
  });
  outbox_.Add(30);
  UplinkOptions options = Options(console.port());
  options.batch_max_items = 10;
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(metrics_.Uploads("ok"), 3);
  EXPECT_EQ(metrics_.Uploads("retry"), 0);
  EXPECT_EQ(console.Connections(), 3);
}

TEST_F(UplinkTest, NotifyWakesAnIdleLoop) {
  TestConsole console;
  UplinkOptions options = Options(console.port());
  options.idle_poll_ms = 60'000;
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Fetches() >= 1; }));

  outbox_.Add(2);
  uplink_->Notify();
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }, milliseconds(2'000)));
}

TEST_F(UplinkTest, LingerGathersRowsCommittedJustAfterTheWakeUp) {
  TestConsole console;
  UplinkOptions options = Options(console.port());
  options.idle_poll_ms = 60'000;
  options.linger_ms = 300;
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Fetches() >= 1; }));

  outbox_.Add(1);
  uplink_->Notify();
  std::this_thread::sleep_for(milliseconds(50));  // well inside the linger
  outbox_.Add(2);
  uplink_->Notify();
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }, milliseconds(3'000)));
  ASSERT_EQ(console.Requests().size(), 1u);  // without linger: two batches
  EXPECT_EQ(console.Requests().at(0).json["items"].size(), 3u);
}

TEST_F(UplinkTest, WithoutLingerAWokenLoopSendsAtOnce) {
  TestConsole console;
  UplinkOptions options = Options(console.port());
  options.idle_poll_ms = 60'000;
  options.linger_ms = 0;
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Fetches() >= 1; }));

  // Without linger the first row is fetched at once, before the second is committed (the
  // linger test above commits its second row 50 ms after the first).
  outbox_.Add(1);
  uplink_->Notify();
  // Sent: an idle poll between the two lines above cannot stand for the fetch of the row.
  ASSERT_TRUE(WaitFor([&] { return console.RequestCount() >= 1; }));
  outbox_.Add(2);
  uplink_->Notify();
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }, milliseconds(3'000)));
  ASSERT_EQ(console.Requests().size(), 2u);
  EXPECT_EQ(console.Requests().at(0).json["items"].size(), 1u);
}

TEST_F(UplinkTest, AfterABatchThatWasNotFullTheNextWaitsTheLinger) {
  // An alert storm: rows are committed while each batch is in flight. Without the linger
  // after a partial batch, every commit would make its own request right after the last.
  TestConsole console;
  std::atomic<int> handled{0};
  console.SetHandler([&](const ConsoleRequest& req, int) {
    if (handled.fetch_add(1) == 0) {
      outbox_.Add(1);  // committed while the first batch is in flight
      uplink_->Notify();
    }
    return AckAll(req);
  });
  outbox_.Add(1);
  UplinkOptions options = Options(console.port());
  options.linger_ms = 300;
  StartUplink(options);  // the first fetch is at once: the loop was not idle

  ASSERT_TRUE(
      WaitFor([&] { return outbox_.Size() == 0 && handled.load() == 2; }, milliseconds(3'000)));
  const std::vector<ConsoleRequest> requests = console.Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_GE(requests.at(1).at - requests.at(0).at, milliseconds(300));
}

TEST_F(UplinkTest, FullBatchesAreSentBackToBackWithoutTheLinger) {
  TestConsole console;
  outbox_.Add(25);
  UplinkOptions options = Options(console.port());
  options.batch_max_items = 10;
  options.linger_ms = 60'000;  // a linger between the full batches would outlast the wait
  StartUplink(options);

  // 10 + 10 back to back, then the last 5; after them the loop lingers.
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }, milliseconds(5'000)));
  EXPECT_EQ(console.Requests().size(), 3u);
}

TEST_F(UplinkTest, IdleLoopPollsWithoutNotify) {
  TestConsole console;
  StartUplink(Options(console.port()));  // idle_poll_ms = 50
  ASSERT_TRUE(WaitFor([&] { return outbox_.Fetches() >= 1; }));
  outbox_.Add(1);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }, milliseconds(2'000)));
}

TEST_F(UplinkTest, StopSendsPendingRowsThenCompletes) {
  TestConsole console;
  UplinkOptions options = Options(console.port());
  options.idle_poll_ms = 60'000;
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Fetches() >= 1; }));
  outbox_.Add(7);  // no Notify: only the final attempt can send these

  std::promise<void> stopped;
  uplink_->Stop(2'000, [&stopped] { stopped.set_value(); });
  ASSERT_EQ(stopped.get_future().wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_EQ(outbox_.Size(), 0u);
  uplink_.reset();
}

TEST_F(UplinkTest, StopReturnsWithinDeadlineWhenConsoleHangs) {
  TestConsole console;
  console.SetHandler([](const ConsoleRequest&, int) { return Hang(); });
  outbox_.Add(3);
  UplinkOptions options = Options(console.port());
  options.timeout_ms = 10'000;
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return console.RequestCount() >= 1; }));

  std::promise<void> stopped;
  const auto begin = Steady::now();
  uplink_->Stop(300, [&stopped] { stopped.set_value(); });
  ASSERT_EQ(stopped.get_future().wait_for(std::chrono::seconds(2)), std::future_status::ready);
  const auto took = Steady::now() - begin;
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(1'500));
  EXPECT_EQ(outbox_.Size(), 3u);  // nothing acknowledged, nothing deleted
  uplink_.reset();
}

TEST_F(UplinkTest, StopWhileConsoleIsDownEndsQuickly) {
  outbox_.Add(3);
  UplinkOptions options = Options(ClosedPort());
  options.backoff_initial_ms = 5'000;
  options.backoff_max_ms = 5'000;
  StartUplink(options);
  ASSERT_TRUE(WaitFor([&] { return metrics_.Uploads("retry") >= 1; }));

  std::promise<void> stopped;
  const auto begin = Steady::now();
  uplink_->Stop(1'000, [&stopped] { stopped.set_value(); });
  ASSERT_EQ(stopped.get_future().wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_LT(Steady::now() - begin, milliseconds(1'500));  // one refused attempt, no backoff
  EXPECT_EQ(outbox_.Size(), 3u);
  uplink_.reset();
}

TEST_F(UplinkTest, StopBeforeStartStillCompletesAndSecondStopToo) {
  uplink_ = CreateUplink(io_, Options(ClosedPort()), outbox_, metrics_, clock_);
  std::promise<void> first;
  std::promise<void> second;
  uplink_->Stop(1'000, [&first] { first.set_value(); });
  uplink_->Stop(1'000, [&second] { second.set_value(); });
  EXPECT_EQ(first.get_future().wait_for(std::chrono::seconds(1)), std::future_status::ready);
  EXPECT_EQ(second.get_future().wait_for(std::chrono::seconds(1)), std::future_status::ready);
  uplink_->Start();  // ignored after Stop
  EXPECT_EQ(outbox_.Fetches(), 0);
}

TEST_F(UplinkTest, UnknownHostIsARetryNotACrash) {
  UplinkOptions options = Options(80);
  options.console_url = "http://no-such-host.invalid:8080";
  outbox_.Add(1);
  uplink_ = CreateUplink(io_, options, outbox_, metrics_, clock_);
  uplink_->Start();
  ASSERT_TRUE(WaitFor([&] { return metrics_.Uploads("retry") >= 1; }, milliseconds(2'800)));
  EXPECT_EQ(outbox_.Size(), 1u);
}

TEST_F(UplinkTest, DeliversOverHttpsWithTheConfiguredCa) {
  const TestCert cert = MakeSelfSignedCert("edge-test-console");
  TestConsole console(0, &cert);
  std::ofstream(dir_ / "ca.pem") << cert.cert_pem;
  outbox_.Add(700, 20);
  UplinkOptions options = Options(console.port());
  options.console_url = "https://127.0.0.1:" + std::to_string(console.port());
  options.ca_file = (dir_ / "ca.pem").string();
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(metrics_.Uploads("ok"), 2);
  EXPECT_EQ(metrics_.Uploads("retry"), 0);
  EXPECT_EQ(console.Connections(), 1);
}

TEST_F(UplinkTest, RefusesAConsoleWhoseCertificateIsNotTrusted) {
  const TestCert cert = MakeSelfSignedCert("edge-test-console");
  const TestCert other = MakeSelfSignedCert("someone-else");
  TestConsole console(0, &cert);
  std::ofstream(dir_ / "ca.pem") << other.cert_pem;
  outbox_.Add(2);
  UplinkOptions options = Options(console.port());
  options.console_url = "https://127.0.0.1:" + std::to_string(console.port());
  options.ca_file = (dir_ / "ca.pem").string();
  StartUplink(options);

  ASSERT_TRUE(WaitFor([&] { return metrics_.Uploads("retry") >= 2; }));
  EXPECT_EQ(console.RequestCount(), 0u);  // no token ever left the node
  EXPECT_EQ(outbox_.Size(), 2u);
  EXPECT_EQ(metrics_.CounterValue("edge_agent_uplink_bytes_total"), 0);
}

TEST_F(UplinkTest, RefusesACertificateForAnotherHost) {
  const TestCert cert = MakeSelfSignedCert("edge-test-console");  // 127.0.0.1 and localhost
  TestConsole console(0, &cert);
  std::ofstream(dir_ / "ca.pem") << cert.cert_pem;
  outbox_.Add(1);
  UplinkOptions options = Options(console.port());
  // Same server, reached through an address the certificate does not name.
  options.console_url = "https://[::ffff:127.0.0.1]:" + std::to_string(console.port());
  options.ca_file = (dir_ / "ca.pem").string();
  uplink_ = CreateUplink(io_, options, outbox_, metrics_, clock_);
  uplink_->Start();

  ASSERT_TRUE(WaitFor([&] { return metrics_.Uploads("retry") >= 1; }));
  EXPECT_EQ(console.RequestCount(), 0u);
  EXPECT_EQ(outbox_.Size(), 1u);
}

// Options for an https `console` that trusts `server`, presenting the client certificate
// written as node.pem and node.key (WriteClientCert).
UplinkOptions UplinkTest::MutualTlsOptions(const TestConsole& console, const TestCert& server) {
  std::ofstream(dir_ / "ca.pem") << server.cert_pem;
  UplinkOptions options = Options(console.port());
  options.console_url = "https://127.0.0.1:" + std::to_string(console.port());
  options.ca_file = (dir_ / "ca.pem").string();
  options.cert_file = (dir_ / "node.pem").string();
  options.key_file = (dir_ / "node.key").string();
  return options;
}

void UplinkTest::WriteClientCert(const TestCert& cert) {
  std::ofstream(dir_ / "node.pem") << cert.cert_pem;
  std::ofstream(dir_ / "node.key") << cert.key_pem;
}

TEST_F(UplinkTest, TheTlsContextIsMadeAgainOnlyWhenOneOfItsFilesChanged) {
  std::ofstream(dir_ / "ca.pem") << MakeSelfSignedCert("ca").cert_pem;
  TlsContextSource source("test", {(dir_ / "ca.pem").string(), "", ""});
  const auto first = source.Get();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(source.Get(), first);  // connections share it while nothing changed
  std::ofstream(dir_ / "ca.pem", std::ios::app) << "\n";
  EXPECT_NE(source.Get(), first);  // the renewed file is read for the next connection
}

TEST_F(UplinkTest, AConsoleRequiringAClientCertificateGetsTheNodes) {
  const TestCert server = MakeSelfSignedCert("edge-test-console");
  const TestCert client = MakeSelfSignedCert("node-1");
  TestConsole console(0, &server);
  console.RequireClientCert(client.cert_pem);
  WriteClientCert(client);
  outbox_.Add(3);
  StartUplink(MutualTlsOptions(console, server));

  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
  EXPECT_EQ(console.FailedHandshakes(), 0);
}

TEST_F(UplinkTest, WithoutTheTrustedClientCertificateNothingIsDeliveredUntilItIsRenewed) {
  const TestCert server = MakeSelfSignedCert("edge-test-console");
  const TestCert client = MakeSelfSignedCert("node-1");
  const TestCert stranger = MakeSelfSignedCert("node-1");  // same name, another key
  TestConsole console(0, &server);
  console.RequireClientCert(client.cert_pem);
  WriteClientCert(stranger);
  outbox_.Add(3);
  StartUplink(MutualTlsOptions(console, server));

  ASSERT_TRUE(WaitFor([&] { return console.FailedHandshakes() >= 2; }));
  EXPECT_EQ(console.RequestCount(), 0u);
  EXPECT_EQ(outbox_.Size(), 3u);

  // The renewed certificate is read at the next connection: no restart.
  WriteClientCert(client);
  ASSERT_TRUE(WaitFor([&] { return outbox_.Size() == 0; }));
}

// ---------------------------------------------------------------------------------------

class ValidateUplinkOptionsTest : public UplinkTest {};

TEST_F(ValidateUplinkOptionsTest, AcceptsGoodOptions) {
  EXPECT_TRUE(ValidateUplinkOptions(Options(8080)).ok());
}

TEST_F(ValidateUplinkOptionsTest, RejectsBadUrl) {
  UplinkOptions options = Options(8080);
  options.console_url = "console:8080";
  EXPECT_FALSE(ValidateUplinkOptions(options).ok());
}

TEST_F(ValidateUplinkOptionsTest, ChecksTheCaFileForHttps) {
  UplinkOptions options = Options(8443);
  options.console_url = "https://console:8443";
  options.ca_file = (dir_ / "absent.pem").string();
  const Status missing = ValidateUplinkOptions(options);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("absent.pem"), std::string::npos);

  std::ofstream(dir_ / "junk.pem") << "not a certificate\n";
  options.ca_file = (dir_ / "junk.pem").string();
  EXPECT_FALSE(ValidateUplinkOptions(options).ok());

  std::ofstream(dir_ / "ca.pem") << MakeSelfSignedCert("ca").cert_pem;
  options.ca_file = (dir_ / "ca.pem").string();
  EXPECT_TRUE(ValidateUplinkOptions(options).ok());
}

TEST_F(ValidateUplinkOptionsTest, ChecksTheClientCertificateAndItsKey) {
  const TestCert client = MakeSelfSignedCert("node-1");
  const TestCert other = MakeSelfSignedCert("node-1");
  std::ofstream(dir_ / "node.pem") << client.cert_pem;
  std::ofstream(dir_ / "node.key") << client.key_pem;
  std::ofstream(dir_ / "other.key") << other.key_pem;
  UplinkOptions options = Options(8443);
  options.console_url = "https://console:8443";
  options.cert_file = (dir_ / "node.pem").string();
  const Status no_key = ValidateUplinkOptions(options);
  EXPECT_NE(no_key.message().find("both a certificate and a key"), std::string::npos)
      << no_key.message();
  options.key_file = (dir_ / "other.key").string();
  const Status mismatch = ValidateUplinkOptions(options);
  EXPECT_NE(mismatch.message().find("other.key"), std::string::npos) << mismatch.message();
  options.key_file = (dir_ / "node.key").string();
  EXPECT_TRUE(ValidateUplinkOptions(options).ok()) << ValidateUplinkOptions(options).message();
}

TEST_F(ValidateUplinkOptionsTest, RejectsMissingOrEmptyTokenFile) {
  UplinkOptions options = Options(8080);
  options.token_file = (dir_ / "absent").string();
  EXPECT_FALSE(ValidateUplinkOptions(options).ok());
  WriteToken(" \n\t\n");
  EXPECT_FALSE(ValidateUplinkOptions(Options(8080)).ok());
  WriteToken("two\nlines\n");
  EXPECT_FALSE(ValidateUplinkOptions(Options(8080)).ok());
}

TEST_F(ValidateUplinkOptionsTest, RejectsNonsenseNumbers) {
  const std::vector<std::function<void(UplinkOptions&)>> breakers = {
      [](UplinkOptions& o) { o.node_id.clear(); },
      [](UplinkOptions& o) { o.batch_max_items = 0; },
      [](UplinkOptions& o) { o.batch_max_bytes = 0; },
      [](UplinkOptions& o) { o.timeout_ms = 0; },
      [](UplinkOptions& o) { o.backoff_initial_ms = 0; },
      [](UplinkOptions& o) { o.backoff_max_ms = 1; },
      [](UplinkOptions& o) { o.idle_poll_ms = -1; },
      [](UplinkOptions& o) { o.linger_ms = -1; },
      [](UplinkOptions& o) { o.linger_ms = 60'001; },
      [](UplinkOptions& o) {
        o.status_provider = [] { return std::string("{}"); };
        o.status_interval_ms = 0;
      },
  };
  for (const auto& breaker : breakers) {
    UplinkOptions options = Options(8080);
    breaker(options);
    EXPECT_FALSE(ValidateUplinkOptions(options).ok());
  }
}

}  // namespace
}  // namespace edge::cloudsync
