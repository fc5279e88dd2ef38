#pragma once

// The agent's one HTTP port (/metrics, /healthz, /readyz, /v1/readings), served by Beast on
// the network thread's io_context. Plain HTTP/1.1 with keep-alive; a request that cannot be
// parsed gets a 400 and the connection is closed. The handler runs on the io_context thread
// and must not block.
//
// Bounds (so that idle or slow clients cannot lock the port; docs/operations.md, "Security"):
// - A connection must deliver a request's complete headers within header_timeout_ms of being
//   accepted (and, with keep-alive, of the previous response); otherwise it is closed.
// - At most max_connections_per_client connections per client address and max_connections in
//   all. A new connection over either bound closes the oldest connection that is waiting for
//   request headers (of that client, or of anyone for the total bound); only when none is
//   waiting (all are being answered) is the new connection closed instead. Accept never
//   blocks, so a probe from any address gets through while the others are merely idle.
// - Each such close is counted in edge_agent_http_connections_rejected_total{reason=
//   header_timeout|client_limit|total_limit} and summarised in a warning at most every 10 s.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edge/common/metrics.h"
#include "edge/common/status.h"

namespace boost::asio {
class io_context;
}

namespace edge::agent {

struct HttpRequest {
  std::string_view method;         // "GET", ...
  std::string_view target;         // "/metrics?x=1"
  std::string_view authorization;  // the Authorization header; empty when absent
  bool peer_is_loopback = false;   // the client's address is 127.0.0.0/8 or ::1
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {};  // extra header fields
};

using HttpHandler = std::function<HttpResponse(const HttpRequest& request)>;

struct HttpServerOptions {
  std::string listen = "0.0.0.0:9102";  // HOST:PORT; port 0 picks a free one
  int64_t header_timeout_ms = 5'000;    // until a request's headers are complete
  int64_t write_timeout_ms = 10'000;    // writing one response
  size_t max_connections = 64;
  size_t max_connections_per_client = 16;  // per client IP address
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;  // the bound port
  virtual void Stop() = 0;            // thread-safe; closes the listener and connections
};

// Binds and starts accepting; bind errors (address in use, bad address) are returned.
// `metrics` must outlive the io_context's last run.
Result<std::unique_ptr<HttpServer>> StartHttpServer(boost::asio::io_context& io,
                                                    const HttpServerOptions& options,
                                                    HttpHandler handler, Metrics& metrics);

// Splits "host:port" ("[::1]:80" for IPv6). Error for a missing or out-of-range port.
Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view listen);

// True when `authorization` is "Bearer <token>" (scheme case-insensitive) with exactly
// `token`, which must not be empty. Compares in time independent of where the two differ
// (SHA-256 of both, CRYPTO_memcmp), so a guess learns nothing from timing.
bool BearerTokenMatches(std::string_view authorization, std::string_view token);

// Who may use an endpoint that serves stored data (GET /v1/readings): with a token, requests
// that carry it as a bearer token (401 otherwise, whatever the client's address); without
// one, loopback clients only (403 to others). Each refusal is counted in the counter given
// for its kind. Copyable; the counters are borrowed and must outlive the gate.
class TokenOrLoopbackGate {
 public:
  TokenOrLoopbackGate(std::string token, CounterHandle& unauthorized, CounterHandle& not_loopback);

  // Empty when `request` may proceed; otherwise the response to send instead.
  std::optional<HttpResponse> Check(const HttpRequest& request) const;

 private:
  std::string token_;  // empty: loopback only
  CounterHandle* unauthorized_;
  CounterHandle* not_loopback_;
};

}  // namespace edge::agent
