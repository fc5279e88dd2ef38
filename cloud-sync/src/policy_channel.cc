// The policy channel's protocol loop: hello, then judge every policy the console pushes
// and report the outcome, over a WebSocket (websocket_connection.h), or over HTTP polls
// (http_connection.h) when the console declines the upgrade.

#include "edge/cloudsync/policy_channel.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <exception>
#include <random>
#include <utility>
#include <vector>

#include "bearer_token.h"
#include "client_common.h"
#include "edge/cloudsync/backoff.h"
#include "edge/cloudsync/console_url.h"
#include "edge/cloudsync/tls_context.h"
#include "http_connection.h"
#include "websocket_connection.h"

namespace edge::cloudsync {
namespace {

using internal::BearerToken;
using internal::CheckConsoleLink;
using internal::ConsoleTransport;
using internal::HttpConnection;
using internal::HttpReply;
using internal::HttpRequest;
using internal::kUseTuple;
using internal::LogException;
using internal::ParseUrlOrLog;
using internal::ReadTokenFile;
using internal::Snippet;
using internal::SteadyTime;
using internal::WebSocketConnection;
using internal::WebSocketOpenResult;

constexpr std::string_view kWho = "policy channel";

namespace asio = boost::asio;
using std::chrono::milliseconds;

constexpr const char* kChannelPath = "/v1/policy/channel";
constexpr const char* kPollPath = "/v1/policy/poll";
constexpr const char* kReportPath = "/v1/policy/report";

// How a WebSocket attempt ended.
enum class WsEnd {
  kFailed,        // transport error, timeout, closed by either side: back off and redial
  kUnauthorized,  // 401 on the upgrade
  kDeclined,      // another HTTP status on the upgrade: fall back to polling
  kStopped,
};

class ChannelLoop : public std::enable_shared_from_this<ChannelLoop> {
 public:
  ChannelLoop(asio::io_context& io, PolicyChannelOptions options, PolicyJudge judge,
              AppliedPolicy applied, Metrics& metrics, Clock& clock)
      : io_(io),
        options_(std::move(options)),
        judge_(std::move(judge)),
        applied_(std::move(applied)),
        url_(ParseUrlOrLog(options_.console_url, kWho)),
        tls_(std::string(kWho), {options_.ca_file, options_.cert_file, options_.key_file}),
        token_(options_.token_file, kWho, clock),
        backoff_(options_.backoff_initial_ms, options_.backoff_max_ms,
                 options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()),
        wait_timer_(io),
        connected_gauge_(metrics.Gauge("edge_agent_policy_channel_connected",
                                       "1 while the policy channel WebSocket to the console is "
                                       "open")),
        malformed_(metrics.Counter("edge_agent_policy_channel_malformed_total",
                                   "Policy channel messages from the console that were not a "
                                   "valid text message (ignored)")) {
    connected_gauge_.Set(0);
  }

  bool Connected() const { return connected_.load(); }

  void Start() {
    asio::post(io_, [self = shared_from_this()] {
      if (self->started_ || self->stopping_) return;
      self->started_ = true;
      asio::co_spawn(self->io_, self->Run(), [self](std::exception_ptr e) {
        if (e) LogException(kWho, "loop ended", e);
        self->Finish();
      });
    });
  }

  void Stop(std::function<void()> cb) {
    asio::post(io_, [self = shared_from_this(), cb = std::move(cb)]() mutable {
      if (cb) self->stop_callbacks_.push_back(std::move(cb));
      if (self->stopped_) {
        self->RunStopCallbacks();
        return;
      }
      self->stopping_ = true;
      if (!self->started_) {
        self->Finish();
        return;
      }
      self->wait_timer_.cancel();
      if (self->watchdog_ != nullptr) self->watchdog_->cancel();
      self->CloseActive();
    });
  }

 private:
  asio::awaitable<void> Run() {
    while (!stopping_) {
      WsEnd end = WsEnd::kFailed;
      try {
        end = co_await RunWebSocket();
      } catch (...) {
        LogException(kWho, "WebSocket session failed", std::current_exception());
      }
      SetConnected(false);
      if (stopping_) break;
      switch (end) {
        case WsEnd::kUnauthorized:
          co_await Wait(backoff_.max_ms());
          break;
        case WsEnd::kDeclined:
          co_await RunPolling();
          break;
        case WsEnd::kFailed:
          co_await Wait(backoff_.NextDelayMs());
          break;
        case WsEnd::kStopped:
          break;
      }
    }
  }

  // ---- WebSocket ----

