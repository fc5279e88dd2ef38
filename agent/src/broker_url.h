#pragma once

// The MQTT broker URL: tcp:// or mqtt:// (port 1883 by default), ssl:// or mqtts:// (TLS, port
// 8883 by default), then HOST[:PORT] or [V6][:PORT] and at most a trailing "/". Pure.

#include <string_view>

#include "edge/common/status.h"
#include "edge/common/url.h"

namespace edge::agent {

struct BrokerUrl {
  bool tls = false;  // ssl:// or mqtts://
  Url url;           // scheme as written (lower case), port defaulted
};

// Errors are edge::ParseUrl's, naming the "broker URL"; `refused` (optional) receives the part
// at fault.
Result<BrokerUrl> ParseBrokerUrl(std::string_view text, UrlPart* refused = nullptr);

}  // namespace edge::agent
