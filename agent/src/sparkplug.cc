// The Sparkplug B adapter: the only file that includes the generated protobuf code.
#include "edge/agent/sparkplug.h"

#include <google/protobuf/arena.h>

#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>

#include "edge/common/string_hash.h"
#include "proto/sparkplug_b.pb.h"

namespace edge::agent {
namespace {

using sparkplug::Payload;
using Metric = sparkplug::Payload_Metric;

// Bytes a metric definition, a device or a node costs beyond its name, and an alias, for the
// state bound: hash nodes and their bookkeeping.
constexpr size_t kEntryOverhead = 128;
constexpr size_t kAliasOverhead = 64;
// Arena block reused by every message, so that a typical payload parses without malloc.
constexpr size_t kArenaBlockBytes = 64 * 1024;

constexpr std::string_view kTypeLabels[] = {"NBIRTH", "NDATA",  "NDEATH", "DBIRTH",
                                            "DDATA",  "DDEATH", "other"};
constexpr std::string_view kRejectLabels[] = {"bad_topic",   "not_protobuf",   "before_birth",
                                              "stale_death", "too_many_nodes", "too_many_metrics"};
constexpr std::string_view kSkipLabels[] = {
    "string",     "bytes",       "array",         "dataset",      "template",
    "null",       "control",     "unknown_alias", "unknown_type", "bad_value",
    "non_finite", "id_too_long", "historical"};
static_assert(std::size(kTypeLabels) == kSparkplugTypeCount);
static_assert(std::size(kRejectLabels) == kSparkplugRejectCount);
static_assert(std::size(kSkipLabels) == kSparkplugSkipCount);

struct Topic {
  SparkplugType type = SparkplugType::kOther;
  std::string_view group;
  std::string_view node;
  std::string_view device;  // empty for edge node messages
};

std::optional<SparkplugType> ParseType(std::string_view t) {
  if (t == "NBIRTH") return SparkplugType::kNBirth;
  if (t == "NDATA") return SparkplugType::kNData;
  if (t == "NDEATH") return SparkplugType::kNDeath;
  if (t == "DBIRTH") return SparkplugType::kDBirth;
  if (t == "DDATA") return SparkplugType::kDData;
  if (t == "DDEATH") return SparkplugType::kDDeath;
  if (t == "NCMD" || t == "DCMD") return SparkplugType::kOther;
  return std::nullopt;
}

// spBv1.0/<group>/<type>/<node>[/<device>] with non-empty parts; spBv1.0/STATE/<host> is
// kOther. nullopt: not a Sparkplug topic we understand.
std::optional<Topic> ParseTopic(std::string_view topic) {
  std::string_view rest = topic.substr(kSparkplugNamespace.size());
  std::string_view parts[4];
  size_t n = 0;
  while (n < 4) {
    const size_t slash = rest.find('/');
    parts[n++] = rest.substr(0, slash);
    if (slash == std::string_view::npos) {
      rest = {};
      break;
    }
    rest.remove_prefix(slash + 1);
    if (n == 4) return std::nullopt;  // a fifth separator
  }
  for (size_t i = 0; i < n; ++i) {
    if (parts[i].empty()) return std::nullopt;
  }
  if (n == 2 && parts[0] == "STATE") return Topic{};
  if (n < 3) return std::nullopt;
  std::optional<SparkplugType> type = ParseType(parts[1]);
  if (!type) return std::nullopt;
  const bool device_type = *type == SparkplugType::kDBirth || *type == SparkplugType::kDData ||
                           *type == SparkplugType::kDDeath;
  const bool node_type = *type == SparkplugType::kNBirth || *type == SparkplugType::kNData ||
                         *type == SparkplugType::kNDeath;
  if ((device_type && n != 4) || (node_type && n != 3)) return std::nullopt;
  return Topic{*type, parts[0], parts[2], n == 4 ? parts[3] : std::string_view{}};
}

bool IsArray(uint32_t datatype) {
  return datatype >= sparkplug::Int8Array && datatype <= sparkplug::DateTimeArray;
}

bool IsControl(std::string_view name) {
  return name == "bdSeq" || name.starts_with("Node Control/") ||
         name.starts_with("Device Control/");
}

// The datatype a value case implies, for a metric neither it nor its birth typed.
uint32_t InferType(const Metric& m) {
  switch (m.value_case()) {
    case Metric::kIntValue:
      return sparkplug::UInt32;
    case Metric::kLongValue:
      return sparkplug::UInt64;
    case Metric::kFloatValue:
      return sparkplug::Float;
    case Metric::kDoubleValue:
      return sparkplug::Double;
    case Metric::kBooleanValue:
      return sparkplug::Boolean;
    case Metric::kStringValue:
      return sparkplug::String;
    case Metric::kBytesValue:
      return sparkplug::Bytes;
    case Metric::kDatasetValue:
      return sparkplug::DataSet;
    case Metric::kTemplateValue:
      return sparkplug::Template;
    default:
      return sparkplug::Unknown;
  }
}

// An integer metric's raw bits: int_value or long_value, whichever the publisher used.
std::optional<uint64_t> IntegerBits(const Metric& m) {
  if (m.value_case() == Metric::kIntValue) return m.int_value();
  if (m.value_case() == Metric::kLongValue) return m.long_value();
  return std::nullopt;
}

// A signed value of `bits` (8 or 16 or 32) bits: the width-sized form or the form
// sign-extended to 32 (or 64) bits; anything else does not fit.
std::optional<double> Signed(uint64_t raw, int bits) {
  const uint64_t width_max = (uint64_t{1} << bits) - 1;
  const uint64_t sign = uint64_t{1} << (bits - 1);
  if (raw <= width_max) {
    const auto v = static_cast<int64_t>(raw);
    return static_cast<double>((raw & sign) != 0 ? v - static_cast<int64_t>(width_max) - 1 : v);
  }
  // Sign-extended to 32 or 64 bits: every bit above the sign bit set.
  const uint64_t high32 = 0xFFFF'FFFFull & ~width_max;
  const uint64_t high64 = ~width_max;
  if ((raw & high64) == high64 || (raw <= 0xFFFF'FFFFull && (raw & high32) == high32)) {
    if ((raw & sign) == 0) return std::nullopt;
    const auto low = static_cast<int64_t>(raw & width_max);
    return static_cast<double>(low - static_cast<int64_t>(width_max) - 1);
  }
  return std::nullopt;
}

// The reading value of a metric of `datatype`, or why it makes none.
std::optional<SparkplugSkip> ValueOf(const Metric& m, uint32_t datatype, double& value) {
  if (m.is_null()) return SparkplugSkip::kNull;
  switch (datatype) {
    case sparkplug::Int8:
    case sparkplug::Int16:
    case sparkplug::Int32: {
      const std::optional<uint64_t> raw = IntegerBits(m);
      if (!raw)
        return m.value_case() == Metric::VALUE_NOT_SET ? SparkplugSkip::kNull
                                                       : SparkplugSkip::kBadValue;
      const int bits = datatype == sparkplug::Int8 ? 8 : datatype == sparkplug::Int16 ? 16 : 32;
      const std::optional<double> v = Signed(*raw, bits);
      if (!v) return SparkplugSkip::kBadValue;
      value = *v;
      return std::nullopt;
    }
    case sparkplug::Int64: {
      const std::optional<uint64_t> raw = IntegerBits(m);
      if (!raw)
        return m.value_case() == Metric::VALUE_NOT_SET ? SparkplugSkip::kNull
                                                       : SparkplugSkip::kBadValue;
      value = static_cast<double>(static_cast<int64_t>(*raw));
      return std::nullopt;
    }
    case sparkplug::UInt8:
    case sparkplug::UInt16:
    case sparkplug::UInt32:
    case sparkplug::UInt64:
    case sparkplug::DateTime: {
      const std::optional<uint64_t> raw = IntegerBits(m);
      if (!raw)
        return m.value_case() == Metric::VALUE_NOT_SET ? SparkplugSkip::kNull
                                                       : SparkplugSkip::kBadValue;
      const uint64_t max = datatype == sparkplug::UInt8    ? 0xFF
                           : datatype == sparkplug::UInt16 ? 0xFFFF
                           : datatype == sparkplug::UInt32 ? 0xFFFF'FFFF
                                                           : std::numeric_limits<uint64_t>::max();
      if (*raw > max) return SparkplugSkip::kBadValue;
      value = static_cast<double>(*raw);
      return std::nullopt;
    }
    case sparkplug::Float:
    case sparkplug::Double: {
      if (m.value_case() == Metric::kFloatValue) {
        value = static_cast<double>(m.float_value());
      } else if (m.value_case() == Metric::kDoubleValue) {
        value = m.double_value();
      } else {
        return m.value_case() == Metric::VALUE_NOT_SET ? SparkplugSkip::kNull
                                                       : SparkplugSkip::kBadValue;
      }
      if (!std::isfinite(value)) return SparkplugSkip::kNonFinite;
      return std::nullopt;
    }
    case sparkplug::Boolean:
      if (m.value_case() == Metric::kBooleanValue) {
        value = m.boolean_value() ? 1 : 0;
        return std::nullopt;
      }
      return m.value_case() == Metric::VALUE_NOT_SET ? SparkplugSkip::kNull
                                                     : SparkplugSkip::kBadValue;
    case sparkplug::String:
    case sparkplug::Text:
    case sparkplug::UUID:
      return SparkplugSkip::kString;
    case sparkplug::Bytes:
    case sparkplug::File:
      return SparkplugSkip::kBytes;
    case sparkplug::DataSet:
      return SparkplugSkip::kDataSet;
    case sparkplug::Template:
      return SparkplugSkip::kTemplate;
    default:
      return IsArray(datatype) ? SparkplugSkip::kArray : SparkplugSkip::kUnknownType;
  }
}

// The bdSeq metric of a birth or death payload, if it has a readable one.
std::optional<uint64_t> BdSeq(const Payload& p) {
  for (const Metric& m : p.metrics()) {
    if (m.name() == "bdSeq") return IntegerBits(m);
  }
  return std::nullopt;
}

}  // namespace

std::string_view SparkplugTypeLabel(SparkplugType type) {
  return kTypeLabels[static_cast<size_t>(type)];
}
std::string_view SparkplugRejectLabel(SparkplugReject reason) {
  return kRejectLabels[static_cast<size_t>(reason)];
}
std::string_view SparkplugSkipLabel(SparkplugSkip reason) {
  return kSkipLabels[static_cast<size_t>(reason)];
}

struct SparkplugDecoder::Impl {
  struct MetricDef {
    uint32_t datatype = sparkplug::Unknown;
    uint32_t device = 0;  // 0: the edge node's own metric; else Device::id
    bool control = false;
  };
  using Defs = std::unordered_map<std::string, MetricDef>;  // key: the sensor id
  struct Device {
    uint32_t id = 0;
    bool born = false;
  };
  struct Node {
    std::string prefix;  // "spBv1.0/<group>/<node>/"
    std::optional<uint64_t> bd_seq;
    uint8_t next_seq = 0;
    Defs defs;
    std::unordered_map<uint64_t, Defs::value_type*> by_alias;  // into defs (nodes are stable)
    std::unordered_map<std::string, Device, StringHash, std::equal_to<>> devices;
    uint32_t next_device_id = 1;
    size_t bytes = 0;          // counted in state_bytes
    int64_t last_seen_ms = 0;  // receive time of its latest message
  };

