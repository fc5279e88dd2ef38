// The native MQTT client (CreateNativeIngest) against a real mosquitto on loopback, on a
// port chosen at run time: delivery in order for QoS 0 and 1, reconnect and resubscribe
// after the broker is killed, oversize packets skipped, TLS with a verified broker, and a
// bounded Stop(). Skipped when mosquitto is not installed.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../wait_for.h"
#include "edge/agent/ingest.h"
#include "edge/agent/prometheus_metrics.h"
#include "test_util.h"

extern char** environ;

namespace edge::agent {
namespace {

using Ms = std::chrono::milliseconds;

std::string FindProgram(const std::vector<std::string>& candidates) {
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

const std::string& MosquittoBin() {
  static const std::string bin = FindProgram({"/usr/sbin/mosquitto", "/usr/bin/mosquitto"});
  return bin;
}

const std::string& MosquittoPubBin() {
  static const std::string bin = FindProgram({"/usr/bin/mosquitto_pub"});
  return bin;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool PortOpen(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Polls `done` until it holds or `timeout` (10 s unless given) passes.
bool WaitFor(const std::function<bool()>& done, Ms timeout = Ms(10'000)) {
  return edge::testutil::PollUntil(done, timeout);
}

// Runs a program with stdout and stderr appended to `log`; returns its pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int RunProgram(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = Spawn(argv, log);
  if (pid < 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A private mosquitto on 127.0.0.1, started and killed for real.
class Broker {
 public:
  Broker(const testing::TempDir& dir, std::vector<std::string> extra_config = {})
      : port_(FreePort()), dir_(dir) {
    conf_ = dir.File("mosquitto-" + std::to_string(port_) + ".conf");
    std::ofstream f(conf_);
    f << "listener " << port_ << " 127.0.0.1\n"
      << "allow_anonymous true\npersistence false\nlog_dest stderr\n"
      << "max_inflight_messages 0\nmax_queued_messages 0\n";
    if (geteuid() == 0) f << "user root\n";
    for (const std::string& line : extra_config) f << line << "\n";
  }
  ~Broker() { Kill(); }

  bool Start() {
    pid_ = Spawn({MosquittoBin(), "-c", conf_}, dir_.File("mosquitto.log"));
    return pid_ > 0 && WaitFor([this] { return PortOpen(port_); });
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int port() const { return port_; }

 private:
  int port_;
  const testing::TempDir& dir_;
  std::string conf_;
  pid_t pid_ = -1;
};

// Publishes each line of `lines` as one message (mosquitto_pub -l).
bool PublishLines(int port, const std::string& topic, int qos,
                  const std::vector<std::string>& lines, const testing::TempDir& dir) {
  const std::string input = dir.File("lines.txt");
  std::ofstream(input) << [&] {
    std::string all;
    for (const std::string& l : lines) all += l + "\n";
    return all;
  }();
  const std::string cmd = MosquittoPubBin() + " -h 127.0.0.1 -p " + std::to_string(port) + " -q " +
                          std::to_string(qos) + " -t '" + topic + "' -l < " + input;
  return std::system(cmd.c_str()) == 0;
}

class NativeIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (MosquittoBin().empty() || MosquittoPubBin().empty()) {
      GTEST_SKIP() << "mosquitto or mosquitto_pub not installed";
    }
  }

  IngestOptions Options(const std::string& url) {
    IngestOptions o;
    o.url = url;
    o.client_id = "native-ingest-test";
    o.topics = {"t/#"};
    o.qos = 1;
    o.keepalive_ms = 5'000;
    o.connect_timeout_ms = 2'000;
    o.backoff_initial_ms = 50;
    o.backoff_max_ms = 200;
    return o;
  }

  std::unique_ptr<Ingest> Create(IngestOptions o) {
    return CreateNativeIngest(
        io_, std::move(o),
        [this](std::span<RawMessage> messages) {
          std::lock_guard lock(mu_);
          for (RawMessage& m : messages) received_.push_back(std::move(m));
          if (stopped_) sink_after_stop_ = true;
        },
        metrics_, clock_);
  }

  size_t Received() {
    std::lock_guard lock(mu_);
    return received_.size();
  }

  std::vector<RawMessage> Messages() {
    std::lock_guard lock(mu_);
    return received_;
  }

  double ConnectsOk() {
    return metrics_.Counter("edge_agent_mqtt_connects_total", "", {{"result", "ok"}}).Value();
  }
  double ConnectsFailed() {
    return metrics_.Counter("edge_agent_mqtt_connects_total", "", {{"result", "failed"}}).Value();
  }

  void MarkStopped() {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }

  testing::TempDir dir_;
  boost::asio::io_context io_;
  PrometheusMetrics metrics_;
  SystemClock clock_;
  std::mutex mu_;
  std::vector<RawMessage> received_;  // guarded by mu_
  bool stopped_ = false;              // guarded by mu_
  bool sink_after_stop_ = false;      // guarded by mu_
};

std::vector<std::string> Numbered(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST_F(NativeIngestTest, DeliversQos0AndQos1MessagesInOrder) {
  Broker broker(dir_);
  ASSERT_TRUE(broker.Start());
  auto ingest = Create(Options("tcp://127.0.0.1:" + std::to_string(broker.port())));
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));
  EXPECT_EQ(metrics_.Gauge("edge_agent_mqtt_connected", "").Value(), 1);

  ASSERT_TRUE(PublishLines(broker.port(), "t/zero", 0, Numbered("{\"value\":", 500), dir_));
  ASSERT_TRUE(PublishLines(broker.port(), "t/one", 1, Numbered("v", 2000), dir_));
  ASSERT_TRUE(PublishLines(broker.port(), "other/topic", 1, {"not subscribed"}, dir_));
  ASSERT_TRUE(WaitFor([&] { return Received() >= 2500; })) << Received();

  const std::vector<RawMessage> got = Messages();
  ASSERT_EQ(got.size(), 2500u);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(got[i].topic, "t/zero");
    EXPECT_EQ(got[i].payload, "{\"value\":" + std::to_string(i));
    EXPECT_GT(got[i].receive_ms, 0);
  }
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(got[500 + i].topic, "t/one");
    EXPECT_EQ(got[500 + i].payload, "v" + std::to_string(i));
  }
  EXPECT_EQ(ConnectsOk(), 1);
  EXPECT_EQ(ConnectsFailed(), 0);
  ingest->Stop(1000);
  EXPECT_FALSE(ingest->Connected());
  EXPECT_EQ(metrics_.Gauge("edge_agent_mqtt_connected", "").Value(), 0);
}

TEST_F(NativeIngestTest, ReconnectsAndResubscribesAfterTheBrokerIsKilled) {
  Broker broker(dir_);
  ASSERT_TRUE(broker.Start());
  auto ingest = Create(Options("tcp://127.0.0.1:" + std::to_string(broker.port())));
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));

