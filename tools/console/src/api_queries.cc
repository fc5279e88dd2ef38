// The console API's queries: GET /v1/alerts, /v1/nodes, /v1/rollups and the HTML dashboard
// at "/".

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api_request.h"
#include "edge/common/query.h"
#include "edge/console/api.h"

namespace edge::console {
namespace {

using nlohmann::json;

using edge::ParseInt64;
using edge::ParseQuery;

// The filters the list endpoints (GET /v1/alerts, /v1/rollups) share, read from `query`:
// `node`, `since` (ms) and `limit` (capped at max_limit). Fills `q` and returns the parsed
// parameters for endpoint-specific keys, or the 400 to send.
std::variant<std::map<std::string, std::string>, HttpResponse> ReadListQuery(std::string_view query,
                                                                             int64_t default_limit,
                                                                             int64_t max_limit,
                                                                             ListQuery& q) {
  auto params = ParseQuery(query);
  if (!params) return ErrorResponse(400, "malformed query string");
  q.limit = default_limit;
  if (const auto it = params->find("node"); it != params->end()) q.node = it->second;
  if (const auto it = params->find("since"); it != params->end()) {
    q.since_ms = ParseInt64(it->second);
    if (!q.since_ms) return ErrorResponse(400, "'since' must be an integer (ms)");
  }
  if (const auto it = params->find("limit"); it != params->end()) {
    const auto limit = ParseInt64(it->second);
    if (!limit || *limit < 0) return ErrorResponse(400, "'limit' must be a non-negative integer");
    q.limit = std::min(*limit, max_limit);
  }
  return std::move(*params);
}

std::string HtmlEscape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// "2025-11-26 14:23:20.123Z"; the raw number when it is outside what gmtime handles.
std::string FormatUtcMs(int64_t ms) {
  const int64_t seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const auto millis = static_cast<int>(ms - seconds * 1000);
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr || tm.tm_year > 9999 - 1900 || tm.tm_year < -1900) {
    return std::to_string(ms);
  }
  char buf[32];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  char frac[8];
  std::snprintf(frac, sizeof(frac), ".%03dZ", millis);
  return std::string(buf, n) + frac;
}

// A member of a status object, for the dashboard: numbers and strings as text, "" if the
// member is absent or of another type.
std::string StatusText(const json& status, std::string_view key) {
  if (!status.is_object()) return {};
  const auto it = status.find(key);
  if (it == status.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  if (it->is_number_unsigned()) return std::to_string(it->get<uint64_t>());
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  return {};
}

// "alert 0, rollup 12" from an object of counts; "" if it is not one.
std::string StatusCounts(const json& status, std::string_view key) {
  if (!status.is_object()) return {};
  const auto it = status.find(key);
  if (it == status.end() || !it->is_object()) return {};
  std::string out;
  for (const auto& [name, value] : it->items()) {
    if (!value.is_number_integer() && !value.is_number_unsigned()) continue;
    if (!out.empty()) out += ", ";
    out += name + " " + std::to_string(value.get<int64_t>());
  }
  return out;
}

std::string HumanBytes(const std::string& digits) {
  const auto bytes = ParseInt64(digits);
  if (!bytes) return digits;
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(*bytes);
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(units)) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), unit == 0 ? "%.0f %s" : "%.1f %s", v, units[unit]);
  return buf;
}

std::string HumanSeconds(const std::string& digits) {
  const auto seconds = ParseInt64(digits);
  if (!seconds || *seconds < 0) return digits;
  const int64_t d = *seconds / 86400;
  const int64_t h = *seconds % 86400 / 3600;
  const int64_t m = *seconds % 3600 / 60;
  if (d > 0) return std::to_string(d) + "d " + std::to_string(h) + "h";
  if (h > 0) return std::to_string(h) + "h " + std::to_string(m) + "m";
  return std::to_string(m) + "m " + std::to_string(*seconds % 60) + "s";
}

}  // namespace

