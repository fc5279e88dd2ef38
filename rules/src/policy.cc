#include "edge/rules/policy.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <exception>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "edge/rules/duration.h"
#include "edge/rules/pattern.h"
#include "edge/rules/yaml_document.h"

namespace edge::rules {
namespace {

constexpr int64_t kMaxContext = 1000;

// One overload per RuleParams alternative; a kind without one does not compile.
std::string_view KindName(const ThresholdParams&) { return "threshold"; }

// One key/value pair of a YAML mapping, with the key already read as text.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// Parses one document; every check reports the position of the node it rejects. Errors are
// returned, not thrown; yaml-cpp's own exceptions are converted by ParsePolicy.
class PolicyParser {
 public:
  explicit PolicyParser(const std::string& source_name) : source_name_(source_name) {}

  Status Error(const YAML::Mark& mark, const std::string& message) const {
    // yaml-cpp marks are 0-based; nodes it did not place carry -1.
    const int line = mark.line < 0 ? 1 : mark.line + 1;
    const int column = mark.column < 0 ? 1 : mark.column + 1;
    return Status::Error(source_name_ + ":" + std::to_string(line) + ":" + std::to_string(column) +
                         ": " + message);
  }

  // An empty value (`key:` with nothing after it) gets a mark on the following token, so
  // errors about a missing value point at its key instead.
  Status ValueError(const Entry& e, const std::string& message) const {
    return Error(e.value.IsNull() ? e.key_node.Mark() : e.value.Mark(), message);
  }

  Result<std::vector<Entry>> Entries(const YAML::Node& map, const std::string& what) const {
    if (!map.IsMap()) return Error(map.Mark(), what + " must be a mapping");
    std::vector<Entry> entries;
    std::unordered_map<std::string, size_t> index;  // key -> position in entries
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) return Error(kv.first.Mark(), "keys must be strings");
      const std::string& key = kv.first.Scalar();
      const auto [it, inserted] = index.emplace(key, entries.size());
      if (!inserted) {
        const int first_line = entries[it->second].key_node.Mark().line + 1;
        return Error(kv.first.Mark(), "duplicate key '" + key + "' in " + what +
                                          " (first at line " + std::to_string(first_line) + ")");
      }
      entries.push_back(Entry{key, kv.first, kv.second});
    }
    return entries;
  }

  Result<std::string> String(const Entry& e) const {
    if (!e.value.IsScalar()) return ValueError(e, "'" + e.key + "' must be a string");
    return e.value.Scalar();
  }

