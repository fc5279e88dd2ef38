#include "edge/agent/decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace edge::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

constexpr int64_t kReceiveTs = 1'700'000'000'000;
// 2024-01-05T12:00:00Z
constexpr int64_t kJan5Noon = 1'704'456'000'000;

MATCHER_P3(IsReading, sensor, ts_ms, value, "") {
  return arg.sensor == sensor && arg.ts_ms == ts_ms && arg.value == value;
}

class Decoder : public ::testing::Test {
 protected:
  std::optional<RejectReason> Decode(std::string_view payload,
                                     std::string_view topic = "sensors/t1") {
    return DecodePayload(topic, payload, kReceiveTs, options_, out_);
  }

  // Timestamp of the single reading of `payload`, or -1 if it was rejected.
  int64_t TimestampOf(std::string_view payload) {
    out_.clear();
    if (Decode(payload).has_value() || out_.size() != 1) return -1;
    return out_[0].ts_ms;
  }

  DecodeOptions options_;
  std::vector<rules::Reading> out_;
};

// DecodePayload reads flat objects of numbers without the JSON parser. These tests check
// that it gives exactly what the parser path (internal::DecodePayloadWithParser) gives:
// the same reject reason, or the same readings with bit-identical values.
class DecoderFastPath : public ::testing::Test {
 protected:
  void ExpectSameAsParser(std::string_view payload, std::string_view topic = "t") {
    SCOPED_TRACE(::testing::Message() << "payload: " << payload);
    const rules::Reading sentinel{"keep", 1, 2.0};
    std::vector<rules::Reading> fast{sentinel};
    std::vector<rules::Reading> full{sentinel};
    const auto fast_reject = DecodePayload(topic, payload, kReceiveTs, options_, fast);
    const auto full_reject =
        internal::DecodePayloadWithParser(topic, payload, kReceiveTs, options_, full);
    EXPECT_EQ(fast_reject, full_reject);
    ASSERT_EQ(fast.size(), full.size());
    for (size_t i = 0; i < fast.size(); ++i) {
      EXPECT_EQ(fast[i].sensor, full[i].sensor);
      EXPECT_EQ(fast[i].ts_ms, full[i].ts_ms);
      EXPECT_EQ(std::bit_cast<uint64_t>(fast[i].value), std::bit_cast<uint64_t>(full[i].value))
          << fast[i].value << " vs " << full[i].value;
    }
  }

  DecodeOptions options_;
};

TEST_F(Decoder, PlainNumberIsOneReadingForTheTopic) {
  EXPECT_EQ(Decode("21.5"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, 21.5)));
}

TEST_F(Decoder, PlainNumberMayBeSurroundedByWhitespace) {
  EXPECT_EQ(Decode(" 21.5\n"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, 21.5)));
}

TEST_F(Decoder, PlainNumberAcceptsExponentAndSign) {
  EXPECT_EQ(Decode("-3e2"), std::nullopt);
  EXPECT_EQ(Decode("+4"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, -300.0),
                                IsReading("sensors/t1", kReceiveTs, 4.0)));
}

TEST_F(Decoder, JsonNumberLiteralIsAPlainNumber) {
  EXPECT_EQ(Decode("42"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, 42.0)));
}

TEST_F(Decoder, TinyNumberUnderflowsToZero) {
  EXPECT_EQ(Decode("1e-999"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, 0.0)));
}

TEST_F(Decoder, AppendsAfterExistingReadings) {
  out_.push_back(rules::Reading{"other", 1, 2.0});
  EXPECT_EQ(Decode("3"), std::nullopt);
  EXPECT_THAT(out_,
              ElementsAre(IsReading("other", 1, 2.0), IsReading("sensors/t1", kReceiveTs, 3.0)));
}

TEST_F(Decoder, TopLevelValueKeyGivesTheTopicItself) {
  EXPECT_EQ(Decode(R"({"value": 7.25})"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, 7.25)));
}

TEST_F(Decoder, ValueWithTimestampUsesTheTimestamp) {
  EXPECT_EQ(Decode(R"({"value": 1, "ts": 1704456000})"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kJan5Noon, 1.0)));
}

TEST_F(Decoder, ObjectFieldsBecomeTopicSlashKey) {
  EXPECT_EQ(Decode(R"({"temperature":21.5,"humidity":40})", "zigbee2mqtt/kitchen"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("zigbee2mqtt/kitchen/temperature", kReceiveTs, 21.5),
                                IsReading("zigbee2mqtt/kitchen/humidity", kReceiveTs, 40.0)));
}

