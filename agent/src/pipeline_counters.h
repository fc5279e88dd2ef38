#pragma once
// The pipeline's metric handles (Pipeline::Counters), shared by its source files.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "edge/agent/decoder.h"
#include "edge/agent/pipeline.h"
#include "edge/agent/sparkplug.h"

namespace edge::agent {

inline constexpr char kEvictedHelp[] =
    "Outbox rows evicted to keep the store within store.max_bytes";
inline constexpr char kFilteredHelp[] = "Readings dropped by the policy's filters, by reason";
inline constexpr char kReloadsHelp[] = "Local policy file reloads, by result (applied or rejected)";
inline constexpr char kReadingsDroppedHelp[] =
    "Readings not stored in the readings ring, by reason";
inline constexpr char kCommitHelp[] =
    "Time to commit one store transaction from the pipeline, by kind (outbox: alerts and "
    "rollups, WAL fsync included; readings: the readings ring), waiting for the write lock "
    "included";
// 0.25 ms to 1 s: an outbox commit on a quiet disk takes 1-4 ms.
inline const std::vector<double> kCommitBuckets{0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075,
                                                0.01,    0.025,  0.05,  0.1,   0.25,  1.0};

// Sparkplug B: messages by type, rejects and skipped metrics by reason, sequence gaps, and
// the edge nodes holding a birth. Registered up front, so that a zero shows.
struct SparkplugCounters {
  explicit SparkplugCounters(Metrics& m)
      : seq_gaps(m.Counter("edge_agent_sparkplug_seq_gaps_total",
                           "Sparkplug B messages whose seq was not the previous one + 1")),
        nodes(m.Gauge("edge_agent_sparkplug_nodes", "Sparkplug B edge nodes holding a birth")),
        nodes_evicted(m.Counter("edge_agent_sparkplug_nodes_evicted_total",
                                "Sparkplug B edge nodes forgotten, silent for sensors.idle_after, "
                                "to make room for a new one")) {
    for (size_t i = 0; i < kSparkplugTypeCount; ++i) {
      messages[i] = &m.Counter("edge_agent_sparkplug_messages_total",
                               "Sparkplug B messages decoded or rejected, by message type",
                               {{"type", std::string(SparkplugTypeLabel(SparkplugType(i)))}});
    }
    for (size_t i = 0; i < kSparkplugRejectCount; ++i) {
      rejected[i] = &m.Counter("edge_agent_sparkplug_rejected_total",
                               "Sparkplug B messages refused whole, by reason",
                               {{"reason", std::string(SparkplugRejectLabel(SparkplugReject(i)))}});
    }
    for (size_t i = 0; i < kSparkplugSkipCount; ++i) {
      skipped[i] = &m.Counter("edge_agent_sparkplug_metrics_skipped_total",
                              "Sparkplug B metrics of accepted messages that made no reading, by "
                              "reason",
                              {{"reason", std::string(SparkplugSkipLabel(SparkplugSkip(i)))}});
    }
  }
  CounterHandle* messages[kSparkplugTypeCount];
  CounterHandle* rejected[kSparkplugRejectCount];
  CounterHandle* skipped[kSparkplugSkipCount];
  CounterHandle& seq_gaps;
  GaugeHandle& nodes;
  CounterHandle& nodes_evicted;
  uint64_t last_evicted = 0;
};

// Handles looked up once; label sets that depend on policy content are cached lazily.
struct Pipeline::Counters {
  explicit Counters(Metrics& m)
      : messages(m.Counter("edge_agent_messages_received_total",
                           "MQTT messages taken from the ingest queue")),
        bytes(m.Counter("edge_agent_ingest_bytes_total",
                        "Payload bytes of MQTT messages taken from the ingest queue")),
        readings(m.Counter("edge_agent_readings_received_total",
                           "Readings decoded from accepted MQTT messages")),
        store_errors(m.Counter("edge_agent_store_errors_total", "Failed SQLite operations",
                               {{"op", "append"}})),
        alerts_dropped(m.Counter("edge_agent_alerts_dropped_total",
                                 "Alert events dropped because they could not be committed "
                                 "and the in-memory backlog was full")),
        out_of_order(m.Counter("edge_agent_readings_out_of_order_total",
                               "Readings older than the last one seen for the same sensor")),
        outbox_pending(m.Gauge("edge_agent_outbox_pending", "Rows in the outbox")),
        uncommitted(
            m.Gauge("edge_agent_alerts_uncommitted",
                    "Alert events waiting for a successful commit (the store refuses writes, or "
                    "the group commit's window)")),
        readings_stored(m.Counter("edge_agent_readings_stored_total",
                                  "Readings committed to the readings ring")),
        readings_store_error(m.Counter("edge_agent_readings_dropped_total", kReadingsDroppedHelp,
                                       {{"reason", "store_error"}})),
        readings_backlog(m.Counter("edge_agent_readings_dropped_total", kReadingsDroppedHelp,
                                   {{"reason", "backlog"}})),
        readings_pruned(m.Counter("edge_agent_readings_pruned_total",
                                  "Readings removed from the ring by retention, its byte share "
                                  "or a full disk")),
        rollups(m.Counter("edge_agent_rollups_total", "Rollup rows committed to the outbox")),
        rollups_dropped(m.Counter("edge_agent_rollups_dropped_total",
                                  "Rollup rows dropped because the store refused writes")),
        rollup_overflow(m.Counter("edge_agent_rollup_sensors_overflow_total",
                                  "Readings not rolled up because the window already held "
                                  "max_rollup_sensors sensors")),
        store_writable(m.Gauge("edge_agent_store_writable",
                               "1 while the database accepts writes, 0 after a failed commit")),
        filtered_non_finite(m.Counter("edge_agent_readings_filtered_total", kFilteredHelp,
                                      {{"reason", "non_finite"}})),
        filtered_out_of_range(m.Counter("edge_agent_readings_filtered_total", kFilteredHelp,
                                        {{"reason", "out_of_range"}})),
        duplicates(m.Counter("edge_agent_readings_duplicate_total",
                             "Readings repeating their sensor's newest timestamp and value")),
        reloads_applied(
            m.Counter("edge_agent_policy_reloads_total", kReloadsHelp, {{"result", "applied"}})),
        policy_rules(m.Gauge("edge_agent_policy_rules", "Rules in the active policy")),
        outbox_commit(m.Histogram("edge_agent_store_commit_seconds", kCommitHelp, kCommitBuckets,
                                  {{"kind", "outbox"}})),
        readings_commit(m.Histogram("edge_agent_store_commit_seconds", kCommitHelp, kCommitBuckets,
                                    {{"kind", "readings"}})),
        too_many_sensors(m.Counter("edge_agent_readings_rejected_total", kReadingsRejectedHelp,
                                   {{"reason", "too_many_sensors"}})),
        sensors_forgotten(m.Counter("edge_agent_sensors_forgotten_total",
                                    "Sensors whose rule state was dropped after they were idle "
                                    "for sensors.idle_after")),
        sensors_tracked(
            m.Gauge("edge_agent_sensors_tracked", "Sensors the rules engine keeps state for")),
        sparkplug(m) {
    for (const char* kind : {"alert", "rollup", "status"}) {
      evicted[kind] = &m.Counter("edge_agent_outbox_evicted_total", kEvictedHelp, {{"kind", kind}});
    }
    store_writable.Set(1);
  }

