#include "edge/rules/policy.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "edge/rules/duration.h"
#include "edge/rules/pattern.h"
#include "edge/rules/yaml_document.h"

namespace edge::rules {
namespace {

constexpr int64_t kMaxContext = 1000;

// The rule kinds are listed once, in kKindTable below; these read it.
struct KindEntry;
// The kind called `name`; nullptr for any other name.
const KindEntry* FindKind(std::string_view name);
// "threshold, rate, ...": the kind names, for error messages.
std::string KindNames();
// RuleSpec::cooldown_ms of a rule of `kind` that has no `cooldown` key.
int64_t DefaultCooldownMs(const KindEntry& kind);
// The `kind` name of the rule kind whose params are P.
template <typename P>
constexpr std::string_view KindName();

constexpr const char* kCommonKeys = "id, match, kind, severity, cooldown";
constexpr int64_t kMaxMinSamples = 1'000'000;

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
        Result<int64_t> n = Integer(e, 0, kMaxContext);
        if (!n.ok()) return n.status();
        policy.context_size = static_cast<size_t>(*n);
      } else if (e.key == "filters") {
        if (!e.value.IsSequence()) return ValueError(e, "'filters' must be a list");
        for (const YAML::Node& item : e.value) {
          Result<FilterSpec> filter = ParseFilter(item);
          if (!filter.ok()) return filter.status();
          policy.filters.push_back(std::move(*filter));
        }
      } else if (e.key == "rules") {
        if (!e.value.IsSequence()) return ValueError(e, "'rules' must be a list");
        for (const YAML::Node& item : e.value) {
          Result<RuleSpec> rule = ParseRule(item);
          if (!rule.ok()) return rule.status();
          policy.rules.push_back(std::move(*rule));
        }
        have_rules = true;
      } else {
        return Error(
            e.key_node.Mark(),
            "unknown key '" + e.key + "' in policy (expected version, context, filters, rules)");
      }
    }
    if (!have_rules) return Error(root.Mark(), "policy has no 'rules' key");
    return policy;
  }

  // The params of kind P, read from a rule's own keys by the ParseKind overload for P.
  template <typename P>
  Result<RuleParams> ParseAs(const YAML::Node& node, const std::vector<const Entry*>& rest) const {
    P params;
    if (Status st = ParseKind(node, rest, params); !st.ok()) return st;
    return RuleParams(std::move(params));
  }

 private:
  static bool ValidId(const std::string& id) {
    if (id.empty()) return false;
    for (const char c : id) {
      const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-';
      if (!ok) return false;
    }
    return true;
  }

  // The one of `values` whose ToString is `e`'s value; `what` names the key in the error.
  template <typename E>
  Result<E> ParseEnum(const Entry& e, std::string_view what,
                      std::initializer_list<E> values) const {
    Result<std::string> s = String(e);
    if (!s.ok()) return s.status();
    std::string expected;
    for (const E value : values) {
      if (*s == ToString(value)) return value;
      expected += (expected.empty() ? "" : ", ") + std::string(ToString(value));
    }
    return ValueError(e,
                      "unknown " + std::string(what) + " '" + *s + "' (expected " + expected + ")");
  }

  // An integer in [lo, hi].
  Result<int64_t> Integer(const Entry& e, int64_t lo, int64_t hi) const {
    const std::string bad = "'" + e.key + "' must be an integer from " + std::to_string(lo) +
                            " to " + std::to_string(hi);
    if (!e.value.IsScalar() || e.value.Tag() != "?") return ValueError(e, bad);
    const std::string& text = e.value.Scalar();
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n < lo || n > hi) {
      return ValueError(e, bad);
    }
    return n;
  }

  Status UnknownKey(const Entry& e, std::string_view what, std::string_view keys) const {
    return Error(e.key_node.Mark(), "unknown key '" + e.key + "' in " + std::string(what) +
                                        " (expected " + std::string(keys) + ")");
  }

  Result<std::string> Pattern(const Entry& e) const {
    Result<std::string> s = String(e);
    if (!s.ok()) return s.status();
    if (Status st = ValidatePattern(*s); !st.ok()) return ValueError(e, st.message());
    return s;
  }

  // Reads a number into `out`; the Status says whether it worked.
  Status Read(const Entry& e, double& out) const {
    Result<double> v = Number(e);
    if (!v.ok()) return v.status();
    out = *v;
    return Status::Ok();
  }
  Status Read(const Entry& e, std::optional<double>& out) const {
    double v = 0;
    if (Status st = Read(e, v); !st.ok()) return st;
    out = v;
    return Status::Ok();
  }
  Status ReadDuration(const Entry& e, int64_t& out) const {
    Result<int64_t> ms = Duration(e);
    if (!ms.ok()) return ms.status();
    out = *ms;
    return Status::Ok();
  }

  // A key a mapping may hold and how its value is read; `read` returns what went wrong.
  struct Key {
    std::string_view name;
    std::function<Status(const Entry&)> read;
  };

  // A number key read into `out`; `at`, when given, is set to the entry it was read from.
  template <typename T>
  Key NumberKey(std::string_view name, T& out, const Entry** at = nullptr) const {
    return {name, [this, &out, at](const Entry& e) {
              if (at != nullptr) *at = &e;
              return Read(e, out);
            }};
  }
  // A duration key read into `out` (milliseconds); `at` as for NumberKey.
  Key DurationKey(std::string_view name, int64_t& out, const Entry** at = nullptr) const {
    return {name, [this, &out, at](const Entry& e) {
              if (at != nullptr) *at = &e;
              return ReadDuration(e, out);
            }};
  }
  // `key`, then a check of what it read, before any later key is read: `valid()` false is an
  // error at the value saying `message`. A valid entry is appended to `seen` when given.
  Key Checked(Key key, std::function<bool()> valid, std::string message,
              std::vector<const Entry*>* seen = nullptr) const {
    return {key.name, [this, key, valid = std::move(valid), message = std::move(message),
                       seen](const Entry& e) {
              if (Status st = key.read(e); !st.ok()) return st;
              if (!valid()) return ValueError(e, message);
              if (seen != nullptr) seen->push_back(&e);
              return Status::Ok();
            }};
  }

  // Reads each entry with the Key of its name. Any other key is an error in `what` that lists
  // `other_keys` (the keys the caller read itself), then the names of `keys`, in order.
  Status ReadKeys(const std::vector<const Entry*>& entries, std::string_view what,
                  std::string_view other_keys, std::initializer_list<Key> keys) const {
    for (const Entry* e : entries) {
      const auto key =
          std::find_if(keys.begin(), keys.end(), [e](const Key& k) { return k.name == e->key; });
      if (key == keys.end()) {
        std::string expected(other_keys);
        for (const Key& k : keys) {
          if (!expected.empty()) expected += ", ";
          expected += k.name;
        }
        return UnknownKey(*e, what, expected);
      }
      if (Status st = key->read(*e); !st.ok()) return st;
    }
    return Status::Ok();
  }

  // Checks that `max` is greater than `min` where both are set; the error points at `max_at`.
  Status CheckMinBelowMax(const std::optional<double>& min, const std::optional<double>& max,
                          const Entry* max_at) const {
    if (min && max && *max <= *min) return ValueError(*max_at, "'max' must be greater than 'min'");
    return Status::Ok();
  }

  Result<FilterSpec> ParseFilter(const YAML::Node& node) const {
    Result<std::vector<Entry>> entries = Entries(node, "filter");
    if (!entries.ok()) return entries.status();
    FilterSpec f;
    bool have_match = false;
    for (const Entry& e : *entries) {
      Status st = Status::Ok();
      if (e.key == "match") {
        Result<std::string> m = Pattern(e);
        if (!m.ok()) return m.status();
        f.match = std::move(*m);
        have_match = true;
      } else if (e.key == "valid_range") {
        Result<std::vector<Entry>> range = Entries(e.value, "'valid_range'");
        if (!range.ok()) return range.status();
        std::vector<const Entry*> range_entries;
        for (const Entry& r : *range) range_entries.push_back(&r);
        const Entry* max_entry = nullptr;
        st = ReadKeys(range_entries, "valid_range", "",
                      {NumberKey("min", f.valid_min), NumberKey("max", f.valid_max, &max_entry)});
        if (!st.ok()) return st;
        if (!f.valid_min && !f.valid_max)
          return ValueError(e, "'valid_range' needs 'min' or 'max'");
        st = CheckMinBelowMax(f.valid_min, f.valid_max, max_entry);
      } else if (e.key == "deadband") {
        st = Read(e, f.deadband);
        if (st.ok() && f.deadband < 0) return ValueError(e, "'deadband' must not be negative");
      } else if (e.key == "downsample") {
        st = ReadDuration(e, f.downsample_ms);
      } else {
        st = UnknownKey(e, "filter", "match, valid_range, deadband, downsample");
      }
      if (!st.ok()) return st;
    }
    if (!have_match) return Error(node.Mark(), "filter has no 'match'");
    return f;
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
    const KindEntry* kind_entry = FindKind(*kind_name);
    if (kind_entry == nullptr) {
      return ValueError(*kind, "unknown kind '" + *kind_name + "' (expected " + KindNames() + ")");
    }

    RuleSpec rule;
    const Entry* id = nullptr;
    bool have_match = false;
    bool have_cooldown = false;
    std::vector<const Entry*> rest;  // the kind's own keys
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
        Result<std::string> m = Pattern(e);
        if (!m.ok()) return m.status();
        rule.match = std::move(*m);
        have_match = true;
      } else if (e.key == "severity") {
        Result<Severity> sev =
            ParseEnum(e, "severity", {Severity::kInfo, Severity::kWarning, Severity::kCritical});
        if (!sev.ok()) return sev.status();
        rule.severity = *sev;
      } else if (e.key == "cooldown") {
        if (Status st = ReadDuration(e, rule.cooldown_ms); !st.ok()) return st;
        have_cooldown = true;
      } else {
        rest.push_back(&e);
      }
    }

    Result<RuleParams> params = ParseParams(*kind_entry, node, rest);
    if (!params.ok()) return params.status();
    if (id == nullptr) return Error(node.Mark(), "rule has no 'id'");
    if (!have_match) return Error(node.Mark(), "rule '" + rule.id + "' has no 'match'");
    rule.params = std::move(*params);
    if (!have_cooldown) rule.cooldown_ms = DefaultCooldownMs(*kind_entry);

    const auto [it, inserted] = rule_ids_.emplace(rule.id, id->value.Mark().line + 1);
    if (!inserted) {
      return ValueError(*id, "duplicate rule id '" + rule.id + "' (first at line " +
                                 std::to_string(it->second) + ")");
    }
    return rule;
  }

  // ReadKeys for the keys of rule kind P (the common rule keys are read by ParseRule).
  template <typename P>
  Status ReadRuleKeys(const std::vector<const Entry*>& rest,
                      std::initializer_list<Key> keys) const {
    return ReadKeys(rest, std::string(KindName<P>()) + " rule", kCommonKeys, keys);
  }

  // Checks a key rule kind P needs, whose value must be greater than 0: `at` is where it was
  // read (nullptr: missing, an error at the rule's `node`), `value` what was read.
  template <typename P, typename T>
  Status NeedPositive(const YAML::Node& node, std::string_view key, const Entry* at,
                      T value) const {
    if (at == nullptr) {
      return Error(node.Mark(),
                   std::string(KindName<P>()) + " rule needs '" + std::string(key) + "'");
    }
    if (value <= 0) return ValueError(*at, "'" + std::string(key) + "' must be greater than 0");
    return Status::Ok();
  }

  // The params of `kind`, read from the rule's own keys (`rest`).
  Result<RuleParams> ParseParams(const KindEntry& kind, const YAML::Node& node,
                                 const std::vector<const Entry*>& rest) const;

  Status ParseKind(const YAML::Node& node, const std::vector<const Entry*>& rest,
                   ThresholdParams& p) const {
    const Entry* below = nullptr;
    const Entry* clear = nullptr;
    if (Status st = ReadRuleKeys<ThresholdParams>(
            rest, {NumberKey("above", p.above), NumberKey("below", p.below, &below),
                   NumberKey("clear", p.clear, &clear), DurationKey("for", p.for_ms)});
        !st.ok()) {
      return st;
    }
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

  Status ParseKind(const YAML::Node& node, const std::vector<const Entry*>& rest,
                   RateParams& p) const {
    const Entry* window = nullptr;
    const Entry* max_rate = nullptr;
    const Key direction{"direction", [this, &p](const Entry& e) -> Status {
                          Result<Direction> d = ParseEnum(
                              e, "direction", {Direction::kUp, Direction::kDown, Direction::kBoth});
                          if (!d.ok()) return d.status();
                          p.direction = *d;
                          return Status::Ok();
                        }};
    if (Status st = ReadRuleKeys<RateParams>(rest, {DurationKey("window", p.window_ms, &window),
                                                    NumberKey("max_rate", p.max_rate, &max_rate),
                                                    direction, DurationKey("for", p.for_ms)});
        !st.ok()) {
      return st;
    }
    if (Status st = NeedPositive<RateParams>(node, "window", window, p.window_ms); !st.ok()) {
      return st;
    }
    return NeedPositive<RateParams>(node, "max_rate", max_rate, p.max_rate);
  }

  Status ParseKind(const YAML::Node& node, const std::vector<const Entry*>& rest,
                   ZScoreParams& p) const {
    std::vector<const Entry*> baselines;  // window, alpha, half_life: exactly one
    const Key min_samples{"min_samples", [this, &p](const Entry& e) -> Status {
                            Result<int64_t> n = Integer(e, 2, kMaxMinSamples);
                            if (!n.ok()) return n.status();
                            p.min_samples = *n;
                            return Status::Ok();
                          }};
    if (Status st = ReadRuleKeys<ZScoreParams>(
            rest,
            {Checked(
                 DurationKey("window", p.window_ms), [&p] { return p.window_ms > 0; },
                 "'window' must be greater than 0", &baselines),
             Checked(
                 NumberKey("alpha", p.alpha), [&p] { return p.alpha > 0 && p.alpha <= 1; },
                 "'alpha' must be greater than 0 and at most 1", &baselines),
             Checked(
                 DurationKey("half_life", p.half_life_ms), [&p] { return p.half_life_ms > 0; },
                 "'half_life' must be greater than 0", &baselines),
             Checked(
                 NumberKey("z", p.z), [&p] { return p.z > 0; }, "'z' must be greater than 0"),
             min_samples, DurationKey("for", p.for_ms)});
        !st.ok()) {
      return st;
    }
    if (baselines.empty()) {
      return Error(node.Mark(), "zscore rule needs one of 'window', 'alpha' or 'half_life'");
    }
    if (baselines.size() > 1) {
      return Error(baselines[1]->key_node.Mark(),
                   "zscore rule takes only one of 'window', 'alpha' or 'half_life'");
    }
    return Status::Ok();
  }

  Status ParseKind(const YAML::Node& node, const std::vector<const Entry*>& rest,
                   StaleParams& p) const {
    const Entry* after = nullptr;
    if (Status st = ReadRuleKeys<StaleParams>(rest, {DurationKey("after", p.after_ms, &after)});
        !st.ok()) {
      return st;
    }
    return NeedPositive<StaleParams>(node, "after", after, p.after_ms);
  }

  Status ParseKind(const YAML::Node& node, const std::vector<const Entry*>& rest,
                   FlatlineParams& p) const {
    const Entry* window = nullptr;
    if (Status st = ReadRuleKeys<FlatlineParams>(
            rest, {DurationKey("window", p.window_ms, &window),
                   Checked(
                       NumberKey("epsilon", p.epsilon), [&p] { return p.epsilon >= 0; },
                       "'epsilon' must not be negative")});
        !st.ok()) {
      return st;
    }
    return NeedPositive<FlatlineParams>(node, "window", window, p.window_ms);
  }

  Status ParseKind(const YAML::Node& node, const std::vector<const Entry*>& rest,
                   RangeParams& p) const {
    const Entry* max = nullptr;
    if (Status st = ReadRuleKeys<RangeParams>(
            rest,
            {NumberKey("min", p.min), NumberKey("max", p.max, &max), DurationKey("for", p.for_ms)});
        !st.ok()) {
      return st;
    }
    if (!p.min && !p.max) return Error(node.Mark(), "range rule needs 'min' or 'max'");
    return CheckMinBelowMax(p.min, p.max, max);
  }

  Status ParseKind(const YAML::Node&, const std::vector<const Entry*>& rest,
                   AnomalyParams& p) const {
    return ReadRuleKeys<AnomalyParams>(
        rest,
        {Checked(
             NumberKey("sensitivity", p.sensitivity),
             [&p] { return p.sensitivity >= kMinSensitivity && p.sensitivity <= kMaxSensitivity; },
             "'sensitivity' must be from 0.1 to 10"),
         DurationKey("for", p.for_ms)});
  }

  const std::string& source_name_;
  std::map<std::string, int> rule_ids_;  // id -> 1-based line of its first definition
};

