#include "edge/agent/pipeline.h"

#include <spdlog/spdlog.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include "pipeline_counters.h"

namespace edge::agent {

namespace {
constexpr char kRaisedHelp[] = "Alert firing events committed to the outbox";
constexpr char kResolvedHelp[] = "Alert resolved events committed to the outbox";
// Clock-driven rules (stale) get the time at most this often.
constexpr int64_t kAdvanceIntervalMs = 1000;
// A readings commit happens early when this many are waiting.
constexpr size_t kReadingsCommitBatch = 16'384;
// The stored record of delivered messages (acknowledge after commit) holds at least this
// many of the latest: 1.5 KiB.
constexpr size_t kMinDeliveredKept = 256;
// Rollup rows per outbox commit (about a millisecond of serializing and inserting).
constexpr size_t kRollupsPerCommit = 250;
// What the pipeline keeps in the engine's words per sensor (ReadingVerdict::caller_words), to
// spare a reading the lookups by sensor name. Zero at first: no rollup slot, no store id.
class SensorWords {
 public:
  explicit SensorWords(const rules::ReadingVerdict& verdict) : words_(verdict.caller_words) {}

  // Where the sensor's accumulator is in rollups_, valid while `window` is the open window
  // (windows count from 1, so a zero slot belongs to none).
  struct RollupSlot {
    uint32_t window = 0;
    uint32_t index = 0;
  };
  RollupSlot rollup() const { return std::bit_cast<RollupSlot>(words_[kRollupSlotWord]); }
  void set_rollup(RollupSlot slot) const {
    words_[kRollupSlotWord] = std::bit_cast<uint64_t>(slot);
  }

  // The store writer's own word: StoreWriter::NewReading::id_hint.
  uint64_t* store_id_hint() const { return &words_[kStoreIdWord]; }

