#pragma once

// The uplink: drains the agent's outbox to the console with POST /v1/batches
// (docs/protocol.md). Rows are deleted from the outbox only after the console listed their
// ids in a 200 reply; everything else is retried with exponential backoff and full jitter,
// except rows the console rejects as malformed: a rejected batch is split in halves until
// the rows rejected on their own are found, and only those are dead-lettered (moved out of
// the outbox, never retried), so one poison row cannot stall the queue.
//
// With a status provider, it also POSTs a status heartbeat to /v1/status every
// status_interval_ms, on a connection of its own, so a backlog never delays it.
//
// Threading: all work happens on the given io_context, which must be run by a single thread
// (the agent's network thread). Notify(), Stop() and Authorized() may be called from any
// thread. The OutboxSource is only called on the io_context thread.
//
// Lifetime: the io_context, the OutboxSource, Metrics and Clock must outlive the Uplink's
// loop: destroy them only after Stop()'s completion callback ran or after the io_context was
// stopped and destroyed.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edge/common/clock.h"
#include "edge/common/metrics.h"
#include "edge/common/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace edge::cloudsync {

// One outbox row as the uplink sees it.
struct OutboxItem {
  int64_t seq = 0;           // local row key, passed back to Ack()
  std::string id;            // protocol id "node:store_epoch:sequence"
  std::string kind;          // "alert", later "rollup", "status"
  int64_t created_ms = 0;    // wall clock, ms since the epoch
  std::string payload_json;  // a JSON document; embedded raw in the batch body
};

// Implemented by the agent's SQLite store on its own read connection. Called only on the
// io_context thread.
class OutboxSource {
 public:
  virtual ~OutboxSource() = default;
  // Up to max_items rows, total payload bytes <= max_bytes (at least one row if any),
  // highest priority first then oldest first.
  virtual Result<std::vector<OutboxItem>> Fetch(size_t max_items, size_t max_bytes) = 0;
  // Deletes the rows with these sequence numbers (the console acknowledged them).
  virtual Status Ack(const std::vector<int64_t>& seqs) = 0;
  // Moves the rows with these sequence numbers out of the outbox into a dead-letter table
  // (the console rejected them as malformed; they are never sent again). `reason` is a
  // short human-readable text kept with the rows. Returns the number of rows moved; on
  // failure the rows stay in the outbox.
  virtual Result<int64_t> DeadLetter(const std::vector<int64_t>& seqs, std::string_view reason) = 0;
};

struct UplinkOptions {
  // http://host:port[/base] or https://host:port[/base].
  std::string console_url;
  std::string node_id;
  // Bearer token, whitespace-trimmed; re-read on each 401 and every 60 s.
  std::string token_file;
  // https: PEM file of CA certificates that the console's certificate must chain to; empty
  // means the system trust store. The host name (or IP literal) is always verified.
  std::string ca_file;
  // Client certificate (PEM chain) and key for a console that asks for one (mutual TLS);
  // read again at the next connection after one of them changed. Both or neither.
  std::string cert_file;
  std::string key_file;
  size_t batch_max_items = 500;
  size_t batch_max_bytes = 1 << 20;
  int64_t timeout_ms = 10'000;  // per request: resolve + connect + TLS handshake + write + read
  int64_t backoff_initial_ms = 500;
  int64_t backoff_max_ms = 30'000;
  int64_t idle_poll_ms = 1'000;  // when the outbox is empty and no Notify() came
  // After the outbox was found empty, or a batch that was not full was sent, how long to
  // wait before the next fetch, so that rows committed together share a batch and its gzip
  // body and a storm of small commits makes one request per linger. Adds at most this much
  // to an alert's latency; a backlog (full batches) is sent without it. 0: send at once.
  int64_t linger_ms = 0;
  bool gzip = true;  // Content-Encoding: gzip for bodies >= 256 bytes when it shrinks them
  // Seed of the jitter generator; 0 seeds from std::random_device. Tests set it.
  uint64_t jitter_seed = 0;
  // Status heartbeat: when set, called on the io_context thread right after Start() and
  // then every status_interval_ms (+-10% jitter) for a JSON object describing the node; it
  // is sent as POST /v1/status. A provider that throws or returns something other than a
  // JSON object skips that heartbeat (counted as failed). Empty: no heartbeat.
  std::function<std::string()> status_provider;
  int64_t status_interval_ms = 30'000;
};

class Uplink {
 public:
  virtual ~Uplink() = default;
  // Begins the send loop on the io_context. Idempotent; ignored after Stop().
  virtual void Start() = 0;
  // Thread-safe: new rows were committed; wake up now if idle (not if backing off).
  virtual void Notify() = 0;
  // Thread-safe. Makes one last attempt to send what is pending if the console is
  // reachable, bounded by deadline_ms (a budget in milliseconds from the call, not an
  // absolute time), then stops the loop and closes the connection. completion_cb (may be
  // empty) is invoked on the io_context thread once stopped; a later Stop() just invokes its
  // callback. The callback never runs if the io_context is not being run.
  virtual void Stop(int64_t deadline_ms, std::function<void()> completion_cb) = 0;
  // False after a 401 (batch or status) until a later successful upload or status report
  // (thread-safe).
  virtual bool Authorized() const = 0;
};

// Metrics registered on creation:
//   edge_agent_uploads_total{result="ok|retry|rejected|unauthorized"}  per batch POST
//   edge_agent_uplink_bytes_total       request body bytes written (after compression),
//                                       batches and status heartbeats
//   edge_agent_uplink_items_total       outbox items acknowledged and deleted
//   edge_agent_uplink_backoff_seconds   current backoff delay, 0 when healthy
//   edge_agent_outbox_dead_lettered_total{kind="alert|rollup|status|other",
//                                         reason="malformed|too_large"}
//   edge_agent_status_reports_total{result="ok|failed|unauthorized"}  per heartbeat
// Options are expected to have passed ValidateUplinkOptions(); an unparsable URL makes
// every upload fail (counted as retry) rather than crash.
std::unique_ptr<Uplink> CreateUplink(boost::asio::io_context& io, UplinkOptions options,
                                     OutboxSource& source, Metrics& metrics, Clock& clock);

// Validates options for startup errors: URL parse, CA file loadable (https), node id
// present, token file readable and non-empty, sane batch, timeout, backoff and status
// interval values.
Status ValidateUplinkOptions(const UplinkOptions& options);

}  // namespace edge::cloudsync
