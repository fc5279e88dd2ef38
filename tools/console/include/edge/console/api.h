#pragma once

// The console's HTTP API (docs/protocol.md) over a ConsoleStore: routing, authentication,
// gzip bodies, validation, JSON replies and the HTML dashboard at "/".
//
// Not thread-safe: runs on the server's event-loop thread. Borrows everything it is given;
// all of it must outlive the ConsoleApi.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "edge/common/clock.h"
#include "edge/console/http.h"
#include "edge/console/log.h"
#include "edge/console/policy_api.h"
#include "edge/console/server_metrics.h"
#include "edge/console/store.h"
#include "edge/console/tokens.h"

namespace edge::console {

struct ApiOptions {
  size_t max_decompressed_body_bytes = 8 * 1024 * 1024;
  int64_t default_alert_limit = 1000;
  int64_t max_alert_limit = 10000;
  int64_t dashboard_alerts = 100;
  int64_t default_rollup_limit = 1000;
  int64_t max_rollup_limit = 10000;
  // Retry-After of the 429 that refuses a batch over the node's storage quota.
  int64_t quota_retry_after_s = 60;
};

class ConsoleApi final : public RequestHandler {
 public:
  // `policy` (borrowed, may be null) answers the policy channel's HTTP paths; without it
  // they are 404. `server_metrics` (borrowed, may be null) is added to GET /metrics.
  ConsoleApi(const TokenTable& tokens, ConsoleStore& store, const Clock& clock, Log& log,
             ApiOptions options = {}, PolicyApi* policy = nullptr,
             const ServerMetrics* server_metrics = nullptr);

  // Never throws: an unexpected fault is logged and answered with 500.
  HttpResponse Handle(const HttpRequest& request) override;
  // Refuses (401) a request for a route that needs a token when its Authorization header
  // carries no known token, so that its body is never read. Routes without a token
  // (/healthz, /metrics) and unknown paths pass; method and role checks stay in Handle().
  HeadVerdict CheckHead(const HttpRequest& head) override;

 private:
  HttpResponse Route(const HttpRequest& request);
  HttpResponse PostBatches(const HttpRequest& request);
  HttpResponse GetAlerts(const HttpRequest& request, std::string_view query);
  HttpResponse PostStatus(const HttpRequest& request);
  HttpResponse GetRollups(const HttpRequest& request, std::string_view query);
  HttpResponse GetNodes(const HttpRequest& request);
  HttpResponse GetDashboard(const HttpRequest& request);
  HttpResponse GetMetrics() const;
  Result<std::vector<NodeActivity>> FleetView();
  // Logs `failed` with the store's `error` (and the `node`, when given) and answers 503 (the
  // client retries later).
  HttpResponse StoreUnavailable(const char* failed, const std::string& error,
                                std::string_view node = {});
  // Decodes a gzip or identity body within the size limit; an error response otherwise.
  std::optional<HttpResponse> DecodeBody(const HttpRequest& request, std::string* decoded,
                                         const std::string** body) const;
  // A node's upload: the principal of its token and its parsed body.
  template <typename T>
  struct Upload {
    Principal principal;
    T value;
  };
  // Authorizes a node's upload (`forbidden`: the 403 text for the admin token), decodes its
  // body and parses it with `parse`; otherwise the reply refusing it (a body that does not
  // parse is logged as `rejected` and answered 400). Defined in api_ingest.cc, its only user.
  template <typename T>
  std::variant<Upload<T>, HttpResponse> ReadUpload(const HttpRequest& request,
                                                   std::string_view forbidden, const char* rejected,
                                                   Result<T> (*parse)(std::string_view));

  const TokenTable& tokens_;
  ConsoleStore& store_;
  const Clock& clock_;
  Log& log_;
  ApiOptions options_;
  PolicyApi* policy_;
  const ServerMetrics* server_metrics_;
  // Counters for GET /metrics, by result label ("accepted", "malformed", ...); the API runs
  // on one thread, so plain integers suffice.
  std::map<std::string, int64_t> batches_;
  std::map<std::string, int64_t> status_reports_;
  std::map<std::string, int64_t> items_;  // "kind|stored" or "kind|duplicate"
};

}  // namespace edge::console
