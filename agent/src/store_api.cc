#include "edge/agent/store_api.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "edge/common/query.h"

namespace edge::agent {
namespace {

using edge::ParseInt64;
using edge::ParseQuery;

HttpResponse JsonError(int status, std::string_view message) {
  nlohmann::json j = {{"error", message}};
  return {status, "application/json",
          j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

}  // namespace

HttpResponse ServeReadings(StoreReader& reader, std::string_view target) {
  const size_t q = target.find('?');
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  std::optional<std::string> sensor;
  int64_t since = std::numeric_limits<int64_t>::min();
  int64_t until = std::numeric_limits<int64_t>::max();
  int64_t limit = static_cast<int64_t>(kDefaultReadingsPerRequest);
  const auto params = ParseQuery(query);
  if (!params) return JsonError(400, "malformed percent-encoding in the query");
  for (const auto& [key, value] : *params) {
    if (key == "sensor") {
      sensor = value;
      continue;
    }
    if (key != "since" && key != "until" && key != "limit") continue;  // unknown: ignored
    auto n = ParseInt64(value);
    if (!n) return JsonError(400, key + " must be an integer");
    if (key == "since") since = *n;
    if (key == "until") until = *n;
    if (key == "limit") {
      if (*n < 1) return JsonError(400, "limit must be at least 1");
      limit = std::min<int64_t>(*n, static_cast<int64_t>(kMaxReadingsPerRequest));
    }
  }
  if (!sensor || sensor->empty()) return JsonError(400, "sensor is required");
  auto rows = reader.Readings(*sensor, since, until, static_cast<size_t>(limit));
  if (!rows.ok()) return JsonError(500, rows.error());
  std::string body = "{\"sensor\":";
  body += nlohmann::json(*sensor).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  body += ",\"readings\":[";
  bool first = true;
  for (const StoredReading& r : *rows) {
    if (!first) body += ',';
    first = false;
    body += '[';
    body += std::to_string(r.ts_ms);
    body += ',';
    body += nlohmann::json(r.value).dump();
    body += ']';
  }
  body += "]}\n";
  return {200, "application/json", std::move(body)};
}

StoreGauges::StoreGauges(Metrics& m)
    : file_bytes_(m.Gauge("edge_agent_store_file_bytes",
                          "Size of the database file and its write-ahead log")),
      max_bytes_(m.Gauge("edge_agent_store_max_bytes", "Configured store.max_bytes (0: none)")),
      outbox_bytes_(m.Gauge("edge_agent_store_content_bytes",
                            "Logical bytes held, by part of the store", {{"part", "outbox"}})),
      readings_bytes_(m.Gauge("edge_agent_store_content_bytes",
                              "Logical bytes held, by part of the store", {{"part", "readings"}})),
      dead_letter_bytes_(m.Gauge("edge_agent_store_content_bytes",
                                 "Logical bytes held, by part of the store",
                                 {{"part", "dead_letter"}})),
      readings_rows_(m.Gauge("edge_agent_readings_ring_rows", "Readings in the readings ring")),
      dead_letter_rows_(m.Gauge("edge_agent_dead_letter_rows", "Rows in the dead-letter table")),
      dead_letter_evicted_(m.Gauge("edge_agent_dead_letter_evicted",
                                   "Dead-letter rows dropped by the table's bound since the "
                                   "database was created")),
      errors_(m.Counter("edge_agent_store_errors_total", "Failed SQLite operations",
                        {{"op", "stats"}})) {}

void StoreGauges::Refresh(StoreReader& reader) {
  auto st = reader.Stats();
  if (!st.ok()) {
    errors_.Inc();
    return;
  }
  file_bytes_.Set(static_cast<double>(st->db_file_bytes));
  max_bytes_.Set(static_cast<double>(st->max_bytes));
  outbox_bytes_.Set(static_cast<double>(st->outbox_bytes));
  dead_letter_bytes_.Set(static_cast<double>(st->dead_letter_bytes));
  readings_bytes_.Set(static_cast<double>(st->readings_bytes));
  readings_rows_.Set(static_cast<double>(st->readings_rows));
  dead_letter_rows_.Set(static_cast<double>(st->dead_letter_rows));
  dead_letter_evicted_.Set(static_cast<double>(st->dead_letter_evicted));
}

}  // namespace edge::agent
