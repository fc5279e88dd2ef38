#include "edge/agent/store_api.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace edge::agent {
namespace {

HttpResponse JsonError(int status, std::string_view message) {
  nlohmann::json j = {{"error", message}};
  return {status, "application/json",
          j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded value: %XX and '+' for space; nullopt if malformed.
std::optional<std::string> PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

HttpResponse ServeReadings(StoreReader& reader, std::string_view target) {
  const size_t q = target.find('?');
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  std::optional<std::string> sensor;
  int64_t since = std::numeric_limits<int64_t>::min();
  int64_t until = std::numeric_limits<int64_t>::max();
  int64_t limit = static_cast<int64_t>(kDefaultReadingsPerRequest);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    auto value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return JsonError(400, "malformed percent-encoding in " + std::string(key));
    if (key == "sensor") {
      sensor = std::move(*value);
      continue;
    }
    if (key != "since" && key != "until" && key != "limit") continue;  // unknown: ignored
    auto n = ParseInt(*value);
    if (!n) return JsonError(400, std::string(key) + " must be an integer");
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
