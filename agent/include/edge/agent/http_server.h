#pragma once

// The agent's one HTTP port (/metrics, /healthz, /readyz), served by Beast on the network
// thread's io_context. Plain HTTP/1.1 with keep-alive; every read has a timeout; a request
// that cannot be parsed gets a 400 and the connection is closed. The handler runs on the
// io_context thread and must not block.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace boost::asio {
class io_context;
}

namespace edge::agent {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// method ("GET", ...) and target ("/metrics?x=1") of the request.
using HttpHandler = std::function<HttpResponse(std::string_view method, std::string_view target)>;

struct HttpServerOptions {
  std::string listen = "0.0.0.0:9102";  // HOST:PORT; port 0 picks a free one
  int64_t read_timeout_ms = 10'000;
  size_t max_connections = 64;
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;  // the bound port
  virtual void Stop() = 0;            // thread-safe; closes the listener and connections
};

// Binds and starts accepting; bind errors (address in use, bad address) are returned.
Result<std::unique_ptr<HttpServer>> StartHttpServer(boost::asio::io_context& io,
                                                    const HttpServerOptions& options,
                                                    HttpHandler handler);

// Splits "host:port" ("[::1]:80" for IPv6). Error for a missing or out-of-range port.
Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view listen);

}  // namespace edge::agent
