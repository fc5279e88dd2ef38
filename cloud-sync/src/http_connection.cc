#include "http_connection.h"

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http.hpp>
#include <utility>

#include "client_common.h"

namespace edge::cloudsync::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// The peer closing an idle keep-alive connection shows up as one of these.
bool IsStaleError(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

}  // namespace

asio::awaitable<HttpReply> HttpConnection::Post(const ConsoleUrl& url, const HttpRequest& request,
                                                SteadyTime deadline) {
  HttpReply reply;
  const bool reused = stream_.IsOpen();
  if (!reused) {
    Drop();
    reply.error = co_await stream_.Connect(url, deadline);
    if (!reply.error.empty()) {
      Drop();
      co_return reply;
    }
  }
  if (stream_.IsTls()) {
    co_await Exchange(stream_.Tls(), url, request, reused, deadline, reply);
  } else {
    co_await Exchange(stream_.Tcp(), url, request, reused, deadline, reply);
  }
  co_return reply;
}

// Writes the request and reads the reply on an open stream.
template <typename Stream>
asio::awaitable<void> HttpConnection::Exchange(Stream& stream, const ConsoleUrl& url,
                                               const HttpRequest& request, bool reused,
                                               SteadyTime deadline, HttpReply& reply) {
  // The body is sent from the caller's buffer, which outlives the exchange: no copy per attempt.
  http::request<http::span_body<const char>> req{http::verb::post, request.target, 11};
  req.set(http::field::host, url.HostHeader());
  req.set(http::field::user_agent, "edge-agent");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "application/json");
  if (!request.authorization.empty()) req.set(http::field::authorization, request.authorization);
  if (!request.encoding.empty()) req.set(http::field::content_encoding, request.encoding);
  req.keep_alive(request.keep_alive);
  req.body() = http::span_body<const char>::value_type(request.body.data(), request.body.size());
  req.prepare_payload();

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
  parser.body_limit(max_reply_body_bytes_);
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
  if (!request.keep_alive || !res.keep_alive()) Drop();
}

void HttpConnection::Drop() {
  stream_.Reset();
  buffer_.clear();
}

}  // namespace edge::cloudsync::internal