// Index of P among the alternatives of RuleParams; P must be one of them.
template <typename P, size_t I = 0>
constexpr size_t IndexInRuleParams() {
  if constexpr (std::is_same_v<std::variant_alternative_t<I, RuleParams>, P>) {
    return I;
  } else {
    return IndexInRuleParams<P, I + 1>();
  }
}

struct KindEntry {
  std::string_view name;  // the `kind` key's value
  size_t index;           // of the kind's params in RuleParams
  Result<RuleParams> (PolicyParser::*parse)(const YAML::Node&,
                                            const std::vector<const Entry*>&) const;
  int64_t default_cooldown_ms;  // RuleSpec::cooldown_ms when the rule has no `cooldown`
};

template <typename P>
constexpr KindEntry Kind(std::string_view name, int64_t default_cooldown_ms = 0) {
  return {name, IndexInRuleParams<P>(), &PolicyParser::ParseAs<P>, default_cooldown_ms};
}

// The rule kinds: the one list of them, in RuleParams order. The parser, its error messages
// and RuleSpec::Kind() read it; a name that is not here is an error, never a fallback kind. A
// new kind is a params struct in RuleParams, a ParseKind overload and an entry here (and,
// in detector.cc, its overload set): the compiler refuses a kind with a piece missing.
constexpr std::array kKindTable = {
    Kind<ThresholdParams>("threshold"),
    Kind<RateParams>("rate"),
    Kind<ZScoreParams>("zscore"),
    Kind<StaleParams>("stale"),
    Kind<FlatlineParams>("flatline"),
    Kind<RangeParams>("range"),
    Kind<AnomalyParams>("anomaly", kAnomalyCooldownMs),
};

