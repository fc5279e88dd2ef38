#include "status_heartbeat.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>

#include "client_common.h"
#include "edge/cloudsync/batch_codec.h"

namespace edge::cloudsync::internal {
namespace {

constexpr std::string_view kWho = "uplink";
constexpr const char* kStatusPath = "/v1/status";

}  // namespace

StatusHeartbeat::StatusHeartbeat(boost::asio::io_context& io, const UplinkOptions& options,
                                 UplinkClient& client, const UplinkMetrics& metrics, Clock& clock)
    : options_(options),
      client_(client),
      metrics_(metrics),
      clock_(clock),
      conn_(client.NewConnection(io.get_executor())),
      target_(client.url() != nullptr ? client.url()->Target(kStatusPath) : std::string()),
      timer_(io),
      rng_(options.jitter_seed != 0 ? options.jitter_seed + 1 : std::random_device{}()) {}

void StatusHeartbeat::Stop() {
  stopping_ = true;
  timer_.cancel();
}

boost::asio::awaitable<void> StatusHeartbeat::Run() {
  int64_t delay_ms = 0;
  while (!stopping_) {
    if (delay_ms > 0) {
      timer_.expires_after(std::chrono::milliseconds(delay_ms));
      co_await timer_.async_wait(kUseTuple);
      if (stopping_) break;
    }
    try {
      co_await SendStatus();
    } catch (...) {
      metrics_.status_failed->Inc();
      LogException(kWho, "status heartbeat failed", std::current_exception());
    }
    delay_ms = NextDelayMs();
  }
}

int64_t StatusHeartbeat::NextDelayMs() {
  const int64_t interval = std::max<int64_t>(1, options_.status_interval_ms);
  std::uniform_int_distribution<int64_t> spread(-interval / 10, interval / 10);
  return std::max<int64_t>(1, interval + spread(rng_));
}

boost::asio::awaitable<void> StatusHeartbeat::SendStatus() {
  if (client_.url() == nullptr) {
    metrics_.status_failed->Inc();
    co_return;
  }
  std::string status_json;
  try {
    status_json = options_.status_provider();
  } catch (...) {
    metrics_.status_failed->Inc();
    LogException(kWho, "status provider threw", std::current_exception());
    co_return;
  }
  auto body = EncodeStatusBody(options_.node_id, clock_.WallMs(), status_json);
  if (!body.ok()) {
    metrics_.status_failed->Inc();
    spdlog::error("uplink: status heartbeat skipped: {}", body.error());
    co_return;
  }
  std::string payload = std::move(body.value());
  const std::string_view encoding = client_.MaybeCompress(payload);
  const HttpReply reply = co_await client_.Post(*conn_, target_, payload, encoding,
                                                client_.RequestDeadline(), " for a status report");
  if (!reply.transport_ok) {
    metrics_.status_failed->Inc();
    spdlog::warn("uplink: POST {} failed: {}", target_, reply.error);
    co_return;
  }
  if (reply.status >= 200 && reply.status < 300) {
    metrics_.status_ok->Inc();
    client_.MarkAuthorized(true);
    co_return;
  }
  if (reply.status == 401) {
    metrics_.status_unauthorized->Inc();  // Post marked, logged and re-read the token
    co_return;
  }
  metrics_.status_failed->Inc();
  spdlog::warn("uplink: console answered {} to a status report: {}", reply.status,
               Snippet(reply.body));
}

}  // namespace edge::cloudsync::internal