  explicit Impl(SparkplugOptions o) : options(o), arena_block(kArenaBlockBytes) {}

  // Key of `nodes`: "<group>/<node>".
  static std::string NodeKey(const Topic& t) {
    std::string key;
    key.reserve(t.group.size() + 1 + t.node.size());
    key.append(t.group).append("/").append(t.node);
    return key;
  }

  // Drops a node's definitions, aliases and devices (its own entry stays).
  void Forget(Node& n) {
    state_bytes -= n.bytes;
    n.bytes = 0;
    n.defs.clear();
    n.by_alias.clear();
    n.devices.clear();
  }

  static size_t NodeCost(const std::string& key, const Node& n) {
    return key.size() + n.prefix.size() + kEntryOverhead;
  }

  void RemoveNode(std::unordered_map<std::string, Node, StringHash, std::equal_to<>>::iterator it) {
    Forget(it->second);
    state_bytes -= NodeCost(it->first, it->second);
    nodes.erase(it);
  }

  // Makes room for a new node by forgetting the one silent longest, if it has been silent
  // for idle_after_ms (its death was missed, say). O(nodes), only when the table is full.
  bool EvictIdleNode(int64_t now_ms) {
    auto oldest = nodes.end();
    for (auto it = nodes.begin(); it != nodes.end(); ++it) {
      if (oldest == nodes.end() || it->second.last_seen_ms < oldest->second.last_seen_ms) {
        oldest = it;
      }
    }
    if (oldest == nodes.end() || now_ms - oldest->second.last_seen_ms < options.idle_after_ms) {
      return false;
    }
    RemoveNode(oldest);
    ++evicted_nodes;
    return true;
  }

