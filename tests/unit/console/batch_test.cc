#include "edge/console/batch.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace edge::console {
namespace {

using nlohmann::json;

json AlertPayload() {
  return json{{"node", "node-1"},
              {"rule", "boiler-overheat"},
              {"sensor", "plant/boiler1/temp"},
              {"severity", "critical"},
              {"state", "firing"},
              {"value", 97.5},
              {"ts_ms", 1764167000050},
              {"started_ms", 1764166990050},
              {"episode", "boiler-overheat|plant/boiler1/temp|1764166990050"},
              {"context", json::array({json::array({1764166999050, 96.1})})}};
}

json ValidBatch() {
  return json{{"node", "node-1"},
              {"sent_ms", 1764167000123},
              {"items", json::array({json{{"id", "node-1:5f3a9c0e12ab44d1:17"},
                                          {"kind", "alert"},
                                          {"created_ms", 1764167000100},
                                          {"payload", AlertPayload()}}})}};
}

Result<Batch> Parse(const json& j) { return ParseBatch(j.dump()); }

TEST(ParseBatch, AcceptsProtocolExample) {
  auto batch = Parse(ValidBatch());
  ASSERT_TRUE(batch.ok()) << batch.error();
  EXPECT_EQ(batch->node, "node-1");
  EXPECT_EQ(batch->sent_ms, 1764167000123);
  ASSERT_EQ(batch->items.size(), 1u);
  const BatchItem& item = batch->items[0];
  EXPECT_EQ(item.id, "node-1:5f3a9c0e12ab44d1:17");
  EXPECT_EQ(item.created_ms, 1764167000100);
  ASSERT_TRUE(item.alert.has_value());
  EXPECT_EQ(item.alert->rule, "boiler-overheat");
  EXPECT_EQ(item.alert->sensor, "plant/boiler1/temp");
  EXPECT_EQ(item.alert->severity, "critical");
  EXPECT_EQ(item.alert->state, "firing");
  EXPECT_EQ(item.alert->ts_ms, 1764167000050);
  EXPECT_EQ(json::parse(item.payload_json), AlertPayload());
}

TEST(ParseBatch, AcceptsEmptyItems) {
  json j = ValidBatch();
  j["items"] = json::array();
  auto batch = Parse(j);
  ASSERT_TRUE(batch.ok()) << batch.error();
  EXPECT_TRUE(batch->items.empty());
}

TEST(ParseBatch, KeepsUnknownKindWithoutAlertFields) {
  json j = ValidBatch();
  j["items"][0]["kind"] = "trace";
  j["items"][0]["payload"] = json{{"anything", json::array({1, 2})}};
  auto batch = Parse(j);
  ASSERT_TRUE(batch.ok()) << batch.error();
  EXPECT_FALSE(batch->items[0].alert.has_value());
  EXPECT_FALSE(batch->items[0].rollup.has_value());
  EXPECT_EQ(json::parse(batch->items[0].payload_json), j["items"][0]["payload"]);
}

json RollupPayload() {
  return json{{"node", "node-1"},  {"sensor", "plant/boiler1/temp"},
              {"start_ms", 60000}, {"end_ms", 120000},
              {"count", 12},       {"min", 20},
              {"max", 25.5},       {"mean", 22.25},
              {"last", 21.0}};
}

json RollupBatch() {
  json j = ValidBatch();
  j["items"][0]["kind"] = "rollup";
  j["items"][0]["payload"] = RollupPayload();
  return j;
}

TEST(ParseBatch, ReadsRollupFields) {
  auto batch = Parse(RollupBatch());
  ASSERT_TRUE(batch.ok()) << batch.error();
  ASSERT_TRUE(batch->items[0].rollup.has_value());
  EXPECT_FALSE(batch->items[0].alert.has_value());
  const RollupFields& r = *batch->items[0].rollup;
  EXPECT_EQ(r.sensor, "plant/boiler1/temp");
  EXPECT_EQ(r.start_ms, 60000);
  EXPECT_EQ(r.end_ms, 120000);
  EXPECT_EQ(r.count, 12);
  EXPECT_EQ(r.min, 20.0);  // an integer literal is a number too
  EXPECT_EQ(r.max, 25.5);
  EXPECT_EQ(r.mean, 22.25);
  EXPECT_EQ(r.last, 21.0);
}

class ParseBatchMissingRollupField : public testing::TestWithParam<std::string> {};

TEST_P(ParseBatchMissingRollupField, IsRejectedNamingIt) {
  json j = RollupBatch();
  j["items"][0]["payload"].erase(GetParam());
  auto batch = Parse(j);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.error().find("rollup payload"), std::string::npos) << batch.error();
  EXPECT_NE(batch.error().find(GetParam()), std::string::npos) << batch.error();
}
INSTANTIATE_TEST_SUITE_P(Fields, ParseBatchMissingRollupField,
                         testing::Values("sensor", "start_ms", "end_ms", "count", "min", "max",
                                         "mean", "last"));

