// The console API's routing, the head check and GET /metrics; the handlers are in
// api_ingest.cc (POST /v1/batches, /v1/status) and api_queries.cc (alerts, nodes, rollups,
// dashboard).

#include "edge/console/api.h"

#include <exception>
#include <map>
#include <string>
#include <string_view>

#include "api_request.h"

namespace edge::console {
namespace {

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

constexpr const char* kUploadResults[] = {"accepted",   "malformed",   "unauthorized",
                                          "forbidden",  "too_large",   "unsupported_encoding",
                                          "over_quota", "unavailable", "other"};
constexpr const char* kItemKinds[] = {"alert", "rollup", "other"};

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
  verdict.principal = tokens_.Authenticate(ExtractToken(head.authorization, dashboard));
  if (!verdict.principal) verdict.refusal = Unauthorized(dashboard);
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

}  // namespace edge::console
