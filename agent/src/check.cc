#include "edge/agent/check.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <exception>
#include <string_view>
#include <vector>

#include "edge/agent/config.h"
#include "edge/rules/policy.h"
#include "edge/rules/yaml_document.h"

namespace edge::agent {
namespace {

// Whether the text looks like a policy: a top-level `rules` key. When the YAML does not
// parse, the text is scanned for a `rules:` line or a quoted "rules" key instead, so a
// broken policy still gets the policy parser's error message.
bool LooksLikePolicy(const std::string& text) {
  try {
    // Never YAML::LoadAll: see edge/rules/yaml_document.h.
    auto docs = rules::CountYamlDocuments(text, "");
    if (docs.ok() && docs->count >= 1) {
      const YAML::Node root = YAML::Load(text);
      return root.IsMap() && static_cast<bool>(root["rules"]);
    }
    if (docs.ok()) return false;
  } catch (const std::exception&) {
    // Not valid YAML: fall back to the text heuristic below.
  }
  if (text.rfind("rules:", 0) == 0 || text.find("\nrules:") != std::string::npos) return true;
  return text.find("\"rules\"") != std::string::npos;
}

}  // namespace

CheckOutcome CheckFile(const std::string& path) {
  const size_t max_bytes = std::max(kMaxConfigBytes, rules::kMaxPolicyBytes);
  Result<std::string> text = ReadTextFile(path, max_bytes);
  if (!text.ok()) return CheckOutcome{false, "config", text.error()};

  if (LooksLikePolicy(*text)) {
    Result<rules::Policy> policy = rules::ParsePolicy(*text, path);
    if (!policy.ok()) return CheckOutcome{false, "policy", policy.error()};
    return CheckOutcome{true, "policy", path + ": ok (policy)"};
  }

  Result<Config> config = ParseConfig(*text, path);
  if (!config.ok()) return CheckOutcome{false, "config", config.error()};
  // node_id normally comes from the environment (the Kubernetes node name).
  if (config->node_id.empty()) config->node_id = "node";
  if (Status s = Validate(*config); !s.ok()) {
    return CheckOutcome{false, "config", path + ": " + s.message()};
  }
  return CheckOutcome{true, "config", path + ": ok (config)"};
}

}  // namespace edge::agent
