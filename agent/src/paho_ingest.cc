// The only file that includes Paho headers.
#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>

#include "edge/agent/ingest.h"
#include "reconnect.h"

namespace edge::agent {
namespace {

namespace asio = boost::asio;

std::string NormalizeUrl(const std::string& url) {
  if (url.rfind("mqtt://", 0) == 0) return "tcp://" + url.substr(7);
  if (url.rfind("mqtts://", 0) == 0) return "ssl://" + url.substr(8);
  return url;
}

class PahoIngest final : public Ingest, private mqtt::iaction_listener {
 public:
  PahoIngest(asio::io_context& io, IngestOptions options, MessageSink sink, Metrics& metrics,
             Clock& clock)
      : io_(io),
        timer_(io),
        options_(std::move(options)),
        sink_(std::move(sink)),
        clock_(clock),
        metrics_(metrics),
        reconnect_(options_, metrics_),
        client_(NormalizeUrl(options_.url), options_.client_id,
                mqtt::create_options(MQTTVERSION_3_1_1)) {
    auto builder = mqtt::connect_options_builder()
                       .clean_session(options_.clean_session)
                       .keep_alive_interval(std::chrono::milliseconds(options_.keepalive_ms))
                       .connect_timeout(std::chrono::milliseconds(options_.connect_timeout_ms))
                       .automatic_reconnect(false);
    if (!options_.username.empty()) builder.user_name(options_.username);
    if (!options_.password.empty()) builder.password(options_.password);
    const std::string url = NormalizeUrl(options_.url);
    if (url.rfind("ssl://", 0) == 0) {
      // enable_server_cert_auth checks the chain only; verify adds Paho C's post-connect
      // check that the certificate names the host of the url (MQTTAsync_SSLOptions.verify),
      // as the native client does.
      auto ssl = mqtt::ssl_options_builder().enable_server_cert_auth(true).verify(true);
      if (!options_.ca_file.empty()) ssl.trust_store(options_.ca_file);
      // Paho C reads these at every connect, so renewed files take effect at the next one.
      if (!options_.cert_file.empty()) {
        ssl.key_store(options_.cert_file).private_key(options_.key_file);
      }
      builder.ssl(ssl.finalize());
    }
    connect_options_ = builder.finalize();

    client_.set_message_callback([this](mqtt::const_message_ptr msg) {
      // Copy and hand over; nothing else on this thread.
      if (stopping_.load(std::memory_order_relaxed)) return;
      // Into message_, where the sink may have left a spent message whose buffers fit.
      message_.topic = msg->get_topic();
      message_.payload = msg->get_payload_str();
      message_.receive_ms = clock_.WallMs();
      sink_(std::span<RawMessage>(&message_, 1));
    });
    client_.set_connected_handler([this](const std::string&) { OnConnected(); });
    client_.set_connection_lost_handler([this](const std::string& cause) {
      connected_ = false;
      metrics_.connected.Set(0);
      spdlog::warn("mqtt connection lost: {}", cause.empty() ? "unknown cause" : cause);
      asio::post(io_, [this, now = clock_.MonotonicMs()] { reconnect_.Lost(now); });
      ScheduleReconnect();
    });
  }

  ~PahoIngest() override { Stop(1000); }

  void Start() override {
    asio::post(io_, [this] { Connect(); });
  }

  void Stop(int64_t timeout_ms) override {
    if (stopping_.exchange(true)) return;
    asio::post(io_, [this] { timer_.cancel(); });
    try {
      if (client_.is_connected()) {
        client_.disconnect(std::chrono::milliseconds(timeout_ms))
            ->wait_for(std::chrono::milliseconds(timeout_ms));
      }
    } catch (const std::exception& e) {
      spdlog::warn("mqtt disconnect: {}", e.what());
    }
    client_.disable_callbacks();
    connected_ = false;
    metrics_.connected.Set(0);
  }

  bool Connected() const override { return connected_.load(); }

 private:
  // On the io_context thread.
  void Connect() {
    if (stopping_) return;
    try {
      client_.connect(connect_options_, nullptr, *this);
    } catch (const std::exception& e) {
      spdlog::error("mqtt connect to {} failed: {}", options_.url, e.what());
      metrics_.connects_failed.Inc();
      ScheduleReconnect();
    }
  }

  // Any thread: moves the retry onto the io_context with a jittered delay.
  void ScheduleReconnect() {
    if (stopping_) return;
    asio::post(io_, [this] {
      if (stopping_) return;
      const int64_t delay = reconnect_.NextDelayMs();
      spdlog::info("mqtt reconnect to {} in {} ms", options_.url, delay);
      timer_.expires_after(std::chrono::milliseconds(delay));
      timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) Connect();
      });
    });
  }

  // iaction_listener for connect(): runs on a Paho thread.
  void on_failure(const mqtt::token& tok) override {
    metrics_.connects_failed.Inc();
    spdlog::warn("mqtt connect to {} failed (rc {})", options_.url, tok.get_return_code());
    ScheduleReconnect();
  }
  void on_success(const mqtt::token&) override {}

  // Paho thread, after every successful (re)connect.
  void OnConnected() {
    metrics_.connects_ok.Inc();
    try {
      for (const auto& topic : options_.topics) client_.subscribe(topic, options_.qos);
    } catch (const std::exception& e) {
      spdlog::error("mqtt subscribe failed: {}", e.what());
    }
    connected_ = true;
    metrics_.connected.Set(1);
    asio::post(io_, [this, now = clock_.MonotonicMs()] { reconnect_.Connected(now); });
    spdlog::info("mqtt connected to {}, subscribed to {} filter(s)", options_.url,
                 options_.topics.size());
  }

  asio::io_context& io_;
  asio::steady_timer timer_;  // io_context thread only
  IngestOptions options_;
  MessageSink sink_;
  RawMessage message_;  // Paho's callback thread only (it delivers one message at a time)
  Clock& clock_;
  IngestMetrics metrics_;
  Reconnect reconnect_;  // io_context thread only
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};
  mqtt::connect_options connect_options_;
  mqtt::async_client client_;  // declared last: destroyed first, before what callbacks use
};

}  // namespace

std::unique_ptr<Ingest> CreatePahoIngest(asio::io_context& io, IngestOptions options,
                                         MessageSink sink, Metrics& metrics, Clock& clock) {
  return std::make_unique<PahoIngest>(io, std::move(options), std::move(sink), metrics, clock);
}

}  // namespace edge::agent
