// SparkplugDecoder: births, data by alias and by name, every scalar datatype, skipped
// kinds, order (seq), deaths, bounds and malformed input. Payloads are built with the
// generated protobuf classes, as a Sparkplug edge node would.
#include "edge/agent/sparkplug.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "proto/sparkplug_b.pb.h"

namespace edge::agent {
namespace {

using sparkplug::Payload;
using Metric = sparkplug::Payload_Metric;
using ::testing::ElementsAre;
using ::testing::FieldsAre;
using ::testing::IsEmpty;

constexpr int64_t kReceiveMs = 1'700'000'000'000;
constexpr int64_t kPayloadMs = 1'700'000'001'000;

Metric* Add(Payload& p, const std::string& name, uint64_t alias, uint32_t datatype) {
  Metric* m = p.add_metrics();
  if (!name.empty()) m->set_name(name);
  if (alias != 0) m->set_alias(alias);
  if (datatype != 0) m->set_datatype(datatype);
  return m;
}

Payload Birth(uint64_t seq, uint64_t bd_seq) {
  Payload p;
  p.set_timestamp(kPayloadMs);
  p.set_seq(seq);
  Add(p, "bdSeq", 0, sparkplug::Int64)->set_long_value(bd_seq);
  Add(p, "Node Control/Rebirth", 0, sparkplug::Boolean)->set_boolean_value(false);
  return p;
}

Payload Data(uint64_t seq) {
  Payload p;
  p.set_timestamp(kPayloadMs);
  p.set_seq(seq);
  return p;
}

struct Decoded {
  SparkplugOutcome outcome;
  std::vector<rules::Reading> readings;
  size_t skipped(SparkplugSkip why) const { return outcome.skipped[static_cast<size_t>(why)]; }
};

class SparkplugDecoderTest : public ::testing::Test {
 protected:
  Decoded Decode(const std::string& topic, const Payload& p) {
    return DecodeBytes(topic, p.SerializeAsString());
  }
  Decoded DecodeBytes(const std::string& topic, const std::string& bytes) {
    Decoded d;
    d.outcome = decoder_.Decode(topic, bytes, kReceiveMs, d.readings);
    return d;
  }
  // NBIRTH of plant/press1 declaring Temperature (alias 1) and DBIRTH of its device dev1
  // declaring Speed (alias 2), at seq 0 and 1.
  void BornWithDevice() {
    Payload nb = Birth(0, 7);
    Add(nb, "Temperature", 1, sparkplug::Double)->set_double_value(95);
    ASSERT_FALSE(Decode("spBv1.0/plant/NBIRTH/press1", nb).outcome.reject);
    Payload db = Data(1);
    Add(db, "Speed", 2, sparkplug::Float)->set_float_value(10.5f);
    ASSERT_FALSE(Decode("spBv1.0/plant/DBIRTH/press1/dev1", db).outcome.reject);
  }

