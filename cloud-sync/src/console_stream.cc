#include "console_stream.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/error.hpp>

#include "client_common.h"

namespace edge::cloudsync::internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

asio::awaitable<std::string> ConsoleStream::Connect(const ConsoleUrl& url, SteadyTime deadline) {
  Reset();
  aborted_ = false;
  std::optional<tcp::resolver::results_type> endpoints;
  std::string error = co_await Resolve(url, deadline, endpoints);
  if (!endpoints) co_return error;
  if (aborted_) co_return "stopped";
  tcp_.emplace(ex_);
  tcp_->expires_after(Remaining(deadline));
  auto [ec, endpoint] = co_await tcp_->async_connect(*endpoints, kUseTuple);
  if (ec) {
    Reset();
    co_return "connect to " + url.HostHeader() + ": " + ec.message();
  }
  if (!url.tls) co_return std::string();
  if (tls_source_ == nullptr) {
    Reset();
    co_return "https requested but no TLS context";
  }
  tls_context_ = tls_source_->Get();

  tls_.emplace(std::move(*tcp_), *tls_context_);
  tcp_.reset();
  beast::error_code parse_ec;
  asio::ip::make_address(url.host, parse_ec);
  // SNI takes host names only, never address literals.
  if (parse_ec && !SSL_set_tlsext_host_name(tls_->native_handle(), url.host.c_str())) {
    Reset();
    co_return "TLS: cannot set server name";
  }
  tls_->set_verify_mode(asio::ssl::verify_peer);
  tls_->set_verify_callback(asio::ssl::host_name_verification(url.host));
  beast::get_lowest_layer(*tls_).expires_after(Remaining(deadline));
  auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kUseTuple);
  if (hec) {
    Reset();
    co_return "TLS handshake with " + url.HostHeader() + ": " + hec.message();
  }
  co_return std::string();
}

bool ConsoleStream::IsOpen() const {
  if (tls_) return beast::get_lowest_layer(*tls_).socket().is_open();
  return tcp_.has_value() && tcp_->socket().is_open();
}

TcpStream* ConsoleStream::Lowest() {
  if (tls_) return &beast::get_lowest_layer(*tls_);
  return tcp_ ? &*tcp_ : nullptr;
}

void ConsoleStream::Close() {
  aborted_ = true;
  if (resolve_wake_) resolve_wake_->cancel();
  if (TcpStream* lowest = Lowest(); lowest != nullptr) CloseSocket(*lowest);
}

void CloseSocket(TcpStream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close();
}

void ConsoleStream::Reset() {
  Close();
  tls_.reset();
  tcp_.reset();
}

// The coroutine waits on a timer that the lookup's completion cancels; the lookup state
// (and its resolver) lives as long as the lookup does, whatever happens to this object.
asio::awaitable<std::string> ConsoleStream::Resolve(
    const ConsoleUrl& url, SteadyTime deadline, std::optional<tcp::resolver::results_type>& out) {
  struct Lookup {
    explicit Lookup(const asio::any_io_executor& ex) : wake(ex), resolver(ex) {}
    asio::steady_timer wake;
    tcp::resolver resolver;
    bool done = false;
    beast::error_code ec;
    tcp::resolver::results_type results;
  };
  auto lookup = std::make_shared<Lookup>(ex_);
  lookup->wake.expires_at(deadline);
  resolve_wake_ = std::shared_ptr<asio::steady_timer>(lookup, &lookup->wake);
  lookup->resolver.async_resolve(
      url.host, std::to_string(url.port),
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

}  // namespace edge::cloudsync::internal
