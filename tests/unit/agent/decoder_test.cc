#include "edge/agent/decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  EXPECT_EQ(Decode(R"({"state":"ON","battery":null,"linkquality":87})", "z/plug"), std::nullopt);
  EXPECT_THAT(out_, ElementsAre(IsReading("z/plug/linkquality", kReceiveTs, 87.0)));
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

TEST(DecoderReasonLabel, EveryReasonHasItsPrometheusLabel) {
  EXPECT_EQ(ReasonLabel(RejectReason::kTooLarge), "too_large");
  EXPECT_EQ(ReasonLabel(RejectReason::kEmpty), "empty");
  EXPECT_EQ(ReasonLabel(RejectReason::kNotJson), "not_json");
  EXPECT_EQ(ReasonLabel(RejectReason::kNoNumbers), "no_numbers");
  EXPECT_EQ(ReasonLabel(RejectReason::kNonFinite), "non_finite");
  EXPECT_EQ(ReasonLabel(RejectReason::kBadTimestamp), "bad_timestamp");
  EXPECT_EQ(ReasonLabel(RejectReason::kTooDeep), "too_deep");
  EXPECT_EQ(ReasonLabel(RejectReason::kTooManyReadings), "too_many_readings");
}

}  // namespace
}  // namespace edge::agent