  // Numbers are plain (unquoted) scalars in decimal notation, finite.
  Result<double> Number(const Entry& e) const {
    if (!e.value.IsScalar() || e.value.Tag() != "?") {
      return ValueError(e, "'" + e.key + "' must be a number");
    }
    std::string_view text = e.value.Scalar();
    if (text.size() > 1 && text[0] == '+' && text[1] != '-') text.remove_prefix(1);
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
      return ValueError(e, "'" + e.key + "' must be a number, got '" + e.value.Scalar() + "'");
    }
    return v;
  }

  Result<int64_t> Duration(const Entry& e) const {
    if (!e.value.IsScalar()) return ValueError(e, "'" + e.key + "' must be a duration");
    Result<int64_t> ms = ParseDuration(e.value.Scalar());
    if (!ms.ok()) return ValueError(e, "'" + e.key + "': " + ms.error());
    return ms;
  }

  Result<Policy> ParseRoot(const YAML::Node& root) {
    Result<std::vector<Entry>> entries = Entries(root, "policy");
    if (!entries.ok()) return entries.status();
    Policy policy;
    bool have_rules = false;
    for (const Entry& e : *entries) {
      if (e.key == "version") {
        if (!e.value.IsScalar()) return ValueError(e, "'version' must be a string or number");
        policy.version = e.value.Scalar();
      } else if (e.key == "context") {
        Result<size_t> n = ContextSize(e);
        if (!n.ok()) return n.status();
        policy.context_size = *n;
      } else if (e.key == "rules") {
        if (!e.value.IsSequence()) return ValueError(e, "'rules' must be a list");
        for (const YAML::Node& item : e.value) {
          Result<RuleSpec> rule = ParseRule(item);
          if (!rule.ok()) return rule.status();
          policy.rules.push_back(std::move(*rule));
        }
        have_rules = true;
      } else {
        return Error(e.key_node.Mark(),
                     "unknown key '" + e.key + "' in policy (expected version, context, rules)");
      }
    }
    if (!have_rules) return Error(root.Mark(), "policy has no 'rules' key");
    return policy;
  }

 private:
  Result<size_t> ContextSize(const Entry& e) const {
    const std::string bad = "'context' must be an integer from 0 to " + std::to_string(kMaxContext);
    if (!e.value.IsScalar() || e.value.Tag() != "?") return ValueError(e, bad);
    const std::string& text = e.value.Scalar();
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n < 0 || n > kMaxContext) {
      return ValueError(e, bad);
    }
    return static_cast<size_t>(n);
  }

  static bool ValidId(const std::string& id) {
    if (id.empty()) return false;
    for (const char c : id) {
      const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-';
      if (!ok) return false;
    }
    return true;
  }

  Result<Severity> ParseSeverity(const Entry& e) const {
    Result<std::string> s = String(e);
    if (!s.ok()) return s.status();
    for (const Severity sev : {Severity::kInfo, Severity::kWarning, Severity::kCritical}) {
      if (*s == ToString(sev)) return sev;
    }
    return ValueError(e, "unknown severity '" + *s + "' (expected info, warning, critical)");
  }

  Result<RuleSpec> ParseRule(const YAML::Node& node) {
    Result<std::vector<Entry>> entries = Entries(node, "rule");
    if (!entries.ok()) return entries.status();

    // The kind decides which other keys are allowed, so it is read first.
    const Entry* kind = nullptr;
    for (const Entry& e : *entries) {
      if (e.key == "kind") kind = &e;
    }
    if (kind == nullptr) return Error(node.Mark(), "rule has no 'kind'");
    Result<std::string> kind_name = String(*kind);
    if (!kind_name.ok()) return kind_name.status();
    if (*kind_name != "threshold") {
      return ValueError(*kind, "unknown kind '" + *kind_name + "' (expected threshold)");
    }

    RuleSpec rule;
    const Entry* id = nullptr;
    bool have_match = false;
    ThresholdParams threshold;
    const Entry* below = nullptr;
    const Entry* clear = nullptr;
    for (const Entry& e : *entries) {
      if (e.key == "kind") continue;
      if (e.key == "id") {
        Result<std::string> s = String(e);
        if (!s.ok()) return s.status();
        if (!ValidId(*s)) {
          return ValueError(e, "invalid rule id '" + *s + "' (allowed: letters, digits, _ . -)");
        }
        rule.id = std::move(*s);
        id = &e;
      } else if (e.key == "match") {
        Result<std::string> s = String(e);
        if (!s.ok()) return s.status();
        if (Status st = ValidatePattern(*s); !st.ok()) return ValueError(e, st.message());
        rule.match = std::move(*s);
        have_match = true;
      } else if (e.key == "severity") {
        Result<Severity> sev = ParseSeverity(e);
        if (!sev.ok()) return sev.status();
        rule.severity = *sev;
      } else if (e.key == "cooldown") {
        Result<int64_t> ms = Duration(e);
        if (!ms.ok()) return ms.status();
        rule.cooldown_ms = *ms;
      } else if (e.key == "for") {
        Result<int64_t> ms = Duration(e);
        if (!ms.ok()) return ms.status();
        threshold.for_ms = *ms;
      } else if (e.key == "above" || e.key == "below" || e.key == "clear") {
        Result<double> v = Number(e);
        if (!v.ok()) return v.status();
        if (e.key == "above") {
          threshold.above = *v;
        } else if (e.key == "below") {
          threshold.below = *v;
          below = &e;
        } else {
          threshold.clear = *v;
          clear = &e;
        }
      } else {
        return Error(e.key_node.Mark(),
                     "unknown key '" + e.key +
                         "' in threshold rule (expected id, match, kind, severity, cooldown, "
                         "above, below, clear, for)");
      }
    }
    if (id == nullptr) return Error(node.Mark(), "rule has no 'id'");
    if (!have_match) return Error(node.Mark(), "rule '" + rule.id + "' has no 'match'");
    if (Status st = CheckThreshold(node, threshold, below, clear); !st.ok()) return st;
    rule.params = threshold;

    const auto [it, inserted] = rule_ids_.emplace(rule.id, id->value.Mark().line + 1);
    if (!inserted) {
      return ValueError(*id, "duplicate rule id '" + rule.id + "' (first at line " +
                                 std::to_string(it->second) + ")");
    }
    return rule;
  }

  Status CheckThreshold(const YAML::Node& node, const ThresholdParams& p, const Entry* below,
                        const Entry* clear) const {
    if (!p.above && !p.below) return Error(node.Mark(), "threshold rule needs 'above' or 'below'");
    if (p.above && p.below && *p.below >= *p.above) {
      return ValueError(*below, "'below' must be less than 'above'");
    }
    if (p.clear) {
      if (p.above && p.below) {
        return ValueError(*clear, "'clear' needs exactly one of 'above' or 'below'");
      }
      if (p.above && *p.clear >= *p.above) {
        return ValueError(*clear, "'clear' must be less than 'above'");
      }
      if (p.below && *p.clear <= *p.below) {
        return ValueError(*clear, "'clear' must be greater than 'below'");
      }
    }
    return Status::Ok();
  }

  const std::string& source_name_;
  std::map<std::string, int> rule_ids_;  // id -> 1-based line of its first definition
};

