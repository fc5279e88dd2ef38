#include "edge/cloudsync/tls_context.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/beast/core/error.hpp>

namespace edge::cloudsync {

namespace asio = boost::asio;

Result<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const TlsFiles& files) {
  const std::string& ca_file = files.ca_file;
  const std::string& cert_file = files.cert_file;
  const std::string& key_file = files.key_file;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::beast::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  if (!ec) ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (ec) return Status::Error("TLS setup: " + ec.message());
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status::Error("TLS: cannot load the system CA store: " + ec.message());
  } else {
    ctx->load_verify_file(ca_file, ec);
    if (ec) return Status::Error("TLS: cannot load CA file '" + ca_file + "': " + ec.message());
  }
  if (cert_file.empty() != key_file.empty()) {
    return Status::Error("TLS: a client certificate needs both a certificate and a key file");
  }
  if (!cert_file.empty()) {
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec) {
      return Status::Error("TLS: cannot load certificate file '" + cert_file +
                           "': " + ec.message());
    }
    ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
    if (ec) return Status::Error("TLS: cannot load key file '" + key_file + "': " + ec.message());
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return Status::Error("TLS: key file '" + key_file + "' does not match certificate '" +
                           cert_file + "'");
    }
  }
  return ctx;
}

std::unique_ptr<asio::ssl::context> TlsContextOrRefuseAll(std::string_view who,
                                                          const TlsFiles& files) {
  auto ctx = MakeTlsContext(files);
  if (ctx.ok()) return std::move(ctx.value());
  spdlog::error("{}: {}", who, ctx.error());
  auto fallback = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::beast::error_code ignored;
  fallback->set_verify_mode(asio::ssl::verify_peer, ignored);
  return fallback;
}

std::array<TlsContextSource::Stamp, 3> TlsContextSource::StampFiles() const {
  std::array<Stamp, 3> out;
  const std::string* paths[] = {&files_.ca_file, &files_.cert_file, &files_.key_file};
  for (size_t i = 0; i < out.size(); ++i) {
    struct stat st {};
    if (paths[i]->empty() || ::stat(paths[i]->c_str(), &st) != 0) continue;
    out[i] = {static_cast<unsigned long>(st.st_ino), static_cast<long long>(st.st_size),
              static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  }
  return out;
}

std::shared_ptr<asio::ssl::context> TlsContextSource::Get() {
  const std::array<Stamp, 3> now = StampFiles();
  std::lock_guard lock(mu_);
  if (context_ == nullptr || now != stamps_) {
    context_ = TlsContextOrRefuseAll(who_, files_);
    stamps_ = now;
  }
  return context_;
}

}  // namespace edge::cloudsync
