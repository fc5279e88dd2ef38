// Modbus polling's pure parts: which requests a register map needs, what registers mean,
// and the config file's `modbus:` list with its errors.
#include "edge/agent/modbus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "edge/agent/config.h"

namespace edge::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

ModbusRegister Reg(ModbusTable table, uint16_t address, ModbusType type = ModbusType::kUint16) {
  ModbusRegister r;
  r.name = "r" + std::to_string(address);
  r.table = table;
  r.address = address;
  r.type = type;
  return r;
}

TEST(ModbusPlan, ContiguousRegistersOfOneTableShareARequest) {
  ModbusDevice d;
  d.registers = {Reg(ModbusTable::kHolding, 3, ModbusType::kFloat32),  // 3-4
                 Reg(ModbusTable::kHolding, 0),
                 Reg(ModbusTable::kHolding, 1),
                 Reg(ModbusTable::kHolding, 2),
                 Reg(ModbusTable::kInput, 2),
                 Reg(ModbusTable::kHolding, 10),
                 Reg(ModbusTable::kCoil, 0, ModbusType::kBool)};
  const std::vector<ModbusRead> reads = PlanReads(d);
  ASSERT_EQ(reads.size(), 4u);
  EXPECT_EQ(reads[0].table, ModbusTable::kHolding);
  EXPECT_EQ(reads[0].address, 0);
  EXPECT_EQ(reads[0].count, 5);  // 0, 1, 2 and the float at 3-4
  EXPECT_THAT(reads[0].registers, ElementsAre(1, 2, 3, 0));
  EXPECT_EQ(reads[1].address, 10);  // a gap starts a new request
  EXPECT_EQ(reads[1].count, 1);
  EXPECT_EQ(reads[2].table, ModbusTable::kInput);
  EXPECT_EQ(reads[3].table, ModbusTable::kCoil);
}

TEST(ModbusPlan, OverlappingRegistersShareARequestAndRequestsStayWithinTheProtocolLimit) {
  ModbusDevice d;
  d.registers.push_back(Reg(ModbusTable::kHolding, 0, ModbusType::kUint32));
  d.registers.push_back(Reg(ModbusTable::kHolding, 1));  // the low word, read again
  for (uint16_t a = 2; a < 300; ++a) d.registers.push_back(Reg(ModbusTable::kHolding, a));
  const std::vector<ModbusRead> reads = PlanReads(d);
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_EQ(reads[0].count, 125);
  EXPECT_EQ(reads[1].address, 125);
  EXPECT_EQ(reads[1].count, 125);
  EXPECT_EQ(reads[2].count, 50);
  size_t served = 0;
  for (const ModbusRead& r : reads) served += r.registers.size();
  EXPECT_EQ(served, d.registers.size());
}

TEST(ModbusPlan, BitsGoUpTo2000PerRequest) {
  ModbusDevice d;
  for (uint16_t a = 0; a < 2500; ++a) {
    d.registers.push_back(Reg(ModbusTable::kDiscrete, a, ModbusType::kBool));
  }
  const std::vector<ModbusRead> reads = PlanReads(d);
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(reads[0].count, 2000);
  EXPECT_EQ(reads[1].count, 500);
}

TEST(ModbusValue, EveryTypeAndWordOrder) {
  float f = 21.5f;
  uint32_t fbits = 0;
  std::memcpy(&fbits, &f, sizeof f);
  const uint16_t hi = static_cast<uint16_t>(fbits >> 16);
  const uint16_t lo = static_cast<uint16_t>(fbits & 0xFFFF);
  const std::vector<uint16_t> words = {0xFF85, hi,     lo,     lo,     hi,     0x0001,
                                       0x86A0, 0x86A0, 0x0001, 0xFFFF, 0xFFFE, 1};
  const auto value = [&](uint16_t address, ModbusType type, bool low_first = false) {
    ModbusRegister r = Reg(ModbusTable::kHolding, address, type);
    r.low_word_first = low_first;
    return RegisterValue(r, 0, words);
  };
  EXPECT_EQ(value(0, ModbusType::kInt16), -123);
  EXPECT_EQ(value(0, ModbusType::kUint16), 65413);
  EXPECT_EQ(value(1, ModbusType::kFloat32), 21.5);
  EXPECT_EQ(value(3, ModbusType::kFloat32, true), 21.5);
  EXPECT_EQ(value(5, ModbusType::kUint32), 100000);
  EXPECT_EQ(value(7, ModbusType::kUint32, true), 100000);
  EXPECT_EQ(value(9, ModbusType::kInt32), -2);
  EXPECT_EQ(value(9, ModbusType::kUint32), 4294967294.0);
  EXPECT_EQ(value(11, ModbusType::kBool), 1);
  ModbusRegister scaled = Reg(ModbusTable::kHolding, 2, ModbusType::kInt16);
  scaled.scale = 0.1;
  scaled.offset = -10;
  EXPECT_DOUBLE_EQ(RegisterValue(scaled, 2, std::span(words).subspan(2)),
                   static_cast<int16_t>(lo) * 0.1 - 10);
}

