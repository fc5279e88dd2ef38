// The policy channel client: a WebSocket (Beast) to the console, with HTTP polling as a
// fallback. Beast and Asio stay inside this file and uplink.cc.

#include "edge/cloudsync/policy_channel.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cctype>
#include <chrono>
#include <exception>
#include <fstream>
#include <random>
#include <utility>
#include <vector>

#include "client_common.h"
#include "edge/cloudsync/backoff.h"
#include "edge/cloudsync/console_url.h"

namespace edge::cloudsync {
namespace {

using internal::LogException;
using internal::ParseUrlOrLog;
using internal::ReadTokenFile;
using internal::Remaining;
using internal::Snippet;

constexpr std::string_view kWho = "policy channel";

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;
using std::chrono::milliseconds;
using TcpStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr int64_t kTokenRefreshMs = 60'000;
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

struct HttpResult {
  bool ok = false;
  std::string error;
  unsigned status = 0;
  std::string body;
};

class ChannelLoop : public std::enable_shared_from_this<ChannelLoop> {
 public:
  ChannelLoop(asio::io_context& io, PolicyChannelOptions options, PolicyJudge judge,
              AppliedPolicy applied, Metrics& metrics, Clock& clock)
      : io_(io),
        options_(std::move(options)),
        judge_(std::move(judge)),
        applied_(std::move(applied)),
        clock_(clock),
        url_(ParseUrlOrLog(options_.console_url, kWho)),
        tls_context_(url_ && url_->tls ? TlsContextOrRefuseAll(options_.ca_file, kWho) : nullptr),
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
      if (self->resolve_wake_) self->resolve_wake_->cancel();
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
    RefreshToken(false);
    const SteadyTime deadline =
        std::chrono::steady_clock::now() + milliseconds(std::max<int64_t>(1, options_.timeout_ms));
    std::optional<TcpStream> tcp_stream;
    std::optional<TlsStream> tls_stream;
    ActiveGuard guard(*this);
    const std::string error = co_await Connect(deadline, tcp_stream, tls_stream);
    if (stopping_) co_return WsEnd::kStopped;
    if (!error.empty()) {
      spdlog::warn("policy channel: {}", error);
      co_return WsEnd::kFailed;
    }
    if (tls_stream) {
      websocket::stream<TlsStream> ws(std::move(*tls_stream));
      active_ = &beast::get_lowest_layer(ws);
      co_return co_await Session(ws, deadline);
    }
    websocket::stream<TcpStream> ws(std::move(*tcp_stream));
    active_ = &beast::get_lowest_layer(ws);
    co_return co_await Session(ws, deadline);
  }

