#pragma once

// The agent's end of the policy channel (docs/protocol.md, "Policy channel"): it dials
// GET /v1/policy/channel as a WebSocket (ws:// for an http:// console, wss:// with the
// uplink's TLS checks for https://), sends `hello`, and hands every `policy` message to a
// judge, whose report it sends back. The console pings every 15 s; when nothing at all
// arrived for idle_timeout_ms the channel is closed and dialled again. Reconnects back off
// with full jitter (Backoff); a 401 on the upgrade is logged as an error, the token file
// is read again and the next attempt waits backoff_max_ms.
//
// A console that answers the upgrade with another HTTP status (a proxy's 404 or 426) is
// polled instead: POST /v1/policy/poll with the hello every poll_interval_ms, a `policy`
// in a 200 answer is judged and its report sent as POST /v1/policy/report, and after
// every tenth poll the WebSocket is tried again.
//
// Anything the network sends is untrusted: messages larger than max_message_bytes end the
// connection (then a reconnect), binary frames and undecodable messages are logged,
// counted and ignored. Nothing here throws out of the loop.
//
// Threading: all work happens on the given io_context, run by a single thread (the
// agent's network thread); the judge and the applied provider are called on it. Start()
// and Stop() may be called from any thread.
//
// Lifetime: the io_context, Metrics, Clock and whatever the callbacks borrow must outlive
// the loop: destroy them only after Stop()'s completion callback ran, or after the
// io_context was stopped and destroyed.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "edge/cloudsync/policy_message.h"
#include "edge/common/clock.h"
#include "edge/common/metrics.h"
#include "edge/common/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace edge::cloudsync {

struct PolicyChannelOptions {
  // http://host:port[/base] or https://host:port[/base], as for the uplink.
  std::string console_url;
  std::string node_id;
  // Bearer token file, whitespace-trimmed; read before each connection attempt when older
  // than a minute, and again right after a 401.
  std::string token_file;
  // https: PEM CA bundle the console's certificate must chain to; empty: system CAs. The
  // host name (or IP literal) is always verified.
  std::string ca_file;
  std::string cert_file;  // client certificate and key for mutual TLS, as in UplinkOptions
  std::string key_file;
  std::map<std::string, std::string> labels;  // sent in hello
  std::string agent_version;
  int64_t timeout_ms = 10'000;       // resolve + connect + TLS + upgrade; each write; each poll
  int64_t idle_timeout_ms = 45'000;  // nothing received for this long: reconnect
  int64_t backoff_initial_ms = 500;
  int64_t backoff_max_ms = 30'000;
  int64_t poll_interval_ms = 30'000;  // fallback polling
  int polls_per_websocket_try = 10;   // while polling, the WebSocket is tried after this many
  size_t max_message_bytes = 2 << 20;
  // Seed of the jitter generator; 0 seeds from std::random_device. Tests set it.
  uint64_t jitter_seed = 0;
};

// Judges one signed policy version and says what the agent did with it. Must not block
// for long (it runs on the network thread) and should not throw; a throw is logged and no
// report is sent.
using PolicyJudge = std::function<PolicyReport(const PolicyDocument&)>;
// The console policy the agent runs now, for hello.applied; nullopt: none.
using AppliedPolicy = std::function<std::optional<std::pair<std::string, int64_t>>()>;

class PolicyChannel {
 public:
  virtual ~PolicyChannel() = default;
  // Starts dialling on the io_context. Idempotent; ignored after Stop().
  virtual void Start() = 0;
  // Thread-safe. Closes the channel (or the poll in flight) at once and ends the loop;
  // completion_cb (may be empty) runs on the io_context thread once it has ended. A later
  // Stop() just runs its callback. Never runs if the io_context is not being run.
  virtual void Stop(std::function<void()> completion_cb) = 0;
  // True while a WebSocket to the console is open (thread-safe).
  virtual bool Connected() const = 0;
};

// Metrics registered on creation:
//   edge_agent_policy_channel_connected    gauge, 1 while the WebSocket is open
//   edge_agent_policy_channel_malformed_total  console messages that were not a valid
//                                          text message (ignored)
// Options are expected to have passed ValidatePolicyChannelOptions(); an unparsable URL
// makes every attempt fail rather than crash.
std::unique_ptr<PolicyChannel> CreatePolicyChannel(boost::asio::io_context& io,
                                                   PolicyChannelOptions options, PolicyJudge judge,
                                                   AppliedPolicy applied, Metrics& metrics,
                                                   Clock& clock);

// Startup checks: URL, CA file (https), node id, token file readable, sane durations.
Status ValidatePolicyChannelOptions(const PolicyChannelOptions& options);

}  // namespace edge::cloudsync
