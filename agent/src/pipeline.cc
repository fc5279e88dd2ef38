#include "edge/agent/pipeline.h"

#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>

namespace edge::agent {

namespace {
constexpr char kRejectedHelp[] = "MQTT messages rejected by the payload decoder, by reason";
constexpr char kRaisedHelp[] = "Alert firing events committed to the outbox";
constexpr char kResolvedHelp[] = "Alert resolved events committed to the outbox";
}  // namespace

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
        uncommitted(m.Gauge("edge_agent_alerts_uncommitted",
                            "Alert events waiting for a successful commit")) {}

  CounterHandle& messages;
  CounterHandle& bytes;
  CounterHandle& readings;
  CounterHandle& store_errors;
  CounterHandle& alerts_dropped;
  CounterHandle& out_of_order;
  GaugeHandle& outbox_pending;
  GaugeHandle& uncommitted;
  std::map<RejectReason, CounterHandle*> rejected;
  std::map<std::pair<std::string, rules::Severity>, CounterHandle*> raised;
  std::map<std::pair<std::string, rules::Severity>, CounterHandle*> resolved;
  uint64_t last_out_of_order = 0;
};

Pipeline::Pipeline(PipelineOptions options, BoundedQueue<RawMessage>& queue, rules::Engine engine,
                   StoreWriter& store, Metrics& metrics, Clock& clock,
                   std::function<void()> on_committed)
    : options_(std::move(options)),
      queue_(queue),
      engine_(std::move(engine)),
      store_(store),
      metrics_(metrics),
      clock_(clock),
      on_committed_(std::move(on_committed)),
      counters_(std::make_unique<Counters>(metrics)) {
  // Every reason is exported from the start, so dashboards see zeros rather than gaps.
  for (RejectReason r :
       {RejectReason::kTooLarge, RejectReason::kEmpty, RejectReason::kNotJson,
        RejectReason::kNoNumbers, RejectReason::kNonFinite, RejectReason::kBadTimestamp,
        RejectReason::kTooDeep, RejectReason::kTooManyReadings}) {
    counters_->rejected[r] = &metrics_.Counter("edge_agent_readings_rejected_total", kRejectedHelp,
                                               {{"reason", std::string(ReasonLabel(r))}});
  }
  if (auto n = store_.OutboxCount(); n.ok()) {
    counters_->outbox_pending.Set(static_cast<double>(*n));
  }
}

Pipeline::~Pipeline() = default;

void Pipeline::Run() {
  std::vector<RawMessage> batch;
  batch.reserve(options_.max_batch);
  while (queue_.PopBatch(batch, options_.max_batch,
                         std::chrono::milliseconds(options_.commit_interval_ms))) {
    try {
      ProcessBatch(batch);
    } catch (const std::exception& e) {
      // Nothing in here should throw; if it does, keep the thread alive and say so.
      spdlog::error("pipeline cycle failed: {}", e.what());
    }
  }
  // Queue closed and drained: last attempt to commit what is pending.
  if (!uncommitted_.empty()) Commit();
}

void Pipeline::ProcessBatch(std::vector<RawMessage>& batch) {
  for (RawMessage& msg : batch) {
    counters_->messages.Inc();
    counters_->bytes.Inc(static_cast<double>(msg.payload.size()));
    readings_.clear();
    auto reject = DecodePayload(msg.topic, msg.payload, msg.receive_ms, options_.decode, readings_);
    if (reject) {
      counters_->rejected[*reject]->Inc();
      continue;
    }
    counters_->readings.Inc(static_cast<double>(readings_.size()));
    for (const rules::Reading& r : readings_) {
      events_.clear();
      engine_.Process(r, events_);
      for (auto& e : events_) uncommitted_.push_back(std::move(e));
    }
  }
  if (uint64_t ooo = engine_.out_of_order(); ooo > counters_->last_out_of_order) {
    counters_->out_of_order.Inc(static_cast<double>(ooo - counters_->last_out_of_order));
    counters_->last_out_of_order = ooo;
  }
  if (uncommitted_.size() > options_.max_uncommitted_events) {
    const size_t excess = uncommitted_.size() - options_.max_uncommitted_events;
    uncommitted_.erase(uncommitted_.begin(),
                       uncommitted_.begin() + static_cast<std::ptrdiff_t>(excess));
    counters_->alerts_dropped.Inc(static_cast<double>(excess));
    spdlog::error("dropped {} uncommitted alert events: the database is not accepting writes",
                  excess);
  }
  if (!uncommitted_.empty()) Commit();
}

void Pipeline::Commit() {
  std::vector<std::string> payloads;
  payloads.reserve(uncommitted_.size());
  std::vector<StoreWriter::NewRow> rows;
  rows.reserve(uncommitted_.size());
  const int64_t now = clock_.WallMs();
  for (const auto& e : uncommitted_) payloads.push_back(AlertPayloadJson(options_.node_id, e));
  for (const auto& p : payloads) rows.push_back({"alert", Priority::kAlert, now, p});

  if (Status s = store_.Append(rows); !s) {
    counters_->store_errors.Inc();
    counters_->uncommitted.Set(static_cast<double>(uncommitted_.size()));
    spdlog::error("outbox commit of {} alert events failed (will retry): {}", rows.size(),
                  s.message());
    return;
  }
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
  counters_->outbox_pending.Add(static_cast<double>(rows.size()));
  uncommitted_.clear();
  counters_->uncommitted.Set(0);
  if (on_committed_) on_committed_();
}

std::string AlertPayloadJson(std::string_view node_id, const rules::AlertEvent& e) {
  nlohmann::json j;
  j["node"] = node_id;
  j["rule"] = e.rule_id;
  j["sensor"] = e.sensor;
  j["severity"] = rules::ToString(e.severity);
  j["state"] = rules::ToString(e.state);
  j["value"] = e.value;
  j["ts_ms"] = e.ts_ms;
  j["started_ms"] = e.started_ms;
  j["episode"] = e.rule_id + "|" + e.sensor + "|" + std::to_string(e.started_ms);
  auto& ctx = j["context"] = nlohmann::json::array();
  for (const auto& [ts, v] : e.context) ctx.push_back({ts, v});
  // Invalid UTF-8 in a sensor id (topics are UTF-8 by spec, but be safe) is replaced.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace edge::agent