  void SequenceCheck(Node& n, const Payload& p, SparkplugOutcome& o) {
    const uint64_t seq = p.has_seq() ? p.seq() : uint64_t{256};
    if (seq != n.next_seq) o.seq_gap = true;
    n.next_seq = static_cast<uint8_t>((seq + 1) & 0xFF);
  }

  // Drops the definitions of one device (or, with 0, of the node's own metrics).
  void DropDefinitions(Node& n, uint32_t device) {
    for (auto a = n.by_alias.begin(); a != n.by_alias.end();) {
      if (a->second->second.device != device) {
        ++a;
        continue;
      }
      n.bytes -= kAliasOverhead;
      state_bytes -= kAliasOverhead;
      a = n.by_alias.erase(a);
    }
    for (auto it = n.defs.begin(); it != n.defs.end();) {
      if (it->second.device != device) {
        ++it;
        continue;
      }
      const size_t cost = it->first.size() + kEntryOverhead;
      n.bytes -= cost;
      state_bytes -= cost;
      it = n.defs.erase(it);
    }
  }

  // Declares the metrics of a birth and appends their readings. False when a bound is hit
  // (the caller rejects the message).
  bool Birth(Node& n, uint32_t device, std::string_view sensor_prefix, const Payload& p,
             int64_t ts_default, SparkplugOutcome& o, std::vector<rules::Reading>& out) {
    for (const Metric& m : p.metrics()) {
      if (!m.has_name() || m.name().empty()) {
        ++o.skipped[static_cast<size_t>(SparkplugSkip::kUnknownAlias)];
        continue;
      }
      if (sensor_prefix.size() + m.name().size() > options.max_sensor_id_bytes) {
        ++o.skipped[static_cast<size_t>(SparkplugSkip::kIdTooLong)];
        continue;
      }
      std::string sensor;
      sensor.reserve(sensor_prefix.size() + m.name().size());
      sensor.append(sensor_prefix).append(m.name());
      MetricDef def;
      def.datatype = m.has_datatype() ? m.datatype() : InferType(m);
      def.device = device;
      def.control = IsControl(m.name());
      auto [it, inserted] = n.defs.try_emplace(std::move(sensor), def);
      if (inserted) {
        const size_t cost = it->first.size() + kEntryOverhead;
        if (n.defs.size() + n.devices.size() > options.max_metrics_per_node ||
            state_bytes + cost > options.max_state_bytes) {
          n.defs.erase(it);
          return false;
        }
        n.bytes += cost;
        state_bytes += cost;
      } else {
        it->second = def;
      }
      if (m.has_alias()) {
        // Aliases are bounded like definitions: a birth repeating one name under many
        // aliases must not grow the map past them.
        auto [a, fresh] = n.by_alias.try_emplace(m.alias(), &*it);
        if (fresh) {
          if (n.by_alias.size() > options.max_metrics_per_node ||
              state_bytes + kAliasOverhead > options.max_state_bytes) {
            n.by_alias.erase(a);
            return false;
          }
          n.bytes += kAliasOverhead;
          state_bytes += kAliasOverhead;
        } else {
          a->second = &*it;
        }
      }
      Emit(*it, m, p, ts_default, o, out);
    }
    return true;
  }

