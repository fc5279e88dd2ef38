#pragma once

// The client TLS context of every connection the agent opens: to the console (uplink,
// policy channel) and to the MQTT broker (the native client).

#include <array>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::cloudsync {

// The files a client TLS context is made from.
struct TlsFiles {
  std::string ca_file;    // PEM CA bundle that verifies the server; empty: the system store
  std::string cert_file;  // client certificate (PEM chain, its own first); empty: none
  std::string key_file;   // its PEM private key; set with cert_file
};

// Peer verification against ca_file, or against the system trust store when ca_file is
// empty; TLS 1.2 or newer. With cert_file and key_file the client proves who it is to a
// server that asks. The files are read here: the clients make a context per connection, so
// renewed certificates take effect at the next connection.
Result<std::unique_ptr<boost::asio::ssl::context>> MakeTlsContext(const TlsFiles& files);

// MakeTlsContext, or after logging "<who>: <error>" a context that still verifies peers and
// trusts nothing, so every handshake fails and is retried (the cause was logged).
std::unique_ptr<boost::asio::ssl::context> TlsContextOrRefuseAll(std::string_view who,
                                                                 const TlsFiles& files);

// The context a client's connections use: made from `files` at the first Get(), and made
// again only when one of the files changed (inode, size or modification time), so that a
// renewed certificate takes effect at the next connection without the files being read
// for every connection. A connection keeps the context it was made with. Thread-safe.
class TlsContextSource {
 public:
  TlsContextSource(std::string who, TlsFiles files)
      : who_(std::move(who)), files_(std::move(files)) {}
  std::shared_ptr<boost::asio::ssl::context> Get();

 private:
  struct Stamp {
    unsigned long inode = 0;
    long long size = -1;
    long long mtime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  std::array<Stamp, 3> StampFiles() const;  // ca, cert, key; a missing file stamps as -1

  const std::string who_;
  const TlsFiles files_;
  std::mutex mu_;
  std::array<Stamp, 3> stamps_;                         // guarded by mu_
  std::shared_ptr<boost::asio::ssl::context> context_;  // guarded by mu_
};

}  // namespace edge::cloudsync
