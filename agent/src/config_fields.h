#pragma once

// The agent configuration's key table: every key with its environment variable, default,
// help text and setter. The one place that lists the keys; YAML, environment, --set and
// --help all go through it.

#include <string_view>
#include <vector>

#include "edge/agent/config.h"
#include "edge/common/status.h"

namespace edge::agent::config_internal {

using Setter = Status (*)(Config&, std::string_view);

struct Field {
  ConfigKey doc;
  Setter set;
  bool accepts_list;  // a YAML sequence is allowed (mqtt.topics)
};

// Every key, in the order --help lists them.
const std::vector<Field>& Fields();

// The field for `key` ("mqtt.url"), or nullptr.
const Field* FindField(std::string_view key);

}  // namespace edge::agent::config_internal
