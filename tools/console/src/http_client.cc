// Beast adapter for the console's own client side (the `policy` CLI). One io_context per
// call; every operation is asynchronous so that the stream's deadline applies to it.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <string>

#include "edge/common/url.h"
#include "edge/console/client.h"

namespace edge::console {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kMaxReplyBytes = 64 * 1024 * 1024;

}  // namespace

Result<BaseUrl> ParseBaseUrl(std::string_view url) {
  if (url.starts_with("https://")) {
    return Status::Error("https URLs are not supported by this client; use http://");
  }
  if (!url.starts_with("http://")) return Status::Error("URL must start with http://");
  static constexpr UrlScheme kSchemes[] = {{"http", 80}};
  Result<Url> parsed = ParseUrl(url, kSchemes, "URL");
  if (!parsed.ok()) return parsed.status();
  BaseUrl out;
  out.host = std::move(parsed->host);
  out.port = std::to_string(parsed->port);
  std::string_view prefix = parsed->path;
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  out.path_prefix = std::string(prefix);
  return out;
}

Result<ClientReply> HttpCall(const BaseUrl& base, std::string_view method, std::string_view path,
                             std::string_view token, std::string_view body,
                             std::chrono::milliseconds timeout) {
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    beast::error_code error;
    std::string stage = "resolve";
    http::request<http::string_body> request{http::string_to_verb(method),
                                             base.path_prefix + std::string(path), 11};
    request.set(http::field::host, base.host);
    request.set(http::field::user_agent, "edge-console");
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + std::string(token));
    if (!body.empty()) {
      request.set(http::field::content_type, "application/json");
      request.body() = std::string(body);
    }
    request.keep_alive(false);
    request.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBytes);
    beast::flat_buffer buffer;

    const auto deadline = std::chrono::steady_clock::now() + timeout;
    resolver.async_resolve(
        base.host, base.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
          if (ec) {
            error = ec;
            return;
          }
          stage = "connect";
          stream.expires_at(deadline);
          stream.async_connect(results, [&](beast::error_code cec, const tcp::endpoint&) {
            if (cec) {
              error = cec;
              return;
            }
            stage = "send";
            http::async_write(stream, request, [&](beast::error_code wec, size_t) {
              if (wec) {
                error = wec;
                return;
              }
              stage = "receive";
              http::async_read(stream, buffer, parser,
                               [&](beast::error_code rec, size_t) { error = rec; });
            });
          });
        });
    // The resolver has no deadline of its own: bound the whole loop.
    ioc.run_for(timeout + std::chrono::milliseconds(100));
    if (!ioc.stopped()) {
      return Status::Error(stage + " " + base.host + ":" + base.port + ": timed out");
    }
    if (error) {
      const std::string what =
          error == beast::error::timeout ? std::string("timed out") : error.message();
      return Status::Error(stage + " " + base.host + ":" + base.port + ": " + what);
    }
    ClientReply reply;
    reply.status = static_cast<int>(parser.get().result_int());
    reply.body = std::move(parser.get().body());
    return reply;
  } catch (const std::exception& e) {
    return Status::Error(std::string("request failed: ") + e.what());
  }
}

}  // namespace edge::console
