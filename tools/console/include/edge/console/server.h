#pragma once

// The console's HTTP/1.1 server: accepts connections and passes each complete request to a
// RequestHandler, all on one event-loop thread (the thread that calls Run()).
//
// Every network operation has a deadline: a new connection must send complete request
// headers within header_timeout; on a kept-alive connection the next request must start
// within read_timeout of the previous response and its headers be complete header_timeout
// after that; a body must arrive within read_timeout of its headers; a response must be
// written within write_timeout. Oversized headers get 431, oversized bodies 413,
// unparseable requests 400; a Transfer-Encoding other than one `chunked` gets 501, and
// Transfer-Encoding beside Content-Length 400. The connection is closed after those.
//
// Requests are read header first: the handler's CheckHead sees the headers and may answer
// (e.g. 401) before any body is read; then the body is read within max_body_bytes.
//
// Connections: at most max_connections request connections (a new one beyond is closed at
// once), at most max_connections_per_address of them from one client address (IPv6: one
// /64). A WebSocket channel leaves that pool once its handshake is done and counts in a
// pool of its own (max_channels). A node has at most one channel: a new channel of the
// same principal replaces (drops) the older one. Refusals are counted in ServerMetrics and
// logged at most once per second per reason, with the number of lines left out.
//
// Failed authentication (a 401 from CheckHead, Handle or ChannelHandler::Admit) is counted
// per client address (AuthThrottle); a throttled address gets 429 with Retry-After for
// every request that needs a token. Behind a trusted proxy the client address is taken
// from X-Forwarded-For.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edge/common/status.h"
#include "edge/console/auth_throttle.h"
#include "edge/console/http.h"
#include "edge/console/log.h"
#include "edge/console/server_metrics.h"

namespace edge::console {

struct ListenAddress {
  std::string host;  // IPv4 or IPv6 literal, without brackets
  uint16_t port = 0;
};

// "127.0.0.1:8080", "0.0.0.0:0", "[::1]:8080". Host names are not resolved.
Result<ListenAddress> ParseListenAddress(std::string_view text);

struct ServerOptions {
  ListenAddress listen{"127.0.0.1", 0};  // port 0 picks a free port
  std::chrono::milliseconds header_timeout{5'000};
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  // After Stop(): requests already being received or answered get this long to finish.
  std::chrono::milliseconds shutdown_grace{1'500};
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 8 * 1024 * 1024;  // on the wire; 413 beyond
  size_t max_connections = 256;             // request connections; beyond: closed at once
  size_t max_connections_per_address = 32;  // request connections per client address
  size_t max_channels = 2048;               // open WebSocket channels; beyond: 503
  AuthThrottleOptions auth_throttle;
  // Reverse proxies in front of the console (addresses or networks, "10.42.0.0/16", as
  // ParseIpRange reads them): their connections are not held to max_connections_per_address,
  // and failed authentication through them is counted for the client named by the last
  // X-Forwarded-For entry (the proxy's own address if none).
  std::vector<IpRange> trusted_proxies;
  bool handle_signals = false;  // SIGINT/SIGTERM call Stop()

  // WebSocket channels (used only when CreateServer is given a ChannelHandler): upgrade
  // requests for channel_path go to the handler. A channel whose first message does not
  // arrive within channel_hello_timeout is closed (1008). The server pings every
  // channel_ping_interval and drops a channel that has sent nothing (not even a pong) for
  // channel_idle_timeout. A message larger than channel_max_message closes the channel
  // (1009). A write, ping or close taking longer than write_timeout drops the connection,
  // and so does an outgoing queue beyond channel_queue_messages or channel_queue_bytes.
  std::string channel_path = "/v1/policy/channel";
  std::chrono::milliseconds channel_hello_timeout{10'000};
  std::chrono::milliseconds channel_ping_interval{15'000};
  std::chrono::milliseconds channel_idle_timeout{45'000};
  size_t channel_max_message = 2 * 1024 * 1024;
  size_t channel_queue_messages = 64;
  size_t channel_queue_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds tick_interval{1'000};  // ChannelHandler::OnTick
};

class Server {
 public:
  virtual ~Server() = default;
  // The bound port (the real one when ServerOptions::listen.port was 0).
  virtual uint16_t port() const = 0;
  // Serves until Stop() and until in-flight requests are finished or the grace period
  // ends. Call once, from the thread that is to run the event loop.
  virtual void Run() = 0;
  // Stops accepting, closes idle connections, lets in-flight requests finish. Thread-safe;
  // may be called before Run().
  virtual void Stop() = 0;
};

// Binds and listens (so port() is known and clients may connect before Run()). The
// handler, log, channel handler (may be null: no WebSocket channels) and metrics (may be
// null) are borrowed and must outlive the server.
Result<std::unique_ptr<Server>> CreateServer(const ServerOptions& options, RequestHandler& handler,
                                             Log& log, ChannelHandler* channels = nullptr,
                                             ServerMetrics* metrics = nullptr);

}  // namespace edge::console