TEST_F(Decoder, NestedObjectsJoinThePathWithSlashes) {
  EXPECT_EQ(Decode(R"({"Time":"2024-01-05T12:00:00","ENERGY":{"Power":120,"Voltage":230}})",
                   "tele/plug1/SENSOR"),
            std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("tele/plug1/SENSOR/ENERGY/Power", kJan5Noon, 120.0),
                                IsReading("tele/plug1/SENSOR/ENERGY/Voltage", kJan5Noon, 230.0)));
}

TEST_F(Decoder, PathReturnsToParentAfterNestedObject) {
  EXPECT_EQ(Decode(R"({"a":{"b":{"c":1},"d":2},"e":3})", "t"), std::nullopt);
  EXPECT_THAT(
      out_, ElementsAre(IsReading("t/a/b/c", kReceiveTs, 1.0), IsReading("t/a/d", kReceiveTs, 2.0),
                        IsReading("t/e", kReceiveTs, 3.0)));
}

TEST_F(Decoder, NestedValueKeyIsAnOrdinaryPathSegment) {
  EXPECT_EQ(Decode(R"({"x":{"value":5}})", "t"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("t/x/value", kReceiveTs, 5.0)));
}

TEST_F(Decoder, BooleansAreOneAndZero) {
  EXPECT_EQ(Decode(R"({"contact":true,"occupancy":false})", "z/door"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("z/door/contact", kReceiveTs, 1.0),
                                IsReading("z/door/occupancy", kReceiveTs, 0.0)));
}

TEST_F(Decoder, TopLevelBooleanIsAReadingForTheTopic) {
  EXPECT_EQ(Decode("true"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, 1.0)));
}

TEST_F(Decoder, StringsAndNullsAreIgnored) {
  EXPECT_EQ(Decode(R"({"update":"idle","battery":null,"linkquality":87})", "z/plug"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("z/plug/linkquality", kReceiveTs, 87.0)));
}

TEST_F(Decoder, StateWordsInAnObjectAreOneAndZero) {
  EXPECT_EQ(Decode(R"({"state":"ON","POWER":"off","door":"Open","lid":"closed","ok":"TRUE",)"
                   R"("fault":"false","mode":"auto"})",
                   "z/plug"),
            std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("z/plug/state", kReceiveTs, 1.0),
                                IsReading("z/plug/POWER", kReceiveTs, 0.0),
                                IsReading("z/plug/door", kReceiveTs, 1.0),
                                IsReading("z/plug/lid", kReceiveTs, 0.0),
                                IsReading("z/plug/ok", kReceiveTs, 1.0),
                                IsReading("z/plug/fault", kReceiveTs, 0.0)));
}

TEST_F(Decoder, APlainStateWordIsAReadingForTheTopic) {
  const struct {
    const char* payload;
    double value;
  } cases[] = {{"ON", 1},
               {"OFF", 0},
               {"on", 1},
               {"off", 0},
               {" On\n", 1},
               {"open", 1},
               {"closed", 0},
               {"OPEN", 1},
               {"TRUE", 1},
               {"False", 0},
               {"\"on\"", 1},
               {"\"OFF\"", 0},
               {R"({"value":"on"})", 1}};
  for (const auto& c : cases) {
    out_.clear();
    EXPECT_EQ(Decode(c.payload, "home/switch"), std::nullopt) << c.payload;
    EXPECT_THAT(out_, ElementsAre(IsReading("home/switch", kReceiveTs, c.value))) << c.payload;
  }
}

TEST_F(Decoder, OtherWordsAreStillRejected) {
  for (const char* payload : {"onn", "of", "opened", "close", "yes", "1 on", "on off"}) {
    EXPECT_THAT(Decode(payload), Optional(RejectReason::kNotJson)) << payload;
  }
  EXPECT_THAT(Decode(R"({"state":"idle"})"), Optional(RejectReason::kNoNumbers));
  EXPECT_THAT(Decode(R"({"ts":"on"})"), Optional(RejectReason::kBadTimestamp));
}

TEST_F(Decoder, ArrayIndexIsAPathSegment) {
  EXPECT_EQ(Decode(R"({"temps":[20.5,"x",21]})", "t"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("t/temps/0", kReceiveTs, 20.5),
                                IsReading("t/temps/2", kReceiveTs, 21.0)));
}