  // A data message's metrics, resolved by alias or name among `device`'s definitions.
  void Data(Node& n, uint32_t device, std::string_view sensor_prefix, const Payload& p,
            int64_t ts_default, SparkplugOutcome& o, std::vector<rules::Reading>& out) {
    std::string by_name;
    for (const Metric& m : p.metrics()) {
      const Defs::value_type* def = nullptr;
      if (m.has_alias()) {
        if (auto a = n.by_alias.find(m.alias()); a != n.by_alias.end()) def = a->second;
      }
      if (def == nullptr && m.has_name()) {
        by_name.assign(sensor_prefix).append(m.name());
        if (auto d = n.defs.find(by_name); d != n.defs.end()) def = &*d;
      }
      if (def == nullptr || def->second.device != device) {
        ++o.skipped[static_cast<size_t>(SparkplugSkip::kUnknownAlias)];
        continue;
      }
      Emit(*def, m, p, ts_default, o, out);
    }
  }

  static void Emit(const Defs::value_type& def, const Metric& m, const Payload& p,
                   int64_t ts_default, SparkplugOutcome& o, std::vector<rules::Reading>& out) {
    if (def.second.control) {
      ++o.skipped[static_cast<size_t>(SparkplugSkip::kControl)];
      return;
    }
    if (m.is_historical()) {  // store-and-forward backfill: not the current value
      ++o.skipped[static_cast<size_t>(SparkplugSkip::kHistorical)];
      return;
    }
    const uint32_t datatype = m.has_datatype()                            ? m.datatype()
                              : def.second.datatype != sparkplug::Unknown ? def.second.datatype
                                                                          : InferType(m);
    double value = 0;
    if (std::optional<SparkplugSkip> skip = ValueOf(m, datatype, value)) {
      ++o.skipped[static_cast<size_t>(*skip)];
      return;
    }
    constexpr auto kMaxTs = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    int64_t ts = ts_default;
    if (m.has_timestamp()) {
      if (m.timestamp() > kMaxTs) {
        ++o.skipped[static_cast<size_t>(SparkplugSkip::kBadValue)];
        return;
      }
      ts = static_cast<int64_t>(m.timestamp());
    } else if (p.has_timestamp() && p.timestamp() <= kMaxTs) {
      ts = static_cast<int64_t>(p.timestamp());
    }
    out.push_back({def.first, ts, value});
  }

