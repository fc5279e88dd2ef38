#pragma once

// `edge-agent check FILE...`: validates a configuration or policy file without running
// anything. Never throws.

#include <string>

namespace edge::agent {

struct CheckOutcome {
  bool ok = false;
  std::string kind;     // "config" or "policy"; "config" when the file cannot be read
  std::string message;  // "<path>: ok (config)", or the error(s) as "<path>:line:col: ..."
};

// Reads `path` and decides what it is: YAML or JSON with a top-level `rules` key is a
// policy (checked with rules::ParsePolicy), anything else a configuration (ParseConfig,
// then Validate). The environment is not consulted, so a configuration without node_id
// passes: in a deployment it usually comes from EDGE_AGENT_NODE_ID.
CheckOutcome CheckFile(const std::string& path);

}  // namespace edge::agent
