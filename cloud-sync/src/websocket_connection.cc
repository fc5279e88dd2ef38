#include "websocket_connection.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <optional>
#include <utility>

#include "client_common.h"

namespace edge::cloudsync::internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

struct WebSocketConnection::Session {
  std::optional<websocket::stream<TcpStream>> plain;
  std::optional<websocket::stream<TlsStream>> secure;
  beast::flat_buffer buffer;
};

namespace {

template <typename WebSocket>
asio::awaitable<WebSocketOpenResult> Upgrade(WebSocket& ws, const ConsoleUrl& url,
                                             const WebSocketOpenOptions& options,
                                             SteadyTime deadline) {
  WebSocketOpenResult result;
  beast::tcp_stream& lowest = beast::get_lowest_layer(ws);
  ws.read_message_max(options.max_message_bytes);
  ws.set_option(websocket::stream_base::decorator(
      [authorization = options.authorization](websocket::request_type& req) {
        req.set(http::field::user_agent, "edge-agent");
        if (!authorization.empty()) req.set(http::field::authorization, authorization);
      }));
  if (options.on_control) {
    ws.control_callback([on_control = options.on_control](websocket::frame_type,
                                                          beast::string_view) { on_control(); });
  }
  websocket::response_type res;
  lowest.expires_after(Remaining(deadline));
  auto [hec] = co_await ws.async_handshake(res, url.HostHeader(), options.target, kUseTuple);
  if (hec == websocket::error::upgrade_declined) {
    result.kind = WebSocketOpenResult::Kind::kDeclined;
    result.status = res.result_int();
    result.body = std::move(res.body());
    co_return result;
  }
  if (hec) {
    result.error = "WebSocket handshake with " + url.HostHeader() + " failed: " + hec.message();
    co_return result;
  }
  lowest.expires_never();
  result.kind = WebSocketOpenResult::Kind::kOpen;
  co_return result;
}

template <typename WebSocket>
asio::awaitable<WebSocketMessage> ReadMessage(WebSocket& ws, beast::flat_buffer& buffer) {
  WebSocketMessage message;
  buffer.clear();
  auto [rec, read] = co_await ws.async_read(buffer, kUseTuple);
  if (rec) {
    if (rec == websocket::error::closed) {
      message.closed = true;
      message.close_code = static_cast<int>(ws.reason().code);
      message.close_reason = std::string(ws.reason().reason.data(), ws.reason().reason.size());
    } else {
      message.error = rec.message();
    }
    co_return message;
  }
  message.ok = true;
  message.text = ws.got_text();
  message.data = beast::buffers_to_string(buffer.data());
  co_return message;
}

template <typename WebSocket>
asio::awaitable<std::string> Write(WebSocket& ws, const std::string& text) {
  ws.text(true);
  auto [wec, written] = co_await ws.async_write(asio::buffer(text), kUseTuple);
  co_return wec ? wec.message() : std::string();
}

}  // namespace

WebSocketConnection::WebSocketConnection(asio::any_io_executor ex, TlsContextSource* tls)
    : stream_(std::move(ex), tls) {}

WebSocketConnection::~WebSocketConnection() = default;

asio::awaitable<WebSocketOpenResult> WebSocketConnection::Open(const ConsoleUrl& url,
                                                               const WebSocketOpenOptions& options,
                                                               SteadyTime deadline) {
  session_.reset();
  WebSocketOpenResult result;
  result.error = co_await stream_.Connect(url, deadline);
  if (!result.error.empty()) co_return result;
  session_ = std::make_unique<Session>();
  if (stream_.IsTls()) {
    session_->secure.emplace(std::move(*stream_.TakeTls()));
    result = co_await Upgrade(*session_->secure, url, options, deadline);
  } else {
    session_->plain.emplace(std::move(*stream_.TakeTcp()));
    result = co_await Upgrade(*session_->plain, url, options, deadline);
  }
  if (result.kind != WebSocketOpenResult::Kind::kOpen) Close();
  co_return result;
}

asio::awaitable<WebSocketMessage> WebSocketConnection::Read() {
  if (session_ && session_->secure)
    co_return co_await ReadMessage(*session_->secure, session_->buffer);
  if (session_ && session_->plain)
    co_return co_await ReadMessage(*session_->plain, session_->buffer);
  WebSocketMessage closed;
  closed.error = "not connected";
  co_return closed;
}

asio::awaitable<std::string> WebSocketConnection::WriteText(std::string text) {
  if (session_ && session_->secure) co_return co_await Write(*session_->secure, text);
  if (session_ && session_->plain) co_return co_await Write(*session_->plain, text);
  co_return "not connected";
}

void WebSocketConnection::Close() {
  stream_.Close();
  if (!session_) return;
  if (session_->secure) CloseSocket(beast::get_lowest_layer(*session_->secure));
  if (session_->plain) CloseSocket(beast::get_lowest_layer(*session_->plain));
}

}  // namespace edge::cloudsync::internal