// Requires exactly one document (see yaml_document.h for why LoadAll is not used).
Status CheckSingleDocument(const std::string& text, const PolicyParser& parser,
                           const std::string& source_name) {
  auto docs = CountYamlDocuments(text, source_name);
  if (!docs.ok()) return docs.status();
  if (docs->count == 0) return parser.Error(YAML::Mark(), "policy is empty");
  if (docs->count > 1) {
    YAML::Mark at;
    at.line = docs->second_line - 1;
    at.column = docs->second_column - 1;
    return parser.Error(at, "policy must be a single YAML document");
  }
  return Status::Ok();
}

}  // namespace

std::string_view ToString(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kCritical:
      return "critical";
  }
  return "unknown";
}

std::string_view RuleSpec::Kind() const {
  return std::visit([](const auto& p) { return KindName(p); }, params);
}

Result<Policy> ParsePolicy(std::string_view text, const std::string& source_name) {
  PolicyParser parser(source_name);
  if (text.size() > kMaxPolicyBytes) {
    return parser.Error(YAML::Mark(),
                        "policy is larger than " + std::to_string(kMaxPolicyBytes) + " bytes");
  }
  // yaml-cpp reports syntax errors (and nesting too deep to parse) by throwing; they become
  // ordinary errors here so that no exception leaves this function.
  try {
    const std::string owned(text);
    if (Status st = CheckSingleDocument(owned, parser, source_name); !st.ok()) return st;
    return parser.ParseRoot(YAML::Load(owned));
  } catch (const YAML::DeepRecursion& e) {
    return parser.Error(e.mark, "nesting too deep");
  } catch (const YAML::Exception& e) {
    return parser.Error(e.mark, e.msg);
  } catch (const std::exception& e) {
    return parser.Error(YAML::Mark(), std::string("cannot parse policy: ") + e.what());
  }
}

}  // namespace edge::rules
