// One HTTP connection of the console's server: requests read under the header and body
// limits and timeouts, the request smuggling guard, the auth throttle, and the replies
// (beast_server.h).

#include <array>
#include <boost/beast/core/flat_buffer.hpp>

#include "beast_server.h"
#include "edge/common/strings.h"

namespace edge::console::internal {
namespace {

// After a 413/431/400 the peer may still be sending; reading (and discarding) for a moment
// lets it see our reply instead of a connection reset.
constexpr std::chrono::milliseconds kDrainTime{1000};
constexpr size_t kMaxDrainBytes = 8 * 1024 * 1024;

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

struct Refusal {
  int status;
  const char* reason;
};

// Request smuggling guard (RFC 9112 6.1, 6.3): the only transfer coding accepted is a single
// `chunked`, and never together with Content-Length. Beast alone reads some of these by the
// length.
template <class Fields>
std::optional<Refusal> CheckFraming(const http::header<true, Fields>& head) {
  size_t te_fields = 0;
  std::string_view te;
  for (const auto& field : head) {
    if (field.name() == http::field::transfer_encoding) {
      ++te_fields;
      te = field.value();
    }
  }
  if (te_fields == 0) return std::nullopt;
  if (head.count(http::field::content_length) > 0) {
    return Refusal{400, "Transfer-Encoding together with Content-Length"};
  }
  if (te_fields > 1 || !IEquals(TrimBlanks(te), "chunked")) {
    return Refusal{501, "unsupported Transfer-Encoding (only a single 'chunked' is accepted)"};
  }
  return std::nullopt;
}

HttpRequest HeadOf(const http::request<http::string_body>& request) {
  HttpRequest in;
  in.method = std::string(request.method_string());
  in.target = std::string(request.target());
  in.authorization = std::string(request[http::field::authorization]);
  in.content_encoding = std::string(request[http::field::content_encoding]);
  in.content_type = std::string(request[http::field::content_type]);
  return in;
}

}  // namespace

void BeastServer::RecordAuthFailure(const std::string& who) {
  metrics_.RequestRefused(kRequestUnauthenticated);
  throttle_.RecordFailure(who, SteadyMs());
}

asio::awaitable<void> BeastServer::ServeRequests(Connection& c) {
  beast::flat_buffer buffer;
  bool first = true;
  while (!stopping_) {
    if (!first && buffer.size() == 0) {
      // Between kept-alive requests: the next one must start within read_timeout; its
      // headers then get header_timeout like a new connection's.
      c.idle = true;
      c.stream.expires_after(options_.read_timeout);
      auto [idle_ec, n] = co_await c.stream.async_read_some(buffer.prepare(4096), kUseTuple);
      c.idle = false;
      if (idle_ec) co_return;
      buffer.commit(n);
    }
    first = false;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    parser.body_limit(options_.max_body_bytes);
    c.parser = &parser;
    c.stream.expires_after(options_.header_timeout);
    auto [ec, bytes] = co_await http::async_read_header(c.stream, buffer, parser, kUseTuple);
    if (ec) {
      c.parser = nullptr;
      if (ec == beast::error::timeout) {
        metrics_.ConnectionRefused(kRefusedHeaderTimeout);
        refusal_log_.Write(kRefusedHeaderTimeout, "connection closed: no complete headers in time",
                           {{"client", c.client}});
        co_return;
      }
      // Resets, the peer closing and our own shutdown end the connection quietly.
      if (!IsHttpParseError(ec) || ec == http::error::end_of_stream) co_return;
      const int status = ec == http::error::body_limit     ? 413
                         : ec == http::error::header_limit ? 431
                                                           : 400;
      if (ec == http::error::bad_transfer_encoding || ec == http::error::bad_content_length) {
        metrics_.RequestRefused(kRequestBadFraming);
      }
      co_await WriteError(c, status, ec.message());
      co_return;
    }
    const http::request<http::string_body>& head = parser.get();
    if (const auto refusal = CheckFraming(head)) {
      c.parser = nullptr;
      metrics_.RequestRefused(kRequestBadFraming);
      refusal_log_.Write(kRequestBadFraming, "request refused",
                         {{"client", c.client}, {"error", refusal->reason}});
      co_await WriteError(c, refusal->status, refusal->reason);
      co_return;
    }
    HttpRequest in = HeadOf(head);
    std::string who = c.client;  // the throttle's key for this request
    if (c.via_proxy) {
      // The last field's last entry is what the proxy appended; earlier ones are the
      // client's own word.
      std::string_view forwarded_for;
      for (auto [it, end] = head.equal_range("X-Forwarded-For"); it != end; ++it) {
        forwarded_for = it->value();
      }
      if (auto forwarded = ForwardedClientKey(forwarded_for)) who = std::move(*forwarded);
    }
    const bool upgrade = channels_ != nullptr && websocket::is_upgrade(head) &&
                         in.target.substr(0, in.target.find('?')) == options_.channel_path;
    HeadVerdict verdict;
    if (upgrade) {
      verdict.needs_token = true;
    } else {
      verdict = handler_.CheckHead(in);
      in.principal = std::move(verdict.principal);
    }
    if (verdict.needs_token) {
      if (const int64_t wait_ms = throttle_.BlockedForMs(who, SteadyMs()); wait_ms > 0) {
        c.parser = nullptr;
        metrics_.RequestRefused(kRequestThrottled);
        refusal_log_.Write(kRequestThrottled, "request refused: too many failed authentications",
                           {{"client", who}});
        HttpResponse r;
        r.status = 429;
        r.body = R"({"error":"too many failed authentications from this address, retry later"})";
        r.headers.emplace_back("Retry-After", std::to_string((wait_ms + 999) / 1000));
        co_await WriteAndClose(c, std::move(r), head.version(), !parser.is_done());
        co_return;
      }
    }
    if (upgrade) {
      c.parser = nullptr;
      if (!parser.is_done()) {
        co_await WriteError(c, 400, "an upgrade request must not have a body");
        co_return;
      }
      std::string principal;
      std::optional<HttpResponse> refusal = channels_->Admit(in, &principal);
      if (!refusal && by_principal_.size() >= options_.max_channels &&
          by_principal_.count(principal) == 0) {
        RefuseChannel(c);
        HttpResponse r;
        r.status = 503;
        r.body = R"({"error":"policy channel pool full, retry later"})";
        r.headers.emplace_back("Retry-After", "30");
        refusal = std::move(r);
      }
      if (!refusal) {
        co_await ServeChannel(c, parser.release(), principal);
        co_return;
      }
      if (refusal->status == 401) RecordAuthFailure(who);
      co_await WriteResponse(c, std::move(*refusal), head.version(), false);
      co_return;
    }
    if (verdict.refusal) {
      if (verdict.refusal->status == 401) RecordAuthFailure(who);
      if (!parser.is_done()) {
        // A body was announced: answer without reading it, then close.
        c.parser = nullptr;
        co_await WriteAndClose(c, std::move(*verdict.refusal), head.version(), true);
        co_return;
      }
      c.parser = nullptr;
      const bool keep_alive = head.keep_alive() && !stopping_;
      auto [write_ec] =
          co_await WriteResponse(c, std::move(*verdict.refusal), head.version(), keep_alive);
      if (write_ec || !keep_alive) co_return;
      continue;
    }
    if (!parser.is_done()) {
      c.stream.expires_after(options_.read_timeout);
      auto [body_ec, body_bytes] = co_await http::async_read(c.stream, buffer, parser, kUseTuple);
      if (body_ec) {
        c.parser = nullptr;
        if (!IsHttpParseError(body_ec) || body_ec == http::error::end_of_stream) co_return;
        const int status = body_ec == http::error::body_limit ? 413 : 400;
        co_await WriteError(c, status, body_ec.message());
        co_return;
      }
    }
    c.parser = nullptr;
    http::request<http::string_body> request = parser.release();
    in.body = std::move(request.body());
    HttpResponse out = handler_.Handle(in);
    if (out.status == 401) RecordAuthFailure(who);
    const bool keep_alive = request.keep_alive() && !stopping_;
    auto [write_ec] = co_await WriteResponse(c, std::move(out), request.version(), keep_alive);
    if (write_ec || !keep_alive) co_return;
  }
}

asio::awaitable<std::tuple<beast::error_code>> BeastServer::WriteResponse(Connection& c,
                                                                          HttpResponse out,
                                                                          unsigned version,
                                                                          bool keep_alive) {
  http::response<http::string_body> response{static_cast<http::status>(out.status), version};
  response.set(http::field::server, "edge-console");
  response.set(http::field::content_type, out.content_type);
  for (const auto& [name, value] : out.headers) response.set(name, value);
  response.body() = std::move(out.body);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  c.stream.expires_after(options_.write_timeout);
  auto [ec, written] = co_await http::async_write(c.stream, response, kUseTuple);
  co_return std::tuple<beast::error_code>{ec};
}

asio::awaitable<void> BeastServer::WriteAndClose(Connection& c, HttpResponse out, unsigned version,
                                                 bool drain) {
  auto [ec] = co_await WriteResponse(c, std::move(out), version, false);
  if (ec || !drain) co_return;
  co_await Drain(c);
}

asio::awaitable<void> BeastServer::Drain(Connection& c) {
  beast::error_code ignored;
  c.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  c.stream.expires_after(kDrainTime);
  std::array<char, 16 * 1024> scratch;
  size_t drained = 0;
  while (drained < kMaxDrainBytes) {
    auto [read_ec, n] = co_await c.stream.async_read_some(asio::buffer(scratch), kUseTuple);
    if (read_ec) break;
    drained += n;
  }
}

asio::awaitable<void> BeastServer::WriteError(Connection& c, int status,
                                              const std::string& reason) {
  http::response<http::string_body> response{static_cast<http::status>(status), 11};
  response.set(http::field::server, "edge-console");
  response.set(http::field::content_type, "application/json");
  std::string safe_reason = reason;
  for (char& ch : safe_reason) {
    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) ch = ' ';
  }
  response.body() = R"({"error":")" + safe_reason + R"("})";
  response.keep_alive(false);
  response.prepare_payload();
  c.stream.expires_after(options_.write_timeout);
  auto [ec, written] = co_await http::async_write(c.stream, response, kUseTuple);
  if (ec) co_return;
  co_await Drain(c);
}

}  // namespace edge::console::internal