  template <typename NextLayer>
  asio::awaitable<WsEnd> Session(websocket::stream<NextLayer>& ws, SteadyTime deadline) {
    beast::tcp_stream& lowest = beast::get_lowest_layer(ws);
    ws.read_message_max(options_.max_message_bytes);
    const std::string authorization = token_.empty() ? std::string() : "Bearer " + token_;
    ws.set_option(websocket::stream_base::decorator([authorization](websocket::request_type& req) {
      req.set(http::field::user_agent, "edge-agent");
      if (!authorization.empty()) req.set(http::field::authorization, authorization);
    }));
    // Pings and pongs count as traffic for the idle timeout.
    ws.control_callback([this](websocket::frame_type, beast::string_view) { last_rx_ = Now(); });

    websocket::response_type res;
    lowest.expires_after(Remaining(deadline));
    auto [hec] =
        co_await ws.async_handshake(res, url_->HostHeader(), url_->Target(kChannelPath), kUseTuple);
    if (stopping_) co_return WsEnd::kStopped;
    if (hec == websocket::error::upgrade_declined) {
      const unsigned status = res.result_int();
      if (status == 401) {
        spdlog::error(
            "policy channel: console rejected the node token (401); re-reading {} and "
            "retrying in {} ms",
            options_.token_file, backoff_.max_ms());
        RefreshToken(true);
        co_return WsEnd::kUnauthorized;
      }
      spdlog::warn(
          "policy channel: console answered the WebSocket upgrade with {} ({}); polling {} "
          "every {} ms instead",
          status, Snippet(res.body()), kPollPath, options_.poll_interval_ms);
      co_return WsEnd::kDeclined;
    }
    if (hec) {
      spdlog::warn("policy channel: WebSocket handshake with {} failed: {}", url_->HostHeader(),
                   hec.message());
      co_return WsEnd::kFailed;
    }
    lowest.expires_never();
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
  template <typename WebSocket>
  asio::awaitable<WsEnd> Exchange(WebSocket& ws) {
    if (!co_await Write(ws, EncodePolicyHello(MakeHello()))) co_return WsEnd::kFailed;
    beast::flat_buffer buffer;
    while (!stopping_) {
      buffer.clear();
      auto [rec, read] = co_await ws.async_read(buffer, kUseTuple);
      if (stopping_) break;
      if (rec) {
        if (rec == websocket::error::closed) {
          spdlog::warn("policy channel: console closed the channel ({} {}); reconnecting",
                       static_cast<int>(ws.reason().code),
                       std::string(ws.reason().reason.data(), ws.reason().reason.size()));
        } else {
          spdlog::warn("policy channel: read failed: {}; reconnecting", rec.message());
        }
        co_return WsEnd::kFailed;
      }
      last_rx_ = Now();
      backoff_.Reset();
      if (!ws.got_text()) {
        malformed_.Inc();
        spdlog::warn("policy channel: ignored a binary message of {} bytes", read);
        continue;
      }
      std::optional<PolicyReport> report = Handle(beast::buffers_to_string(buffer.data()));
      if (report && !co_await Write(ws, EncodePolicyReport(*report))) co_return WsEnd::kFailed;
    }
    co_return WsEnd::kStopped;
  }

  template <typename WebSocket>
  asio::awaitable<bool> Write(WebSocket& ws, std::string text) {
    ws.text(true);
    write_deadline_ = Now() + milliseconds(std::max<int64_t>(1, options_.timeout_ms));
    if (watchdog_ != nullptr) watchdog_->cancel();  // re-arms for the write deadline
    auto [wec, written] = co_await ws.async_write(asio::buffer(text), kUseTuple);
    write_deadline_.reset();
    if (wec) {
      if (!stopping_) spdlog::warn("policy channel: write failed: {}", wec.message());
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
    RefreshToken(false);
    HttpResult reply = co_await Post(url_->Target(kPollPath), EncodePolicyHello(MakeHello()));
    if (stopping_) co_return;
    if (!reply.ok) {
      spdlog::warn("policy channel: POST {} failed: {}", kPollPath, reply.error);
      co_return;
    }
    if (reply.status == 204) co_return;
    if (reply.status == 401) {
      spdlog::error(
          "policy channel: console rejected the node token (401) for a poll; "
          "re-reading {}",
          options_.token_file);
      RefreshToken(true);
      co_return;
    }
    if (reply.status != 200) {
      spdlog::warn("policy channel: console answered {} to a poll: {}", reply.status,
                   Snippet(reply.body));
      co_return;
    }
    std::optional<PolicyReport> report = Handle(reply.body);
    if (!report) co_return;
    HttpResult sent = co_await Post(url_->Target(kReportPath), EncodePolicyReport(*report));
    if (stopping_) co_return;
    if (!sent.ok) {
      spdlog::warn("policy channel: POST {} failed: {}", kReportPath, sent.error);
    } else if (sent.status < 200 || sent.status >= 300) {
      spdlog::warn("policy channel: console answered {} to a report: {}", sent.status,
                   Snippet(sent.body));
    }
  }

  // One request on a fresh connection, bounded by timeout_ms as a whole.
  asio::awaitable<HttpResult> Post(std::string target, std::string body) {
    HttpResult result;
    const SteadyTime deadline =
        std::chrono::steady_clock::now() + milliseconds(std::max<int64_t>(1, options_.timeout_ms));
    std::optional<TcpStream> tcp_stream;
    std::optional<TlsStream> tls_stream;
    ActiveGuard guard(*this);
    result.error = co_await Connect(deadline, tcp_stream, tls_stream);
    if (!result.error.empty()) co_return result;

    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, url_->HostHeader());
    req.set(http::field::user_agent, "edge-agent");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "application/json");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    req.keep_alive(false);
    req.body() = std::move(body);
    req.prepare_payload();
    if (tls_stream) {
      co_await HttpExchange(*tls_stream, req, deadline, result);
    } else {
      co_await HttpExchange(*tcp_stream, req, deadline, result);
    }
    CloseActive();
    co_return result;
  }

  template <typename Stream>
  asio::awaitable<void> HttpExchange(Stream& stream, http::request<http::string_body>& req,
                                     SteadyTime deadline, HttpResult& result) {
    beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(Remaining(deadline));
    auto [wec, written] = co_await http::async_write(stream, req, kUseTuple);
    if (wec) {
      result.error = "write: " + wec.message();
      co_return;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_message_bytes);
    lowest.expires_after(Remaining(deadline));
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, kUseTuple);
    if (rec) {
      result.error = "read: " + rec.message();
      co_return;
    }
    result.ok = true;
    result.status = parser.get().result_int();
    result.body = std::move(parser.get().body());
  }

  // ---- shared by both transports ----

