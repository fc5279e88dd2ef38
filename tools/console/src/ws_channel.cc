// The WebSocket policy channel of the console's server: the upgrade, the channel pool (one
// channel per principal, max_channels in all), each channel's reader and writer, and the
// tick (beast_server.h).

#include <boost/asio/co_spawn.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "beast_server.h"

namespace edge::console::internal {

WsChannel::WsChannel(beast::tcp_stream&& stream, asio::io_context& ioc,
                     const ServerOptions& options)
    : ws(std::move(stream)), wake(ioc), hello_timer(ioc), options_(options) {}

void WsChannel::Send(std::string message) {
  if (closing || closed) return;
  if (queue.size() >= options_.channel_queue_messages ||
      queued_bytes + message.size() > options_.channel_queue_bytes) {
    overflowed = true;
    Drop();
    return;
  }
  queued_bytes += message.size();
  queue.push_back(std::move(message));
  wake.cancel();
}

void WsChannel::Close(uint16_t code, std::string reason) {
  if (closing || closed) return;
  closing = true;
  close_reason.code = code;
  // A close frame's reason has room for 123 bytes.
  const std::string_view text = std::string_view(reason).substr(0, 120);
  close_reason.reason.assign(text.data(), text.size());
  wake.cancel();
}

void WsChannel::Drop() {
  if (closed) return;
  closed = true;
  beast::error_code ignored;
  beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws).close();
  wake.cancel();
  hello_timer.cancel();
}

void BeastServer::RefuseChannel(const Connection& c) {
  metrics_.ConnectionRefused(kRefusedChannelsFull);
  refusal_log_.Write(
      kRefusedChannelsFull, "policy channel refused",
      {{"client", c.client}, {"limit", static_cast<int64_t>(options_.max_channels)}});
}

asio::awaitable<void> BeastServer::ServeChannel(Connection& c,
                                                http::request<http::string_body> request,
                                                std::string principal) {
  c.channel = std::make_shared<WsChannel>(std::move(c.stream), ioc_, options_);
  const std::shared_ptr<WsChannel> ch = c.channel;
  // Beast's own WebSocket timeouts replace the stream's deadline from here on.
  beast::get_lowest_layer(ch->ws).expires_never();
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = options_.write_timeout;
  timeouts.idle_timeout = options_.channel_idle_timeout;
  timeouts.keep_alive_pings = false;  // WriteChannel pings on its own schedule
  ch->ws.set_option(timeouts);
  ch->ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "edge-console"); }));
  ch->ws.read_message_max(options_.channel_max_message);
  ch->ws.text(true);
  auto [accept_ec] = co_await ch->ws.async_accept(request, kUseTuple);
  if (accept_ec || stopping_) co_return;

  // The channel leaves the request pool for the channel pool, replacing an older channel
  // of the same principal (most often one whose connection died without a close).
  LeaveRequestPool(c);
  if (const auto old = by_principal_.find(principal); old != by_principal_.end()) {
    Connection& previous = *old->second;
    const std::shared_ptr<WsChannel> channel = previous.channel;
    LeaveChannelPool(previous);
    metrics_.ChannelReplaced();
    log_.Write(LogLevel::kInfo, "policy channel replaced by a newer one of the same node",
               {{"principal", principal}});
    channel->Drop();
    CloseChannel(*channel);
  } else if (by_principal_.size() >= options_.max_channels) {
    RefuseChannel(c);
    co_return;
  }
  c.in_channel_pool = true;
  c.principal = principal;
  by_principal_[principal] = &c;
  UpdateGauges();

  ch->opened = true;  // before OnOpen: if it throws, Serve() still calls OnClose
  channels_->OnOpen(*ch, principal);
  asio::co_spawn(ioc_, WriteChannel(ch), [this](std::exception_ptr e) { LogFault(e, "channel"); });
  ch->hello_timer.expires_after(options_.channel_hello_timeout);
  ch->hello_timer.async_wait([ch](const beast::error_code& ec) {
    if (!ec && !ch->got_message) ch->Close(1008, "no hello in time");
  });
  beast::flat_buffer buffer;
  for (;;) {
    auto [ec, n] = co_await ch->ws.async_read(buffer, kUseTuple);
    if (ec) break;
    const bool text = ch->ws.got_text();
    std::string message = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (!ch->got_message) {
      ch->got_message = true;
      ch->hello_timer.cancel();
    }
    if (ch->closing || ch->closed) continue;
    if (!text) {
      ch->Close(1003, "text frames only");
      continue;
    }
    try {
      channels_->OnMessage(*ch, message);
    } catch (...) {
      LogFault(std::current_exception(), "channel message");
    }
  }
  if (ch->overflowed) {
    log_.Write(LogLevel::kWarn, "channel dropped: outgoing queue full", {{"principal", principal}});
  }
  ch->Drop();  // Serve() tells the handler
}

asio::awaitable<void> BeastServer::WriteChannel(std::shared_ptr<WsChannel> ch) {
  auto next_ping = std::chrono::steady_clock::now() + options_.channel_ping_interval;
  const websocket::ping_data ping_payload;
  while (!ch->closed) {
    if (!ch->queue.empty()) {
      const std::string message = std::move(ch->queue.front());
      ch->queue.pop_front();
      ch->queued_bytes -= message.size();
      ch->write_deadline = std::chrono::steady_clock::now() + options_.write_timeout;
      auto [ec, n] = co_await ch->ws.async_write(asio::buffer(message), kUseTuple);
      ch->write_deadline.reset();
      if (ec) break;
      continue;
    }
    if (ch->closing) {
      ch->write_deadline = std::chrono::steady_clock::now() + options_.write_timeout;
      auto [ec] = co_await ch->ws.async_close(ch->close_reason, kUseTuple);
      ch->write_deadline.reset();
      if (ec) break;
      co_return;  // the reader sees the end of the channel
    }
    if (std::chrono::steady_clock::now() >= next_ping) {
      ch->write_deadline = std::chrono::steady_clock::now() + options_.write_timeout;
      auto [ec] = co_await ch->ws.async_ping(ping_payload, kUseTuple);
      ch->write_deadline.reset();
      if (ec) break;
      next_ping = std::chrono::steady_clock::now() + options_.channel_ping_interval;
      continue;
    }
    ch->wake.expires_at(next_ping);
    co_await ch->wake.async_wait(kUseTuple);
  }
  ch->Drop();
}

void BeastServer::CloseChannel(WsChannel& ch) {
  if (!ch.opened) return;
  ch.opened = false;
  try {
    channels_->OnClose(ch);
  } catch (...) {
    LogFault(std::current_exception(), "channel close");
  }
}

asio::awaitable<void> BeastServer::TickLoop() {
  while (!stopping_) {
    tick_timer_.expires_after(options_.tick_interval);
    auto [ec] = co_await tick_timer_.async_wait(kUseTuple);
    if (ec || stopping_) co_return;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& c : connections_) {
      if (c->channel && c->channel->write_deadline && *c->channel->write_deadline < now) {
        log_.Write(LogLevel::kWarn, "channel dropped: write timed out");
        c->channel->Drop();
      }
    }
    try {
      channels_->OnTick();
    } catch (...) {
      LogFault(std::current_exception(), "tick");
    }
  }
}

}  // namespace edge::console::internal