 private:
  static constexpr size_t kRollupSlotWord = 0;
  static constexpr size_t kStoreIdWord = 1;
  static_assert(kStoreIdWord < rules::kCallerWords);
  static_assert(sizeof(RollupSlot) == sizeof(uint64_t));
  uint64_t* words_;
};
// A queue that held more than this before it drained was a burst: free memory goes back to
// the system (glibc keeps freed heap memory otherwise).
constexpr size_t kBurstBytes = 4 << 20;
// A new sensor that finds the engine full sweeps idle sensors at most this often (a sweep
// is O(sensors)).
constexpr int64_t kMinForgetIntervalMs = 1000;
double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

Pipeline::Pipeline(PipelineOptions options, IngestQueue& queue, rules::Engine engine,
                   StoreWriter& store, Metrics& metrics, Clock& clock,
                   std::function<void()> on_committed, std::function<void(uint64_t)> on_durable)
    : options_(std::move(options)),
      queue_(queue),
      engine_(std::move(engine)),
      store_(store),
      metrics_(metrics),
      clock_(clock),
      on_committed_(std::move(on_committed)),
      counters_(std::make_unique<Counters>(metrics)) {
  on_durable_ = std::move(on_durable);
  // Every reason is exported from the start, so dashboards see zeros rather than gaps.
  for (RejectReason r : kAllRejectReasons) {
    counters_->rejected[r] =
        &metrics_.Counter("edge_agent_readings_rejected_total", kReadingsRejectedHelp,
                          {{"reason", std::string(ReasonLabel(r))}});
  }
  if (auto n = store_.OutboxCount(); n.ok()) {
    counters_->outbox_pending.Set(static_cast<double>(*n));
  }
  counters_->policy_rules.Set(static_cast<double>(engine_.policy().rules.size()));
  engine_.SetSensorLimit(options_.max_sensors);
  engine_.SetActivityTime(clock_.MonotonicMs());
  RestoreEpisodes();
  last_advance_mono_ = clock_.MonotonicMs();
  last_forget_mono_ = last_advance_mono_;
  window_start_wall_ = clock_.WallMs();
  window_start_mono_ = clock_.MonotonicMs();
  last_readings_commit_mono_ = window_start_mono_;
  last_outbox_commit_mono_ = window_start_mono_ - options_.alert_commit_window_ms;
  run_wakes_mono_ = window_start_mono_ + options_.commit_interval_ms;
}

Pipeline::~Pipeline() = default;

void Pipeline::Run() {
  std::vector<RawMessage> batch;
  batch.reserve(options_.max_batch);
  while (true) {
    // Waits without the cycle lock, so that the MQTT thread can run cycles meanwhile; takes
    // messages only under it, so that no cycle of newer messages overtakes them.
    queue_.WaitForItems(NextWait());
    std::lock_guard lock(cycle_mu_);
    burst_bytes_ = std::max(burst_bytes_, queue_.bytes());
    if (!queue_.PopBatch(batch, options_.max_batch, std::chrono::milliseconds(0))) break;
    RunCycle(batch);
    // The MQTT thread copies the next messages into these strings instead of allocating;
    // only small buffers are kept, so that one large payload does not stay allocated.
    for (RawMessage& m : batch) PrepareForReuse(m);
    queue_.Recycle(batch);
    if (burst_bytes_ > kBurstBytes && queue_.size() == 0) ReleaseBurstMemory();
  }
  // Queue closed and drained: the open rollup window closes early, then a last attempt to
  // commit what is pending.
  std::lock_guard lock(cycle_mu_);
  finished_ = true;
  CloseRollupWindow(/*force=*/true);
  while (!uncommitted_.empty() || !rollup_rows_.empty()) {
    const size_t before = uncommitted_.size() + rollup_rows_.size();
    Commit();
    if (uncommitted_.size() + rollup_rows_.size() >= before) break;  // the store refuses
  }
  CommitReadings(/*force=*/true);
}

std::chrono::milliseconds Pipeline::NextWait() {
  const int64_t now = clock_.MonotonicMs();
  int64_t wait = options_.commit_interval_ms;
  // The longest wait is published before the deadline is read: a cycle that sets a
  // deadline after this read sees it and wakes this thread (both are seq_cst).
  run_wakes_mono_.store(now + wait);
  // Alerts wait for their window; and right after an outbox commit, more may come (a
  // storm): the wait ends with that window, so that a cycle deferring alerts to it on the
  // MQTT thread needs no wake-up.
  int64_t due = outbox_due_mono_.load();
  if (due == 0) {
    due = last_outbox_commit_mono_.load() + options_.alert_commit_window_ms;
    if (due <= now) return std::chrono::milliseconds(wait);
  }
  wait = std::clamp<int64_t>(due - now, 0, wait);
  run_wakes_mono_.store(now + wait);
  return std::chrono::milliseconds(wait);
}

bool Pipeline::TryProcessNow(std::span<RawMessage> messages) {
  if (messages.empty() || messages.size() > options_.max_inline_batch ||
      !last_cycle_quick_.load(std::memory_order_relaxed) || !store_writable()) {
    return false;
  }
  std::unique_lock lock(cycle_mu_, std::try_to_lock);
  if (!lock.owns_lock() || finished_ || queue_.size() > 0) return false;
  RunCycle(messages);
  return true;
}

void Pipeline::RunCycle(std::span<RawMessage> batch) {
  const int64_t start_ms = clock_.MonotonicMs();
  try {
    ProcessBatch(batch);
  } catch (const std::exception& e) {
    // Nothing in here should throw; if it does, keep the thread alive and say so.
    spdlog::error("pipeline cycle failed: {}", e.what());
  }
  last_cycle_quick_.store(clock_.MonotonicMs() - start_ms < kMaxInlineCycleMs,
                          std::memory_order_relaxed);
}

void Pipeline::ReleaseBurstMemory() {
  burst_bytes_ = 0;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

void Pipeline::ForgetIdleSensors(int64_t now_mono) {
  last_forget_mono_ = now_mono;
  // Pending readings point into the engine's entries, which move when any is forgotten.
  CommitReadings(/*force=*/true);
  // Still pending: the store refuses writes and they wait for it (acknowledge after
  // commit). Sensors are forgotten once they are committed.
  if (!pending_readings_.empty()) return;
  const size_t forgotten = engine_.ForgetIdle(now_mono - options_.sensor_idle_ms);
  if (forgotten > 0) counters_->sensors_forgotten.Inc(static_cast<double>(forgotten));
}

void Pipeline::ProcessBatch(std::span<RawMessage> batch) {
  ApplyPendingPolicy();
  const int64_t cycle_mono = clock_.MonotonicMs();
  engine_.SetActivityTime(cycle_mono);
  // A window that is due closes before this batch: its readings belong to the next one.
  CloseRollupWindow(/*force=*/false);
  // Counted here and added to the counters once per batch: each Inc() is an atomic
  // read-modify-write loop.
  uint64_t bytes = 0;
  uint64_t readings = 0;
  for (RawMessage& msg : batch) {
    bytes += msg.payload.size();
    processed_seq_ = std::max(processed_seq_, msg.seq);
    if (msg.digest != 0) pending_delivered_.push_back({msg.packet_id, msg.digest});
    if (!DecodeMessage(msg)) continue;
    readings += readings_.size();
    for (rules::Reading& r : readings_) {
      events_.clear();
      rules::ReadingVerdict verdict = engine_.Process(r, events_);
      if (verdict.refused && cycle_mono - last_forget_mono_ >= kMinForgetIntervalMs) {
        ForgetIdleSensors(cycle_mono);
        verdict = engine_.Process(r, events_);
      }
      if (verdict.refused) {
        counters_->too_many_sensors.Inc();
        continue;
      }
      for (auto& e : events_) uncommitted_.push_back(std::move(e));
      if (!verdict.accepted) continue;  // a filter rejected it: no rollup, not stored
      AddToRollup(verdict, r.value);
      if (!options_.store_readings || !verdict.store) continue;
      if (pending_readings_.size() >= options_.max_pending_readings) {
        counters_->readings_backlog.Inc();
        continue;
      }
      pending_readings_.push_back(
          {*verdict.sensor, r.ts_ms, r.value, SensorWords(verdict).store_id_hint()});
    }
  }
  if (!batch.empty()) {
    counters_->messages.Inc(static_cast<double>(batch.size()));
    counters_->bytes.Inc(static_cast<double>(bytes));
  }
  if (readings > 0) counters_->readings.Inc(static_cast<double>(readings));
  if (uint64_t ooo = engine_.out_of_order(); ooo > counters_->last_out_of_order) {
    counters_->out_of_order.Inc(static_cast<double>(ooo - counters_->last_out_of_order));
    counters_->last_out_of_order = ooo;
  }
  const auto add_delta = [](CounterHandle& c, uint64_t now, uint64_t& last) {
    if (now > last) c.Inc(static_cast<double>(now - last));
    last = now;
  };
  add_delta(counters_->filtered_non_finite, engine_.non_finite(), counters_->last_non_finite);
  add_delta(counters_->filtered_out_of_range, engine_.out_of_range(), counters_->last_out_of_range);
  add_delta(counters_->duplicates, engine_.duplicates(), counters_->last_duplicates);
  if (const int64_t now_mono = clock_.MonotonicMs();
      now_mono - last_advance_mono_ >= kAdvanceIntervalMs) {
    last_advance_mono_ = now_mono;
    events_.clear();
    engine_.Advance(clock_.WallMs(), events_);
    for (auto& e : events_) uncommitted_.push_back(std::move(e));
  }
  if (uncommitted_.size() > options_.max_uncommitted_events) {
    const size_t excess = uncommitted_.size() - options_.max_uncommitted_events;
    uncommitted_.erase(uncommitted_.begin(),
                       uncommitted_.begin() + static_cast<std::ptrdiff_t>(excess));
    counters_->alerts_dropped.Inc(static_cast<double>(excess));
    spdlog::error("dropped {} uncommitted alert events: the database is not accepting writes",
                  excess);
  }
  CommitOutboxWhenDue();
  CommitReadings(/*force=*/commit_requested_.exchange(false));
  const int64_t sweep_ms = std::clamp<int64_t>(options_.sensor_idle_ms / 4, 1000, 60'000);
  if (cycle_mono - last_forget_mono_ >= sweep_ms) ForgetIdleSensors(cycle_mono);
  counters_->sensors_tracked.Set(static_cast<double>(engine_.sensors_tracked()));
}

void Pipeline::AddToRollup(const rules::ReadingVerdict& verdict, double value) {
  if (options_.rollup_interval_ms <= 0) return;
  const SensorWords words(verdict);
  RollupAcc* a = nullptr;
  if (const SensorWords::RollupSlot slot = words.rollup(); slot.window == window_) {
    a = &rollups_[slot.index].acc;
  } else {
    if (rollups_.size() >= options_.max_rollup_sensors) {
      counters_->rollup_overflow.Inc();
      return;
    }
    words.set_rollup({static_cast<uint32_t>(window_), static_cast<uint32_t>(rollups_.size())});
    a = &rollups_.emplace_back(RollupEntry{*verdict.sensor, RollupAcc{}}).acc;
  }
  if (a->count == 0) {
    *a = RollupAcc{0, value, value, 0, value};
  } else {
    a->min = std::min(a->min, value);
    a->max = std::max(a->max, value);
  }
  ++a->count;
  a->sum += value;
  a->last = value;
}

void Pipeline::CloseRollupWindow(bool force) {
  if (options_.rollup_interval_ms <= 0) return;
  const int64_t now_mono = clock_.MonotonicMs();
  if (!force && now_mono - window_start_mono_ < options_.rollup_interval_ms) return;
  const int64_t end_ms = clock_.WallMs();
  for (auto& [sensor, a] : rollups_) {
    rollup_rows_.push_back({std::move(sensor), a, window_start_wall_, end_ms});
  }
  rollups_.clear();
  ++window_;  // every sensor's slot now belongs to a closed window
  window_start_wall_ = end_ms;
  window_start_mono_ = now_mono;
  // While the store refuses writes, keep at most two windows' worth.
  if (const size_t cap = 2 * options_.max_rollup_sensors; rollup_rows_.size() > cap) {
    const size_t excess = rollup_rows_.size() - cap;
    rollup_rows_.erase(rollup_rows_.begin(),
                       rollup_rows_.begin() + static_cast<std::ptrdiff_t>(excess));
    counters_->rollups_dropped.Inc(static_cast<double>(excess));
  }
}

void Pipeline::RequestCommit() {
  // While the store refuses writes every cycle tries again anyway; an early attempt would
  // only fail sooner.
  if (!store_writable()) return;
  commit_requested_.store(true);
  queue_.Wake();
}

void Pipeline::NoteDurable() {
  if (!uncommitted_.empty() || readings_seq_ <= durable_seq_) return;
  durable_seq_ = readings_seq_;
  if (on_durable_) on_durable_(durable_seq_);
}

void Pipeline::CommitReadings(bool force) {
  if (pending_readings_.empty() && pending_delivered_.empty()) {
    // Nothing of the messages processed so far waits for a readings commit.
    readings_seq_ = processed_seq_;
    NoteDurable();
    return;
  }
  if (on_durable_ && !uncommitted_.empty()) {
    // Alerts wait for their group commit, which takes these readings along (Commit): they
    // are not committed without them. Asked for a commit, the alerts go now.
    if (force) Commit();
    return;
  }
  const int64_t now_mono = clock_.MonotonicMs();
  if (!force && pending_readings_.size() < kReadingsCommitBatch &&
      now_mono - last_readings_commit_mono_ < options_.commit_interval_ms) {
    return;
  }
  last_readings_commit_mono_ = now_mono;
  int64_t pruned = 0;
  const auto start = std::chrono::steady_clock::now();
  Status s = store_.AppendReadings(pending_readings_, clock_.WallMs(), &pruned, DeliveredToStore());
  counters_->readings_commit.Observe(SecondsSince(start));
  ReadingsCommitted(s, pruned);
}

std::span<const DeliveredMessage> Pipeline::DeliveredToStore() {
  if (pending_delivered_.empty()) return {};
  // The store keeps this commit's messages and, up to kMinDeliveredKept, the ones before (a
  // resend can follow acks lost with a connection, not only a crash right after this
  // commit). It becomes delivered_window_ only once the commit succeeded.
  const size_t earlier =
      kMinDeliveredKept > pending_delivered_.size()
          ? std::min(kMinDeliveredKept - pending_delivered_.size(), delivered_window_.size())
          : 0;
  delivered_next_.assign(delivered_window_.end() - static_cast<std::ptrdiff_t>(earlier),
                         delivered_window_.end());
  delivered_next_.insert(delivered_next_.end(), pending_delivered_.begin(),
                         pending_delivered_.end());
  return delivered_next_;
}

void Pipeline::ReadingsCommitted(const Status& s, int64_t pruned) {
  const std::vector<StoreWriter::NewReading>& rows = pending_readings_;
  counters_->readings_pruned.Inc(static_cast<double>(pruned));
  if (s.ok()) {
    counters_->readings_stored.Inc(static_cast<double>(rows.size()));
    if (uncommitted_.empty() && rollup_rows_.empty()) SetStoreWritable(true);
    if (!pending_delivered_.empty()) delivered_window_.swap(delivered_next_);
  } else if (on_durable_) {
    // Acknowledge after commit: the readings wait for the store (up to
    // max_pending_readings), and their messages stay unacknowledged until then.
    counters_->store_errors.Inc();
    if (store_writable_) {
      spdlog::error("readings commit failed, {} readings wait for the next attempt: {}",
                    rows.size(), s.message());
    }
    SetStoreWritable(false);
    return;
  } else {
    counters_->readings_store_error.Inc(static_cast<double>(rows.size()));
    counters_->store_errors.Inc();
    if (store_writable_) {
      spdlog::error("readings commit failed, {} readings dropped: {}", rows.size(), s.message());
    }
    SetStoreWritable(false);
  }
  pending_readings_.clear();
  pending_delivered_.clear();
  // Committed (or, acknowledging on receipt, dropped and counted): nothing more comes of
  // these messages.
  readings_seq_ = processed_seq_;
  NoteDurable();
}

void Pipeline::SetStoreWritable(bool writable) {
  if (store_writable_.exchange(writable) == writable) return;
  counters_->store_writable.Set(writable ? 1 : 0);
  if (writable) spdlog::warn("store accepts writes again");
}

void Pipeline::CommitOutboxWhenDue() {
  if (uncommitted_.empty() && rollup_rows_.empty()) return;
  const int64_t due = last_outbox_commit_mono_.load() + options_.alert_commit_window_ms;
  // While the store refuses writes, every cycle tries again, as without a window; and
  // waiting never fills half the backlog's bound, which is for a store that refuses writes.
  if (clock_.MonotonicMs() >= due || !store_writable() ||
      uncommitted_.size() >= options_.max_uncommitted_events / 2) {
    Commit();
    return;
  }
  counters_->uncommitted.Set(static_cast<double>(uncommitted_.size()));
  outbox_due_mono_.store(due);
  if (run_wakes_mono_.load() > due) queue_.Wake();
}

void Pipeline::Commit() {
  last_outbox_commit_mono_.store(clock_.MonotonicMs());
  outbox_due_mono_.store(0);
  std::vector<std::string> payloads;
  std::vector<StoreWriter::NewRow> rows;
  const int64_t now = clock_.WallMs();
  // A closed window's rollups go a slice per commit, so that a window of many sensors
  // never makes one long transaction that an alert would wait behind.
  const size_t n_rollups = std::min(rollup_rows_.size(), kRollupsPerCommit);
  payloads.reserve(uncommitted_.size() + n_rollups);
  rows.reserve(uncommitted_.size() + n_rollups);
  for (const auto& e : uncommitted_) payloads.push_back(AlertPayloadJson(e));
  for (size_t i = 0; i < n_rollups; ++i) {
    const ClosedRollup& r = rollup_rows_[i];
    payloads.push_back(RollupPayloadJson(r.sensor, r.start_ms, r.end_ms, r.acc.count, r.acc.min,
                                         r.acc.max, r.acc.sum / static_cast<double>(r.acc.count),
                                         r.acc.last));
  }
  for (size_t i = 0; i < payloads.size(); ++i) {
    const bool alert = i < uncommitted_.size();
    rows.push_back({alert ? "alert" : "rollup", alert ? Priority::kAlert : Priority::kRollup, now,
                    payloads[i]});
  }

  // The episodes the events change go in the same transaction (each one's last state
  // wins), with any a failed save at start left; a failed commit works them out again.
  auto changes = episode_changes_;
  for (const auto& e : uncommitted_) {
    auto& change = changes[{e.rule_id, e.sensor}];
    change.reset();
    if (e.state == rules::AlertState::kFiring) {
      change = StoredEpisode{e.rule_id, e.sensor, e.started_ms, e.ts_ms, e.value};
    }
  }
  std::vector<StoredEpisode> firing_episodes;
  std::vector<EpisodeKey> resolved_episodes;
  SplitEpisodeChanges(changes, firing_episodes, resolved_episodes);
  Evictions evicted;
  const auto start = std::chrono::steady_clock::now();
  // Acknowledge after commit: the pending readings and the record of their messages go in
  // the same transaction, so that a message whose alert is on disk is known as delivered
  // (the broker's resend of it is not processed again, which would raise the alert twice).
  const bool with_readings =
      on_durable_ && (!pending_readings_.empty() || !pending_delivered_.empty());
  int64_t pruned = 0;
  const StoreWriter::ReadingsBatch readings{
      pending_readings_, now,
      with_readings ? DeliveredToStore() : std::span<const DeliveredMessage>(), &pruned};
  Status s = store_.AppendWithEpisodes(rows, {firing_episodes, resolved_episodes}, &evicted,
                                       with_readings ? &readings : nullptr);
  counters_->outbox_commit.Observe(SecondsSince(start));
  if (!s) {
    counters_->store_errors.Inc();
    counters_->uncommitted.Set(static_cast<double>(uncommitted_.size()));
    // Logged once per outage: while the disk stays full every cycle fails the same way.
    if (store_writable_) {
      spdlog::error(
          "outbox commit of {} alert events and {} rollups failed (retried every "
          "cycle): {}",
          uncommitted_.size(), rollup_rows_.size(), s.message());
    }
    SetStoreWritable(false);
    return;
  }
  SetStoreWritable(true);
  for (const auto& [kind, n] : evicted.by_kind) {
    CounterHandle*& c = counters_->evicted[kind];
    if (c == nullptr) {
      c = &metrics_.Counter("edge_agent_outbox_evicted_total", kEvictedHelp, {{"kind", kind}});
    }
    c->Inc(static_cast<double>(n));
    if (kind == "alert") {
      spdlog::error(
          "store full: evicted {} undelivered alert events (oldest first) to stay "
          "within store.max_bytes",
          n);
    }
  }
  counters_->outbox_pending.Add(-static_cast<double>(evicted.total()));
  counters_->rollups.Inc(static_cast<double>(n_rollups));
  rollup_rows_.erase(rollup_rows_.begin(),
                     rollup_rows_.begin() + static_cast<std::ptrdiff_t>(n_rollups));
  // Committed: now they count as raised.
  for (const auto& e : uncommitted_) {
    auto& cache = e.state == rules::AlertState::kFiring ? counters_->raised : counters_->resolved;
    CounterHandle*& c = cache[{e.rule_id, e.severity}];
    if (c == nullptr) {
      const bool firing = e.state == rules::AlertState::kFiring;
      c = &metrics_.Counter(
          firing ? "edge_agent_alerts_raised_total" : "edge_agent_alerts_resolved_total",
          firing ? kRaisedHelp : kResolvedHelp,
          {{"rule", e.rule_id}, {"severity", std::string(rules::ToString(e.severity))}});
    }
    c->Inc();
    spdlog::info("alert {} rule={} sensor={} severity={} value={}", rules::ToString(e.state),
                 e.rule_id, e.sensor, rules::ToString(e.severity), e.value);
  }
  episode_changes_.clear();
  counters_->outbox_pending.Add(static_cast<double>(rows.size()));
  uncommitted_.clear();
  counters_->uncommitted.Set(0);
  if (on_committed_) on_committed_();
  if (with_readings) {
    last_readings_commit_mono_ = clock_.MonotonicMs();
    ReadingsCommitted(Status::Ok(), pruned);
  }
  NoteDurable();
}

void Pipeline::SetPolicy(rules::Policy policy) {
  std::lock_guard<std::mutex> lock(policy_mu_);
  next_policy_ = std::move(policy);
}

void Pipeline::ApplyPendingPolicy() {
  std::optional<rules::Policy> next;
  {
    std::lock_guard<std::mutex> lock(policy_mu_);
    next.swap(next_policy_);
  }
  if (!next) return;
  const size_t rules = next->rules.size();
  const std::string version = next->version;
  events_.clear();
  engine_.SwapPolicy(std::move(*next), events_);
  const size_t closed = events_.size();
  for (auto& e : events_) uncommitted_.push_back(std::move(e));
  counters_->reloads_applied.Inc();
  counters_->policy_rules.Set(static_cast<double>(rules));
  spdlog::info(
      "policy applied: version '{}', {} rule(s); {} alert(s) of changed or removed "
      "rules resolved",
      version, rules, closed);
}

}  // namespace edge::agent
