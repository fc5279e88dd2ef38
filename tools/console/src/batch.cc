#include "edge/console/batch.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace edge::console {
namespace {

using nlohmann::json;

// nlohmann's parser is iterative, but dump() and comparisons recurse: bound the nesting
// before parsing so a hostile body cannot exhaust the stack.
bool NestingWithin(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

// The field must be an integer that fits int64_t (JSON floats are rejected).
Status GetInt64(const json& object, const char* key, const std::string& where, int64_t* out) {
  const auto it = object.find(key);
  if (it == object.end()) return Status::Error(where + "missing field '" + key + "'");
  if (it->is_number_unsigned()) {
    const auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::Error(where + "field '" + key + "' is out of range");
    }
    *out = static_cast<int64_t>(v);
    return Status::Ok();
  }
  if (!it->is_number_integer()) {
    return Status::Error(where + "field '" + key + "' must be an integer");
  }
  *out = it->get<int64_t>();
  return Status::Ok();
}

// The field must be a non-empty string of at most `max_bytes` bytes.
Status GetString(const json& object, const char* key, const std::string& where, size_t max_bytes,
                 std::string* out) {
  const auto it = object.find(key);
  if (it == object.end()) return Status::Error(where + "missing field '" + key + "'");
  if (!it->is_string()) return Status::Error(where + "field '" + key + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return Status::Error(where + "field '" + key + "' must not be empty");
  if (s.size() > max_bytes) return Status::Error(where + "field '" + key + "' is too long");
  *out = s;
  return Status::Ok();
}

Status ParseAlert(const json& payload, const std::string& node, const std::string& where,
                  AlertFields* out) {
  const std::string at = where + "alert payload: ";
  if (Status s = GetString(payload, "rule", at, kMaxNameBytes, &out->rule); !s) return s;
  if (Status s = GetString(payload, "sensor", at, kMaxNameBytes, &out->sensor); !s) return s;
  if (Status s = GetString(payload, "severity", at, kMaxNameBytes, &out->severity); !s) return s;
  if (Status s = GetString(payload, "state", at, kMaxNameBytes, &out->state); !s) return s;
  if (out->state != "firing" && out->state != "resolved") {
    return Status::Error(at + "field 'state' must be \"firing\" or \"resolved\"");
  }
  if (Status s = GetInt64(payload, "ts_ms", at, &out->ts_ms); !s) return s;
  if (const auto it = payload.find("node"); it != payload.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>() != node) {
      return Status::Error(at + "field 'node' must equal the batch's node");
    }
  }
  return Status::Ok();
}

// The field must be a finite JSON number (integer or float). JSON cannot spell infinity,
// but a literal such as 1e999 overflows to it when parsed.
Status GetDouble(const json& object, const char* key, const std::string& where, double* out) {
  const auto it = object.find(key);
  if (it == object.end()) return Status::Error(where + "missing field '" + key + "'");
  if (!it->is_number()) return Status::Error(where + "field '" + key + "' must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) return Status::Error(where + "field '" + key + "' is out of range");
  *out = v;
  return Status::Ok();
}

Status ParseRollup(const json& payload, const std::string& node, const std::string& where,
                   RollupFields* out) {
  const std::string at = where + "rollup payload: ";
  if (Status s = GetString(payload, "sensor", at, kMaxNameBytes, &out->sensor); !s) return s;
  if (Status s = GetInt64(payload, "start_ms", at, &out->start_ms); !s) return s;
  if (Status s = GetInt64(payload, "end_ms", at, &out->end_ms); !s) return s;
  if (out->end_ms < out->start_ms) {
    return Status::Error(at + "field 'end_ms' must not be less than 'start_ms'");
  }
  if (Status s = GetInt64(payload, "count", at, &out->count); !s) return s;
  if (out->count < 0) return Status::Error(at + "field 'count' must not be negative");
  if (Status s = GetDouble(payload, "min", at, &out->min); !s) return s;
  if (Status s = GetDouble(payload, "max", at, &out->max); !s) return s;
  if (Status s = GetDouble(payload, "mean", at, &out->mean); !s) return s;
  if (Status s = GetDouble(payload, "last", at, &out->last); !s) return s;
  if (const auto it = payload.find("node"); it != payload.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>() != node) {
      return Status::Error(at + "field 'node' must equal the batch's node");
    }
  }
  return Status::Ok();
}

Status ParseItem(const json& item, const std::string& node, size_t index, BatchItem* out) {
  const std::string where = "items[" + std::to_string(index) + "]: ";
  if (!item.is_object()) return Status::Error(where + "must be an object");
  if (Status s = GetString(item, "id", where, kMaxIdBytes, &out->id); !s) return s;
  // Ids are "NODE:EPOCH:SEQ"; holding every node to its own prefix keeps one node from
  // claiming (and so suppressing, through dedupe) ids of another.
  if (out->id.size() <= node.size() + 1 || out->id.compare(0, node.size(), node) != 0 ||
      out->id[node.size()] != ':') {
    return Status::Error(where + "field 'id' must start with \"" + node + ":\"");
  }
  if (Status s = GetString(item, "kind", where, kMaxNameBytes, &out->kind); !s) return s;
  if (Status s = GetInt64(item, "created_ms", where, &out->created_ms); !s) return s;
  const auto payload = item.find("payload");
  if (payload == item.end()) return Status::Error(where + "missing field 'payload'");
  if (!payload->is_object()) return Status::Error(where + "field 'payload' must be an object");
  if (out->kind == "alert") {
    AlertFields fields;
    if (Status s = ParseAlert(*payload, node, where, &fields); !s) return s;
    out->alert = std::move(fields);
  } else if (out->kind == "rollup") {
    RollupFields fields;
    if (Status s = ParseRollup(*payload, node, where, &fields); !s) return s;
    out->rollup = std::move(fields);
  }
  out->payload_json = payload->dump(-1, ' ', false, json::error_handler_t::strict);
  return Status::Ok();
}

}  // namespace