HttpResponse ConsoleApi::GetRollups(const HttpRequest& request, std::string_view query) {
  if (auto refusal = RefuseUnlessAdmin(tokens_, request, "rollups need the admin token")) {
    return std::move(*refusal);
  }
  RollupQuery q;
  auto params = ReadListQuery(query, options_.default_rollup_limit, options_.max_rollup_limit, q);
  if (auto* bad = std::get_if<HttpResponse>(&params)) return std::move(*bad);
  const auto& extra = std::get<std::map<std::string, std::string>>(params);
  if (const auto it = extra.find("sensor"); it != extra.end()) q.sensor = it->second;

  Result<std::vector<StoredRollup>> rollups = store_.Rollups(q);
  if (!rollups) return StoreUnavailable("querying rollups failed", rollups.error());
  json out = json::array();
  for (const StoredRollup& r : *rollups) {
    out.push_back(json{{"id", r.id},
                       {"node", r.node},
                       {"sensor", r.fields.sensor},
                       {"start_ms", r.fields.start_ms},
                       {"end_ms", r.fields.end_ms},
                       {"count", r.fields.count},
                       {"min", r.fields.min},
                       {"max", r.fields.max},
                       {"mean", r.fields.mean},
                       {"last", r.fields.last},
                       {"received_ms", r.received_ms}});
  }
  return JsonResponse(200, out);
}

HttpResponse ConsoleApi::GetAlerts(const HttpRequest& request, std::string_view query) {
  if (auto refusal = RefuseUnlessAdmin(tokens_, request, "alerts need the admin token")) {
    return std::move(*refusal);
  }
  AlertQuery q;
  auto params = ReadListQuery(query, options_.default_alert_limit, options_.max_alert_limit, q);
  if (auto* bad = std::get_if<HttpResponse>(&params)) return std::move(*bad);

  Result<std::vector<StoredAlert>> alerts = store_.Alerts(q);
  if (!alerts) return StoreUnavailable("querying alerts failed", alerts.error());
  json out = json::array();
  for (const StoredAlert& a : *alerts) {
    json element = json::parse(a.payload_json, nullptr, /*allow_exceptions=*/false);
    if (!element.is_object()) {
      log_.Write(LogLevel::kError, "stored payload unreadable", {{"id", a.id}});
      continue;
    }
    element["id"] = a.id;
    element["received_ms"] = a.received_ms;
    if (!element.contains("node")) element["node"] = a.node;
    if (!element.contains("episode")) {
      // Agents leave it out: it is rule|sensor|started_ms, the same for both events of one
      // episode (docs/protocol.md, "Alert payload").
      const auto rule = element.find("rule");
      const auto sensor = element.find("sensor");
      const auto started = element.find("started_ms");
      if (rule != element.end() && rule->is_string() && sensor != element.end() &&
          sensor->is_string() && started != element.end() && started->is_number_integer()) {
        element["episode"] = rule->get<std::string>() + "|" + sensor->get<std::string>() + "|" +
                             std::to_string(started->get<int64_t>());
      }
    }
    out.push_back(std::move(element));
  }
  return JsonResponse(200, out);
}

Result<std::vector<NodeActivity>> ConsoleApi::FleetView() {
  Result<std::vector<NodeActivity>> activity = store_.Activity();
  if (!activity) return activity.status();
  std::map<std::string, NodeActivity> by_node;
  for (NodeActivity& a : *activity) by_node[a.node] = std::move(a);
  std::vector<NodeActivity> fleet;
  for (const std::string& node : tokens_.Nodes()) {
    NodeActivity a;
    if (auto it = by_node.find(node); it != by_node.end()) a = std::move(it->second);
    a.node = node;
    fleet.push_back(std::move(a));
  }
  return fleet;
}

HttpResponse ConsoleApi::StoreUnavailable(const char* failed, const std::string& error,
                                          std::string_view node) {
  LogFields fields;
  if (!node.empty()) fields.emplace_back("node", std::string(node));
  fields.emplace_back("error", error);
  log_.Write(LogLevel::kError, failed, fields);
  return ErrorResponse(503, "store unavailable, retry later");
}

HttpResponse ConsoleApi::GetNodes(const HttpRequest& request) {
  if (auto refusal = RefuseUnlessAdmin(tokens_, request, "nodes need the admin token"))
    return std::move(*refusal);
  Result<std::vector<NodeActivity>> fleet = FleetView();
  if (!fleet) return StoreUnavailable("querying nodes failed", fleet.error());
  json out = json::array();
  for (const NodeActivity& a : *fleet) {
    json status = nullptr;
    if (a.status_ms) {
      status = json::parse(a.status_json, nullptr, /*allow_exceptions=*/false);
      if (!status.is_object()) {
        log_.Write(LogLevel::kError, "stored status unreadable", {{"node", a.node}});
        status = nullptr;
      }
    }
    out.push_back(json{{"node", a.node},
                       {"last_seen_ms", a.last_seen_ms ? json(*a.last_seen_ms) : json(nullptr)},
                       {"alerts", a.alerts},
                       {"status_ms", a.status_ms ? json(*a.status_ms) : json(nullptr)},
                       {"status", std::move(status)}});
  }
  return JsonResponse(200, out);
}

