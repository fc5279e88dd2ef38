// Insert throughput of the agent's SQLite store: readings ring and outbox, batched as the
// pipeline batches them (one transaction per group commit).

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "edge/agent/store.h"

namespace edge::agent {
namespace {

using bench::TempDir;

// A writer on a fresh database in `dir`; null (the benchmark skipped) when it fails to open.
std::unique_ptr<StoreWriter> OpenWriter(benchmark::State& state, const TempDir& dir,
                                        StoreOptions options) {
  options.path = dir.File("bench.db");
  auto w = StoreWriter::Open(options);
  if (!w.ok()) {
    state.SkipWithError(w.error().c_str());
    return nullptr;
  }
  return std::move(*w);
}

// Times one commit of `rows` per iteration, each commit advancing the wall clock by 100 ms
// (the default commit interval) from `now`; before each, `fill(row, n, now)` sets every row,
// n counting the rows written from 0.
template <typename Fill>
void TimeCommits(benchmark::State& state, StoreWriter& w,
                 std::vector<StoreWriter::NewReading>& rows, int64_t now, Fill fill) {
  int64_t n = 0;
  for (auto _ : state) {
    for (auto& r : rows) fill(r, n++, now);
    now += 100;
    if (Status s = w.AppendReadings(rows, now); !s) {
      state.SkipWithError(s.message().c_str());
      return;
    }
  }
  state.SetItemsProcessed(n);
}

// Readings of 50 sensors, `batch` per commit; each commit advances the wall clock by
// 100 ms (the default commit interval), so one commit in ten is synchronous=FULL.
void BM_AppendReadings(benchmark::State& state) {
  TempDir dir;
  auto w = OpenWriter(state, dir, StoreOptions{});
  if (!w) return;
  std::vector<std::string> sensors;
  for (int i = 0; i < 50; ++i) sensors.push_back("plant/line-3/sensor-" + std::to_string(i));
  std::vector<StoreWriter::NewReading> rows(static_cast<size_t>(state.range(0)));
  TimeCommits(state, *w, rows, 1'700'000'000'000, [&](auto& r, int64_t n, int64_t now) {
    r = {sensors[static_cast<size_t>(n % 50)], now + n, static_cast<double>(n % 1000)};
  });
}
BENCHMARK(BM_AppendReadings)->Arg(100)->Arg(1000)->Arg(10000)->UseRealTime();

// The cost scenario's shape: 10,000 sensors at 1 reading/s, one commit per 100 ms (1,000
// readings). Blocks are written when they hold range(0) readings: the steady state of a
// ring whose blocks fill, without waiting out their age.
void BM_AppendReadingsManySensors(benchmark::State& state) {
  TempDir dir;
  StoreOptions o;
  o.reading_block_max_readings = static_cast<int>(state.range(0));
  auto w = OpenWriter(state, dir, o);
  if (!w) return;
  constexpr int kSensors = 10'000;
  std::vector<std::string> sensors;
  for (int i = 0; i < kSensors; ++i) sensors.push_back("bench/line-3/sensor-" + std::to_string(i));
  std::vector<StoreWriter::NewReading> rows(1000);
  TimeCommits(state, *w, rows, 1'700'000'000'000, [&](auto& r, int64_t n, int64_t now) {
    r = {sensors[static_cast<size_t>(n % kSensors)], now + n / kSensors * 1000,
         20.0 + static_cast<double>(n % 7)};
  });
}
BENCHMARK(BM_AppendReadingsManySensors)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

// Readings ring at its byte share (steady state: every commit also prunes as many rows).
void BM_AppendReadingsAtTheBound(benchmark::State& state) {
  TempDir dir;
  StoreOptions o;
  o.max_bytes = 2'000'000;  // a 1 MB ring: about 100k readings
  auto w = OpenWriter(state, dir, o);
  if (!w) return;
  std::vector<StoreWriter::NewReading> rows(10000);
  int64_t now = 1'700'000'000'000;
  int64_t n = 0;
  const std::string sensor = "plant/line-3/flow";
  for (int fill = 0; fill < 10; ++fill) {
    for (auto& r : rows) r = {sensor, now + n++, 1.0};
    now += 100;
    (void)w->AppendReadings(rows, now);
  }
  TimeCommits(state, *w, rows, now, [&](auto& r, int64_t i, int64_t t) {
    r = {sensor, t + i, 1.0};
  });
}
BENCHMARK(BM_AppendReadingsAtTheBound)->UseRealTime();

// Outbox rows (alert-sized JSON, ~400 bytes), `batch` per synchronous=FULL commit.
void BM_AppendOutbox(benchmark::State& state) {
  TempDir dir;
  StoreOptions o;
  o.max_bytes = 0;
  auto w = OpenWriter(state, dir, o);
  if (!w) return;
  const std::string payload(400, 'x');
  const auto batch = static_cast<size_t>(state.range(0));
  std::vector<StoreWriter::NewRow> rows(batch, {"alert", Priority::kAlert, 1, payload});
  int64_t n = 0;
  for (auto _ : state) {
    if (Status s = w->Append(rows); !s) {
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
