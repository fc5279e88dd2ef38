// The uplink loop and its HTTP/1.1 client (Beast over plain TCP). This is the only
// translation unit of edge::cloudsync that includes Beast or Asio.

#include "edge/cloudsync/uplink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <chrono>
#include <exception>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <utility>

#include "client_common.h"
#include "edge/cloudsync/backoff.h"
#include "edge/cloudsync/batch_codec.h"
#include "edge/cloudsync/console_url.h"
#include "edge/cloudsync/gzip.h"

namespace edge::cloudsync {
namespace {

using internal::LogException;
using internal::ParseUrlOrLog;
using internal::ReadTokenFile;
using internal::Remaining;
using internal::Snippet;

constexpr std::string_view kWho = "uplink";

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;
using std::chrono::milliseconds;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Bodies from this size on are sent compressed when that makes them smaller: against the
// wire dictionary a one-alert batch (about 500 bytes of JSON) shrinks by almost two thirds.
constexpr size_t kCompressThresholdBytes = 256;
constexpr size_t kMaxReplyBodyBytes = 8 << 20;
constexpr int64_t kTokenRefreshMs = 60'000;
constexpr const char* kBatchesPath = "/v1/batches";
constexpr const char* kStatusPath = "/v1/status";
constexpr const char* kDeadLetterKinds[] = {"alert", "rollup", "status", "other"};
constexpr const char* kDeadLetterReasons[] = {"malformed", "too_large"};

struct HttpReply {
  bool transport_ok = false;
  std::string error;              // when !transport_ok
  bool stale_connection = false;  // a reused keep-alive connection was found closed
  bool wrote_request = false;
  unsigned status = 0;
  std::string body;
  std::string retry_after;
};

// One keep-alive HTTP/1.1 connection over TCP or TLS, reopened on demand. Used by one
// coroutine at a time. With a TLS context every connection verifies the console's
// certificate chain and host name.
class HttpConnection {
 public:
  HttpConnection(asio::any_io_executor ex, asio::ssl::context* tls)
      : ex_(ex), tls_context_(tls), resolver_(ex) {}

  bool IsOpen() const {
    if (tls_) return beast::get_lowest_layer(*tls_).socket().is_open();
    return tcp_.has_value() && tcp_->socket().is_open();
  }

  // Aborts whatever is in flight (its completion reports an error) and drops the socket.
  // TLS sessions are not shut down politely: the console must cope with that anyway.
  void Close() {
    if (resolve_wake_) resolve_wake_->cancel();
    beast::tcp_stream* lowest = tls_ ? &beast::get_lowest_layer(*tls_) : tcp_ ? &*tcp_ : nullptr;
    if (lowest != nullptr) {
      beast::error_code ignored;
      lowest->socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest->close();
    }
  }

  // Every step is bounded by `deadline`. Never throws for network conditions.
  asio::awaitable<HttpReply> Post(const ConsoleUrl& url, const std::string& target,
                                  const std::string& authorization, std::string body,
                                  std::string_view encoding, SteadyTime deadline) {
    HttpReply reply;
    const bool reused = IsOpen();
    if (!reused) {
      Drop();
      reply.error = co_await Connect(url, deadline);
      if (!reply.error.empty()) {
        Drop();
        co_return reply;
      }
    }

    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, url.HostHeader());
    req.set(http::field::user_agent, "edge-agent");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "application/json");
    if (!authorization.empty()) req.set(http::field::authorization, authorization);
    if (!encoding.empty()) req.set(http::field::content_encoding, encoding);
    req.keep_alive(true);
    req.body() = std::move(body);
    req.prepare_payload();

    if (tls_) {
      co_await Exchange(*tls_, req, reused, deadline, reply);
    } else {
      co_await Exchange(*tcp_, req, reused, deadline, reply);
    }
    co_return reply;
  }