  broker.Kill();
  ASSERT_TRUE(WaitFor([&] { return !ingest->Connected(); }));
  ASSERT_TRUE(WaitFor([&] { return ConnectsFailed() >= 1; }));  // attempts while it is down
  ASSERT_TRUE(broker.Start());
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));
  EXPECT_EQ(ConnectsOk(), 2);

  ASSERT_TRUE(PublishLines(broker.port(), "t/after", 1, {"a1", "a2", "a3"}, dir_));
  ASSERT_TRUE(WaitFor([&] { return Received() >= 3; }));
  const std::vector<RawMessage> got = Messages();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].payload, "a1");
  EXPECT_EQ(got[2].payload, "a3");
  EXPECT_EQ(got[2].topic, "t/after");
}

TEST_F(NativeIngestTest, SkipsAndCountsPacketsOverTheLimit) {
  Broker broker(dir_);
  ASSERT_TRUE(broker.Start());
  IngestOptions o = Options("tcp://127.0.0.1:" + std::to_string(broker.port()));
  o.max_packet_bytes = 200;
  auto ingest = Create(o);
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));

  const std::string big = dir_.File("big.bin");
  std::ofstream(big) << std::string(150'000, 'b');
  ASSERT_TRUE(PublishLines(broker.port(), "t/x", 1, {"small-1"}, dir_));
  const std::string cmd = MosquittoPubBin() + " -h 127.0.0.1 -p " + std::to_string(broker.port()) +
                          " -q 1 -t t/x -f " + big;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_TRUE(PublishLines(broker.port(), "t/x", 1, {"small-2"}, dir_));
  ASSERT_TRUE(WaitFor([&] { return Received() >= 2; }));
  const std::vector<RawMessage> got = Messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, "small-1");
  EXPECT_EQ(got[1].payload, "small-2");
  EXPECT_EQ(
      metrics_.Counter("edge_agent_readings_rejected_total", "", {{"reason", "too_large"}}).Value(),
      1);
  EXPECT_TRUE(ingest->Connected());
  EXPECT_EQ(ConnectsOk(), 1);
}

TEST_F(NativeIngestTest, StopReturnsWithinItsTimeoutAndNoMessageFollows) {
  Broker broker(dir_);
  ASSERT_TRUE(broker.Start());
  auto ingest = Create(Options("tcp://127.0.0.1:" + std::to_string(broker.port())));
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));
  std::atomic<bool> publishing{true};
  std::atomic<int> batches_published{0};  // of 200 messages each
  std::thread publisher([&] {
    while (publishing) {
      if (PublishLines(broker.port(), "t/flood", 0, Numbered("f", 200), dir_)) ++batches_published;
    }
  });
  ASSERT_TRUE(WaitFor([&] { return Received() > 0; }));

  const auto start = std::chrono::steady_clock::now();
  ingest->Stop(500);
  MarkStopped();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, Ms(700));
  EXPECT_FALSE(ingest->Connected());
  ingest->Stop(500);  // idempotent
  // Two whole batches published after the stop: the broker has queued the first to every
  // subscriber before it takes the second, so a connection left open would have handed
  // messages to the sink.
  const int published_at_stop = batches_published.load();
  EXPECT_TRUE(WaitFor([&] { return batches_published.load() >= published_at_stop + 2; }));
  publishing = false;
  publisher.join();
  std::lock_guard lock(mu_);
  EXPECT_FALSE(sink_after_stop_);
}

