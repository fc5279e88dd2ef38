#pragma once

// The pipeline thread: takes raw MQTT messages from the bounded queue, decodes them into
// readings, runs the rules engine, and group-commits the resulting alert events to the
// outbox. It owns all rule state and the SQLite write connection.
//
// Durability: an alert event is counted in edge_agent_alerts_raised_total only after the
// transaction holding it committed. If a commit fails (disk full, I/O error) the events stay
// in memory and are retried on the next cycle; that backlog is bounded by
// `max_uncommitted_events`, beyond which the oldest uncommitted events are dropped and
// counted (edge_agent_alerts_dropped_total). The thread never blocks ingest.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edge/agent/bounded_queue.h"
#include "edge/agent/decoder.h"
#include "edge/agent/ingest.h"
#include "edge/agent/store.h"
#include "edge/common/clock.h"
#include "edge/common/metrics.h"
#include "edge/rules/engine.h"

namespace edge::agent {

struct PipelineOptions {
  std::string node_id;
  DecodeOptions decode;
  size_t max_batch = 4096;           // messages taken from the queue per cycle
  int64_t commit_interval_ms = 100;  // longest wait for messages before a cycle ends
  size_t max_uncommitted_events = 100'000;
};

class Pipeline {
 public:
  // `on_committed` runs on the pipeline thread after each commit that added rows (used to
  // wake the uplink); it must not block.
  Pipeline(PipelineOptions options, BoundedQueue<RawMessage>& queue, rules::Engine engine,
           StoreWriter& store, Metrics& metrics, Clock& clock,
           std::function<void()> on_committed = {});
  ~Pipeline();

  // Runs until the queue is closed and drained, then commits what is left. Call on the
  // pipeline thread.
  void Run();

  // One cycle over `batch` (decode, rules, commit). Exposed for tests; same thread rule.
  void ProcessBatch(std::vector<RawMessage>& batch);

  size_t uncommitted_events() const { return uncommitted_.size(); }

 private:
  struct Counters;
  void Commit();

  PipelineOptions options_;
  BoundedQueue<RawMessage>& queue_;
  rules::Engine engine_;
  StoreWriter& store_;
  Metrics& metrics_;
  Clock& clock_;
  std::function<void()> on_committed_;
  std::unique_ptr<Counters> counters_;
  std::vector<rules::Reading> readings_;        // scratch, reused
  std::vector<rules::AlertEvent> events_;       // scratch, reused
  std::vector<rules::AlertEvent> uncommitted_;  // events waiting for a successful commit
};

// The outbox payload of one alert event (docs/protocol.md, "Alert payload").
std::string AlertPayloadJson(std::string_view node_id, const rules::AlertEvent& event);

}  // namespace edge::agent