constexpr bool EveryKindOnceInOrder() {
  if (kKindTable.size() != std::variant_size_v<RuleParams>) return false;
  for (size_t i = 0; i < kKindTable.size(); ++i) {
    if (kKindTable[i].index != i) return false;
  }
  return true;
}
static_assert(EveryKindOnceInOrder(),
              "kKindTable lists each RuleParams alternative once, in order");

template <typename P>
constexpr std::string_view KindName() {
  return kKindTable[IndexInRuleParams<P>()].name;
}

const KindEntry* FindKind(std::string_view name) {
  for (const KindEntry& kind : kKindTable) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

int64_t DefaultCooldownMs(const KindEntry& kind) { return kind.default_cooldown_ms; }

std::string KindNames() {
  std::string names;
  for (const KindEntry& kind : kKindTable) {
    if (!names.empty()) names += ", ";
    names += kind.name;
  }
  return names;
}

Result<RuleParams> PolicyParser::ParseParams(const KindEntry& kind, const YAML::Node& node,
                                             const std::vector<const Entry*>& rest) const {
  return (this->*kind.parse)(node, rest);
}

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

std::string_view RuleSpec::Kind() const {
  return std::visit([](const auto& p) { return KindName<std::decay_t<decltype(p)>>(); }, params);
}

std::optional<size_t> RuleKindIndex(std::string_view name) {
  const KindEntry* kind = FindKind(name);
  if (kind == nullptr) return std::nullopt;
  return kind->index;
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
