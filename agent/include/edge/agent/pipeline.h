#pragma once

// The pipeline: takes raw MQTT messages from the bounded queue (on the pipeline thread, Run)
// or straight from the MQTT thread (TryProcessNow, one cycle at a time), decodes them into
// readings, runs the rules engine, and group-commits the resulting alert events to the
// outbox. It also keeps per-sensor rollups (flushed to the outbox as kind "rollup" when the
// interval closes) and the raw readings ring. It owns all rule state and the SQLite write
// connection.
//
// Durability: an alert event is counted in edge_agent_alerts_raised_total only after the
// transaction holding it committed. If a commit fails (disk full, I/O error) the events stay
// in memory and are retried on the next cycle; that backlog is bounded by
// `max_uncommitted_events`, beyond which the oldest uncommitted events are dropped and
// counted (edge_agent_alerts_dropped_total). Ingest is never held up by more than one
// cycle: the MQTT thread runs cycles only while the last one took under 10 ms and the
// store accepts writes; otherwise messages go through the queue (drop oldest when full).
//
// Order: a cycle commits its outbox rows (alerts, rollups; synchronous=FULL) before the
// readings, so an alert is never committed after the readings that led to it. Readings are
// committed every `commit_interval_ms` (monotonic) in one transaction; those not yet
// committed are the loss window of a crash. A readings commit that fails drops them
// (edge_agent_readings_dropped_total{reason="store_error"}).
//
// Group commit: outbox commits start at least `alert_commit_window_ms` (monotonic) apart, so
// that a storm of alerts costs at most one sync per window. A cycle's alerts that come
// sooner after the last outbox commit wait, in memory and counted in
// edge_agent_alerts_uncommitted, for the window to end; the cycle that runs then (on either
// thread, the pipeline thread waking for it) commits them all in one transaction. A lone
// alert commits at once, and so do waiting alerts that reach half of
// `max_uncommitted_events`. Alerts count as raised, and `on_committed` runs, only after
// their commit: once per window at most.
//
// Acknowledge after commit: messages numbered by the MQTT client (RawMessage::seq) are
// durable once their readings commit returned and no alert event of theirs waits for its
// outbox commit; `on_durable` then gets the highest such number (Ingest::Acknowledge). The
// packet ids and digests of a readings commit's QoS 1/2 messages, and of the latest before
// them up to 256 in all, are stored in it (StoreWriter::AppendReadings), and a commit is
// made for them even when they carried no reading to store. While the store refuses writes
// nothing becomes durable, so the broker holds back what it would send (its in-flight
// window): a failed readings commit keeps its readings for the next attempt (up to
// max_pending_readings; more are dropped and counted as backlog) instead of dropping them,
// and idle sensors are not forgotten meanwhile. Only with `on_durable`; without it a failed
// readings commit drops its readings (counted).
//
// Rules: each reading goes through rules::Engine::Process; a reading its filters reject is
// neither rolled up nor stored, and one they thin out (deadband, downsample, a duplicate) is
// rolled up but not stored. Clock-driven rules (stale) get the wall time about once a
// second. Firing episodes are saved in the store in the transaction of their events
// (StoreWriter::AppendWithEpisodes) and restored at construction, so a restart neither
// repeats a firing nor loses a resolve.
//
// Rollups are in processing time: one window for all sensors, opened when the previous one
// closed, closed by the monotonic clock after `rollup_interval_ms`; start_ms/end_ms are the
// wall-clock times of opening and closing. At most `max_rollup_sensors` sensors per window
// (readings of others are counted, not rolled up). A closed window's rollups are
// serialized and committed a slice per cycle (250 rows), so that a window of thousands of
// sensors does not hold an alert behind one long transaction.
//
// Sensors: the engine tracks at most `max_sensors`. Sensors without a reading for
// `sensor_idle_ms` (monotonic) and without a firing rule are forgotten (their rule state,
// context and caller words), every sweep interval (a quarter of sensor_idle_ms, 1 s to
// 1 min) and, at most once a second, when a new sensor finds the engine full. A new
// sensor's reading that still finds it full is refused and counted in
// edge_agent_readings_rejected_total{reason="too_many_sensors"}. Forgotten sensors are
// counted in edge_agent_sensors_forgotten_total; edge_agent_sensors_tracked is the gauge.
//
// Memory: message buffers larger than 512 bytes are freed after their cycle, and when the
// ingest queue drains after holding more than 4 MiB the allocator is asked to give free
// memory back to the system (glibc malloc_trim), so that a burst does not stay resident.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "edge/agent/bounded_queue.h"
#include "edge/agent/decoder.h"
#include "edge/agent/ingest.h"
#include "edge/agent/sparkplug.h"
#include "edge/agent/store.h"
#include "edge/common/clock.h"
#include "edge/common/metrics.h"
#include "edge/rules/engine.h"

