#pragma once

// The policy model: a versioned list of alert rules, and its parser. The file format is
// documented in docs/policy.md. Value types only; parsing is pure and thread-safe.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "edge/common/status.h"

namespace edge::rules {

enum class Severity { kInfo, kWarning, kCritical };

// "info" | "warning" | "critical".
std::string_view ToString(Severity severity);

// `kind: threshold`. A reading is bad if value > above or value < below. Without `clear`, a
// firing alert resolves on the first reading that is not bad; with it, only once the value
// crosses the clear level (value <= clear for `above`, value >= clear for `below`).
struct ThresholdParams {
  std::optional<double> above;
  std::optional<double> below;
  int64_t for_ms = 0;  // the condition must hold this long (event time) before firing
  std::optional<double> clear;
  bool operator==(const ThresholdParams&) const = default;
};

// One alternative per rule kind.
using RuleParams = std::variant<ThresholdParams>;

struct RuleSpec {
  std::string id;     // [A-Za-z0-9_.-]+, unique within a policy
  std::string match;  // wildcard pattern over sensor ids, see pattern.h
  Severity severity = Severity::kWarning;
  int64_t cooldown_ms = 0;  // after a resolve, no new firing for this sensor+rule this long
  RuleParams params;

  // The `kind` key of the rule: "threshold", ...
  std::string_view Kind() const;
  bool operator==(const RuleSpec&) const = default;
};

struct Policy {
  std::string version;       // as written; empty if absent
  size_t context_size = 10;  // readings of context attached to each alert, 0..1000
  std::vector<RuleSpec> rules;
};

// Largest policy text ParsePolicy accepts.
inline constexpr size_t kMaxPolicyBytes = 1 << 20;

// Parses a policy written in YAML or JSON. Strict: an unknown key, a value of the wrong
// type, a bad duration, an unknown kind, an invalid pattern, a duplicate key or rule id, a
// threshold with neither `above` nor `below`, or a clear level on the wrong side is an
// error. The error message reads "<source_name>:<line>:<column>: <message>", with the
// 1-based position of the offending node. Never throws.
Result<Policy> ParsePolicy(std::string_view text, const std::string& source_name);

}  // namespace edge::rules
