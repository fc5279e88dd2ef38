#pragma once

// Process-wide logging setup: one JSON object per line on stdout
// ({"ts":"2026-11-26T14:03:07.123456Z","level":"info","msg":"..."}, UTC, microseconds),
// which is what log collectors on Kubernetes nodes parse without configuration.
// `json=false` gives plain text for interactive use.

#include <string>

#include "edge/common/status.h"

namespace edge::agent {

// level: trace|debug|info|warn|error|critical|off.
Status SetupLogging(const std::string& level, bool json = true);

}  // namespace edge::agent