TEST(ModbusValue, PlainNumberReadsBackExactly) {
  for (double v : {-12.3, 0.1, 100000.0, 1e-7, 4294967294.0, 21.5}) {
    EXPECT_EQ(std::stod(PlainNumber(v)), v) << PlainNumber(v);
  }
}

TEST(ModbusConfig, ReadsDevicesWithDefaults) {
  const Result<Config> c = ParseConfig(R"(
node_id: n1
modbus:
  - name: press1
    host: 10.0.0.5
    registers:
      - {name: temp, address: 0, type: int16, scale: 0.1}
      - {name: flow, address: 1, type: float32, word_order: little}
      - {name: run, table: coil, address: 4}
  - name: pump
    host: 10.0.0.6
    port: 5020
    unit: 3
    interval: 250ms
    timeout: 100ms
    prefix: site/pump
    registers: [{name: rpm, table: input, address: 7}]
)",
                                       "agent.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->modbus.size(), 2u);
  const ModbusDevice& press = c->modbus[0];
  EXPECT_EQ(press.port, 502);
  EXPECT_EQ(press.unit, 1);
  EXPECT_EQ(press.interval_ms, 1000);
  EXPECT_EQ(press.SensorPrefix(), "modbus/press1");
  ASSERT_EQ(press.registers.size(), 3u);
  EXPECT_EQ(press.registers[0].type, ModbusType::kInt16);
  EXPECT_EQ(press.registers[0].scale, 0.1);
  EXPECT_TRUE(press.registers[1].low_word_first);
  EXPECT_EQ(press.registers[2].type, ModbusType::kBool);
  const ModbusDevice& pump = c->modbus[1];
  EXPECT_EQ(pump.port, 5020);
  EXPECT_EQ(pump.unit, 3);
  EXPECT_EQ(pump.interval_ms, 250);
  EXPECT_EQ(pump.timeout_ms, 100);
  EXPECT_EQ(pump.SensorPrefix(), "site/pump");
  EXPECT_EQ(pump.offline_after, 3);
  EXPECT_EQ(pump.registers[0].table, ModbusTable::kInput);
}

TEST(ModbusConfig, MistakesAreReportedAtTheirLineAndColumn) {
  const Result<Config> c = ParseConfig(R"(
node_id: n1
modbus:
  - name: press1
    host: 10.0.0.5
    registers:
      - {name: temp, address: 0, type: int64}
      - {name: run, table: coil, address: 1, type: float32}
      - {name: temp, address: 70000}
      - {name: x, adress: 3}
  - name: bad name
    host: h
    registers: [{name: y, address: 0}]
  - name: empty
    host: h
)",
                                       "agent.yaml");
  ASSERT_FALSE(c.ok());
  const std::string m = c.status().message();
  EXPECT_THAT(m, HasSubstr("agent.yaml:7:"));
  EXPECT_THAT(m, HasSubstr("'type' must be one of int16, uint16, int32, uint32, float32, bool"));
  EXPECT_THAT(m, HasSubstr("coils and discrete inputs are of type bool"));
  EXPECT_THAT(m, HasSubstr("'address' must be a whole number from 0 to 65535"));
  EXPECT_THAT(m, HasSubstr("unknown key 'adress' in a register"));
  EXPECT_THAT(m, HasSubstr("'name' must be [A-Za-z0-9_.-]+"));
  EXPECT_THAT(m, HasSubstr("device 'empty' needs a non-empty list of registers"));
}

TEST(ModbusConfig, UnitsPastTheProtocolsRangeAndOverlappingPrefixesAreRefused) {
  const Result<Config> c = ParseConfig(R"(
node_id: n1
modbus:
  - {name: a, host: h, unit: 250, registers: [{name: t, address: 0}]}
  - {name: b, host: h, prefix: plant/line1, registers: [{name: t, address: 0}]}
  - {name: c, host: h, prefix: plant/line1/press, registers: [{name: t, address: 0}]}
  - {name: d, host: h, prefix: spBv1.0/x, registers: [{name: t, address: 0}]}
  - {name: e, host: h, unit: 255, offline_after: 5, registers: [{name: t, address: 0}]}
)",
                                       "agent.yaml");
  ASSERT_FALSE(c.ok());
  const std::string m = c.status().message();
  EXPECT_THAT(m, HasSubstr("'unit' must be 0 to 247, or 255"));
  EXPECT_THAT(m, HasSubstr("the sensor prefixes of devices 'b' and 'c' overlap"));
  EXPECT_THAT(m, HasSubstr("a prefix under spBv1.0/ is Sparkplug B's"));
  EXPECT_THAT(m, Not(HasSubstr("'e'")));
}

TEST(ModbusConfig, DuplicateNamesAreRefused) {
  const Result<Config> c = ParseConfig(R"(
node_id: n1
modbus:
  - {name: a, host: h, registers: [{name: t, address: 0}, {name: t, address: 1}]}
  - {name: b, host: h, registers: [{name: t, address: 0}]}
  - {name: b, host: h, registers: [{name: t, address: 0}]}
)",
                                       "agent.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("device 'a' has two registers named 't'"));
  EXPECT_THAT(c.status().message(), HasSubstr("two devices named 'b'"));
}

}  // namespace
}  // namespace edge::agent