HttpResponse ConsoleApi::GetDashboard(const HttpRequest& request) {
  if (auto refusal = RefuseUnlessAdmin(tokens_, request, "the dashboard needs the admin token",
                                       /*basic=*/true)) {
    return std::move(*refusal);
  }
  Result<std::vector<NodeActivity>> fleet = FleetView();
  Result<std::vector<StoredAlert>> alerts = store_.LatestAlerts(options_.dashboard_alerts);
  if (!fleet || !alerts) {
    return StoreUnavailable("rendering dashboard failed", fleet ? alerts.error() : fleet.error());
  }

  std::string html;
  html += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  html += "<title>edge-console</title><style>";
  html += "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}";
  html += "table{border-collapse:collapse;margin-bottom:2em}";
  html += "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}";
  html += "th{background:#f3f3f3}.firing{color:#b00020;font-weight:bold}.resolved{color:#1b5e20}";
  html += "</style></head><body>\n<h1>edge-console</h1>\n";
  html += "<p>Rendered " + HtmlEscape(FormatUtcMs(clock_.WallMs())) + "</p>\n";

  html += "<h2>Nodes</h2>\n<table><tr><th>node</th><th>last seen (UTC)</th><th>alerts</th>";
  html += "<th>agent</th><th>policy</th><th>mqtt</th><th>uptime</th><th>backlog</th>";
  html += "<th>evicted</th><th>dead-lettered</th><th>drops</th><th>database</th>";
  html += "<th>status (UTC)</th></tr>\n";
  for (const NodeActivity& a : *fleet) {
    const json status =
        a.status_ms ? json::parse(a.status_json, nullptr, /*allow_exceptions=*/false) : json();
    const auto cell = [](const std::string& text) { return "<td>" + HtmlEscape(text) + "</td>"; };
    html +=
        "<tr>" + cell(a.node) +
        cell(a.last_seen_ms ? FormatUtcMs(*a.last_seen_ms) : std::string("never")) +
        cell(std::to_string(a.alerts)) + cell(StatusText(status, "agent_version")) +
        cell(StatusText(status, "policy_version")) + cell(StatusText(status, "mqtt_connected")) +
        cell(HumanSeconds(StatusText(status, "uptime_s"))) + cell(StatusCounts(status, "backlog")) +
        cell(StatusCounts(status, "evicted")) + cell(StatusCounts(status, "dead_lettered")) +
        cell(StatusCounts(status, "drops")) + cell(HumanBytes(StatusText(status, "db_bytes"))) +
        cell(a.status_ms ? FormatUtcMs(*a.status_ms) : std::string("never")) + "</tr>\n";
  }
  html += "</table>\n";

  html += "<h2>Latest " + std::to_string(options_.dashboard_alerts) + " alerts</h2>\n";
  html += "<table><tr><th>time (UTC)</th><th>node</th><th>rule</th><th>sensor</th>";
  html += "<th>severity</th><th>state</th></tr>\n";
  for (const StoredAlert& a : *alerts) {
    const std::string state_class = a.fields.state == "firing" ? "firing" : "resolved";
    html += "<tr><td>" + HtmlEscape(FormatUtcMs(a.fields.ts_ms)) + "</td><td>" +
            HtmlEscape(a.node) + "</td><td>" + HtmlEscape(a.fields.rule) + "</td><td>" +
            HtmlEscape(a.fields.sensor) + "</td><td>" + HtmlEscape(a.fields.severity) +
            "</td><td class=\"" + state_class + "\">" + HtmlEscape(a.fields.state) + "</td></tr>\n";
  }
  html += "</table>\n</body></html>\n";

  HttpResponse r;
  r.content_type = "text/html; charset=utf-8";
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'");
  r.body = std::move(html);
  return r;
}

}  // namespace edge::console
