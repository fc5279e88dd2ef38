#pragma once

// The client TLS context of every connection the agent opens: to the console (uplink,
// policy channel) and to the MQTT broker (the native client).

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::cloudsync {

// Peer verification against ca_file, or against the system trust store when ca_file is
// empty; TLS 1.2 or newer. With cert_file (a PEM chain, the client's certificate first)
// and key_file (its PEM private key), the client proves who it is to a server that asks.
// The files are read here: a caller that makes a context per connection picks up renewed
// certificates at the next connection.
Result<std::unique_ptr<boost::asio::ssl::context>> MakeTlsContext(const std::string& ca_file,
                                                                  const std::string& cert_file = "",
                                                                  const std::string& key_file = "");

// MakeTlsContext, or after logging "<who>: <error>" a context that still verifies peers and
// trusts nothing, so every handshake fails and is retried (the cause was logged).
std::unique_ptr<boost::asio::ssl::context> TlsContextOrRefuseAll(std::string_view who,
                                                                 const std::string& ca_file,
                                                                 const std::string& cert_file = "",
                                                                 const std::string& key_file = "");

}  // namespace edge::cloudsync
