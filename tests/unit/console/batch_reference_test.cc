// ParseBatch scans the body in one pass without a DOM. These tests hold it to the answers of
// the DOM-based parser it replaced (kept here as the reference): the same bodies accepted
// with the same fields, the same first error for every rejected body.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "edge/console/batch.h"

namespace edge::console {
namespace {

using nlohmann::json;

// --- Reference: the DOM parser (nlohmann::json::parse, field checks, dump of each payload).

bool RefNestingWithin(std::string_view text, size_t max_depth) {
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

Status RefInt64(const json& o, const char* key, const std::string& where, int64_t* out) {
  const auto it = o.find(key);
  if (it == o.end()) return Status::Error(where + "missing field '" + key + "'");
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

Status RefString(const json& o, const char* key, const std::string& where, size_t max_bytes,
                 std::string* out) {
  const auto it = o.find(key);
  if (it == o.end()) return Status::Error(where + "missing field '" + key + "'");
  if (!it->is_string()) return Status::Error(where + "field '" + key + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return Status::Error(where + "field '" + key + "' must not be empty");
  if (s.size() > max_bytes) {
    return Status::Error(where + "field '" + key + "' is too long: " + std::to_string(s.size()) +
                         " bytes, the console accepts at most " + std::to_string(max_bytes));
  }
  *out = s;
  return Status::Ok();
}

Status RefDouble(const json& o, const char* key, const std::string& where, double* out) {
  const auto it = o.find(key);
  if (it == o.end()) return Status::Error(where + "missing field '" + key + "'");
  if (!it->is_number()) return Status::Error(where + "field '" + key + "' must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) return Status::Error(where + "field '" + key + "' is out of range");
  *out = v;
  return Status::Ok();
}

Status RefNode(const json& p, const std::string& node, const std::string& at) {
  if (const auto it = p.find("node"); it != p.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>() != node) {
      return Status::Error(at + "field 'node' must equal the batch's node");
    }
  }
  return Status::Ok();
}

Status RefAlert(const json& p, const std::string& node, const std::string& where,
                AlertFields* out) {
  const std::string at = where + "alert payload: ";
  if (Status s = RefString(p, "rule", at, kMaxNameBytes, &out->rule); !s) return s;
  if (Status s = RefString(p, "sensor", at, kMaxNameBytes, &out->sensor); !s) return s;
  if (Status s = RefString(p, "severity", at, kMaxNameBytes, &out->severity); !s) return s;
  if (Status s = RefString(p, "state", at, kMaxNameBytes, &out->state); !s) return s;
  if (out->state != "firing" && out->state != "resolved") {
    return Status::Error(at + "field 'state' must be \"firing\" or \"resolved\"");
  }
  if (Status s = RefInt64(p, "ts_ms", at, &out->ts_ms); !s) return s;
  return RefNode(p, node, at);
}

Status RefRollup(const json& p, const std::string& node, const std::string& where,
                 RollupFields* out) {
  const std::string at = where + "rollup payload: ";
  if (Status s = RefString(p, "sensor", at, kMaxNameBytes, &out->sensor); !s) return s;
  if (Status s = RefInt64(p, "start_ms", at, &out->start_ms); !s) return s;
  if (Status s = RefInt64(p, "end_ms", at, &out->end_ms); !s) return s;
  if (out->end_ms < out->start_ms) {
    return Status::Error(at + "field 'end_ms' must not be less than 'start_ms'");
  }
  if (Status s = RefInt64(p, "count", at, &out->count); !s) return s;
  if (out->count < 0) return Status::Error(at + "field 'count' must not be negative");
  if (Status s = RefDouble(p, "min", at, &out->min); !s) return s;
  if (Status s = RefDouble(p, "max", at, &out->max); !s) return s;
  if (Status s = RefDouble(p, "mean", at, &out->mean); !s) return s;
  if (Status s = RefDouble(p, "last", at, &out->last); !s) return s;
  return RefNode(p, node, at);
}

Status RefItem(const json& item, const std::string& node, size_t index, BatchItem* out) {
  const std::string where = "items[" + std::to_string(index) + "]: ";
  if (!item.is_object()) return Status::Error(where + "must be an object");
  if (Status s = RefString(item, "id", where, kMaxIdBytes, &out->id); !s) return s;
  if (out->id.size() <= node.size() + 1 || out->id.compare(0, node.size(), node) != 0 ||
      out->id[node.size()] != ':') {
    return Status::Error(where + "field 'id' must start with \"" + node + ":\"");
  }
  if (Status s = RefString(item, "kind", where, kMaxNameBytes, &out->kind); !s) return s;
  if (Status s = RefInt64(item, "created_ms", where, &out->created_ms); !s) return s;
  const auto payload = item.find("payload");
  if (payload == item.end()) return Status::Error(where + "missing field 'payload'");
  if (!payload->is_object()) return Status::Error(where + "field 'payload' must be an object");
  if (out->kind == "alert") {
    AlertFields f;
    if (Status s = RefAlert(*payload, node, where, &f); !s) return s;
    out->alert = std::move(f);
  } else if (out->kind == "rollup") {
    RollupFields f;
    if (Status s = RefRollup(*payload, node, where, &f); !s) return s;
    out->rollup = std::move(f);
  }
  out->payload_json = payload->dump();
  return Status::Ok();
}

Result<Batch> RefParseBatch(std::string_view text) {
  if (!RefNestingWithin(text, kMaxJsonDepth)) {
    return Status::Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth));
  }
  const json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) return Status::Error("malformed JSON");
  if (!doc.is_object()) return Status::Error("body must be a JSON object");
  Batch batch;
  if (Status s = RefString(doc, "node", "", kMaxNameBytes, &batch.node); !s) return s;
  if (Status s = RefInt64(doc, "sent_ms", "", &batch.sent_ms); !s) return s;
  const auto items = doc.find("items");
  if (items == doc.end()) return Status::Error("missing field 'items'");
  if (!items->is_array()) return Status::Error("field 'items' must be an array");
  for (size_t i = 0; i < items->size(); ++i) {
    BatchItem item;
    if (Status s = RefItem((*items)[i], batch.node, i, &item); !s) return s;
    batch.items.push_back(std::move(item));
  }
  return batch;
}

// --- Comparison

bool SameDouble(double a, double b) { return a == b && std::signbit(a) == std::signbit(b); }

// Empty when ParseBatch and the reference agree on `text`, else what differs.
std::string Disagreement(std::string_view text) {
  const Result<Batch> got = ParseBatch(text);
  const Result<Batch> want = RefParseBatch(text);
  if (got.ok() != want.ok()) {
    return "ok " + std::to_string(got.ok()) + " vs reference " + std::to_string(want.ok()) + " (" +
           (got.ok() ? want.error() : got.error()) + ")";
  }
  if (!got.ok()) {
    return got.error() == want.error() ? "" : got.error() + " vs reference " + want.error();
  }
  if (got->node != want->node || got->sent_ms != want->sent_ms) return "batch fields differ";
  if (got->items.size() != want->items.size()) return "item counts differ";
  for (size_t i = 0; i < got->items.size(); ++i) {
    const BatchItem& g = got->items[i];
    const BatchItem& w = want->items[i];
    const std::string at = "items[" + std::to_string(i) + "]: ";
    if (g.id != w.id || g.kind != w.kind || g.created_ms != w.created_ms) {
      return at + "item fields differ";
    }
    // The stored text may differ in form (key order, spelling of numbers and escapes) but
    // must read back as the same JSON once written out again (as GET /v1/alerts does; a
    // literal overflowing to infinity is written as null either way).
    const json gp = json::parse(g.payload_json, nullptr, false);
    if (gp.is_discarded() || json::parse(gp.dump()) != json::parse(w.payload_json)) {
      return at + "payloads differ";
    }
    if (g.alert.has_value() != w.alert.has_value() ||
        g.rollup.has_value() != w.rollup.has_value()) {
      return at + "kinds differ";
    }
    if (g.alert && (g.alert->rule != w.alert->rule || g.alert->sensor != w.alert->sensor ||
                    g.alert->severity != w.alert->severity || g.alert->state != w.alert->state ||
                    g.alert->ts_ms != w.alert->ts_ms)) {
      return at + "alert fields differ";
    }
    if (g.rollup &&
        (g.rollup->sensor != w.rollup->sensor || g.rollup->start_ms != w.rollup->start_ms ||
         g.rollup->end_ms != w.rollup->end_ms || g.rollup->count != w.rollup->count ||
         !SameDouble(g.rollup->min, w.rollup->min) || !SameDouble(g.rollup->max, w.rollup->max) ||
         !SameDouble(g.rollup->mean, w.rollup->mean) ||
         !SameDouble(g.rollup->last, w.rollup->last))) {
      return at + "rollup fields differ";
    }
  }
  return "";
}

const char* const kAlertItem =
    R"({"id":"node-1:5f3a:17","kind":"alert","created_ms":1764167000100,"payload":)"
    R"({"node":"node-1","rule":"boiler-overheat","sensor":"plant/boiler1/temp",)"
    R"("severity":"critical","state":"firing","value":97.5,"ts_ms":1764167000050,)"
    R"("started_ms":1764166990050,"episode":"e|1","context":[[1764166999050,96.1]]}})";

const char* const kRollupItem =
    R"({"id":"node-1:5f3a:18","kind":"rollup","created_ms":5,"payload":)"
    R"({"node":"node-1","sensor":"s/1","start_ms":60000,"end_ms":120000,"count":12,)"
    R"("min":20,"max":25.5,"mean":-0,"last":2.5e1}})";

const char* const kOtherItem =
    R"({"id":"node-1:5f3a:19","kind":"trace","created_ms":6,"payload":{"a":[1,{"b":null}]}})";

std::string Body(const std::string& items) {
  return R"({"node":"node-1","sent_ms":1764167000123,"items":[)" + items + "]}";
}

std::string ThreeItems() {
  return Body(std::string(kAlertItem) + "," + kRollupItem + "," + kOtherItem);
}

TEST(ParseBatchAgreesWithDom, OnValidBodies) {
  for (const std::string& body : std::vector<std::string>{
           ThreeItems(), Body(""), Body(kAlertItem),
           // Whitespace everywhere it may appear, a BOM, escapes in keys and values.
           "\xEF\xBB\xBF \r\n\t{ \"node\" : \"node-1\" , \"sent_ms\" : 1 , \"items\" : [ ] } \n",
           Body(R"({"id":"node-1:a\u003a1","kind":"al\u0065rt","created_ms":1,"payload":)"
                R"({"r\u0075le":"r\t\"\\\/\b\f\n\r","sensor":"\u00e9\ud83d\ude00\u20ac",)"
                R"("severity":"x","state":"resolved","ts_ms":-0,"n\u006fde":"node\u002d1"}})"),
           // Non-ASCII text, and a NUL byte ending the input after the value.
           Body(R"({"id":"node-1:1","kind":"alert","created_ms":1,"payload":{"rule":"Ω€😀",)"
                R"("sensor":"s","severity":"x","state":"firing","ts_ms":9223372036854775807}})"),
           ThreeItems() + std::string("\0trailing garbage", 17)}) {
    EXPECT_TRUE(ParseBatch(body).ok()) << body;
    EXPECT_EQ(Disagreement(body), "") << body;
  }
}

TEST(ParseBatchAgreesWithDom, LastOfRepeatedKeysWins) {
  for (const std::string& body : std::vector<std::string>{
           R"({"node":"node-2","node":"node-1","sent_ms":1.5,"sent_ms":1,"items":[]})",
           R"({"node":"node-1","sent_ms":1,"items":[{"bad":1}],"items":[]})",
           R"({"node":"node-1","sent_ms":1,"items":[],"items":{}})",
           Body(R"({"id":"node-1:1","kind":"alert","created_ms":1,"payload":{"rule":1},)"
                R"("payload":{"rule":"r","sensor":"s","severity":"x","state":"firing",)"
                R"("ts_ms":1,"node":"node-2","node":"node-1"}})"),
           Body(R"({"id":"node-1:1","kind":"alert","created_ms":1,"payload":{},"payload":[]})"),
       }) {
    EXPECT_EQ(Disagreement(body), "") << body;
  }
}

TEST(ParseBatchAgreesWithDom, OnMalformedJson) {
  for (const std::string& body : std::vector<std::string>{
           std::string(""),
           std::string(" "),
           std::string("\0", 1),
           std::string("{"),
           std::string("{}x"),
           std::string("{} {}"),
           std::string("\xEF\xBB{}"),
           std::string("\xEF{}"),
           std::string("[1,]"),
           std::string("{\"a\":1,}"),
           std::string("{\"a\" 1}"),
           std::string("{\"a\":01}"),
           std::string("{\"a\":-}"),
           std::string("{\"a\":1.}"),
           std::string("{\"a\":.5}"),
           std::string("{\"a\":1e}"),
           std::string("{\"a\":+1}"),
           std::string("{\"a\":tru}"),
           std::string("{\"a\":nul}"),
           std::string("{\"a\":True}"),
           std::string("{\"a\":\"\x01\"}"),
           std::string("{\"a\":\"\\x\"}"),
           std::string("{\"a\":\"\\u12\"}"),
           std::string("{\"a\":\"\\ud800\"}"),
           std::string("{\"a\":\"\\udc00\"}"),
           std::string("{\"a\":\"\\ud800\\u0041\"}"),
           std::string("{\"a\":\"\xC0\xAF\"}"),
           std::string("{\"a\":\"\xE0\x80\x80\"}"),
           std::string("{\"a\":\"\xED\xA0\x80\"}"),
           std::string("{\"a\":\"\xF4\x90\x80\x80\"}"),
           std::string("{\"a\":\"\xF5\"}"),
           std::string("{\"a\":\"\xC3\"}"),
           std::string("{\"a\":\"abc"),
           std::string("{\"a\":1\0}", 7),
           std::string("{'a':1}"),
           std::string("{a:1}"),
           std::string("{\"a\":1} /* c */"),
           std::string("{\"a\":[1 2]}"),
       }) {
    EXPECT_EQ(Disagreement(body), "") << body;
  }
}

TEST(ParseBatchAgreesWithDom, OnBadFields) {
  const std::vector<std::string> bodies = {
      "[]",
      "\"x\"",
      R"({"node":"node-1","sent_ms":18446744073709551615,"items":[]})",
      R"({"node":"node-1","sent_ms":18446744073709551616,"items":[]})",
      R"({"node":"node-1","sent_ms":-9223372036854775808,"items":[]})",
      R"({"node":"node-1","sent_ms":-9223372036854775809,"items":[]})",
      R"({"node":"node-1","sent_ms":1E3,"items":[]})",
      R"({"node":"","sent_ms":1,"items":[]})",
      R"({"node":"\u0000","sent_ms":1,"items":[]})",
      R"({"sent_ms":1,"items":[]})",
      R"({"node":"node-1","sent_ms":1,"items":null})",
      Body("1"),
      Body(R"({"id":"node-1","kind":"alert","created_ms":1,"payload":{}})"),
      Body(R"({"id":"node-10:1","kind":"alert","created_ms":1,"payload":{}})"),
      Body(R"({"id":"node-1:1","kind":"","created_ms":1,"payload":{}})"),
      Body(R"({"id":"node-1:1","kind":"alert","created_ms":1})"),
      Body(R"({"id":"node-1:1","kind":"alert","created_ms":1,"payload":"{}"})"),
      Body(R"({"id":"node-1:1","kind":"alert","created_ms":1,"payload":{}})"),
      Body(R"({"id":"node-1:1","kind":"alert","created_ms":1,"payload":{"rule":"r",)"
           R"("sensor":"s","severity":"x","state":"Firing","ts_ms":1}})"),
      Body(R"({"id":"node-1:1","kind":"alert","created_ms":1,"payload":{"rule":"r",)"
           R"("sensor":"s","severity":"x","state":"firing","ts_ms":1,"node":null}})"),
      Body(R"({"id":"node-1:1","kind":"rollup","created_ms":1,"payload":{"sensor":"s",)"
           R"("start_ms":2,"end_ms":1,"count":0,"min":0,"max":0,"mean":0,"last":0}})"),
      Body(R"({"id":"node-1:1","kind":"rollup","created_ms":1,"payload":{"sensor":"s",)"
           R"("start_ms":1,"end_ms":2,"count":0,"min":1e-400,"max":-1e999,"mean":0,"last":0}})"),
      Body(R"({"id":"node-1:1","kind":"rollup","created_ms":1,"payload":{"sensor":"s",)"
           R"("start_ms":1,"end_ms":2,"count":0,"min":1e-400,"max":123456789012345678901234,)"
           R"("mean":-98765432109876543210,"last":true}})"),
      Body(std::string(kAlertItem) + "," + kAlertItem),  // a repeated id is for the store
      Body(R"({"id":"node-1:)" + std::string(kMaxIdBytes, 'a') +
           R"(","kind":"x","created_ms":1,"payload":{}})"),
  };
  for (const std::string& body : bodies) EXPECT_EQ(Disagreement(body), "") << body;
}

