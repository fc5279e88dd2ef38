// The MQTT 3.1.1 codec (agent/include/edge/agent/mqtt_codec.h): encoders byte for byte
// against the specification's layouts, and the incremental parser on whole, split,
// oversize and malformed input.

#include "edge/agent/mqtt_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edge::agent::mqtt {
namespace {

using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// A PUBLISH as a broker sends it, built independently of the parser under test.
std::string Publish(std::string_view topic, std::string_view payload, int qos = 0, uint16_t id = 0,
                    bool dup = false, bool retain = false) {
  std::string body;
  body.push_back(static_cast<char>(topic.size() >> 8));
  body.push_back(static_cast<char>(topic.size() & 0xff));
  body.append(topic);
  if (qos > 0) {
    body.push_back(static_cast<char>(id >> 8));
    body.push_back(static_cast<char>(id & 0xff));
  }
  body.append(payload);
  std::string out;
  out.push_back(static_cast<char>(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0)));
  EncodeRemainingLength(body.size(), out);
  return out + body;
}

// What the tests compare: a parsed packet with its views copied.
struct Seen {
  ParseEvent event;
  PacketType type;
  uint16_t packet_id;
  std::string topic;
  std::string payload;
  int qos;
  bool dup;
  bool retain;
  int connack_code;
  std::string suback_results;
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{event " << static_cast<int>(s.event) << " type " << static_cast<int>(s.type)
            << " id " << s.packet_id << " topic '" << s.topic << "' payload " << s.payload.size()
            << " bytes qos " << s.qos << "}";
}

Seen ToSeen(const ParseResult& r) {
  const Packet& p = r.packet;
  return Seen{r.event, p.type, p.packet_id, std::string(p.topic), std::string(p.payload),
              p.qos,   p.dup,  p.retain,    p.connack_code,       std::string(p.suback_results)};
}

// Feeds `pieces` in turn and collects every packet; an error ends the collection with
// the error's message in `error`.
std::vector<Seen> ParseAll(MqttParser& parser, const std::vector<std::string_view>& pieces,
                           std::string* error = nullptr, size_t* max_buffered = nullptr) {
  std::vector<Seen> seen;
  for (std::string_view piece : pieces) {
    while (true) {
      ParseResult r = parser.Next(piece);
      if (max_buffered) *max_buffered = std::max(*max_buffered, parser.buffered_bytes());
      if (r.event == ParseEvent::kNeedMore) {
        EXPECT_TRUE(piece.empty());
        break;
      }
      if (r.event == ParseEvent::kError) {
        if (error) *error = r.error;
        return seen;
      }
      seen.push_back(ToSeen(r));
    }
  }
  return seen;
}

std::string ParseError(std::string_view bytes, size_t max_packet = 1024) {
  MqttParser parser(max_packet);
  std::string error;
  ParseAll(parser, {bytes}, &error);
  return error;
}

// ---- encoders ----

TEST(MqttEncode, ConnectWithoutCredentials) {
  std::string out;
  ConnectOptions options;
  options.client_id = "cid";
  options.keepalive_s = 30;
  ASSERT_TRUE(EncodeConnect(options, out).ok());
  EXPECT_EQ(out, Bytes({0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 3, 'c', 'i', 'd'}));
}

TEST(MqttEncode, ConnectForAPersistentSessionLeavesTheCleanSessionFlagOff) {
  std::string out;
  ConnectOptions options;
  options.client_id = "cid";
  options.keepalive_s = 30;
  options.clean_session = false;
  ASSERT_TRUE(EncodeConnect(options, out).ok());
  EXPECT_EQ(out, Bytes({0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 30, 0, 3, 'c', 'i', 'd'}));
}

TEST(MqttEncode, ConnectWithUserNameAndPassword) {
  std::string out;
  ASSERT_TRUE(
      EncodeConnect({.client_id = "c", .keepalive_s = 300, .username = "u", .password = "pw"}, out)
          .ok());
  EXPECT_EQ(out, Bytes({0x10, 20, 0, 4,   'M', 'Q', 'T', 'T', 4, 0xc2, 0x01,
                        0x2c, 0,  1, 'c', 0,   1,   'u', 0,   2, 'p',  'w'}));
}

TEST(MqttEncode, ConnectRefusesAPasswordWithoutUserNameAndAppendsNothing) {
  std::string out = "x";
  ConnectOptions no_user;
  no_user.client_id = "c";
  no_user.password = "pw";
  EXPECT_FALSE(EncodeConnect(no_user, out).ok());
  const std::string long_id(65536, 'c');
  ConnectOptions too_long;
  too_long.client_id = long_id;
  EXPECT_FALSE(EncodeConnect(too_long, out).ok());
  EXPECT_EQ(out, "x");
}

TEST(MqttEncode, SubscribeListsEveryFilterWithItsQos) {
  std::string out;
  const SubscribeFilter filters[] = {{"a/b", 1}, {"#", 0}};
  ASSERT_TRUE(EncodeSubscribe(1, filters, out).ok());
  EXPECT_EQ(out, Bytes({0x82, 12, 0, 1, 0, 3, 'a', '/', 'b', 1, 0, 1, '#', 0}));
}

TEST(MqttEncode, SubscribeRefusesBadArguments) {
  std::string out;
  const SubscribeFilter good[] = {{"a", 1}};
  const SubscribeFilter empty_filter[] = {{"", 1}};
  const SubscribeFilter qos3[] = {{"a", 3}};
  EXPECT_FALSE(EncodeSubscribe(0, good, out).ok());
  EXPECT_FALSE(EncodeSubscribe(1, {}, out).ok());
  EXPECT_FALSE(EncodeSubscribe(1, empty_filter, out).ok());
  EXPECT_FALSE(EncodeSubscribe(1, qos3, out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(MqttEncode, AcknowledgementsPingAndDisconnect) {
  std::string out;
  EncodePuback(0x1234, out);
  EncodePubrec(0x0102, out);
  EncodePubcomp(0xfffe, out);
  EncodePingreq(out);
  EncodeDisconnect(out);
  EXPECT_EQ(out,
            Bytes({0x40, 2, 0x12, 0x34, 0x50, 2, 1, 2, 0x70, 2, 0xff, 0xfe, 0xc0, 0, 0xe0, 0}));
}

TEST(MqttEncode, RemainingLengthAtEachEncodingBoundary) {
  const std::pair<size_t, std::string> cases[] = {
      {0, Bytes({0x00})},
      {127, Bytes({0x7f})},
      {128, Bytes({0x80, 0x01})},
      {16383, Bytes({0xff, 0x7f})},
      {16384, Bytes({0x80, 0x80, 0x01})},
      {2097151, Bytes({0xff, 0xff, 0x7f})},
      {2097152, Bytes({0x80, 0x80, 0x80, 0x01})},
      {kMaxRemainingLength, Bytes({0xff, 0xff, 0xff, 0x7f})},
  };
  for (const auto& [value, expected] : cases) {
    std::string out;
    EncodeRemainingLength(value, out);
    EXPECT_EQ(out, expected) << value;
  }
}

TEST(MqttEncode, ConnackCodesHaveNames) {
  EXPECT_EQ(ConnackCodeText(0), "accepted");
  EXPECT_EQ(ConnackCodeText(5), "not authorized");
  EXPECT_EQ(ConnackCodeText(4), "bad user name or password");
  EXPECT_EQ(ConnackCodeText(77), "unknown return code");
}

// ---- parser: whole packets ----

TEST(MqttParser, DecodesAQos1PublishWithoutCopying) {
  const std::string bytes = Publish("plant/a/temp", "21.5", 1, 0x0a0b, true, true);
  MqttParser parser(1024);
  std::string_view in = bytes;
  ParseResult r = parser.Next(in);
  ASSERT_EQ(r.event, ParseEvent::kPacket);
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(r.packet.type, PacketType::kPublish);
  EXPECT_EQ(r.packet.topic, "plant/a/temp");
  EXPECT_EQ(r.packet.payload, "21.5");
  EXPECT_EQ(r.packet.qos, 1);
  EXPECT_EQ(r.packet.packet_id, 0x0a0b);
  EXPECT_TRUE(r.packet.dup);
  EXPECT_TRUE(r.packet.retain);
  EXPECT_EQ(r.packet.payload.data(), bytes.data() + bytes.size() - 4);  // a view, no copy
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  EXPECT_EQ(parser.Next(in).event, ParseEvent::kNeedMore);
}

TEST(MqttParser, DecodesConnackSubackPubrelAndPingresp) {
  const std::string bytes = Bytes({0x20, 2, 1, 5, 0x90, 4, 0, 1, 1, 0x80, 0x62, 2, 0, 9, 0xd0, 0});
  MqttParser parser(1024);
  const std::vector<Seen> seen = ParseAll(parser, {bytes});
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].type, PacketType::kConnack);
  EXPECT_EQ(seen[0].connack_code, 5);
  EXPECT_EQ(seen[1].type, PacketType::kSuback);
  EXPECT_EQ(seen[1].packet_id, 1);
  EXPECT_EQ(seen[1].suback_results, Bytes({1, kSubackFailure}));
  EXPECT_EQ(seen[2].type, PacketType::kPubrel);
  EXPECT_EQ(seen[2].packet_id, 9);
  EXPECT_EQ(seen[3].type, PacketType::kPingresp);
}

TEST(MqttParser, ReportsSessionPresentFromConnack) {
  MqttParser parser(16);
  const std::string bytes = Bytes({0x20, 2, 1, 0});
  std::string_view in = bytes;
  ParseResult r = parser.Next(in);
  ASSERT_EQ(r.event, ParseEvent::kPacket);
  EXPECT_TRUE(r.packet.session_present);
  EXPECT_EQ(r.packet.connack_code, 0);
}

TEST(MqttParser, ParsesManyPacketsFromOneChunk) {
  std::string chunk;
  for (int i = 0; i < 1000; ++i) {
    chunk += Publish("sensors/s" + std::to_string(i), "{\"value\":" + std::to_string(i) + "}",
                     i % 2, static_cast<uint16_t>(i % 2 ? i : 0));
  }
  MqttParser parser(1024);
  size_t max_buffered = 0;
  const std::vector<Seen> seen = ParseAll(parser, {chunk}, nullptr, &max_buffered);
  ASSERT_EQ(seen.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(seen[i].topic, "sensors/s" + std::to_string(i));
    EXPECT_EQ(seen[i].payload, "{\"value\":" + std::to_string(i) + "}");
    EXPECT_EQ(seen[i].qos, i % 2);
  }
  EXPECT_EQ(max_buffered, 0u);
}

TEST(MqttParser, RemainingLengthsAtEachVarintBoundary) {
  for (size_t remaining : {size_t{127}, size_t{128}, size_t{16383}, size_t{16384}}) {
    const std::string topic = "t";
    const std::string payload(remaining - 2 - topic.size(), 'p');
    const std::string bytes = Publish(topic, payload);
    ASSERT_EQ(bytes.size(), remaining + 1 + (remaining < 128 ? 1 : remaining < 16384 ? 2 : 3));
    MqttParser parser(20000);
    const std::vector<Seen> seen = ParseAll(parser, {bytes});
    ASSERT_EQ(seen.size(), 1u) << remaining;
    EXPECT_EQ(seen[0].payload, payload) << remaining;
  }
}

TEST(MqttParser, AnEmptyTopicAndPayloadAreAllowed) {
  MqttParser parser(16);
  const std::vector<Seen> seen = ParseAll(parser, {Publish("", "")});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].topic, "");
  EXPECT_EQ(seen[0].payload, "");
}

