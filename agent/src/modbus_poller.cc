// The libmodbus adapter: the only file that includes <modbus.h>. One thread per device.
#include <modbus.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "edge/agent/modbus.h"
#include "edge/cloudsync/backoff.h"
#include "spdlog/spdlog.h"

namespace edge::agent {
namespace {

// Consecutive failures back off from one interval up to this, with full jitter.
constexpr int64_t kMaxBackoffMs = 30'000;

enum class PollResult { kOk, kConnect, kTimeout, kException, kError };
constexpr const char* kResultLabels[] = {"ok", "connect", "timeout", "exception", "error"};
constexpr size_t kResultCount = std::size(kResultLabels);
constexpr char kPollsHelp[] = "Modbus polls of a device, by result";

bool IsException(int err) { return err >= EMBXILFUN && err <= EMBXGTAR; }
// A gateway's "path unavailable" and "target failed to respond": the gateway answered, the
// device behind it did not.
bool IsGatewayException(int err) { return err == EMBXGPATH || err == EMBXGTAR; }

struct ModbusFree {
  void operator()(modbus_t* ctx) const {
    modbus_close(ctx);
    modbus_free(ctx);
  }
};
using ModbusPtr = std::unique_ptr<modbus_t, ModbusFree>;

}  // namespace

struct ModbusPoller::Impl {
  struct Device {
    Device(ModbusDevice d, Metrics& m, uint64_t seed)
        : config(std::move(d)),
          plan(PlanReads(config)),
          prefix(config.SensorPrefix() + "/"),
          backoff(config.interval_ms, std::max(kMaxBackoffMs, config.interval_ms), seed),
          registers_read(m.Counter("edge_agent_modbus_registers_read_total",
                                   "Modbus registers and bits read into readings",
                                   {{"device", config.name}})),
          readings_dropped(m.Counter("edge_agent_modbus_readings_dropped_total",
                                     "Modbus readings not queued because the ingest queue was "
                                     "half full",
                                     {{"device", config.name}})),
          connected(m.Gauge("edge_agent_modbus_connected",
                            "1 while the agent holds a connection to the Modbus device",
                            {{"device", config.name}})) {
      for (size_t i = 0; i < kResultCount; ++i) {
        polls[i] = &m.Counter("edge_agent_modbus_polls_total", kPollsHelp,
                              {{"device", config.name}, {"result", kResultLabels[i]}});
      }
    }

    ModbusDevice config;
    std::vector<ModbusRead> plan;
    std::string prefix;  // "<sensor prefix>/"
    cloudsync::Backoff backoff;
    ModbusPtr ctx;
    bool answered = false;        // the device is taken as answering (not offline)
    int failures = 0;             // consecutive polls that did not reach it
    bool gateway_failed = false;  // the last poll got a gateway exception
    std::vector<uint16_t> words;
    std::vector<uint8_t> bits;
    std::vector<RawMessage> out;
    CounterHandle* polls[kResultCount];
    CounterHandle& registers_read;
    CounterHandle& readings_dropped;
    GaugeHandle& connected;
  };

  Impl(std::vector<ModbusDevice> configs, IngestQueue& q, Metrics& m, Clock& c)
      : queue(q), clock(c) {
    std::random_device seed;
    for (ModbusDevice& d : configs)
      devices.push_back(std::make_unique<Device>(std::move(d), m, seed()));
  }

  // Connects when needed; false (connection closed) when that failed.
  bool Connect(Device& d) {
    if (d.ctx) return true;
    const std::string port = std::to_string(d.config.port);
    d.ctx.reset(modbus_new_tcp_pi(d.config.host.c_str(), port.c_str()));
    if (!d.ctx) return false;
    const auto sec = static_cast<uint32_t>(d.config.timeout_ms / 1000);
    const auto usec = static_cast<uint32_t>((d.config.timeout_ms % 1000) * 1000);
    // The response timeout covers the whole answer: with a byte timeout, each byte would
    // re-arm it and a device trickling bytes could hold a request far longer.
    modbus_set_response_timeout(d.ctx.get(), sec, usec);
    modbus_set_byte_timeout(d.ctx.get(), 0, 0);
    if (modbus_set_slave(d.ctx.get(), d.config.unit) == -1) {
      spdlog::warn("modbus {}: unit {}: {}", d.config.name, d.config.unit, modbus_strerror(errno));
      d.ctx.reset();
      return false;
    }
    if (modbus_connect(d.ctx.get()) == -1) {
      spdlog::debug("modbus {}: connect to {}:{}: {}", d.config.name, d.config.host, d.config.port,
                    modbus_strerror(errno));
      d.ctx.reset();
      return false;
    }
    return true;
  }

  // One request; the words (bits widened to words) in d.words. -1 and errno on failure.
  static int Read(Device& d, const ModbusRead& r) {
    d.words.resize(r.count);
    switch (r.table) {
      case ModbusTable::kHolding:
        return modbus_read_registers(d.ctx.get(), r.address, r.count, d.words.data());
      case ModbusTable::kInput:
        return modbus_read_input_registers(d.ctx.get(), r.address, r.count, d.words.data());
      case ModbusTable::kCoil:
      case ModbusTable::kDiscrete: {
        d.bits.resize(r.count);
        const int rc = r.table == ModbusTable::kCoil
                           ? modbus_read_bits(d.ctx.get(), r.address, r.count, d.bits.data())
                           : modbus_read_input_bits(d.ctx.get(), r.address, r.count, d.bits.data());
        std::copy(d.bits.begin(), d.bits.end(), d.words.begin());
        return rc;
      }
    }
    return -1;
  }