TEST_F(Decoder, TopLevelArrayUsesIndexes) {
  EXPECT_EQ(Decode(R"([1,[2,{"a":3}]])", "t"), std::nullopt);
  EXPECT_THAT(out_,
              ElementsAre(IsReading("t/0", kReceiveTs, 1.0), IsReading("t/1/0", kReceiveTs, 2.0),
                          IsReading("t/1/1/a", kReceiveTs, 3.0)));
}

TEST_F(Decoder, LargeIntegersAreKept) {
  EXPECT_EQ(Decode(R"({"a":18446744073709551615,"b":-9223372036854775808})", "t"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("t/a", kReceiveTs, 18446744073709551615.0),
                                IsReading("t/b", kReceiveTs, -9223372036854775808.0)));
}

TEST_F(Decoder, TimestampInEpochSeconds) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"ts":1704456000})"), kJan5Noon);
}

TEST_F(Decoder, TimestampInEpochSecondsWithFraction) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"ts":1704456000.25})"), kJan5Noon + 250);
}

TEST_F(Decoder, TimestampInEpochMilliseconds) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"timestamp":1704456000123})"), kJan5Noon + 123);
}

TEST_F(Decoder, TimestampKeyIsCaseInsensitive) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"TimeStamp":1704456000})"), kJan5Noon);
  EXPECT_EQ(TimestampOf(R"({"v":1,"TS":1704456000})"), kJan5Noon);
}

TEST_F(Decoder, TimestampMayFollowTheReadings) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"time":"2024-01-05T12:00:00Z"})"), kJan5Noon);
}

TEST_F(Decoder, TimestampAsNumericString) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"ts":"1704456000"})"), kJan5Noon);
}

TEST_F(Decoder, TimestampIsoWithZulu) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"time":"2024-01-05T12:00:00Z"})"), kJan5Noon);
}

TEST_F(Decoder, TimestampIsoWithFractionAndOffset) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"time":"2024-01-05T12:00:00.123+02:00"})"),
            kJan5Noon - 2 * 3'600'000 + 123);
}

TEST_F(Decoder, TimestampIsoWithNegativeCompactOffset) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"time":"2024-01-05T12:00:00-0130"})"), kJan5Noon + 90 * 60'000);
}

TEST_F(Decoder, TimestampIsoWithSpaceAndNoZoneIsUtc) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"time":"2024-01-05 12:00:00"})"), kJan5Noon);
}

TEST_F(Decoder, TimestampIsoWithoutSecondsAndWithHourOffset) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"time":"2024-01-05T13:00+01"})"), kJan5Noon);
}

TEST_F(Decoder, TimestampIsoOnLeapDay) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"time":"2024-02-29T00:00:00Z"})"), 1'709'164'800'000);
}

TEST_F(Decoder, NullTimestampMeansReceiveTime) {
  EXPECT_EQ(TimestampOf(R"({"v":1,"ts":null})"), kReceiveTs);
}

TEST_F(Decoder, NoTimestampMeansReceiveTime) { EXPECT_EQ(TimestampOf(R"({"v":1})"), kReceiveTs); }

TEST_F(Decoder, NestedTimestampKeyIsAReading) {
  EXPECT_EQ(Decode(R"({"a":{"ts":5}})", "t"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("t/a/ts", kReceiveTs, 5.0)));
}

TEST_F(Decoder, TimestampAppliesToAllReadingsOfTheMessage) {
  EXPECT_EQ(Decode(R"({"ts":1704456000,"a":1,"b":{"c":2}})", "t"), std::nullopt);
  EXPECT_THAT(out_,
              ElementsAre(IsReading("t/a", kJan5Noon, 1.0), IsReading("t/b/c", kJan5Noon, 2.0)));
}

TEST_F(Decoder, RejectsUnparseableTimestampString) {
  EXPECT_THAT(Decode(R"({"v":1,"time":"yesterday"})"), Optional(RejectReason::kBadTimestamp));
}

TEST_F(Decoder, RejectsImpossibleCalendarDate) {
  EXPECT_THAT(Decode(R"({"v":1,"time":"2023-02-29T00:00:00Z"})"),
              Optional(RejectReason::kBadTimestamp));
  EXPECT_THAT(Decode(R"({"v":1,"time":"2024-01-05T24:00:00Z"})"),
              Optional(RejectReason::kBadTimestamp));
}