// ---- parser: packets split across reads ----

std::string MixedStream() {
  return Bytes({0x20, 2, 0, 0}) + Bytes({0x90, 3, 0, 1, 1}) + Publish("a/b", "1", 1, 7) +
         Publish("plant/line-1/boiler/temp", std::string(300, 'x'), 0) +
         Publish("q2", "two", 2, 65535) + Bytes({0x62, 2, 0xff, 0xff}) + Bytes({0xd0, 0}) +
         Publish("z", std::string(20000, 'y'), 1, 3);
}

TEST(MqttParser, SameResultWhateverByteTheStreamIsSplitAt) {
  const std::string stream = MixedStream();
  MqttParser whole_parser(1 << 16);
  const std::vector<Seen> expected = ParseAll(whole_parser, {stream});
  ASSERT_EQ(expected.size(), 8u);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    MqttParser parser(1 << 16);
    const std::string_view all = stream;
    EXPECT_EQ(ParseAll(parser, {all.substr(0, cut), all.substr(cut)}), expected) << "cut " << cut;
  }
}

TEST(MqttParser, SameResultFedOneByteAtATime) {
  const std::string stream = MixedStream();
  MqttParser whole_parser(1 << 16);
  const std::vector<Seen> expected = ParseAll(whole_parser, {stream});
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < stream.size(); ++i) bytes.push_back(std::string_view(stream).substr(i, 1));
  MqttParser parser(1 << 16);
  size_t max_buffered = 0;
  EXPECT_EQ(ParseAll(parser, bytes, nullptr, &max_buffered), expected);
  EXPECT_LE(max_buffered, 20000u + 2 + 1 + 2 + kMaxFixedHeader);
}

