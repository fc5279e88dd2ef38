#include "modbus_config.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <set>
#include <string_view>

#include "edge/rules/duration.h"

namespace edge::agent::config_internal {
namespace {

constexpr int64_t kMinIntervalMs = 10;
constexpr int64_t kMaxIntervalMs = 86'400'000;
constexpr int64_t kMinTimeoutMs = 10;
constexpr int64_t kMaxTimeoutMs = 60'000;
constexpr size_t kMaxDevices = 256;
constexpr size_t kMaxRegistersPerDevice = 10'000;

bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// A sensor id part: printable, no MQTT wildcard, no leading or trailing '/'.
bool IsSensorPart(std::string_view s) {
  if (s.empty() || s.size() > 512 || s.front() == '/' || s.back() == '/') return false;
  for (char c : s) {
    if (c == '+' || c == '#' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

// Reads one mapping, key by key, against a list of known keys.
class MapReader {
 public:
  MapReader(const YAML::Node& node, const char* what, std::initializer_list<const char*> keys,
            const YamlError& error)
      : node_(node), error_(error) {
    if (!node.IsMap()) {
      Fail(node.Mark(), std::string(what) + " must be a mapping");
      return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      bool known = false;
      for (const char* k : keys) known = known || key == k;
      if (!known) Fail(it->first.Mark(), "unknown key '" + key + "' in " + what);
    }
  }

  bool ok() const { return ok_; }

  // The scalar at `key`, or nullopt (absent); a non-scalar is an error. Each lookup is a
  // copy: assigning one yaml-cpp node to another rewrites the node it refers to.
  std::optional<YAML::Node> Scalar(const char* key, bool required = false) {
    if (!node_.IsMap()) return std::nullopt;
    const YAML::Node v = node_[key];
    if (!v.IsDefined() || v.IsNull()) {
      if (required) Fail(node_.Mark(), std::string("missing '") + key + "'");
      return std::nullopt;
    }
    if (!v.IsScalar()) {
      Fail(v.Mark(), std::string("'") + key + "' must be a single value");
      return std::nullopt;
    }
    return v;
  }

  void String(const char* key, std::string& out, bool required, bool (*valid)(std::string_view),
              const char* rule) {
    if (const std::optional<YAML::Node> v = Scalar(key, required)) {
      if (!valid(v->Scalar())) {
        Fail(v->Mark(), std::string("'") + key + "' " + rule);
      } else {
        out = v->Scalar();
      }
    }
  }

  template <typename T>
  void Int(const char* key, T& out, int64_t lo, int64_t hi, bool required = false) {
    if (const std::optional<YAML::Node> v = Scalar(key, required)) {
      const std::string& s = v->Scalar();
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec != std::errc() || end != s.data() + s.size() || n < lo || n > hi) {
        Fail(v->Mark(), std::string("'") + key + "' must be a whole number from " +
                            std::to_string(lo) + " to " + std::to_string(hi));
      } else {
        out = static_cast<T>(n);
      }
    }
  }

  void Number(const char* key, double& out) {
    if (const std::optional<YAML::Node> v = Scalar(key)) {
      const std::string& s = v->Scalar();
      double d = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(d)) {
        Fail(v->Mark(), std::string("'") + key + "' must be a finite number");
      } else {
        out = d;
      }
    }
  }

  void Duration(const char* key, int64_t& out, int64_t lo, int64_t hi) {
    if (const std::optional<YAML::Node> v = Scalar(key)) {
      Result<int64_t> ms = rules::ParseDuration(v->Scalar());
      if (!ms.ok() || *ms < lo || *ms > hi) {
        Fail(v->Mark(), std::string("'") + key + "' must be a duration from " + std::to_string(lo) +
                            "ms to " + std::to_string(hi / 1000) + "s");
      } else {
        out = *ms;
      }
    }
  }

  // One of `names`, its index in `out`.
  template <typename E>
  void Choice(const char* key, E& out, std::initializer_list<std::pair<const char*, E>> names) {
    if (const std::optional<YAML::Node> v = Scalar(key)) {
      std::string list;
      for (const auto& [name, value] : names) {
        if (v->Scalar() == name) {
          out = value;
          return;
        }
        list += std::string(list.empty() ? "" : ", ") + name;
      }
      Fail(v->Mark(), std::string("'") + key + "' must be one of " + list);
    }
  }

  void Fail(const YAML::Mark& mark, const std::string& message) {
    ok_ = false;
    error_(mark, "modbus: " + message);
  }

 private:
  const YAML::Node& node_;
  const YamlError& error_;
  bool ok_ = true;
};

bool ReadRegister(const YAML::Node& node, ModbusRegister& reg, const YamlError& error) {
  MapReader r(node, "a register",
              {"name", "table", "address", "type", "word_order", "scale", "offset"}, error);
  if (!r.ok()) return false;
  r.String("name", reg.name, true, IsSensorPart, "must be a sensor id part without + or #");
  r.Choice("table", reg.table,
           {{"holding", ModbusTable::kHolding},
            {"input", ModbusTable::kInput},
            {"coil", ModbusTable::kCoil},
            {"discrete", ModbusTable::kDiscrete}});
  const bool bits = reg.table == ModbusTable::kCoil || reg.table == ModbusTable::kDiscrete;
  reg.type = bits ? ModbusType::kBool : ModbusType::kUint16;
  r.Int("address", reg.address, 0, 65535, true);
  r.Choice("type", reg.type,
           {{"int16", ModbusType::kInt16},
            {"uint16", ModbusType::kUint16},
            {"int32", ModbusType::kInt32},
            {"uint32", ModbusType::kUint32},
            {"float32", ModbusType::kFloat32},
            {"bool", ModbusType::kBool}});
  if (r.ok() && bits != (reg.type == ModbusType::kBool)) {
    r.Fail(node.Mark(), "register '" + reg.name +
                            "': coils and discrete inputs are of type "
                            "bool, registers of a number type");
  }
  if (r.ok() && uint32_t{reg.address} + reg.width() > 65536) {
    r.Fail(node.Mark(), "register '" + reg.name + "' runs past address 65535");
  }
  r.Choice("word_order", reg.low_word_first, {{"big", false}, {"little", true}});
  r.Number("scale", reg.scale);
  r.Number("offset", reg.offset);
  return r.ok();
}

bool ReadDevice(const YAML::Node& node, ModbusDevice& d, const YamlError& error) {
  MapReader r(node, "a modbus device",
              {"name", "host", "port", "unit", "interval", "timeout", "prefix", "offline_after",
               "registers"},
              error);
  if (!r.ok()) return false;
  r.String("name", d.name, true, IsName, "must be [A-Za-z0-9_.-]+");
  r.String(
      "host", d.host, true, [](std::string_view s) { return !s.empty() && s.size() < 256; },
      "must be a host name or address");
  r.Int("port", d.port, 1, 65535);
  r.Int("unit", d.unit, 0, 255);
  if (d.unit > 247 && d.unit != 255) {
    r.Fail(node.Mark(), "device '" + d.name + "': 'unit' must be 0 to 247, or 255");
  }
  r.Int("offline_after", d.offline_after, 1, 100);
  r.Duration("interval", d.interval_ms, kMinIntervalMs, kMaxIntervalMs);
  r.Duration("timeout", d.timeout_ms, kMinTimeoutMs, kMaxTimeoutMs);
  r.String("prefix", d.prefix, false, IsSensorPart, "must be a sensor id prefix without + or #");
  const YAML::Node regs = node["registers"];
  if (!regs.IsDefined() || !regs.IsSequence() || regs.size() == 0) {
    r.Fail(node.Mark(), "device '" + d.name + "' needs a non-empty list of registers");
    return false;
  }
  if (regs.size() > kMaxRegistersPerDevice) {
    r.Fail(regs.Mark(), "at most " + std::to_string(kMaxRegistersPerDevice) + " registers");
    return false;
  }
  std::set<std::string> names;
  bool ok = r.ok();
  for (const YAML::Node& item : regs) {
    ModbusRegister reg;
    if (!ReadRegister(item, reg, error)) {
      ok = false;
      continue;
    }
    if (!names.insert(reg.name).second) {
      error(item.Mark(),
            "modbus: device '" + d.name + "' has two registers named '" + reg.name + "'");
      ok = false;
    }
    d.registers.push_back(std::move(reg));
  }
  return ok;
}

}  // namespace

void ReadModbusSection(const YAML::Node& node, std::vector<ModbusDevice>& devices,
                       const YamlError& error) {
  devices.clear();
  if (node.IsNull()) return;
  if (!node.IsSequence()) {
    error(node.Mark(), "modbus: expected a list of devices");
    return;
  }
  if (node.size() > kMaxDevices) {
    error(node.Mark(), "modbus: at most " + std::to_string(kMaxDevices) + " devices");
    return;
  }
  std::set<std::string> names;
  for (const YAML::Node& item : node) {
    ModbusDevice d;
    if (!ReadDevice(item, d, error)) continue;
    if (!names.insert(d.name).second) {
      error(item.Mark(), "modbus: two devices named '" + d.name + "'");
      continue;
    }
    // A device going offline takes every sensor under its prefix with it: prefixes may not
    // nest, and none may be Sparkplug B's (those readings would go to its decoder).
    const std::string prefix = d.SensorPrefix() + "/";
    if (prefix.starts_with("spBv1.0/")) {
      error(item.Mark(),
            "modbus: device '" + d.name + "': a prefix under spBv1.0/ is Sparkplug B's");
      continue;
    }
    bool nested = false;
    for (const ModbusDevice& other : devices) {
      const std::string theirs = other.SensorPrefix() + "/";
      if (prefix.starts_with(theirs) || theirs.starts_with(prefix)) {
        error(item.Mark(), "modbus: the sensor prefixes of devices '" + other.name + "' and '" +
                               d.name + "' overlap");
        nested = true;
        break;
      }
    }
    if (!nested) devices.push_back(std::move(d));
  }
}

}  // namespace edge::agent::config_internal
