// The pure part of Modbus polling: which requests read a register map, and what a
// register's words mean.
#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <numeric>

#include "edge/agent/modbus.h"

namespace edge::agent {
namespace {

// The protocol's most registers (function codes 3 and 4) and bits (1 and 2) per request.
constexpr uint32_t kMaxRegisters = 125;
constexpr uint32_t kMaxBits = 2000;

bool IsBitTable(ModbusTable t) { return t == ModbusTable::kCoil || t == ModbusTable::kDiscrete; }

}  // namespace

std::vector<ModbusRead> PlanReads(const ModbusDevice& device) {
  std::vector<size_t> order(device.registers.size());
  std::iota(order.begin(), order.end(), size_t{0});
  const auto& regs = device.registers;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (regs[a].table != regs[b].table) return regs[a].table < regs[b].table;
    return regs[a].address < regs[b].address;
  });
  std::vector<ModbusRead> reads;
  for (size_t i : order) {
    const ModbusRegister& r = regs[i];
    const uint32_t start = r.address;
    const uint32_t end = start + r.width();  // exclusive; at most 65,537
    const uint32_t limit = IsBitTable(r.table) ? kMaxBits : kMaxRegisters;
    if (!reads.empty()) {
      ModbusRead& last = reads.back();
      const uint32_t last_end = uint32_t{last.address} + last.count;
      if (last.table == r.table && start <= last_end &&
          std::max(end, last_end) - last.address <= limit) {
        last.count = static_cast<uint16_t>(std::max(end, last_end) - last.address);
        last.registers.push_back(i);
        continue;
      }
    }
    ModbusRead read;
    read.table = r.table;
    read.address = r.address;
    read.count = static_cast<uint16_t>(end - start);
    read.registers.push_back(i);
    reads.push_back(std::move(read));
  }
  return reads;
}

double RegisterValue(const ModbusRegister& reg, uint16_t request_address,
                     std::span<const uint16_t> words) {
  const size_t at = reg.address - request_address;
  double raw = 0;
  if (reg.width() == 2) {
    const uint32_t first = words[at];
    const uint32_t second = words[at + 1];
    const uint32_t bits = reg.low_word_first ? (second << 16 | first) : (first << 16 | second);
    switch (reg.type) {
      case ModbusType::kInt32:
        raw = static_cast<double>(std::bit_cast<int32_t>(bits));
        break;
      case ModbusType::kFloat32:
        raw = static_cast<double>(std::bit_cast<float>(bits));
        break;
      default:
        raw = static_cast<double>(bits);
        break;
    }
  } else if (reg.type == ModbusType::kInt16) {
    raw = static_cast<double>(static_cast<int16_t>(words[at]));
  } else if (reg.type == ModbusType::kBool) {
    raw = words[at] != 0 ? 1 : 0;
  } else {
    raw = static_cast<double>(words[at]);
  }
  return raw * reg.scale + reg.offset;
}

std::string PlainNumber(double value) {
  char buf[32];
  // Shortest text that reads back as the same double.
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) return "nan";
  return std::string(buf, end);
}

}  // namespace edge::agent