 private:
  // Writes the request and reads the reply on an open stream; drops the connection on any
  // error or when the console does not keep it alive.
  template <typename Stream>
  asio::awaitable<void> Exchange(Stream& stream, http::request<http::string_body>& req, bool reused,
                                 SteadyTime deadline, HttpReply& reply) {
    beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(Remaining(deadline));
    auto [wec, written] = co_await http::async_write(stream, req, kUseTuple);
    if (wec) {
      reply.error = "write: " + wec.message();
      reply.stale_connection = reused && IsStaleError(wec);
      Drop();
      co_return;
    }
    reply.wrote_request = true;

    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBodyBytes);
    lowest.expires_after(Remaining(deadline));
    auto [rec, read] = co_await http::async_read(stream, buffer_, parser, kUseTuple);
    if (rec) {
      reply.error = "read: " + rec.message();
      reply.stale_connection = reused && read == 0 && IsStaleError(rec);
      Drop();
      co_return;
    }
    lowest.expires_never();
    http::response<http::string_body> res = parser.release();
    reply.transport_ok = true;
    reply.status = res.result_int();
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
      reply.retry_after = std::string(it->value());
    }
    reply.body = std::move(res.body());
    if (!res.keep_alive()) Drop();
  }

  // Resolve, TCP connect and, for https, the TLS handshake. Returns an error text or "".
  asio::awaitable<std::string> Connect(const ConsoleUrl& url, SteadyTime deadline) {
    std::optional<tcp::resolver::results_type> endpoints;
    std::string error = co_await Resolve(url, deadline, endpoints);
    if (!endpoints) co_return error;
    tcp_.emplace(ex_);
    tcp_->expires_after(Remaining(deadline));
    auto [ec, endpoint] = co_await tcp_->async_connect(*endpoints, kUseTuple);
    if (ec) co_return "connect to " + url.HostHeader() + ": " + ec.message();
    if (!url.tls) co_return std::string();
    if (tls_context_ == nullptr) co_return "https requested but no TLS context";

    tls_.emplace(std::move(*tcp_), *tls_context_);
    tcp_.reset();
    beast::error_code parse_ec;
    asio::ip::make_address(url.host, parse_ec);
    // SNI takes host names only, never address literals.
    if (parse_ec && !SSL_set_tlsext_host_name(tls_->native_handle(), url.host.c_str())) {
      co_return "TLS: cannot set server name";
    }
    tls_->set_verify_mode(asio::ssl::verify_peer);
    tls_->set_verify_callback(asio::ssl::host_name_verification(url.host));
    beast::get_lowest_layer(*tls_).expires_after(Remaining(deadline));
    auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kUseTuple);
    if (hec) co_return "TLS handshake with " + url.HostHeader() + ": " + hec.message();
    co_return std::string();
  }

  // The peer closing an idle keep-alive connection shows up as one of these.
  static bool IsStaleError(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::ssl::error::stream_truncated;
  }

  void Drop() {
    Close();
    tls_.reset();
    tcp_.reset();
    buffer_.clear();
  }

  // The system resolver cannot be interrupted, so the coroutine waits on a timer that the
  // resolve completion cancels: a hung lookup then costs a late callback, not a stuck loop.
  asio::awaitable<std::string> Resolve(const ConsoleUrl& url, SteadyTime deadline,
                                       std::optional<tcp::resolver::results_type>& out) {
    struct Lookup {
      explicit Lookup(asio::any_io_executor ex) : wake(ex) {}
      asio::steady_timer wake;
      bool done = false;
      beast::error_code ec;
      tcp::resolver::results_type results;
    };
    auto lookup = std::make_shared<Lookup>(ex_);
    lookup->wake.expires_at(deadline);
    resolve_wake_ = std::shared_ptr<asio::steady_timer>(lookup, &lookup->wake);
    resolver_.async_resolve(url.host, std::to_string(url.port),
                            [lookup](const beast::error_code& ec, tcp::resolver::results_type r) {
                              lookup->done = true;
                              lookup->ec = ec;
                              lookup->results = std::move(r);
                              lookup->wake.cancel();
                            });
    co_await lookup->wake.async_wait(kUseTuple);
    resolve_wake_.reset();
    if (!lookup->done) co_return "resolve " + url.host + ": timed out or aborted";
    if (lookup->ec) co_return "resolve " + url.host + ": " + lookup->ec.message();
    out = std::move(lookup->results);
    co_return std::string();
  }

  asio::any_io_executor ex_;
  asio::ssl::context* tls_context_;  // not owned; null for http
  tcp::resolver resolver_;
  std::optional<beast::tcp_stream> tcp_;                     // http
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;  // https
  beast::flat_buffer buffer_;  // holds bytes read past a reply on a kept-alive connection
  std::shared_ptr<asio::steady_timer> resolve_wake_;
};

// kRejected: a 4xx about the request as a whole (403, 404, 415, a proxy's 400, ...), which
// no row can fix; retried with backoff. kMalformed (400/422 in the protocol's error shape)
// and kTooLarge (413) are about the rows in the batch.
enum class Outcome { kOk, kRetry, kRejected, kMalformed, kTooLarge, kUnauthorized, kLocalError };