TEST_F(Decoder, RejectsIsoWithTrailingGarbage) {
  EXPECT_THAT(Decode(R"({"v":1,"time":"2024-01-05T12:00:00Zjunk"})"),
              Optional(RejectReason::kBadTimestamp));
}

TEST_F(Decoder, RejectsNegativeTimestamp) {
  EXPECT_THAT(Decode(R"({"v":1,"ts":-5})"), Optional(RejectReason::kBadTimestamp));
}

TEST_F(Decoder, RejectsTimestampBeyondYear9999) {
  EXPECT_THAT(Decode(R"({"v":1,"ts":1e300})"), Optional(RejectReason::kBadTimestamp));
}

TEST_F(Decoder, RejectsBooleanOrObjectTimestamp) {
  EXPECT_THAT(Decode(R"({"v":1,"ts":true})"), Optional(RejectReason::kBadTimestamp));
  EXPECT_THAT(Decode(R"({"v":1,"ts":{"s":1}})"), Optional(RejectReason::kBadTimestamp));
}

TEST_F(Decoder, RejectsEmptyPayload) { EXPECT_THAT(Decode(""), Optional(RejectReason::kEmpty)); }

TEST_F(Decoder, RejectsWhitespaceOnlyPayload) {
  EXPECT_THAT(Decode(" \r\n\t "), Optional(RejectReason::kEmpty));
}

TEST_F(Decoder, RejectsGarbageAsNotJson) {
  EXPECT_THAT(Decode("hello"), Optional(RejectReason::kNotJson));
  EXPECT_THAT(Decode("21.5 C"), Optional(RejectReason::kNotJson));
  EXPECT_THAT(Decode("0x1A"), Optional(RejectReason::kNotJson));
}

TEST_F(Decoder, RejectsTruncatedJson) {
  EXPECT_THAT(Decode(R"({"a":1,"b":)"), Optional(RejectReason::kNotJson));
}

TEST_F(Decoder, RejectsTrailingDataAfterJson) {
  EXPECT_THAT(Decode(R"({"a":1} {"b":2})"), Optional(RejectReason::kNotJson));
}

TEST_F(Decoder, RejectsInvalidUtf8InsideJson) {
  EXPECT_THAT(Decode("{\"a\":\"\xff\xfe\",\"b\":1}"), Optional(RejectReason::kNotJson));
}

TEST_F(Decoder, RejectsNanAndInfinityText) {
  EXPECT_THAT(Decode("nan"), Optional(RejectReason::kNonFinite));
  EXPECT_THAT(Decode("-inf"), Optional(RejectReason::kNonFinite));
  EXPECT_THAT(Decode("Infinity"), Optional(RejectReason::kNonFinite));
}

TEST_F(Decoder, RejectsOverflowingPlainNumber) {
  EXPECT_THAT(Decode("1e999"), Optional(RejectReason::kNonFinite));
  EXPECT_THAT(Decode("-" + std::string(400, '9')), Optional(RejectReason::kNonFinite));
}

TEST_F(Decoder, RejectsOverflowingNumberInsideJson) {
  EXPECT_THAT(Decode(R"({"a":1,"b":1e999})"), Optional(RejectReason::kNonFinite));
}

TEST_F(Decoder, RejectsJsonWithoutNumbers) {
  EXPECT_THAT(Decode(R"("hello")"), Optional(RejectReason::kNoNumbers));
  EXPECT_THAT(Decode("{}"), Optional(RejectReason::kNoNumbers));
  EXPECT_THAT(Decode(R"({"a":"x"})"), Optional(RejectReason::kNoNumbers));
  EXPECT_THAT(Decode("[]"), Optional(RejectReason::kNoNumbers));
  EXPECT_THAT(Decode("null"), Optional(RejectReason::kNoNumbers));
}

TEST_F(Decoder, RejectsPayloadOverSizeLimitBeforeParsing) {
  options_.max_payload_bytes = 8;
  EXPECT_THAT(Decode("123456789"), Optional(RejectReason::kTooLarge));
  EXPECT_THAT(Decode(std::string(9, ' ')), Optional(RejectReason::kTooLarge));
  EXPECT_EQ(Decode("12345678"), std::nullopt);
}

TEST_F(Decoder, AcceptsNestingUpToMaxDepth) {
  options_.max_depth = 3;
  EXPECT_EQ(Decode(R"({"a":{"b":{"c":1}}})", "t"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("t/a/b/c", kReceiveTs, 1.0)));
}

