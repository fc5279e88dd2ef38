#pragma once

// The store's part of the agent's HTTP port: GET /v1/readings (the readings ring around an
// incident, docs/operations.md) and the store gauges refreshed on each /metrics scrape.
// Both run on the network thread, on its StoreReader.

#include <string_view>

#include "edge/agent/http_server.h"
#include "edge/agent/store.h"
#include "edge/common/metrics.h"

namespace edge::agent {

// Most readings one request returns.
inline constexpr size_t kMaxReadingsPerRequest = 100'000;
inline constexpr size_t kDefaultReadingsPerRequest = 10'000;

// GET /v1/readings?sensor=ID&since=MS&until=MS&limit=N. `sensor` is required
// (percent-encoded as in any query string); since/until default to the whole ring, limit to
// 10000 (at most 100000). 200 with {"sensor": ID, "readings": [[ts_ms, value], ...]} oldest
// first; 400 with {"error": "..."} for a missing or malformed parameter; 500 on a store
// error.
HttpResponse ServeReadings(StoreReader& reader, std::string_view target);

// Store gauges (edge_agent_store_*), set from StoreReader::Stats() when called.
class StoreGauges {
 public:
  explicit StoreGauges(Metrics& metrics);
  void Refresh(StoreReader& reader);

 private:
  GaugeHandle& file_bytes_;
  GaugeHandle& max_bytes_;
  GaugeHandle& outbox_bytes_;
  GaugeHandle& readings_bytes_;
  GaugeHandle& dead_letter_bytes_;
  GaugeHandle& readings_rows_;
  GaugeHandle& dead_letter_rows_;
  GaugeHandle& dead_letter_evicted_;
  CounterHandle& errors_;
};

}  // namespace edge::agent