// ---- parser: oversize packets ----

TEST(MqttParser, SkipsAnOversizePublishAcrossFeedsWithoutBufferingIt) {
  const std::string big = Publish("sensors/big", std::string(5000, 'b'), 1, 42);
  const std::string small = Publish("sensors/small", "7", 0);
  const std::string stream = big + small;
  MqttParser parser(100);
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < stream.size(); i += 37) {
    pieces.push_back(std::string_view(stream).substr(i, 37));
  }
  size_t max_buffered = 0;
  const std::vector<Seen> seen = ParseAll(parser, pieces, nullptr, &max_buffered);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].event, ParseEvent::kSkipped);
  EXPECT_EQ(seen[0].type, PacketType::kPublish);
  EXPECT_EQ(seen[0].qos, 1);
  EXPECT_EQ(seen[0].packet_id, 42);  // still acknowledged by the client
  EXPECT_EQ(seen[0].payload, "");
  EXPECT_EQ(seen[1].event, ParseEvent::kPacket);
  EXPECT_EQ(seen[1].topic, "sensors/small");
  EXPECT_LE(max_buffered, 100u + kMaxFixedHeader);
  EXPECT_EQ(parser.skipped_packets(), 1u);
}

TEST(MqttParser, SkipsOversizePacketsWhateverByteTheStreamIsSplitAt) {
  const std::string stream = Publish("a", "1", 1, 5) +
                             Publish("long/topic/name", std::string(300, 'x'), 2, 0x0102) +
                             Publish("b", std::string(200, 'y'), 0) + Publish("c", "3", 1, 6);
  MqttParser whole_parser(64);
  const std::vector<Seen> expected = ParseAll(whole_parser, {stream});
  ASSERT_EQ(expected.size(), 4u);
  EXPECT_EQ(expected[1].event, ParseEvent::kSkipped);
  EXPECT_EQ(expected[1].packet_id, 0x0102);
  EXPECT_EQ(expected[1].qos, 2);
  EXPECT_EQ(expected[2].event, ParseEvent::kSkipped);
  EXPECT_EQ(expected[3].topic, "c");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    MqttParser parser(64);
    size_t max_buffered = 0;
    const std::string_view all = stream;
    EXPECT_EQ(ParseAll(parser, {all.substr(0, cut), all.substr(cut)}, nullptr, &max_buffered),
              expected)
        << "cut " << cut;
    EXPECT_LE(max_buffered, 64u + kMaxFixedHeader);
    EXPECT_EQ(parser.skipped_packets(), 2u);
  }
}

