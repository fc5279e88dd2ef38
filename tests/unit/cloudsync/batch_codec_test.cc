#include "edge/cloudsync/batch_codec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace edge::cloudsync {
namespace {

OutboxItem Item(int64_t seq, std::string payload) {
  return OutboxItem{seq, "node-1:abc:" + std::to_string(seq), "alert", 1000 + seq,
                    std::move(payload)};
}

TEST(EncodeBatchBody, FollowsTheProtocolShape) {
  const EncodedBatch batch = EncodeBatchBody(
      "node-1", 1764167000123,
      {Item(17, R"({"rule":"boiler","value":97.5,"context":[[1,2.5]]})"), Item(18, "{}")});
  EXPECT_EQ(batch.invalid_payloads, 0u);
  const auto doc = nlohmann::json::parse(batch.body);
  EXPECT_EQ(doc["node"], "node-1");
  EXPECT_EQ(doc["sent_ms"], 1764167000123);
  ASSERT_EQ(doc["items"].size(), 2u);
  const auto& first = doc["items"][0];
  EXPECT_EQ(first["id"], "node-1:abc:17");
  EXPECT_EQ(first["kind"], "alert");
  EXPECT_EQ(first["created_ms"], 1017);
  ASSERT_TRUE(first["payload"].is_object());  // embedded as JSON, not as a string
  EXPECT_EQ(first["payload"]["rule"], "boiler");
  EXPECT_DOUBLE_EQ(first["payload"]["value"].get<double>(), 97.5);
  EXPECT_EQ(first["payload"]["context"][0][1], 2.5);
  EXPECT_TRUE(doc["items"][1]["payload"].is_object());
}

TEST(EncodeBatchBody, EmptyBatchHasEmptyItemsArray) {
  const auto doc = nlohmann::json::parse(EncodeBatchBody("n", 1, {}).body);
  EXPECT_TRUE(doc["items"].is_array());
  EXPECT_TRUE(doc["items"].empty());
}

TEST(EncodeBatchBody, InvalidPayloadIsSentAsStringWithoutBreakingTheBatch) {
  const EncodedBatch batch =
      EncodeBatchBody("node-1", 5, {Item(1, "{not json"), Item(2, R"({"ok":true})"), Item(3, "")});
  EXPECT_EQ(batch.invalid_payloads, 2u);
  const auto doc = nlohmann::json::parse(batch.body);
  EXPECT_EQ(doc["items"][0]["payload"], "{not json");
  EXPECT_EQ(doc["items"][1]["payload"]["ok"], true);
  EXPECT_EQ(doc["items"][2]["payload"], "");
}

TEST(EncodeBatchBody, InvalidUtf8IsReplacedNotThrown) {
  OutboxItem item = Item(1, "{}");
  item.id = std::string("bad\xff\xfe", 5);
  const EncodedBatch batch = EncodeBatchBody(std::string("n\xc3", 2), 5, {item});
  const auto doc = nlohmann::json::parse(batch.body, nullptr, false);
  EXPECT_FALSE(doc.is_discarded());
}

TEST(EncodeBatchBody, StringsNeedingEscapesRoundTrip) {
  OutboxItem item = Item(1, "{}");
  item.id = "id \"quoted\" back\\slash\ttab";
  item.kind = "caf\xc3\xa9";  // UTF-8, outside printable ASCII
  const EncodedBatch batch = EncodeBatchBody("node\n1", 5, {item});
  const auto doc = nlohmann::json::parse(batch.body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << batch.body;
  EXPECT_EQ(doc["node"], "node\n1");
  EXPECT_EQ(doc["items"][0]["id"], item.id);
  EXPECT_EQ(doc["items"][0]["kind"], item.kind);
}

TEST(EncodeBatchBody, PayloadsAreEmbeddedAsStoredAndAnythingElseIsAString) {
  const EncodedBatch batch = EncodeBatchBody("node-1", 5,
                                             {Item(1, " {\"a\": [1, 2.50, \"x\"]}\n"), Item(2, "7"),
                                              Item(3, std::string("{\"s\":\"\xff\"}")),
                                              Item(4, "{} {}"), Item(5, "{\"quote\":\"\\\"\"}")});
  EXPECT_EQ(batch.invalid_payloads, 2u);  // invalid UTF-8, two documents
  // Valid payloads keep their own text (numbers as written), minus outer whitespace.
  EXPECT_NE(batch.body.find(R"("payload":{"a": [1, 2.50, "x"]}})"), std::string::npos)
      << batch.body;
  const auto doc = nlohmann::json::parse(batch.body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << batch.body;
  EXPECT_EQ(doc["items"][1]["payload"], 7);
  EXPECT_TRUE(doc["items"][2]["payload"].is_string());
  EXPECT_EQ(doc["items"][3]["payload"], "{} {}");
  EXPECT_EQ(doc["items"][4]["payload"]["quote"], "\"");
}

TEST(ParseAckResponse, ReturnsAckedIds) {
  auto ids = ParseAckResponse(R"({"accepted":1,"duplicates":1,"acked":["a","b"]})");
  ASSERT_TRUE(ids.ok()) << ids.error();
  EXPECT_EQ(*ids, (std::vector<std::string>{"a", "b"}));
  auto empty = ParseAckResponse(R"({"acked":[]})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ParseAckResponse, RejectsMalformedReplies) {
  for (const char* bad : {
           "",
           "   ",
           "not json",
           R"({"acked":["a")",
           R"(["a","b"])",
           R"("acked")",
           "null",
           "{}",
           R"({"accepted":3})",
           R"({"acked":"a"})",
           R"({"acked":null})",
           R"({"acked":{"a":1}})",
           R"({"acked":["a",1]})",
           R"({"acked":["a",null]})",
           R"({"acked":[["a"]]})",
           R"({"acked":["a"]} trailing)",
       }) {
    EXPECT_FALSE(ParseAckResponse(bad).ok()) << "accepted: " << bad;
  }
}

TEST(ParseAckResponse, SurvivesBinaryGarbage) {
  const std::string garbage("\x00\xff{\"acked\":[\x01]}\x80", 16);
  EXPECT_FALSE(ParseAckResponse(garbage).ok());
}

TEST(AckedSeqs, MapsKnownIdsAndIgnoresUnknownAndDuplicates) {
  const std::vector<OutboxItem> items = {Item(1, "{}"), Item(2, "{}"), Item(3, "{}")};
  EXPECT_EQ(AckedSeqs(items, {"node-1:abc:3", "other:x:9", "node-1:abc:1", "node-1:abc:3"}),
            (std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(AckedSeqs(items, {}).empty());
  EXPECT_TRUE(AckedSeqs({}, {"node-1:abc:1"}).empty());
}

TEST(EncodeStatusBody, EmbedsTheStatusObject) {
  auto body = EncodeStatusBody("node-1", 1764167000123, R"({"uptime_s":5,"backlog":{"alert":1}})");
  ASSERT_TRUE(body.ok()) << body.error();
  const auto doc = nlohmann::json::parse(*body);
  EXPECT_EQ(doc["node"], "node-1");
  EXPECT_EQ(doc["sent_ms"], 1764167000123);
  EXPECT_EQ(doc["status"]["uptime_s"], 5);
  EXPECT_EQ(doc["status"]["backlog"]["alert"], 1);
}

TEST(EncodeStatusBody, RefusesAnythingButAnObject) {
  for (const char* bad : {"", "not json", "[1]", "3", "\"text\"", "null", "{\"a\":"}) {
    EXPECT_FALSE(EncodeStatusBody("node-1", 1, bad).ok()) << bad;
  }
}

TEST(IsProtocolErrorReply, RecognizesOnlyTheConsolesErrorShape) {
  EXPECT_TRUE(IsProtocolErrorReply(R"({"error":"items[3]: missing field 'rule'"})"));
  EXPECT_TRUE(IsProtocolErrorReply(R"( {"error":"x","extra":1} )"));
  for (const char* other : {"", "<html><body>400 Bad Request</body></html>", R"({"error":3})",
                            R"({"message":"bad"})", R"(["error"])", "\xff\xfe"}) {
    EXPECT_FALSE(IsProtocolErrorReply(other)) << other;
  }
}

}  // namespace
}  // namespace edge::cloudsync
