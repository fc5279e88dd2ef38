#include "edge/agent/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>

#include "config_fields.h"
#include "config_values.h"
#include "edge/cloudsync/policy_message.h"
#include "edge/common/files.h"
#include "edge/common/strings.h"
#include "edge/rules/duration.h"
#include "edge/rules/yaml_document.h"
#include "modbus_config.h"

namespace edge::agent {
namespace {

using config_internal::AssignTopicList;
using config_internal::CheckTopic;
using config_internal::Field;
using config_internal::Fields;
using config_internal::FindField;
using config_internal::Join;
using config_internal::Quoted;

// ---- "did you mean" ----

// Optimal string alignment distance, case-insensitive: a swapped pair costs one edit.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = AsciiLower(a[i - 1]) == AsciiLower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && AsciiLower(a[i - 1]) == AsciiLower(b[j - 2]) &&
          AsciiLower(a[i - 2]) == AsciiLower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// "unknown key 'qso' in 'mqtt' (did you mean 'qos'?)"; `section` may be empty.
std::string UnknownKey(std::string_view key, const std::vector<std::string>& candidates,
                       std::string_view section = {}) {
  std::string message = "unknown key " + Quoted(key);
  if (!section.empty()) message += " in " + Quoted(section);
  if (key.size() > 200) return message;  // not worth comparing
  const size_t limit = std::max<size_t>(1, (key.size() + 2) / 4);
  const std::string* best = nullptr;
  size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const size_t distance = EditDistance(key, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = &candidate;
    }
  }
  if (best != nullptr) message += " (did you mean " + Quoted(*best) + "?)";
  return message;
}

// Names directly under `section` ("" for the top level), in table order, without duplicates.
std::vector<std::string> NamesIn(std::string_view section) {
  std::vector<std::string> names;
  for (const Field& f : Fields()) {
    std::string_view key = f.doc.key;
    if (!section.empty()) {
      if (key.size() <= section.size() || key.substr(0, section.size()) != section ||
          key[section.size()] != '.') {
        continue;
      }
      key.remove_prefix(section.size() + 1);
    } else {
      key = key.substr(0, key.find('.'));
    }
    if (std::find(names.begin(), names.end(), key) == names.end()) names.emplace_back(key);
  }
  return names;
}

bool IsSection(std::string_view name) {
  for (const Field& f : Fields()) {
    const std::string_view key = f.doc.key;
    if (key.size() > name.size() && key.substr(0, name.size()) == name && key[name.size()] == '.') {
      return true;
    }
  }
  return false;
}

// ---- YAML ----

class YamlReader {
 public:
  YamlReader(const std::string& source, Config& config) : source_(source), config_(config) {}