TEST(ParseBatch, RejectsBadRollupValues) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"sensor", ""},
      {"sensor", 3},
      {"start_ms", 1.5},
      {"end_ms", 59999},
      {"count", -1},
      {"count", 2.5},
      {"min", "20"},
      {"max", nullptr},
      {"mean", json::array()},
      {"node", "node-2"},
      {"last", json::object()},
  };
  for (const auto& [field, value] : cases) {
    json j = RollupBatch();
    j["items"][0]["payload"][field] = value;
    EXPECT_FALSE(Parse(j).ok()) << field << " = " << value.dump();
  }
  // A literal too large for a double overflows to infinity, which is rejected.
  std::string text = RollupBatch().dump();
  const std::string max = "\"max\":25.5";
  ASSERT_NE(text.find(max), std::string::npos);
  text.replace(text.find(max), max.size(), "\"max\":1e999");
  EXPECT_FALSE(ParseBatch(text).ok());
}

TEST(ParseStatusReport, KeepsTheStatusObject) {
  const json body = {{"node", "node-1"},
                     {"sent_ms", 1764167000123},
                     {"status", {{"agent_version", "1.0.0"}, {"backlog", {{"alert", 3}}}}}};
  auto report = ParseStatusReport(body.dump());
  ASSERT_TRUE(report.ok()) << report.error();
  EXPECT_EQ(report->node, "node-1");
  EXPECT_EQ(report->sent_ms, 1764167000123);
  EXPECT_EQ(json::parse(report->status_json), body["status"]);
}

TEST(ParseStatusReport, RejectsMalformedReports) {
  const json good = {{"node", "node-1"}, {"sent_ms", 1}, {"status", json::object()}};
  for (const char* field : {"node", "sent_ms", "status"}) {
    json j = good;
    j.erase(field);
    auto report = ParseStatusReport(j.dump());
    ASSERT_FALSE(report.ok()) << field;
    EXPECT_NE(report.error().find(field), std::string::npos) << report.error();
  }
  for (const json& status : {json(nullptr), json::array(), json("ok"), json(3)}) {
    json j = good;
    j["status"] = status;
    EXPECT_FALSE(ParseStatusReport(j.dump()).ok()) << status.dump();
  }
  EXPECT_FALSE(ParseStatusReport("").ok());
  EXPECT_FALSE(ParseStatusReport("[]").ok());
  EXPECT_FALSE(ParseStatusReport(R"({"node":"node-1","sent_ms":1,"status":{)").ok());
  std::string deep = R"({"node":"node-1","sent_ms":1,"status":)";
  for (size_t i = 0; i < kMaxJsonDepth + 1; ++i) deep += "{\"a\":";
  deep += "1";
  for (size_t i = 0; i < kMaxJsonDepth + 1; ++i) deep += "}";
  deep += "}";
  EXPECT_FALSE(ParseStatusReport(deep).ok());
}

TEST(ParseBatch, RejectsMalformedJson) {
  EXPECT_FALSE(ParseBatch("{\"node\": \"node-1\",").ok());
  EXPECT_FALSE(ParseBatch("").ok());
  EXPECT_FALSE(ParseBatch("\xff\xfe").ok());
}

TEST(ParseBatch, RejectsNonObjectBody) {
  EXPECT_FALSE(ParseBatch("[]").ok());
  EXPECT_FALSE(ParseBatch("42").ok());
}

TEST(ParseBatch, RejectsDeepNesting) {
  json j = ValidBatch();
  std::string text = j.dump();
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  text.insert(text.size() - 1, ",\"extra\":" + deep);
  auto batch = ParseBatch(text);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.error().find("nested"), std::string::npos);
}