TEST(MqttParser, TheLargestRemainingLengthIsSkippedNotRefused) {
  MqttParser parser(1024);
  const std::string header = Bytes({0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 't'});
  std::string_view in = header;
  ParseResult r = parser.Next(in);
  EXPECT_EQ(r.event, ParseEvent::kSkipped);
  EXPECT_EQ(parser.Next(in).event, ParseEvent::kNeedMore);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

// ---- parser: protocol errors ----

TEST(MqttParser, RefusesAFiveByteRemainingLength) {
  EXPECT_THAT(ParseError(Bytes({0x30, 0xff, 0xff, 0xff, 0xff, 0x01})),
              HasSubstr("remaining length"));
  // Also when the bytes come one at a time.
  MqttParser parser(1024);
  const std::string bytes = Bytes({0x30, 0x80, 0x80, 0x80, 0x80, 0x01});
  std::string error;
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < bytes.size(); ++i) pieces.push_back(std::string_view(bytes).substr(i, 1));
  ParseAll(parser, pieces, &error);
  EXPECT_THAT(error, HasSubstr("remaining length"));
}

TEST(MqttParser, RefusesQos3) {
  EXPECT_THAT(ParseError(Bytes({0x36, 5, 0, 1, 't', 0, 1})), HasSubstr("qos 3"));
}