Result<Batch> ParseBatch(std::string_view text) {
  try {
    if (!NestingWithin(text, kMaxJsonDepth)) {
      return Status::Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth));
    }
    const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Status::Error("malformed JSON");
    if (!doc.is_object()) return Status::Error("body must be a JSON object");
    Batch batch;
    if (Status s = GetString(doc, "node", "", kMaxNameBytes, &batch.node); !s) return s;
    if (Status s = GetInt64(doc, "sent_ms", "", &batch.sent_ms); !s) return s;
    const auto items = doc.find("items");
    if (items == doc.end()) return Status::Error("missing field 'items'");
    if (!items->is_array()) return Status::Error("field 'items' must be an array");
    batch.items.reserve(items->size());
    for (size_t i = 0; i < items->size(); ++i) {
      BatchItem item;
      if (Status s = ParseItem((*items)[i], batch.node, i, &item); !s) return s;
      batch.items.push_back(std::move(item));
    }
    return batch;
  } catch (const std::exception& e) {
    // Only allocation failure or invalid UTF-8 on dump() can get here.
    return Status::Error(std::string("invalid batch: ") + e.what());
  }
}

Result<StatusReport> ParseStatusReport(std::string_view text) {
  try {
    if (!NestingWithin(text, kMaxJsonDepth)) {
      return Status::Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth));
    }
    const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Status::Error("malformed JSON");
    if (!doc.is_object()) return Status::Error("body must be a JSON object");
    StatusReport report;
    if (Status s = GetString(doc, "node", "", kMaxNameBytes, &report.node); !s) return s;
    if (Status s = GetInt64(doc, "sent_ms", "", &report.sent_ms); !s) return s;
    const auto status = doc.find("status");
    if (status == doc.end()) return Status::Error("missing field 'status'");
    if (!status->is_object()) return Status::Error("field 'status' must be an object");
    report.status_json = status->dump(-1, ' ', false, json::error_handler_t::strict);
    return report;
  } catch (const std::exception& e) {
    return Status::Error(std::string("invalid status report: ") + e.what());
  }
}

}  // namespace edge::console
