#pragma once

// The running agent: wires config, store, ingest, pipeline, uplink and the HTTP endpoints
// together, runs until SIGTERM or SIGINT, then drains (stops ingest, commits what is queued,
// gives the uplink a last short attempt) and returns.

#include "edge/agent/config.h"

namespace edge::agent {

// Blocks until a termination signal. Returns the process exit code: 0 after a clean
// drain, 2 when startup failed (the reason is logged).
int RunAgent(const Config& config);

// Version string of this build.
const char* AgentVersion();

}  // namespace edge::agent