TEST_F(Decoder, RejectsNestingBeyondMaxDepth) {
  options_.max_depth = 3;
  EXPECT_THAT(Decode(R"({"a":{"b":{"c":[1]}}})"), Optional(RejectReason::kTooDeep));
}

TEST_F(Decoder, NestingDeeperThanSixteenWhenAllowed) {
  options_.max_depth = 40;
  EXPECT_EQ(Decode(std::string(35, '[') + "1" + std::string(35, ']'), "t"), std::nullopt);
  std::string sensor = "t";
  for (int i = 0; i < 35; ++i) sensor += "/0";
  EXPECT_THAT(out_, ElementsAre(IsReading(sensor, kReceiveTs, 1.0)));
  EXPECT_THAT(Decode(std::string(41, '[') + "1" + std::string(41, ']')),
              Optional(RejectReason::kTooDeep));
}

TEST_F(Decoder, RejectsDeepUnterminatedNestingAsTooDeep) {
  EXPECT_THAT(Decode(std::string(10'000, '[')), Optional(RejectReason::kTooDeep));
}

TEST_F(Decoder, AcceptsExactlyMaxReadings) {
  options_.max_readings = 3;
  EXPECT_EQ(Decode("[1,2,3]"), std::nullopt);
  EXPECT_EQ(out_.size(), 3u);
}

TEST_F(Decoder, RejectsMoreThanMaxReadings) {
  options_.max_readings = 3;
  EXPECT_THAT(Decode("[1,2,3,4]"), Optional(RejectReason::kTooManyReadings));
}

TEST_F(Decoder, RejectLeavesOutputUnchanged) {
  out_.push_back(rules::Reading{"keep", 1, 2.0});
  EXPECT_THAT(Decode(R"({"a":1,"b":2,"ts":"bad"})"), Optional(RejectReason::kBadTimestamp));
  EXPECT_THAT(Decode(R"({"a":1,"b":2,)"), Optional(RejectReason::kNotJson));
  EXPECT_THAT(out_, ElementsAre(IsReading("keep", 1, 2.0)));
}

TEST_F(Decoder, FlatValueAndMillisecondTimestamp) {
  EXPECT_EQ(Decode(R"({"value":21.37,"ts":1764166980123})"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", 1'764'166'980'123, 21.37)));
}

TEST_F(Decoder, FlatObjectMayHaveJsonWhitespaceAnywhere) {
  EXPECT_EQ(Decode(" {\n\t\"value\" : 1 ,\r\n \"ts\":\t1704456000 }\n"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kJan5Noon, 1.0)));
}

TEST_F(Decoder, FlatObjectFirstTimestampWins) {
  EXPECT_EQ(Decode(R"({"ts":1704456000,"a":1,"TS":5})", "t"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("t/a", kJan5Noon, 1.0)));
}

TEST_F(Decoder, FlatObjectLaterBadTimestampRejects) {
  EXPECT_THAT(Decode(R"({"value":1,"ts":1704456000,"time":-1})"),
              Optional(RejectReason::kBadTimestamp));
}

TEST_F(Decoder, FlatObjectWithOnlyATimestampHasNoNumbers) {
  EXPECT_THAT(Decode(R"({"ts":1704456000})"), Optional(RejectReason::kNoNumbers));
}

TEST_F(Decoder, DuplicateKeysGiveOneReadingEach) {
  EXPECT_EQ(Decode(R"({"value":1,"value":2})"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, 1.0),
                                IsReading("sensors/t1", kReceiveTs, 2.0)));
}

TEST_F(Decoder, IntegerMinusZeroIsPositiveZeroButFloatKeepsItsSign) {
  ASSERT_EQ(Decode(R"({"a":-0,"b":-0.0,"c":-0e1})", "t"), std::nullopt);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_FALSE(std::signbit(out_[0].value));
  EXPECT_TRUE(std::signbit(out_[1].value));
  EXPECT_TRUE(std::signbit(out_[2].value));
}

TEST_F(Decoder, RejectsNumbersJsonDoesNotAllowInsideAnObject) {
  for (const char* payload :
       {R"({"value":+1})", R"({"value":01})", R"({"value":-01})", R"({"value":.5})",
        R"({"value":1.})", R"({"value":1e})", R"({"value":1e+})", R"({"value":0x1A})",
        R"({"value":inf})", R"({"value":-Infinity})", R"({"value":NaN})", R"({"value":-})",
        R"({"value":1.5.3})", R"({"value":1_000})"}) {
    EXPECT_THAT(Decode(payload), Optional(RejectReason::kNotJson)) << payload;
  }
}

TEST_F(Decoder, RejectsMalformedFlatObjects) {
  for (const char* payload : {R"({"value":1,})", R"({"value":1 "ts":2})", R"({"value":1}})",
                              R"({"value" 1})", R"({value:1})", R"({'value':1})", R"({"value":1)",
                              R"({"value":1,"ts")", "{\"va\x01lue\":1}", "{\"value\":1\f}"}) {
    EXPECT_THAT(Decode(payload), Optional(RejectReason::kNotJson)) << payload;
  }
}

TEST_F(Decoder, FlatObjectOverflowIsNonFiniteAndUnderflowIsZero) {
  EXPECT_THAT(Decode(R"({"value":1e999})"), Optional(RejectReason::kNonFinite));
  EXPECT_EQ(Decode(R"({"value":-1e-999})"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("sensors/t1", kReceiveTs, 0.0)));
}

TEST_F(Decoder, FlatObjectHonoursReadingAndDepthLimits) {
  options_.max_readings = 1;
  EXPECT_THAT(Decode(R"({"a":1,"b":2})"), Optional(RejectReason::kTooManyReadings));
  EXPECT_EQ(Decode(R"({"a":1,"ts":1704456000})", "t"), std::nullopt);
  options_.max_depth = 0;
  EXPECT_THAT(Decode(R"({"a":1})"), Optional(RejectReason::kTooDeep));
}

TEST_F(DecoderFastPath, SameAsParserForHandPickedPayloads) {
  for (const char* payload : {
           R"({"value":21.37,"ts":1764166980123})",
           R"({"value":21.37})",
           R"({ "value" : 21.37 , "ts" : 1764166980 })",
           R"({"temperature":21.5,"humidity":40})",
           R"({"":1})",
           R"({"a b/c":1})",
           R"({"a\u0062":1})",
           "{\"temp\xc2\xb0\":1}",
           "{\"bad\xff\":1}",
           R"({"value":1,"value":2})",
           R"({"Value":1,"VALUE":2,"value ":3})",
           R"({"ts":1704456000.25,"v":1})",
           R"({"time":99999999999,"v":1})",
           R"({"Timestamp":100000000000,"v":1})",
           R"({"ts":253402300799999,"v":1})",
           R"({"ts":253402300800000,"v":1})",
           R"({"ts":-0,"v":1})",
           R"({"ts":-0.0,"v":1})",
           R"({"ts":1e300,"v":1})",
           R"({"ts":"1704456000","v":1})",
           R"({"ts":null,"v":1})",
           R"({"v":18446744073709551615,"w":18446744073709551616})",
           R"({"v":-9223372036854775808,"w":-9223372036854775809})",
           R"({"v":123456789012345678901234567890})",
           R"({"v":4.9e-324,"w":2.2250738585072011e-308,"x":1.7976931348623157e308})",
           R"({"v":2.4e-324,"w":1.8e308})",
           R"({"v":0.1,"w":1E+2,"x":1e-2,"y":-0E-0})",
           R"({"v":true})",
           R"({"v":1,"w":"x"})",
           R"({"v":1,"w":{"x":2}})",
           R"({"v":[1]})",
           R"({})",
           R"({ })",
           R"({"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,)"
           R"("m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"s":19,"ts":1704456000})",
       }) {
    ExpectSameAsParser(payload);
  }
}

TEST_F(DecoderFastPath, SameAsParserUnderTightLimits) {
  for (const DecodeOptions options :
       {DecodeOptions{64 * 1024, 0, 8}, DecodeOptions{64 * 1024, 1, 8},
        DecodeOptions{64 * 1024, 2, 8}, DecodeOptions{64 * 1024, 256, 0},
        DecodeOptions{64 * 1024, 256, -1}, DecodeOptions{10, 256, 8}}) {
    options_ = options;
    ExpectSameAsParser(R"({"value":1})");
    ExpectSameAsParser(R"({"a":1,"b":2})");
    ExpectSameAsParser(R"({"a":1,"ts":5,"b":2})");
  }
}

// Every pairing of awkward keys, number spellings and separators, one and two members.
TEST_F(DecoderFastPath, SameAsParserForGeneratedFlatObjects) {
  const std::vector<std::string> keys = {"value", "ts", "TIME", "timestamp", "a", ""};
  const std::vector<std::string> numbers = {"0",
                                            "-0",
                                            "-0.0",
                                            "1",
                                            "01",
                                            "+1",
                                            ".5",
                                            "1.",
                                            "1e5",
                                            "1E+5",
                                            "1e-5",
                                            "-1e-400",
                                            "1e400",
                                            "-2.5e-3",
                                            "18446744073709551615",
                                            "18446744073709551616",
                                            "-9223372036854775808",
                                            "-9223372036854775809",
                                            "1704456000",
                                            "1704456000.4996",
                                            "99999999999",
                                            "100000000000",
                                            "253402300799999",
                                            "-5",
                                            "0.1",
                                            "9007199254740993",
                                            "1e",
                                            "-",
                                            "0x10",
                                            "inf",
                                            "1.5.3"};
  const std::vector<std::string> seps = {"", " ", "\n\t"};
  for (const std::string& key : keys) {
    for (const std::string& number : numbers) {
      for (const std::string& sep : seps) {
        ExpectSameAsParser("{" + sep + "\"" + key + "\"" + sep + ":" + sep + number + sep + "}");
      }
    }
  }
  for (const std::string& key1 : keys) {
    for (const std::string& number1 : numbers) {
      for (const std::string& key2 : keys) {
        for (const std::string& number2 : numbers) {
          ExpectSameAsParser("{\"" + key1 + "\":" + number1 + ",\"" + key2 + "\":" + number2 + "}");
        }
      }
    }
  }
}

TEST_F(Decoder, TopicLongerThanTheSensorIdLimitIsRejected) {
  const std::string at_limit(options_.max_sensor_id_bytes, 't');
  EXPECT_EQ(Decode("21.5", at_limit), std::nullopt);
  ASSERT_EQ(out_.size(), 1u);
  out_.clear();
  const std::string over(options_.max_sensor_id_bytes + 1, 't');
  EXPECT_THAT(Decode("21.5", over), Optional(RejectReason::kTopicTooLong));
  EXPECT_THAT(Decode(R"({"value":1})", over), Optional(RejectReason::kTopicTooLong));
  EXPECT_TRUE(out_.empty());
}

TEST_F(Decoder, PathMakingASensorIdOverTheLimitRejectsTheWholeMessage) {
  options_.max_sensor_id_bytes = 16;
  out_.push_back(rules::Reading{"earlier", 1, 1});
  // "sensors/t1/" is 11 bytes: a 6-byte key makes 17.
  EXPECT_THAT(Decode(R"({"a":1,"abcdef":2})"), Optional(RejectReason::kTopicTooLong));
  EXPECT_THAT(Decode(R"({"a":{"bcdef":2}})"), Optional(RejectReason::kTopicTooLong));
  EXPECT_THAT(internal::DecodePayloadWithParser("sensors/t1", R"({"a":1,"abcdef":2})", kReceiveTs,
                                                options_, out_),
              Optional(RejectReason::kTopicTooLong));
  ASSERT_EQ(out_.size(), 1u);  // left as it was
  EXPECT_EQ(Decode(R"({"abcde":2})"), std::nullopt);
  EXPECT_EQ(out_.size(), 2u);
}

TEST(DecoderReasonLabel, EveryReasonHasItsPrometheusLabel) {
  EXPECT_EQ(ReasonLabel(RejectReason::kTooLarge), "too_large");
  EXPECT_EQ(ReasonLabel(RejectReason::kEmpty), "empty");
  EXPECT_EQ(ReasonLabel(RejectReason::kNotJson), "not_json");
  EXPECT_EQ(ReasonLabel(RejectReason::kNoNumbers), "no_numbers");
  EXPECT_EQ(ReasonLabel(RejectReason::kNonFinite), "non_finite");
  EXPECT_EQ(ReasonLabel(RejectReason::kBadTimestamp), "bad_timestamp");
  EXPECT_EQ(ReasonLabel(RejectReason::kTooDeep), "too_deep");
  EXPECT_EQ(ReasonLabel(RejectReason::kTooManyReadings), "too_many_readings");
  EXPECT_EQ(ReasonLabel(RejectReason::kTopicTooLong), "topic_too_long");
}

}  // namespace
}  // namespace edge::agent
