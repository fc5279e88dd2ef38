#pragma once

// What both MQTT clients (native_ingest.cc, paho_ingest.cc) do around a reconnect: the
// delays between attempts, and the gap without a connection, counted in
// edge_agent_mqtt_disconnected_seconds_total and logged once the connection is back.
// Private to the agent's MQTT clients; one thread only (the client's own).

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "edge/agent/ingest.h"
#include "edge/cloudsync/backoff.h"

namespace edge::agent {

class Reconnect {
 public:
  Reconnect(const IngestOptions& options, IngestMetrics& metrics)
      : url_(options.url),
        backoff_(options.backoff_initial_ms, options.backoff_max_ms, std::random_device{}()),
        metrics_(metrics) {}

  // The connection was lost: the gap starts now, unless it already runs.
  void Lost(int64_t now_ms) {
    if (!lost_ms_) lost_ms_ = now_ms;
  }

  // Delay before the next attempt (full jitter, the ceiling doubling per attempt).
  int64_t NextDelayMs() { return backoff_.NextDelayMs(); }

  // Connected: the delays start over and, after a loss, the gap is counted and logged.
  void Connected(int64_t now_ms) {
    const int failed_attempts = std::max(0, backoff_.attempt() - 1);  // the last delay led here
    backoff_.Reset();
    if (!lost_ms_) return;  // the first connection since start
    const int64_t gap_ms = std::max<int64_t>(0, now_ms - *lost_ms_);
    lost_ms_.reset();
    metrics_.disconnected_seconds.Inc(static_cast<double>(gap_ms) / 1000.0);
    spdlog::warn("mqtt: reconnected to {} after {} ms without a connection ({} failed attempts)",
                 url_, gap_ms, failed_attempts);
  }

 private:
  std::string url_;
  cloudsync::Backoff backoff_;
  IngestMetrics& metrics_;
  std::optional<int64_t> lost_ms_;
};

}  // namespace edge::agent