namespace edge::agent {

struct PipelineOptions {
  std::string node_id;
  DecodeOptions decode;
  SparkplugOptions sparkplug;        // topics under spBv1.0/ (docs/payloads.md, "Sparkplug B")
  size_t max_batch = 4096;           // messages taken from the queue per cycle
  int64_t commit_interval_ms = 100;  // longest wait for messages before a cycle ends
  // Least time between the starts of two outbox commits (each a sync); 0: every cycle.
  int64_t alert_commit_window_ms = 10;
  size_t max_uncommitted_events = 100'000;
  bool store_readings = true;             // keep raw readings in the ring
  size_t max_pending_readings = 200'000;  // readings waiting for their commit; more: dropped
  int64_t rollup_interval_ms = 60'000;    // 0: no rollups
  size_t max_rollup_sensors = 10'000;
  size_t max_sensors = 10'000;           // sensors the rules engine tracks; 0: no limit
  int64_t sensor_idle_ms = 10 * 60'000;  // a sensor without a reading this long is forgotten
  // TryProcessNow takes batches of at most this many messages; larger ones (a flood) go
  // through the queue, so that receiving and processing use two cores.
  size_t max_inline_batch = 256;
};

class Pipeline {
 public:
  // `on_committed` runs on the pipeline thread after each commit that added rows (used to
  // wake the uplink); `on_durable` after a commit that made numbered messages durable
  // (above), on whichever thread ran the cycle. Neither may block.
  Pipeline(PipelineOptions options, IngestQueue& queue, rules::Engine engine, StoreWriter& store,
           Metrics& metrics, Clock& clock, std::function<void()> on_committed = {},
           std::function<void(uint64_t seq)> on_durable = {});
  ~Pipeline();

  // Runs until the queue is closed and drained, then commits what is left. Call on the
  // pipeline thread.
  void Run();

  // Runs one cycle over `messages` on the calling thread (the MQTT thread) when that keeps
  // the order of messages and costs no hand-off: there are at most max_inline_batch of
  // them, no other cycle is running, the queue is empty, the last cycle was quick (under
  // kMaxInlineCycleMs of the pipeline's Clock) and the store accepts writes, and Run has
  // not finished. Returns false, having done nothing, otherwise; the caller then queues
  // them. Leaves the messages as they were (their buffers stay with the caller).
  // Thread-safe.
  //
  // At a steady trickle (10,000 readings/s arrive ~10 per read) this spares the pipeline
  // thread a wake-up per read; it sleeps until the queue has work or commit_interval_ms
  // passes.
  bool TryProcessNow(std::span<RawMessage> messages);
  static constexpr int64_t kMaxInlineCycleMs = 10;

  // One cycle over `batch` (decode, rules, commit). Exposed for tests; not concurrently
  // with Run or TryProcessNow.
  void ProcessBatch(std::span<RawMessage> batch);

  size_t uncommitted_events() const { return uncommitted_.size(); }

  // The next cycle commits the pending readings without waiting for commit_interval_ms;
  // the pipeline thread wakes for it. Thread-safe.
  void RequestCommit();

  // Hands over a validated policy; the pipeline thread swaps it in before its next batch
  // (rules::Engine::SwapPolicy: unchanged rules keep their state), counts it in
  // edge_agent_policy_reloads_total{result="applied"} and sets edge_agent_policy_rules.
  // A policy handed over before the previous one was applied replaces it. Thread-safe.
  void SetPolicy(rules::Policy policy);

  // False while the store refuses writes: the last outbox or readings commit failed.
  // Thread-safe (read by /readyz on the network thread).
  bool store_writable() const { return store_writable_.load(std::memory_order_relaxed); }

 private:
  struct Counters;
  struct RollupAcc {
    int64_t count = 0;
    double min = 0, max = 0, sum = 0, last = 0;
  };
  // Rollups keep their own copy of the sensor id: the engine may forget the sensor first.
  struct RollupEntry {
    std::string sensor;
    RollupAcc acc;
  };
  // A rollup of a closed window, serialized when its commit comes.
  struct ClosedRollup {
    std::string sensor;
    RollupAcc acc;
    int64_t start_ms = 0;
    int64_t end_ms = 0;
  };
  void RunCycle(std::span<RawMessage> batch);
  // Decodes one message into readings_ (JSON and plain text, or Sparkplug B), counting what
  // it refuses; a Sparkplug death takes its sensors offline (events into uncommitted_).
  // False when the message made no reading.
  bool DecodeMessage(const RawMessage& msg);
  // Fires the stale rules of the sensors under `prefix` (rules::Engine::MarkOffline).
  void MarkOffline(std::string_view prefix, int64_t now_ms);
  void Commit();
  // Commits the waiting outbox rows when the window since the last commit has passed;
  // otherwise sets the deadline and wakes the pipeline thread if it would sleep past it.
  void CommitOutboxWhenDue();
  // How long Run may wait for messages: to the outbox deadline, if any, at most
  // commit_interval_ms.
  std::chrono::milliseconds NextWait();
  void ApplyPendingPolicy();
  // Episode changes to save (value) or forget (nullopt), by (rule, sensor).
  using EpisodeChangeMap =
      std::map<std::pair<std::string, std::string>, std::optional<StoredEpisode>>;
  void SaveEpisodes();
  static void SplitEpisodeChanges(const EpisodeChangeMap& changes,
                                  std::vector<StoredEpisode>& firing,
                                  std::vector<EpisodeKey>& resolved);
  void RestoreEpisodes();
  void AddToRollup(const rules::ReadingVerdict& verdict, double value);
  void CloseRollupWindow(bool force);
  void CommitReadings(bool force);
  // Reports the messages made durable by the last commits to on_durable_.
  void NoteDurable();
  // The record of delivered messages the next readings commit stores (empty: none new).
  std::span<const DeliveredMessage> DeliveredToStore();
  // Counts the pending readings as committed (or dropped, when `s` failed) and clears them.
  void ReadingsCommitted(const Status& s, int64_t pruned);
  void SetStoreWritable(bool writable);
  // Commits the pending readings (they point into the engine) and forgets idle sensors.
  void ForgetIdleSensors(int64_t now_mono);
  void ReleaseBurstMemory();