  asio::awaitable<WsEnd> RunWebSocket() {
    if (!url_) co_return WsEnd::kFailed;
    token_.Refresh(false);
    const SteadyTime deadline =
        std::chrono::steady_clock::now() + milliseconds(std::max<int64_t>(1, options_.timeout_ms));
    WebSocketConnection ws(io_.get_executor(), TlsOrNull());
    ActiveGuard guard(*this, ws);
    internal::WebSocketOpenOptions open;
    open.target = url_->Target(kChannelPath);
    open.authorization = token_.Authorization();
    open.max_message_bytes = options_.max_message_bytes;
    // Pings and pongs count as traffic for the idle timeout.
    open.on_control = [this] { last_rx_ = Now(); };
    const WebSocketOpenResult opened = co_await ws.Open(*url_, open, deadline);
    if (stopping_) co_return WsEnd::kStopped;
    if (opened.kind == WebSocketOpenResult::Kind::kDeclined) {
      if (opened.status == 401) {
        spdlog::error(
            "policy channel: console rejected the node token (401); re-reading {} and "
            "retrying in {} ms",
            options_.token_file, backoff_.max_ms());
        token_.Refresh(true);
        co_return WsEnd::kUnauthorized;
      }
      spdlog::warn(
          "policy channel: console answered the WebSocket upgrade with {} ({}); polling {} "
          "every {} ms instead",
          opened.status, Snippet(opened.body), kPollPath, options_.poll_interval_ms);
      co_return WsEnd::kDeclined;
    }
    if (opened.kind == WebSocketOpenResult::Kind::kFailed) {
      spdlog::warn("policy channel: {}", opened.error);
      co_return WsEnd::kFailed;
    }
    SetConnected(true);
    spdlog::info("policy channel: connected to {}", url_->HostHeader());

    const uint64_t session = ++session_id_;
    session_open_ = true;
    last_rx_ = Now();
    asio::co_spawn(io_, Watchdog(session), [self = shared_from_this()](std::exception_ptr e) {
      if (e) LogException(kWho, "watchdog ended", e);
    });
    const WsEnd end = co_await Exchange(ws);
    session_open_ = false;
    if (watchdog_ != nullptr) watchdog_->cancel();
    SetConnected(false);
    co_return stopping_ ? WsEnd::kStopped : end;
  }

  // hello, then one message at a time: read, judge, report.
  asio::awaitable<WsEnd> Exchange(WebSocketConnection& ws) {
    if (!co_await Write(ws, EncodePolicyHello(MakeHello()))) co_return WsEnd::kFailed;
    while (!stopping_) {
      const internal::WebSocketMessage message = co_await ws.Read();
      if (stopping_) break;
      if (!message.ok) {
        if (message.closed) {
          spdlog::warn("policy channel: console closed the channel ({} {}); reconnecting",
                       message.close_code, message.close_reason);
        } else {
          spdlog::warn("policy channel: read failed: {}; reconnecting", message.error);
        }
        co_return WsEnd::kFailed;
      }
      last_rx_ = Now();
      backoff_.Reset();
      if (!message.text) {
        malformed_.Inc();
        spdlog::warn("policy channel: ignored a binary message of {} bytes", message.data.size());
        continue;
      }
      std::optional<PolicyReport> report = Handle(message.data);
      if (report && !co_await Write(ws, EncodePolicyReport(*report))) co_return WsEnd::kFailed;
    }
    co_return WsEnd::kStopped;
  }

  asio::awaitable<bool> Write(WebSocketConnection& ws, std::string text) {
    write_deadline_ = Now() + milliseconds(std::max<int64_t>(1, options_.timeout_ms));
    if (watchdog_ != nullptr) watchdog_->cancel();  // re-arms for the write deadline
    const std::string error = co_await ws.WriteText(std::move(text));
    write_deadline_.reset();
    if (!error.empty()) {
      if (!stopping_) spdlog::warn("policy channel: write failed: {}", error);
      co_return false;
    }
    co_return true;
  }

  // Closes the session's socket when nothing arrived for idle_timeout_ms or a write is
  // late; the pending read or write then fails and the session ends.
  asio::awaitable<void> Watchdog(uint64_t session) {
    asio::steady_timer timer(io_);
    watchdog_ = &timer;
    const auto idle = milliseconds(std::max<int64_t>(1, options_.idle_timeout_ms));
    while (session == session_id_ && session_open_ && !stopping_) {
      SteadyTime due = last_rx_ + idle;
      if (write_deadline_) due = std::min(due, *write_deadline_);
      timer.expires_at(due);
      co_await timer.async_wait(kUseTuple);
      if (session != session_id_ || !session_open_ || stopping_) break;
      const SteadyTime now = Now();
      if (now >= last_rx_ + idle) {
        spdlog::warn("policy channel: nothing received from the console for {} ms; reconnecting",
                     options_.idle_timeout_ms);
        CloseActive();
        break;
      }
      if (write_deadline_ && now >= *write_deadline_) {
        spdlog::warn("policy channel: a write took longer than {} ms; reconnecting",
                     options_.timeout_ms);
        CloseActive();
        break;
      }
    }
    if (watchdog_ == &timer) watchdog_ = nullptr;
  }

