#include "edge/console/api.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "edge/cloudsync/gzip.h"
#include "edge/common/query.h"
#include "edge/console/batch.h"
#include "edge/console/codec.h"

namespace edge::console {
namespace {

// More new alerts than this in one batch (a backlog) are logged as one summary line.
constexpr size_t kMaxAlertLinesPerBatch = 16;

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse ErrorResponse(int status, std::string_view message) {
  return JsonResponse(status, json{{"error", message}});
}

HttpResponse Unauthorized(bool basic_challenge) {
  HttpResponse r = ErrorResponse(401, "missing or unknown token");
  r.headers.emplace_back("WWW-Authenticate", basic_challenge ? R"(Basic realm="edge-console")"
                                                             : R"(Bearer realm="edge-console")");
  return r;
}

HttpResponse MethodNotAllowed(std::string_view allow) {
  HttpResponse r = ErrorResponse(405, "method not allowed");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xffu));
    }
  }
  return out;
}

// The token from "Bearer TOKEN", or with `allow_basic` from the password of
// "Basic base64(USER:TOKEN)" (what a browser sends for the dashboard).
std::string ExtractToken(std::string_view authorization, bool allow_basic) {
  if (std::string bearer = BearerToken(authorization); !bearer.empty()) return bearer;
  authorization = Trim(authorization);
  const size_t space = authorization.find(' ');
  if (space == std::string_view::npos) return {};
  const std::string_view scheme = authorization.substr(0, space);
  const std::string_view credentials = Trim(authorization.substr(space + 1));
  if (allow_basic && EqualsIgnoreCase(scheme, "Basic")) {
    const auto decoded = Base64Decode(credentials);
    if (!decoded) return {};
    const size_t colon = decoded->find(':');
    return colon == std::string::npos ? std::string() : decoded->substr(colon + 1);
  }
  return {};
}

using edge::ParseInt64;
using edge::ParseQuery;

