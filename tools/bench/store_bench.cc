// Insert throughput of the agent's SQLite store: readings ring and outbox, batched as the
// pipeline batches them (one transaction per group commit).

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "edge/agent/store.h"

namespace edge::agent {
namespace {

// A fresh database in a private temporary directory, removed afterwards.
class BenchDb {
 public:
  BenchDb() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "edge-bench-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  ~BenchDb() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path() const { return (dir_ / "bench.db").string(); }

 private:
  std::filesystem::path dir_;
};

// Readings of 50 sensors, `batch` per commit; each commit advances the wall clock by
// 100 ms (the default commit interval), so one commit in ten is synchronous=FULL.
void BM_AppendReadings(benchmark::State& state) {
  BenchDb db;
  StoreOptions o{db.path()};
  auto w = StoreWriter::Open(o);
  if (!w.ok()) {
    state.SkipWithError(w.error().c_str());
    return;
  }
  std::vector<std::string> sensors;
  for (int i = 0; i < 50; ++i) sensors.push_back("plant/line-3/sensor-" + std::to_string(i));
  const auto batch = static_cast<size_t>(state.range(0));
  std::vector<StoreWriter::NewReading> rows(batch);
  int64_t now = 1'700'000'000'000;
  int64_t n = 0;
  for (auto _ : state) {
    for (auto& r : rows) {
      r = {sensors[static_cast<size_t>(n % 50)], now + n, static_cast<double>(n % 1000)};
      ++n;
    }
    now += 100;
    if (Status s = (*w)->AppendReadings(rows, now); !s) {
      state.SkipWithError(s.message().c_str());
      return;
    }
  }
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_AppendReadings)->Arg(100)->Arg(1000)->Arg(10000)->UseRealTime();

// The cost scenario's shape: 10,000 sensors at 1 reading/s, one commit per 100 ms (1,000
// readings). Blocks are written when they hold range(0) readings: the steady state of a
// ring whose blocks fill, without waiting out their age.
void BM_AppendReadingsManySensors(benchmark::State& state) {
  BenchDb db;
  StoreOptions o{db.path()};
  o.reading_block_max_readings = static_cast<int>(state.range(0));
  auto w = StoreWriter::Open(o);
  if (!w.ok()) {
    state.SkipWithError(w.error().c_str());
    return;
  }
  constexpr int kSensors = 10'000;
  std::vector<std::string> sensors;
  for (int i = 0; i < kSensors; ++i) sensors.push_back("bench/line-3/sensor-" + std::to_string(i));
  std::vector<StoreWriter::NewReading> rows(1000);
  int64_t now = 1'700'000'000'000;
  int64_t n = 0;
  for (auto _ : state) {
    for (auto& r : rows) {
      r = {sensors[static_cast<size_t>(n % kSensors)], now + n / kSensors * 1000,
           20.0 + static_cast<double>(n % 7)};
      ++n;
    }
    now += 100;
    if (Status s = (*w)->AppendReadings(rows, now); !s) {
      state.SkipWithError(s.message().c_str());
      return;
    }
  }
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_AppendReadingsManySensors)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

// Readings ring at its byte share (steady state: every commit also prunes as many rows).
void BM_AppendReadingsAtTheBound(benchmark::State& state) {
  BenchDb db;
  StoreOptions o{db.path()};
  o.max_bytes = 2'000'000;  // a 1 MB ring: about 100k readings
  auto w = StoreWriter::Open(o);
  if (!w.ok()) {
    state.SkipWithError(w.error().c_str());
    return;
  }
  std::vector<StoreWriter::NewReading> rows(10000);
  int64_t now = 1'700'000'000'000;
  int64_t n = 0;
  const std::string sensor = "plant/line-3/flow";
  for (int fill = 0; fill < 10; ++fill) {
    for (auto& r : rows) r = {sensor, now + n++, 1.0};
    now += 100;
    (void)(*w)->AppendReadings(rows, now);
  }
  n = 0;
  for (auto _ : state) {
    for (auto& r : rows) {
      r = {sensor, now + n, 1.0};
      ++n;
    }
    now += 100;
    if (Status s = (*w)->AppendReadings(rows, now); !s) {
      state.SkipWithError(s.message().c_str());
      return;
    }
  }
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_AppendReadingsAtTheBound)->UseRealTime();

// Outbox rows (alert-sized JSON, ~400 bytes), `batch` per synchronous=FULL commit.
void BM_AppendOutbox(benchmark::State& state) {
  BenchDb db;
  StoreOptions o{db.path()};
  o.max_bytes = 0;
  auto w = StoreWriter::Open(o);
  if (!w.ok()) {
    state.SkipWithError(w.error().c_str());
    return;
  }
  const std::string payload(400, 'x');
  const auto batch = static_cast<size_t>(state.range(0));
  std::vector<StoreWriter::NewRow> rows(batch, {"alert", Priority::kAlert, 1, payload});
  int64_t n = 0;
  for (auto _ : state) {
    if (Status s = (*w)->Append(rows); !s) {
      state.SkipWithError(s.message().c_str());
      return;
    }
    n += static_cast<int64_t>(batch);
  }
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_AppendOutbox)->Arg(1)->Arg(100)->Arg(1000)->Arg(10000)->UseRealTime();

}  // namespace
}  // namespace edge::agent