TEST(ParseBatch, BracketsInsideStringsDoNotCountAsNesting) {
  json j = ValidBatch();
  j["items"][0]["payload"]["rule"] = std::string(200, '[');
  EXPECT_TRUE(Parse(j).ok());
}

class ParseBatchMissing : public testing::TestWithParam<std::string> {};

TEST_P(ParseBatchMissing, TopLevelFieldIsRejectedNamingIt) {
  json j = ValidBatch();
  j.erase(GetParam());
  auto batch = Parse(j);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.error().find(GetParam()), std::string::npos) << batch.error();
}
INSTANTIATE_TEST_SUITE_P(Fields, ParseBatchMissing, testing::Values("node", "sent_ms", "items"));

class ParseBatchMissingItemField : public testing::TestWithParam<std::string> {};

TEST_P(ParseBatchMissingItemField, IsRejectedNamingIt) {
  json j = ValidBatch();
  j["items"][0].erase(GetParam());
  auto batch = Parse(j);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.error().find(GetParam()), std::string::npos) << batch.error();
  EXPECT_NE(batch.error().find("items[0]"), std::string::npos) << batch.error();
}
INSTANTIATE_TEST_SUITE_P(Fields, ParseBatchMissingItemField,
                         testing::Values("id", "kind", "created_ms", "payload"));

class ParseBatchMissingAlertField : public testing::TestWithParam<std::string> {};

TEST_P(ParseBatchMissingAlertField, IsRejectedNamingIt) {
  json j = ValidBatch();
  j["items"][0]["payload"].erase(GetParam());
  auto batch = Parse(j);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.error().find(GetParam()), std::string::npos) << batch.error();
}
INSTANTIATE_TEST_SUITE_P(Fields, ParseBatchMissingAlertField,
                         testing::Values("rule", "sensor", "severity", "state", "ts_ms"));

TEST(ParseBatch, RejectsWrongTypes) {
  const std::vector<std::pair<json::json_pointer, json>> cases = {
      {json::json_pointer("/node"), 7},
      {json::json_pointer("/node"), ""},
      {json::json_pointer("/sent_ms"), "1764167000123"},
      {json::json_pointer("/sent_ms"), 1.5},
      {json::json_pointer("/items"), json::object()},
      {json::json_pointer("/items/0"), "node-1:a:1"},
      {json::json_pointer("/items/0/id"), 17},
      {json::json_pointer("/items/0/kind"), nullptr},
      {json::json_pointer("/items/0/created_ms"), "5"},
      {json::json_pointer("/items/0/created_ms"), 18446744073709551615u},
      {json::json_pointer("/items/0/payload"), json::array()},
      {json::json_pointer("/items/0/payload/ts_ms"), 1.0e12},
      {json::json_pointer("/items/0/payload/rule"), json::array()},
      {json::json_pointer("/items/0/payload/state"), "pending"},
  };
  for (const auto& [pointer, value] : cases) {
    json j = ValidBatch();
    j[pointer] = value;
    EXPECT_FALSE(Parse(j).ok()) << pointer.to_string() << " = " << value.dump();
  }
}

TEST(ParseBatch, RejectsItemIdOfAnotherNode) {
  json j = ValidBatch();
  j["items"][0]["id"] = "node-2:5f3a9c0e12ab44d1:17";
  EXPECT_FALSE(Parse(j).ok());
  j["items"][0]["id"] = "node-1";
  EXPECT_FALSE(Parse(j).ok());
  j["items"][0]["id"] = "node-10:5f3a:1";
  EXPECT_FALSE(Parse(j).ok());
}

TEST(ParseBatch, RejectsAlertPayloadNamingAnotherNode) {
  json j = ValidBatch();
  j["items"][0]["payload"]["node"] = "node-2";
  auto batch = Parse(j);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.error().find("node"), std::string::npos);
}

TEST(ParseBatch, RejectsOverlongId) {
  json j = ValidBatch();
  j["items"][0]["id"] = "node-1:" + std::string(kMaxIdBytes, 'a');
  EXPECT_FALSE(Parse(j).ok());
}

}  // namespace
}  // namespace edge::console

// --- JSON forms (cases the removed DOM reference comparison covered) ---------------------

