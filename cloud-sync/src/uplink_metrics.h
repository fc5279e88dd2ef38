#pragma once

// The uplink's metrics (listed in edge/cloudsync/uplink.h), registered together so that
// the batch loop and the status heartbeat share one set. Private to cloud-sync/src.

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "edge/common/metrics.h"

namespace edge::cloudsync::internal {

struct UplinkMetrics {
  // Registers every series on `metrics`, which must outlive the handles.
  explicit UplinkMetrics(Metrics& metrics);

  // The dead-letter counter for an outbox kind and a reason ("malformed", "too_large");
  // kinds other than alert, rollup and status share the label "other", so the series
  // stay bounded.
  CounterHandle& DeadLettered(std::string_view kind, std::string_view reason) const;

  CounterHandle* uploads_ok = nullptr;
  CounterHandle* uploads_retry = nullptr;
  CounterHandle* uploads_rejected = nullptr;
  CounterHandle* uploads_unauthorized = nullptr;
  CounterHandle* bytes = nullptr;
  CounterHandle* items = nullptr;
  GaugeHandle* backoff = nullptr;
  CounterHandle* status_ok = nullptr;
  CounterHandle* status_failed = nullptr;
  CounterHandle* status_unauthorized = nullptr;

 private:
  std::map<std::string, CounterHandle*, std::less<>> dead_lettered_;  // "kind|reason"
};

}  // namespace edge::cloudsync::internal
