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
#include "mosquitto_broker.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using namespace testbroker;  // NOLINT(google-build-using-namespace)

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

// Acknowledge after commit: the broker's in-flight window (10 here) fills and it waits for
// the acknowledgements, which go only when Acknowledge says the messages are committed; the
// client asks for that commit once the broker has stopped sending.
TEST_F(NativeIngestTest, WithAckAfterCommitTheBrokerWaitsForTheCommit) {
  Broker broker(dir_, {"max_inflight_messages 10"});
  ASSERT_TRUE(broker.Start());
  std::atomic<int> requests{0};
  IngestOptions o = Options("tcp://127.0.0.1:" + std::to_string(broker.port()));
  o.ack_after_commit = true;
  o.request_commit = [&requests] { ++requests; };
  auto ingest = Create(std::move(o));
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));
  ASSERT_TRUE(PublishLines(broker.port(), "t/one", 1, Numbered("v", 50), dir_));

  ASSERT_TRUE(WaitFor([&] { return requests.load() >= 1; }));
  EXPECT_EQ(Received(), 10u);  // the broker holds the rest back: nothing was acknowledged
  EXPECT_GE(metrics_.Counter("edge_agent_mqtt_ack_stalls_total", "").Value(), 1);
  // Committing as asked lets the rest through, ten at a time.
  ASSERT_TRUE(WaitFor([&] {
    const std::vector<RawMessage> got = Messages();
    if (!got.empty()) ingest->Acknowledge(got.back().seq);
    return got.size() == 50;
  }));
  const std::vector<RawMessage> got = Messages();
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 1);
    EXPECT_EQ(got[i].payload, "v" + std::to_string(i));
    EXPECT_EQ(got[i].digest, MessageDigest(got[i].topic, got[i].payload));
  }
  ingest->Stop(1000);
}

// While acks are held and the queue has no room, the client does not read: the broker keeps
// the messages.
TEST_F(NativeIngestTest, WithoutRoomInTheQueueNothingIsReadUntilThereIs) {
  Broker broker(dir_);
  ASSERT_TRUE(broker.Start());
  std::atomic<bool> room{false};
  IngestOptions o = Options("tcp://127.0.0.1:" + std::to_string(broker.port()));
  o.ack_after_commit = true;
  o.has_room = [&room] { return room.load(); };
  auto ingest = Create(std::move(o));
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));
  // The first is read (no ack was held yet) and its ack is held from then on.
  ASSERT_TRUE(PublishLines(broker.port(), "t/one", 1, {"first"}, dir_));
  ASSERT_TRUE(WaitFor([&] { return Received() == 1; }));
  ASSERT_TRUE(PublishLines(broker.port(), "t/one", 1, Numbered("v", 5), dir_));
  EXPECT_FALSE(WaitFor([&] { return Received() > 1; }, Ms(300)));
  room = true;
  ASSERT_TRUE(WaitFor([&] { return Received() == 6; }));
  ingest->Stop(1000);
}

// A broker restart before the acknowledgements: the broker sends the messages again (DUP);
// the client knows them, hands none over twice, and acknowledges them once committed.
TEST_F(NativeIngestTest, MessagesSentAgainAfterABrokerRestartAreNotHandedOverTwice) {
  Broker broker(dir_, {"persistence true", "persistence_location " + dir_.File("") + "/"});
  ASSERT_TRUE(broker.Start());
  IngestOptions o = Options("tcp://127.0.0.1:" + std::to_string(broker.port()));
  o.ack_after_commit = true;
  auto ingest = Create(std::move(o));
  ingest->Start();
  ASSERT_TRUE(WaitFor([&] { return ingest->Connected(); }));
  ASSERT_TRUE(PublishLines(broker.port(), "t/one", 1, Numbered("v", 5), dir_));
  ASSERT_TRUE(WaitFor([&] { return Received() == 5; }));
  const auto duplicates = [&] {
    return metrics_.Counter("edge_agent_mqtt_duplicates_total", "").Value();
  };

  broker.Stop();
  ASSERT_TRUE(broker.Start());
  ASSERT_TRUE(WaitFor([&] { return duplicates() == 5; })) << duplicates();
  EXPECT_EQ(Received(), 5u);
  ingest->Acknowledge(5);  // committed now: the acks go on the new connection

  // Acknowledged (the DISCONNECT follows the acks, so the broker has read them): a new
  // client on the session gets nothing again, only what is new.
  ingest->Stop(1000);
  auto next = Create(Options("tcp://127.0.0.1:" + std::to_string(broker.port())));
  next->Start();
  ASSERT_TRUE(WaitFor([&] { return next->Connected(); }));
  ASSERT_TRUE(PublishLines(broker.port(), "t/one", 1, {"after"}, dir_));
  ASSERT_TRUE(WaitFor([&] { return !Messages().empty() && Messages().back().payload == "after"; }));
  EXPECT_EQ(Received(), 6u);
  EXPECT_EQ(duplicates(), 5);
  next->Stop(1000);
}

// The store's record of the last commit (IngestOptions::delivered) makes a resend after a
// restart of the agent known too: acknowledged at once, not handed over.
TEST_F(NativeIngestTest, MessagesOfTheLastCommitBeforeARestartAreRecognised) {
  Broker broker(dir_);
  ASSERT_TRUE(broker.Start());
  const std::string url = "tcp://127.0.0.1:" + std::to_string(broker.port());
  IngestOptions o = Options(url);
  o.ack_after_commit = true;
  auto first = Create(o);
  first->Start();
  ASSERT_TRUE(WaitFor([&] { return first->Connected(); }));
  ASSERT_TRUE(PublishLines(broker.port(), "t/one", 1, Numbered("v", 3), dir_));
  ASSERT_TRUE(WaitFor([&] { return Received() == 3; }));
  first->Stop(200);  // committed, as if, but stopped before acknowledging them

  o.delivered.clear();
  for (const RawMessage& m : Messages()) o.delivered.push_back({m.packet_id, m.digest});
  auto second = Create(o);
  second->Start();
  ASSERT_TRUE(WaitFor(
      [&] { return metrics_.Counter("edge_agent_mqtt_duplicates_total", "").Value() == 3; }));
  ASSERT_TRUE(PublishLines(broker.port(), "t/one", 1, {"after"}, dir_));
  ASSERT_TRUE(WaitFor([&] { return Received() == 4; }));
  EXPECT_EQ(Messages().back().payload, "after");
  second->Stop(1000);
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
