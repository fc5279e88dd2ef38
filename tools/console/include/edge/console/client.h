#pragma once

// A small blocking HTTP/1.1 client for the `edge-console policy` commands, which talk to a
// running console's admin API. Every call is bounded by `timeout` (connect, write and read
// together). Only http:// URLs; host names are resolved.

#include <chrono>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::console {

struct BaseUrl {
  std::string host;
  std::string port = "80";
  std::string path_prefix;  // without a trailing '/', "" for the root
};

// "http://HOST[:PORT][/PREFIX]" (edge::ParseUrl's rules, port 80 by default). https:// and
// anything else are refused with a message.
Result<BaseUrl> ParseBaseUrl(std::string_view url);

struct ClientReply {
  int status = 0;
  std::string body;
};

// Sends one request (JSON body if non-empty, bearer token if non-empty) and reads the
// reply. A failure to connect, send or receive in time is an error; any HTTP status is a
// reply.
Result<ClientReply> HttpCall(const BaseUrl& base, std::string_view method, std::string_view path,
                             std::string_view token, std::string_view body,
                             std::chrono::milliseconds timeout);

}  // namespace edge::console
