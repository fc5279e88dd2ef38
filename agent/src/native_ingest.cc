// Native MQTT 3.1.1 subscriber on Boost.Asio: the socket is read in chunks of up to 64 KiB
// and every packet in a chunk is parsed and handed over before the next read, so a busy
// broker costs one read and at most one write (all the chunk's acks) per chunk instead of
// several system calls, locks and wake-ups per message. The chunk's messages go to the sink
// together, for one lock and at most one wake-up of the pipeline per read.
//
// Everything runs on this object's own io_context and thread: the ingest never waits
// behind the uplink and the uplink never waits behind a burst of readings. State below is
// touched only on that thread, except the atomics and what Stop() documents.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <bitset>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "broker_url.h"
#include "edge/agent/decoder.h"
#include "edge/agent/ingest.h"
#include "edge/agent/mqtt_codec.h"
#include "edge/agent/mqtt_delivery.h"
#include "edge/cloudsync/tls_context.h"
#include "edge/common/strings.h"
#include "mqtt_transport.h"
#include "reconnect.h"

namespace edge::agent {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr size_t kReadChunkBytes = 64 * 1024;
// Bytes queued behind the write in flight; more means the broker stopped reading our acks.
constexpr size_t kMaxQueuedWriteBytes = 1 << 20;
constexpr uint16_t kSubscribePacketId = 1;
constexpr size_t kSnippetBytes = 48;
// After a read smaller than this the next one waits IngestOptions::read_pause_ms: at
// 10,000 messages/s of 60 bytes and the default 2 ms a read then returns ~20 packets
// instead of one, for a twentieth of the wake-ups and system calls.
constexpr size_t kSmallReadBytes = 16 * 1024;

class NativeIngest final : public Ingest {
 public:
  NativeIngest(IngestOptions options, MessageSink sink, Metrics& metrics, Clock& clock)
      : options_(std::move(options)),
        sink_(std::move(sink)),
        clock_(clock),
        metrics_(metrics),
        // A skipped packet's payload is necessarily over mqtt.max_payload_bytes: counted as
        // the decoder counts such payloads.
        too_large_(metrics.Counter("edge_agent_readings_rejected_total", kReadingsRejectedHelp,
                                   {{"reason", "too_large"}})),
        ack_metrics_(metrics),
        reconnect_(options_, metrics_),
        tls_("mqtt", {options_.ca_file, options_.cert_file, options_.key_file}),
        parser_(options_.max_packet_bytes),
        resolver_(io_),
        watchdog_(io_),
        keepalive_timer_(io_),
        backoff_timer_(io_),
        stall_timer_(io_),
        room_timer_(io_),
        read_buffer_(kReadChunkBytes) {
    if (options_.ack_after_commit) {
      delivery_ = std::make_unique<DeliveryTracker>();
      delivery_->Seed(options_.delivered);
      options_.delivered.clear();
    }
    Result<BrokerUrl> address = ParseBrokerUrl(options_.url);
    if (address.ok()) {
      address_ = *address;
    } else {
      address_error_ = address.error();
      spdlog::error("mqtt: {}", address_error_);
    }
    for (const std::string& topic : options_.topics) {
      filters_.push_back({topic, static_cast<uint8_t>(std::clamp(options_.qos, 0, 2))});
    }
  }

  ~NativeIngest() override { Stop(1000); }

