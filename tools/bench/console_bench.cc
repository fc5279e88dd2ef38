// The console's batch ingest (POST /v1/batches): gzip bodies of 500 alert items, as the
// agent and the drain scenario's plain client send them.
//
// BM_ParseBatch: parse and validation of the decompressed body only.
// BM_StoreBatch: the SQLite transaction alone.
// BM_PostBatch: the whole request through ConsoleApi (authentication, gunzip, parse,
// validation, one SQLite transaction into a real database file in a temporary directory,
// the reply), every batch with new ids. CPU time excludes the commit's fsync
// (synchronous=FULL); the wall-clock figure includes it.

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "edge/common/clock.h"
#include "edge/console/api.h"
#include "edge/console/batch.h"
#include "edge/console/codec.h"
#include "edge/console/log.h"
#include "edge/console/store.h"
#include "edge/console/tokens.h"

namespace edge::console {
namespace {

constexpr int kItemsPerBatch = 500;
// Batches per run of the store benchmarks: a fixed amount (the drain scenario's 100,000
// alerts), so that runs compare at the same database size.
constexpr int kBatches = 200;
constexpr const char* kNode = "bench-node";
constexpr const char* kToken = "bench-node-token-0123456789";

// A console store on a fresh database in `dir`; null (the benchmark skipped) when it fails to
// open.
std::unique_ptr<ConsoleStore> OpenStore(benchmark::State& state, const bench::TempDir& dir) {
  auto store = OpenSqliteConsoleStore(dir.File("console.db"));
  if (!store) {
    state.SkipWithError(store.error().c_str());
    return nullptr;
  }
  return std::move(*store);
}

// One alert item as the agent encodes it (compact JSON, a 10-reading context), sequence
// numbers first_seq .. first_seq + kItemsPerBatch - 1.
std::string BatchBody(int64_t first_seq) {
  std::string body =
      "{\"node\":\"" + std::string(kNode) + "\",\"sent_ms\":1764000000000,\"items\":[";
  for (int i = 0; i < kItemsPerBatch; ++i) {
    const int64_t seq = first_seq + i;
    const int64_t ts = 1'764'000'000'000 + seq;
    const std::string sensor = "drain/s" + std::to_string(seq % 1000) + "/temp";
    if (i > 0) body += ',';
    body += "{\"id\":\"" + std::string(kNode) + ":00000000000000aa:" + std::to_string(seq) +
            "\",\"kind\":\"alert\",\"created_ms\":" + std::to_string(ts) + ",\"payload\":{";
    body += "\"node\":\"" + std::string(kNode) + "\",\"rule\":\"flip\",\"sensor\":\"" + sensor +
            "\",\"severity\":\"warning\",\"state\":\"firing\",\"value\":99.25,\"ts_ms\":" +
            std::to_string(ts) + ",\"started_ms\":" + std::to_string(ts) + ",\"episode\":\"flip|" +
            sensor + "|" + std::to_string(ts) + "\",\"context\":[";
    for (int k = 0; k < 10; ++k) {
      if (k > 0) body += ',';
      body += "[" + std::to_string(ts - 1000 * k) + "," + std::to_string(20 + k) + ".5]";
    }
    body += "]}}";
  }
  body += "]}";
  return body;
}

void BM_ParseBatch(benchmark::State& state) {
  const std::string body = BatchBody(1);
  int64_t items = 0;
  for (auto _ : state) {
    Result<Batch> batch = ParseBatch(body);
    if (!batch) {
      state.SkipWithError(batch.error().c_str());
      return;
    }
    benchmark::DoNotOptimize(batch->items.data());
    items += kItemsPerBatch;
  }
  state.SetItemsProcessed(items);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_ParseBatch);

// The store alone: each batch parsed (untimed) from a body with new ids.
void BM_StoreBatch(benchmark::State& state) {
  bench::TempDir dir;
  const std::unique_ptr<ConsoleStore> store = OpenStore(state, dir);
  if (!store) return;
  int64_t seq = 1;
  for (auto _ : state) {
    state.PauseTiming();
    Result<Batch> batch = ParseBatch(BatchBody(seq));
    seq += kItemsPerBatch;
    state.ResumeTiming();
    if (!batch) {
      state.SkipWithError(batch.error().c_str());
      return;
    }
    Result<StoreOutcome> outcome = store->StoreBatch(*batch, 1'764'000'000'000);
    if (!outcome || outcome->accepted != kItemsPerBatch) {
      state.SkipWithError("store failed");
      return;
    }
  }
  state.SetItemsProcessed(seq - 1);
}
BENCHMARK(BM_StoreBatch)->Iterations(kBatches)->Unit(benchmark::kMillisecond);

void BM_PostBatch(benchmark::State& state) {
  bench::TempDir dir;
  const std::unique_ptr<ConsoleStore> store = OpenStore(state, dir);
  if (!store) return;
  auto tokens = TokenTable::Parse(std::string(kNode) + " " + kToken + "\n", "bench");
  if (!tokens) {
    state.SkipWithError(tokens.error().c_str());
    return;
  }
  FakeClock clock;
  NullLog log;
  ConsoleApi api(*tokens, *store, clock, log);
  HttpRequest request;
  request.method = "POST";
  request.target = "/v1/batches";
  request.authorization = std::string("Bearer ") + kToken;
  request.content_type = "application/json";
  request.content_encoding = "gzip";
  int64_t seq = 1;
  for (auto _ : state) {
    state.PauseTiming();
    request.body = Gzip(BatchBody(seq));
    seq += kItemsPerBatch;
    state.ResumeTiming();
    const HttpResponse response = api.Handle(request);
    if (response.status != 200) {
      state.SkipWithError(response.body.c_str());
      return;
    }
  }
  state.SetItemsProcessed(seq - 1);
}
BENCHMARK(BM_PostBatch)->Iterations(kBatches)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace edge::console