// The filters the list endpoints share: `node`, `since` (ms) and `limit` (capped at
// max_limit). Fills `q` and returns the parsed parameters for endpoint-specific keys, or
// the 400 to send.
template <typename Query>
std::variant<std::map<std::string, std::string>, HttpResponse> ReadListQuery(std::string_view query,
                                                                             int64_t default_limit,
                                                                             int64_t max_limit,
                                                                             Query& q) {
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

// The result label of an upload answered with `status`.
const char* ResultLabel(int status) {
  switch (status) {
    case 200:
      return "accepted";
    case 400:
      return "malformed";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 413:
      return "too_large";
    case 415:
      return "unsupported_encoding";
    case 429:
      return "over_quota";
    default:
      return status >= 500 ? "unavailable" : "other";
  }
}

// `text` as a JSON string literal, the bytes nlohmann's dump() writes for it.
void AppendJsonString(std::string& out, std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      // Only ids of an accepted batch get here, which are valid UTF-8; anything else is left
      // to nlohmann's replacement of invalid sequences.
      out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof(escape), "\\u%04x", static_cast<unsigned>(c));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// The 200 reply to a stored batch, written directly (it lists every id of the batch):
// {"accepted":N,"acked":[...],"duplicates":M}, as json::dump() wrote it.
HttpResponse AckResponse(const StoreOutcome& outcome) {
  HttpResponse r;
  std::string& body = r.body;
  size_t size = 64;
  for (const std::string& id : outcome.acked) size += id.size() + 3;
  body.reserve(size);
  body += "{\"accepted\":";
  body += std::to_string(outcome.accepted);
  body += ",\"acked\":[";
  for (size_t i = 0; i < outcome.acked.size(); ++i) {
    if (i > 0) body += ',';
    AppendJsonString(body, outcome.acked[i]);
  }
  body += "],\"duplicates\":";
  body += std::to_string(outcome.duplicates);
  body += '}';
  return r;
}

constexpr const char* kUploadResults[] = {"accepted",   "malformed",   "unauthorized",
                                          "forbidden",  "too_large",   "unsupported_encoding",
                                          "over_quota", "unavailable", "other"};
constexpr const char* kItemKinds[] = {"alert", "rollup", "other"};

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

ConsoleApi::ConsoleApi(const TokenTable& tokens, ConsoleStore& store, const Clock& clock, Log& log,
                       ApiOptions options, PolicyApi* policy, const ServerMetrics* server_metrics)
    : tokens_(tokens),
      store_(store),
      clock_(clock),
      log_(log),
      options_(options),
      policy_(policy),
      server_metrics_(server_metrics) {}

HeadVerdict ConsoleApi::CheckHead(const HttpRequest& head) {
  HeadVerdict verdict;
  const std::string_view target = head.target;
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string_view method = head.method;
  // The routes that need a token, with the method they answer (others get 405 later).
  const bool post_route =
      path == "/v1/batches" || path == "/v1/status" ||
      (policy_ != nullptr && (path == "/v1/policy/poll" || path == "/v1/policy/report"));
  const bool get_route =
      path == "/v1/rollups" || path == "/v1/alerts" || path == "/v1/nodes" || path == "/";
  const bool admin_route = policy_ != nullptr && path != kPolicyChannelPath &&
                           PolicyApi::Owns(path) && path.starts_with("/v1/policies");
  if (!(post_route && method == "POST") && !(get_route && method == "GET") && !admin_route) {
    return verdict;
  }
  verdict.needs_token = true;
  const bool dashboard = path == "/";
  if (!tokens_.Authenticate(ExtractToken(head.authorization, dashboard))) {
    verdict.refusal = Unauthorized(dashboard);
  }
  return verdict;
}

HttpResponse ConsoleApi::Handle(const HttpRequest& request) {
  try {
    return Route(request);
  } catch (const std::exception& e) {
    log_.Write(LogLevel::kError, "request failed",
               {{"method", request.method}, {"target", request.target}, {"error", e.what()}});
  } catch (...) {
    log_.Write(LogLevel::kError, "request failed",
               {{"method", request.method}, {"target", request.target}, {"error", "unknown"}});
  }
  return ErrorResponse(500, "internal error");
}

HttpResponse ConsoleApi::Route(const HttpRequest& request) {
  const std::string_view target = request.target;
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  const bool get = request.method == "GET";

  if (path == "/healthz") {
    if (!get) return MethodNotAllowed("GET");
    HttpResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "ok\n";
    return r;
  }
  if (path == "/metrics") {
    if (!get) return MethodNotAllowed("GET");
    return GetMetrics();
  }
  if (path == "/v1/batches") {
    if (request.method != "POST") return MethodNotAllowed("POST");
    HttpResponse r = PostBatches(request);
    ++batches_[ResultLabel(r.status)];
    return r;
  }
  if (path == "/v1/status") {
    if (request.method != "POST") return MethodNotAllowed("POST");
    HttpResponse r = PostStatus(request);
    ++status_reports_[ResultLabel(r.status)];
    return r;
  }
  if (path == "/v1/rollups") {
    if (!get) return MethodNotAllowed("GET");
    return GetRollups(request, query);
  }
  if (path == "/v1/alerts") {
    if (!get) return MethodNotAllowed("GET");
    return GetAlerts(request, query);
  }
  if (path == "/v1/nodes") {
    if (!get) return MethodNotAllowed("GET");
    return GetNodes(request);
  }
  if (path == "/") {
    if (!get) return MethodNotAllowed("GET");
    return GetDashboard(request);
  }
  if (policy_ != nullptr && PolicyApi::Owns(path)) return policy_->Handle(request, path);
  return ErrorResponse(404, "not found");
}

HttpResponse ConsoleApi::PostBatches(const HttpRequest& request) {
  const auto principal = tokens_.Authenticate(ExtractToken(request.authorization, false));
  if (!principal) return Unauthorized(false);
  if (principal->admin) return ErrorResponse(403, "batches need a node token");

  std::string decoded;
  const std::string* body = nullptr;
  if (auto error = DecodeBody(request, &decoded, &body)) return *error;

  Result<Batch> batch = ParseBatch(*body);
  if (!batch) {
    log_.Write(LogLevel::kWarn, "batch rejected",
               {{"node", principal->node}, {"status", int64_t{400}}, {"error", batch.error()}});
    return ErrorResponse(400, batch.error());
  }
  if (batch->node != principal->node) {
    log_.Write(LogLevel::kWarn, "batch rejected",
               {{"node", principal->node}, {"status", int64_t{403}}, {"batch_node", batch->node}});
    return ErrorResponse(403, "batch node differs from the token's node");
  }

  Result<StoreOutcome> outcome = store_.StoreBatch(*batch, clock_.WallMs());
  if (!outcome) {
    log_.Write(LogLevel::kError, "storing batch failed",
               {{"node", batch->node}, {"error", outcome.error()}});
    return ErrorResponse(503, "store unavailable, retry later");
  }
  if (outcome->over_quota) {
    // 429 with Retry-After: the agent keeps the rows and retries after the delay; a 413 or
    // 400 would make it shrink the batch and dead-letter rows that are not at fault.
    log_.Write(LogLevel::kWarn, "batch refused: node storage quota reached",
               {{"node", batch->node}, {"stored_bytes", outcome->node_bytes}});
    HttpResponse r = ErrorResponse(429, "node storage quota reached, retry later");
    r.headers.emplace_back("Retry-After", std::to_string(options_.quota_retry_after_s));
    return r;
  }
  // Live alerts get a line each; a backlog being drained gets one summary line (its
  // alerts still go to the debug log), so logging never dominates a drain.
  const bool live = outcome->new_alert_items.size() <= kMaxAlertLinesPerBatch;
  if (!live) {
    log_.Write(
        LogLevel::kInfo, "alerts stored",
        {{"node", batch->node}, {"alerts", static_cast<int64_t>(outcome->new_alert_items.size())}});
  }
  const LogLevel alert_level = live ? LogLevel::kInfo : LogLevel::kDebug;
  if (log_.Enabled(alert_level)) {
    for (size_t index : outcome->new_alert_items) {
      const BatchItem& item = batch->items[index];
      log_.Write(alert_level, "alert stored",
                 {{"node", batch->node},
                  {"rule", item.alert->rule},
                  {"sensor", item.alert->sensor},
                  {"severity", item.alert->severity},
                  {"state", item.alert->state},
                  {"ts_ms", item.alert->ts_ms},
                  {"id", item.id}});
    }
  }
  log_.Write(LogLevel::kDebug, "batch stored",
             {{"node", batch->node},
              {"accepted", outcome->accepted},
              {"duplicates", outcome->duplicates}});
  const int64_t new_alerts = static_cast<int64_t>(outcome->new_alert_items.size());
  items_["alert|stored"] += new_alerts;
  items_["rollup|stored"] += outcome->new_rollups;
  items_["other|stored"] += outcome->accepted - new_alerts - outcome->new_rollups;
  items_["all|duplicate"] += outcome->duplicates;
  return AckResponse(*outcome);
}

std::optional<HttpResponse> ConsoleApi::DecodeBody(const HttpRequest& request, std::string* decoded,
                                                   const std::string** body) const {
  *body = &request.body;
  const std::string_view encoding = Trim(request.content_encoding);
  if (EqualsIgnoreCase(encoding, "gzip")) {
    Gunzipped g = Gunzip(request.body, options_.max_decompressed_body_bytes);
    if (g.code == GunzipCode::kTooLarge) return ErrorResponse(413, g.error);
    if (g.code != GunzipCode::kOk) return ErrorResponse(400, g.error);
    *decoded = std::move(g.data);
    *body = decoded;
  } else if (EqualsIgnoreCase(encoding, cloudsync::kDictEncoding)) {
    bool too_large = false;
    auto plain =
        cloudsync::DictDecompress(request.body, options_.max_decompressed_body_bytes, &too_large);
    if (!plain.ok()) return ErrorResponse(too_large ? 413 : 400, plain.error());
    *decoded = std::move(plain.value());
    *body = decoded;
  } else if (!encoding.empty() && !EqualsIgnoreCase(encoding, "identity")) {
    return ErrorResponse(415, "unsupported Content-Encoding (use gzip, edge-zdict or none)");
  }
  if ((*body)->size() > options_.max_decompressed_body_bytes) {
    return ErrorResponse(413, "body too large");
  }
  return std::nullopt;
}

HttpResponse ConsoleApi::PostStatus(const HttpRequest& request) {
  const auto principal = tokens_.Authenticate(ExtractToken(request.authorization, false));
  if (!principal) return Unauthorized(false);
  if (principal->admin) return ErrorResponse(403, "status reports need a node token");

  std::string decoded;
  const std::string* body = nullptr;
  if (auto error = DecodeBody(request, &decoded, &body)) return *error;

  Result<StatusReport> report = ParseStatusReport(*body);
  if (!report) {
    log_.Write(LogLevel::kWarn, "status rejected",
               {{"node", principal->node}, {"status", int64_t{400}}, {"error", report.error()}});
    return ErrorResponse(400, report.error());
  }
  if (report->status_json.size() > kMaxStatusBytes) {
    return ErrorResponse(413,
                         "status object larger than " + std::to_string(kMaxStatusBytes) + " bytes");
  }
  if (report->node != principal->node) {
    log_.Write(
        LogLevel::kWarn, "status rejected",
        {{"node", principal->node}, {"status", int64_t{403}}, {"report_node", report->node}});
    return ErrorResponse(403, "status node differs from the token's node");
  }
  const int64_t now = clock_.WallMs();
  if (Status s = store_.StoreStatus(report->node, now, report->status_json); !s) {
    log_.Write(LogLevel::kError, "storing status failed",
               {{"node", report->node}, {"error", s.message()}});
    return ErrorResponse(503, "store unavailable, retry later");
  }
  log_.Write(LogLevel::kDebug, "status stored", {{"node", report->node}});
  return JsonResponse(200, json{{"stored", true}, {"received_ms", now}});
}

HttpResponse ConsoleApi::GetRollups(const HttpRequest& request, std::string_view query) {
  const auto principal = tokens_.Authenticate(ExtractToken(request.authorization, false));
  if (!principal) return Unauthorized(false);
  if (!principal->admin) return ErrorResponse(403, "rollups need the admin token");

  RollupQuery q;
  auto params = ReadListQuery(query, options_.default_rollup_limit, options_.max_rollup_limit, q);
  if (auto* bad = std::get_if<HttpResponse>(&params)) return std::move(*bad);
  const auto& extra = std::get<std::map<std::string, std::string>>(params);
  if (const auto it = extra.find("sensor"); it != extra.end()) q.sensor = it->second;

  Result<std::vector<StoredRollup>> rollups = store_.Rollups(q);
  if (!rollups) {
    log_.Write(LogLevel::kError, "querying rollups failed", {{"error", rollups.error()}});
    return ErrorResponse(503, "store unavailable, retry later");
  }
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

HttpResponse ConsoleApi::GetMetrics() const {
  const auto value = [](const std::map<std::string, int64_t>& counts, const std::string& key) {
    const auto it = counts.find(key);
    return it == counts.end() ? int64_t{0} : it->second;
  };
  std::string text;
  text += "# HELP edge_console_batches_total POST /v1/batches requests by result\n";
  text += "# TYPE edge_console_batches_total counter\n";
  for (const char* result : kUploadResults) {
    text += "edge_console_batches_total{result=\"" + std::string(result) + "\"} " +
            std::to_string(value(batches_, result)) + "\n";
  }
  text += "# HELP edge_console_status_reports_total POST /v1/status requests by result\n";
  text += "# TYPE edge_console_status_reports_total counter\n";
  for (const char* result : kUploadResults) {
    text += "edge_console_status_reports_total{result=\"" + std::string(result) + "\"} " +
            std::to_string(value(status_reports_, result)) + "\n";
  }
  text += "# HELP edge_console_items_stored_total Batch items stored (new ids) by kind\n";
  text += "# TYPE edge_console_items_stored_total counter\n";
  for (const char* kind : kItemKinds) {
    text += "edge_console_items_stored_total{kind=\"" + std::string(kind) + "\"} " +
            std::to_string(value(items_, std::string(kind) + "|stored")) + "\n";
  }
  text += "# HELP edge_console_items_duplicate_total Batch items whose id was already held\n";
  text += "# TYPE edge_console_items_duplicate_total counter\n";
  text +=
      "edge_console_items_duplicate_total " + std::to_string(value(items_, "all|duplicate")) + "\n";
  if (policy_ != nullptr) text += policy_->MetricsText();
  if (server_metrics_ != nullptr) text += server_metrics_->Text();
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = std::move(text);
  return r;
}

HttpResponse ConsoleApi::GetAlerts(const HttpRequest& request, std::string_view query) {
  const auto principal = tokens_.Authenticate(ExtractToken(request.authorization, false));
  if (!principal) return Unauthorized(false);
  if (!principal->admin) return ErrorResponse(403, "alerts need the admin token");

  AlertQuery q;
  auto params = ReadListQuery(query, options_.default_alert_limit, options_.max_alert_limit, q);
  if (auto* bad = std::get_if<HttpResponse>(&params)) return std::move(*bad);

  Result<std::vector<StoredAlert>> alerts = store_.Alerts(q);
  if (!alerts) {
    log_.Write(LogLevel::kError, "querying alerts failed", {{"error", alerts.error()}});
    return ErrorResponse(503, "store unavailable, retry later");
  }
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

HttpResponse ConsoleApi::GetNodes(const HttpRequest& request) {
  const auto principal = tokens_.Authenticate(ExtractToken(request.authorization, false));
  if (!principal) return Unauthorized(false);
  if (!principal->admin) return ErrorResponse(403, "nodes need the admin token");
  Result<std::vector<NodeActivity>> fleet = FleetView();
  if (!fleet) {
    log_.Write(LogLevel::kError, "querying nodes failed", {{"error", fleet.error()}});
    return ErrorResponse(503, "store unavailable, retry later");
  }
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
  const auto principal = tokens_.Authenticate(ExtractToken(request.authorization, true));
  if (!principal) return Unauthorized(true);
  if (!principal->admin) return ErrorResponse(403, "the dashboard needs the admin token");
  Result<std::vector<NodeActivity>> fleet = FleetView();
  Result<std::vector<StoredAlert>> alerts = store_.LatestAlerts(options_.dashboard_alerts);
  if (!fleet || !alerts) {
    log_.Write(LogLevel::kError, "rendering dashboard failed",
               {{"error", fleet ? alerts.error() : fleet.error()}});
    return ErrorResponse(503, "store unavailable, retry later");
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
