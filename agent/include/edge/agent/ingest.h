#pragma once

// MQTT ingest. The client library's callback thread only copies the message into a
// RawMessage and hands it to the sink (which pushes onto the bounded queue): it never
// parses, blocks or touches SQLite.
//
// Connection management: the first connect and every reconnect are retried with
// exponential backoff and full jitter, scheduled on the network io_context; subscriptions
// are (re)made on every successful connect.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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
};

struct IngestOptions {
  std::string url;  // tcp://host:port or ssl://host:port (mqtt:// and mqtts:// accepted)
  std::string client_id;
  std::vector<std::string> topics;
  int qos = 1;
  std::string username;
  std::string password;
  std::string ca_file;  // for ssl://; empty = system trust store
  int64_t keepalive_ms = 30'000;
  int64_t connect_timeout_ms = 5'000;
  int64_t backoff_initial_ms = 500;
  int64_t backoff_max_ms = 30'000;
};

// Called on the MQTT client's thread. Must return quickly and must not throw.
using MessageSink = std::function<void(RawMessage&&)>;

class Ingest {
 public:
  virtual ~Ingest() = default;
  virtual void Start() = 0;                   // begins connecting; never blocks
  virtual void Stop(int64_t timeout_ms) = 0;  // disconnects; no sink calls after it returns
  virtual bool Connected() const = 0;         // thread-safe
};

// Metrics: edge_agent_mqtt_connected (gauge), edge_agent_mqtt_connects_total{result}.
std::unique_ptr<Ingest> CreatePahoIngest(boost::asio::io_context& io, IngestOptions options,
                                         MessageSink sink, Metrics& metrics, Clock& clock);

}  // namespace edge::agent