  void Start() override {
    std::lock_guard lock(stop_mutex_);
    if (started_ || stopped_) return;
    started_ = true;
    asio::co_spawn(io_, RunLoop(), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("mqtt: ingest loop ended: {}", ex.what());
      }
    });
    std::promise<void> ran;
    run_done_ = ran.get_future();
    thread_ = std::thread([this, ran = std::move(ran)]() mutable {
      pthread_setname_np(pthread_self(), "edge-mqtt");
      try {
        io_.run();
      } catch (const std::exception& e) {
        spdlog::error("mqtt: ingest thread: {}", e.what());
      }
      ran.set_value();
    });
  }

  // Thread-safe and idempotent. Sends DISCONNECT when connected and waits for it to be
  // written, the whole bounded by timeout_ms; then stops the thread and joins it.
  void Stop(int64_t timeout_ms) override {
    std::lock_guard lock(stop_mutex_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    if (thread_.joinable()) {
      asio::post(io_, [this, timeout_ms] { BeginShutdown(timeout_ms); });
      if (run_done_.wait_for(std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0))) !=
          std::future_status::ready) {
        spdlog::warn("mqtt: stop took longer than {} ms; dropping the connection", timeout_ms);
        io_.stop();
      }
      thread_.join();
    }
    connected_ = false;
    metrics_.connected.Set(0);
  }

  bool Connected() const override { return connected_.load(); }

  void Acknowledge(uint64_t seq) override {
    if (!delivery_) return;
    asio::post(io_, [this, seq] { OnDurable(seq); });
  }

 private:
  enum class State { kIdle, kAwaitConnack, kAwaitSuback, kReady };

  asio::awaitable<void> RunLoop() {
    while (!stopping_) {
      std::string why;
      try {
        why = co_await RunSession();
      } catch (const std::exception& e) {
        why = std::string("internal error: ") + e.what();
      }
      EndSession();
      if (stopping_) break;
      if (accepted_) {
        reconnect_.Lost(clock_.MonotonicMs());
        spdlog::warn("mqtt connection lost: {}", why);
      } else {
        metrics_.connects_failed.Inc();
        spdlog::warn("mqtt connect to {} failed: {}", options_.url, why);
      }
      const int64_t delay = reconnect_.NextDelayMs();
      spdlog::info("mqtt reconnect to {} in {} ms", options_.url, delay);
      backoff_timer_.expires_after(std::chrono::milliseconds(delay));
      error_code ec;
      co_await backoff_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // One connection, from resolving the broker to losing it. Returns why it ended;
  // accepted_ then tells whether a CONNACK accepted it (else it counts as a failed connect).
  asio::awaitable<std::string> RunSession() {
    accepted_ = false;
    if (!address_error_.empty()) co_return address_error_;
    auto t = std::make_shared<Transport>(io_);
    transport_ = t;
    fail_reason_.clear();
    state_ = State::kAwaitConnack;
    ArmWatchdog(options_.connect_timeout_ms, "no CONNACK within the connect timeout");

    error_code ec;
    const auto endpoints =
        co_await resolver_.async_resolve(address_.url.host, std::to_string(address_.url.port),
                                         asio::redirect_error(asio::use_awaitable, ec));
    if (!fail_reason_.empty()) co_return fail_reason_;
    if (ec) co_return "resolving " + address_.url.host + ": " + ec.message();

    // One endpoint at a time, so that the watchdog's close is never undone by a retry.
    ec = asio::error::host_not_found;
    for (const auto& entry : endpoints) {
      error_code ignored;
      t->plain.close(ignored);
      co_await t->plain.async_connect(entry.endpoint(),
                                      asio::redirect_error(asio::use_awaitable, ec));
      if (!fail_reason_.empty()) co_return fail_reason_;
      if (!ec) break;
    }
    if (ec) co_return "tcp connect: " + ec.message();
    error_code ignored;
    t->plain.set_option(tcp::no_delay(true), ignored);

    if (address_.tls) {
      t->tls_context = tls_.Get();
      t->tls = std::make_unique<ssl::stream<tcp::socket>>(std::move(t->plain), *t->tls_context);
      error_code addr_ec;
      asio::ip::make_address(address_.url.host, addr_ec);
      if (addr_ec) SSL_set_tlsext_host_name(t->tls->native_handle(), address_.url.host.c_str());
      t->tls->set_verify_mode(ssl::verify_peer);
      t->tls->set_verify_callback(ssl::host_name_verification(address_.url.host));
      co_await t->tls->async_handshake(ssl::stream_base::client,
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (!fail_reason_.empty()) co_return fail_reason_;
      if (ec) co_return "tls handshake: " + ec.message();
    }

    std::string connect;
    mqtt::ConnectOptions co;
    co.client_id = options_.client_id;
    co.keepalive_s = KeepaliveSeconds();
    co.username = options_.username;
    co.password = options_.password;
    co.clean_session = options_.clean_session;
    if (Status s = mqtt::EncodeConnect(co, connect); !s.ok()) co_return s.message();
    last_received_ms_ = clock_.MonotonicMs();
    Send(connect);

    while (true) {
      while (options_.has_room && delivery_ && delivery_->owed() > 0 && state_ == State::kReady &&
             !options_.has_room() && !stopping_.load(std::memory_order_relaxed)) {
        // Acks are held and the queue is more than half full: leave the rest with the broker
        // for now. (A flood of QoS 0 messages, with none held, is read on and the queue drops
        // the oldest, counted: nothing is acknowledged for those.)
        room_timer_.expires_after(std::chrono::milliseconds(kQueueFullPauseMs));
        co_await room_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!fail_reason_.empty()) co_return fail_reason_;
      }
      size_t n = 0;
      if (t->tls) {
        n = co_await t->tls->async_read_some(asio::buffer(read_buffer_),
                                             asio::redirect_error(asio::use_awaitable, ec));
      } else {
        n = co_await t->plain.async_read_some(asio::buffer(read_buffer_),
                                              asio::redirect_error(asio::use_awaitable, ec));
      }
      if (!fail_reason_.empty()) co_return fail_reason_;
      if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
        co_return "the broker closed the connection";
      }
      if (ec) co_return "read: " + ec.message();
      if (!t->tls && n < kSmallReadBytes && options_.read_pause_ms > 0) {
        // The ACK sent for this read (set after the pause, below) made the broker send what
        // it held back, likely after the read took what was queued: take that too, so that
        // it waits for no pause. (Over TLS the next read takes it.)
        const ssize_t more = ::recv(t->plain.native_handle(), read_buffer_.data() + n,
                                    read_buffer_.size() - n, MSG_DONTWAIT);
        if (more > 0) n += static_cast<size_t>(more);
      }
      HandleChunk(std::string_view(read_buffer_.data(), n));
      if (!fail_reason_.empty()) co_return fail_reason_;
      if (n < kSmallReadBytes && state_ == State::kReady && options_.read_pause_ms > 0) {
        // A trickle: let it pile up for a moment so the next read takes many packets. The
        // thread sleeps rather than waiting on a timer: the next read then finds its data
        // at once, without going through epoll (one system call instead of five), and
        // nothing else on this thread minds a few milliseconds (keepalive, acks, Stop).
        std::this_thread::sleep_for(std::chrono::milliseconds(options_.read_pause_ms));
        // A broker with Nagle's algorithm on (mosquitto's default) holds its small segments
        // while one it sent is not ACKed, and Linux delays this side's ACK by up to 40 ms.
        // So ACK now, right before the read: Linux sends it at once, or as the read below
        // empties the receive queue. Either way the broker then sends what it
        // held at once, and this read or the one just above takes it: a message waits for
        // at most one pause. (An ACK sent before the pause instead would let the broker
        // hold all that arrives during the pause until the next one: up to two pauses.)
        // Linux re-arms delayed ACKs on its own, so it is set every time.
        const int one = 1;
        (void)::setsockopt(t->Socket().native_handle(), IPPROTO_TCP, TCP_QUICKACK, &one,
                           sizeof one);
      }
    }
  }

  // Parses and handles every packet of one read; the acks go out in one write.
  void HandleChunk(std::string_view chunk) {
    last_received_ms_ = clock_.MonotonicMs();
    const int64_t receive_ms = clock_.WallMs();
    acks_.clear();
    while (fail_reason_.empty()) {
      const std::string_view before = chunk;
      mqtt::ParseResult r = parser_.Next(chunk);
      if (r.event == mqtt::ParseEvent::kNeedMore) break;
      if (r.event == mqtt::ParseEvent::kError) {
        spdlog::error("mqtt protocol error from {}: {} (bytes: \"{}\")", options_.url, r.error,
                      PrintableExcerpt(before, kSnippetBytes));
        Fail("protocol error: " + r.error);
        break;
      }
      if (r.event == mqtt::ParseEvent::kSkipped) {
        too_large_.Inc();
        spdlog::debug("mqtt: skipped a packet larger than {} bytes", parser_.max_packet_bytes());
        if (r.packet.type == mqtt::PacketType::kPublish) AcknowledgeNow(r.packet);
        continue;
      }
      HandlePacket(r.packet, receive_ms);
    }
    // Messages parsed before a protocol error in the same chunk are delivered too.
    if (pending_ > 0) {
      if (!stopping_.load(std::memory_order_relaxed)) {
        sink_(std::span<RawMessage>(messages_.data(), pending_));
      }
      if (delivery_ && delivery_->owed() >= kAckStallMinOwed) ArmStallTimer();
      for (size_t i = 0; i < pending_; ++i) PrepareForReuse(messages_[i]);
      pending_ = 0;
    }
    SendAcks();
  }

  // Encodes the acks in delivery_acks_ into acks_ and sends acks_.
  void SendAcks() {
    for (const DeliveryTracker::Ack& a : delivery_acks_) {
      if (a.qos == 2) {
        awaiting_release_[a.packet_id] = true;
        mqtt::EncodePubrec(a.packet_id, acks_);
      } else {
        mqtt::EncodePuback(a.packet_id, acks_);
      }
    }
    delivery_acks_.clear();
    if (!acks_.empty() && fail_reason_.empty()) Send(acks_);
    acks_.clear();
  }

  // From Acknowledge(): the pipeline committed every message up to `seq`.
  void OnDurable(uint64_t seq) {
    delivery_->Durable(seq, delivery_acks_);
    if (transport_ && state_ != State::kIdle) {
      SendAcks();
    } else {
      delivery_acks_.clear();
    }
    if (shutdown_waits_for_acks_ && delivery_->owed() == 0) {
      shutdown_waits_for_acks_ = false;
      SendDisconnect(shutdown_timeout_ms_);
    }
  }

  // While acks are owed: when nothing has arrived for kAckStallMs the broker's in-flight
  // window is likely full, so ask for the commit that lets them go.
  void ArmStallTimer() {
    if (stall_armed_) return;
    stall_armed_ = true;
    stall_timer_.expires_after(std::chrono::milliseconds(kAckStallMs));
    stall_timer_.async_wait([this](const error_code& ec) {
      stall_armed_ = false;
      if (ec || !delivery_ || delivery_->owed() < kAckStallMinOwed) return;
      if (clock_.MonotonicMs() - last_received_ms_ >= kAckStallMs) {
        ack_metrics_.stalls.Inc();
        if (options_.request_commit) options_.request_commit();
      }
      ArmStallTimer();
    });
  }

  void HandlePacket(const mqtt::Packet& p, int64_t receive_ms) {
    if (state_ == State::kAwaitConnack && p.type != mqtt::PacketType::kConnack) {
      ProtocolError("expected CONNACK first");
      return;
    }
    switch (p.type) {
      case mqtt::PacketType::kConnack:
        OnConnack(p);
        return;
      case mqtt::PacketType::kSuback:
        OnSuback(p);
        return;
      case mqtt::PacketType::kPublish:
        OnPublish(p, receive_ms);
        return;
      case mqtt::PacketType::kPubrel:
        awaiting_release_[p.packet_id] = false;
        mqtt::EncodePubcomp(p.packet_id, acks_);
        return;
      default:  // PINGRESP; acks of packets we never send are ignored
        return;
    }
  }

  void OnPublish(const mqtt::Packet& p, int64_t receive_ms) {
    // Not acknowledged once stopping: a persistent session's broker sends it again.
    if (stopping_.load(std::memory_order_relaxed)) return;
    uint32_t digest = 0;
    if (delivery_ && p.qos > 0) {
      // A QoS 2 id whose PUBREC went out and whose PUBREL has not come: the PUBREC was lost.
      if (p.qos == 2 && awaiting_release_[p.packet_id]) {
        mqtt::EncodePubrec(p.packet_id, acks_);
        return;
      }
      digest = MessageDigest(p.topic, p.payload);
      const auto verdict =
          delivery_->OnPublish(p.packet_id, p.qos, p.dup, digest, next_seq_ + 1, delivery_acks_);
      if (verdict == DeliveryTracker::Verdict::kDuplicate) {
        ack_metrics_.duplicates.Inc();
        return;
      }
      if (verdict == DeliveryTracker::Verdict::kNewOverflow) ack_metrics_.uncommitted.Inc();
    } else {
      AcknowledgeNow(p);
      // A QoS 2 id already delivered and not yet released is the broker's resend.
      if (p.qos == 2) {
        if (awaiting_release_[p.packet_id]) return;
        awaiting_release_[p.packet_id] = true;
      }
    }
    if (pending_ == messages_.size()) messages_.emplace_back();
    RawMessage& m = messages_[pending_++];
    m.topic.assign(p.topic);  // into the capacity of a spent message when the sink left one
    m.payload.assign(p.payload);
    m.receive_ms = receive_ms;
    m.seq = ++next_seq_;
    m.packet_id = p.qos > 0 ? p.packet_id : 0;
    m.digest = digest;
  }

  void AcknowledgeNow(const mqtt::Packet& p) {
    if (p.qos == 1) mqtt::EncodePuback(p.packet_id, acks_);
    if (p.qos == 2) mqtt::EncodePubrec(p.packet_id, acks_);
  }

  void OnConnack(const mqtt::Packet& p) {
    if (state_ != State::kAwaitConnack) {
      ProtocolError("a second CONNACK");
      return;
    }
    if (p.connack_code != 0) {
      Fail("connection refused: " + std::string(mqtt::ConnackCodeText(p.connack_code)) + " (" +
           std::to_string(p.connack_code) + ")");
      return;
    }
    metrics_.connects_ok.Inc();
    accepted_ = true;
    session_present_ = p.session_present;
    state_ = State::kAwaitSuback;
    awaiting_release_.reset();
    std::string subscribe;
    if (Status s = mqtt::EncodeSubscribe(kSubscribePacketId, filters_, subscribe); !s.ok()) {
      Fail(s.message());
      return;
    }
    Send(subscribe);
    ArmWatchdog(options_.connect_timeout_ms, "no SUBACK within the connect timeout");
    ArmKeepalive(transport_);
  }

  void OnSuback(const mqtt::Packet& p) {
    if (state_ != State::kAwaitSuback || p.packet_id != kSubscribePacketId ||
        p.suback_results.size() != filters_.size()) {
      ProtocolError("an unexpected SUBACK");
      return;
    }
    watchdog_.cancel();
    size_t granted = 0;
    for (size_t i = 0; i < filters_.size(); ++i) {
      if (static_cast<uint8_t>(p.suback_results[i]) == mqtt::kSubackFailure) {
        spdlog::error("mqtt: the broker refused the subscription to '{}'", filters_[i].filter);
      } else {
        ++granted;
      }
    }
    state_ = State::kReady;
    connected_ = true;
    metrics_.connected.Set(1);
    spdlog::info("mqtt connected to {}, subscribed to {} filter(s), session {}", options_.url,
                 granted, session_present_ ? "resumed" : "new");
    reconnect_.Connected(clock_.MonotonicMs());
  }

  void ProtocolError(std::string_view what) {
    spdlog::error("mqtt protocol error from {}: {}", options_.url, what);
    Fail("protocol error: " + std::string(what));
  }

  uint16_t KeepaliveSeconds() const {
    return static_cast<uint16_t>(std::clamp<int64_t>(options_.keepalive_ms / 1000, 0, 65535));
  }

  // Ends the connection: the pending read completes with an error and RunSession returns
  // `why` (the first reason given wins).
  void Fail(std::string why) {
    if (fail_reason_.empty()) fail_reason_ = std::move(why);
    resolver_.cancel();
    if (transport_) transport_->Close();
  }

  void ArmWatchdog(int64_t ms, std::string why) {
    watchdog_.expires_after(std::chrono::milliseconds(std::max<int64_t>(ms, 1)));
    watchdog_.async_wait([this, t = transport_, why = std::move(why)](const error_code& ec) {
      if (!ec && t == transport_) Fail(why);
    });
  }

  // PINGREQ after keepalive without sending; the connection is dropped after 1.5 x
  // keepalive without receiving anything.
  void ArmKeepalive(const std::shared_ptr<Transport>& t) {
    const int64_t keepalive_ms = int64_t{KeepaliveSeconds()} * 1000;
    if (keepalive_ms == 0) return;
    keepalive_timer_.expires_after(
        std::chrono::milliseconds(std::max<int64_t>(keepalive_ms / 4, 50)));
    keepalive_timer_.async_wait([this, t, keepalive_ms](const error_code& ec) {
      if (ec || t != transport_) return;
      const int64_t now = clock_.MonotonicMs();
      if (now - last_received_ms_ > keepalive_ms * 3 / 2) {
        Fail("nothing received for " + std::to_string(now - last_received_ms_) + " ms (keepalive " +
             std::to_string(keepalive_ms / 1000) + " s)");
        return;
      }
      if (now - last_sent_ms_ >= keepalive_ms) {
        std::string ping;
        mqtt::EncodePingreq(ping);
        Send(ping);
      }
      ArmKeepalive(t);
    });
  }

  // Queues bytes behind the write in flight (at most one async_write at a time).
  void Send(std::string_view bytes) {
    if (!transport_ || !fail_reason_.empty()) return;
    if (queued_.size() + bytes.size() > kMaxQueuedWriteBytes) {
      Fail("more than " + std::to_string(kMaxQueuedWriteBytes) +
           " bytes waiting to be written: the broker does not read");
      return;
    }
    queued_.append(bytes);
    last_sent_ms_ = clock_.MonotonicMs();
    if (!writing_) StartWrite();
  }

  void StartWrite() {
    writing_ = true;
    auto out = std::make_shared<std::string>();
    out->swap(queued_);
    auto done = [this, t = transport_, out](const error_code& ec, size_t) {
      if (t != transport_) return;  // a previous connection's write
      writing_ = false;
      if (ec) {
        Fail("write: " + ec.message());
        return;
      }
      if (!queued_.empty()) {
        StartWrite();
      } else if (close_after_write_) {
        Fail("stopped");
      }
    };
    if (transport_->tls) {
      asio::async_write(*transport_->tls, asio::buffer(*out), std::move(done));
    } else {
      asio::async_write(transport_->plain, asio::buffer(*out), std::move(done));
    }
  }

  void EndSession() {
    watchdog_.cancel();
    keepalive_timer_.cancel();
    if (transport_) transport_->Close();
    transport_.reset();
    queued_.clear();
    writing_ = false;
    close_after_write_ = false;
    state_ = State::kIdle;
    parser_.Reset();
    connected_ = false;
    metrics_.connected.Set(0);
    stall_timer_.cancel();
    if (delivery_) delivery_->Disconnected();
  }

  // On the io thread, from Stop(). With acks owed, asks for a commit and waits up to half
  // the timeout for it, so that what was committed is acknowledged before the DISCONNECT.
  void BeginShutdown(int64_t timeout_ms) {
    backoff_timer_.cancel();
    if (delivery_ && delivery_->owed() > 0 && state_ == State::kReady && transport_ &&
        fail_reason_.empty() && options_.request_commit) {
      shutdown_waits_for_acks_ = true;
      shutdown_timeout_ms_ = timeout_ms / 2;
      options_.request_commit();
      ArmWatchdog(timeout_ms / 2, "stopped");  // replaced by the DISCONNECT's when acks come
      watchdog_.async_wait([this](const error_code& ec) {
        if (ec || !shutdown_waits_for_acks_) return;
        shutdown_waits_for_acks_ = false;
        spdlog::warn(
            "mqtt: {} acknowledgement(s) still owed at stop; the broker sends those "
            "messages again",
            delivery_->owed());
      });
      return;
    }
    SendDisconnect(timeout_ms);
  }

  void SendDisconnect(int64_t timeout_ms) {
    if (state_ == State::kReady && transport_ && fail_reason_.empty()) {
      std::string disconnect;
      mqtt::EncodeDisconnect(disconnect);
      close_after_write_ = true;
      Send(disconnect);
      ArmWatchdog(timeout_ms, "stopped");
      return;
    }
    Fail("stopped");
  }

  IngestOptions options_;
  MessageSink sink_;
  Clock& clock_;
  IngestMetrics metrics_;
  CounterHandle& too_large_;
  AckMetrics ack_metrics_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};

  std::mutex stop_mutex_;  // guards started_, stopped_, thread_ and run_done_
  bool started_ = false;
  bool stopped_ = false;
  std::thread thread_;
  std::future<void> run_done_;

  // io thread only, from here on.
  BrokerUrl address_;
  std::string address_error_;
  std::vector<mqtt::SubscribeFilter> filters_;  // views into options_.topics
  Reconnect reconnect_;
  cloudsync::TlsContextSource tls_;  // for ssl://
  bool session_present_ = false;     // the last CONNACK resumed a session
  mqtt::MqttParser parser_;
  State state_ = State::kIdle;
  bool accepted_ = false;    // the current connection's CONNACK accepted it
  std::string fail_reason_;  // why the current connection is ending; empty while it is fine
  int64_t last_sent_ms_ = 0;
  int64_t last_received_ms_ = 0;
  std::string acks_;
  // The current chunk's messages are the first pending_; the slots are kept between chunks
  // with whatever the sink left in them (spent messages whose buffers are reused).
  std::vector<RawMessage> messages_;
  size_t pending_ = 0;
  std::string queued_;  // bytes waiting for the write in flight
  bool writing_ = false;
  bool close_after_write_ = false;
  std::bitset<65536> awaiting_release_;  // QoS 2 packet ids delivered, PUBREL not yet seen
  // With ack_after_commit: what is owed to the broker, and the acks to send next.
  std::unique_ptr<DeliveryTracker> delivery_;
  std::vector<DeliveryTracker::Ack> delivery_acks_;
  uint64_t next_seq_ = 0;  // the number of the last message handed over
  bool stall_armed_ = false;
  bool shutdown_waits_for_acks_ = false;
  int64_t shutdown_timeout_ms_ = 0;

  // Declared after the state their handlers use and destroyed first: destroying them
  // abandons their handlers without running them.
  asio::io_context io_{1};
  tcp::resolver resolver_;
  asio::steady_timer watchdog_;         // connect, SUBACK and DISCONNECT deadlines
  asio::steady_timer keepalive_timer_;  // PINGREQ and receive timeout
  asio::steady_timer backoff_timer_;    // between connection attempts
  asio::steady_timer stall_timer_;      // ArmStallTimer
  asio::steady_timer room_timer_;       // while IngestOptions::has_room says no
  std::shared_ptr<Transport> transport_;
  std::vector<char> read_buffer_;
};

}  // namespace

std::unique_ptr<Ingest> CreateNativeIngest(asio::io_context& /*io*/, IngestOptions options,
                                           MessageSink sink, Metrics& metrics, Clock& clock) {
  return std::make_unique<NativeIngest>(std::move(options), std::move(sink), metrics, clock);
}

}  // namespace edge::agent