  // ---- polling ----

  asio::awaitable<void> RunPolling() {
    const int polls = std::max(1, options_.polls_per_websocket_try);
    for (int i = 0; i < polls && !stopping_; ++i) {
      try {
        co_await PollOnce();
      } catch (...) {
        LogException(kWho, "poll failed", std::current_exception());
      }
      co_await Wait(options_.poll_interval_ms);
    }
  }

  asio::awaitable<void> PollOnce() {
    if (!url_) co_return;
    token_.Refresh(false);
    HttpReply reply = co_await Post(url_->Target(kPollPath), EncodePolicyHello(MakeHello()));
    if (stopping_) co_return;
    if (!reply.transport_ok) {
      spdlog::warn("policy channel: POST {} failed: {}", kPollPath, reply.error);
      co_return;
    }
    if (reply.status == 204) co_return;
    if (reply.status == 401) {
      spdlog::error(
          "policy channel: console rejected the node token (401) for a poll; "
          "re-reading {}",
          options_.token_file);
      token_.Refresh(true);
      co_return;
    }
    if (reply.status != 200) {
      spdlog::warn("policy channel: console answered {} to a poll: {}", reply.status,
                   Snippet(reply.body));
      co_return;
    }
    std::optional<PolicyReport> report = Handle(reply.body);
    if (!report) co_return;
    HttpReply sent = co_await Post(url_->Target(kReportPath), EncodePolicyReport(*report));
    if (stopping_) co_return;
    if (!sent.transport_ok) {
      spdlog::warn("policy channel: POST {} failed: {}", kReportPath, sent.error);
    } else if (sent.status < 200 || sent.status >= 300) {
      spdlog::warn("policy channel: console answered {} to a report: {}", sent.status,
                   Snippet(sent.body));
    }
  }

  // One request on a fresh connection, bounded by timeout_ms as a whole.
  asio::awaitable<HttpReply> Post(std::string target, std::string body) {
    const SteadyTime deadline =
        std::chrono::steady_clock::now() + milliseconds(std::max<int64_t>(1, options_.timeout_ms));
    HttpConnection conn(io_.get_executor(), TlsOrNull(), options_.max_message_bytes);
    ActiveGuard guard(*this, conn);
    HttpRequest request;
    request.target = std::move(target);
    request.authorization = token_.Authorization();
    request.body = body;
    request.keep_alive = false;
    co_return co_await conn.Post(*url_, request, deadline);
  }

  // A console message: a `policy` is judged and its report returned; anything else is
  // ignored (undecodable ones are counted).
  std::optional<PolicyReport> Handle(const std::string& text) {
    auto type = PolicyMessageType(text);
    if (!type.ok()) {
      malformed_.Inc();
      spdlog::warn("policy channel: ignored a message from the console: {} ({})", type.error(),
                   Snippet(text));
      return std::nullopt;
    }
    if (*type != "policy") {
      spdlog::debug("policy channel: ignored a '{}' message", Snippet(*type));
      return std::nullopt;
    }
    auto doc = DecodePolicyDocument(text);
    if (!doc.ok()) {
      malformed_.Inc();
      spdlog::warn("policy channel: ignored a malformed policy message: {}", doc.error());
      return std::nullopt;
    }
    // A console that is polled sends a version it does not see applied again on every poll:
    // a rejection that cannot change (everything but "store") is answered again, not judged
    // and counted again.
    const std::string key =
        doc->name + "\n" + std::to_string(doc->version) + "\n" + doc->signature + "\n" + doc->body;
    if (last_rejection_ && key == last_rejected_key_) return last_rejection_;
    PolicyReport report;
    try {
      report = judge_(*doc);
    } catch (...) {
      LogException(kWho, "judging a policy failed", std::current_exception());
      return std::nullopt;
    }
    if (report.state == "rejected" && report.reason != "store") {
      last_rejected_key_ = key;
      last_rejection_ = report;
    } else {
      last_rejection_.reset();
      last_rejected_key_.clear();
    }
    return report;
  }

  PolicyHello MakeHello() {
    PolicyHello hello;
    hello.node = options_.node_id;
    hello.labels = options_.labels;
    hello.agent_version = options_.agent_version;
    if (applied_) {
      try {
        hello.applied = applied_();
      } catch (...) {
        LogException(kWho, "reading the applied policy failed", std::current_exception());
      }
    }
    return hello;
  }

  // Waits on the shared timer; Stop() cuts it short.
  asio::awaitable<void> Wait(int64_t delay_ms) {
    if (stopping_) co_return;
    wait_timer_.expires_after(milliseconds(std::max<int64_t>(0, delay_ms)));
    co_await wait_timer_.async_wait(kUseTuple);
  }

