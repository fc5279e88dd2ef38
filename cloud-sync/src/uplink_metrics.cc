#include "uplink_metrics.h"

namespace edge::cloudsync::internal {
namespace {

constexpr const char* kDeadLetterKinds[] = {"alert", "rollup", "status", "other"};
constexpr const char* kDeadLetterReasons[] = {"malformed", "too_large"};

}  // namespace

UplinkMetrics::UplinkMetrics(Metrics& metrics) {
  const std::string uploads_help = "Batch uploads to the console by result";
  uploads_ok = &metrics.Counter("edge_agent_uploads_total", uploads_help, {{"result", "ok"}});
  uploads_retry = &metrics.Counter("edge_agent_uploads_total", uploads_help, {{"result", "retry"}});
  uploads_rejected =
      &metrics.Counter("edge_agent_uploads_total", uploads_help, {{"result", "rejected"}});
  uploads_unauthorized =
      &metrics.Counter("edge_agent_uploads_total", uploads_help, {{"result", "unauthorized"}});
  bytes = &metrics.Counter("edge_agent_uplink_bytes_total",
                           "Request body bytes sent to the console (after compression)");
  items =
      &metrics.Counter("edge_agent_uplink_items_total", "Outbox items acknowledged by the console");
  backoff = &metrics.Gauge("edge_agent_uplink_backoff_seconds",
                           "Current uplink retry delay in seconds, 0 when healthy");
  backoff->Set(0);
  const std::string dead_help =
      "Outbox rows the console rejected as malformed, moved to the "
      "dead-letter table, by kind and reason";
  for (const char* kind : kDeadLetterKinds) {
    for (const char* reason : kDeadLetterReasons) {
      dead_lettered_[std::string(kind) + "|" + reason] = &metrics.Counter(
          "edge_agent_outbox_dead_lettered_total", dead_help, {{"kind", kind}, {"reason", reason}});
    }
  }
  const std::string status_help = "Status heartbeats sent to the console by result";
  status_ok = &metrics.Counter("edge_agent_status_reports_total", status_help, {{"result", "ok"}});
  status_failed =
      &metrics.Counter("edge_agent_status_reports_total", status_help, {{"result", "failed"}});
  status_unauthorized = &metrics.Counter("edge_agent_status_reports_total", status_help,
                                         {{"result", "unauthorized"}});
}

CounterHandle& UplinkMetrics::DeadLettered(std::string_view kind, std::string_view reason) const {
  std::string_view label = "other";
  for (const char* known : kDeadLetterKinds) {
    if (kind == known) label = known;
  }
  return *dead_lettered_.at(std::string(label) + "|" + std::string(reason));
}

}  // namespace edge::cloudsync::internal
