// The uplink's delivery loop: fetch a batch from the outbox, send it, delete what the
// console acknowledged, bisect a rejected batch down to the rows to dead-letter, back off
// on failure, and stop within a deadline. Requests go through UplinkClient (compression,
// token, retries of stale connections) over the connection layer (http_connection.h); the
// status heartbeat runs beside it (status_heartbeat.h).

#include "edge/cloudsync/uplink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <exception>
#include <iterator>
#include <optional>
#include <random>
#include <utility>

#include "client_common.h"
#include "console_transport.h"
#include "edge/cloudsync/backoff.h"
#include "edge/cloudsync/batch_codec.h"
#include "edge/cloudsync/console_url.h"
#include "edge/cloudsync/tls_context.h"
#include "status_heartbeat.h"
#include "uplink_client.h"
#include "uplink_metrics.h"

namespace edge::cloudsync {
namespace {

namespace asio = boost::asio;
using internal::kUseTuple;
using internal::LogException;
using internal::Remaining;
using internal::Snippet;
using internal::SteadyTime;
using std::chrono::milliseconds;

constexpr std::string_view kWho = "uplink";
constexpr const char* kBatchesPath = "/v1/batches";

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
        metrics_(metrics),
        client_(options_, clock, *metrics_.bytes),
        backoff_(options_.backoff_initial_ms, options_.backoff_max_ms,
                 options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()),
        conn_(client_.NewConnection(io.get_executor())),
        heartbeat_(io, options_, client_, metrics_, clock),
        wait_timer_(io),
        stop_timer_(io),
        status_done_(io),
        max_items_(std::max<size_t>(1, options_.batch_max_items)),
        max_bytes_(std::max<size_t>(1, options_.batch_max_bytes)) {
    if (client_.url() != nullptr) target_ = client_.url()->Target(kBatchesPath);
  }

  bool Authorized() const { return client_.Authorized(); }

  void Start() {
    asio::post(io_, [self = shared_from_this()] { self->OnStart(); });
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

  void OnStart() {
    if (started_ || stopping_) return;
    started_ = true;
    auto self = shared_from_this();
    asio::co_spawn(io_, Run(), [self](std::exception_ptr e) {
      if (e) LogException(kWho, "loop ended", e);
    });
    if (options_.status_provider && options_.status_interval_ms > 0) {
      status_running_ = true;
      asio::co_spawn(io_, heartbeat_.Run(), [self](std::exception_ptr e) {
        if (e) LogException(kWho, "status heartbeat ended", e);
        self->status_running_ = false;
        self->status_done_.cancel();
      });
    }
  }

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
    client_.LimitDeadlines(deadline);
    wait_timer_.cancel();
    heartbeat_.Stop();
    stop_timer_.expires_at(deadline);
    stop_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped_) return;
      // Out of time: abort the requests in flight so the loops can finish.
      self->conn_->Close();
      self->heartbeat_.CloseConnection();
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
    heartbeat_.Stop();
    heartbeat_.CloseConnection();
    while (status_running_) {
      status_done_.expires_after(std::chrono::hours(1));
      co_await status_done_.async_wait(kUseTuple);
    }
    Finish();
  }