  void SetConnected(bool value) {
    connected_ = value;
    connected_gauge_.Set(value ? 1 : 0);
  }

  // Aborts whatever is in flight on the current connection.
  void CloseActive() {
    if (active_ws_ != nullptr) active_ws_->Close();
    if (active_http_ != nullptr) active_http_->Close();
  }

  void Finish() {
    if (stopped_) return;
    stopped_ = true;
    wait_timer_.cancel();
    SetConnected(false);
    RunStopCallbacks();
  }

  void RunStopCallbacks() { internal::RunStopCallbacks(stop_callbacks_, kWho); }

  static SteadyTime Now() { return std::chrono::steady_clock::now(); }

  // Makes one attempt's connection the one Stop() and the watchdog close, for its scope.
  struct ActiveGuard {
    ActiveGuard(ChannelLoop& l, WebSocketConnection& ws) : loop(l) { loop.active_ws_ = &ws; }
    ActiveGuard(ChannelLoop& l, ConsoleTransport& http) : loop(l) { loop.active_http_ = &http; }
    ~ActiveGuard() {
      loop.active_ws_ = nullptr;
      loop.active_http_ = nullptr;
    }
    ActiveGuard(const ActiveGuard&) = delete;
    ActiveGuard& operator=(const ActiveGuard&) = delete;
    ChannelLoop& loop;
  };

  asio::io_context& io_;
  const PolicyChannelOptions options_;
  PolicyJudge judge_;
  AppliedPolicy applied_;
  std::optional<ConsoleUrl> url_;
  // The TLS context of https connections; null for http.
  TlsContextSource* TlsOrNull() { return url_ && url_->tls ? &tls_ : nullptr; }
  TlsContextSource tls_;
  BearerToken token_;
  Backoff backoff_;
  asio::steady_timer wait_timer_;
  GaugeHandle& connected_gauge_;
  CounterHandle& malformed_;

  std::atomic<bool> connected_{false};  // read from any thread

  // Everything below is owned by the io_context thread.
  // The connection in flight (at most one of them), closed by Stop() and the watchdog.
  WebSocketConnection* active_ws_ = nullptr;
  ConsoleTransport* active_http_ = nullptr;
  asio::steady_timer* watchdog_ = nullptr;
  uint64_t session_id_ = 0;
  bool session_open_ = false;
  SteadyTime last_rx_{};
  std::optional<SteadyTime> write_deadline_;
  std::string last_rejected_key_;
  std::optional<PolicyReport> last_rejection_;
  bool started_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  std::vector<std::function<void()>> stop_callbacks_;
};

class AsioPolicyChannel final : public PolicyChannel {
 public:
  explicit AsioPolicyChannel(std::shared_ptr<ChannelLoop> loop) : loop_(std::move(loop)) {}
  void Start() override { loop_->Start(); }
  void Stop(std::function<void()> completion_cb) override { loop_->Stop(std::move(completion_cb)); }
  bool Connected() const override { return loop_->Connected(); }

 private:
  std::shared_ptr<ChannelLoop> loop_;
};

}  // namespace

std::unique_ptr<PolicyChannel> CreatePolicyChannel(asio::io_context& io,
                                                   PolicyChannelOptions options, PolicyJudge judge,
                                                   AppliedPolicy applied, Metrics& metrics,
                                                   Clock& clock) {
  return std::make_unique<AsioPolicyChannel>(std::make_shared<ChannelLoop>(
      io, std::move(options), std::move(judge), std::move(applied), metrics, clock));
}

Status ValidatePolicyChannelOptions(const PolicyChannelOptions& options) {
  auto url =
      CheckConsoleLink(options.console_url, {options.ca_file, options.cert_file, options.key_file});
  if (!url.ok()) return url.status();
  if (options.node_id.empty()) return Status::Error("policy channel: node id is empty");
  if (auto token = ReadTokenFile(options.token_file); !token.ok()) return token.status();
  if (options.timeout_ms <= 0) return Status::Error("policy channel: timeout_ms must be > 0");
  if (options.idle_timeout_ms <= 0) {
    return Status::Error("policy channel: idle_timeout_ms must be > 0");
  }
  if (options.backoff_initial_ms <= 0 || options.backoff_max_ms < options.backoff_initial_ms) {
    return Status::Error("policy channel: backoff must be > 0 and max >= initial");
  }
  if (options.poll_interval_ms <= 0) {
    return Status::Error("policy channel: poll_interval_ms must be > 0");
  }
  if (options.max_message_bytes == 0) {
    return Status::Error("policy channel: max_message_bytes must be > 0");
  }
  return Status::Ok();
}

}  // namespace edge::cloudsync
