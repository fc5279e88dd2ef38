#pragma once

// MQTT ingest. The client's receive thread only copies messages into RawMessages and hands
// them to the sink (which pushes them onto the bounded queue): it never parses payloads,
// blocks or touches SQLite.
//
// Two implementations: the native client (the default: mqtt_codec.h over Boost.Asio, on its
// own io_context and thread, many packets parsed per socket read) and Eclipse Paho C++.
//
// Connection management: the first connect and every reconnect are retried with
// exponential backoff and full jitter; subscriptions are (re)made on every successful
// connect.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edge/agent/bounded_queue.h"
#include "edge/agent/mqtt_delivery.h"
#include "edge/common/clock.h"
#include "edge/common/metrics.h"
#include "edge/common/status.h"

namespace boost::asio {
class io_context;
}

namespace edge::agent {

struct RawMessage {
  std::string topic;
  std::string payload;
  int64_t receive_ms = 0;  // wall clock at receipt
  // Set by a client that acknowledges after commit (the native client with
  // IngestOptions::ack_after_commit): the message's number (from 1, in the order received;
  // Ingest::Acknowledge takes it back), and for QoS 1 and 2 its packet id and digest, which
  // the store keeps with the readings commit (mqtt_delivery.h). 0: not numbered, QoS 0.
  uint64_t seq = 0;
  uint16_t packet_id = 0;
  uint32_t digest = 0;
  // Not a message from the broker: the sensors whose ids start with `topic` went offline at
  // receive_ms (a Modbus device stopped answering); their stale rules fire at once.
  bool offline = false;
};

// Message buffers are reused (the MQTT thread's slots, the queue's recycled messages) only up
// to this capacity; a larger one is freed once its message is processed, so that a burst of
// large payloads does not stay allocated in every buffer it passed through.
inline constexpr size_t kMaxReusedBufferBytes = 512;

// Makes a spent message ready to be filled again by any producer: frees buffers over
// kMaxReusedBufferBytes and clears the flags that producers other than MQTT set.
inline void PrepareForReuse(RawMessage& m) {
  if (m.topic.capacity() > kMaxReusedBufferBytes) std::string().swap(m.topic);
  if (m.payload.capacity() > kMaxReusedBufferBytes) std::string().swap(m.payload);
  m.offline = false;
}

// What a RawMessage weighs in the ingest queue's byte bound: its topic and payload bytes.
struct RawMessageBytes {
  size_t operator()(const RawMessage& m) const { return m.topic.size() + m.payload.size(); }
};

// The ingest queue: bounded by messages and by topic + payload bytes. Producers: the MQTT
// client, the Modbus poller; consumer: the pipeline.
using IngestQueue = BoundedQueue<RawMessage, RawMessageBytes>;

// The ceiling of the first reconnect delay; mqtt.backoff_max may not go below it.
inline constexpr int64_t kMqttFirstRetryMs = 100;

struct IngestOptions {
  std::string url;  // tcp://host:port or ssl://host:port (mqtt:// and mqtts:// accepted)
  std::string client_id;
  std::vector<std::string> topics;
  int qos = 1;
  std::string username;
  std::string password;
  std::string ca_file;  // for ssl://; empty = system trust store
  // For ssl://: the client certificate (PEM chain) and its key, read again at the next
  // connect after one of them changed (TlsContextSource). Both or neither.
  std::string cert_file;
  std::string key_file;
  int64_t keepalive_ms = 30'000;
  int64_t connect_timeout_ms = 5'000;
  // false: a persistent session (the broker queues QoS 1 and 2 messages while we are away).
  bool clean_session = false;
  // Reconnect delays: full jitter, uniform in [0, min(max, initial * 2^attempt)].
  int64_t backoff_initial_ms = kMqttFirstRetryMs;
  int64_t backoff_max_ms = 10'000;
  // Native client only: a packet with a larger remaining length is skipped as it streams
  // past (never buffered), acknowledged and counted. The default fits a 64 KiB payload with the
  // longest topic (2 + 65535 bytes) and a packet id.
  size_t max_packet_bytes = 65'536 + 65'539;
  // Native client only: after a read of under 16 KiB the next read waits this long, so that
  // a trickle of messages arrives many per read (fewer wake-ups and system calls); a
  // message waits at most this long more. 0: no pause.
  int64_t read_pause_ms = 2;
  // Native client only (mqtt.ack: commit): a QoS 1 or 2 message is acknowledged (PUBACK,
  // PUBREC) only once Acknowledge() says that its readings are committed, so that a crash
  // loses nothing the broker handed over: the broker sends it again. false: on receipt.
  bool ack_after_commit = false;
  // With ack_after_commit: the messages of the store's last readings commit before this
  // start, so that the broker's resend of one of them is recognised (mqtt_delivery.h).
  std::vector<DeliveredMessage> delivered;
  // With ack_after_commit: asks for an early commit (Pipeline::RequestCommit) when the
  // broker has stopped sending for kAckStallMs while acknowledgements are owed (its
  // in-flight window is full), and at Stop. Called on the client's thread; must not block.
  std::function<void()> request_commit;
  // Native client with ack_after_commit: checked before each socket read while
  // acknowledgements are held; while it answers false the client does not read (checking
  // again every kQueueFullPauseMs), so that TCP makes the broker hold what the ingest queue
  // has no room for, instead of the queue dropping QoS 1/2 messages that would then be
  // acknowledged unprocessed. Called on the client's thread; must not block.
  std::function<bool()> has_room;
};

inline constexpr int64_t kQueueFullPauseMs = 2;

// With ack_after_commit, the client asks for an early commit when it owes at least
// kAckStallMinOwed acknowledgements and nothing has arrived for kAckStallMs: a broker that
// limits the messages in flight per client (mosquitto's max_inflight_messages, 20 by
// default) waits for them. Below that count, messages wait for the regular commit.
inline constexpr int64_t kAckStallMs = 20;
inline constexpr size_t kAckStallMinOwed = 8;

// The connection metrics both clients export: edge_agent_mqtt_connected (gauge),
// edge_agent_mqtt_connects_total{result="ok"|"failed"} and
// edge_agent_mqtt_disconnected_seconds_total (time without a connection, counted when it
// comes back).
struct IngestMetrics {
  explicit IngestMetrics(Metrics& metrics)
      : connected(metrics.Gauge("edge_agent_mqtt_connected",
                                "1 while the MQTT client is connected to the broker")),
        connects_ok(metrics.Counter("edge_agent_mqtt_connects_total",
                                    "MQTT connection attempts by result", {{"result", "ok"}})),
        connects_failed(metrics.Counter("edge_agent_mqtt_connects_total",
                                        "MQTT connection attempts by result",
                                        {{"result", "failed"}})),
        disconnected_seconds(metrics.Counter(
            "edge_agent_mqtt_disconnected_seconds_total",
            "Time between losing the MQTT connection and having it back (added on reconnect)")) {}
  GaugeHandle& connected;
  CounterHandle& connects_ok;
  CounterHandle& connects_failed;
  CounterHandle& disconnected_seconds;
};

// The native client's acknowledge-after-commit metrics (CreateNativeIngest).
struct AckMetrics {
  explicit AckMetrics(Metrics& metrics)
      : duplicates(metrics.Counter("edge_agent_mqtt_duplicates_total",
                                   "QoS 1/2 messages the broker sent again that the agent "
                                   "already had (not processed again)")),
        stalls(metrics.Counter("edge_agent_mqtt_ack_stalls_total",
                               "Early commits asked for because the broker stopped sending "
                               "while acknowledgements were owed (its in-flight window was "
                               "full)")),
        uncommitted(metrics.Counter("edge_agent_mqtt_acks_uncommitted_total",
                                    "Acknowledgements sent before their message was committed, "
                                    "because too many were owed")) {}
  CounterHandle& duplicates;
  CounterHandle& stalls;
  CounterHandle& uncommitted;
};

// Called on the MQTT client's thread with messages in the order received: the native client
// passes all those of one socket read, Paho one at a time. The sink may move from them and
// may leave spent messages in their place: the client copies later messages into those
// (reusing their buffers). Must return quickly and must not throw.
using MessageSink = std::function<void(std::span<RawMessage> messages)>;

class Ingest {
 public:
  virtual ~Ingest() = default;
  virtual void Start() = 0;                   // begins connecting; never blocks
  virtual void Stop(int64_t timeout_ms) = 0;  // disconnects; no sink calls after it returns
  virtual bool Connected() const = 0;         // thread-safe
  // Every message numbered up to `seq` (RawMessage::seq) is committed: the client sends
  // the acknowledgements it held for them, on the connection they came on (those of a
  // connection since lost are not sent: the broker sends the messages again). Thread-safe;
  // does not block. A client that acknowledges on receipt ignores it.
  virtual void Acknowledge(uint64_t /*seq*/) {}
};

// Metrics: edge_agent_mqtt_connected (gauge), edge_agent_mqtt_connects_total{result}.
// Reconnects are scheduled on `io`.
std::unique_ptr<Ingest> CreatePahoIngest(boost::asio::io_context& io, IngestOptions options,
                                         MessageSink sink, Metrics& metrics, Clock& clock);

// The native MQTT 3.1.1 client: tcp:// mqtt:// ssl:// mqtts:// (TLS verifies the broker's
// certificate chain against ca_file or the system store, and its host name; SNI sent).
// Runs on an io_context and thread of its own, started by Start() and joined by Stop();
// `io` is not used. connect_timeout_ms bounds resolve + TCP + TLS + CONNACK, and again the
// SUBACK; PINGREQ after keepalive_ms without sending, the connection is dropped after
// 1.5 x keepalive_ms without receiving. QoS 1 PUBLISH is answered with PUBACK, QoS 2 with
// PUBREC and PUBCOMP (delivered once per packet id until its PUBREL), on receipt or, with
// ack_after_commit, once committed (a resend of a message it has is then recognised,
// acknowledged and not handed over again: edge_agent_mqtt_duplicates_total). A protocol error
// from the broker closes the connection and reconnects with backoff.
// Metrics: as Paho's, plus edge_agent_readings_rejected_total{reason="too_large"} (the
// decoder's counter for payloads over the limit) for packets over max_packet_bytes, and with
// ack_after_commit edge_agent_mqtt_duplicates_total, edge_agent_mqtt_ack_stalls_total (early
// commits asked for because the broker stopped sending) and
// edge_agent_mqtt_acks_uncommitted_total (acknowledgements sent before their commit because
// kMaxOwed were owed: a broker that ignores its own window).
std::unique_ptr<Ingest> CreateNativeIngest(boost::asio::io_context& io, IngestOptions options,
                                           MessageSink sink, Metrics& metrics, Clock& clock);

}  // namespace edge::agent