struct SendResult {
  Outcome outcome = Outcome::kRetry;
  std::optional<int64_t> retry_after_ms;
  size_t acked = 0;
  size_t dead_lettered = 0;
  std::string rejection;  // "console answered 400: ..." for kMalformed and kTooLarge
};

// The dead-letter label for an outbox kind; other kinds share one label value so the
// series stay bounded.
std::string DeadLetterKindLabel(std::string_view kind) {
  for (const char* known : kDeadLetterKinds) {
    if (kind == known) return known;
  }
  return "other";
}

// Owns the loop state; everything below runs on the io_context thread except the public
// entry points, which post to it. Kept alive by its coroutine and pending handlers.
class UplinkLoop : public std::enable_shared_from_this<UplinkLoop> {
 public:
  UplinkLoop(asio::io_context& io, UplinkOptions options, OutboxSource& source, Metrics& metrics,
             Clock& clock)
      : io_(io),
        options_(std::move(options)),
        source_(source),
        clock_(clock),
        url_(ParseUrlOrLog(options_.console_url, kWho)),
        tls_context_(url_ && url_->tls ? TlsContextOrRefuseAll(options_.ca_file, kWho) : nullptr),
        backoff_(options_.backoff_initial_ms, options_.backoff_max_ms,
                 options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()),
        conn_(io.get_executor(), tls_context_.get()),
        status_conn_(io.get_executor(), tls_context_.get()),
        wait_timer_(io),
        stop_timer_(io),
        status_timer_(io),
        status_done_(io),
        status_rng_(options_.jitter_seed != 0 ? options_.jitter_seed + 1 : std::random_device{}()),
        max_items_(std::max<size_t>(1, options_.batch_max_items)),
        max_bytes_(std::max<size_t>(1, options_.batch_max_bytes)) {
    const std::string uploads_help = "Batch uploads to the console by result";
    uploads_ok_ = &metrics.Counter("edge_agent_uploads_total", uploads_help, {{"result", "ok"}});
    uploads_retry_ =
        &metrics.Counter("edge_agent_uploads_total", uploads_help, {{"result", "retry"}});
    uploads_rejected_ =
        &metrics.Counter("edge_agent_uploads_total", uploads_help, {{"result", "rejected"}});
    uploads_unauthorized_ =
        &metrics.Counter("edge_agent_uploads_total", uploads_help, {{"result", "unauthorized"}});
    bytes_ = &metrics.Counter("edge_agent_uplink_bytes_total",
                              "Request body bytes sent to the console (after compression)");
    items_ = &metrics.Counter("edge_agent_uplink_items_total",
                              "Outbox items acknowledged by the console");
    backoff_gauge_ = &metrics.Gauge("edge_agent_uplink_backoff_seconds",
                                    "Current uplink retry delay in seconds, 0 when healthy");
    backoff_gauge_->Set(0);
    const std::string dead_help =
        "Outbox rows the console rejected as malformed, moved to the "
        "dead-letter table, by kind and reason";
    for (const char* kind : kDeadLetterKinds) {
      for (const char* reason : kDeadLetterReasons) {
        dead_lettered_[std::string(kind) + "|" + reason] =
            &metrics.Counter("edge_agent_outbox_dead_lettered_total", dead_help,
                             {{"kind", kind}, {"reason", reason}});
      }
    }
    const std::string status_help = "Status heartbeats sent to the console by result";
    status_ok_ =
        &metrics.Counter("edge_agent_status_reports_total", status_help, {{"result", "ok"}});
    status_failed_ =
        &metrics.Counter("edge_agent_status_reports_total", status_help, {{"result", "failed"}});
    status_unauthorized_ = &metrics.Counter("edge_agent_status_reports_total", status_help,
                                            {{"result", "unauthorized"}});
    if (url_) {
      target_ = url_->Target(kBatchesPath);
      status_target_ = url_->Target(kStatusPath);
    }
  }

  bool Authorized() const { return authorized_.load(); }

  void Start() {
    asio::post(io_, [self = shared_from_this()] {
      if (self->started_ || self->stopping_) return;
      self->started_ = true;
      asio::co_spawn(self->io_, self->Run(), [self](std::exception_ptr e) {
        if (e) LogException(kWho, "loop ended", e);
      });
      if (self->options_.status_provider && self->options_.status_interval_ms > 0) {
        self->status_running_ = true;
        asio::co_spawn(self->io_, self->RunStatus(), [self](std::exception_ptr e) {
          if (e) LogException(kWho, "status heartbeat ended", e);
          self->status_running_ = false;
          self->status_done_.cancel();
        });
      }
    });
  }

