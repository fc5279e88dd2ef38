#pragma once

// Transport-neutral HTTP request/response values, so request handling can be tested without
// sockets and the HTTP library stays inside one adapter (src/beast_server.h and the files it
// names).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edge/console/principal.h"

namespace edge::console {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form: path plus optional "?query"
  std::string authorization;
  std::string content_encoding;
  std::string content_type;
  std::string body;
  // Set by the server from HeadVerdict::principal: the head check already authenticated
  // the request's token, so handlers take it instead of looking the token up again.
  std::optional<Principal> principal;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
};

// What a handler says about a request from its headers alone (before any body is read).
struct HeadVerdict {
  // The route needs a token: the server refuses it (429) while the client's address is
  // throttled for failed authentication.
  bool needs_token = false;
  // Set to answer at once without reading the body (e.g. 401 for a missing or unknown
  // token); the connection is closed afterwards if a body was announced.
  std::optional<HttpResponse> refusal;
  // Who the request's token speaks for, when the check authenticated it; the server hands
  // it on as HttpRequest::principal.
  std::optional<Principal> principal;
};

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Called on the event-loop thread with the request's headers (`head.body` is empty)
  // before the body is read. Must not throw. The default reads every body.
  virtual HeadVerdict CheckHead(const HttpRequest& /*head*/) { return {}; }
  // Called on the server's event-loop thread. Must not throw; a handler fault becomes a
  // 5xx response.
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
};

}  // namespace edge::console

namespace edge::console {

// One open WebSocket channel, as handlers see it. Called on the server's event-loop thread
// only; valid from ChannelHandler::OnOpen until ChannelHandler::OnClose returns.
class ChannelPeer {
 public:
  virtual ~ChannelPeer() = default;
  // Queues one text message and returns at once. The queue is bounded: a peer that does
  // not keep up is closed (1008) and later messages are dropped.
  virtual void Send(std::string message) = 0;
  // Sends a close frame with `code` after what is queued; further Sends are dropped.
  virtual void Close(uint16_t code, std::string reason) = 0;
};

// WebSocket channels on the HTTP server (the policy channel). Every call comes from the
// server's event-loop thread and must not block or throw.
class ChannelHandler {
 public:
  virtual ~ChannelHandler() = default;
  // An upgrade request for the channel path: returns nullopt to accept it (with the
  // principal the peer speaks for in *principal) or the HTTP response that refuses it.
  virtual std::optional<HttpResponse> Admit(const HttpRequest& request, std::string* principal) = 0;
  virtual void OnOpen(ChannelPeer& peer, const std::string& principal) = 0;
  // One complete text message.
  virtual void OnMessage(ChannelPeer& peer, std::string_view text) = 0;
  // The channel is gone; `peer` must not be used after this returns.
  virtual void OnClose(ChannelPeer& peer) = 0;
  // Called about once a second while the server runs.
  virtual void OnTick() = 0;
};

}  // namespace edge::console