TEST(ParseBatchAgreesWithDom, OnDeepNesting) {
  std::string deep = Body(kOtherItem);
  const std::string nest = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_EQ(Disagreement(deep.substr(0, deep.size() - 1) + ",\"x\":" + nest + "}"), "");
  EXPECT_EQ(Disagreement(R"({"x":)" + nest + "}"), "");
  EXPECT_EQ(Disagreement(std::string(kMaxJsonDepth + 1, '[')), "");
}

// Deterministic mutations of valid bodies: bytes replaced, inserted, deleted, truncated.
TEST(ParseBatchAgreesWithDom, OnMutatedBodies) {
  const std::vector<std::string> seeds = {ThreeItems(), Body(kRollupItem), Body(kAlertItem)};
  const std::string alphabet = "{}[],:\"\\ -+.0123456789eEtrufalsnu\x01\x7f\x80\xC3\xA9\xED\xF0";
  std::mt19937 rng(20251126);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string body = seeds[static_cast<size_t>(round) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 4) {
        case 0:
          body[at] = c;
          break;
        case 1:
          body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        case 2:
          body.erase(at, 1 + rng() % 4);
          break;
        default:
          body.resize(at);
      }
    }
    const std::string diff = Disagreement(body);
    ASSERT_EQ(diff, "") << "round " << round << ": " << body;
    if (ParseBatch(body).ok()) ++accepted;
  }
  // The mutations must also produce bodies that pass, or the comparison proves little.
  EXPECT_GT(accepted, 100);
}

}  // namespace
}  // namespace edge::console
