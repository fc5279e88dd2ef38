#pragma once

// The uplink's status heartbeat (edge/cloudsync/uplink.h): one POST /v1/status right
// away, then one every status_interval_ms scaled by a uniform factor in [0.9, 1.1], so a
// fleet restarted at once does not report in lockstep. A failed report is not retried
// early: the next one carries fresher figures. It has a connection of its own, so a
// backlog of batches never delays it. Private to cloud-sync/src.
//
// Threading: everything runs on the uplink's io_context thread.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <random>

#include "console_transport.h"
#include "edge/cloudsync/uplink.h"
#include "edge/common/clock.h"
#include "uplink_client.h"
#include "uplink_metrics.h"

namespace edge::cloudsync::internal {

class StatusHeartbeat {
 public:
  // All references must outlive the heartbeat; options.status_provider must be set.
  StatusHeartbeat(boost::asio::io_context& io, const UplinkOptions& options, UplinkClient& client,
                  const UplinkMetrics& metrics, Clock& clock);

  // The loop; returns after Stop(). Never throws out of a report.
  boost::asio::awaitable<void> Run();

  // Ends Run() at its next wait; the report in flight is not aborted (CloseConnection()).
  void Stop();
  // Aborts the report in flight, if any.
  void CloseConnection() { conn_->Close(); }

 private:
  int64_t NextDelayMs();
  boost::asio::awaitable<void> SendStatus();

  const UplinkOptions& options_;
  UplinkClient& client_;
  const UplinkMetrics& metrics_;
  Clock& clock_;
  std::unique_ptr<ConsoleTransport> conn_;
  std::string target_;
  boost::asio::steady_timer timer_;
  std::mt19937_64 rng_;
  bool stopping_ = false;
};

}  // namespace edge::cloudsync::internal