  // Resolve, TCP connect and, for https, the TLS handshake, all before `deadline`. Returns
  // an error text or "". The stream being built is the active one (Stop() closes it).
  asio::awaitable<std::string> Connect(SteadyTime deadline, std::optional<TcpStream>& tcp_out,
                                       std::optional<TlsStream>& tls_out) {
    std::optional<tcp::resolver::results_type> endpoints;
    std::string error = co_await Resolve(deadline, endpoints);
    if (!endpoints) co_return error;
    if (stopping_) co_return "stopped";
    tcp_out.emplace(io_.get_executor());
    active_ = &*tcp_out;
    tcp_out->expires_after(Remaining(deadline));
    auto [ec, endpoint] = co_await tcp_out->async_connect(*endpoints, kUseTuple);
    if (ec) co_return "connect to " + url_->HostHeader() + ": " + ec.message();
    if (!url_->tls) co_return std::string();
    if (tls_context_ == nullptr) co_return "https requested but no TLS context";
    tls_out.emplace(std::move(*tcp_out), *tls_context_);
    tcp_out.reset();
    active_ = &beast::get_lowest_layer(*tls_out);
    beast::error_code parse_ec;
    asio::ip::make_address(url_->host, parse_ec);
    // SNI takes host names only, never address literals.
    if (parse_ec && !SSL_set_tlsext_host_name(tls_out->native_handle(), url_->host.c_str())) {
      co_return "TLS: cannot set server name";
    }
    tls_out->set_verify_mode(asio::ssl::verify_peer);
    tls_out->set_verify_callback(asio::ssl::host_name_verification(url_->host));
    beast::get_lowest_layer(*tls_out).expires_after(Remaining(deadline));
    auto [hec] = co_await tls_out->async_handshake(asio::ssl::stream_base::client, kUseTuple);
    if (hec) co_return "TLS handshake with " + url_->HostHeader() + ": " + hec.message();
    co_return std::string();
  }

  // The system resolver cannot be interrupted: the coroutine waits on a timer that the
  // lookup's completion cancels, so a hung lookup costs a late callback, not a stuck loop.
  asio::awaitable<std::string> Resolve(SteadyTime deadline,
                                       std::optional<tcp::resolver::results_type>& out) {
    struct Lookup {
      explicit Lookup(asio::io_context& io) : wake(io), resolver(io) {}
      asio::steady_timer wake;
      tcp::resolver resolver;
      bool done = false;
      beast::error_code ec;
      tcp::resolver::results_type results;
    };
    auto lookup = std::make_shared<Lookup>(io_);
    lookup->wake.expires_at(deadline);
    resolve_wake_ = std::shared_ptr<asio::steady_timer>(lookup, &lookup->wake);
    lookup->resolver.async_resolve(
        url_->host, std::to_string(url_->port),
        [lookup](const beast::error_code& ec, tcp::resolver::results_type r) {
          lookup->done = true;
          lookup->ec = ec;
          lookup->results = std::move(r);
          lookup->wake.cancel();
        });
    co_await lookup->wake.async_wait(kUseTuple);
    resolve_wake_.reset();
    if (!lookup->done) co_return "resolve " + url_->host + ": timed out or aborted";
    if (lookup->ec) co_return "resolve " + url_->host + ": " + lookup->ec.message();
    out = std::move(lookup->results);
    co_return std::string();
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

  void RefreshToken(bool force) {
    const int64_t now = clock_.MonotonicMs();
    if (!force && token_read_ && now - token_read_ms_ < kTokenRefreshMs) return;
    token_read_ = true;
    token_read_ms_ = now;
    auto token = ReadTokenFile(options_.token_file);
    if (!token.ok()) {
      spdlog::error("policy channel: {}; keeping the previous token", token.error());
      return;
    }
    token_ = std::move(token.value());
  }

  void SetConnected(bool value) {
    connected_ = value;
    connected_gauge_.Set(value ? 1 : 0);
  }

  // Aborts whatever is in flight on the current connection.
  void CloseActive() {
    if (active_ == nullptr) return;
    beast::error_code ignored;
    active_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    active_->close();
  }

  void Finish() {
    if (stopped_) return;
    stopped_ = true;
    wait_timer_.cancel();
    SetConnected(false);
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

  static SteadyTime Now() { return std::chrono::steady_clock::now(); }

  // Clears active_ when the streams of one attempt go out of scope.
  struct ActiveGuard {
    explicit ActiveGuard(ChannelLoop& l) : loop(l) {}
    ~ActiveGuard() { loop.active_ = nullptr; }
    ActiveGuard(const ActiveGuard&) = delete;
    ActiveGuard& operator=(const ActiveGuard&) = delete;
    ChannelLoop& loop;
  };

  asio::io_context& io_;
  const PolicyChannelOptions options_;
  PolicyJudge judge_;
  AppliedPolicy applied_;
  Clock& clock_;
  std::optional<ConsoleUrl> url_;
  std::unique_ptr<asio::ssl::context> tls_context_;  // https only
  Backoff backoff_;
  asio::steady_timer wait_timer_;
  GaugeHandle& connected_gauge_;
  CounterHandle& malformed_;

  std::atomic<bool> connected_{false};  // read from any thread

  // Everything below is owned by the io_context thread.
  beast::tcp_stream* active_ = nullptr;  // lowest layer of the connection in flight
  asio::steady_timer* watchdog_ = nullptr;
  std::shared_ptr<asio::steady_timer> resolve_wake_;
  uint64_t session_id_ = 0;
  bool session_open_ = false;
  SteadyTime last_rx_{};
  std::optional<SteadyTime> write_deadline_;
  std::string token_;
  bool token_read_ = false;
  int64_t token_read_ms_ = 0;
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
  auto url = ParseConsoleUrl(options.console_url);
  if (!url.ok()) return url.status();
  if (url->tls) {
    if (auto ctx = MakeTlsContext(options.ca_file); !ctx.ok()) return ctx.status();
  }
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
