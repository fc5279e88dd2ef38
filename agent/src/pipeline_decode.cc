// The pipeline's decode step: which decoder a message goes to, and what its refusals count.
#include "edge/agent/pipeline.h"
#include "pipeline_counters.h"

namespace edge::agent {

bool Pipeline::DecodeMessage(const RawMessage& msg) {
  readings_.clear();
  if (msg.offline) {
    MarkOffline(msg.topic, msg.receive_ms);
    return false;
  }
  if (!IsSparkplugTopic(msg.topic)) {
    const std::optional<RejectReason> reject =
        DecodePayload(msg.topic, msg.payload, msg.receive_ms, options_.decode, readings_);
    if (reject) counters_->rejected[*reject]->Inc();
    return !reject;
  }
  if (msg.payload.size() > options_.decode.max_payload_bytes) {
    counters_->rejected[RejectReason::kTooLarge]->Inc();
    return false;
  }
  if (!sparkplug_) sparkplug_ = std::make_unique<SparkplugDecoder>(options_.sparkplug);
  const SparkplugOutcome o = sparkplug_->Decode(msg.topic, msg.payload, msg.receive_ms, readings_);
  SparkplugCounters& c = counters_->sparkplug;
  c.messages[static_cast<size_t>(o.type)]->Inc();
  if (o.reject) c.rejected[static_cast<size_t>(*o.reject)]->Inc();
  if (o.seq_gap) c.seq_gaps.Inc();
  for (size_t i = 0; i < kSparkplugSkipCount; ++i) {
    if (o.skipped[i] > 0) c.skipped[i]->Inc(static_cast<double>(o.skipped[i]));
  }
  c.nodes.Set(static_cast<double>(sparkplug_->nodes()));
  if (const uint64_t evicted = sparkplug_->evicted_nodes(); evicted > c.last_evicted) {
    c.nodes_evicted.Inc(static_cast<double>(evicted - c.last_evicted));
    c.last_evicted = evicted;
  }
  if (!o.offline_prefix.empty()) MarkOffline(o.offline_prefix, msg.receive_ms);
  return !readings_.empty();
}

void Pipeline::MarkOffline(std::string_view prefix, int64_t now_ms) {
  events_.clear();
  engine_.MarkOffline(prefix, now_ms, events_);
  for (auto& e : events_) uncommitted_.push_back(std::move(e));
}

}  // namespace edge::agent