  PipelineOptions options_;
  IngestQueue& queue_;
  rules::Engine engine_;
  StoreWriter& store_;
  Metrics& metrics_;
  Clock& clock_;
  std::function<void()> on_committed_;
  std::unique_ptr<Counters> counters_;
  std::vector<rules::Reading> readings_;         // scratch, reused
  std::unique_ptr<SparkplugDecoder> sparkplug_;  // made at the first Sparkplug B message
  std::vector<rules::AlertEvent> events_;        // scratch, reused
  std::vector<rules::AlertEvent> uncommitted_;   // events waiting for a successful commit
  std::deque<ClosedRollup> rollup_rows_;         // closed rollups waiting for a commit
  std::vector<RollupEntry> rollups_;             // the open window, in order of first reading
  // Numbers the open window; a sensor's rollup slot (an engine caller word) holds a window
  // and an index in rollups_, and a slot of an earlier window is empty.
  uint64_t window_ = 1;
  int64_t window_start_wall_ = 0;
  int64_t window_start_mono_ = 0;
  // Waiting for the next readings commit; the names are the engine's (ReadingVerdict::sensor)
  // and the id hints its caller words.
  std::vector<StoreWriter::NewReading> pending_readings_;
  std::vector<DeliveredMessage> pending_delivered_;  // QoS 1/2 messages since the last commit
  std::vector<DeliveredMessage> delivered_window_;   // what the last commit stored of them
  std::vector<DeliveredMessage> delivered_next_;     // what the commit under way stores
  std::function<void(uint64_t)> on_durable_;
  uint64_t processed_seq_ = 0;  // the highest message number processed
  uint64_t readings_seq_ = 0;   // ... whose readings are committed
  uint64_t durable_seq_ = 0;    // ... reported to on_durable_
  std::atomic<bool> commit_requested_{false};
  int64_t last_readings_commit_mono_ = 0;
  std::atomic<bool> store_writable_{true};
  // The group commit's times (monotonic ms), read by Run before it sleeps without the cycle
  // lock: the start of the last outbox commit, when waiting rows must commit (0: none wait),
  // and when the pipeline thread's current wait ends.
  std::atomic<int64_t> last_outbox_commit_mono_{0};
  std::atomic<int64_t> outbox_due_mono_{0};
  std::atomic<int64_t> run_wakes_mono_{0};
  int64_t last_advance_mono_ = 0;  // last time clock-driven rules (stale) got the time
  int64_t last_forget_mono_ = 0;   // last sweep of idle sensors
  size_t burst_bytes_ = 0;         // most bytes seen queued since the queue was last empty
  // Firing episodes left to save by RestoreEpisodes when the store refused them; they go
  // with the next outbox commit.
  EpisodeChangeMap episode_changes_;
  // Held for a cycle, by the pipeline thread (Run) or the MQTT thread (TryProcessNow); the
  // pipeline thread takes messages from the queue only while holding it.
  std::mutex cycle_mu_;
  bool finished_ = false;  // guarded by cycle_mu_: Run made its last commits
  std::atomic<bool> last_cycle_quick_{true};
  std::mutex policy_mu_;
  std::optional<rules::Policy> next_policy_;  // guarded by policy_mu_
};

// The outbox payload of one rollup (docs/protocol.md, "Rollup payload").
std::string RollupPayloadJson(std::string_view sensor, int64_t start_ms, int64_t end_ms,
                              int64_t count, double min, double max, double mean, double last);

// The outbox payload of one alert event (docs/protocol.md, "Alert payload").
std::string AlertPayloadJson(const rules::AlertEvent& event);

}  // namespace edge::agent