  SparkplugOutcome Decode(std::string_view topic, std::string_view payload, int64_t receive_ms,
                          std::vector<rules::Reading>& out);

  SparkplugOptions options;
  std::vector<char> arena_block;
  std::unordered_map<std::string, Node, StringHash, std::equal_to<>> nodes;
  size_t state_bytes = 0;
  uint64_t evicted_nodes = 0;
};

SparkplugOutcome SparkplugDecoder::Impl::Decode(std::string_view topic_text,
                                                std::string_view payload, int64_t receive_ms,
                                                std::vector<rules::Reading>& out) {
  SparkplugOutcome o;
  const std::optional<Topic> topic =
      topic_text.size() <= options.max_sensor_id_bytes ? ParseTopic(topic_text) : std::nullopt;
  if (!topic) {
    o.reject = SparkplugReject::kBadTopic;
    return o;
  }
  o.type = topic->type;
  if (o.type == SparkplugType::kOther) return o;

  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = arena_block.data();
  arena_options.initial_block_size = arena_block.size();
  google::protobuf::Arena arena(arena_options);
  auto* p = google::protobuf::Arena::CreateMessage<Payload>(&arena);
  if (payload.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !p->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    o.reject = SparkplugReject::kNotProtobuf;
    return o;
  }
  const std::string key = NodeKey(*topic);
  auto node_it = nodes.find(key);
  if (node_it != nodes.end()) node_it->second.last_seen_ms = receive_ms;
  const size_t mark = out.size();

  switch (o.type) {
    case SparkplugType::kNBirth: {
      if (node_it == nodes.end()) {
        if (nodes.size() >= options.max_nodes && !EvictIdleNode(receive_ms)) {
          o.reject = SparkplugReject::kTooManyNodes;
          return o;
        }
        Node fresh;
        fresh.last_seen_ms = receive_ms;
        fresh.prefix.assign(kSparkplugNamespace).append(key).append("/");
        const size_t cost = NodeCost(key, fresh);
        if (state_bytes + cost > options.max_state_bytes) {
          o.reject = SparkplugReject::kTooManyNodes;
          return o;
        }
        state_bytes += cost;
        node_it = nodes.try_emplace(key, std::move(fresh)).first;
      }
      Node& n = node_it->second;
      Forget(n);
      n.bd_seq = BdSeq(*p);
      n.next_seq = static_cast<uint8_t>(((p->has_seq() ? p->seq() : 0) + 1) & 0xFF);
      if (!Birth(n, 0, n.prefix, *p, receive_ms, o, out)) {
        out.erase(out.begin() + static_cast<std::ptrdiff_t>(mark), out.end());
        RemoveNode(node_it);
        o.reject = SparkplugReject::kTooManyMetrics;
      }
      return o;
    }
    case SparkplugType::kNDeath: {
      // Only a node with a session goes offline: a death of an unknown node (never born, or
      // already dead) changes nothing and costs nothing.
      if (node_it == nodes.end()) return o;
      const std::optional<uint64_t> dying = BdSeq(*p);
      if (dying && node_it->second.bd_seq && *dying != *node_it->second.bd_seq) {
        o.reject = SparkplugReject::kStaleDeath;
        return o;
      }
      o.offline_prefix = node_it->second.prefix;
      RemoveNode(node_it);
      return o;
    }
    default:
      break;
  }
  if (node_it == nodes.end()) {
    o.reject = SparkplugReject::kBeforeBirth;
    return o;
  }
  Node& n = node_it->second;
  if (o.type == SparkplugType::kNData) {
    SequenceCheck(n, *p, o);
    Data(n, 0, n.prefix, *p, receive_ms, o, out);
    return o;
  }
  std::string device_prefix;
  device_prefix.reserve(n.prefix.size() + topic->device.size() + 1);
  device_prefix.append(n.prefix).append(topic->device).append("/");
  auto dev = n.devices.find(topic->device);
  if (o.type == SparkplugType::kDBirth) {
    SequenceCheck(n, *p, o);
    if (dev == n.devices.end()) {
      const size_t cost = topic->device.size() + kEntryOverhead;
      if (n.defs.size() + n.devices.size() + 1 > options.max_metrics_per_node ||
          state_bytes + cost > options.max_state_bytes) {
        o.reject = SparkplugReject::kTooManyMetrics;
        return o;
      }
      n.bytes += cost;
      state_bytes += cost;
      dev = n.devices.try_emplace(std::string(topic->device), Device{n.next_device_id++, false})
                .first;
    }
    DropDefinitions(n, dev->second.id);
    dev->second.born = Birth(n, dev->second.id, device_prefix, *p, receive_ms, o, out);
    if (!dev->second.born) {
      out.erase(out.begin() + static_cast<std::ptrdiff_t>(mark), out.end());
      DropDefinitions(n, dev->second.id);
      o.reject = SparkplugReject::kTooManyMetrics;
    }
    return o;
  }
  if (dev == n.devices.end() || (!dev->second.born && o.type == SparkplugType::kDData)) {
    o.reject = SparkplugReject::kBeforeBirth;
    return o;
  }
  SequenceCheck(n, *p, o);
  if (o.type == SparkplugType::kDData) {
    Data(n, dev->second.id, device_prefix, *p, receive_ms, o, out);
  } else if (dev->second.born) {  // DDEATH; a device already dead changes nothing
    dev->second.born = false;
    o.offline_prefix = std::move(device_prefix);
  }
  return o;
}

SparkplugDecoder::SparkplugDecoder(SparkplugOptions options)
    : impl_(std::make_unique<Impl>(options)) {}
SparkplugDecoder::~SparkplugDecoder() = default;
SparkplugDecoder::SparkplugDecoder(SparkplugDecoder&&) noexcept = default;
SparkplugDecoder& SparkplugDecoder::operator=(SparkplugDecoder&&) noexcept = default;

SparkplugOutcome SparkplugDecoder::Decode(std::string_view topic, std::string_view payload,
                                          int64_t receive_ms, std::vector<rules::Reading>& out) {
  return impl_->Decode(topic, payload, receive_ms, out);
}

size_t SparkplugDecoder::nodes() const { return impl_->nodes.size(); }

uint64_t SparkplugDecoder::evicted_nodes() const { return impl_->evicted_nodes; }

}  // namespace edge::agent