  SparkplugDecoder decoder_;
};

TEST_F(SparkplugDecoderTest, BirthAndDataByAliasBecomeReadingsNamedByGroupNodeDeviceMetric) {
  Payload nb = Birth(0, 7);
  Add(nb, "Temperature", 1, sparkplug::Double)->set_double_value(95);
  const Decoded birth = Decode("spBv1.0/plant/NBIRTH/press1", nb);
  EXPECT_FALSE(birth.outcome.reject);
  EXPECT_EQ(birth.outcome.type, SparkplugType::kNBirth);
  EXPECT_THAT(birth.readings,
              ElementsAre(FieldsAre("spBv1.0/plant/press1/Temperature", kPayloadMs, 95.0)));
  EXPECT_EQ(birth.skipped(SparkplugSkip::kControl), 2u);  // bdSeq, Node Control/Rebirth

  Payload db = Data(1);
  Add(db, "Speed", 2, sparkplug::Float)->set_float_value(10.5f);
  const Decoded dbirth = Decode("spBv1.0/plant/DBIRTH/press1/dev1", db);
  EXPECT_THAT(dbirth.readings,
              ElementsAre(FieldsAre("spBv1.0/plant/press1/dev1/Speed", kPayloadMs, 10.5)));

  Payload dd = Data(2);
  Add(dd, "", 2, 0)->set_float_value(12.25f);  // by alias only, as data messages are sent
  Metric* t = Add(dd, "", 1, 0);               // the node's alias: not this device's
  t->set_double_value(1);
  const Decoded ddata = Decode("spBv1.0/plant/DDATA/press1/dev1", dd);
  EXPECT_FALSE(ddata.outcome.reject);
  EXPECT_FALSE(ddata.outcome.seq_gap);
  EXPECT_THAT(ddata.readings,
              ElementsAre(FieldsAre("spBv1.0/plant/press1/dev1/Speed", kPayloadMs, 12.25)));
  EXPECT_EQ(ddata.skipped(SparkplugSkip::kUnknownAlias), 1u);

  Payload nd = Data(3);
  Add(nd, "", 1, 0)->set_double_value(96.5);
  EXPECT_THAT(Decode("spBv1.0/plant/NDATA/press1", nd).readings,
              ElementsAre(FieldsAre("spBv1.0/plant/press1/Temperature", kPayloadMs, 96.5)));
  EXPECT_EQ(decoder_.nodes(), 1u);
}

TEST_F(SparkplugDecoderTest, DataByNameWithoutAlias) {
  Payload nb = Birth(0, 1);
  Add(nb, "Line/Pressure", 0, sparkplug::Double)->set_double_value(2);
  Decode("spBv1.0/g/NBIRTH/n", nb);
  Payload nd = Data(1);
  Add(nd, "Line/Pressure", 0, 0)->set_double_value(3);
  Add(nd, "Undeclared", 0, sparkplug::Double)->set_double_value(4);
  const Decoded d = Decode("spBv1.0/g/NDATA/n", nd);
  EXPECT_THAT(d.readings, ElementsAre(FieldsAre("spBv1.0/g/n/Line/Pressure", kPayloadMs, 3.0)));
  EXPECT_EQ(d.skipped(SparkplugSkip::kUnknownAlias), 1u);
}

TEST_F(SparkplugDecoderTest, EveryScalarDatatypeReadsAsANumber) {
  Payload nb = Birth(0, 1);
  Add(nb, "i8", 1, sparkplug::Int8)->set_int_value(0xFF);            // -1, width-sized
  Add(nb, "i8x", 2, sparkplug::Int8)->set_int_value(0xFFFF'FF80u);   // -128, sign-extended
  Add(nb, "i16", 3, sparkplug::Int16)->set_int_value(0xFFFF'FED4u);  // -300
  Add(nb, "i32", 4, sparkplug::Int32)->set_int_value(0xFFFF'FFFBu);  // -5
  Add(nb, "i64", 5, sparkplug::Int64)->set_long_value(static_cast<uint64_t>(int64_t{-7}));
  Add(nb, "u8", 6, sparkplug::UInt8)->set_int_value(200);
  Add(nb, "u16", 7, sparkplug::UInt16)->set_int_value(65535);
  Add(nb, "u32", 8, sparkplug::UInt32)->set_int_value(4'000'000'000u);
  Add(nb, "u64", 9, sparkplug::UInt64)->set_long_value(uint64_t{1} << 40);
  Add(nb, "f", 10, sparkplug::Float)->set_float_value(1.5f);
  Add(nb, "d", 11, sparkplug::Double)->set_double_value(-2.25);
  Add(nb, "b", 12, sparkplug::Boolean)->set_boolean_value(true);
  Add(nb, "dt", 13, sparkplug::DateTime)->set_long_value(1'600'000'000'000);
  const Decoded d = Decode("spBv1.0/g/NBIRTH/n", nb);
  ASSERT_FALSE(d.outcome.reject);
  std::vector<double> values;
  for (const auto& r : d.readings) values.push_back(r.value);
  EXPECT_THAT(values, ElementsAre(-1, -128, -300, -5, -7, 200, 65535, 4e9, std::ldexp(1.0, 40), 1.5,
                                  -2.25, 1, 1.6e12));
}

TEST_F(SparkplugDecoderTest, ValuesThatDoNotFitTheirDatatypeAreSkipped) {
  Payload nb = Birth(0, 1);
  Add(nb, "i8", 1, sparkplug::Int8)->set_int_value(0x100);  // neither form of an int8
  Add(nb, "u8", 2, sparkplug::UInt8)->set_int_value(256);
  Add(nb, "f", 3, sparkplug::Float)->set_boolean_value(true);  // wrong value field
  Add(nb, "nan", 4, sparkplug::Double)->set_double_value(std::nan(""));
  Add(nb, "what", 5, 99)->set_int_value(1);  // no such datatype
  Add(nb, "ok", 6, sparkplug::Int8)->set_int_value(5);
  const Decoded d = Decode("spBv1.0/g/NBIRTH/n", nb);
  EXPECT_FALSE(d.outcome.reject);
  EXPECT_THAT(d.readings, ElementsAre(FieldsAre("spBv1.0/g/n/ok", kPayloadMs, 5.0)));
  EXPECT_EQ(d.skipped(SparkplugSkip::kBadValue), 3u);
  EXPECT_EQ(d.skipped(SparkplugSkip::kNonFinite), 1u);
  EXPECT_EQ(d.skipped(SparkplugSkip::kUnknownType), 1u);
}

TEST_F(SparkplugDecoderTest, StringsArraysDatasetsTemplatesAndNullsAreCountedNotErrors) {
  Payload nb = Birth(0, 1);
  Add(nb, "name", 1, sparkplug::String)->set_string_value("press");
  Add(nb, "uuid", 2, sparkplug::UUID)->set_string_value("x");
  Add(nb, "blob", 3, sparkplug::Bytes)->set_bytes_value("\x01\x02");
  Add(nb, "arr", 4, sparkplug::Int32Array)->set_bytes_value(std::string(8, '\0'));
  Add(nb, "ds", 5, sparkplug::DataSet)->mutable_dataset_value()->set_num_of_columns(1);
  Add(nb, "udt", 6, sparkplug::Template)->mutable_template_value()->set_version("1");
  Metric* null = Add(nb, "gone", 7, sparkplug::Double);
  null->set_is_null(true);
  Add(nb, "t", 8, sparkplug::Double)->set_double_value(20);
  const Decoded d = Decode("spBv1.0/g/NBIRTH/n", nb);
  EXPECT_FALSE(d.outcome.reject);
  EXPECT_THAT(d.readings, ElementsAre(FieldsAre("spBv1.0/g/n/t", kPayloadMs, 20.0)));
  EXPECT_EQ(d.skipped(SparkplugSkip::kString), 2u);
  EXPECT_EQ(d.skipped(SparkplugSkip::kBytes), 1u);
  EXPECT_EQ(d.skipped(SparkplugSkip::kArray), 1u);
  EXPECT_EQ(d.skipped(SparkplugSkip::kDataSet), 1u);
  EXPECT_EQ(d.skipped(SparkplugSkip::kTemplate), 1u);
  EXPECT_EQ(d.skipped(SparkplugSkip::kNull), 1u);
}

TEST_F(SparkplugDecoderTest, TimestampOfTheMetricThenThePayloadThenTheReceiveTime) {
  Payload nb = Birth(0, 1);
  Add(nb, "a", 1, sparkplug::Double)->set_double_value(1);
  Decode("spBv1.0/g/NBIRTH/n", nb);
  Payload nd = Data(1);
  Metric* own = Add(nd, "", 1, 0);
  own->set_double_value(2);
  own->set_timestamp(kPayloadMs - 500);
  Add(nd, "", 1, 0)->set_double_value(3);
  EXPECT_THAT(Decode("spBv1.0/g/NDATA/n", nd).readings,
              ElementsAre(FieldsAre("spBv1.0/g/n/a", kPayloadMs - 500, 2.0),
                          FieldsAre("spBv1.0/g/n/a", kPayloadMs, 3.0)));
  Payload bare;
  bare.set_seq(2);
  Add(bare, "", 1, 0)->set_double_value(4);
  EXPECT_THAT(Decode("spBv1.0/g/NDATA/n", bare).readings,
              ElementsAre(FieldsAre("spBv1.0/g/n/a", kReceiveMs, 4.0)));
}

TEST_F(SparkplugDecoderTest, DataBeforeBirthIsRejected) {
  Payload nd = Data(1);
  Add(nd, "", 1, sparkplug::Double)->set_double_value(1);
  const Decoded d = Decode("spBv1.0/g/NDATA/n", nd);
  EXPECT_EQ(d.outcome.reject, SparkplugReject::kBeforeBirth);
  EXPECT_THAT(d.readings, IsEmpty());
  BornWithDevice();
  EXPECT_EQ(Decode("spBv1.0/plant/DDATA/press1/dev2", nd).outcome.reject,
            SparkplugReject::kBeforeBirth);  // a device without a DBIRTH
}

TEST_F(SparkplugDecoderTest, SequenceGapsAreCountedAndTheDataKept) {
  BornWithDevice();      // seq 0, 1
  Payload dd = Data(3);  // 2 went missing
  Add(dd, "", 2, 0)->set_float_value(1);
  const Decoded gap = Decode("spBv1.0/plant/DDATA/press1/dev1", dd);
  EXPECT_TRUE(gap.outcome.seq_gap);
  EXPECT_EQ(gap.readings.size(), 1u);
  Payload next = Data(4);
  Add(next, "", 2, 0)->set_float_value(2);
  EXPECT_FALSE(Decode("spBv1.0/plant/DDATA/press1/dev1", next).outcome.seq_gap);
}

TEST_F(SparkplugDecoderTest, SequenceWrapsFrom255To0WithoutAGap) {
  BornWithDevice();
  for (uint64_t i = 2; i < 300; ++i) {
    Payload dd = Data(i % 256);
    Add(dd, "", 2, 0)->set_float_value(static_cast<float>(i));
    const Decoded d = Decode("spBv1.0/plant/DDATA/press1/dev1", dd);
    ASSERT_FALSE(d.outcome.seq_gap) << i;
    ASSERT_EQ(d.readings.size(), 1u) << i;
  }
}

TEST_F(SparkplugDecoderTest, NodeDeathTakesTheNodeAndItsDevicesOffline) {
  BornWithDevice();
  Payload death;
  Add(death, "bdSeq", 0, sparkplug::Int64)->set_long_value(7);
  const Decoded d = Decode("spBv1.0/plant/NDEATH/press1", death);
  EXPECT_FALSE(d.outcome.reject);
  EXPECT_EQ(d.outcome.offline_prefix, "spBv1.0/plant/press1/");
  EXPECT_EQ(decoder_.nodes(), 0u);
  Payload dd = Data(2);
  Add(dd, "", 2, 0)->set_float_value(1);
  EXPECT_EQ(Decode("spBv1.0/plant/DDATA/press1/dev1", dd).outcome.reject,
            SparkplugReject::kBeforeBirth);
}

TEST_F(SparkplugDecoderTest, DeathsOfNodesAndDevicesWithoutASessionTakeNothingOffline) {
  Payload death;
  Add(death, "bdSeq", 0, sparkplug::Int64)->set_long_value(0);
  const Decoded unknown = Decode("spBv1.0/plant/NDEATH/never-born", death);
  EXPECT_FALSE(unknown.outcome.reject);
  EXPECT_TRUE(unknown.outcome.offline_prefix.empty());
  BornWithDevice();
  EXPECT_FALSE(Decode("spBv1.0/plant/DDEATH/press1/dev1", Data(2)).outcome.offline_prefix.empty());
  EXPECT_TRUE(Decode("spBv1.0/plant/DDEATH/press1/dev1", Data(3)).outcome.offline_prefix.empty());
}

TEST_F(SparkplugDecoderTest, HistoricalMetricsAreSkipped) {
  BornWithDevice();
  Payload dd = Data(2);
  Metric* old = Add(dd, "", 2, 0);
  old->set_float_value(1);
  old->set_is_historical(true);
  Add(dd, "", 2, 0)->set_float_value(2);
  const Decoded d = Decode("spBv1.0/plant/DDATA/press1/dev1", dd);
  EXPECT_THAT(d.readings,
              ElementsAre(FieldsAre("spBv1.0/plant/press1/dev1/Speed", kPayloadMs, 2.0)));
  EXPECT_EQ(d.skipped(SparkplugSkip::kHistorical), 1u);
}

TEST_F(SparkplugDecoderTest, DeathOfAnEarlierSessionIsIgnored) {
  BornWithDevice();  // bdSeq 7
  Payload late;
  Add(late, "bdSeq", 0, sparkplug::Int64)->set_long_value(6);
  const Decoded d = Decode("spBv1.0/plant/NDEATH/press1", late);
  EXPECT_EQ(d.outcome.reject, SparkplugReject::kStaleDeath);
  EXPECT_TRUE(d.outcome.offline_prefix.empty());
  Payload nd = Data(2);
  Add(nd, "", 1, 0)->set_double_value(1);
  EXPECT_EQ(Decode("spBv1.0/plant/NDATA/press1", nd).readings.size(), 1u);
}

TEST_F(SparkplugDecoderTest, DeviceDeathTakesOnlyThatDeviceOfflineUntilItsNextBirth) {
  BornWithDevice();
  const Decoded d = Decode("spBv1.0/plant/DDEATH/press1/dev1", Data(2));
  EXPECT_FALSE(d.outcome.reject);
  EXPECT_EQ(d.outcome.offline_prefix, "spBv1.0/plant/press1/dev1/");
  Payload dd = Data(3);
  Add(dd, "", 2, 0)->set_float_value(1);
  EXPECT_EQ(Decode("spBv1.0/plant/DDATA/press1/dev1", dd).outcome.reject,
            SparkplugReject::kBeforeBirth);
  Payload rebirth = Data(4);
  Add(rebirth, "Speed", 2, sparkplug::Float)->set_float_value(3);
  EXPECT_EQ(Decode("spBv1.0/plant/DBIRTH/press1/dev1", rebirth).readings.size(), 1u);
  Payload nd = Data(5);
  Add(nd, "", 1, 0)->set_double_value(1);  // the node stayed alive throughout
  EXPECT_EQ(Decode("spBv1.0/plant/NDATA/press1", nd).readings.size(), 1u);
}

TEST_F(SparkplugDecoderTest, ARebirthReplacesTheAliases) {
  BornWithDevice();
  Payload nb = Birth(0, 8);
  Add(nb, "Pressure", 1, sparkplug::Double)->set_double_value(3);  // alias 1 renamed
  Decode("spBv1.0/plant/NBIRTH/press1", nb);
  Payload nd = Data(1);
  Add(nd, "", 1, 0)->set_double_value(4);
  EXPECT_THAT(Decode("spBv1.0/plant/NDATA/press1", nd).readings,
              ElementsAre(FieldsAre("spBv1.0/plant/press1/Pressure", kPayloadMs, 4.0)));
  Payload dd = Data(2);  // the devices need their own births again
  Add(dd, "", 2, 0)->set_float_value(1);
  EXPECT_EQ(Decode("spBv1.0/plant/DDATA/press1/dev1", dd).outcome.reject,
            SparkplugReject::kBeforeBirth);
}

TEST_F(SparkplugDecoderTest, MalformedPayloadsAndTopicsAreRejectedAndLeaveTheOutputAlone) {
  BornWithDevice();
  Decoded d;
  d.readings.push_back({"earlier", 1, 1});
  d.outcome = decoder_.Decode("spBv1.0/plant/NDATA/press1", std::string("\x0a\xff\xff", 3),
                              kReceiveMs, d.readings);
  EXPECT_EQ(d.outcome.reject, SparkplugReject::kNotProtobuf);
  EXPECT_EQ(d.readings.size(), 1u);
  for (const char* topic :
       {"spBv1.0/", "spBv1.0/g", "spBv1.0/g/NDATA", "spBv1.0/g/NDATA/n/d", "spBv1.0/g/DDATA/n",
        "spBv1.0/g/FOO/n", "spBv1.0//NDATA/n", "spBv1.0/g/NDATA/n/", "spBv1.0/g/DDATA/n/d/x"}) {
    EXPECT_EQ(Decode(topic, Data(0)).outcome.reject, SparkplugReject::kBadTopic) << topic;
  }
  const Decoded cmd = Decode("spBv1.0/plant/NCMD/press1", Data(0));
  EXPECT_FALSE(cmd.outcome.reject);
  EXPECT_EQ(cmd.outcome.type, SparkplugType::kOther);
  EXPECT_FALSE(Decode("spBv1.0/STATE/scada", Data(0)).outcome.reject);
}

TEST(SparkplugDecoderBounds, NodesAndMetricDefinitionsAreBounded) {
  SparkplugOptions options;
  options.max_nodes = 2;
  options.max_metrics_per_node = 3;
  SparkplugDecoder decoder(options);
  std::vector<rules::Reading> out;
  Payload small = Birth(0, 1);  // bdSeq and Node Control/Rebirth: two definitions
  Add(small, "a", 1, sparkplug::Double)->set_double_value(1);
  EXPECT_FALSE(decoder.Decode("spBv1.0/g/NBIRTH/n1", small.SerializeAsString(), 0, out).reject);
  EXPECT_FALSE(decoder.Decode("spBv1.0/g/NBIRTH/n2", small.SerializeAsString(), 0, out).reject);
  EXPECT_EQ(decoder.Decode("spBv1.0/g/NBIRTH/n3", small.SerializeAsString(), 0, out).reject,
            SparkplugReject::kTooManyNodes);
  Payload big = small;
  Add(big, "b", 2, sparkplug::Double)->set_double_value(2);
  out.clear();
  EXPECT_EQ(decoder.Decode("spBv1.0/g/NBIRTH/n1", big.SerializeAsString(), 0, out).reject,
            SparkplugReject::kTooManyMetrics);
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ(decoder.nodes(), 1u);  // the refused birth ended n1's session
}

TEST(SparkplugDecoderBounds, ANodeSilentForTheIdleTimeMakesRoomForANewOne) {
  SparkplugOptions options;
  options.max_nodes = 2;
  options.idle_after_ms = 600'000;
  SparkplugDecoder decoder(options);
  const std::string birth = Birth(0, 1).SerializeAsString();
  std::vector<rules::Reading> out;
  ASSERT_FALSE(decoder.Decode("spBv1.0/g/NBIRTH/n1", birth, 0, out).reject);
  ASSERT_FALSE(decoder.Decode("spBv1.0/g/NBIRTH/n2", birth, 0, out).reject);
  // Both heard from within the idle time: the third is refused.
  EXPECT_EQ(decoder.Decode("spBv1.0/g/NBIRTH/n3", birth, 300'000, out).reject,
            SparkplugReject::kTooManyNodes);
  Payload nd = Data(1);
  ASSERT_FALSE(decoder.Decode("spBv1.0/g/NDATA/n2", nd.SerializeAsString(), 360'000, out).reject);
  // n1 silent for 11 minutes (its death missed): it makes room; n2 stays.
  EXPECT_FALSE(decoder.Decode("spBv1.0/g/NBIRTH/n3", birth, 660'000, out).reject);
  EXPECT_EQ(decoder.evicted_nodes(), 1u);
  EXPECT_EQ(decoder.nodes(), 2u);
  EXPECT_EQ(decoder.Decode("spBv1.0/g/NDATA/n1", Data(1).SerializeAsString(), 661'000, out).reject,
            SparkplugReject::kBeforeBirth);
  Payload nd2 = Data(2);
  EXPECT_FALSE(decoder.Decode("spBv1.0/g/NDATA/n2", nd2.SerializeAsString(), 662'000, out).reject);
}

TEST(SparkplugDecoderBounds, AliasesAreBoundedLikeDefinitions) {
  SparkplugOptions options;
  options.max_metrics_per_node = 4;
  SparkplugDecoder decoder(options);
  Payload nb = Data(0);
  for (uint64_t alias = 1; alias <= 10; ++alias) {  // one name under ten aliases
    Add(nb, "same", alias, sparkplug::Double)->set_double_value(1);
  }
  std::vector<rules::Reading> out;
  EXPECT_EQ(decoder.Decode("spBv1.0/g/NBIRTH/n", nb.SerializeAsString(), 0, out).reject,
            SparkplugReject::kTooManyMetrics);
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ(decoder.nodes(), 0u);
}

TEST(SparkplugDecoderBounds, AllNodesTogetherStayWithinTheStateBytes) {
  SparkplugOptions options;
  options.max_state_bytes = 1500;  // about three small nodes
  SparkplugDecoder decoder(options);
  Payload nb = Data(0);
  Add(nb, "t", 1, sparkplug::Double)->set_double_value(1);
  std::vector<rules::Reading> out;
  size_t accepted = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string topic = "spBv1.0/g/NBIRTH/node-" + std::to_string(i);
    if (!decoder.Decode(topic, nb.SerializeAsString(), 0, out).reject) ++accepted;
  }
  EXPECT_GT(accepted, 0u);
  EXPECT_LT(accepted, 20u);
  EXPECT_EQ(decoder.nodes(), accepted);
  // A death gives the bytes back: another node fits again.
  Payload death;
  Add(death, "bdSeq", 0, sparkplug::Int64)->set_long_value(0);
  EXPECT_FALSE(decoder.Decode("spBv1.0/g/NDEATH/node-0", death.SerializeAsString(), 0, out).reject);
  EXPECT_FALSE(decoder.Decode("spBv1.0/g/NBIRTH/late", nb.SerializeAsString(), 0, out).reject);
}

TEST(SparkplugDecoderBounds, TopicsLongerThanASensorIdAreRefusedBeforeParsing) {
  SparkplugDecoder decoder;
  std::vector<rules::Reading> out;
  const std::string topic = "spBv1.0/g/NBIRTH/" + std::string(2000, 'n');
  EXPECT_EQ(decoder.Decode(topic, Data(0).SerializeAsString(), 0, out).reject,
            SparkplugReject::kBadTopic);
  EXPECT_EQ(decoder.nodes(), 0u);
}

TEST(SparkplugDecoderBounds, SensorIdsLongerThanTheLimitAreSkipped) {
  SparkplugOptions options;
  options.max_sensor_id_bytes = 24;
  SparkplugDecoder decoder(options);
  Payload nb = Data(0);
  Add(nb, "short", 1, sparkplug::Double)->set_double_value(1);
  Add(nb, "a-much-longer-metric-name", 2, sparkplug::Double)->set_double_value(2);
  std::vector<rules::Reading> out;
  const SparkplugOutcome o = decoder.Decode("spBv1.0/g/NBIRTH/n", nb.SerializeAsString(), 0, out);
  EXPECT_THAT(out, ElementsAre(FieldsAre("spBv1.0/g/n/short", kPayloadMs, 1.0)));
  EXPECT_EQ(o.skipped[static_cast<size_t>(SparkplugSkip::kIdTooLong)], 1u);
}

}  // namespace
}  // namespace edge::agent