namespace edge::console {
namespace {

const char* const kAlertItem =
    R"({"id":"node-1:5f3a:17","kind":"alert","created_ms":1764167000100,"payload":)"
    R"({"node":"node-1","rule":"boiler-overheat","sensor":"plant/boiler1/temp",)"
    R"("severity":"critical","state":"firing","value":97.5,"ts_ms":1764167000050,)"
    R"("started_ms":1764166990050,"episode":"e|1","context":[[1764166999050,96.1]]}})";

std::string Body(const std::string& items) {
  return R"({"node":"node-1","sent_ms":1764167000123,"items":[)" + items + "]}";
}

// The error ParseBatch gives, or "" when it accepts the body.
std::string ErrorOf(const std::string& body) {
  const Result<Batch> batch = ParseBatch(body);
  return batch.ok() ? "" : batch.error();
}

TEST(ParseBatchJson, AcceptsBomWhitespaceAndATrailingNul) {
  EXPECT_EQ(ErrorOf("\xEF\xBB\xBF \r\n\t{ \"node\" : \"node-1\" , \"sent_ms\" : 1 , "
                    "\"items\" : [ ] } \n"),
            "");
  EXPECT_EQ(ErrorOf(Body(kAlertItem) + std::string("\0trailing garbage", 17)), "");
}

TEST(ParseBatchJson, DecodesEscapesInKeysAndValues) {
  auto batch = ParseBatch(
      Body(R"({"id":"node-1:a\u003a1","kind":"al\u0065rt","created_ms":1,"payload":)"
           R"({"r\u0075le":"r\t\"\\\/\b\f\n\r","sensor":"\u00e9\ud83d\ude00\u20ac",)"
           R"("severity":"x","state":"resolved","ts_ms":-0,"n\u006fde":"node\u002d1"}})"));
  ASSERT_TRUE(batch.ok()) << batch.error();
  const BatchItem& item = batch->items[0];
  EXPECT_EQ(item.id, "node-1:a:1");
  ASSERT_TRUE(item.alert.has_value());
  EXPECT_EQ(item.alert->rule, "r\t\"\\/\b\f\n\r");
  EXPECT_EQ(item.alert->sensor, "\xC3\xA9\xF0\x9F\x98\x80\xE2\x82\xAC");
  EXPECT_EQ(item.alert->ts_ms, 0);
  EXPECT_EQ(json::parse(item.payload_json)["rule"], "r\t\"\\/\b\f\n\r");
}

TEST(ParseBatchJson, PayloadReadsBackAsTheSameJson) {
  const std::string payload = R"({"a":[1,{"b":null}],"c":-0,"d":2.5e1,"e":"x\u0001y","f":true})";
  auto batch = ParseBatch(
      Body(R"({"id":"node-1:1","kind":"trace","created_ms":6,"payload": )" + payload + "}"));
  ASSERT_TRUE(batch.ok()) << batch.error();
  EXPECT_EQ(json::parse(batch->items[0].payload_json), json::parse(payload));
}

TEST(ParseBatchJson, PayloadIsWrittenOutCompactlyAsSent) {
  const std::string plain = R"({"a":[1,{"b":null},[]],"c":-0,"d":2.5e1,"f":true,"g":false,"h":{}})";
  const std::string escaped = R"({"a":[1,2],"e":"x\u0001y","i":"caf\u00e9\/","\u006a":[true]})";
  const std::string unescaped =
      "{\"a\":[1,2],\"e\":\"x\\u0001y\",\"i\":\"caf\xC3\xA9/\",\"j\":[true]}";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {plain, plain},
      {"{ \"a\" : [ 1 , { \"b\" : null } , [ ] ] , \"c\" : -0 , \"d\" : 2.5e1 , \"f\" : true , "
       "\"g\" : false , \"h\" : { } }",
       plain},
      {R"({"a":[1,{"b":null},[]],"c":-0,"d":2.5e1,"f":true,"g":false,"h":{} })", plain},
      {R"({"a":[1,{"b":null},[]],"c":-0,"d":2.5e1,"f":true,"g":false,"h":{}}   )", plain},
      {escaped, unescaped},
  };
  for (const auto& [sent, written] : cases) {
    for (const std::string before : {":", " : "}) {
      auto batch = ParseBatch(Body(R"({"id":"node-1:1","kind":"trace","created_ms":6,"payload")" +
                                   before + sent + "}"));
      ASSERT_TRUE(batch.ok()) << batch.error();
      EXPECT_EQ(batch->items[0].payload_json, written) << sent;
    }
  }
}