TEST_F(NativeIngestTest, StopWhileTheBrokerIsUnreachableIsPrompt) {
  const int port = FreePort();  // nothing listens
  auto ingest = Create(Options("tcp://127.0.0.1:" + std::to_string(port)));
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ConnectsFailed() >= 2; }));
  const auto start = std::chrono::steady_clock::now();
  ingest->Stop(2000);
  EXPECT_LT(std::chrono::steady_clock::now() - start, Ms(500));
  EXPECT_EQ(ConnectsOk(), 0);
}

TEST_F(NativeIngestTest, DestroyingWithoutStartIsFine) {
  auto ingest = Create(Options("tcp://127.0.0.1:1"));
  EXPECT_FALSE(ingest->Connected());
}

// ---- TLS ----

class NativeIngestTlsTest : public NativeIngestTest {
 protected:
  void SetUp() override {
    NativeIngestTest::SetUp();
    if (IsSkipped()) return;
    if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "openssl not installed";
    const std::string log = dir_.File("openssl.log");
    const std::string ssl = "/usr/bin/openssl";
    ca_key_ = dir_.File("ca.key");
    ca_ = dir_.File("ca.pem");
    ASSERT_EQ(RunProgram({ssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key_, "-out", ca_,
                          "-days", "2", "-subj", "/CN=edge test CA"},
                         log),
              0);
    MakeServerCert("server", "DNS:localhost,IP:127.0.0.1");
    MakeServerCert("elsewhere", "DNS:broker.example");
  }

  // <name>.key and <name>.pem, signed by the test CA for the given subjectAltName.
  void MakeServerCert(const std::string& name, const std::string& san) {
    const std::string ssl = "/usr/bin/openssl";
    const std::string log = dir_.File("openssl.log");
    const std::string ext = dir_.File(name + ".ext");
    std::ofstream(ext) << "subjectAltName=" << san << "\n";
    ASSERT_EQ(RunProgram({ssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-nodes", "-keyout", dir_.File(name + ".key"), "-out",
                          dir_.File(name + ".csr"), "-subj", "/CN=" + name},
                         log),
              0);
    ASSERT_EQ(RunProgram({ssl, "x509", "-req", "-in", dir_.File(name + ".csr"), "-CA", ca_,
                          "-CAkey", ca_key_, "-CAcreateserial", "-out", dir_.File(name + ".pem"),
                          "-days", "2", "-extfile", ext},
                         log),
              0);
  }

  std::vector<std::string> TlsListener(const std::string& name = "server") const {
    return {"cafile " + ca_, "certfile " + dir_.File(name + ".pem"),
            "keyfile " + dir_.File(name + ".key")};
  }

  std::string ca_key_, ca_;
};

TEST_F(NativeIngestTlsTest, ConnectsToAVerifiedBrokerAndReceives) {
  Broker broker(dir_, TlsListener());
  ASSERT_TRUE(broker.Start());
  IngestOptions o = Options("ssl://localhost:" + std::to_string(broker.port()));
  o.ca_file = ca_;
  auto ingest = Create(o);
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));
  const std::string pub = MosquittoPubBin() + " -h localhost -p " + std::to_string(broker.port()) +
                          " --cafile " + ca_ + " -q 1 -t t/tls -m secure";
  ASSERT_EQ(std::system(pub.c_str()), 0);
  ASSERT_TRUE(WaitFor([&] { return Received() >= 1; }));
  EXPECT_EQ(Messages()[0].payload, "secure");
  EXPECT_EQ(Messages()[0].topic, "t/tls");
}

TEST_F(NativeIngestTlsTest, RefusesABrokerItCannotVerify) {
  Broker broker(dir_, TlsListener());
  ASSERT_TRUE(broker.Start());
  // The system trust store does not know the test CA.
  auto ingest = Create(Options("ssl://127.0.0.1:" + std::to_string(broker.port())));
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ConnectsFailed() >= 2; }));
  EXPECT_FALSE(ingest->Connected());
  EXPECT_EQ(ConnectsOk(), 0);
}

TEST_F(NativeIngestTlsTest, RefusesACertificateForAnotherHost) {
  Broker broker(dir_, TlsListener("elsewhere"));  // signed by the trusted CA, wrong name
  ASSERT_TRUE(broker.Start());
  IngestOptions o = Options("ssl://127.0.0.1:" + std::to_string(broker.port()));
  o.ca_file = ca_;
  auto ingest = Create(o);
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ConnectsFailed() >= 2; }));
  EXPECT_FALSE(ingest->Connected());
  EXPECT_EQ(ConnectsOk(), 0);
}

}  // namespace
}  // namespace edge::agent
