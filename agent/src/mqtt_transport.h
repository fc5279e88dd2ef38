#pragma once
// The byte stream of one connection of the native MQTT client (native_ingest.cc): a TCP
// socket, or a TLS stream over one.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <memory>

namespace edge::agent {

// One connection's byte stream. Shared with pending write handlers so that the stream
// outlives every operation on it.
struct Transport {
  explicit Transport(boost::asio::io_context& io) : plain(io) {}
  boost::asio::ip::tcp::socket plain;  // the TCP socket when there is no TLS
  // For ssl://: the context this connection was made with (TlsContextSource) and the
  // stream, which owns its own socket.
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls;
  boost::asio::ip::tcp::socket& Socket() { return tls ? tls->next_layer() : plain; }
  void Close() {
    boost::system::error_code ignored;
    Socket().close(ignored);
  }
};

}  // namespace edge::agent
