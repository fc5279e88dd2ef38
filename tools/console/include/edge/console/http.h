#pragma once

// Transport-neutral HTTP request/response values, so request handling can be tested without
// sockets and the HTTP library stays inside one adapter (src/http_server.cc).

#include <string>
#include <utility>
#include <vector>

namespace edge::console {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form: path plus optional "?query"
  std::string authorization;
  std::string content_encoding;
  std::string content_type;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
};

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Called on the server's event-loop thread. Must not throw; a handler fault becomes a
  // 5xx response.
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
};

}  // namespace edge::console