  CounterHandle& messages;
  CounterHandle& bytes;
  CounterHandle& readings;
  CounterHandle& store_errors;
  CounterHandle& alerts_dropped;
  CounterHandle& out_of_order;
  GaugeHandle& outbox_pending;
  GaugeHandle& uncommitted;
  CounterHandle& readings_stored;
  CounterHandle& readings_store_error;
  CounterHandle& readings_backlog;
  CounterHandle& readings_pruned;
  CounterHandle& rollups;
  CounterHandle& rollups_dropped;
  CounterHandle& rollup_overflow;
  GaugeHandle& store_writable;
  CounterHandle& filtered_non_finite;
  CounterHandle& filtered_out_of_range;
  CounterHandle& duplicates;
  CounterHandle& reloads_applied;
  GaugeHandle& policy_rules;
  HistogramHandle& outbox_commit;
  HistogramHandle& readings_commit;
  CounterHandle& too_many_sensors;
  CounterHandle& sensors_forgotten;
  GaugeHandle& sensors_tracked;
  SparkplugCounters sparkplug;
  uint64_t last_non_finite = 0;
  uint64_t last_out_of_range = 0;
  uint64_t last_duplicates = 0;
  std::map<std::string, CounterHandle*, std::less<>> evicted;
  std::map<RejectReason, CounterHandle*> rejected;
  std::map<std::pair<std::string, rules::Severity>, CounterHandle*> raised;
  std::map<std::pair<std::string, rules::Severity>, CounterHandle*> resolved;
  uint64_t last_out_of_order = 0;
};

}  // namespace edge::agent