  // One round: fetch a batch, send it, then wait as the outcome requires.
  asio::awaitable<void> Step() {
    if (linger_next_ && options_.linger_ms > 0) {
      // Woken from idle by a commit, or after a batch that was not full: give the rows
      // committed just after it a moment to join the same batch (and gzip body), so that a
      // storm of alerts makes one request per linger, not one per commit. A backlog (full
      // batches) is sent back to back, no linger.
      co_await Wait(Waiting::kLinger, options_.linger_ms);
    }
    linger_next_ = false;
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
      linger_next_ = true;
      co_return;
    }
    const size_t batch_items = batch->size();  // *batch is moved from below
    const bool full = IsFull(*batch);
    const SendResult result = co_await Deliver(std::move(*batch));
    switch (result.outcome) {
      case Outcome::kOk:
        if (result.acked > 0 || result.dead_lettered > 0) {
          backoff_.Reset();
          metrics_.backoff->Set(0);
          // After a full batch more rows are likely waiting: the next is sent back to back.
          linger_next_ = !full;
          co_return;
        }
        // Nothing of the batch was acknowledged: resending at once would spin.
        spdlog::warn("uplink: console acknowledged none of {} items", batch_items);
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

  // Sends `items`. When the console rejects them as malformed, the batch is split in halves
  // (sent back to back, first half first) until the single rows it rejects are found; those
  // are dead-lettered and every other row is delivered. A single row rejected with 413
  // (after the batch limits shrank to it) is dead-lettered too. The first half that cannot
  // be delivered for another reason ends the walk with that outcome: its rows stay in the
  // outbox and the next fetch finds them again. kOk carries the rows acked and
  // dead-lettered over the whole walk.
  asio::awaitable<SendResult> Deliver(std::vector<OutboxItem> items) {
    SendResult result = co_await SendBatch(items, client_.RequestDeadline());
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

  // Whether `batch` filled the fetch: it reached the item limit or half the byte limit (the
  // fetch stops before the row that would pass the byte limit, whose size is not known here).
  bool IsFull(const std::vector<OutboxItem>& batch) const {
    if (batch.size() >= max_items_) return true;
    size_t bytes = 0;
    for (const OutboxItem& item : batch) bytes += item.payload_json.size();
    return bytes >= max_bytes_ / 2;
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
    metrics_.DeadLettered(item.kind, reason).Inc(static_cast<double>(*moved));
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
      // RequestDeadline() is bounded by the stop deadline by now.
      const SendResult result = co_await SendBatch(*batch, client_.RequestDeadline());
      if (result.outcome != Outcome::kOk || result.acked == 0) co_return;
    }
  }

  asio::awaitable<SendResult> SendBatch(const std::vector<OutboxItem>& items, SteadyTime deadline) {
    SendResult result;
    if (client_.url() == nullptr) {
      metrics_.uploads_retry->Inc();
      co_return result;
    }
    EncodedBatch encoded = EncodeBatchBody(options_.node_id, clock_.WallMs(), items);
    if (encoded.invalid_payloads > 0) {
      spdlog::warn("uplink: {} outbox payloads are not valid JSON; sent as strings",
                   encoded.invalid_payloads);
    }
    std::string body = std::move(encoded.body);
    const std::string_view encoding = client_.MaybeCompress(body);
    const internal::HttpReply reply =
        co_await client_.Post(*conn_, target_, body, encoding, deadline, "");

    if (!reply.transport_ok) {
      spdlog::warn("uplink: POST {} failed: {}", target_, reply.error);
      metrics_.uploads_retry->Inc();
      co_return result;
    }
    const unsigned status = reply.status;
    if (status == 200) {
      auto acked_ids = ParseAckResponse(reply.body);
      if (!acked_ids.ok()) {
        spdlog::warn("uplink: malformed 200 reply ({}): {}", acked_ids.error(),
                     Snippet(reply.body));
        metrics_.uploads_retry->Inc();
        co_return result;
      }
      metrics_.uploads_ok->Inc();
      client_.MarkAuthorized(true);
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
      metrics_.items->Inc(static_cast<double>(seqs.size()));
      result.outcome = Outcome::kOk;
      result.acked = seqs.size();
      co_return result;
    }
    if (status == 401) {
      metrics_.uploads_unauthorized->Inc();  // Post marked, logged and re-read the token
      result.outcome = Outcome::kUnauthorized;
      co_return result;
    }
    if (status >= 500 || status == 429 || status == 408) {
      if (status == 429 || status == 503)
        result.retry_after_ms = ParseRetryAfterMs(reply.retry_after);
      spdlog::warn("uplink: console answered {}: {}", status, Snippet(reply.body));
      metrics_.uploads_retry->Inc();
      co_return result;
    }
    metrics_.uploads_rejected->Inc();
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

  // Waits on the shared timer; Notify() cuts idle waits short, Stop() any wait.
  asio::awaitable<void> Wait(Waiting kind, int64_t delay_ms) {
    if (stopping_) co_return;
    if (kind == Waiting::kBackoff) {
      metrics_.backoff->Set(static_cast<double>(delay_ms) / 1000.0);
    }
    waiting_ = kind;
    wait_timer_.expires_after(milliseconds(std::max<int64_t>(0, delay_ms)));
    co_await wait_timer_.async_wait(kUseTuple);
    waiting_ = Waiting::kNone;
  }

  void Finish() {
    stopped_ = true;
    stop_timer_.cancel();
    wait_timer_.cancel();
    heartbeat_.Stop();
    conn_->Close();
    heartbeat_.CloseConnection();
    metrics_.backoff->Set(0);
    RunStopCallbacks();
  }

  void RunStopCallbacks() { internal::RunStopCallbacks(stop_callbacks_, kWho); }

  asio::io_context& io_;
  const UplinkOptions options_;
  OutboxSource& source_;
  Clock& clock_;
  const internal::UplinkMetrics metrics_;
  internal::UplinkClient client_;  // URL, TLS, token, compression, authorized flag
  std::string target_;

  // Touched from any thread.
  std::atomic<bool> notify_posted_{false};

  // Everything below is owned by the io_context thread.
  Backoff backoff_;
  std::unique_ptr<internal::ConsoleTransport> conn_;  // batches
  internal::StatusHeartbeat heartbeat_;               // on a connection of its own
  asio::steady_timer wait_timer_;
  asio::steady_timer stop_timer_;
  asio::steady_timer status_done_;  // Run() waits on it for the heartbeat loop to end
  bool status_running_ = false;
  size_t max_items_;
  size_t max_bytes_;
  Waiting waiting_ = Waiting::kNone;
  bool notified_ = false;
  // The next fetch waits options_.linger_ms first: the last one found the outbox empty, or
  // sent a batch that was not full.
  bool linger_next_ = false;
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
  auto url = internal::CheckConsoleLink(options.console_url,
                                        {options.ca_file, options.cert_file, options.key_file});
  if (!url.ok()) return url.status();
  if (!url->tls && (!options.ca_file.empty() || !options.cert_file.empty())) {
    spdlog::warn("uplink: ca_file and cert_file are ignored for the http:// console URL");
  }
  if (options.node_id.empty()) return Status::Error("uplink: node id is empty");
  if (auto token = internal::ReadTokenFile(options.token_file); !token.ok()) return token.status();
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