  void Notify() {
    // Coalesces bursts of commits into one posted wake-up.
    if (notify_posted_.exchange(true)) return;
    asio::post(io_, [self = shared_from_this()] {
      self->notify_posted_ = false;
      self->notified_ = true;
      if (self->waiting_ == Waiting::kIdle) self->wait_timer_.cancel();
    });
  }

  void Stop(int64_t deadline_ms, std::function<void()> cb) {
    asio::post(io_, [self = shared_from_this(), deadline_ms, cb = std::move(cb)]() mutable {
      self->OnStop(deadline_ms, std::move(cb));
    });
  }

 private:
  enum class Waiting { kNone, kIdle, kLinger, kBackoff };

  void OnStop(int64_t deadline_ms, std::function<void()> cb) {
    if (cb) stop_callbacks_.push_back(std::move(cb));
    if (stopped_) {
      RunStopCallbacks();
      return;
    }
    const SteadyTime deadline =
        std::chrono::steady_clock::now() + milliseconds(std::max<int64_t>(0, deadline_ms));
    if (!started_) {
      stopping_ = true;
      Finish();
      return;
    }
    if (stopping_ && deadline >= stop_deadline_) return;
    stopping_ = true;
    stop_deadline_ = deadline;
    wait_timer_.cancel();
    status_timer_.cancel();
    stop_timer_.expires_at(deadline);
    stop_timer_.async_wait([self = shared_from_this()](const beast::error_code& ec) {
      if (ec || self->stopped_) return;
      // Out of time: abort the requests in flight so the loops can finish.
      self->conn_.Close();
      self->status_conn_.Close();
      self->wait_timer_.cancel();
    });
  }

  asio::awaitable<void> Run() {
    while (!stopping_) {
      std::exception_ptr failure;
      try {
        co_await Step();
      } catch (...) {
        failure = std::current_exception();
      }
      if (failure) {
        LogException(kWho, "step failed", failure);
        co_await Wait(Waiting::kBackoff, backoff_.NextDelayMs());
      }
    }
    try {
      co_await FinalAttempt();
    } catch (...) {
      LogException(kWho, "final attempt failed", std::current_exception());
    }
    // The heartbeat must be over before the stop callbacks let the owner tear down what
    // the status provider reads.
    status_timer_.cancel();
    status_conn_.Close();
    while (status_running_) {
      status_done_.expires_after(std::chrono::hours(1));
      co_await status_done_.async_wait(kUseTuple);
    }
    Finish();
  }

  // One round: fetch a batch, send it, then wait as the outcome requires.
  asio::awaitable<void> Step() {
    if (was_idle_ && options_.linger_ms > 0) {
      // Woken from idle by a commit: give the rows committed just after it a moment to
      // join the same batch (and gzip body). A backlog is sent back to back, no linger.
      co_await Wait(Waiting::kLinger, options_.linger_ms);
    }
    was_idle_ = false;
    notified_ = false;
    auto batch = source_.Fetch(max_items_, max_bytes_);
    if (!batch.ok()) {
      spdlog::error("uplink: reading the outbox failed: {}", batch.error());
      co_await Wait(Waiting::kBackoff, backoff_.NextDelayMs());
      co_return;
    }
    if (batch->empty()) {
      // The backlog is drained: batches shrunk after a 413 may grow back.
      max_items_ = std::max<size_t>(1, options_.batch_max_items);
      max_bytes_ = std::max<size_t>(1, options_.batch_max_bytes);
      if (!notified_) co_await Wait(Waiting::kIdle, options_.idle_poll_ms);
      was_idle_ = true;
      co_return;
    }
    const SendResult result = co_await Deliver(std::move(*batch));
    switch (result.outcome) {
      case Outcome::kOk:
        if (result.acked > 0 || result.dead_lettered > 0) {
          backoff_.Reset();
          backoff_gauge_->Set(0);
          co_return;  // more rows may be waiting: send back-to-back
        }
        // Nothing of the batch was acknowledged: resending at once would spin.
        spdlog::warn("uplink: console acknowledged none of {} items", batch->size());
        co_await Wait(Waiting::kBackoff, backoff_.NextDelayMs());
        co_return;
      case Outcome::kRetry:
        co_await Wait(Waiting::kBackoff, result.retry_after_ms
                                             ? backoff_.NextDelayMs(*result.retry_after_ms)
                                             : backoff_.NextDelayMs());
        co_return;
      case Outcome::kUnauthorized:
        co_await Wait(Waiting::kBackoff, backoff_.max_ms());
        co_return;
      case Outcome::kRejected:
      case Outcome::kMalformed:
      case Outcome::kTooLarge:
      case Outcome::kLocalError:
        co_await Wait(Waiting::kBackoff, backoff_.NextDelayMs());
        co_return;
    }
  }

