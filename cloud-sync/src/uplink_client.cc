#include "uplink_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>

#include "client_common.h"
#include "edge/cloudsync/gzip.h"
#include "edge/cloudsync/tls_context.h"
#include "http_connection.h"

namespace edge::cloudsync::internal {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

constexpr std::string_view kWho = "uplink";
// Bodies from this size on are sent compressed when that makes them smaller: against the
// wire dictionary a one-alert batch (about 500 bytes of JSON) shrinks by almost two thirds.
constexpr size_t kCompressThresholdBytes = 256;
constexpr size_t kMaxReplyBodyBytes = 8 << 20;

}  // namespace

UplinkClient::UplinkClient(const UplinkOptions& options, Clock& clock, CounterHandle& bytes)
    : options_(options),
      url_(ParseUrlOrLog(options.console_url, kWho)),
      tls_(std::string(kWho), {options.ca_file, options.cert_file, options.key_file}),
      token_(options.token_file, kWho, clock),
      bytes_(bytes) {}

std::unique_ptr<ConsoleTransport> UplinkClient::NewConnection(asio::any_io_executor ex) {
  return std::make_unique<HttpConnection>(std::move(ex), url_ && url_->tls ? &tls_ : nullptr,
                                          kMaxReplyBodyBytes);
}

std::string_view UplinkClient::MaybeCompress(std::string& body) const {
  if (!options_.gzip || body.size() < kCompressThresholdBytes) return {};
  const bool dict = !dict_refused_.load(std::memory_order_relaxed);
  auto compressed = dict ? DictCompress(body) : GzipCompress(body);
  if (!compressed.ok()) {
    spdlog::warn("uplink: {}; sending uncompressed", compressed.error());
    return {};
  }
  if (compressed->size() >= body.size()) return {};
  body = std::move(compressed.value());
  return dict ? kDictEncoding : std::string_view("gzip");
}

asio::awaitable<HttpReply> UplinkClient::Post(ConsoleTransport& conn, const std::string& target,
                                              std::string& body, std::string_view encoding,
                                              SteadyTime deadline, std::string_view request_kind) {
  token_.Refresh(false);
  HttpRequest request;
  request.target = target;
  request.authorization = token_.Authorization();
  HttpReply reply;
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (int round = 0; round < 2; ++round) {
      request.body = body;
      request.encoding = encoding;
      reply = co_await conn.Post(*url_, request, deadline);
      if (reply.wrote_request) bytes_.Inc(static_cast<double>(body.size()));
      if (!reply.stale_connection || Remaining(deadline) == milliseconds(0)) break;
    }
    if (!reply.transport_ok || reply.status != 415 || encoding != kDictEncoding) break;
    auto plain = DictDecompress(body, size_t{1} << 30);
    if (!plain.ok()) break;  // cannot happen for a body this side compressed
    dict_refused_.store(true, std::memory_order_relaxed);
    spdlog::warn("uplink: the console does not accept Content-Encoding {} (415); using gzip",
                 kDictEncoding);
    body = std::move(plain.value());
    encoding = MaybeCompress(body);
  }
  if (reply.transport_ok && reply.status == 401) {
    MarkAuthorized(false);
    spdlog::error("uplink: console rejected the node token (401){}; re-reading {}", request_kind,
                  options_.token_file);
    token_.Refresh(true);
  }
  co_return reply;
}

SteadyTime UplinkClient::RequestDeadline() const {
  const SteadyTime deadline =
      std::chrono::steady_clock::now() + milliseconds(std::max<int64_t>(1, options_.timeout_ms));
  return stop_deadline_ ? std::min(deadline, *stop_deadline_) : deadline;
}

void UplinkClient::MarkAuthorized(bool value) {
  if (authorized_.exchange(value) != value && value) {
    spdlog::info("uplink: console accepted the node token again");
  }
}

}  // namespace edge::cloudsync::internal