  PollResult Poll(Device& d) {
    if (!Connect(d)) return PollResult::kConnect;
    const int64_t now = clock.WallMs();
    PollResult result = PollResult::kOk;
    d.gateway_failed = false;
    d.out.clear();
    for (const ModbusRead& r : d.plan) {
      if (stopping.load(std::memory_order_relaxed)) break;
      if (Read(d, r) != r.count) {
        const int err = errno;
        if (IsException(err)) {  // an answer: the connection stays
          spdlog::debug("modbus {}: read {} at {}: {}", d.config.name, r.count, r.address,
                        modbus_strerror(err));
          if (IsGatewayException(err)) d.gateway_failed = true;
          result = PollResult::kException;
          continue;
        }
        spdlog::debug("modbus {}: read {} at {}: {}", d.config.name, r.count, r.address,
                      modbus_strerror(err));
        d.ctx.reset();
        result = err == ETIMEDOUT ? PollResult::kTimeout : PollResult::kError;
        break;
      }
      for (size_t i : r.registers) {
        const ModbusRegister& reg = d.config.registers[i];
        RawMessage& m = d.out.emplace_back();
        m.topic = d.prefix + reg.name;
        m.payload = PlainNumber(RegisterValue(reg, r.address, d.words));
        m.receive_ms = now;
      }
    }
    d.registers_read.Inc(static_cast<double>(d.out.size()));
    if (!d.out.empty()) {
      // Above half the queue the MQTT client holds back (acknowledge after commit): these
      // readings must not push its messages out of the queue, so the poll's are dropped.
      if (queue.size() < queue.capacity() / 2 && queue.bytes() < queue.max_bytes() / 2) {
        queue.PushBatch(d.out);
      } else {
        d.readings_dropped.Inc(static_cast<double>(d.out.size()));
      }
    }
    return result;
  }

  // The device stopped answering: its sensors go offline at once.
  void TakeOffline(Device& d) {
    RawMessage m;
    m.topic = d.prefix;
    m.receive_ms = clock.WallMs();
    m.offline = true;
    queue.Push(std::move(m));
  }

  void Loop(Device& d) {
    pthread_setname_np(pthread_self(), "edge-modbus");
    int64_t next = clock.MonotonicMs();
    while (true) {
      {
        std::unique_lock lock(mu);
        const int64_t wait = next - clock.MonotonicMs();
        if (wait > 0) {
          cv.wait_for(lock, std::chrono::milliseconds(wait),
                      [&] { return stopping.load(std::memory_order_relaxed); });
        }
        if (stopping.load(std::memory_order_relaxed)) break;
      }
      const PollResult r = Poll(d);
      if (stopping.load(std::memory_order_relaxed)) break;
      d.polls[static_cast<size_t>(r)]->Inc();
      d.connected.Set(d.ctx ? 1 : 0);
      const bool answered =
          r == PollResult::kOk || (r == PollResult::kException && !d.gateway_failed);
      d.failures = answered ? 0 : d.failures + 1;
      if (answered && !d.answered) {
        spdlog::info("modbus {}: {}:{} answering", d.config.name, d.config.host, d.config.port);
        d.answered = true;
      } else if (d.answered && d.failures >= d.config.offline_after) {
        spdlog::warn(
            "modbus {}: {}:{} stopped answering ({} polls, the last: {}); its sensors "
            "are offline",
            d.config.name, d.config.host, d.config.port, d.failures,
            kResultLabels[static_cast<size_t>(r)]);
        TakeOffline(d);
        d.answered = false;
      }
      const int64_t now = clock.MonotonicMs();
      if (answered) {
        d.backoff.Reset();
        next += d.config.interval_ms;
        if (next <= now) next = now + d.config.interval_ms;  // missed polls are not caught up
      } else {
        next = now + std::max(d.config.interval_ms, d.backoff.NextDelayMs());
      }
    }
    d.ctx.reset();
    d.connected.Set(0);
  }

  IngestQueue& queue;
  Clock& clock;
  std::vector<std::unique_ptr<Device>> devices;
  std::mutex mu;
  std::condition_variable cv;
  // Set under mu (for the waits on cv); read without it between requests.
  std::atomic<bool> stopping{false};
  std::vector<std::thread> threads;
};

ModbusPoller::ModbusPoller(std::vector<ModbusDevice> devices, IngestQueue& queue, Metrics& metrics,
                           Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(devices), queue, metrics, clock)) {}

ModbusPoller::~ModbusPoller() { Stop(); }

void ModbusPoller::Start() {
  if (!impl_->threads.empty() || impl_->stopping.load()) return;  // once only
  for (auto& d : impl_->devices) {
    impl_->threads.emplace_back([this, dev = d.get()] { impl_->Loop(*dev); });
  }
}

void ModbusPoller::RequestStop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping.store(true);
  }
  impl_->cv.notify_all();
}

void ModbusPoller::Stop() {
  RequestStop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace edge::agent