TEST(MqttParser, RefusesATopicLengthThatOverrunsThePacket) {
  EXPECT_THAT(ParseError(Bytes({0x30, 4, 0, 9, 'a', 'b'})), HasSubstr("overruns"));
  // The packet id does not fit after the topic.
  EXPECT_THAT(ParseError(Bytes({0x32, 4, 0, 1, 'a', 0})), HasSubstr("overruns"));
  // And while skipping an oversize packet.
  EXPECT_THAT(ParseError(Bytes({0x30, 100, 0, 200}) + std::string(98, 'x'), 10),
              HasSubstr("overruns"));
}

TEST(MqttParser, RefusesPacketTypesAClientNeverReceives) {
  EXPECT_THAT(ParseError(Bytes({0x10, 0})), HasSubstr("CONNECT"));
  EXPECT_THAT(ParseError(Bytes({0x82, 0})), HasSubstr("SUBSCRIBE"));
  EXPECT_THAT(ParseError(Bytes({0xa2, 0})), HasSubstr("UNSUBSCRIBE"));
  EXPECT_THAT(ParseError(Bytes({0xc0, 0})), HasSubstr("PINGREQ"));
  EXPECT_THAT(ParseError(Bytes({0xe0, 0})), HasSubstr("DISCONNECT"));
  EXPECT_THAT(ParseError(Bytes({0x00, 0})), HasSubstr("reserved"));
  EXPECT_THAT(ParseError(Bytes({0xf0, 0})), HasSubstr("reserved"));
}

TEST(MqttParser, RefusesWrongLengthsAndFlags) {
  EXPECT_THAT(ParseError(Bytes({0x20, 3, 0, 0, 0})), HasSubstr("CONNACK"));
  EXPECT_THAT(ParseError(Bytes({0x21, 2, 0, 0})), HasSubstr("flags"));
  EXPECT_THAT(ParseError(Bytes({0x20, 2, 2, 0})), HasSubstr("acknowledge flags"));
  EXPECT_THAT(ParseError(Bytes({0x60, 2, 0, 1})), HasSubstr("PUBREL"));
  EXPECT_THAT(ParseError(Bytes({0x40, 3, 0, 1, 0})), HasSubstr("PUBACK"));
  EXPECT_THAT(ParseError(Bytes({0xd0, 1, 0})), HasSubstr("PINGRESP"));
  EXPECT_THAT(ParseError(Bytes({0x90, 2, 0, 1})), HasSubstr("SUBACK"));
  EXPECT_THAT(ParseError(Bytes({0x90, 3, 0, 1, 3})), HasSubstr("return code 3"));
  EXPECT_THAT(ParseError(Bytes({0x30, 1, 0})), HasSubstr("PUBLISH"));
  EXPECT_THAT(ParseError(Publish("t", "x", 1, 0)), HasSubstr("packet id 0"));
}

TEST(MqttParser, AnErrorStaysUntilReset) {
  MqttParser parser(1024);
  const std::string bad = Bytes({0x10, 0});
  std::string_view in = bad;
  EXPECT_EQ(parser.Next(in).event, ParseEvent::kError);
  const std::string good = Publish("t", "1");
  std::string_view next = good;
  ParseResult again = parser.Next(next);
  EXPECT_EQ(again.event, ParseEvent::kError);
  EXPECT_THAT(again.error, HasSubstr("CONNECT"));
  parser.Reset();
  next = good;
  EXPECT_EQ(parser.Next(next).event, ParseEvent::kPacket);
}

TEST(MqttParser, ResetDropsAPartialPacket) {
  MqttParser parser(1024);
  const std::string first = Publish("t", "12345");
  std::string_view half = std::string_view(first).substr(0, 4);
  EXPECT_EQ(parser.Next(half).event, ParseEvent::kNeedMore);
  EXPECT_GT(parser.buffered_bytes(), 0u);
  parser.Reset();
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  const std::vector<Seen> seen = ParseAll(parser, {Publish("u", "6")});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].topic, "u");
}

}  // namespace
}  // namespace edge::agent::mqtt
