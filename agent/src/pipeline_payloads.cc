// The outbox payloads of the pipeline's rows (pipeline.h): alert events and rollups as JSON.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "edge/agent/pipeline.h"
#include "edge/wire/fields.h"

namespace edge::agent {

std::string RollupPayloadJson(std::string_view sensor, int64_t start_ms, int64_t end_ms,
                              int64_t count, double min, double max, double mean, double last) {
  nlohmann::json j;
  j[wire::rollup::kSensor] = sensor;
  j[wire::rollup::kStartMs] = start_ms;
  j[wire::rollup::kEndMs] = end_ms;
  j[wire::rollup::kCount] = count;
  j[wire::rollup::kMin] = min;
  j[wire::rollup::kMax] = max;
  // The mean to 7 significant digits (float precision; min, max and last are exact): its
  // noise digits do not compress, and a rollup is sent for every sensor every interval.
  double rounded = mean;
  if (std::isfinite(mean)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.7g", mean);
    rounded = std::clamp(std::strtod(buf, nullptr), std::min(min, max), std::max(min, max));
  }
  j[wire::rollup::kMean] = rounded;
  j[wire::rollup::kLast] = last;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string AlertPayloadJson(const rules::AlertEvent& e) {
  // The batch names the node and the console derives the episode from rule, sensor and
  // started_ms: neither is repeated here. The readings before the alert matter when it
  // fires; a resolved event carries none.
  nlohmann::json j;
  j[wire::alert::kRule] = e.rule_id;
  j[wire::alert::kSensor] = e.sensor;
  j[wire::alert::kSeverity] = rules::ToString(e.severity);
  j[wire::alert::kState] = rules::ToString(e.state);
  j[wire::alert::kValue] = e.value;
  j[wire::alert::kTsMs] = e.ts_ms;
  j[wire::alert::kStartedMs] = e.started_ms;
  if (e.state == rules::AlertState::kFiring) {
    auto& ctx = j[wire::alert::kContext] = nlohmann::json::array();
    for (const auto& [ts, v] : e.context) ctx.push_back({ts, v});
  }
  // Invalid UTF-8 in a sensor id (topics are UTF-8 by spec, but be safe) is replaced.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace edge::agent
