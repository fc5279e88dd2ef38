#pragma once

// The console's HTTP API (docs/protocol.md) over a ConsoleStore: routing, authentication,
// gzip bodies, validation, JSON replies and the HTML dashboard at "/".
//
// Not thread-safe: runs on the server's event-loop thread. Borrows everything it is given;
// all of it must outlive the ConsoleApi.

#include <cstddef>
#include <cstdint>

#include "edge/common/clock.h"
#include "edge/console/http.h"
#include "edge/console/log.h"
#include "edge/console/store.h"
#include "edge/console/tokens.h"

namespace edge::console {

struct ApiOptions {
  size_t max_decompressed_body_bytes = 8 * 1024 * 1024;
  int64_t default_alert_limit = 1000;
  int64_t max_alert_limit = 10000;
  int64_t dashboard_alerts = 100;
};

class ConsoleApi final : public RequestHandler {
 public:
  ConsoleApi(const TokenTable& tokens, ConsoleStore& store, const Clock& clock, Log& log,
             ApiOptions options = {});

  // Never throws: an unexpected fault is logged and answered with 500.
  HttpResponse Handle(const HttpRequest& request) override;

 private:
  HttpResponse Route(const HttpRequest& request);
  HttpResponse PostBatches(const HttpRequest& request);
  HttpResponse GetAlerts(const HttpRequest& request, std::string_view query);
  HttpResponse GetNodes(const HttpRequest& request);
  HttpResponse GetDashboard(const HttpRequest& request);
  Result<std::vector<NodeActivity>> FleetView();

  const TokenTable& tokens_;
  ConsoleStore& store_;
  const Clock& clock_;
  Log& log_;
  ApiOptions options_;
};

}  // namespace edge::console
