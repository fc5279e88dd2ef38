#pragma once

// Modbus TCP polling: devices and register maps from the config's `modbus:` list
// (docs/modbus.md), read on a fixed interval with libmodbus, each register becoming a
// reading `<device prefix>/<register name>` handed to the pipeline through the ingest queue
// (as a plain-number message: the same path, bounds and counters as MQTT).
//
// Threads: one thread per device (`edge-modbus`), so that a device that stops answering
// delays only itself; each owns its libmodbus connection. Every request is bounded by the
// device's `timeout` (connect included; the whole answer, not each byte). A failed poll
// closes the connection; the next attempt waits the device's interval or, after consecutive
// failures, an exponential backoff with full jitter (up to 30 s), whichever is longer. When a
// device that answered fails `offline_after` polls in a row (no connection, no answer in
// time, a broken answer, or a gateway's exception for the device behind it), its sensors are
// taken offline at once (stale rules fire, as for a Sparkplug death); its next good poll
// brings them back. While the ingest queue is half full (where the MQTT client holds back
// too) a poll's readings are dropped and counted instead of queued.
//
// Metrics (registered up front per device): edge_agent_modbus_polls_total{device,result}
// (ok, connect, timeout, exception, error), edge_agent_modbus_registers_read_total{device},
// edge_agent_modbus_readings_dropped_total{device}, edge_agent_modbus_connected{device}.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "edge/agent/ingest.h"
#include "edge/common/clock.h"
#include "edge/common/metrics.h"

namespace edge::agent {

enum class ModbusTable { kHolding, kInput, kCoil, kDiscrete };
enum class ModbusType { kInt16, kUint16, kInt32, kUint32, kFloat32, kBool };

struct ModbusRegister {
  std::string name;  // the sensor id is <device prefix>/<name>
  ModbusTable table = ModbusTable::kHolding;
  uint16_t address = 0;                   // 0-based protocol address
  ModbusType type = ModbusType::kUint16;  // kBool for coils and discrete inputs
  bool low_word_first = false;            // 32-bit types: word order (bytes are big-endian)
  double scale = 1;                       // value = raw * scale + offset
  double offset = 0;

  // Registers (or bits) the value spans: 2 for 32-bit types, else 1.
  uint16_t width() const {
    return type == ModbusType::kInt32 || type == ModbusType::kUint32 || type == ModbusType::kFloat32
               ? 2
               : 1;
  }
};

struct ModbusDevice {
  std::string name;  // [A-Za-z0-9_.-]+, the `device` label of its metrics
  std::string host;
  uint16_t port = 502;
  int unit = 1;  // unit (slave) id: 0 to 247, or 255
  int64_t interval_ms = 1000;
  int64_t timeout_ms = 1000;  // connect and each whole response
  int offline_after = 3;      // consecutive failed polls before its sensors go offline
  std::string prefix;         // sensor id prefix; empty: modbus/<name>
  std::vector<ModbusRegister> registers;

  std::string SensorPrefix() const { return prefix.empty() ? "modbus/" + name : prefix; }
};

// One read request: `count` registers (or bits) of `table` from `address`, and the
// registers of the map it serves.
struct ModbusRead {
  ModbusTable table = ModbusTable::kHolding;
  uint16_t address = 0;
  uint16_t count = 0;
  std::vector<size_t> registers;  // indexes into ModbusDevice::registers
};

// Groups a device's registers into as few requests as possible: registers of one table
// whose spans touch or overlap share a request, up to the protocol's limit (125 registers,
// 2000 bits). Pure.
std::vector<ModbusRead> PlanReads(const ModbusDevice& device);

// The value of `reg` from the words (or bits, one per word, 0 or 1) a request returned,
// `words` starting at the request's address. Scale and offset applied. Pure.
double RegisterValue(const ModbusRegister& reg, uint16_t request_address,
                     std::span<const uint16_t> words);

// Formats a reading's value as the plain-number payload the decoder reads back exactly.
std::string PlainNumber(double value);

class ModbusPoller {
 public:
  // Polls `devices` into `queue` once started. `clock` gives wall time (reading
  // timestamps) and monotonic time (schedules); metrics are registered at construction.
  ModbusPoller(std::vector<ModbusDevice> devices, IngestQueue& queue, Metrics& metrics,
               Clock& clock);
  ~ModbusPoller();  // stops
  ModbusPoller(const ModbusPoller&) = delete;
  ModbusPoller& operator=(const ModbusPoller&) = delete;

  // Starts one thread per device. Once: a poller does not start again after a stop.
  void Start();
  // Asks every thread to stop: none starts another request. Returns at once.
  void RequestStop();
  // RequestStop, then waits for the threads: at most the longest device timeout (a request
  // under way). Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge::agent