  void Root(const YAML::Node& root) {
    if (root.IsNull()) return;
    if (!root.IsMap()) {
      Error(root.Mark(), "expected a mapping of configuration keys at the top level");
      return;
    }
    const std::vector<std::string> names = NamesIn("");
    std::set<std::string> seen;
    for (auto it = root.begin(); it != root.end(); ++it) {
      std::string name;
      if (!KeyName(it->first, seen, name)) continue;
      if (name == "modbus") {
        config_internal::ReadModbusSection(
            it->second, config_.modbus,
            [this](const YAML::Mark& mark, const std::string& message) { Error(mark, message); });
      } else if (const Field* field = FindField(name)) {
        Value(*field, it->first, it->second);
      } else if (IsSection(name)) {
        Section(name, it->second);
      } else {
        Error(it->first.Mark(), UnknownKey(name, names));
      }
    }
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  void Error(const YAML::Mark& mark, const std::string& message) {
    if (mark.is_null() || mark.line < 0 || mark.column < 0) {
      errors_.push_back(source_ + ": " + message);
    } else {
      errors_.push_back(source_ + ":" + std::to_string(mark.line + 1) + ":" +
                        std::to_string(mark.column + 1) + ": " + message);
    }
  }

  // Reads a mapping key as a plain name; reports non-scalar and repeated keys.
  bool KeyName(const YAML::Node& key, std::set<std::string>& seen, std::string& name) {
    if (!key.IsScalar()) {
      Error(key.Mark(), "a key must be a plain name");
      return false;
    }
    name = key.Scalar();
    if (!seen.insert(name).second) {
      Error(key.Mark(), "duplicate key " + Quoted(name));
      return false;
    }
    return true;
  }

  void Section(const std::string& section, const YAML::Node& value) {
    if (value.IsNull()) return;  // `mqtt:` with nothing under it keeps the defaults
    if (!value.IsMap()) {
      Error(value.Mark(), Quoted(section) + " must be a mapping of keys");
      return;
    }
    const std::vector<std::string> names = NamesIn(section);
    std::set<std::string> seen;
    for (auto it = value.begin(); it != value.end(); ++it) {
      std::string name;
      if (!KeyName(it->first, seen, name)) continue;
      if (const Field* field = FindField(section + "." + name)) {
        Value(*field, it->first, it->second);
      } else {
        Error(it->first.Mark(), UnknownKey(name, names, section));
      }
    }
  }

  void Value(const Field& field, const YAML::Node& key, const YAML::Node& value) {
    const std::string prefix = std::string(field.doc.key) + ": ";
    if (value.IsNull()) {
      // A key with nothing after it: an empty string where that is allowed. yaml-cpp puts
      // the mark of a missing value elsewhere, so errors point at the key.
      if (Status s = field.set(config_, ""); !s.ok()) Error(key.Mark(), prefix + "missing value");
      return;
    }
    if (value.IsScalar()) {
      if (Status s = field.set(config_, value.Scalar()); !s.ok()) {
        Error(value.Mark(), prefix + s.message());
      }
      return;
    }
    if (value.IsSequence() && field.accepts_list) {
      std::vector<std::string> items;
      for (const YAML::Node& item : value) {
        if (!item.IsScalar()) {
          Error(item.Mark(), prefix + "expected a list of strings");
          return;
        }
        if (Status s = CheckTopic(item.Scalar()); !s.ok()) {
          Error(item.Mark(), prefix + s.message());
          return;
        }
        items.push_back(item.Scalar());
      }
      if (Status s = AssignTopicList(std::move(items), config_); !s.ok()) {
        Error(value.Mark(), prefix + s.message());
      }
      return;
    }
    Error(value.Mark(), prefix + (value.IsSequence() ? "expected a single value, got a list"
                                                     : "expected a single value, got a mapping"));
  }

  const std::string& source_;
  Config& config_;
  std::vector<std::string> errors_;
};

std::string Position(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

Result<Config> ParseConfig(std::string_view yaml_text, const std::string& source_name) {
  Config config;
  try {
    // Never YAML::LoadAll: see edge/rules/yaml_document.h.
    const std::string text(yaml_text);
    auto documents = rules::CountYamlDocuments(text, source_name);
    if (!documents.ok()) return documents.status();
    if (documents->count > 1) {
      return Status::Error(source_name + ":" + std::to_string(documents->second_line) + ":" +
                           std::to_string(documents->second_column) +
                           ": expected one YAML document, found more");
    }
    if (documents->count == 0) return config;
    YamlReader reader(source_name, config);
    reader.Root(YAML::Load(text));
    if (!reader.errors().empty()) return Status::Error(Join(reader.errors(), "\n"));
  } catch (const YAML::Exception& e) {
    return Status::Error(Position(source_name, e.mark) + ": " + e.msg);
  } catch (const std::exception& e) {
    return Status::Error(source_name + ": " + e.what());
  }
  return config;
}

Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes) {
  Result<std::string> text = ReadFile(path, max_bytes);
  if (text.ok()) return text;
  if (text.status().code() == Status::Code::kFull) return Status::Error(path + ": " + text.error());
  // "cannot open: <why>" and "cannot read: <why>" both read "cannot read: <why>" here.
  const std::string& error = text.error();
  return Status::Error(path + ": cannot read: " + error.substr(error.find(": ") + 2));
}

Result<Config> LoadConfigFile(const std::string& path) {
  Result<std::string> text = ReadTextFile(path, kMaxConfigBytes);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path);
}

Status ApplyOverride(Config& c, std::string_view key, std::string_view value) {
  const Field* field = FindField(key);
  if (field == nullptr) {
    std::vector<std::string> keys;
    for (const Field& f : Fields()) keys.emplace_back(f.doc.key);
    return Status::Error(UnknownKey(key, keys));
  }
  if (Status s = field->set(c, value); !s.ok()) {
    return Status::Error(std::string(key) + ": " + s.message());
  }
  return Status::Ok();
}

Status ApplyEnvironment(
    Config& c, const std::function<std::optional<std::string>(const std::string&)>& getenv) {
  std::vector<std::string> errors;
  for (const Field& f : Fields()) {
    const std::string name(f.doc.env);
    const std::optional<std::string> value = getenv(name);
    if (!value) continue;
    if (Status s = f.set(c, *value); !s.ok()) errors.push_back(name + ": " + s.message());
  }
  if (!errors.empty()) return Status::Error(Join(errors, "; "));
  return Status::Ok();
}

std::vector<std::string> ConfigWarnings(const Config& c) {
  std::vector<std::string> warnings;
  if (IsCleartextRemoteUrl(c.console.url)) {
    warnings.push_back("console.url " + Quoted(c.console.url) +
                       " is http:// to a host off this node: the node token and alerts travel "
                       "in clear text; use https:// (console.require_tls: true refuses this)");
  }
  return warnings;
}

std::string MqttClientId(const Config& c) {
  return c.mqtt.client_id.empty() ? "edge-agent-" + c.node_id : c.mqtt.client_id;
}

}  // namespace edge::agent