TEST(ParseBatchJson, LastOfRepeatedKeysWins) {
  EXPECT_EQ(ErrorOf(R"({"node":"node-2","node":"node-1","sent_ms":1.5,"sent_ms":1,"items":[]})"),
            "");
  EXPECT_EQ(ErrorOf(R"({"node":"node-1","sent_ms":1,"items":[{"bad":1}],"items":[]})"), "");
  EXPECT_EQ(ErrorOf(R"({"node":"node-1","sent_ms":1,"items":[],"items":{}})"),
            "field 'items' must be an array");
  EXPECT_EQ(ErrorOf(Body(R"({"id":"node-1:1","kind":"alert","created_ms":1,"payload":{"rule":1},)"
                         R"("payload":{"rule":"r","sensor":"s","severity":"x","state":"firing",)"
                         R"("ts_ms":1,"node":"node-2","node":"node-1"}})")),
            "");
}

TEST(ParseBatchJson, RejectsWhatNlohmannRejectsAsMalformed) {
  for (const std::string& body : std::vector<std::string>{std::string("\0", 1),
                                                          "{}x",
                                                          "{} {}",
                                                          "\xEF\xBB{}",
                                                          "[1,]",
                                                          "{\"a\":1,}",
                                                          "{\"a\":01}",
                                                          "{\"a\":1.}",
                                                          "{\"a\":.5}",
                                                          "{\"a\":+1}",
                                                          "{\"a\":True}",
                                                          "{\"a\":\"\x01\"}",
                                                          "{\"a\":\"\\x\"}",
                                                          "{\"a\":\"\\ud800\"}",
                                                          "{\"a\":\"\\udc00\"}",
                                                          "{\"a\":\"\\ud800\\u0041\"}",
                                                          "{\"a\":\"\xC0\xAF\"}",
                                                          "{\"a\":\"\xED\xA0\x80\"}",
                                                          "{\"a\":\"\xF4\x90\x80\x80\"}",
                                                          "{\"a\":\"abc",
                                                          "{'a':1}",
                                                          "{\"a\":1} /* c */",
                                                          "{\"a\":1e999}",
                                                          "{\"a\":[1 2]}"}) {
    EXPECT_EQ(ErrorOf(body), "malformed JSON") << body;
  }
}

TEST(ParseBatchJson, ReadsIntegersAsTheDomDid) {
  EXPECT_EQ(ErrorOf(R"({"node":"node-1","sent_ms":18446744073709551615,"items":[]})"),
            "field 'sent_ms' is out of range");
  EXPECT_EQ(ErrorOf(R"({"node":"node-1","sent_ms":-9223372036854775808,"items":[]})"), "");
  EXPECT_EQ(ErrorOf(R"({"node":"node-1","sent_ms":-9223372036854775809,"items":[]})"),
            "field 'sent_ms' must be an integer");
  EXPECT_EQ(ErrorOf(R"({"node":"node-1","sent_ms":1E3,"items":[]})"),
            "field 'sent_ms' must be an integer");
  EXPECT_EQ(ErrorOf(Body(R"({"id":"node-1:1","kind":"rollup","created_ms":1,"payload":{)"
                         R"("sensor":"s","start_ms":1,"end_ms":2,"count":0,"min":1e-400,)"
                         R"("max":123456789012345678901234,"mean":-98765432109876543210,)"
                         R"("last":true}})")),
            "items[0]: rollup payload: field 'last' must be a number");
}

TEST(ParseBatchJson, AcceptsNestingUpToTheLimit) {
  const std::string nest =
      std::string(kMaxJsonDepth - 1, '[') + std::string(kMaxJsonDepth - 1, ']');
  EXPECT_EQ(ErrorOf(R"({"node":"node-1","sent_ms":1,"items":[],"x":)" + nest + "}"), "");
  EXPECT_EQ(ErrorOf(R"({"node":"node-1","sent_ms":1,"items":[],"x":[)" + nest + "]}"),
            "JSON nested deeper than " + std::to_string(kMaxJsonDepth));
}

}  // namespace
}  // namespace edge::console