  // Compresses `body` in place when compression is on, the body is at least
  // kCompressThresholdBytes and compressing makes it smaller. Returns the Content-Encoding:
  // `edge-zdict` (the wire dictionary) unless the console refused it, then gzip; "" for a
  // body sent as it is.
  std::string_view MaybeCompress(std::string& body) const {
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

  // POSTs `body` on `conn`; a kept-alive connection the console closed while idle is
  // retried once, fresh. A console that answers 415 to `edge-zdict` (one that predates
  // it) gets the body again as gzip, and gzip from then on.
  asio::awaitable<HttpReply> PostBody(HttpConnection& conn, const std::string& target,
                                      const std::string& authorization, std::string& body,
                                      std::string_view encoding, SteadyTime deadline) {
    HttpReply reply;
    for (int attempt = 0; attempt < 2; ++attempt) {
      for (int round = 0; round < 2; ++round) {
        reply = co_await conn.Post(*url_, target, authorization, body, encoding, deadline);
        if (reply.wrote_request) bytes_->Inc(static_cast<double>(body.size()));
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
    co_return reply;
  }

  // Per-request deadline; after Stop() never past the stop deadline.
  SteadyTime RequestDeadline() const {
    const SteadyTime deadline =
        std::chrono::steady_clock::now() + milliseconds(std::max<int64_t>(1, options_.timeout_ms));
    return stopping_ ? std::min(deadline, stop_deadline_) : deadline;
  }

  // Sends `items`. When the console rejects them as malformed, the batch is split in halves
  // (sent back to back, first half first) until the single rows it rejects are found; those
  // are dead-lettered and every other row is delivered. A single row rejected with 413
  // (after the batch limits shrank to it) is dead-lettered too. The first half that cannot
  // be delivered for another reason ends the walk with that outcome: its rows stay in the
  // outbox and the next fetch finds them again. kOk carries the rows acked and
  // dead-lettered over the whole walk.
  asio::awaitable<SendResult> Deliver(std::vector<OutboxItem> items) {
    SendResult result = co_await SendBatch(items, RequestDeadline());
    const bool single = items.size() == 1;
    if (single && (result.outcome == Outcome::kMalformed || result.outcome == Outcome::kTooLarge)) {
      co_return DeadLetter(items.front(),
                           result.outcome == Outcome::kTooLarge ? "too_large" : "malformed",
                           result.rejection);
    }
    if (result.outcome != Outcome::kMalformed) co_return result;

    SendResult total;
    total.outcome = Outcome::kOk;
    const auto middle = items.begin() + static_cast<std::ptrdiff_t>(items.size() / 2);
    std::vector<OutboxItem> second(std::make_move_iterator(middle),
                                   std::make_move_iterator(items.end()));
    items.erase(middle, items.end());
    for (std::vector<OutboxItem>* half : {&items, &second}) {
      if (stopping_) {
        total.outcome = Outcome::kRetry;  // not counted: nothing was sent
        co_return total;
      }
      SendResult part = co_await Deliver(std::move(*half));
      total.acked += part.acked;
      total.dead_lettered += part.dead_lettered;
      if (part.outcome != Outcome::kOk) {
        part.acked = total.acked;
        part.dead_lettered = total.dead_lettered;
        co_return part;
      }
    }
    co_return total;
  }

  SendResult DeadLetter(const OutboxItem& item, const char* reason, const std::string& why) {
    SendResult result;
    auto moved = source_.DeadLetter({item.seq}, why);
    if (!moved.ok()) {
      // The row stays and is offered again after a backoff.
      spdlog::error("uplink: dead-lettering outbox row {} failed: {}", item.id, moved.error());
      result.outcome = Outcome::kLocalError;
      return result;
    }
    spdlog::error(
        "uplink: console rejected outbox row {} (kind {}) on its own; moved it to the "
        "dead-letter table: {}",
        item.id, item.kind, why);
    dead_lettered_.at(DeadLetterKindLabel(item.kind) + "|" + reason)
        ->Inc(static_cast<double>(*moved));
    result.outcome = Outcome::kOk;
    result.dead_lettered = static_cast<size_t>(*moved);
    return result;
  }

  // After Stop(): send what is pending while the console answers and time is left; the
  // first failure ends it (no retries past shutdown).
  asio::awaitable<void> FinalAttempt() {
    while (Remaining(stop_deadline_) > milliseconds(0)) {
      auto batch = source_.Fetch(max_items_, max_bytes_);
      if (!batch.ok() || batch->empty()) co_return;
      const SteadyTime deadline =
          std::min(stop_deadline_, std::chrono::steady_clock::now() +
                                       milliseconds(std::max<int64_t>(1, options_.timeout_ms)));
      const SendResult result = co_await SendBatch(*batch, deadline);
      if (result.outcome != Outcome::kOk || result.acked == 0) co_return;
    }
  }

  asio::awaitable<SendResult> SendBatch(const std::vector<OutboxItem>& items, SteadyTime deadline) {
    SendResult result;
    if (!url_) {
      uploads_retry_->Inc();
      co_return result;
    }
    RefreshToken(false);

    EncodedBatch encoded = EncodeBatchBody(options_.node_id, clock_.WallMs(), items);
    if (encoded.invalid_payloads > 0) {
      spdlog::warn("uplink: {} outbox payloads are not valid JSON; sent as strings",
                   encoded.invalid_payloads);
    }
    std::string body = std::move(encoded.body);
    const std::string_view encoding = MaybeCompress(body);

    const std::string authorization = token_.empty() ? std::string() : "Bearer " + token_;
    const HttpReply reply =
        co_await PostBody(conn_, target_, authorization, body, encoding, deadline);

    if (!reply.transport_ok) {
      spdlog::warn("uplink: POST {} failed: {}", target_, reply.error);
      uploads_retry_->Inc();
      co_return result;
    }
    const unsigned status = reply.status;
    if (status == 200) {
      auto acked_ids = ParseAckResponse(reply.body);
      if (!acked_ids.ok()) {
        spdlog::warn("uplink: malformed 200 reply ({}): {}", acked_ids.error(),
                     Snippet(reply.body));
        uploads_retry_->Inc();
        co_return result;
      }
      uploads_ok_->Inc();
      MarkAuthorized(true);
      const std::vector<int64_t> seqs = AckedSeqs(items, *acked_ids);
      if (seqs.empty()) {
        result.outcome = Outcome::kOk;
        co_return result;
      }
      if (Status s = source_.Ack(seqs); !s.ok()) {
        // The rows stay and are sent again; the console deduplicates them by id.
        spdlog::error("uplink: deleting {} acknowledged rows failed: {}", seqs.size(), s.message());
        result.outcome = Outcome::kLocalError;
        co_return result;
      }
      items_->Inc(static_cast<double>(seqs.size()));
      result.outcome = Outcome::kOk;
      result.acked = seqs.size();
      co_return result;
    }
    if (status == 401) {
      uploads_unauthorized_->Inc();
      MarkAuthorized(false);
      spdlog::error("uplink: console rejected the node token (401); re-reading {}",
                    options_.token_file);
      RefreshToken(true);
      result.outcome = Outcome::kUnauthorized;
      co_return result;
    }
    if (status >= 500 || status == 429 || status == 408) {
      if (status == 429 || status == 503)
        result.retry_after_ms = ParseRetryAfterMs(reply.retry_after);
      spdlog::warn("uplink: console answered {}: {}", status, Snippet(reply.body));
      uploads_retry_->Inc();
      co_return result;
    }
    uploads_rejected_->Inc();
    result.rejection = "console answered " + std::to_string(status) + ": " + Snippet(reply.body);
    if (status == 413) {
      // Smaller batches may fit; the limits are restored once the backlog is drained.
      max_items_ = std::max<size_t>(1, std::min(max_items_, items.size()) / 2);
      max_bytes_ = std::max<size_t>(1, max_bytes_ / 2);
      spdlog::warn("uplink: console refused a batch of {} items as too large (413)", items.size());
      result.outcome = Outcome::kTooLarge;
      co_return result;
    }
    if ((status == 400 || status == 422) && IsProtocolErrorReply(reply.body)) {
      spdlog::warn("uplink: console rejected a batch of {} items as malformed: {}", items.size(),
                   Snippet(reply.body));
      result.outcome = Outcome::kMalformed;
      co_return result;
    }
    // 403, 404, 415, redirects, a 400 from something other than the console: no row is at
    // fault, so nothing is dead-lettered; the batch is retried with backoff.
    spdlog::error("uplink: console rejected a batch of {} items with {}: {}", items.size(), status,
                  Snippet(reply.body));
    result.outcome = Outcome::kRejected;
    co_return result;
  }

  // Heartbeat loop: one report right away, then one per jittered interval. A failed report
  // is not retried early: the next one carries fresher figures.
  asio::awaitable<void> RunStatus() {
    int64_t delay_ms = 0;
    while (!stopping_) {
      if (delay_ms > 0) {
        status_timer_.expires_after(milliseconds(delay_ms));
        co_await status_timer_.async_wait(kUseTuple);
        if (stopping_) break;
      }
      try {
        co_await SendStatus();
      } catch (...) {
        status_failed_->Inc();
        LogException(kWho, "status heartbeat failed", std::current_exception());
      }
      delay_ms = StatusDelayMs();
    }
  }

  // status_interval_ms scaled by a uniform factor in [0.9, 1.1], so a fleet restarted at
  // once does not report in lockstep.
  int64_t StatusDelayMs() {
    const int64_t interval = std::max<int64_t>(1, options_.status_interval_ms);
    std::uniform_int_distribution<int64_t> spread(-interval / 10, interval / 10);
    return std::max<int64_t>(1, interval + spread(status_rng_));
  }

  asio::awaitable<void> SendStatus() {
    if (!url_) {
      status_failed_->Inc();
      co_return;
    }
    std::string status_json;
    try {
      status_json = options_.status_provider();
    } catch (...) {
      status_failed_->Inc();
      LogException(kWho, "status provider threw", std::current_exception());
      co_return;
    }
    auto body = EncodeStatusBody(options_.node_id, clock_.WallMs(), status_json);
    if (!body.ok()) {
      status_failed_->Inc();
      spdlog::error("uplink: status heartbeat skipped: {}", body.error());
      co_return;
    }
    std::string payload = std::move(body.value());
    const std::string_view encoding = MaybeCompress(payload);
    RefreshToken(false);
    const std::string authorization = token_.empty() ? std::string() : "Bearer " + token_;
    const SteadyTime deadline = RequestDeadline();
    const HttpReply reply =
        co_await PostBody(status_conn_, status_target_, authorization, payload, encoding, deadline);
    if (!reply.transport_ok) {
      status_failed_->Inc();
      spdlog::warn("uplink: POST {} failed: {}", status_target_, reply.error);
      co_return;
    }
    if (reply.status >= 200 && reply.status < 300) {
      status_ok_->Inc();
      MarkAuthorized(true);
      co_return;
    }
    if (reply.status == 401) {
      status_unauthorized_->Inc();
      MarkAuthorized(false);
      spdlog::error(
          "uplink: console rejected the node token (401) for a status report; "
          "re-reading {}",
          options_.token_file);
      RefreshToken(true);
      co_return;
    }
    status_failed_->Inc();
    spdlog::warn("uplink: console answered {} to a status report: {}", reply.status,
                 Snippet(reply.body));
  }

  // Waits on the shared timer; Notify() cuts idle waits short, Stop() any wait.
  asio::awaitable<void> Wait(Waiting kind, int64_t delay_ms) {
    if (stopping_) co_return;
    if (kind == Waiting::kBackoff) {
      backoff_gauge_->Set(static_cast<double>(delay_ms) / 1000.0);
    }
    waiting_ = kind;
    wait_timer_.expires_after(milliseconds(std::max<int64_t>(0, delay_ms)));
    co_await wait_timer_.async_wait(kUseTuple);
    waiting_ = Waiting::kNone;
  }

  void RefreshToken(bool force) {
    const int64_t now = clock_.MonotonicMs();
    if (!force && token_read_ && now - token_read_ms_ < kTokenRefreshMs) return;
    token_read_ = true;
    token_read_ms_ = now;
    auto token = ReadTokenFile(options_.token_file);
    if (!token.ok()) {
      spdlog::error("uplink: {}; keeping the previous token", token.error());
      return;
    }
    token_ = std::move(token.value());
  }

  void MarkAuthorized(bool value) {
    if (authorized_.exchange(value) != value && value) {
      spdlog::info("uplink: console accepted the node token again");
    }
  }

  void Finish() {
    stopped_ = true;
    stop_timer_.cancel();
    wait_timer_.cancel();
    status_timer_.cancel();
    conn_.Close();
    status_conn_.Close();
    backoff_gauge_->Set(0);
    RunStopCallbacks();
  }

  void RunStopCallbacks() {
    std::vector<std::function<void()>> callbacks;
    callbacks.swap(stop_callbacks_);
    for (auto& cb : callbacks) {
      try {
        cb();
      } catch (...) {
        LogException(kWho, "stop callback threw", std::current_exception());
      }
    }
  }

  asio::io_context& io_;
  const UplinkOptions options_;
  OutboxSource& source_;
  Clock& clock_;
  std::optional<ConsoleUrl> url_;
  std::string target_;
  std::string status_target_;
  std::unique_ptr<asio::ssl::context> tls_context_;  // https only; used by conn_

  CounterHandle* uploads_ok_ = nullptr;
  CounterHandle* uploads_retry_ = nullptr;
  CounterHandle* uploads_rejected_ = nullptr;
  CounterHandle* uploads_unauthorized_ = nullptr;
  CounterHandle* bytes_ = nullptr;
  CounterHandle* items_ = nullptr;
  GaugeHandle* backoff_gauge_ = nullptr;
  std::map<std::string, CounterHandle*> dead_lettered_;  // "kind|reason"
  CounterHandle* status_ok_ = nullptr;
  CounterHandle* status_failed_ = nullptr;
  CounterHandle* status_unauthorized_ = nullptr;

  // Touched from any thread.
  std::atomic<bool> authorized_{true};
  std::atomic<bool> dict_refused_{false};  // the console answered 415 to edge-zdict
  std::atomic<bool> notify_posted_{false};

  // Everything below is owned by the io_context thread.
  Backoff backoff_;
  HttpConnection conn_;         // batches
  HttpConnection status_conn_;  // heartbeats, so they never queue behind a batch
  asio::steady_timer wait_timer_;
  asio::steady_timer stop_timer_;
  asio::steady_timer status_timer_;
  asio::steady_timer status_done_;  // Run() waits on it for the heartbeat loop to end
  std::mt19937_64 status_rng_;
  bool status_running_ = false;
  size_t max_items_;
  size_t max_bytes_;
  std::string token_;
  bool token_read_ = false;
  int64_t token_read_ms_ = 0;
  Waiting waiting_ = Waiting::kNone;
  bool notified_ = false;
  bool was_idle_ = false;  // the last fetch found the outbox empty
  bool started_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  SteadyTime stop_deadline_{};
  std::vector<std::function<void()>> stop_callbacks_;
};

class AsioUplink final : public Uplink {
 public:
  explicit AsioUplink(std::shared_ptr<UplinkLoop> loop) : loop_(std::move(loop)) {}
  // The loop keeps running on its own if not stopped; see the lifetime note in uplink.h.
  ~AsioUplink() override = default;

  void Start() override { loop_->Start(); }
  void Notify() override { loop_->Notify(); }
  void Stop(int64_t deadline_ms, std::function<void()> completion_cb) override {
    loop_->Stop(deadline_ms, std::move(completion_cb));
  }
  bool Authorized() const override { return loop_->Authorized(); }

 private:
  std::shared_ptr<UplinkLoop> loop_;
};

}  // namespace

std::unique_ptr<Uplink> CreateUplink(asio::io_context& io, UplinkOptions options,
                                     OutboxSource& source, Metrics& metrics, Clock& clock) {
  return std::make_unique<AsioUplink>(
      std::make_shared<UplinkLoop>(io, std::move(options), source, metrics, clock));
}

Status ValidateUplinkOptions(const UplinkOptions& options) {
  auto url = ParseConsoleUrl(options.console_url);
  if (!url.ok()) return url.status();
  if (url->tls) {
    if (auto ctx = MakeTlsContext(options.ca_file); !ctx.ok()) return ctx.status();
  } else if (!options.ca_file.empty()) {
    spdlog::warn("uplink: ca_file is ignored for the http:// console URL");
  }
  if (options.node_id.empty()) return Status::Error("uplink: node id is empty");
  if (auto token = ReadTokenFile(options.token_file); !token.ok()) return token.status();
  if (options.batch_max_items == 0) return Status::Error("uplink: batch_max_items must be > 0");
  if (options.batch_max_bytes == 0) return Status::Error("uplink: batch_max_bytes must be > 0");
  if (options.timeout_ms <= 0) return Status::Error("uplink: timeout_ms must be > 0");
  if (options.backoff_initial_ms <= 0) {
    return Status::Error("uplink: backoff_initial_ms must be > 0");
  }
  if (options.backoff_max_ms < options.backoff_initial_ms) {
    return Status::Error("uplink: backoff_max_ms must be >= backoff_initial_ms");
  }
  if (options.idle_poll_ms <= 0) return Status::Error("uplink: idle_poll_ms must be > 0");
  if (options.linger_ms < 0 || options.linger_ms > 60'000) {
    return Status::Error("uplink: linger_ms must be from 0 to 60000");
  }
  if (options.status_provider && options.status_interval_ms <= 0) {
    return Status::Error("uplink: status_interval_ms must be > 0");
  }
  return Status::Ok();
}

}  // namespace edge::cloudsync
